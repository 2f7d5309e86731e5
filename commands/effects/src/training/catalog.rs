//! The GPU/price catalog (`commands/effects/data/gpu-catalog.toml`, replaceable by
//! `training.gpu_catalog`): the GPU selection screen's list and the rate a
//! job is charged while it holds a machine.

use crate::settings::TrainingConfig;
use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};

const BUILT_IN: &str = include_str!("../../data/gpu-catalog.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuOffer {
    pub provider: String,
    /// The provider's id for it (`resources.gpu_type`).
    pub sku: String,
    pub name: String,
    pub vram_gb: u32,
    pub usd_per_hour: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    gpu: Vec<GpuOffer>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GpuCatalog {
    pub offers: Vec<GpuOffer>,
}

impl GpuCatalog {
    /// The built-in catalog, or the configured file, with the local CPU at
    /// the configured rate. Fails on a missing or malformed file.
    pub fn load(config: &TrainingConfig) -> anyhow::Result<Self> {
        let fig = match &config.gpu_catalog {
            Some(path) => {
                if !std::path::Path::new(path).exists() {
                    anyhow::bail!("training.gpu_catalog {path} not found");
                }
                Figment::from(Toml::file(path))
            }
            None => Figment::from(Toml::string(BUILT_IN)),
        };
        let file: CatalogFile = fig
            .extract()
            .map_err(|e| anyhow::anyhow!("GPU catalog: {e}"))?;
        let mut offers = file.gpu;
        for o in &offers {
            if !(o.usd_per_hour.is_finite() && o.usd_per_hour >= 0.0) {
                anyhow::bail!("GPU catalog: {}/{} has a bad price", o.provider, o.sku);
            }
        }
        match offers
            .iter_mut()
            .find(|o| o.provider == "local" && o.sku == "cpu")
        {
            Some(cpu) => cpu.usd_per_hour = config.local_rate_usd_per_hour,
            None => offers.insert(
                0,
                GpuOffer {
                    provider: "local".into(),
                    sku: "cpu".into(),
                    name: "This machine's CPU".into(),
                    vram_gb: 0,
                    usd_per_hour: config.local_rate_usd_per_hour,
                },
            ),
        }
        Ok(Self { offers })
    }

    /// The SKUs of one provider (validation's `unknown_gpu_type`).
    pub fn skus(&self, provider: &str) -> Vec<String> {
        self.offers
            .iter()
            .filter(|o| o.provider == provider)
            .map(|o| o.sku.clone())
            .collect()
    }

    /// $/hour for `gpu_count` of `gpu_type` at `provider` (`None` type: the
    /// provider's first offer, the local CPU for `local`).
    pub fn rate(&self, provider: &str, gpu_type: Option<&str>, gpu_count: u64) -> Option<f64> {
        let offer = self
            .offers
            .iter()
            .find(|o| o.provider == provider && gpu_type.is_none_or(|t| t == o.sku))?;
        Some(offer.usd_per_hour * gpu_count.max(1) as f64)
    }

    pub fn filter(
        &self,
        provider: Option<&str>,
        min_vram_gb: Option<u32>,
        max_usd_per_hour: Option<f64>,
    ) -> Vec<GpuOffer> {
        let mut out: Vec<GpuOffer> = self
            .offers
            .iter()
            .filter(|o| provider.is_none_or(|p| p == o.provider))
            .filter(|o| min_vram_gb.is_none_or(|v| o.vram_gb >= v))
            .filter(|o| max_usd_per_hour.is_none_or(|m| o.usd_per_hour <= m))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.usd_per_hour.total_cmp(&b.usd_per_hour));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_loads_with_the_configured_cpu_rate() {
        let cfg = TrainingConfig {
            local_rate_usd_per_hour: 0.25,
            ..TrainingConfig::default()
        };
        let c = GpuCatalog::load(&cfg).unwrap();
        assert_eq!(c.rate("local", None, 1), Some(0.25));
        assert_eq!(
            c.rate("runpod", Some("NVIDIA H100 80GB HBM3"), 2),
            Some(2.69 * 2.0)
        );
        assert_eq!(c.rate("runpod", Some("no such gpu"), 1), None);
        let cheap = c.filter(Some("runpod"), Some(40), Some(2.0));
        assert_eq!(
            cheap.iter().map(|o| o.sku.as_str()).collect::<Vec<_>>(),
            vec!["NVIDIA RTX A6000", "NVIDIA A100-SXM4-80GB"]
        );
    }

    #[test]
    fn a_missing_or_malformed_override_fails_closed() {
        let missing = TrainingConfig {
            gpu_catalog: Some("/nonexistent/catalog.toml".into()),
            ..TrainingConfig::default()
        };
        assert!(GpuCatalog::load(&missing).is_err());
        let dir = std::env::temp_dir().join(format!("ftl-cat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[[gpu]]\nprovider = \"x\"\nsku = \"y\"\nname = \"z\"\nvram_gb = 1\nusd_per_hour = -1.0\n").unwrap();
        let cfg = TrainingConfig {
            gpu_catalog: Some(bad.to_string_lossy().into()),
            ..TrainingConfig::default()
        };
        assert!(GpuCatalog::load(&cfg).is_err());
    }
}
