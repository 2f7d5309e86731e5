//! Models: a stored checkpoint with its lineage (job, step, base model,
//! dataset digest) that `generate` serves. Each succeeded job registers its
//! final checkpoint; any other checkpoint can be registered on request.

use crate::Effects;
use ftl_commands::store::{ExpectedVersion, Metadata, NewEvent, StoreError};
use ftl_domain::ids::{ModelId, derive_event_id};
use ftl_domain::registry::ModelRegistered;
use ftl_domain::{DomainEvent, JobId, ProjectId};
use ftl_trainer::checkpoint::{CheckpointMeta, META_FILE, MODEL_FILE};
use ftl_trainer::tokenizer::{self, Message, Role};
use ftl_trainer::{GenerateParams, Generation, Generator};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use uuid::Uuid;

/// The id of the model made from `job`'s checkpoint at `step` (one per pair).
pub fn model_id(job: JobId, step: u64) -> ModelId {
    ModelId(Uuid::new_v5(&job.0, format!("model/{step}").as_bytes()))
}

async fn read(st: &Effects, path: &Path) -> anyhow::Result<Vec<u8>> {
    Ok(st.artifacts.get(path).await?.to_vec())
}

/// Registers `job`'s checkpoint at `step` as a model; registering it again
/// returns the same id and appends nothing. Also returns the log position a
/// reader waits for before it reads the model back (0 when it was there
/// already); a caller that does not read it (the dispatcher) waits for
/// nothing.
pub async fn register(
    st: &Effects,
    project: ProjectId,
    job: JobId,
    step: u64,
    name: Option<String>,
) -> anyhow::Result<(ModelId, u64)> {
    let id = model_id(job, step);
    let state = crate::training::job_states::load_job(st, job)
        .await
        .map_err(|_| anyhow::anyhow!("reading job {job}"))?;
    let (Some(created), Some(m)) = (&state.created, &state.managed) else {
        anyhow::bail!("job {job} is not a managed training job");
    };
    if created.project_id != project {
        anyhow::bail!("job {job} is not in this project");
    }
    if !m.checkpoints.contains_key(&step) {
        anyhow::bail!("job {job} has no stored checkpoint at step {step}");
    }
    let folder = crate::training::checkpoints::checkpoint_prefix(job.0)
        .join(crate::training::checkpoints::checkpoint_name(step));
    let meta: CheckpointMeta =
        serde_json::from_slice(&read(st, &folder.clone().join(META_FILE)).await?)?;
    // The model keeps its own copy of the weights: the job's keep-last-N may
    // prune the checkpoint later.
    let model_folder = Path::from(format!("models/{}", id.0.simple()));
    for file in [MODEL_FILE, META_FILE] {
        st.artifacts
            .store()
            .copy(&folder.clone().join(file), &model_folder.clone().join(file))
            .await?;
    }
    let base_model = m
        .config
        .pointer("/model/name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string();
    let event = DomainEvent::ModelRegistered(ModelRegistered {
        model_id: id,
        project_id: project,
        name: name.unwrap_or_else(|| format!("{}@{step}", state.name)),
        job_id: job,
        checkpoint_step: step,
        checkpoint_path: model_folder.to_string(),
        base_model,
        dataset_digest: meta.dataset_digest.clone(),
        architecture: serde_json::to_value(meta.config.model)?,
    });
    let meta = Metadata {
        project_id: Some(project),
        command_id: Some(id.0),
        ..Metadata::default()
    };
    let new = NewEvent::from_domain(derive_event_id(id.0, 0), &event, meta);
    match st
        .store
        .append(&id.stream(), ExpectedVersion::NoStream, vec![new])
        .await
    {
        Ok(a) => Ok((id, a.last_position)),
        // Registered before (a retry): the same model.
        Err(StoreError::Conflict { .. }) => Ok((id, 0)),
        Err(e) => Err(e.into()),
    }
}

/// A chat turn or a plain text continuation.
pub enum Prompt {
    Text(String),
    Chat(Vec<(Role, String)>),
}

/// A model's weights, read and ready to generate from (on a blocking thread).
pub struct Loaded {
    pub row: ftl_projections::views::training::ModelRow,
    arch: ftl_trainer::ModelConfig,
    weights: Vec<u8>,
}

impl Prompt {
    /// The prompt's token ids under the model's tokenizer.
    pub fn tokens(&self) -> Vec<u32> {
        match self {
            Prompt::Text(t) => tokenizer::encode_text(t),
            Prompt::Chat(messages) => tokenizer::chat_prompt(
                &messages
                    .iter()
                    .map(|(role, content)| Message::new(*role, content.clone()))
                    .collect::<Vec<_>>(),
            ),
        }
    }
}

impl Loaded {
    /// Generates (blocking: call from a blocking thread); `on_piece` sees
    /// each piece of text as it is produced.
    pub fn generate(
        &self,
        tokens: &[u32],
        params: &GenerateParams,
        on_piece: impl FnMut(&str),
    ) -> Result<Generation, ftl_trainer::TrainError> {
        self.generate_until(tokens, params, || false, on_piece)
    }

    /// [`Self::generate`], stopping once `cancelled` says so.
    pub fn generate_until(
        &self,
        tokens: &[u32],
        params: &GenerateParams,
        cancelled: impl Fn() -> bool,
        on_piece: impl FnMut(&str),
    ) -> Result<Generation, ftl_trainer::TrainError> {
        Generator::from_weights(self.arch, &self.weights)?
            .generate_until(tokens, params, cancelled, on_piece)
    }
}

/// A model of the caller's project with its weights; `None` if there is none.
pub async fn load(st: &Effects, project: ProjectId, model: Uuid) -> anyhow::Result<Option<Loaded>> {
    let Some(row) = ftl_projections::views::training::model(&st.db, project.0, model).await? else {
        return Ok(None);
    };
    if row.local().is_none() {
        return Err(NotLocal.into());
    }
    Ok(Some(load_row(st, row).await?))
}

/// The model is an external endpoint: it has no weights here.
#[derive(Debug, thiserror::Error)]
#[error("the model is served by an external endpoint, not trained here")]
pub struct NotLocal;

/// Reads the weights of a model trained here.
pub async fn load_row(
    st: &Effects,
    row: ftl_projections::views::training::ModelRow,
) -> anyhow::Result<Loaded> {
    let Some((_, _, folder, arch)) = row.local() else {
        return Err(NotLocal.into());
    };
    let arch: ftl_trainer::ModelConfig = serde_json::from_value(arch.clone())?;
    let weights = read(st, &Path::from(format!("{folder}/{MODEL_FILE}"))).await?;
    Ok(Loaded { row, arch, weights })
}

/// Generates from a model of the caller's project.
pub async fn generate(
    st: &Effects,
    project: ProjectId,
    model: Uuid,
    prompt: Prompt,
    params: GenerateParams,
) -> anyhow::Result<Option<Generation>> {
    let Some(loaded) = load(st, project, model).await? else {
        return Ok(None);
    };
    let tokens = prompt.tokens();
    let out =
        tokio::task::spawn_blocking(move || loaded.generate(&tokens, &params, |_| {})).await??;
    Ok(Some(out))
}
