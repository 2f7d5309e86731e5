//! FineTune Lab's side effects and use cases: everything that runs on its
//! own or reaches outside the process — model endpoints (local, OpenAI-
//! compatible, Anthropic), training (datasets, checkpoints, the reconciler),
//! key sealing, the egress guard, blob storage — and the background runners
//! a `serve` process starts ([`run`]), its in-process workers
//! (`ftl_trainer::worker`) among them.
//!
//! The edge (`ftl-api`) parses requests and calls into this crate; nothing
//! here knows HTTP routing or GraphQL.

pub mod blobs;
pub mod comparisons;
pub mod dispatch;
pub mod egress;
pub mod evaluation;
pub mod metrics;
pub mod models;
pub mod predictions;
pub mod run;
pub mod secrets;
pub mod settings;
pub mod training;

use crate::metrics::{InstrumentedStore, Metrics};
use crate::settings::Settings;
use anyhow::Context;
use ftl_commands::Db;
use ftl_commands::db::DbOptions;
use ftl_commands::store::{DynStore, postgres::PostgresEventStore, sqlite::SqliteEventStore};
use ftl_projections::Projections;
use ftl_projections::feed::ChangeFeed;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
/// The shared handles of the write side and its effects, built once.
pub struct Effects {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub store: DynStore,
    pub projections: Projections,
    pub feed: ChangeFeed,
    pub metrics: Arc<Metrics>,
    /// Where artifact bytes live (a local folder by default).
    pub artifacts: crate::blobs::Blobs,
    /// The GPU/price catalog (GPU selection screen, job rates).
    pub gpu_catalog: Arc<crate::training::catalog::GpuCatalog>,
    /// Folded job states for worker calls (read incrementally).
    pub job_states: Arc<crate::training::job_states::JobStates>,
    /// Seals and opens API keys of external models.
    pub sealer: crate::secrets::Sealer,
    /// Where outbound requests may go (SSRF guard).
    pub egress: crate::egress::Policy,
    /// The client for external model endpoints (under `egress`).
    pub egress_client: reqwest::Client,
}

impl Effects {
    /// Connects, migrates, and prepares the read models. Fails closed: a
    /// missing or unreachable store is an error, never a silent fallback.
    pub async fn build(config: Settings) -> anyhow::Result<Self> {
        let mut opts = DbOptions::new(&config.database.url);
        opts.max_connections = config.database.max_connections;
        opts.sqlite_synchronous = config.database.sqlite_synchronous.clone();
        let db = Db::connect(&opts)
            .await
            .with_context(|| format!("connecting to {}", redact(&config.database.url)))?;
        db.migrate().await.context("applying migrations")?;
        let raw = open_store(&config, &db).await?;
        let metrics = Metrics::new();
        let store: DynStore = Arc::new(InstrumentedStore {
            inner: raw,
            metrics: metrics.clone(),
        });
        let poll = Duration::from_millis(config.projections.poll_ms.max(10));
        let projections = Projections::standard(db.clone(), store.clone(), poll)
            .with_linger(Duration::from_millis(config.projections.linger_ms));
        projections.ensure().await.context("creating read models")?;
        let feed = ChangeFeed::start(store.clone(), poll)
            .await
            .context("starting the change feed")?;
        let artifacts = crate::blobs::open_root(&config.artifacts.root, &config.artifacts.options)
            .with_context(|| format!("opening the artifact store {}", config.artifacts.root))?;
        let gpu_catalog = Arc::new(
            crate::training::catalog::GpuCatalog::load(&config.training)
                .context("loading the GPU catalog")?,
        );
        let sealer = crate::secrets::Sealer::new(config.secrets.encryption_key.as_deref())
            .context("[secrets] encryption_key")?;
        let egress = crate::egress::Policy::new(&config.external_models.allowed_networks)
            .map_err(anyhow::Error::msg)?;
        let egress_client = egress
            .client(Duration::from_secs(config.external_models.timeout_s.max(1)))
            .context("building the outbound HTTP client")?;
        Ok(Self {
            sealer,
            egress,
            egress_client,
            gpu_catalog,
            job_states: Arc::default(),
            artifacts: crate::blobs::Blobs::new(artifacts),
            settings: Arc::new(config),
            db,
            store,
            projections,
            feed,
            metrics,
        })
    }

    /// Stops the change feed and closes the pools (after the runners have
    /// stopped): every connection is returned and closed cleanly.
    pub async fn close(&self) {
        self.feed.stop();
        self.db.close().await;
    }

    pub fn ryw_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.projections.read_your_writes_timeout_ms)
    }
}

async fn open_store(config: &Settings, db: &Db) -> anyhow::Result<DynStore> {
    match (config.store.backend.as_str(), db) {
        ("sql", Db::Sqlite { write, read, sync }) => Ok(Arc::new(SqliteEventStore::new(
            write.clone(),
            read.clone(),
            *sync,
        ))),
        ("sql", Db::Postgres(pool)) => Ok(Arc::new(PostgresEventStore::new(pool.clone()).await?)),
        ("kurrentdb", _) => open_kurrent(config).await,
        (other, _) => {
            anyhow::bail!("unknown store.backend {other:?}: use \"sql\" or \"kurrentdb\"")
        }
    }
}

#[cfg(feature = "kurrentdb")]
async fn open_kurrent(config: &Settings) -> anyhow::Result<DynStore> {
    let url = config
        .store
        .kurrentdb_url
        .as_deref()
        .context("store.kurrentdb_url is required with store.backend = \"kurrentdb\"")?;
    Ok(Arc::new(
        ftl_commands::store::kurrent::KurrentEventStore::connect(url).await?,
    ))
}

#[cfg(not(feature = "kurrentdb"))]
async fn open_kurrent(_: &Settings) -> anyhow::Result<DynStore> {
    anyhow::bail!("this build has no KurrentDB support: rebuild with `--features kurrentdb`")
}

/// Hides a password in a database URL before it reaches a log or an error.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite:./x.db"), "sqlite:./x.db");
    }
}
