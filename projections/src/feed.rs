//! The change feed behind GraphQL subscriptions: one tail of the global log
//! per process, fanned out on a broadcast channel. Consumers filter what they
//! want and wait for the read models to reach an event before re-reading.
//! Because it tails the log rather than the runner, it works in every process
//! whichever one runs the projections.

use crate::runner::Decoded;
use ftl_commands::store::{DynStore, subscribe_all};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct ChangeFeed {
    tx: broadcast::Sender<Arc<Decoded>>,
    task: Arc<tokio::task::AbortHandle>,
}

impl ChangeFeed {
    /// Starts tailing from the current head. Only job events are fanned out.
    pub async fn start(store: DynStore, poll: Duration) -> Result<Self, ftl_commands::StoreError> {
        let (tx, _) = broadcast::channel(4096);
        let head = store.head_position().await?;
        let sender = tx.clone();
        let task = tokio::spawn(async move {
            let mut events = subscribe_all(store, head, poll);
            while let Some(item) = events.next().await {
                match item {
                    // Nobody listening: nothing to decode (a large metric
                    // batch costs as much to decode as to project).
                    Ok(e) if e.event_type.starts_with("job.") && sender.receiver_count() > 0 => {
                        match Decoded::from_recorded(&e) {
                            Ok(d) => {
                                let _ = sender.send(Arc::new(d));
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "change feed skipped an unreadable event")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "change feed read failed; retrying"),
                }
            }
        });
        Ok(Self {
            tx,
            task: Arc::new(task.abort_handle()),
        })
    }

    /// Stops tailing (at shutdown, before the pools close).
    pub fn stop(&self) {
        self.task.abort();
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Decoded>> {
        self.tx.subscribe()
    }
}
