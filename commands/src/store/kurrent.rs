//! KurrentDB (formerly EventStoreDB), for teams that already run it.
//!
//! Mapping: our stream ids are KurrentDB stream names; stream versions are
//! revisions (both 0-based); the global position is the commit position in
//! `$all`; event ids are KurrentDB event ids, so its own idempotent-write check
//! deduplicates retried appends; `schema_version` and our metadata travel in
//! the custom metadata. System events (`$`-prefixed) are skipped on read-all.

use super::*;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, Position,
    ReadAllOptions, ReadStreamOptions, StreamPosition, StreamState, SubscribeToAllOptions,
    SubscriptionEvent,
};

pub struct KurrentEventStore {
    client: Client,
    wake: watch::Sender<u64>,
    listener: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for KurrentEventStore {
    fn drop(&mut self) {
        if let Some(h) = self.listener.take() {
            h.abort();
        }
    }
}

/// Custom metadata stored with each event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredMeta {
    schema_version: u32,
    #[serde(flatten)]
    metadata: Metadata,
}

pub(crate) fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream => StreamState::NoStream,
        ExpectedVersion::StreamExists => StreamState::StreamExists,
        ExpectedVersion::Exact(v) => StreamState::StreamRevision(v),
    }
}

/// Number of events in a stream from the revision KurrentDB reports.
pub(crate) fn length_of(current: CurrentRevision) -> u64 {
    match current {
        CurrentRevision::NoStream => 0,
        CurrentRevision::Current(r) => r + 1,
    }
}

/// Where to start reading `$all` to see events after `after` (0 = the start).
/// KurrentDB reads from a position inclusively; the caller skips `after` itself.
pub(crate) fn start_after(after: u64) -> StreamPosition<Position> {
    if after == 0 {
        StreamPosition::Start
    } else {
        StreamPosition::Position(Position {
            commit: after,
            prepare: after,
        })
    }
}

pub(crate) fn is_system(stream_id: &str, event_type: &str) -> bool {
    stream_id.starts_with('$') || event_type.starts_with('$')
}

pub(crate) fn encode_meta(e: &NewEvent) -> StoredMeta {
    StoredMeta {
        schema_version: e.schema_version,
        metadata: e.metadata.clone(),
    }
}

pub(crate) fn decode_meta(bytes: &[u8]) -> Result<StoredMeta, StoreError> {
    if bytes.is_empty() {
        return Ok(StoredMeta {
            schema_version: 1,
            metadata: Metadata::default(),
        });
    }
    Ok(serde_json::from_slice(bytes)?)
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("kurrentdb: {e}"))
}

