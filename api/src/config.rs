//! Configuration: defaults, then an optional TOML file, then `FTL__SECTION__KEY`
//! environment variables (e.g. `FTL__DATABASE__URL=postgres://…`).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
#[derive(Default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub store: StoreConfig,
    pub projections: ProjectionsConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
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
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// Browser origins allowed to call the API (the frontend is a separate app).
    pub cors_origins: Vec<String>,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_s: u64,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sql`: events in the database above. `kurrentdb`: events in KurrentDB
    /// (needs the `kurrentdb` build feature), read models in the database.
    pub backend: String,
    pub kurrentdb_url: Option<String>,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub body_bytes: usize,
    pub query_depth: usize,
    pub query_complexity: usize,
    /// The GraphQL query text (bytes), checked before it is parsed.
    pub query_bytes: usize,
    /// Operations in one GraphQL document.
    pub query_operations: usize,
    /// Fragment definitions in one document.
    pub query_fragments: usize,
    /// Selections in one document, every fragment spread expanded where it
    /// is used (`__typename` included).
    pub query_selections: usize,
    /// Aliased fields in one document.
    pub query_aliases: usize,
    /// Directives in one document.
    pub query_directives: usize,
    pub page_size_max: i64,
    pub series_keys_max: usize,
    pub series_points_max: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info,ftl_api=debug`.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            cors_origins: vec![],
            workers: 0,
            shutdown_timeout_s: 30,
        }
    }
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

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: "sql".into(),
            kurrentdb_url: None,
        }
    }
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

impl LimitsConfig {
    /// The GraphQL document limits.
    pub fn query(&self) -> crate::graphql::QueryLimits {
        crate::graphql::QueryLimits {
            query_bytes: self.query_bytes,
            operations: self.query_operations,
            fragments: self.query_fragments,
            selections: self.query_selections,
            aliases: self.query_aliases,
            directives: self.query_directives,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            body_bytes: 8 * 1024 * 1024,
            query_depth: 12,
            query_complexity: 2000,
            query_bytes: 64 * 1024,
            query_operations: 20,
            query_fragments: 100,
            query_selections: 5_000,
            query_aliases: 200,
            query_directives: 100,
            page_size_max: 200,
            series_keys_max: 50,
            series_points_max: 10_000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl Config {
    /// Defaults < file (if given; it must exist) < `FTL__…` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} not found",
                    path.display()
                ))));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig.merge(Env::prefixed("FTL__").split("__"))
            .extract()
            .map_err(Box::new)
    }

    /// The default configuration as TOML: the committed `finetune-lab.example.toml`.
    pub fn default_toml() -> String {
        toml_string(&Config::default())
    }
}

fn toml_string(c: &Config) -> String {
    // figment re-exports no serializer; the shape is flat enough to write by hand
    // from serde_json without losing anything.
    let v = serde_json::to_value(c).unwrap_or_default();
    let mut out = String::from(
        "# FineTune Lab configuration (defaults). Every key can be set as FTL__SECTION__KEY.\n",
    );
    if let Some(sections) = v.as_object() {
        for (section, body) in sections {
            out.push_str(&format!("\n[{section}]\n"));
            if let Some(kv) = body.as_object() {
                for (k, val) in kv {
                    if !val.is_null() {
                        out.push_str(&format!("{k} = {val}\n"));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn committed_example_config_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../finetune-lab.example.toml");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            committed,
            Config::default_toml(),
            "run `finetune-lab config > finetune-lab.example.toml`"
        );
    }

    #[test]
    fn file_and_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[server]\nbind = \"0.0.0.0:9\"\n[limits]\nquery_depth = 5\n",
            )?;
            jail.set_env("FTL__DATABASE__URL", "postgres://x@y/z");
            let c = Config::load(Some(Path::new("c.toml"))).map_err(|e| *e)?;
            assert_eq!(c.server.bind, "0.0.0.0:9");
            assert_eq!(c.limits.query_depth, 5);
            assert_eq!(c.database.url, "postgres://x@y/z");
            assert_eq!(c.projections.poll_ms, 1000);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_fail_closed() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[server]\nbnid = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }
}
