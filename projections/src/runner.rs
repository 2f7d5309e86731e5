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

/// Events read from the log for one transaction: every event after `from`
/// up to `last`, the ones the projection handles decoded.
pub struct Batch {
    from: u64,
    last: Option<u64>,
    decoded: Vec<Decoded>,
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
    'pages: while read < batch && weight < WEIGHT_BUDGET {
        let events = store.read_all(last.unwrap_or(from), page).await?;
        let full = events.len() == page;
        for e in &events {
            if weight >= WEIGHT_BUDGET {
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
        if !full {
            break;
        }
        page = (page * 4).min(batch - read);
    }
    Ok(Batch {
        from,
        last,
        decoded,
    })
}

/// Applies a batch and moves the checkpoint from `batch.from` to its last
/// position in one transaction (compare-and-set: it fails if another runner
/// moved the checkpoint). Returns the new checkpoint, `None` for an empty batch.
pub async fn apply_batch(
    db: &Db,
    projection: &dyn Projection,
    generation: i64,
    batch: &Batch,
) -> Result<Option<u64>, ProjectionError> {
    let Some(last) = batch.last else {
        return Ok(None);
    };
    let mut tx = DbTx::begin(db).await?;
    if !batch.decoded.is_empty() {
        projection
            .apply(&mut tx, &suffix(generation), &batch.decoded)
            .await?;
    }
    let moved = execute!(
        &mut tx,
        "UPDATE projection_checkpoints SET position = $1, updated_at = $2 WHERE name = $3 AND generation = $4 AND position = $5",
        last as i64,
        Utc::now(),
        projection.name(),
        generation,
        batch.from as i64
    )?;
    if moved != 1 {
        return Err(ProjectionError::CheckpointMoved(
            projection.name().to_string(),
        ));
    }
    tx.commit().await?;
    Ok(Some(last))
}

/// Applies one batch of at most `batch` events (fewer once they weigh
/// `WEIGHT_BUDGET`). Returns the new checkpoint, or `None` when caught up.
pub async fn step(
    db: &Db,
    store: &DynStore,
    projection: &dyn Projection,
    generation: i64,
    batch: usize,
) -> Result<Option<u64>, ProjectionError> {
    let from = checkpoint(db, projection.name(), generation).await?;
    let read = read_batch(store, projection, from, batch).await?;
    apply_batch(db, projection, generation, &read).await
}

/// Applies batches until the projection has caught up with the log (or
/// `stop` says so, between transactions), reading and decoding the next
/// batch while the current one is written: on a log far ahead (a rebuild, a
/// restart) the reading half and the writing half run on different cores.
/// `progress` hears each new checkpoint. Returns the batches applied.
pub async fn catch_up(
    db: &Db,
    store: &DynStore,
    projection: &Arc<dyn Projection>,
    generation: i64,
    mut progress: impl FnMut(u64),
    stop: impl Fn() -> bool,
) -> Result<u64, ProjectionError> {
    let from = checkpoint(db, projection.name(), generation).await?;
    let mut current = read_batch(store, projection.as_ref(), from, BATCH).await?;
    let mut applied = 0;
    while let Some(last) = current.last {
        let ahead = ReadAhead(tokio::spawn({
            let (store, projection) = (store.clone(), projection.clone());
            async move { read_batch(&store, projection.as_ref(), last, BATCH).await }
        }));
        apply_batch(db, projection.as_ref(), generation, &current).await?;
        applied += 1;
        progress(last);
        if stop() {
            break;
        }
        current = ahead.finish().await?;
    }
    Ok(applied)
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
