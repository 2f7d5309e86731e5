//! The training loop: one optimizer step at a time, so the caller (a worker)
//! decides between steps when to evaluate, report, checkpoint, pause or stop.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::dataset::{Dataset, DatasetKind, Example};
use crate::model::{LanguageModel, ModelConfig};
use crate::schedule::{Schedule, ScheduleKind};
use crate::tokenizer::{Encoded, PAD};

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

    /// One optimizer step over `gradient_accumulation_steps` micro-batches.
    pub fn step(&mut self) -> Result<StepReport, TrainError> {
        let accumulation = self.config.gradient_accumulation_steps;
        let learning_rate = self.config.schedule().learning_rate(self.step);
        let mut accumulator = GradientsAccumulator::new();
        let (mut loss_sum, mut tokens, mut samples) = (0.0, 0u64, 0u64);
        let mut preference = Vec::new();
        for micro in 0..accumulation {
            let first =
                (self.step * accumulation as u64 + micro as u64) * self.config.batch_size as u64;
            let indices: Vec<usize> = (first..first + self.config.batch_size as u64)
                .map(|p| self.order.at(p))
                .collect();
            let batch: Vec<&Example> = indices.iter().map(|i| &self.train[*i]).collect();
            let out = self.loss(&self.model, &batch, &self.device, false)?;
            loss_sum += out.value;
            tokens += out.tokens;
            samples += batch.len() as u64;
            if micro == 0 {
                preference = out.preference;
            }
            let grads = out.loss.div_scalar(accumulation as f64).backward();
            accumulator.accumulate(&self.model, GradientsParams::from_grads(grads, &self.model));
        }
        let mut grads = accumulator.grads();
        let grad_norm = clip_global_norm(&self.model, &mut grads, self.config.max_grad_norm);
        self.model = self
            .optimizer
            .step(learning_rate, self.model.clone(), grads);
        self.step += 1;
        Ok(StepReport {
            step: self.step,
            loss: loss_sum / accumulation as f64,
            learning_rate,
            grad_norm,
            tokens,
            samples,
            epoch: self.epoch(),
            preference,
        })
    }

    /// Loss and accuracy on (at most `eval_max_batches` batches of) the eval split.
    pub fn evaluate(&self) -> Result<Option<EvalReport>, TrainError> {
        if self.eval.is_empty() {
            return Ok(None);
        }
        let model = self.model.valid();
        let device = self.device.clone().inner();
        let (mut loss, mut correct, mut weight, mut examples) = (0.0, 0.0, 0.0, 0);
        for batch in self
            .eval
            .chunks(self.config.eval_batch_size)
            .take(self.config.eval_max_batches)
        {
            let batch: Vec<&Example> = batch.iter().collect();
            let out = self.loss(&model, &batch, &device, true)?;
            loss += out.value * out.weight;
            correct += out.correct;
            weight += out.weight;
            examples += batch.len();
        }
        let weight = weight.max(f64::MIN_POSITIVE);
        let accuracy_base = match self.config.method {
            Method::Dpo => examples as f64,
            _ => weight,
        };
        Ok(Some(EvalReport {
            loss: loss / weight,
            accuracy: correct / accuracy_base,
            examples,
        }))
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

    /// The batch's loss; `evaluating` also counts correct predictions (an
    /// argmax and a device read the training steps do not need).
    fn loss(
        &self,
        model: &LanguageModel,
        batch: &[&Example],
        device: &Device,
        evaluating: bool,
    ) -> Result<LossOut, TrainError> {
        match self.config.method {
            Method::Dpo => self.dpo_loss(model, batch, device),
            _ => {
                let sequences: Vec<&Encoded> = batch
                    .iter()
                    .filter_map(|e| match e {
                        Example::Sequence(s) => Some(s),
                        Example::Preference { .. } => None,
                    })
                    .collect();
                let limit = self.config.max_length.min(self.config.model.context);
                Ok(lm_loss(
                    model,
                    &sequences_batch(&sequences, limit),
                    device,
                    evaluating,
                ))
            }
        }
    }

    fn dpo_loss(
        &self,
        model: &LanguageModel,
        batch: &[&Example],
        device: &Device,
    ) -> Result<LossOut, TrainError> {
        let Some((reference, _)) = &self.reference else {
            return Err(TrainError::Config("DPO needs a reference model".into()));
        };
        let limit = self.config.max_length.min(self.config.model.context);
        let mut chosen = Vec::new();
        let mut rejected = Vec::new();
        for example in batch {
            if let Example::Preference {
                prompt,
                chosen: c,
                rejected: r,
            } = example
            {
                let keep = prompt.len().min(self.config.max_prompt_length);
                let prompt = &prompt[prompt.len() - keep..];
                chosen.push(completion(prompt, c));
                rejected.push(completion(prompt, r));
            }
        }
        let pairs = chosen.len();
        let rows: Vec<&Encoded> = chosen.iter().chain(rejected.iter()).collect();
        let packed = sequences_batch(&rows, limit);
        let policy = sequence_log_probs(model, &packed, device);
        let reference_lp: Vec<f32> = tensor_values(sequence_log_probs(
            reference,
            &packed,
            &device.clone().inner(),
        ))?;
        let reference_t =
            Tensor::<1>::from_data(TensorData::new(reference_lp.clone(), [2 * pairs]), device);
        let policy_lp: Vec<f32> = tensor_values(policy.clone())?;
        let ratio = policy - reference_t;
        let chosen_ratio = ratio.clone().narrow(0, 0, pairs);
        let rejected_ratio = ratio.narrow(0, pairs, pairs);
        let logits = (chosen_ratio - rejected_ratio).mul_scalar(self.config.beta);
        let loss = log_sigmoid(logits).mean().neg();
        let value = scalar(loss.clone())?;

        let beta = self.config.beta;
        let mean = |f: &dyn Fn(usize) -> f64| (0..pairs).map(f).sum::<f64>() / pairs.max(1) as f64;
        let reward = |i: usize| beta * (policy_lp[i] - reference_lp[i]) as f64;
        let reward_chosen = mean(&|i| reward(i));
        let reward_rejected = mean(&|i| reward(pairs + i));
        let correct = (0..pairs)
            .filter(|i| reward(*i) > reward(pairs + *i))
            .count() as f64;
        Ok(LossOut {
            loss,
            value,
            weight: pairs as f64,
            correct,
            tokens: packed.tokens,
            preference: [
                ("reward_chosen", reward_chosen),
                ("reward_rejected", reward_rejected),
                ("reward_accuracy", correct / pairs.max(1) as f64),
                ("reward_margin", reward_chosen - reward_rejected),
                ("logp_chosen", mean(&|i| policy_lp[i] as f64)),
                ("logp_rejected", mean(&|i| policy_lp[pairs + i] as f64)),
            ]
            .map(|(name, value)| (name.to_string(), value))
            .into(),
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

fn completion(prompt: &[u32], reply: &[u32]) -> Encoded {
    let mut out = Encoded {
        tokens: prompt.to_vec(),
        targets: vec![false; prompt.len()],
    };
    out.tokens.extend_from_slice(reply);
    out.targets.extend(std::iter::repeat_n(true, reply.len()));
    out
}

/// A padded batch: inputs and targets shifted by one, and the target mask.
struct Packed {
    rows: usize,
    len: usize,
    inputs: Vec<i64>,
    targets: Vec<i64>,
    mask: Vec<f32>,
    /// Non-padding input tokens.
    tokens: u64,
}

fn sequences_batch(sequences: &[&Encoded], limit: usize) -> Packed {
    let len = sequences
        .iter()
        .map(|s| s.len().saturating_sub(1).min(limit))
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = sequences.len();
    let mut packed = Packed {
        rows,
        len,
        inputs: vec![i64::from(PAD); rows * len],
        targets: vec![i64::from(PAD); rows * len],
        mask: vec![0.0; rows * len],
        tokens: 0,
    };
    for (row, sequence) in sequences.iter().enumerate() {
        let n = sequence.len().saturating_sub(1).min(len);
        for i in 0..n {
            let at = row * len + i;
            packed.inputs[at] = i64::from(sequence.tokens[i]);
            packed.targets[at] = i64::from(sequence.tokens[i + 1]);
            packed.mask[at] = if sequence.targets[i + 1] { 1.0 } else { 0.0 };
        }
        packed.tokens += n as u64;
    }
    packed
}

impl Packed {
    fn tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>, Tensor<2>) {
        let shape = [self.rows, self.len];
        (
            Tensor::from_data(TensorData::new(self.inputs.clone(), shape), device),
            Tensor::from_data(TensorData::new(self.targets.clone(), shape), device),
            Tensor::from_data(TensorData::new(self.mask.clone(), shape), device),
        )
    }
}

struct LossOut {
    loss: Tensor<1>,
    value: f64,
    /// What `value` is a mean over: target tokens (LM) or pairs (DPO).
    weight: f64,
    /// Correct predictions among them.
    correct: f64,
    tokens: u64,
    preference: Vec<(String, f64)>,
}

/// Mean cross-entropy over target tokens, and (when asked) how many were predicted exactly.
fn lm_loss(
    model: &LanguageModel,
    packed: &Packed,
    device: &Device,
    count_correct: bool,
) -> LossOut {
    let (inputs, targets, mask) = packed.tensors(device);
    let [rows, len] = [packed.rows, packed.len];
    let logits = model.forward(inputs);
    let correct = if count_correct {
        let predicted = logits.clone().argmax(2).reshape([rows, len]);
        let hits = predicted
            .equal(targets.clone())
            .float()
            .mul(mask.clone())
            .sum();
        f64::from(hits.into_scalar::<f32>())
    } else {
        0.0
    };
    let log_probs = burn::tensor::activation::log_softmax(logits, 2)
        .gather(2, targets.reshape([rows, len, 1]))
        .reshape([rows, len]);
    let weight: f64 = packed.mask.iter().map(|m| f64::from(*m)).sum();
    let loss = (log_probs * mask).sum().neg().div_scalar(weight.max(1.0));
    let value = f64::from(loss.clone().into_scalar::<f32>());
    LossOut {
        loss,
        value,
        weight,
        correct,
        tokens: packed.tokens,
        preference: Vec::new(),
    }
}

/// Summed log-probability of each row's target tokens `[rows]`.
fn sequence_log_probs(model: &LanguageModel, packed: &Packed, device: &Device) -> Tensor<1> {
    let (inputs, targets, mask) = packed.tensors(device);
    (model.target_log_probs(inputs, targets) * mask)
        .sum_dim(1)
        .reshape([packed.rows])
}

fn tensor_values(tensor: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    tensor
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Internal(format!("{e:?}")))
}

fn scalar(tensor: Tensor<1>) -> Result<f64, TrainError> {
    Ok(f64::from(tensor.into_scalar::<f32>()))
}

/// Clip the gradients to a global L2 norm (as PyTorch's `clip_grad_norm_`),
/// returning the norm before clipping.
fn clip_global_norm(model: &LanguageModel, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let squares = grad.powi_scalar(2).sum();
                self.total = Some(match self.total.take() {
                    Some(total) => total + squares,
                    None => squares,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, grad.mul_scalar(self.factor));
            }
        }
    }
    let mut norm = SquaredNorm { grads, total: None };
    model.visit(&mut norm);
    let total = norm
        .total
        .map(|t| f64::from(t.into_scalar::<f32>()).sqrt())
        .unwrap_or(0.0);
    // PyTorch: clip_coef = max_norm / (total + 1e-6), applied when < 1.
    let factor = max_norm / (total + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
    total
}

/// The order examples are visited in: a fresh shuffle every epoch, a pure
/// function of (seed, epoch), so the data position is the step alone.
struct Order {
    n: usize,
    seed: u64,
    epoch: u64,
    permutation: Vec<usize>,
}

impl Order {
    fn new(n: usize, seed: u64) -> Self {
        let mut order = Self {
            n,
            seed,
            epoch: u64::MAX,
            permutation: Vec::new(),
        };
        order.load(0);
        order
    }

    fn load(&mut self, epoch: u64) {
        self.permutation = (0..self.n).collect();
        let mix = self.seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.permutation.shuffle(&mut StdRng::seed_from_u64(mix));
        self.epoch = epoch;
    }

    fn at(&mut self, position: u64) -> usize {
        let epoch = position / self.n as u64;
        if epoch != self.epoch {
            self.load(epoch);
        }
        self.permutation[(position % self.n as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_norm_clipping_scales_all_gradients_together() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let model = ModelConfig {
            context: 8,
            ..ModelConfig::default()
        }
        .init(&device);
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 4, 5, 6, 7, 8], [1, 8]),
            &device,
        );
        let loss = model.forward(tokens).powi_scalar(2).mean();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);

        // Reference norm: every gradient value summed in f64 on the host.
        struct HostNorm<'a>(&'a GradientsParams, f64);
        impl ModuleVisitor for HostNorm<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(g) = self.0.get::<D>(param.id) {
                    let values: Vec<f32> = g.into_data().try_to_vec().unwrap();
                    self.1 += values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
                }
            }
        }
        let mut host = HostNorm(&grads, 0.0);
        model.visit(&mut host);
        let expected = host.1.sqrt();
        assert!(expected > 0.0);

        let norm = clip_global_norm(&model, &mut grads, f64::MAX);
        assert!(
            (norm - expected).abs() < 1e-4 * expected,
            "{norm} vs {expected}"
        );
        // Clip to half: the norm reported is the one before clipping...
        assert_eq!(clip_global_norm(&model, &mut grads, expected / 2.0), norm);
        // ...and afterwards the gradients have half the norm.
        let after = clip_global_norm(&model, &mut grads, f64::MAX);
        assert!((after - expected / 2.0).abs() < 1e-4 * expected, "{after}");
    }

    #[test]
    fn padded_batches_mask_padding_and_non_targets() {
        let a = Encoded {
            tokens: vec![1, 2, 3, 4],
            targets: vec![false, false, true, true],
        };
        let b = Encoded {
            tokens: vec![5, 6],
            targets: vec![false, true],
        };
        let packed = sequences_batch(&[&a, &b], 16);
        assert_eq!((packed.rows, packed.len, packed.tokens), (2, 3, 4));
        assert_eq!(packed.inputs, vec![1, 2, 3, 5, PAD as i64, PAD as i64]);
        assert_eq!(packed.targets, vec![2, 3, 4, 6, PAD as i64, PAD as i64]);
        assert_eq!(packed.mask, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        // Truncated to the limit.
        assert_eq!(sequences_batch(&[&a], 2).targets, vec![2, 3]);
    }
}
