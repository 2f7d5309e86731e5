//! Checkpoints: a directory of files (`model.bpk`, `optim.bpk`,
//! `reference.bpk` for DPO, `meta.json`) that the caller stores wherever it
//! likes (the worker writes them through `object_store`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::TrainError;
use crate::config::TrainConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: u32,
    /// Optimizer steps completed: also the LR schedule's and the data order's state.
    pub step: u64,
    pub epoch: f64,
    pub samples_seen: u64,
    /// Seed of the data order; with `step` it is the sampler's whole RNG state.
    pub data_seed: u64,
    pub dataset_digest: String,
    pub config: TrainConfig,
}

impl CheckpointMeta {
    pub const FORMAT: u32 = 1;
}

#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub meta: CheckpointMeta,
    pub model: Vec<u8>,
    pub optimizer: Vec<u8>,
    pub reference: Option<Vec<u8>>,
}

pub const MODEL_FILE: &str = "model.bpk";
pub const OPTIMIZER_FILE: &str = "optim.bpk";
pub const REFERENCE_FILE: &str = "reference.bpk";
pub const META_FILE: &str = "meta.json";

/// One file of a checkpoint with its SHA-256.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Checkpoint {
    /// The files to store; `meta.json` last, so a reader that finds it finds the rest.
    pub fn files(&self) -> Result<Vec<CheckpointFile>, TrainError> {
        let meta = serde_json::to_vec_pretty(&self.meta)
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        let mut files = vec![
            (MODEL_FILE, self.model.clone()),
            (OPTIMIZER_FILE, self.optimizer.clone()),
        ];
        if let Some(reference) = &self.reference {
            files.push((REFERENCE_FILE, reference.clone()));
        }
        files.push((META_FILE, meta));
        Ok(files
            .into_iter()
            .map(|(name, bytes)| CheckpointFile {
                name,
                sha256: hex::encode(Sha256::digest(&bytes)),
                bytes,
            })
            .collect())
    }

    /// Read a checkpoint back from its files, fetched by name.
    pub fn from_files(mut fetch: impl FnMut(&str) -> Option<Vec<u8>>) -> Result<Self, TrainError> {
        let mut need = |name: &str| {
            fetch(name).ok_or_else(|| TrainError::Checkpoint(format!("checkpoint has no {name}")))
        };
        let meta: CheckpointMeta = serde_json::from_slice(&need(META_FILE)?)
            .map_err(|e| TrainError::Checkpoint(format!("{META_FILE}: {e}")))?;
        if meta.format != CheckpointMeta::FORMAT {
            return Err(TrainError::Checkpoint(format!(
                "unsupported checkpoint format {}",
                meta.format
            )));
        }
        let model = need(MODEL_FILE)?;
        let optimizer = need(OPTIMIZER_FILE)?;
        let reference = fetch(REFERENCE_FILE);
        Ok(Self {
            meta,
            model,
            optimizer,
            reference,
        })
    }
}
