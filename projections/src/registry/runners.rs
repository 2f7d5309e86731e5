//! The runner loop of each projection: under its leader, catch the active
//! generation up with the log, linger, wait for a wake-up.

use super::*;

impl Projections {
    /// Runs every projection until `shutdown` turns true; each stops at a
    /// checkpoint (between transactions).
    pub fn spawn_runners(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.running_here
            .store(true, std::sync::atomic::Ordering::Release);
        let mut tasks: Vec<_> = self
            .list
            .iter()
            .map(|p| {
                let this = self.clone();
                let p = p.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { this.run(p, shutdown).await })
            })
            .collect();
        if !self.rebuilding_here().is_empty() {
            tasks.push(tokio::spawn(self.clone().rebuild_in_background(shutdown)));
        }
        tasks
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
                None => self.live_generation(p.as_ref()).await,
            };
            let generation = match generation {
                Ok(Some(g)) => g,
                Ok(None) => {
                    // No generation yet, or one of another shape that a
                    // rebuild replaces: wait for the switch.
                    tokio::select! {
                        _ = switches.changed() => {}
                        _ = tokio::time::sleep(self.poll) => {}
                        _ = shutdown.changed() => {}
                    }
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
