//! The set of projections: creating generations, running them, waiting for
//! them (read-your-writes), reporting lag, and blue/green rebuilds.

mod rebuild;
mod runners;

pub use rebuild::{RebuildProgress, RebuildReport};

use crate::runner::{self, Checkpointing, Cursor, Projection, ProjectionError, checkpoint};
use crate::{DbTx, views};
use ftl_commands::Db;
use ftl_commands::leader::Leadership;
use ftl_commands::store::DynStore;
use rebuild::{create_generation, ddl_hash, switch_views};
use std::time::{Duration, Instant};
use std::{collections::HashMap, sync::Arc};
use tokio::sync::watch;

/// How long a runner or a catch-up whose checkpoint another process moved
/// waits before starting again from the table.
const CHECKPOINT_MOVED_PAUSE: Duration = Duration::from_millis(10);
/// A runner lingers after a batch that weighed less than this (metric
/// points): below it a transaction's fixed cost (its statements and
/// hand-offs to the database thread) outweighs the rows. After a heavy
/// batch the next one is applied at once — waiting would only push its
/// work into the next append's way.
const LIGHT_BATCH: usize = 100;

#[derive(Clone)]
pub struct Projections {
    db: Db,
    store: DynStore,
    list: Arc<Vec<Arc<dyn Projection>>>,
    progress: Arc<HashMap<&'static str, watch::Sender<u64>>>,
    /// Per projection, the batches this process's runner applied that
    /// changed the read model (ignored events do not count).
    changes: Arc<HashMap<&'static str, std::sync::atomic::AtomicU64>>,
    /// Whether this process runs the projections (`spawn_runners`).
    running_here: Arc<std::sync::atomic::AtomicBool>,
    /// Counts generation switches made by this process (rebuilds).
    switches: Arc<watch::Sender<u64>>,
    poll: Duration,
    /// How long a woken runner waits for more events before applying (see
    /// [`Projections::with_linger`]).
    linger: Duration,
    /// The furthest log position a reader of this process waits for
    /// ([`Projections::wait_for`]): a runner short of it does not linger.
    wanted: Arc<watch::Sender<u64>>,
    /// The projections whose tables changed shape, as this process knows
    /// them: found by [`Projections::ensure`], being rebuilt beside the live
    /// generation ([`Projections::rebuild_stale`]), removed at the switch.
    rebuilding: Arc<std::sync::Mutex<HashMap<&'static str, RebuildProgress>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    pub generation: i64,
    pub position: u64,
    pub head: u64,
    /// Set while the generation serving reads was built by an older
    /// version (its tables changed shape) and the next one is being built.
    pub rebuilding: Option<RebuildProgress>,
}

/// A projection's row in `projection_active`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Active {
    name: String,
    generation: i64,
    ddl_hash: Option<String>,
}

impl ProjectionStatus {
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.position)
    }
}

fn lock_key(name: &str, generation: i64) -> i64 {
    ftl_commands::leader::lock_key("projection", name, generation)
}

impl Projections {
    /// The projections this service runs.
    pub fn standard(db: Db, store: DynStore, poll: Duration) -> Self {
        let list: Vec<Arc<dyn Projection>> = vec![
            Arc::new(views::catalog::CatalogProjection),
            Arc::new(views::metrics::MetricsProjection),
            Arc::new(views::tracking::TrackingProjection),
            Arc::new(views::training::TrainingProjection),
            Arc::new(views::predictions::PredictionsProjection),
            Arc::new(views::comparisons::ComparisonsProjection),
            Arc::new(views::evaluation::suites::SuitesProjection),
            Arc::new(crate::process::ReactionsProjection),
        ];
        let progress = list
            .iter()
            .map(|p| (p.name(), watch::Sender::new(0)))
            .collect();
        let changes = list
            .iter()
            .map(|p| (p.name(), Default::default()))
            .collect();
        Self {
            db,
            store,
            list: Arc::new(list),
            progress: Arc::new(progress),
            changes: Arc::new(changes),
            running_here: Arc::default(),
            switches: Arc::new(watch::Sender::new(0)),
            poll,
            linger: Duration::ZERO,
            wanted: Arc::new(watch::Sender::new(0)),
            rebuilding: Arc::default(),
        }
    }

