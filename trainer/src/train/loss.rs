//! The losses: mean cross-entropy over target tokens (CPT, SFT) and DPO's
//! sigmoid loss against the frozen reference, with its preference metrics.

use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;

use super::Trainer;
use super::batch::{Packed, completion, sequences_batch};
use crate::TrainError;
use crate::config::Method;
use crate::dataset::Example;
use crate::model::LanguageModel;
use crate::tokenizer::Encoded;

impl Trainer {
    /// The batch's loss; `evaluating` also counts correct predictions (an
    /// argmax and a device read the training steps do not need).
    pub(super) fn loss(
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

pub(super) struct LossOut {
    pub(super) loss: Tensor<1>,
    pub(super) value: f64,
    /// What `value` is a mean over: target tokens (LM) or pairs (DPO).
    pub(super) weight: f64,
    /// Correct predictions among them.
    pub(super) correct: f64,
    pub(super) tokens: u64,
    pub(super) preference: Vec<(String, f64)>,
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
