//! What decides a training run: the method (the loss) and every hyperparameter.

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetKind;
use crate::model::ModelConfig;
use crate::schedule::{Schedule, ScheduleKind};

/// Training method: what the loss is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Continued pretraining on raw text: every token is a target.
    Cpt,
    /// Supervised fine-tuning: loss on assistant tokens only.
    Sft,
    /// Direct preference optimisation against a frozen reference model.
    Dpo,
}

impl Method {
    /// The dataset kinds the method can train on.
    pub fn accepts(self, kind: DatasetKind) -> bool {
        match self {
            Method::Cpt => kind == DatasetKind::Text,
            Method::Sft => matches!(kind, DatasetKind::Supervised | DatasetKind::Text),
            Method::Dpo => kind == DatasetKind::Preference,
        }
    }
}

/// Everything that decides a training run. Two runs with equal configs and
/// datasets produce the same weights, step for step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub method: Method,
    pub model: ModelConfig,
    pub learning_rate: f64,
    pub schedule: ScheduleKind,
    pub warmup_steps: u64,
    /// Optimizer steps in the whole run.
    pub total_steps: u64,
    pub batch_size: usize,
    pub gradient_accumulation_steps: usize,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    /// Global L2 norm the gradients are clipped to.
    pub max_grad_norm: f64,
    /// Longest sequence trained on (≤ the model's context).
    pub max_length: usize,
    pub max_prompt_length: usize,
    pub seed: u64,
    /// DPO temperature β.
    pub beta: f64,
    pub eval_batch_size: usize,
    /// Evaluate on at most this many eval batches (the whole split when it is smaller).
    pub eval_max_batches: usize,
}

impl TrainConfig {
    /// A small configuration for `method`, the defaults tests and the CLI start from.
    pub fn small(method: Method, total_steps: u64) -> Self {
        Self {
            method,
            model: ModelConfig::default(),
            learning_rate: 3e-3,
            schedule: ScheduleKind::Cosine,
            warmup_steps: total_steps / 10,
            total_steps,
            batch_size: 8,
            gradient_accumulation_steps: 1,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            max_length: 128,
            max_prompt_length: 64,
            seed: 42,
            beta: 0.1,
            eval_batch_size: 8,
            eval_max_batches: 8,
        }
    }

    pub fn schedule(&self) -> Schedule {
        Schedule {
            kind: self.schedule,
            learning_rate: self.learning_rate,
            warmup_steps: self.warmup_steps,
            total_steps: self.total_steps,
        }
    }

    /// Examples consumed per optimizer step.
    pub fn samples_per_step(&self) -> u64 {
        (self.batch_size * self.gradient_accumulation_steps) as u64
    }
}
