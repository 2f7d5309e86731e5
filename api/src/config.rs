//! Configuration: defaults, then an optional TOML file, then `FTL__SECTION__KEY`
//! environment variables (e.g. `FTL__DATABASE__URL=postgres://…`).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use ftl_effects::settings::{
    ArtifactsConfig, DatabaseConfig, ExternalModelsConfig, ProjectionsConfig, SecretsConfig,
    Settings, StoreConfig, TrainingConfig,
};

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
    /// The sections the effects read (database, store, projections,
    /// artifacts, training, secrets, external models).
    pub fn settings(&self) -> Settings {
        Settings {
            database: self.database.clone(),
            store: self.store.clone(),
            projections: self.projections.clone(),
            artifacts: self.artifacts.clone(),
            training: self.training.clone(),
            secrets: self.secrets.clone(),
            external_models: self.external_models.clone(),
        }
    }

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
