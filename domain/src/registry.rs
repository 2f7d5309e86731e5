//! Datasets and models: registered once, immutable, each in its own stream.
//! A dataset is a file (uploaded, or read in place from a bucket URL); a
//! model is a checkpoint with its lineage.

use crate::ids::{DatasetId, JobId, ModelId, ProjectId};
use serde::{Deserialize, Serialize};

/// `dataset.registered` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRegistered {
    pub dataset_id: DatasetId,
    pub project_id: ProjectId,
    pub name: String,
    /// Where the bytes are: `artifacts:<path>` for uploads, or a bucket URL.
    pub uri: String,
    pub size: u64,
    pub sha256: String,
    /// `text`, `supervised` or `preference`.
    pub kind: String,
    pub examples: u64,
}

/// `model.registered` v1: a checkpoint that `generate` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRegistered {
    pub model_id: ModelId,
    pub project_id: ProjectId,
    pub name: String,
    pub job_id: JobId,
    pub checkpoint_step: u64,
    /// Object-store folder of the model's weights (`model.bpk`, `meta.json`:
    /// a copy of the checkpoint's, kept whatever the job prunes).
    pub checkpoint_path: String,
    /// What the job started from (`model.name` of its config).
    pub base_model: String,
    pub dataset_digest: String,
    /// Layers, width, heads, context of the network.
    pub architecture: serde_json::Value,
}