fn to_recorded(e: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, StoreError> {
    let meta = decode_meta(&e.custom_metadata)?;
    Ok(RecordedEvent {
        event_id: e.id,
        stream_id: e.stream_id().to_string(),
        stream_version: e.revision,
        global_position: e.position.commit,
        event_type: e.event_type.clone(),
        schema_version: meta.schema_version,
        recorded_at: e.created,
        payload: String::from_utf8(e.data.to_vec())
            .map_err(|err| StoreError::Backend(format!("event payload is not UTF-8: {err}")))?,
        metadata: meta.metadata,
    })
}

impl KurrentEventStore {
    /// Connects with a connection string such as `kurrentdb://127.0.0.1:2113?tls=false`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let settings: ClientSettings = url.parse().map_err(backend)?;
        let client = Client::new(settings).map_err(backend)?;
        let wake = watch::Sender::new(0u64);
        let tx = wake.clone();
        let sub_client = client.clone();
        let listener = tokio::spawn(async move {
            let mut sub = sub_client
                .subscribe_to_all(&SubscribeToAllOptions::default().position(StreamPosition::End))
                .await;
            loop {
                match sub.next_subscription_event().await {
                    Ok(SubscriptionEvent::EventAppeared(ev)) => {
                        let pos = ev.get_original_event().position.commit;
                        tx.send_modify(|h| *h = (*h).max(pos));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "kurrentdb subscription interrupted");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Self {
            client,
            wake,
            listener: Some(listener),
        })
    }
}

#[async_trait]
impl EventStore for KurrentEventStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        validate_batch(&events)?;
        let n = events.len() as u64;
        let data = events
            .iter()
            .map(|e| {
                EventData::json(e.event_type.clone(), &e.payload)?
                    .id(e.event_id)
                    .metadata_as_json(&encode_meta(e))
            })
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        let options = AppendToStreamOptions::default().stream_state(stream_state(expected));
        match self
            .client
            .append_to_stream(stream_id.to_string(), &options, data)
            .await
        {
            Ok(w) => {
                let last = w.position.commit;
                self.wake.send_modify(|h| *h = (*h).max(last));
                Ok(AppendResult {
                    first_position: last,
                    last_position: last,
                    last_version: w.next_expected_version,
                    deduplicated: false,
                })
            }
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                Err(StoreError::Conflict {
                    stream: stream_id.to_string(),
                    expected,
                    actual: length_of(current),
                })
            }
            Err(e) => Err(backend(format!("append of {n} events: {e}"))),
        }
    }

    async fn read_stream(
        &self,
        stream_id: &str,
        from_version: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from_version))
            .max_count(max);
        let mut stream = match self
            .client
            .read_stream(stream_id.to_string(), &options)
            .await
        {
            Ok(s) => s,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(vec![]),
            Err(e) => return Err(backend(e)),
        };
        let mut out = Vec::new();
        loop {
            match stream.next().await {
                Ok(Some(ev)) => out.push(to_recorded(ev.get_original_event())?),
                Ok(None) => return Ok(out),
                Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    /// Reads whole events (the `bodiless` hint is not used here).
    async fn read_all_skipping(
        &self,
        after: u64,
        max: usize,
        _bodiless: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::new();
        let mut from = after;
        // System events are skipped, so keep reading until `max` of ours or the end.
        loop {
            let options = ReadAllOptions::default()
                .forwards()
                .position(start_after(from))
                .max_count(max + 1);
            let mut stream = self.client.read_all(&options).await.map_err(backend)?;
            let mut seen = 0;
            while let Some(ev) = stream.next().await.map_err(backend)? {
                seen += 1;
                let e = ev.get_original_event();
                from = from.max(e.position.commit);
                if e.position.commit <= after || is_system(e.stream_id(), &e.event_type) {
                    continue;
                }
                out.push(to_recorded(e)?);
                if out.len() == max {
                    return Ok(out);
                }
            }
            if seen <= max {
                return Ok(out);
            }
        }
    }

    async fn head_position(&self) -> Result<u64, StoreError> {
        let options = ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(64);
        let mut stream = self.client.read_all(&options).await.map_err(backend)?;
        while let Some(ev) = stream.next().await.map_err(backend)? {
            let e = ev.get_original_event();
            if !is_system(e.stream_id(), &e.event_type) {
                return Ok(e.position.commit);
            }
        }
        Ok(0)
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn backend_name(&self) -> &'static str {
        "kurrentdb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_versions_map_to_stream_states() {
        assert_eq!(stream_state(ExpectedVersion::Any), StreamState::Any);
        assert_eq!(
            stream_state(ExpectedVersion::NoStream),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::StreamExists),
            StreamState::StreamExists
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(4)),
            StreamState::StreamRevision(4)
        );
    }

    #[test]
    fn conflict_reports_stream_length() {
        assert_eq!(length_of(CurrentRevision::NoStream), 0);
        assert_eq!(length_of(CurrentRevision::Current(0)), 1);
        assert_eq!(length_of(CurrentRevision::Current(9)), 10);
        // The reported length is what ExpectedVersion::accepts compares against.
        assert!(ExpectedVersion::Exact(9).accepts(length_of(CurrentRevision::Current(9))));
    }

    #[test]
    fn read_all_starts_at_the_checkpoint() {
        assert!(matches!(start_after(0), StreamPosition::Start));
        match start_after(1234) {
            StreamPosition::Position(p) => assert_eq!((p.commit, p.prepare), (1234, 1234)),
            _ => panic!("expected a position"),
        }
    }

    #[test]
    fn metadata_round_trips_with_schema_version() {
        let e = NewEvent {
            event_id: Uuid::from_u128(7),
            event_type: "job.created".into(),
            schema_version: 2,
            payload: serde_json::json!({}),
            metadata: Metadata {
                actor: Some("key:abc".into()),
                correlation_id: Some(Uuid::from_u128(9)),
                ..Default::default()
            },
        };
        let bytes = serde_json::to_vec(&encode_meta(&e)).unwrap();
        let back = decode_meta(&bytes).unwrap();
        assert_eq!(back.schema_version, 2);
        assert_eq!(back.metadata, e.metadata);
        assert_eq!(decode_meta(b"").unwrap().schema_version, 1);
    }

    #[test]
    fn system_events_are_not_ours() {
        assert!(is_system("$stats-127.0.0.1:2113", "$statsCollected"));
        assert!(is_system("job-1", "$metadata"));
        assert!(!is_system("job-1", "job.created"));
    }
}
