//! The event store: one trait, several backends, one contract test suite
//! (`tests/tests/store_contract.rs`).

#[cfg(feature = "kurrentdb")]
pub mod kurrent;
pub mod postgres;
mod sql_reads;
pub mod sqlite;
mod subscribe;

pub use subscribe::{Subscription, subscribe_all};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ftl_domain::DomainEvent;
use ftl_domain::ids::ProjectId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::watch;
use uuid::Uuid;

/// What the writer believes about a stream's length before appending.
/// Versions are 0-based: the first event of a stream has version 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check (high-volume streams: metrics, logs, telemetry).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream holding `length` events satisfies this expectation.
    pub fn accepts(self, length: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => length == 0,
            Self::StreamExists => length > 0,
            Self::Exact(v) => length == v + 1,
        }
    }

    /// The expectation after reading a stream of `length` events.
    pub fn after_length(length: u64) -> Self {
        if length == 0 {
            Self::NoStream
        } else {
            Self::Exact(length - 1)
        }
    }
}

/// Who did what, and why: kept beside every event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    /// A digest of the request that chose `command_id` by an idempotency
    /// key: a retry under the same key must carry the same digest, or it is
    /// refused ([`ftl_domain::DomainError::IdempotencyKeyReused`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
}

/// An event ready to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Value,
    pub metadata: Metadata,
}

impl NewEvent {
    pub fn from_domain(event_id: Uuid, event: &DomainEvent, metadata: Metadata) -> Self {
        Self {
            event_id,
            event_type: event.event_type().to_string(),
            schema_version: event.schema_version(),
            payload: event.to_payload(),
            metadata,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: u64,
    pub global_position: u64,
    pub event_type: String,
    pub schema_version: u32,
    pub recorded_at: DateTime<Utc>,
    /// The payload as stored (JSON text). Parsed only by consumers that want
    /// this event: a projection skipping a 10,000-point metric batch never
    /// pays for parsing it.
    pub payload: String,
    pub metadata: Metadata,
}

impl RecordedEvent {
    pub fn payload_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.payload)
    }

    pub fn decode(&self) -> Result<DomainEvent, ftl_domain::EventCodecError> {
        DomainEvent::decode_text(&self.event_type, self.schema_version, &self.payload)
    }
}

/// The outcome of an append. A retried append of the same event ids returns
/// the original outcome with `deduplicated` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub first_position: u64,
    pub last_position: u64,
    /// Version of the last event appended.
    pub last_version: u64,
    pub deduplicated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "wrong expected version for {stream}: expected {expected:?}, stream has {actual} events"
    )]
    Conflict {
        stream: String,
        expected: ExpectedVersion,
        actual: u64,
    },
    #[error("event ids {0} were already used by a different append")]
    IdempotencyMismatch(String),
    #[error("invalid append: {0}")]
    Invalid(String),
    #[error("store backend: {0}")]
    Backend(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("json: {e}"))
    }
}

/// The largest batch one append accepts.
pub const MAX_APPEND_BATCH: usize = 50_000;

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends atomically: all events or none. Event ids are unique across the
    /// store; appending ids that already exist returns the original result.
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Events of one stream with version ≥ `from_version`, in version order.
    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Events of every stream with position > `after`, in global order.
    async fn read_all(&self, after: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_all_skipping(after, max, &[]).await
    }

    /// [`Self::read_all`], except that events of the `bodiless` types may
    /// come without their payload (empty text): a reader that skips those
    /// types spares the copy of every large batch. A backend may ignore the
    /// hint.
    async fn read_all_skipping(
        &self,
        after: u64,
        max: usize,
        bodiless: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The position of the newest committed event (0 when empty).
    async fn head_position(&self) -> Result<u64, StoreError>;

    /// Signals new appends (this process's and, where the backend can, others').
    /// The value is a position at least as new as the last append seen.
    fn wakeups(&self) -> watch::Receiver<u64>;

    fn backend_name(&self) -> &'static str;

    /// When every event after `after` is one this process appended and
    /// still remembers, and `skip` is true of all their types, the newest
    /// such position: a reader that ignores those types may move there
    /// without reading the log. `None` otherwise, and always where the
    /// backend keeps no such record (this default). Appends by other
    /// processes are never vouched for, so a reader still finds them by
    /// reading (as it must anyway: they do not wake it).
    fn skip_recent(&self, after: u64, skip: &dyn Fn(&str) -> bool) -> Option<u64> {
        let _ = (after, skip);
        None
    }
}

