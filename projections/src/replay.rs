//! Read models as they stood at a log position ("as of"): the events up to
//! it are folded by the projections' own code into a private in-memory
//! SQLite database, which the views then query exactly as they query the
//! live read models. One fold, one set of queries: an "as of" answer is
//! what the live answer was when the log ended there. Nothing is written
//! outside that database and no side effect runs: a replay is a rebuild,
//! kept in memory for one request.

use crate::DbTx;
use crate::runner::{BATCH, Decoded, Projection, ProjectionError};
use ftl_commands::Db;
use ftl_commands::store::{EventStore, RecordedEvent};

/// Most events one replay folds: an "as of" query over more is refused
/// rather than left to run for minutes.
pub const MAX_EVENTS: usize = 200_000;

/// A fold in progress: read models at `as_of`, built from what was applied.
pub struct Replay {
    db: Db,
    as_of: u64,
    created: Vec<&'static str>,
    folded: usize,
}

impl Replay {
    pub async fn new(as_of: u64) -> Result<Self, ProjectionError> {
        Ok(Self {
            db: Db::memory().await?,
            as_of,
            created: vec![],
            folded: 0,
        })
    }

    /// The database the views read (cheap to clone: a pool handle).
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn as_of(&self) -> u64 {
        self.as_of
    }

    /// Folds the events of `events` that `p` handles and that are at or
    /// before the position, in log order (its tables are made on first use).
    pub async fn apply(
        &mut self,
        p: &dyn Projection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut mine: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| e.global_position <= self.as_of && p.handles(&e.event_type))
            .collect();
        mine.sort_by_key(|e| e.global_position);
        self.folded += mine.len();
        if self.folded > MAX_EVENTS {
            return Err(ProjectionError::Limit(format!(
                "more than {MAX_EVENTS} events to fold up to position {}",
                self.as_of
            )));
        }
        let mut tx = DbTx::begin(&self.db).await?;
        if !self.created.contains(&p.name()) {
            tx.batch(&p.ddl(false, "")).await?;
            self.created.push(p.name());
        }
        for chunk in mine.chunks(BATCH) {
            let decoded = chunk
                .iter()
                .map(|e| Decoded::from_recorded(e))
                .collect::<Result<Vec<_>, _>>()?;
            p.apply(&mut tx, "", &decoded).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Every event up to `as_of` that `keep` selects (by type and stream), at
/// most [`MAX_EVENTS`]. Events of the `bodiless` types may come without
/// their payload: pass the types `keep` refuses (metric batches).
pub async fn read_until(
    store: &dyn EventStore,
    as_of: u64,
    bodiless: &[&str],
    keep: impl Fn(&RecordedEvent) -> bool,
) -> Result<Vec<RecordedEvent>, ProjectionError> {
    let mut out = vec![];
    let mut after = 0;
    while after < as_of {
        let page = store.read_all_skipping(after, BATCH, bodiless).await?;
        let Some(last) = page.last() else { break };
        after = last.global_position;
        out.extend(
            page.into_iter()
                .filter(|e| e.global_position <= as_of && keep(e)),
        );
        if out.len() > MAX_EVENTS {
            return Err(ProjectionError::Limit(format!(
                "more than {MAX_EVENTS} events up to position {as_of}"
            )));
        }
    }
    Ok(out)
}
