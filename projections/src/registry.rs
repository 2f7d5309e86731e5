//! The set of projections: creating generations, running them, waiting for
//! them (read-your-writes), reporting lag, and blue/green rebuilds.

use crate::runner::{self, Checkpointing, Cursor, Projection, ProjectionError, checkpoint, suffix};
use crate::{DbTx, execute, views};
use chrono::Utc;
use ftl_commands::Db;
use ftl_commands::leader::Leadership;
use ftl_commands::store::DynStore;
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: String,
    pub generation: i64,
    pub position: u64,
    pub head: u64,
}

impl ProjectionStatus {
    pub fn lag(&self) -> u64 {
        self.head.saturating_sub(self.position)
    }
}

/// FNV-1a of the projection's DDL (no suffix): changes when its tables do.
fn ddl_hash(p: &dyn Projection, postgres: bool) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.ddl(postgres, "").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
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
        crate::on_pool!(&self.db, |pool| {
            sqlx::query_scalar("SELECT generation FROM projection_active WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
        })
    }

    /// Creates generation 1 of every projection that has none, and rebuilds
    /// any whose tables changed shape since its generation was built (its
    /// DDL hash differs), so a new version never reads an old table.
    /// Idempotent; on PostgreSQL one process at a time does it.
    pub async fn ensure(&self) -> Result<(), ProjectionError> {
        let guard = Leadership::acquire(&self.db, lock_key("ensure", 0)).await?;
        let result = self.ensure_locked().await;
        guard.release().await;
        result
    }

    async fn ensure_locked(&self) -> Result<(), ProjectionError> {
        for p in self.list.iter() {
            let hash = ddl_hash(p.as_ref(), matches!(self.db, Db::Postgres(_)));
            match self.active_generation(p.name()).await? {
                None => {
                    let mut tx = DbTx::begin(&self.db).await?;
                    create_generation(&mut tx, p.as_ref(), 1).await?;
                    switch_views(&mut tx, p.as_ref(), 1).await?;
                    tx.commit().await?;
                }
                Some(_) if self.stored_hash(p.name()).await?.as_deref() == Some(hash.as_str()) => {
                    continue;
                }
                Some(generation) => {
                    tracing::info!(
                        projection = p.name(),
                        generation,
                        "the projection's tables changed shape: rebuilding it"
                    );
                    let report = self.rebuild(p.name()).await?;
                    tracing::info!(
                        projection = p.name(),
                        generation = report.generation,
                        elapsed_ms = report.elapsed.as_millis() as u64,
                        "rebuilt"
                    );
                }
            }
            let mut tx = DbTx::begin(&self.db).await?;
            execute!(
                &mut tx,
                "UPDATE projection_active SET ddl_hash = $1 WHERE name = $2",
                hash,
                p.name()
            )?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn stored_hash(&self, name: &str) -> Result<Option<String>, sqlx::Error> {
        crate::on_pool!(&self.db, |pool| {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT ddl_hash FROM projection_active WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await
            .map(Option::flatten)
        })
    }

    /// Runs every projection until `shutdown` turns true; each stops at a
    /// checkpoint (between transactions).
    pub fn spawn_runners(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.running_here
            .store(true, std::sync::atomic::Ordering::Release);
        self.list
            .iter()
            .map(|p| {
                let this = self.clone();
                let p = p.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { this.run(p, shutdown).await })
            })
            .collect()
    }

    async fn run(&self, p: Arc<dyn Projection>, mut shutdown: watch::Receiver<bool>) {
        let mut wake = self.store.wakeups();
        let mut leader: Option<(i64, Leadership)> = None;
        // Where this runner stands, for the generation it runs; reloaded from
        // the table whenever the generation changes or a step fails.
        let mut cursor: Option<Cursor> = None;
        let mut persisted = Instant::now();
        // The active generation is read again after a quiet poll interval,
        // after a rebuild in this process, and whenever the cursor was
        // dropped; between those, a busy runner does not ask per wake. (A
        // rebuild by another process drops the old tables, so a runner still
        // on them fails its next write and reloads.)
        let mut recheck = true;
        let mut switches = self.switches.subscribe();
        let mut wanted = self.wanted.subscribe();
        // Whether the last batch applied was light enough that gathering
        // the next few appends pays (see `with_linger`).
        let mut light = false;
        while !*shutdown.borrow() {
            let known = cursor
                .filter(|_| !recheck && !switches.has_changed().unwrap_or(true))
                .map(|c| c.generation);
            switches.mark_unchanged();
            let generation = match known {
                Some(g) => Ok(Some(g)),
                None => self.active_generation(p.name()).await,
            };
            let generation = match generation {
                Ok(Some(g)) => g,
                Ok(None) => {
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(projection = p.name(), error = %e, "cannot read the active generation");
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
            };
            // One active runner per projection on PostgreSQL: a session
            // advisory lock on a dedicated connection (released if we die).
            if leader.as_ref().map(|(g, _)| *g) != Some(generation) {
                if let Some((_, old)) = leader.take() {
                    old.release().await;
                }
                match Leadership::try_acquire(&self.db, lock_key(p.name(), generation)).await {
                    Ok(Some(conn)) => leader = Some((generation, conn)),
                    Ok(None) => {
                        self.publish_from_table(&p, generation).await;
                        wait(&mut wake, &mut shutdown, self.poll).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(projection = p.name(), error = %e, "leader election failed");
                        wait(&mut wake, &mut shutdown, self.poll).await;
                        continue;
                    }
                }
            }
            let mut at = match cursor {
                Some(c) if c.generation == generation => c,
                _ => match Cursor::load(&self.db, p.name(), generation).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(projection = p.name(), error = %e, "cannot read the checkpoint");
                        tokio::time::sleep(self.poll).await;
                        continue;
                    }
                },
            };
            let stop = shutdown.clone();
            // A deferred checkpoint is stored once the runner has been quiet
            // for a poll interval (and at shutdown).
            let stepped = async {
                let caught = runner::catch_up(
                    &self.db,
                    &self.store,
                    &p,
                    &mut at,
                    self.checkpointing(),
                    |pos, changed| self.advance(p.name(), pos, changed),
                    || *stop.borrow(),
                )
                .await?;
                if let Some(weight) = caught.last_weight {
                    light = weight < LIGHT_BATCH;
                }
                if at.applied > at.stored && persisted.elapsed() >= self.poll {
                    at.persist(&self.db, p.as_ref()).await?;
                }
                Ok::<_, ProjectionError>(())
            }
            .await;
            if let Err(e) = stepped {
                // Another process caught this generation up (a CLI command
                // on the same database, say): start again from the table at
                // once. Anything else is retried after a poll interval.
                let pause = match e {
                    ProjectionError::CheckpointMoved(_) => {
                        tracing::debug!(
                            projection = p.name(),
                            "checkpoint moved by another process; reloading"
                        );
                        CHECKPOINT_MOVED_PAUSE
                    }
                    e => {
                        tracing::warn!(projection = p.name(), error = %e, "projection step failed; retrying");
                        self.poll
                    }
                };
                cursor = None;
                recheck = true;
                tokio::time::sleep(pause.min(self.poll)).await;
                continue;
            }
            if at.applied == at.stored {
                persisted = Instant::now();
            }
            self.publish(p.name(), at.applied);
            cursor = Some(at);
            recheck = !wait(&mut wake, &mut shutdown, self.poll).await;
            if !recheck && light {
                self.linger(at.applied, &mut wanted, &mut shutdown).await;
                // The appends heard while lingering are committed, so the
                // catch-up below reads them: they need no wake-up of their own.
                wake.mark_unchanged();
            }
        }
        if let Some(mut at) = cursor
            && let Err(e) = at.persist(&self.db, p.as_ref()).await
        {
            tracing::warn!(projection = p.name(), error = %e, "cannot store the checkpoint at shutdown");
        }
        if let Some((_, held)) = leader {
            held.release().await;
        }
    }

    /// After a wake-up: waits up to the linger for more events, returning
    /// early when a reader waits for a position past `applied` or at
    /// shutdown.
    async fn linger(
        &self,
        applied: u64,
        wanted: &mut watch::Receiver<u64>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        if self.linger.is_zero() || *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(self.linger) => {}
            _ = wanted.wait_for(|w| *w > applied) => {}
            _ = shutdown.changed() => {}
        }
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
        for p in self.list.iter() {
            let g = self.active_generation(p.name()).await?.unwrap_or(1);
            out.push(checkpoint(&self.db, p.name(), g).await?);
        }
        Ok(out)
    }

    /// Waits until every projection has applied `position` (read-your-writes).
    /// Returns false on timeout.
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
        let mut receivers: Vec<watch::Receiver<u64>> =
            self.progress.values().map(|s| s.subscribe()).collect();
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
        let mut out = Vec::new();
        for p in self.list.iter() {
            let generation = self.active_generation(p.name()).await?.unwrap_or(0);
            out.push(ProjectionStatus {
                name: p.name().to_string(),
                generation,
                position: checkpoint(&self.db, p.name(), generation)
                    .await?
                    .max(self.published(p.name())),
                head,
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
                    .catch_up_generation(p, g, |pos, changed| self.advance(p.name(), pos, changed))
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
    ) -> Result<(u64, u64), ProjectionError> {
        let mut at = Cursor::load(&self.db, p.name(), generation).await?;
        let committed = runner::catch_up(
            &self.db,
            &self.store,
            p,
            &mut at,
            Checkpointing::Deferred,
            progress,
            || false,
        )
        .await?
        .changed;
        at.persist(&self.db, p.as_ref()).await?;
        Ok((at.applied, committed))
    }

    /// Builds the next generation of `name` beside the live one from position
    /// 0, then re-points the views at it and drops the old tables.
    pub async fn rebuild(&self, name: &str) -> Result<RebuildReport, ProjectionError> {
        let p = self.find(name)?;
        let started = Instant::now();
        let old = self.active_generation(name).await?.unwrap_or(0);
        let new = old + 1;
        let mut tx = DbTx::begin(&self.db).await?;
        drop_generation(&mut tx, p.as_ref(), new).await?;
        create_generation(&mut tx, p.as_ref(), new).await?;
        tx.commit().await?;
        let (position, batches) = self.catch_up_generation(&p, new, |_, _| {}).await?;
        let mut tx = DbTx::begin(&self.db).await?;
        switch_views(&mut tx, p.as_ref(), new).await?;
        tx.commit().await?;
        self.switches.send_modify(|n| *n += 1);
        if old > 0 {
            let mut tx = DbTx::begin(&self.db).await?;
            drop_generation(&mut tx, p.as_ref(), old).await?;
            tx.commit().await?;
        }
        Ok(RebuildReport {
            name: name.to_string(),
            generation: new,
            position,
            batches,
            elapsed: started.elapsed(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub name: String,
    pub generation: i64,
    pub position: u64,
    pub batches: u64,
    pub elapsed: Duration,
}

/// Waits for a wake-up, shutdown or the poll interval; false when the
/// interval passed with nothing heard.
async fn wait(
    wake: &mut watch::Receiver<u64>,
    shutdown: &mut watch::Receiver<bool>,
    poll: Duration,
) -> bool {
    tokio::select! {
        _ = wake.changed() => true,
        _ = shutdown.changed() => true,
        _ = tokio::time::sleep(poll) => false,
    }
}

async fn create_generation(
    tx: &mut DbTx,
    p: &dyn Projection,
    generation: i64,
) -> Result<(), sqlx::Error> {
    tx.batch(&p.ddl(tx.is_postgres(), &suffix(generation)))
        .await?;
    let sql = "INSERT INTO projection_checkpoints (name, generation, position, updated_at) VALUES ($1, $2, 0, $3)
               ON CONFLICT (name, generation) DO UPDATE SET position = 0, updated_at = excluded.updated_at";
    execute!(tx, sql, p.name(), generation, Utc::now())?;
    Ok(())
}

async fn drop_generation(
    tx: &mut DbTx,
    p: &dyn Projection,
    generation: i64,
) -> Result<(), sqlx::Error> {
    let s = suffix(generation);
    for t in p.tables().iter().chain(p.hidden_tables()) {
        tx.batch(&format!("DROP TABLE IF EXISTS {t}{s}")).await?;
    }
    execute!(
        tx,
        "DELETE FROM projection_checkpoints WHERE name = $1 AND generation = $2",
        p.name(),
        generation
    )?;
    Ok(())
}

async fn switch_views(
    tx: &mut DbTx,
    p: &dyn Projection,
    generation: i64,
) -> Result<(), sqlx::Error> {
    let s = suffix(generation);
    for t in p.tables() {
        tx.batch(&format!("DROP VIEW IF EXISTS {t}")).await?;
        tx.batch(&format!("CREATE VIEW {t} AS SELECT * FROM {t}{s}"))
            .await?;
    }
    execute!(
        tx,
        "INSERT INTO projection_active (name, generation) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET generation = excluded.generation",
        p.name(),
        generation
    )?;
    Ok(())
}
