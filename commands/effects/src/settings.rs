//! The settings of the write side's effects: the database, the event store,
//! the projection runners, artifact storage, training, secrets and outbound
//! model calls. The service's configuration (`ftl-api`) holds these sections
//! beside its own (server, limits, log) and hands them over as [`Settings`].

use serde::{Deserialize, Serialize};

/// Every section the effects read, as the service's configuration holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub database: DatabaseConfig,
    pub store: StoreConfig,
    pub projections: ProjectionsConfig,
    pub artifacts: ArtifactsConfig,
    pub training: TrainingConfig,
    pub secrets: SecretsConfig,
    pub external_models: ExternalModelsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// 32 random bytes, base64 (`finetune-lab keygen` prints one): the key
    /// that seals API keys of external models before they are stored
    /// (AES-256-GCM). Unset: models that need an API key are refused.
    pub encryption_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalModelsConfig {
    /// Non-public networks external endpoints may be in, as CIDRs (e.g.
    /// `10.0.0.0/8` for a vLLM on the LAN, `127.0.0.1/32` for a local
    /// Ollama). Empty: public addresses only (no SSRF into the network).
    pub allowed_networks: Vec<String>,
    /// Longest wait for a provider's next bytes (s).
    pub timeout_s: u64,
}

impl Default for ExternalModelsConfig {
    fn default() -> Self {
        Self {
            allowed_networks: vec![],
            timeout_s: 120,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// Workers `serve` runs in-process for the local provider (0: none; run
    /// `finetune-lab worker` processes instead).
    pub local_workers: usize,
    /// How often a worker reports it is alive (ms).
    pub heartbeat_ms: u64,
    /// How often a worker sends its buffered metrics and log lines (ms):
    /// batched, so training never waits on the network.
    pub report_ms: u64,
    /// A lease expires this long after the last heartbeat (ms); the job is
    /// then recovered from its last checkpoint.
    pub lease_ms: u64,
    /// How often spend is charged as a `job.cost_accrued` event (ms).
    pub cost_tick_ms: u64,
    /// How often the reconciler looks for expired leases and due ticks (ms).
    pub reconcile_ms: u64,
    /// $/hour charged for training on this machine's CPU.
    pub local_rate_usd_per_hour: f64,
    /// A GPU/price catalog file replacing the built-in one.
    pub gpu_catalog: Option<String>,
    /// Largest dataset file accepted by an upload or read in place.
    pub max_dataset_bytes: u64,
    /// URL prefixes a dataset may be registered from in place, e.g.
    /// `s3://team-data/` or `file:///srv/datasets/`. Empty: uploads only.
    pub dataset_sources: Vec<String>,
    /// Telemetry (CPU %, RSS, GPU) sampling interval of workers (ms).
    pub telemetry_ms: u64,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            local_workers: 1,
            heartbeat_ms: 2_000,
            report_ms: 1_000,
            lease_ms: 30_000,
            cost_tick_ms: 10_000,
            reconcile_ms: 1_000,
            local_rate_usd_per_hour: 0.0,
            gpu_catalog: None,
            max_dataset_bytes: 512 * 1024 * 1024,
            dataset_sources: vec![],
            telemetry_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ArtifactsConfig {
    /// Where artifact files live (MLflow artifacts, checkpoints, uploaded
    /// datasets): a folder, or `s3://bucket/prefix` (any S3-compatible
    /// service), `gs://bucket/prefix`, `az://container/prefix`.
    pub root: String,
    /// Options for bucket locations, named as object_store names them
    /// (`aws_endpoint`, `aws_region`, `aws_allow_http`, `google_…`,
    /// `azure_…`); credentials come from the providers' usual environment.
    pub options: std::collections::BTreeMap<String, String>,
    /// Largest single file accepted by an upload.
    pub max_file_bytes: u64,
}

impl Default for ArtifactsConfig {
    fn default() -> Self {
        Self {
            root: "./data/artifacts".into(),
            options: Default::default(),
            max_file_bytes: 20 * 1024 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` (embedded default) or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    /// SQLite `synchronous` for appends to the log: `full` (default: survives
    /// power loss) or `normal` (survives a process crash). Read models always
    /// commit at `normal` (they are rebuilt from the log).
    pub sqlite_synchronous: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite:./data/finetune-lab.db".into(),
            max_connections: 16,
            sqlite_synchronous: "full".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sql`: events in the database above. `kurrentdb`: events in KurrentDB
    /// (needs the `kurrentdb` build feature), read models in the database.
    pub backend: String,
    pub kurrentdb_url: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: "sql".into(),
            kurrentdb_url: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionsConfig {
    /// Polling fallback when no wake-up arrives (ms).
    pub poll_ms: u64,
    /// How long a mutation waits for the read models to show its write (ms).
    pub read_your_writes_timeout_ms: u64,
    /// `/readyz` fails while any projection lags by more events than this.
    pub ready_max_lag: u64,
    /// Run projection runners in this process.
    pub run: bool,
    /// SQLite: how long a runner woken by an append waits for more before
    /// applying, so a trickle of small appends (one metric per call) shares
    /// a read-model transaction (ms; 0 applies each at once). A reader
    /// waiting for its own write is never held up by it.
    pub linger_ms: u64,
}

impl Default for ProjectionsConfig {
    fn default() -> Self {
        Self {
            poll_ms: 1000,
            read_your_writes_timeout_ms: 10_000,
            ready_max_lag: 10_000,
            run: true,
            linger_ms: 10,
        }
    }
}
