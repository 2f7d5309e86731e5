//! Process managers: what the system does because something happened. Each
//! rule is pure — `react` turns an event into intents; the dispatcher that
//! carries an intent out reports an [`Outcome`], and [`settle`] says what
//! becomes of the intent (done, tried again later, or dead-lettered).
//!
//! Intents are idempotent by construction: an intent's id derives from what
//! caused it, so replaying the log (a projection rebuild) yields the same
//! ids, which the outbox already holds; and a dispatcher's commands carry a
//! command id derived from the intent, so a retry appends nothing twice.

use crate::events::DomainEvent;
use crate::ids::JobId;
use crate::job::JobEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of intent ids (UUIDv5 over the cause).
const INTENT_NAMESPACE: Uuid = Uuid::from_u128(0x5f0c_1a7e_0b6d_4c2e_9f3a_7d21_8e44_b901);

/// Something to be done outside the log because of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// Register a succeeded training job's final checkpoint as a model.
    RegisterModel { job_id: JobId },
}

impl Intent {
    /// The outbox's `kind` column (one dispatcher per kind).
    pub fn kind(&self) -> &'static str {
        match self {
            Intent::RegisterModel { .. } => "register_model",
        }
    }

    /// A stable id: the same cause always gives the same intent.
    pub fn id(&self) -> Uuid {
        match self {
            Intent::RegisterModel { job_id } => Uuid::new_v5(
                &INTENT_NAMESPACE,
                format!("register_model/{}", job_id.0).as_bytes(),
            ),
        }
    }
}

/// Event types any rule reacts to (the process-manager projection skips the
/// others undecoded).
pub const REACTS_TO: &[&str] = &["job.succeeded"];

/// The intents an event causes.
pub fn react(event: &DomainEvent) -> Vec<Intent> {
    match event {
        DomainEvent::Job(JobEvent::Succeeded(e)) => {
            vec![Intent::RegisterModel { job_id: e.job_id }]
        }
        _ => vec![],
    }
}

/// What a dispatcher's attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done (or found already done, or nothing to do).
    Done,
    /// Failed in a way that may pass (a store or network error).
    Transient(String),
    /// Failed in a way no retry mends (bad payload, a missing prerequisite).
    Permanent(String),
}

/// What becomes of an intent after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Done,
    /// Try again at `at_ms`.
    Retry {
        at_ms: i64,
        error: String,
    },
    /// No more tries: kept in the outbox with its error for an operator.
    Dead {
        error: String,
    },
}

/// Attempts before a transient failure is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 8;
/// First retry delay; each later one doubles, up to [`MAX_BACKOFF_MS`].
pub const FIRST_BACKOFF_MS: i64 = 1_000;
pub const MAX_BACKOFF_MS: i64 = 5 * 60 * 1_000;

/// The delay before retry number `attempt` (1 = after the first failure).
pub fn backoff_ms(attempt: u32) -> i64 {
    let doublings = attempt.saturating_sub(1).min(20);
    (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS)
}

/// Settles attempt number `attempt` (counting from 1) made at `now_ms`.
pub fn settle(outcome: Outcome, attempt: u32, now_ms: i64) -> Settlement {
    match outcome {
        Outcome::Done => Settlement::Done,
        Outcome::Permanent(error) => Settlement::Dead { error },
        Outcome::Transient(error) if attempt >= MAX_ATTEMPTS => Settlement::Dead {
            error: format!("gave up after {attempt} attempts: {error}"),
        },
        Outcome::Transient(error) => Settlement::Retry {
            at_ms: now_ms + backoff_ms(attempt),
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobSucceeded;

    #[test]
    fn a_success_asks_for_its_model_once_per_job() {
        let job = JobId(Uuid::from_u128(7));
        let e = DomainEvent::Job(JobEvent::Succeeded(JobSucceeded { job_id: job }));
        let intents = react(&e);
        assert_eq!(intents, vec![Intent::RegisterModel { job_id: job }]);
        // A replay of the same event gives the same id; another job another.
        assert_eq!(react(&e)[0].id(), intents[0].id());
        let other = Intent::RegisterModel {
            job_id: JobId(Uuid::from_u128(8)),
        };
        assert_ne!(other.id(), intents[0].id());
        let json = serde_json::to_value(&intents[0]).unwrap();
        assert_eq!(json["kind"], "register_model");
        assert_eq!(serde_json::from_value::<Intent>(json).unwrap(), intents[0]);
    }

    #[test]
    fn failures_back_off_doubling_then_dead_letter() {
        // 1 s, 2 s, 4 s, … capped at 5 min (hand-computed).
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(9), 256_000);
        assert_eq!(backoff_ms(10), 300_000);
        assert_eq!(backoff_ms(u32::MAX), 300_000);
        assert_eq!(
            settle(Outcome::Transient("db".into()), 3, 10_000),
            Settlement::Retry {
                at_ms: 14_000,
                error: "db".into()
            }
        );
        assert!(matches!(
            settle(Outcome::Transient("db".into()), MAX_ATTEMPTS, 0),
            Settlement::Dead { .. }
        ));
        assert_eq!(
            settle(Outcome::Permanent("no checkpoint".into()), 1, 0),
            Settlement::Dead {
                error: "no checkpoint".into()
            }
        );
        assert_eq!(settle(Outcome::Done, 1, 0), Settlement::Done);
    }
}
