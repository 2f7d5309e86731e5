//! The projection runner: read the log from the checkpoint, apply a batch and
//! advance the checkpoint in one transaction (compare-and-set on the old
//! position), so each event takes effect on the read model exactly once.

use crate::{DbTx, execute};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ftl_commands::Db;
use ftl_commands::store::{DynStore, Metadata, RecordedEvent, StoreError};
use ftl_domain::DomainEvent;
use std::sync::Arc;

/// An event decoded for a projection.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub position: u64,
    pub stream_id: String,
    pub recorded_at: DateTime<Utc>,
    pub metadata: Metadata,
    pub event: DomainEvent,
}

impl Decoded {
    pub fn from_recorded(e: &RecordedEvent) -> Result<Self, ProjectionError> {
        Ok(Self {
            position: e.global_position,
            stream_id: e.stream_id.clone(),
            recorded_at: e.recorded_at,
            metadata: e.metadata.clone(),
            event: e.decode().map_err(|err| {
                ProjectionError::Codec(format!("at position {}: {err}", e.global_position))
            })?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("event: {0}")]
    Codec(String),
    #[error("checkpoint of {0} moved under us (another runner is active)")]
    CheckpointMoved(String),
    #[error("reading ahead: {0}")]
    ReadAhead(String),
    #[error("unknown projection {0:?}")]
    Unknown(String),
    /// A request over a stated limit (an "as of" fold too large).
    #[error("{0}")]
    Limit(String),
}

#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name, also the checkpoint key.
    fn name(&self) -> &'static str;
    /// Base names of the tables (and so the views) this projection owns.
    fn tables(&self) -> &'static [&'static str];
    /// Tables of a generation that have no view (e.g. a full-text index,
    /// queried through its generation's name); dropped with the generation.
    fn hidden_tables(&self) -> &'static [&'static str] {
        &[]
    }
    /// DDL creating this projection's tables with the given name suffix.
    fn ddl(&self, postgres: bool, suffix: &str) -> String;
    /// Whether events of this type concern it (others are skipped undecoded).
    fn handles(&self, event_type: &str) -> bool;
    /// Applies a batch inside the runner's transaction.
    async fn apply(
        &self,
        tx: &mut DbTx,
        suffix: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError>;
}

/// Events read per transaction. When a runner is caught up it reads only the
/// few new events; when behind (restart, rebuild) large batches amortise the
/// transaction.
pub const BATCH: usize = 2048;
/// A batch stops early once its events weigh this much (metric points), so
/// a run of large metric batches does not balloon one transaction.
pub const WEIGHT_BUDGET: usize = 100_000;
/// Events in the first page read by a step; later pages grow fourfold.
const FIRST_PAGE: usize = 8;

pub fn suffix(generation: i64) -> String {
    format!("_g{generation}")
}

pub async fn checkpoint(db: &Db, name: &str, generation: i64) -> Result<u64, sqlx::Error> {
    let pos: Option<i64> = crate::on_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT position FROM projection_checkpoints WHERE name = $1 AND generation = $2",
        )
        .bind(name)
        .bind(generation)
        .fetch_optional(pool)
        .await?
    });
    Ok(pos.unwrap_or(0).max(0) as u64)
}

/// Where a runner stands in the log: the checkpoint stored beside its read
/// model, and the position it has applied up to. The two differ only while
/// the events after the stored checkpoint are all of types the projection
/// ignores and moving the stored checkpoint over them was deferred (see
/// [`catch_up`]): the read model is the same at either position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub generation: i64,
    pub stored: u64,
    pub applied: u64,
}

impl Cursor {
    /// The cursor of a generation as its table stores it.
    pub async fn load(db: &Db, name: &str, generation: i64) -> Result<Self, sqlx::Error> {
        let at = checkpoint(db, name, generation).await?;
        Ok(Self {
            generation,
            stored: at,
            applied: at,
        })
    }

    /// Stores a deferred checkpoint (compare-and-set on the stored one).
    pub async fn persist(
        &mut self,
        db: &Db,
        projection: &dyn Projection,
    ) -> Result<(), ProjectionError> {
        if self.applied == self.stored {
            return Ok(());
        }
        let empty = Batch {
            last: Some(self.applied),
            decoded: Vec::new(),
            full: false,
            weight: None,
        };
        apply_batch(db, projection, self.generation, self.stored, &empty).await?;
        self.stored = self.applied;
        Ok(())
    }
}

/// Events read from the log for one transaction: every event after the
/// cursor up to `last`, the ones the projection handles decoded.
pub struct Batch {
    last: Option<u64>,
    decoded: Vec<Decoded>,
    /// Whether the read stopped at a limit (count or weight) rather than at
    /// the head of the log: only then can more be waiting already.
    full: bool,
    /// What its events weigh (metric points; one per other event), when
    /// they were read from the log.
    weight: Option<usize>,
}

