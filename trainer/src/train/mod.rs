//! The training loop: one optimizer step at a time, so the caller (a worker)
//! decides between steps when to evaluate, report, checkpoint, pause or stop.
//!
//! `step.rs` is the optimizer step (with global-norm clipping), `eval.rs` the
//! evaluation, `loss.rs` the losses (LM cross-entropy for CPT/SFT, DPO),
//! `batch.rs` the data order and padded batches.

mod batch;
mod eval;
mod loss;
mod step;
#[cfg(test)]
mod tests;

use burn::module::Module;
use burn::optim::{AdamWConfig, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use self::batch::Order;
use crate::TrainError;
use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::config::{Method, TrainConfig};
use crate::dataset::{Dataset, Example};
use crate::model::LanguageModel;

/// What one optimizer step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Optimizer steps completed, this one included.
    pub step: u64,
    /// Mean loss over the step's micro-batches.
    pub loss: f64,
    pub learning_rate: f64,
    /// Global gradient L2 norm before clipping.
    pub grad_norm: f64,
    /// Non-padding tokens fed to the model.
    pub tokens: u64,
    pub samples: u64,
    /// Fractional epochs completed.
    pub epoch: f64,
    /// Preference metrics (DPO only), by canonical metric name.
    pub preference: Vec<(String, f64)>,
}

/// Evaluation on the eval split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub loss: f64,
    /// Fraction of target tokens predicted exactly (LM methods), or of pairs
    /// ranked right (DPO).
    pub accuracy: f64,
    pub examples: usize,
}

/// Which device family trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// burn's pure-Rust CPU backend.
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda,
    #[cfg(feature = "wgpu")]
    Wgpu,
}

impl Backend {
    pub fn device(self) -> Device {
        match self {
            Backend::Cpu => Device::flex(),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Device::cuda(0),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Device::wgpu(Default::default()),
        }
    }
}

pub struct Trainer {
    config: TrainConfig,
    device: Device,
    model: LanguageModel,
    optimizer: ModuleOptimizer,
    /// DPO's frozen reference (inference copy), with its weights' bytes for checkpoints.
    reference: Option<(LanguageModel, Vec<u8>)>,
    train: Vec<Example>,
    eval: Vec<Example>,
    dataset_digest: String,
    step: u64,
    order: Order,
}

impl Trainer {
    /// A new run from freshly initialised weights, or from `base` weights
    /// (a checkpoint's model) when fine-tuning a model trained here.
    pub fn new(
        config: TrainConfig,
        backend: Backend,
        dataset: &Dataset,
        (train, eval): (Vec<Example>, Vec<Example>),
        base: Option<&[u8]>,
    ) -> Result<Self, TrainError> {
        validate(&config, dataset)?;
        if train.is_empty() {
            return Err(TrainError::Data("the training split is empty".into()));
        }
        let device = backend.device().autodiff();
        device.seed(config.seed);
        let mut model = config.model.init(&device);
        if let Some(bytes) = base {
            model = load_model(model, bytes)?;
        }
        let reference = match config.method {
            Method::Dpo => Some((model.valid(), model_bytes(&model)?)),
            _ => None,
        };
        let optimizer = optimizer(&config);
        Ok(Self {
            order: Order::new(train.len(), config.seed),
            config,
            device,
            model,
            optimizer,
            reference,
            train,
            eval,
            dataset_digest: dataset.digest.clone(),
            step: 0,
        })
    }

    /// Continue a run from its checkpoint, exactly where it stopped.
    pub fn resume(
        backend: Backend,
        dataset: &Dataset,
        split: (Vec<Example>, Vec<Example>),
        checkpoint: &Checkpoint,
    ) -> Result<Self, TrainError> {
        let meta = &checkpoint.meta;
        if meta.dataset_digest != dataset.digest {
            return Err(TrainError::Checkpoint(format!(
                "checkpoint was trained on dataset {} but this one is {}",
                meta.dataset_digest, dataset.digest
            )));
        }
        let mut trainer = Self::new(
            meta.config.clone(),
            backend,
            dataset,
            split,
            Some(&checkpoint.model),
        )?;
        let record = burn::optim::OptimizerRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(
            checkpoint.optimizer.clone(),
        ))
        .map_err(|e| TrainError::Checkpoint(format!("optimizer state: {e}")))?;
        trainer.optimizer = optimizer(&trainer.config).load_record(record);
        if let (Some(bytes), Method::Dpo) = (&checkpoint.reference, trainer.config.method) {
            let reference = load_model(trainer.config.model.init(&trainer.device), bytes)?.valid();
            trainer.reference = Some((reference, bytes.clone()));
        }
        trainer.step = meta.step;
        Ok(trainer)
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Optimizer steps completed.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    pub fn is_done(&self) -> bool {
        self.step >= self.config.total_steps
    }

    pub fn epoch(&self) -> f64 {
        (self.step * self.config.samples_per_step()) as f64 / self.train.len() as f64
    }

    /// The inference copy of the current weights.
    pub fn model(&self) -> LanguageModel {
        self.model.valid()
    }

    /// The whole training state: weights, optimizer moments, the step (which
    /// is also the LR scheduler's and the data order's state).
    pub fn checkpoint(&self) -> Result<Checkpoint, TrainError> {
        let optimizer = self
            .optimizer
            .into_bytes()
            .map_err(|e| TrainError::Checkpoint(format!("optimizer state: {e}")))?
            .to_vec();
        Ok(Checkpoint {
            meta: CheckpointMeta {
                format: CheckpointMeta::FORMAT,
                step: self.step,
                epoch: self.epoch(),
                samples_seen: self.step * self.config.samples_per_step(),
                data_seed: self.config.seed,
                dataset_digest: self.dataset_digest.clone(),
                config: self.config.clone(),
            },
            model: model_bytes(&self.model)?,
            optimizer,
            reference: self.reference.as_ref().map(|(_, bytes)| bytes.clone()),
        })
    }
}

fn validate(config: &TrainConfig, dataset: &Dataset) -> Result<(), TrainError> {
    config.model.validate().map_err(TrainError::Config)?;
    if !config.method.accepts(dataset.kind) {
        return Err(TrainError::Config(format!(
            "method {:?} cannot train on a {:?} dataset",
            config.method, dataset.kind
        )));
    }
    if config.batch_size == 0
        || config.gradient_accumulation_steps == 0
        || config.eval_batch_size == 0
    {
        return Err(TrainError::Config(
            "batch sizes and accumulation steps must be at least 1".into(),
        ));
    }
    if config.max_length < 1 {
        return Err(TrainError::Config("max_length must be at least 1".into()));
    }
    Ok(())
}

fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    AdamWConfig::new()
        .with_beta_1(config.adam_beta1 as f32)
        .with_beta_2(config.adam_beta2 as f32)
        .with_epsilon(config.adam_epsilon as f32)
        .with_weight_decay(config.weight_decay as f32)
        .init()
}

pub(crate) fn model_bytes(model: &LanguageModel) -> Result<Vec<u8>, TrainError> {
    Ok(model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::Checkpoint(format!("weights: {e}")))?
        .to_vec())
}

pub(crate) fn load_model(model: LanguageModel, bytes: &[u8]) -> Result<LanguageModel, TrainError> {
    let record =
        burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| TrainError::Checkpoint(format!("weights: {e}")))?;
    model
        .try_load_record(record)
        .map_err(|e| TrainError::Checkpoint(format!("weights do not fit this model: {e}")))
}
