//! Checkpoints of a training run stored through `object_store` (a local
//! folder by default; S3/GCS/Azure by URL): one folder per checkpoint,
//! `meta.json` written last so a folder without it is never read (a crash
//! mid-save leaves nothing half-visible), keep-last-N and keep-best pruning.

use std::sync::Arc;

use ftl_trainer::Checkpoint;
use ftl_trainer::checkpoint::META_FILE;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

/// The sidecar of each checkpoint: what listing and pruning need.
pub const INFO_FILE: &str = "ftl-checkpoint.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub name: String,
    pub step: u64,
    pub epoch: f64,
    pub eval_loss: Option<f64>,
    pub files: Vec<StoredFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFile {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The folder name of the checkpoint at `step`.
/// Where a job's checkpoints live in the artifact store.
pub fn checkpoint_prefix(job: uuid::Uuid) -> Path {
    Path::from(format!("jobs/{}/checkpoints", job.simple()))
}

/// A job's checkpoint store over the effects' artifact store.
pub fn checkpoint_store(
    st: &crate::Effects,
    job: uuid::Uuid,
    keep_last: Option<usize>,
) -> CheckpointStore {
    CheckpointStore::new(
        st.artifacts.store().clone(),
        checkpoint_prefix(job),
        keep_last,
    )
}

pub fn checkpoint_name(step: u64) -> String {
    format!("checkpoint-{step:08}")
}

pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    /// Keep this many most recent checkpoints (`None`: all); the best is never pruned.
    keep_last: Option<usize>,
}

impl CheckpointStore {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, keep_last: Option<usize>) -> Self {
        Self {
            store,
            prefix,
            keep_last,
        }
    }

    fn folder(&self, name: &str) -> Path {
        self.prefix.clone().join(name)
    }

    /// Store a checkpoint and prune older ones; returns what was stored.
    pub async fn save(
        &self,
        checkpoint: &Checkpoint,
        eval_loss: Option<f64>,
    ) -> anyhow::Result<CheckpointInfo> {
        let name = checkpoint_name(checkpoint.meta.step);
        let folder = self.folder(&name);
        let files = checkpoint.files()?;
        let info = CheckpointInfo {
            name: name.clone(),
            step: checkpoint.meta.step,
            epoch: checkpoint.meta.epoch,
            eval_loss,
            files: files
                .iter()
                .map(|f| StoredFile {
                    name: f.name.to_string(),
                    size: f.bytes.len() as u64,
                    sha256: f.sha256.clone(),
                })
                .collect(),
        };
        // `files()` ends with meta.json, the commit point; the sidecar goes just before it.
        for file in files {
            if file.name == META_FILE {
                self.put(&folder, INFO_FILE, serde_json::to_vec_pretty(&info)?)
                    .await?;
            }
            self.put(&folder, file.name, file.bytes).await?;
        }
        self.prune().await?;
        Ok(info)
    }

    async fn put(&self, folder: &Path, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(&folder.clone().join(name), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Complete checkpoints, oldest first.
    pub async fn list(&self) -> anyhow::Result<Vec<CheckpointInfo>> {
        let listing = self.store.list_with_delimiter(Some(&self.prefix)).await?;
        let mut out = Vec::new();
        for folder in listing.common_prefixes {
            let meta = folder.clone().join(META_FILE);
            if self.store.head(&meta).await.is_err() {
                continue; // incomplete: a save that did not finish
            }
            let info = self
                .store
                .get(&folder.clone().join(INFO_FILE))
                .await?
                .bytes()
                .await?;
            out.push(serde_json::from_slice::<CheckpointInfo>(&info)?);
        }
        out.sort_by_key(|c| c.step);
        Ok(out)
    }

    async fn prune(&self) -> anyhow::Result<()> {
        let Some(keep) = self.keep_last else {
            return Ok(());
        };
        let list = self.list().await?;
        let steps: Vec<(u64, Option<f64>)> = list.iter().map(|c| (c.step, c.eval_loss)).collect();
        for step in ftl_domain::job::managed::checkpoints_to_prune(&steps, keep) {
            self.delete(&checkpoint_name(step)).await?;
        }
        Ok(())
    }

    /// Removes a checkpoint: `meta.json` first, so the folder stops counting
    /// before its files go.
    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        let folder = self.folder(name);
        self.store.delete(&folder.clone().join(META_FILE)).await?;
        let paths: Vec<Path> = self
            .store
            .list(Some(&folder))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for path in paths {
            self.store.delete(&path).await?;
        }
        Ok(())
    }

    /// Read a stored checkpoint back.
    pub async fn load(&self, name: &str) -> anyhow::Result<Checkpoint> {
        let folder = self.folder(name);
        let mut files = std::collections::HashMap::new();
        let paths: Vec<Path> = self
            .store
            .list(Some(&folder))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for path in paths {
            if let Some(file) = path.filename() {
                let bytes = self.store.get(&path).await?.bytes().await?;
                files.insert(file.to_string(), bytes.to_vec());
            }
        }
        Ok(Checkpoint::from_files(|n| files.remove(n))?)
    }

    /// The most recent complete checkpoint.
    pub async fn latest(&self) -> anyhow::Result<Option<Checkpoint>> {
        match self.list().await?.last() {
            Some(info) => Ok(Some(self.load(&info.name).await?)),
            None => Ok(None),
        }
    }
}
