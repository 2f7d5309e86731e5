//! The reconciler: every `training.reconcile_ms` it turns expired leases
//! into recoveries (`LoseLease`) and charges running jobs for the time
//! since their last tick (`AccrueCost`, which also applies the budget
//! rules).
//!
//! One process runs it at a time: with several `serve` processes on one
//! PostgreSQL, the leader holds an advisory lock ([`Leadership`]) and the
//! others stand by, taking over when its session ends. Each command is
//! also safe to repeat on its own: its id is derived from what it acts on —
//! the lease for a recovery, the lease (one attempt of the job) and the
//! start of the interval for a cost tick — so a retry, or a second process
//! working from the same lease row, is deduplicated by the store instead of
//! charging the interval again.

use crate::Effects;
use crate::metrics::RoleLabels;
use chrono::Utc;
use ftl_commands::handler::handle;
use ftl_commands::leader::{Leadership, lock_key};
use ftl_commands::leases;
use ftl_commands::store::Metadata;
use ftl_domain::job::managed::RecoveryCause;
use ftl_domain::job::{JobCommand, JobDecider};
use ftl_domain::{JobId, ProjectId};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// How long a standby waits between tries to take the lead.
const STANDBY_RETRY: Duration = Duration::from_millis(500);

pub async fn run(st: Effects, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(st.settings.training.reconcile_ms.max(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let gauge = st
        .metrics
        .leader
        .get_or_create(&RoleLabels {
            role: "reconciler".into(),
        })
        .clone();
    let key = lock_key("role", "reconciler", 0);
    // Who charged a tick, in the audit: this process among several.
    let actor = format!(
        "reconciler:{}-{}",
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let mut lead: Option<Leadership> = None;
    let mut last_try: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(held) = lead.as_mut()
                    && !held.still_held().await
                {
                    tracing::warn!("lost the reconciler's lead");
                    lead = None;
                }
                if lead.is_none() && last_try.is_none_or(|t| t.elapsed() >= STANDBY_RETRY) {
                    last_try = Some(Instant::now());
                    match Leadership::try_acquire(&st.db, key).await {
                        Ok(Some(held)) => {
                            tracing::info!("leading the reconciler");
                            lead = Some(held);
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "reconciler leader election"),
                    }
                }
                gauge.set(i64::from(lead.is_some()));
                if lead.is_some()
                    && let Err(e) = reconcile_once(&st, &actor).await
                {
                    tracing::warn!(error = %e, "reconciling leases");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    if let Some(held) = lead {
        held.release().await;
    }
    gauge.set(0);
}

/// The id of the cost tick that starts at `from_ms` for one lease (one
/// attempt of the job).
pub fn tick_command_id(job: JobId, lease_id: Uuid, from_ms: i64) -> Uuid {
    Uuid::new_v5(&job.0, format!("cost:{lease_id}:{from_ms}").as_bytes())
}

pub async fn reconcile_once(st: &Effects, actor: &str) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    let tick_ms = st.settings.training.cost_tick_ms as i64;
    for lease in leases::all(&st.db).await? {
        let job = JobId(lease.job_id);
        let meta = Metadata {
            actor: Some(actor.into()),
            project_id: Some(ProjectId(lease.project_id)),
            ..Metadata::default()
        };
        if lease.expires_ms < now {
            tracing::warn!(job = %job, worker = %lease.worker_id, "lease expired: recovering the job");
            let cmd = JobCommand::LoseLease {
                lease_id: lease.lease_id,
                cause: RecoveryCause::HeartbeatLost,
            };
            let cid = Uuid::new_v5(&lease.lease_id, b"lost");
            handle::<JobDecider>(st.store.as_ref(), &job.stream(), &cmd, cid, &meta, |_| {
                Ok(())
            })
            .await?;
            leases::remove(&st.db, lease.lease_id).await?;
        } else if now - lease.last_tick_ms >= tick_ms {
            handle::<JobDecider>(
                st.store.as_ref(),
                &job.stream(),
                &JobCommand::AccrueCost,
                tick_command_id(job, lease.lease_id, lease.last_tick_ms),
                &meta,
                |_| Ok(()),
            )
            .await?;
            leases::ticked(&st.db, lease.lease_id, now).await?;
        }
    }
    Ok(())
}