/// Reads the batch after position `from`: at most `batch` events, fewer once
/// they weigh `WEIGHT_BUDGET`.
pub async fn read_batch(
    store: &DynStore,
    projection: &dyn Projection,
    from: u64,
    batch: usize,
) -> Result<Batch, ProjectionError> {
    let mut decoded = Vec::new();
    let mut weight = 0;
    let mut last = None;
    // Pages grow from small: a page of 10,000-point metric batches is tens of
    // megabytes, so a heavy log is read only as far as the weight budget.
    let mut page = FIRST_PAGE.min(batch);
    let mut read = 0;
    let mut full = false;
    // Bulk events this projection skips are read without their payloads.
    let bodiless: Vec<&str> = DomainEvent::BULK_TYPES
        .iter()
        .copied()
        .filter(|t| !projection.handles(t))
        .collect();
    'pages: while read < batch && weight < WEIGHT_BUDGET {
        let events = store
            .read_all_skipping(last.unwrap_or(from), page, &bodiless)
            .await?;
        let page_full = events.len() == page;
        for e in &events {
            if weight >= WEIGHT_BUDGET {
                full = true;
                break 'pages;
            }
            if projection.handles(&e.event_type) {
                let d = Decoded::from_recorded(e)?;
                weight += d.event.weight();
                decoded.push(d);
            } else {
                weight += 1;
            }
            last = Some(e.global_position);
            read += 1;
        }
        if !page_full {
            break;
        }
        full = read >= batch || weight >= WEIGHT_BUDGET;
        page = (page * 4).min(batch - read);
    }
    Ok(Batch {
        last,
        decoded,
        full,
        weight: Some(weight),
    })
}

/// Applies a batch and moves the stored checkpoint from `stored` to the
/// batch's last position in one transaction (compare-and-set: it fails if
/// another runner moved the checkpoint). Returns the new checkpoint, `None`
/// for an empty batch.
pub async fn apply_batch(
    db: &Db,
    projection: &dyn Projection,
    generation: i64,
    stored: u64,
    batch: &Batch,
) -> Result<Option<u64>, ProjectionError> {
    let Some(last) = batch.last else {
        return Ok(None);
    };
    let mut tx = DbTx::begin(db).await?;
    // The checkpoint first: a runner that lost the race (another moved the
    // checkpoint) finds out before it writes anything, and on PostgreSQL the
    // row lock makes a second runner wait for the first rather than redo
    // its work.
    let moved = execute!(
        &mut tx,
        "UPDATE projection_checkpoints SET position = $1, updated_at = $2 WHERE name = $3 AND generation = $4 AND position = $5",
        last as i64,
        Utc::now(),
        projection.name(),
        generation,
        stored as i64
    )?;
    if moved != 1 {
        return Err(ProjectionError::CheckpointMoved(
            projection.name().to_string(),
        ));
    }
    if !batch.decoded.is_empty() {
        projection
            .apply(&mut tx, &suffix(generation), &batch.decoded)
            .await?;
    }
    tx.commit().await?;
    Ok(Some(last))
}

/// Whether [`catch_up`] may leave the stored checkpoint behind over events
/// the projection ignores (no transaction for them; the caller persists the
/// cursor later), or must store every move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpointing {
    Deferred,
    Eager,
}

/// Applies batches from `cursor` until the projection has caught up with
/// the log (or `stop` says so, between transactions), reading and decoding
/// the next batch while the current one is written: on a log far ahead (a
/// rebuild, a restart) the reading half and the writing half run on
/// different cores. A batch that ends at the head of the log ends the call.
/// `progress` hears each new position, and whether the read model changed
/// on the way to it (events it handles).
pub async fn catch_up(
    db: &Db,
    store: &DynStore,
    projection: &Arc<dyn Projection>,
    cursor: &mut Cursor,
    checkpointing: Checkpointing,
    mut progress: impl FnMut(u64, bool),
    stop: impl Fn() -> bool,
) -> Result<CaughtUp, ProjectionError> {
    // Events this process just appended, all of types the projection
    // ignores, are passed without reading the log.
    let skip = |t: &str| !projection.handles(t);
    let mut current = match store.skip_recent(cursor.applied, &skip) {
        Some(to) => Batch {
            last: Some(to),
            decoded: Vec::new(),
            full: false,
            weight: None,
        },
        None => read_batch(store, projection.as_ref(), cursor.applied, BATCH).await?,
    };
    let mut caught = CaughtUp::default();
    while let Some(last) = current.last {
        let ahead = current.full.then(|| {
            ReadAhead(tokio::spawn({
                let (store, projection) = (store.clone(), projection.clone());
                async move { read_batch(&store, projection.as_ref(), last, BATCH).await }
            }))
        });
        let changes = !current.decoded.is_empty();
        if !changes && checkpointing == Checkpointing::Deferred {
            cursor.applied = last;
        } else {
            apply_batch(
                db,
                projection.as_ref(),
                cursor.generation,
                cursor.stored,
                &current,
            )
            .await?;
            cursor.stored = last;
            cursor.applied = last;
            caught.changed += u64::from(changes);
        }
        caught.last_weight = current.weight.or(caught.last_weight);
        progress(last, changes);
        match ahead {
            Some(ahead) if !stop() => current = ahead.finish().await?,
            _ => break,
        }
    }
    Ok(caught)
}

/// What a [`catch_up`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// Batches that changed the read model.
    pub changed: u64,
    /// What the last batch read from the log weighed (`None` when every
    /// batch was passed without reading it, or there was none).
    pub last_weight: Option<usize>,
}

/// The next batch being read; aborted if the caller stops waiting for it.
struct ReadAhead(tokio::task::JoinHandle<Result<Batch, ProjectionError>>);

impl ReadAhead {
    async fn finish(mut self) -> Result<Batch, ProjectionError> {
        (&mut self.0)
            .await
            .map_err(|e| ProjectionError::ReadAhead(e.to_string()))?
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}
