//! One optimizer step: gradient accumulation over micro-batches, global-norm
//! clipping, AdamW.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;

use super::{StepReport, Trainer};
use crate::TrainError;
use crate::dataset::Example;
use crate::model::LanguageModel;

impl Trainer {
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
}

/// Clip the gradients to a global L2 norm (as PyTorch's `clip_grad_norm_`),
/// returning the norm before clipping.
pub(super) fn clip_global_norm(
    model: &LanguageModel,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> f64 {
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
