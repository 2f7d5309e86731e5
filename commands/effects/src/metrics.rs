//! Prometheus metrics of the whole process (one registry: the edge's
//! request timings, the store, projections and leadership), and the store
//! wrapper that counts appends.

use async_trait::async_trait;
use ftl_commands::store::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectionLabels {
    pub projection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub appended_events: Counter,
    pub appends: Family<OutcomeLabels, Counter>,
    pub request_seconds: Family<RequestLabels, Histogram>,
    pub projection_lag: Family<ProjectionLabels, Gauge>,
    pub projection_position: Family<ProjectionLabels, Gauge>,
    /// 1 while this process leads a role (e.g. the reconciler), else 0.
    pub leader: Family<RoleLabels, Gauge>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("ftl");
        let appended_events = Counter::default();
        registry.register(
            "events_appended",
            "Events appended to the store",
            appended_events.clone(),
        );
        let appends = Family::<OutcomeLabels, Counter>::default();
        registry.register("appends", "Append calls by outcome", appends.clone());
        let request_seconds = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            request_seconds.clone(),
        );
        let projection_lag = Family::<ProjectionLabels, Gauge>::default();
        registry.register(
            "projection_lag_events",
            "Events between the log head and a projection",
            projection_lag.clone(),
        );
        let projection_position = Family::<ProjectionLabels, Gauge>::default();
        registry.register(
            "projection_position",
            "Checkpoint of a projection",
            projection_position.clone(),
        );
        let leader = Family::<RoleLabels, Gauge>::default();
        registry.register(
            "leader",
            "Whether this process leads a role (1) or stands by (0)",
            leader.clone(),
        );
        Arc::new(Self {
            registry,
            leader,
            appended_events,
            appends,
            request_seconds,
            projection_lag,
            projection_position,
        })
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// An event store that counts what goes through it.
pub struct InstrumentedStore {
    pub inner: Arc<dyn EventStore>,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl EventStore for InstrumentedStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let n = events.len() as u64;
        let r = self.inner.append(stream_id, expected, events).await;
        let outcome = match &r {
            Ok(a) if a.deduplicated => "deduplicated",
            Ok(_) => {
                self.metrics.appended_events.inc_by(n);
                "ok"
            }
            Err(StoreError::Conflict { .. }) => "conflict",
            Err(_) => "error",
        };
        self.metrics
            .appends
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        r
    }
    async fn read_stream(
        &self,
        s: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(s, from, max).await
    }
    async fn read_all_skipping(
        &self,
        after: u64,
        max: usize,
        bodiless: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all_skipping(after, max, bodiless).await
    }
    async fn head_position(&self) -> Result<u64, StoreError> {
        self.inner.head_position().await
    }
    fn wakeups(&self) -> watch::Receiver<u64> {
        self.inner.wakeups()
    }
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    fn skip_recent(&self, after: u64, skip: &dyn Fn(&str) -> bool) -> Option<u64> {
        self.inner.skip_recent(after, skip)
    }
}
