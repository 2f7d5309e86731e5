//! What a request handler needs: the effects (store, read models, model
//! endpoints, training), the configuration, and the edge's own caches.

use crate::config::Config;
use ftl_effects::Effects;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AppState {
    /// The write side, the read models and every side effect.
    pub effects: Effects,
    pub config: Arc<Config>,
    /// The credential this process's own workers claim with: random per
    /// start, never stored or logged.
    pub worker_secret: Arc<String>,
    /// Recently authenticated API keys.
    pub keys: Arc<crate::auth::KeyCache>,
}

impl AppState {
    /// Connects, migrates, and prepares the read models. Fails closed: a
    /// missing or unreachable store is an error, never a silent fallback.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let effects = Effects::build(config.settings()).await?;
        Ok(Self {
            effects,
            config: Arc::new(config),
            worker_secret: Arc::new(crate::auth::generate_secret()),
            keys: Arc::default(),
        })
    }

    /// Stops the change feed and closes the pools (after the runners have
    /// stopped).
    pub async fn close(&self) {
        self.effects.close().await;
    }

    pub fn ryw_timeout(&self) -> Duration {
        self.effects.ryw_timeout()
    }
}
