//! Evaluation on the eval split, with the inference copy of the weights.

use burn::module::Module;

use super::{EvalReport, Trainer};
use crate::TrainError;
use crate::config::Method;
use crate::dataset::Example;

impl Trainer {
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
}
