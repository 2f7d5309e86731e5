//! Blue/green rebuilds: the next generation is built beside the live one
//! while the live one serves reads, then the views are re-pointed at it in
//! one transaction (the switch) and the old tables dropped. One rebuild at
//! a time across processes (an advisory lock on PostgreSQL).

use super::*;
use crate::execute;
use crate::runner::suffix;
use chrono::{DateTime, Utc};

/// FNV-1a of the projection's DDL (no suffix): changes when its tables do.
pub(super) fn ddl_hash(p: &dyn Projection, postgres: bool) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.ddl(postgres, "").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// How far the rebuild of a projection has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The generation being built.
    pub generation: i64,
    /// The log position it has applied up to.
    pub position: u64,
    /// When this process began building it; `None` while the rebuild waits
    /// for its turn (another rebuild runs, or another process does it).
    pub started_at: Option<DateTime<Utc>>,
}

impl RebuildProgress {
    pub fn pending(generation: i64) -> Self {
        Self {
            generation,
            position: 0,
            started_at: None,
        }
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

impl Projections {
    /// The advisory lock rebuilds hold (PostgreSQL), so a test or an
    /// operator can see or hold one off.
    pub fn rebuild_lock_key() -> i64 {
        lock_key("rebuild", 0)
    }

    /// Builds the next generation of `name` beside the live one from position
    /// 0, then re-points the views at it and drops the old tables.
    pub async fn rebuild(&self, name: &str) -> Result<RebuildReport, ProjectionError> {
        let p = self.find(name)?;
        let guard = Leadership::acquire(&self.db, Self::rebuild_lock_key()).await?;
        let report = self.rebuild_locked(&p, &|| false).await;
        guard.release().await;
        report?.ok_or_else(|| ProjectionError::Unknown(format!("{name} (rebuild interrupted)")))
    }

    /// Rebuilds every projection whose live generation was built with other
    /// tables ([`Projections::ensure`] found them), one after another, under
    /// the rebuild lock; a rebuild another process finished meanwhile is
    /// skipped. Stops between batches once `stop` says so, leaving the live
    /// generation serving (the next attempt starts the new one afresh).
    pub async fn rebuild_stale(
        &self,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Vec<RebuildReport>, ProjectionError> {
        if self.rebuilding_here().is_empty() {
            return Ok(Vec::new());
        }
        let guard = Leadership::acquire(&self.db, Self::rebuild_lock_key()).await?;
        let result = async {
            let active = self.active().await?;
            let mut reports = Vec::new();
            for p in self.list.iter() {
                let stale = active
                    .get(p.name())
                    .is_some_and(|a| !self.current_shape(p.as_ref(), a));
                if !stale {
                    self.rebuilding_here().remove(p.name());
                    continue;
                }
                match self.rebuild_locked(p, stop).await? {
                    Some(report) => {
                        tracing::info!(
                            projection = p.name(),
                            generation = report.generation,
                            position = report.position,
                            elapsed_ms = report.elapsed.as_millis() as u64,
                            "rebuilt beside the live generation; switched"
                        );
                        reports.push(report);
                    }
                    None => break,
                }
            }
            Ok(reports)
        }
        .await;
        guard.release().await;
        result
    }

    /// Runs [`Projections::rebuild_stale`] until it succeeds or `shutdown`,
    /// retrying after a failure (the server serves meanwhile).
    pub(super) async fn rebuild_in_background(self, mut shutdown: watch::Receiver<bool>) {
        let pause = self.poll.max(Duration::from_secs(1));
        while !*shutdown.borrow() {
            let stop = shutdown.clone();
            let stop = move || *stop.borrow();
            let attempt = tokio::select! {
                r = self.rebuild_stale(&stop) => r,
                _ = shutdown.changed() => return,
            };
            match attempt {
                Ok(_) if self.rebuilding_here().is_empty() => return,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "rebuild failed; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// `None` when `stop` interrupted it before the switch.
    async fn rebuild_locked(
        &self,
        p: &Arc<dyn Projection>,
        stop: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<Option<RebuildReport>, ProjectionError> {
        let name = p.name();
        let started = Instant::now();
        let old = self.active_generation(name).await?.unwrap_or(0);
        let new = old + 1;
        let was_pending = self.rebuilding_here().contains_key(name);
        self.rebuilding_here().insert(
            name,
            RebuildProgress {
                generation: new,
                position: 0,
                started_at: Some(Utc::now()),
            },
        );
        let built = async {
            let mut tx = DbTx::begin(&self.db).await?;
            drop_generation(&mut tx, p.as_ref(), new).await?;
            create_generation(&mut tx, p.as_ref(), new).await?;
            tx.commit().await?;
            let progress = |position, _| {
                if let Some(r) = self.rebuilding_here().get_mut(name) {
                    r.position = position;
                }
            };
            let caught = self.catch_up_generation(p, new, progress, stop).await?;
            if stop() {
                return Ok(None);
            }
            let mut tx = DbTx::begin(&self.db).await?;
            switch_views(&mut tx, p.as_ref(), new).await?;
            tx.commit().await?;
            Ok::<_, ProjectionError>(Some(caught))
        }
        .await;
        match built {
            Ok(Some((position, batches))) => {
                self.rebuilding_here().remove(name);
                self.switches.send_modify(|n| *n += 1);
                if old > 0 {
                    let mut tx = DbTx::begin(&self.db).await?;
                    drop_generation(&mut tx, p.as_ref(), old).await?;
                    tx.commit().await?;
                }
                Ok(Some(RebuildReport {
                    name: name.to_string(),
                    generation: new,
                    position,
                    batches,
                    elapsed: started.elapsed(),
                }))
            }
            other => {
                // The live generation goes on serving; a stale one stays
                // marked for the next attempt.
                let mut here = self.rebuilding_here();
                if was_pending {
                    here.insert(name, RebuildProgress::pending(new));
                } else {
                    here.remove(name);
                }
                other.map(|_| None)
            }
        }
    }
}

pub(super) async fn create_generation(
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

/// Points the views at `generation` and records it as active, with the
/// DDL hash it was built with, in the caller's transaction: the switch.
pub(super) async fn switch_views(
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
    let hash = ddl_hash(p, tx.is_postgres());
    execute!(
        tx,
        "INSERT INTO projection_active (name, generation, ddl_hash) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET generation = excluded.generation, ddl_hash = excluded.ddl_hash",
        p.name(),
        generation,
        hash
    )?;
    Ok(())
}
