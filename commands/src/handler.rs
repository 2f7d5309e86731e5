//! Command handling: load the stream, fold, decide, append with the expected
//! version; on a concurrent write, retry a bounded number of times.
//!
//! The result keeps a rejected command (`DomainError`) apart from a broken
//! store (`StoreError`), so the API can answer 4xx vs 5xx correctly.

use crate::store::{
    AppendResult, EventStore, ExpectedVersion, Metadata, NewEvent, StoreError, read_full_stream,
};
use chrono::Utc;
use ftl_domain::ids::derive_event_id;
use ftl_domain::{AggregateEvent, Decider, DomainError, EventCodecError};
use uuid::Uuid;

/// Conflicting concurrent writers are retried this many times before giving up.
pub const MAX_CONFLICT_RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored event unreadable: {0}")]
    Codec(#[from] EventCodecError),
}

/// What a handled command did.
#[derive(Debug, Clone)]
pub struct Handled<E> {
    pub events: Vec<E>,
    /// Where the new events landed; `None` when the command changed nothing.
    pub append: Option<AppendResult>,
}

impl<E> Handled<E> {
    /// The position read models must reach before the caller reads its write.
    pub fn position(&self) -> u64 {
        self.append.map(|a| a.last_position).unwrap_or(0)
    }
}

/// Handles one command against one stream. `guard` may reject the command
/// from the current state before the decider sees it.
///
/// `command_id` makes the command idempotent: the events it produces get ids
/// derived from it, so a retry (same id) finds them already stored and returns
/// the original outcome instead of deciding again.
pub async fn handle<D>(
    store: &dyn EventStore,
    stream_id: &str,
    command: &D::Command,
    command_id: Uuid,
    metadata: &Metadata,
    guard: impl Fn(&D::State) -> Result<(), DomainError>,
) -> Result<Handled<D::Event>, CommandError>
where
    D: Decider,
    D::Event: AggregateEvent,
{
    let first_id = derive_event_id(command_id, 0);
    let mut attempt = 0;
    loop {
        let stored = read_full_stream(store, stream_id).await?;
        let history = decode_all::<D::Event>(&stored)?;
        let state = D::fold(history.iter());
        // Authorisation-style checks (e.g. "the job is in the caller's
        // project") run before anything else, retries included.
        guard(&state)?;
        if let Some(i) = stored.iter().position(|e| e.event_id == first_id) {
            same_request(&stored[i].metadata, metadata)?;
            return replay::<D>(&stored, i, command_id);
        }
        let decided = D::decide(&state, command, Utc::now())?;
        if decided.is_empty() {
            return Ok(Handled {
                events: vec![],
                append: None,
            });
        }
        let mut meta = metadata.clone();
        meta.command_id = Some(command_id);
        let new: Vec<NewEvent> = decided
            .iter()
            .enumerate()
            .map(|(i, e)| {
                NewEvent::from_domain(
                    derive_event_id(command_id, i),
                    &e.clone().into_domain(),
                    meta.clone(),
                )
            })
            .collect();
        crate::store::refuse_nul(&new)?;
        match store
            .append(
                stream_id,
                ExpectedVersion::after_length(stored.len() as u64),
                new,
            )
            .await
        {
            Ok(append) => {
                return Ok(Handled {
                    events: decided,
                    append: Some(append),
                });
            }
            Err(StoreError::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                attempt += 1;
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Refuses a retry whose request differs from the one that first used its
/// idempotency key. Events written before digests were kept (none stored)
/// pass, as does a caller that sends no digest.
pub fn same_request(stored: &Metadata, retry: &Metadata) -> Result<(), DomainError> {
    match (&stored.request_digest, &retry.request_digest) {
        (Some(a), Some(b)) if a != b => Err(DomainError::IdempotencyKeyReused),
        _ => Ok(()),
    }
}

/// Appends events whose ids come from a command id (no decider: feedback,
/// log lines, metric batches). A retry finds them stored and returns the
/// first outcome, `deduplicated` — after checking that it carries the same
/// request digest as the events it found; event ids already used elsewhere
/// (another stream, another count) are a reused key too.
pub async fn append_once(
    store: &dyn EventStore,
    stream_id: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<AppendResult, CommandError> {
    crate::store::refuse_nul(&events)?;
    let n = events.len() as u64;
    let retry_meta = events.first().map(|e| e.metadata.clone());
    let appended = match store.append(stream_id, expected, events).await {
        Ok(a) => a,
        Err(StoreError::IdempotencyMismatch(_)) => {
            return Err(DomainError::IdempotencyKeyReused.into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(meta) = retry_meta.filter(|m| appended.deduplicated && m.request_digest.is_some()) {
        let first_version = appended.last_version.saturating_sub(n.saturating_sub(1));
        let found = store.read_stream(stream_id, first_version, 1).await?;
        if let Some(first) = found.first() {
            same_request(&first.metadata, &meta)?;
        }
    }
    Ok(appended)
}

/// Appends one batch of metric points to a job's metric stream (no version
/// check: the high-volume path). The event id comes from `command_id`, so a
/// retried command appends nothing and reports `deduplicated`.
pub async fn append_metrics(
    store: &dyn EventStore,
    job: ftl_domain::JobId,
    points: Vec<ftl_domain::metrics::MetricPoint>,
    command_id: Uuid,
    metadata: &Metadata,
) -> Result<AppendResult, CommandError> {
    let mut meta = metadata.clone();
    meta.command_id = Some(command_id);
    let event = ftl_domain::DomainEvent::MetricsLogged(ftl_domain::metrics::MetricsLogged {
        job_id: job,
        points,
    });
    append_once(
        store,
        &job.metrics_stream(),
        ExpectedVersion::Any,
        vec![NewEvent::from_domain(
            derive_event_id(command_id, 0),
            &event,
            meta,
        )],
    )
    .await
}

fn decode_all<E: AggregateEvent>(stored: &[crate::RecordedEvent]) -> Result<Vec<E>, CommandError> {
    let mut out = Vec::with_capacity(stored.len());
    for e in stored {
        if let Some(ev) = E::from_domain(e.decode()?) {
            out.push(ev);
        }
    }
    Ok(out)
}

/// Rebuilds the outcome of a command already applied (a client retry).
fn replay<D>(
    stored: &[crate::RecordedEvent],
    start: usize,
    command_id: Uuid,
) -> Result<Handled<D::Event>, CommandError>
where
    D: Decider,
    D::Event: AggregateEvent,
{
    let mine: Vec<&crate::RecordedEvent> = stored[start..]
        .iter()
        .enumerate()
        .take_while(|(i, e)| e.event_id == derive_event_id(command_id, *i))
        .map(|(_, e)| e)
        .collect();
    let events = decode_all::<D::Event>(&mine.iter().map(|e| (*e).clone()).collect::<Vec<_>>())?;
    let first = mine.first().map(|e| e.global_position).unwrap_or(0);
    let last = mine
        .last()
        .map(|e| (e.global_position, e.stream_version))
        .unwrap_or((0, 0));
    Ok(Handled {
        events,
        append: Some(AppendResult {
            first_position: first,
            last_position: last.0,
            last_version: last.1,
            deduplicated: true,
        }),
    })
}
