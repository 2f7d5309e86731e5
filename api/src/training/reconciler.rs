//! The reconciler: every `training.reconcile_ms` it turns expired leases
//! into recoveries (`LoseLease`) and charges running jobs for the time
//! since their last tick (`AccrueCost`, which also applies the budget
//! rules). Both commands are safe to repeat: a lease no longer held changes
//! nothing, and a tick covers only the time since the previous one.

use crate::state::AppState;
use chrono::Utc;
use ftl_commands::handler::handle;
use ftl_commands::leases;
use ftl_commands::store::Metadata;
use ftl_domain::job::managed::RecoveryCause;
use ftl_domain::job::{JobCommand, JobDecider};
use ftl_domain::{JobId, ProjectId};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

pub async fn run(st: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(st.config.training.reconcile_ms.max(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = reconcile_once(&st).await {
                    tracing::warn!(error = %e, "reconciling leases");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

pub async fn reconcile_once(st: &AppState) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_millis();
    let tick_ms = st.config.training.cost_tick_ms as i64;
    for lease in leases::all(&st.db).await? {
        let job = JobId(lease.job_id);
        let meta = Metadata {
            actor: Some("reconciler".into()),
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
                Uuid::new_v4(),
                &meta,
                |_| Ok(()),
            )
            .await?;
            leases::ticked(&st.db, lease.lease_id, now).await?;
        }
    }
    Ok(())
}