/// The read of the log in global order after `$1`, at most `$2` events;
/// events of `bodiless` types (bound as `$3`, `$4`, …) come without their
/// payload. `cast` turns PostgreSQL's JSONB into text.
pub(crate) fn read_all_sql(bodiless: usize, cast: &str) -> String {
    let payload = if bodiless == 0 {
        format!("payload{cast}")
    } else {
        let marks = (3..3 + bodiless)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(",");
        format!("CASE WHEN event_type IN ({marks}) THEN '' ELSE payload{cast} END")
    };
    format!(
        "SELECT global_position, event_id, stream_id, stream_version, event_type, schema_version, recorded_at, \
         {payload} AS payload, metadata{cast} AS metadata \
         FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2"
    )
}

/// The types of the events this process appended last, by position, so
/// readers that ignore them can pass them unread (see
/// [`EventStore::skip_recent`]). Bounded; appends may record out of order.
#[derive(Default)]
pub(crate) struct RecentAppends {
    types: std::sync::Mutex<std::collections::BTreeMap<u64, Arc<str>>>,
}

impl RecentAppends {
    /// Positions remembered at most.
    const CAPACITY: usize = 8192;

    pub(crate) fn record(&self, first: u64, events: &[NewEvent]) {
        let Ok(mut types) = self.types.lock() else {
            return;
        };
        let mut last: Option<(&str, Arc<str>)> = None;
        for (i, e) in events.iter().enumerate() {
            // Batches are mostly of one type: share its text.
            let t = match &last {
                Some((text, shared)) if *text == e.event_type => shared.clone(),
                _ => Arc::from(e.event_type.as_str()),
            };
            last = Some((&e.event_type, t.clone()));
            types.insert(first + i as u64, t);
        }
        while types.len() > Self::CAPACITY {
            types.pop_first();
        }
    }

    /// See [`EventStore::skip_recent`]; `head` is the newest position this
    /// process knows of.
    pub(crate) fn skip(&self, after: u64, head: u64, skip: &dyn Fn(&str) -> bool) -> Option<u64> {
        if head <= after {
            return None;
        }
        let types = self.types.lock().ok()?;
        let mut expect = after + 1;
        for (&pos, t) in types.range(expect..=head) {
            if pos != expect || !skip(t) {
                return None;
            }
            expect += 1;
        }
        (expect == head + 1).then_some(head)
    }
}

pub type DynStore = Arc<dyn EventStore>;

/// Reads a whole stream (lifecycle streams are short by design).
pub async fn read_full_stream(
    store: &dyn EventStore,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut out = Vec::new();
    loop {
        let batch = store.read_stream(stream_id, out.len() as u64, 1000).await?;
        let done = batch.len() < 1000;
        out.extend(batch);
        if done {
            return Ok(out);
        }
    }
}

/// Whether a JSON value holds U+0000 in any string or key.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Refuses events whose text holds U+0000 (NUL). PostgreSQL stores neither
/// it in `TEXT` nor its escape in `JSONB`, so such an event would fail its
/// append there, or — once in the log — stop every projection that writes
/// the text, on every later event. Refused at the door on every backend,
/// so the log is the same whichever one is used.
pub fn refuse_nul(events: &[NewEvent]) -> Result<(), ftl_domain::DomainError> {
    let nul = events.iter().any(|e| {
        has_nul(&e.payload) || serde_json::to_value(&e.metadata).is_ok_and(|m| has_nul(&m))
    });
    if nul {
        return Err(ftl_domain::DomainError::invalid(
            "input",
            "text must not contain the NUL character (U+0000)",
        ));
    }
    Ok(())
}

pub(crate) fn validate_batch(events: &[NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Err(StoreError::Invalid("no events to append".into()));
    }
    refuse_nul(events).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if events.len() > MAX_APPEND_BATCH {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_APPEND_BATCH} events per append"
        )));
    }
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    ids.sort_unstable();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::Invalid(
            "duplicate event id within one append".into(),
        ));
    }
    Ok(())
}

/// Given the rows already stored under a batch's event ids, decide whether the
/// append is a retry (same ids, same stream, all present) and rebuild its result.
pub(crate) fn replayed_result(
    stream_id: &str,
    events: &[NewEvent],
    existing: &[(Uuid, String, u64, u64)],
) -> Result<Option<AppendResult>, StoreError> {
    if existing.is_empty() {
        return Ok(None);
    }
    let same = existing.len() == events.len() && existing.iter().all(|(_, s, _, _)| s == stream_id);
    if !same {
        let ids: Vec<String> = existing.iter().map(|(id, ..)| id.to_string()).collect();
        return Err(StoreError::IdempotencyMismatch(ids.join(",")));
    }
    let first = existing.iter().map(|e| e.2).min().unwrap_or(0);
    let last = existing.iter().map(|e| e.2).max().unwrap_or(0);
    let last_version = existing.iter().map(|e| e.3).max().unwrap_or(0);
    Ok(Some(AppendResult {
        first_position: first,
        last_position: last,
        last_version,
        deduplicated: true,
    }))
}

#[cfg(test)]
mod tests;
