//! Process managers as projections: they fold the log like any read model,
//! but what they write is the outbox (`ftl_commands::outbox`), in the same
//! transaction as their checkpoint — an event is reacted to exactly when it
//! is applied. They own no tables of their own, and an intent's id derives
//! from its cause, so a rebuild that replays the whole log finds every
//! intent already there and enqueues nothing; dispatchers never see a
//! second copy.

use crate::runner::{Decoded, Projection, ProjectionError};
use crate::{DbTx, execute};
use async_trait::async_trait;
use chrono::Utc;
use ftl_commands::outbox::{ENQUEUE_SQL, enqueue_binds};
use ftl_domain::process::{REACTS_TO, react};

/// The rules of `ftl_domain::process`, applied to the log.
pub struct ReactionsProjection;

#[async_trait]
impl Projection for ReactionsProjection {
    fn name(&self) -> &'static str {
        "reactions"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn ddl(&self, _postgres: bool, _suffix: &str) -> String {
        String::new()
    }

    fn handles(&self, event_type: &str) -> bool {
        REACTS_TO.contains(&event_type)
    }

    async fn apply(
        &self,
        tx: &mut DbTx,
        _suffix: &str,
        events: &[Decoded],
    ) -> Result<(), ProjectionError> {
        let now = Utc::now().timestamp_millis();
        for d in events {
            for intent in react(&d.event) {
                let (id, kind, payload) =
                    enqueue_binds(&intent).map_err(|e| ProjectionError::Codec(e.to_string()))?;
                execute!(tx, ENQUEUE_SQL, id, kind, payload, d.position as i64, now)?;
            }
        }
        Ok(())
    }
}
