//! Catch-up then live subscription over any store: read from a position until
//! caught up, then wait for wake-ups (with a polling fallback) and go on.

use super::{EventStore, RecordedEvent, StoreError};
use futures::Stream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub type Subscription =
    std::pin::Pin<Box<dyn Stream<Item = Result<RecordedEvent, StoreError>> + Send>>;

/// Every event with position > `after`, in global order, then every new one as
/// it is committed. The stream ends when the receiver is dropped.
pub fn subscribe_all(store: Arc<dyn EventStore>, after: u64, poll: Duration) -> Subscription {
    let (tx, rx) = mpsc::channel::<Result<RecordedEvent, StoreError>>(1024);
    tokio::spawn(async move {
        let mut wake = store.wakeups();
        let mut position = after;
        loop {
            match store.read_all(position, 1000).await {
                Ok(batch) => {
                    let caught_up = batch.len() < 1000;
                    for e in batch {
                        position = e.global_position;
                        if tx.send(Ok(e)).await.is_err() {
                            return;
                        }
                    }
                    if !caught_up {
                        continue;
                    }
                }
                Err(e) => {
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(poll).await;
                    continue;
                }
            }
            tokio::select! {
                _ = wake.changed() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Box::pin(tokio_stream_from(rx))
}

fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