    /// Gathers a trickle of appends into fewer read-model transactions: a
    /// runner woken by an append, whose last batch was light (under
    /// 100 metric points), waits up to `linger` for more before it
    /// applies, unless a reader of this process waits for an event it has
    /// not applied ([`Projections::wait_for`] cuts the wait short), so
    /// read-your-writes answers as fast as before. A client logging one
    /// metric per call otherwise costs one transaction of every projection
    /// that handles it per call, each holding SQLite's one writer while the
    /// next call's append waits. SQLite only: on PostgreSQL the runner may
    /// be in another process, which would not hear a waiting reader.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = match self.db {
            Db::Sqlite { .. } => linger,
            Db::Postgres(_) => Duration::ZERO,
        };
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|p| p.name()).collect()
    }

    fn find(&self, name: &str) -> Result<Arc<dyn Projection>, ProjectionError> {
        self.list
            .iter()
            .find(|p| p.name() == name)
            .cloned()
            .ok_or_else(|| ProjectionError::Unknown(name.into()))
    }

    pub async fn active_generation(&self, name: &str) -> Result<Option<i64>, sqlx::Error> {
        Ok(self.active_row(name).await?.map(|a| a.generation))
    }

    /// A projection's row in `projection_active`, if it has a generation.
    async fn active_row(&self, name: &str) -> Result<Option<Active>, sqlx::Error> {
        crate::on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT name, generation, ddl_hash FROM projection_active WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await
        })
    }

    /// Creates generation 1 of every projection that has none, and notes
    /// those whose tables changed shape since their generation was built
    /// (the DDL hash differs): they are rebuilt beside the live generation
    /// ([`Projections::rebuild_stale`]) while the server already serves, and
    /// no runner applies new code to their old tables meanwhile. Idempotent;
    /// on PostgreSQL one process at a time does it.
    pub async fn ensure(&self) -> Result<(), ProjectionError> {
        let guard = Leadership::acquire(&self.db, lock_key("ensure", 0)).await?;
        let result = self.ensure_locked().await;
        guard.release().await;
        result
    }

    async fn ensure_locked(&self) -> Result<(), ProjectionError> {
        let active = self.active().await?;
        for p in self.list.iter() {
            match active.get(p.name()) {
                None => {
                    let mut tx = DbTx::begin(&self.db).await?;
                    create_generation(&mut tx, p.as_ref(), 1).await?;
                    switch_views(&mut tx, p.as_ref(), 1).await?;
                    tx.commit().await?;
                }
                Some(a) if self.current_shape(p.as_ref(), a) => {}
                Some(a) => {
                    tracing::info!(
                        projection = p.name(),
                        generation = a.generation,
                        "the projection's tables changed shape: rebuilding it beside the live generation"
                    );
                    self.rebuilding_here()
                        .insert(p.name(), RebuildProgress::pending(a.generation + 1));
                }
            }
        }
        Ok(())
    }

    /// Every projection's active generation and the DDL hash it was built
    /// with, by name.
    async fn active(&self) -> Result<HashMap<String, Active>, sqlx::Error> {
        let rows: Vec<Active> = crate::on_pool!(&self.db, |pool| {
            sqlx::query_as("SELECT name, generation, ddl_hash FROM projection_active")
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(|a| (a.name.clone(), a)).collect())
    }

    /// Whether a generation was built with this version's tables.
    fn current_shape(&self, p: &dyn Projection, a: &Active) -> bool {
        a.ddl_hash.as_deref() == Some(ddl_hash(p, matches!(self.db, Db::Postgres(_))).as_str())
    }

    /// The generation a runner of this version may apply events to: the
    /// active one, unless it was built with other tables (then none until
    /// the rebuild switches).
    async fn live_generation(&self, p: &dyn Projection) -> Result<Option<i64>, sqlx::Error> {
        Ok(self
            .active_row(p.name())
            .await?
            .filter(|a| self.current_shape(p, a))
            .map(|a| a.generation))
    }

    fn rebuilding_names(&self) -> std::collections::HashSet<&'static str> {
        self.rebuilding_here().keys().copied().collect()
    }

    /// The rebuilds this process knows of (pending or running).
    fn rebuilding_here(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, RebuildProgress>> {
        self.rebuilding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deferred on SQLite, where the runners are in this process and it
    /// answers read-your-writes from memory; on PostgreSQL other processes
    /// read the stored checkpoints to wait for a write, so every move is
    /// stored.
    fn checkpointing(&self) -> Checkpointing {
        match self.db {
            Db::Sqlite { .. } => Checkpointing::Deferred,
            Db::Postgres(_) => Checkpointing::Eager,
        }
    }

    /// A runner of this process reached `pos`, having changed the read
    /// model on the way when `changed` (counted before the position is
    /// published, so a reader that sees the position sees the count).
    fn advance(&self, name: &str, pos: u64, changed: bool) {
        if changed && let Some(n) = self.changes.get(name) {
            n.fetch_add(1, std::sync::atomic::Ordering::Release);
        }
        self.publish(name, pos);
    }

    fn publish(&self, name: &str, pos: u64) {
        if let Some(tx) = self.progress.get(name) {
            tx.send_if_modified(|h| {
                let newer = pos > *h;
                *h = (*h).max(pos);
                newer
            });
        }
    }

    async fn publish_from_table(&self, p: &Arc<dyn Projection>, generation: i64) {
        if let Ok(pos) = checkpoint(&self.db, p.name(), generation).await {
            self.publish(p.name(), pos);
        }
    }

    /// Checkpoints of the active generations.
    async fn active_positions(&self) -> Result<Vec<u64>, sqlx::Error> {
        let mut out = Vec::with_capacity(self.list.len());
        let skipped = self.rebuilding_names();
        for p in self.list.iter().filter(|p| !skipped.contains(p.name())) {
            let g = self.active_generation(p.name()).await?.unwrap_or(1);
            out.push(checkpoint(&self.db, p.name(), g).await?);
        }
        Ok(out)
    }

    /// Waits until every projection has applied `position` (read-your-writes).
    /// Returns false on timeout. A projection being rebuilt beside its live
    /// generation is not waited for: its reads are of the old shape until
    /// the switch (and `/readyz` says so).
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        if position == 0 {
            return true;
        }
        if !self.linger.is_zero() {
            self.wanted.send_if_modified(|w| {
                let further = position > *w;
                *w = (*w).max(position);
                further
            });
        }
        let deadline = Instant::now() + timeout;
        let skipped = self.rebuilding_names();
        let mut receivers: Vec<watch::Receiver<u64>> = self
            .progress
            .iter()
            .filter(|(name, _)| !skipped.contains(*name))
            .map(|(_, s)| s.subscribe())
            .collect();
        if receivers.is_empty() {
            return true;
        }
        // On PostgreSQL another process may be the runner, so its progress
        // is read from the table every time, as it is where this process
        // runs none; on SQLite with the runners here, the table is read only
        // when they have been silent for a slice.
        let mut read_table = matches!(self.db, Db::Postgres(_))
            || !self.running_here.load(std::sync::atomic::Ordering::Acquire);
        loop {
            if receivers.iter().all(|r| *r.borrow() >= position) {
                return true;
            }
            if read_table
                && let Ok(positions) = self.active_positions().await
                && positions.iter().all(|p| *p >= position)
            {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            let changed =
                futures::future::select_all(receivers.iter_mut().map(|r| Box::pin(r.changed())));
            let silent = tokio::time::timeout(slice, changed).await.is_err();
            read_table |= silent;
        }
    }

    /// How far one projection's active generation has applied the log: its
    /// stored checkpoint, or further where this process's runner has moved
    /// past events the projection ignores without storing it yet.
    pub async fn position(&self, name: &str) -> Result<u64, ProjectionError> {
        let generation = self.active_generation(name).await?.unwrap_or(0);
        let stored = checkpoint(&self.db, name, generation).await?;
        Ok(stored.max(self.published(name)))
    }

    /// How many batches that changed `name`'s read model this process's
    /// runner has applied: unchanged means the read model is as it was
    /// (within a poll interval where another process runs the projection).
    pub fn changes(&self, name: &str) -> u64 {
        self.changes
            .get(name)
            .map(|n| n.load(std::sync::atomic::Ordering::Acquire))
            .unwrap_or(0)
    }

    /// The position this process has seen `name` reach (its own runner's
    /// progress, or the stored checkpoint as last read).
    pub fn published(&self, name: &str) -> u64 {
        self.progress.get(name).map(|s| *s.borrow()).unwrap_or(0)
    }

    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, ProjectionError> {
        let head = self.store.head_position().await?;
        let active = self.active().await?;
        let mut out = Vec::new();
        for p in self.list.iter() {
            let found = active.get(p.name());
            let generation = found.map_or(0, |a| a.generation);
            // The table says whether the live generation is of an older
            // shape (whichever process rebuilds it); this process knows how
            // far its own rebuild got.
            let rebuilding = found
                .filter(|a| !self.current_shape(p.as_ref(), a))
                .map(|a| {
                    self.rebuilding_here()
                        .get(p.name())
                        .cloned()
                        .unwrap_or_else(|| RebuildProgress::pending(a.generation + 1))
                });
            out.push(ProjectionStatus {
                name: p.name().to_string(),
                generation,
                position: checkpoint(&self.db, p.name(), generation)
                    .await?
                    .max(self.published(p.name())),
                head,
                rebuilding,
            });
        }
        Ok(out)
    }

    /// Applies every projection up to the current head, in this task. A
    /// running server may be projecting the same generation meanwhile: when
    /// it moves the checkpoint first, this starts again from the table.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        for p in self.list.iter() {
            let g = self.active_generation(p.name()).await?.unwrap_or(1);
            let mut moved = 0;
            loop {
                let caught_up = self
                    .catch_up_generation(
                        p,
                        g,
                        |pos, changed| self.advance(p.name(), pos, changed),
                        || false,
                    )
                    .await;
                match caught_up {
                    Err(ProjectionError::CheckpointMoved(_)) if moved < 200 => {
                        moved += 1;
                        tokio::time::sleep(CHECKPOINT_MOVED_PAUSE).await;
                    }
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Catches one generation up with the log and stores its checkpoint.
    async fn catch_up_generation(
        &self,
        p: &Arc<dyn Projection>,
        generation: i64,
        progress: impl FnMut(u64, bool),
        stop: impl Fn() -> bool,
    ) -> Result<(u64, u64), ProjectionError> {
        let mut at = Cursor::load(&self.db, p.name(), generation).await?;
        let committed = runner::catch_up(
            &self.db,
            &self.store,
            p,
            &mut at,
            Checkpointing::Deferred,
            progress,
            stop,
        )
        .await?
        .changed;
        at.persist(&self.db, p.as_ref()).await?;
        Ok((at.applied, committed))
    }
}
