//! Outbox consumers: one per intent kind. Each polls for due intents,
//! claims them under a lease (so several `serve` processes share the work
//! without doing an intent twice at once), carries each out, and settles it
//! with `ftl_domain::process::settle` (done, retry with backoff, or dead
//! letter). Carrying out is idempotent, so an intent whose lease ran out
//! mid-way and is tried again does no harm.

mod register_model;

use crate::Effects;
use chrono::Utc;
use ftl_commands::outbox;
use ftl_domain::process::{Intent, Outcome, settle};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// How often a dispatcher looks for due intents.
const POLL: Duration = Duration::from_millis(200);
/// How long a claim holds an intent before another process may take it.
const LEASE_MS: i64 = 60_000;
/// Intents claimed per poll.
const BATCH: i64 = 16;

/// Runs the dispatchers until `shutdown`.
pub async fn run(fx: Effects, mut shutdown: watch::Receiver<bool>) {
    let owner = format!(
        "dispatcher:{}-{}",
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = dispatch_once(&fx, &owner).await {
                    tracing::warn!(error = %e, "dispatching intents");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// One pass: claims what is due of every kind and carries it out.
/// Returns how many intents were settled.
pub async fn dispatch_once(fx: &Effects, owner: &str) -> Result<usize, sqlx::Error> {
    let mut settled = 0;
    for kind in ["register_model"] {
        let now = Utc::now().timestamp_millis();
        for item in outbox::claim(&fx.db, kind, owner, now, LEASE_MS, BATCH).await? {
            let outcome = match item.intent() {
                Ok(intent) => carry_out(fx, intent).await,
                Err(e) => Outcome::Permanent(format!("undecodable intent: {e}")),
            };
            if let Outcome::Transient(e) | Outcome::Permanent(e) = &outcome {
                tracing::warn!(intent = %item.intent_id, kind, error = %e, "an intent failed");
            }
            let attempt = u32::try_from(item.attempts).unwrap_or(u32::MAX);
            let now = Utc::now().timestamp_millis();
            let s = settle(outcome, attempt, now);
            if outbox::settle(&fx.db, item.intent_id, owner, &s, now).await? {
                settled += 1;
            }
        }
    }
    Ok(settled)
}

async fn carry_out(fx: &Effects, intent: Intent) -> Outcome {
    match intent {
        Intent::RegisterModel { job_id } => register_model::carry_out(fx, job_id).await,
    }
}
