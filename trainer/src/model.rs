//! The decoder-only transformer language model over byte tokens.

use burn::nn::attention::generate_autoregressive_mask;
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::tokenizer::VOCAB_SIZE;

/// Size of the model. Defaults make a small model that trains on a CPU in
/// minutes; every field is set by the job config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub n_layers: usize,
    pub d_model: usize,
    pub n_heads: usize,
    /// Width of the feed-forward layer (4 × `d_model` by convention).
    pub d_ff: usize,
    /// Context length in tokens: the longest sequence the model sees.
    pub context: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            n_layers: 2,
            d_model: 64,
            n_heads: 4,
            d_ff: 256,
            context: 256,
        }
    }
}

impl ModelConfig {
    pub fn init(&self, device: &Device) -> LanguageModel {
        LanguageModel {
            token_embedding: EmbeddingConfig::new(VOCAB_SIZE, self.d_model).init(device),
            position_embedding: EmbeddingConfig::new(self.context, self.d_model).init(device),
            transformer: TransformerEncoderConfig::new(
                self.d_model,
                self.d_ff,
                self.n_heads,
                self.n_layers,
            )
            .with_norm_first(true)
            // Dropout off: training is a pure function of (data, seed, step),
            // which is what makes resume exact.
            .with_dropout(0.0)
            .init(device),
            norm: LayerNormConfig::new(self.d_model).init(device),
            output: LinearConfig::new(self.d_model, VOCAB_SIZE).init(device),
        }
    }

    /// Number of trainable parameters, without building the model.
    pub fn parameter_count(&self) -> u64 {
        let (v, d, f, c, l) = (
            VOCAB_SIZE as u64,
            self.d_model as u64,
            self.d_ff as u64,
            self.context as u64,
            self.n_layers as u64,
        );
        let attention = 4 * (d * d + d);
        let feed_forward = d * f + f + f * d + d;
        let norms = 2 * 2 * d;
        v * d + c * d + l * (attention + feed_forward + norms) + 2 * d + d * v + v
    }

    /// Peak training memory in bytes for a micro-batch: weights, gradients
    /// and two AdamW moments (f32), plus activations kept for the backward
    /// pass (per layer ~ 16 d + 2 heads × seq floats per token, and the
    /// logits with their softmax). An estimate for validation, not a bound.
    pub fn training_memory_bytes(&self, batch_size: usize, seq_len: usize) -> u64 {
        let params = self.parameter_count() * 4 * 4;
        let tokens = (batch_size * seq_len) as u64;
        let per_layer =
            tokens * (16 * self.d_model as u64 + 2 * self.n_heads as u64 * seq_len as u64);
        let logits = tokens * VOCAB_SIZE as u64 * 3;
        params + (per_layer * self.n_layers as u64 + logits) * 4
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.n_layers == 0
            || self.d_model == 0
            || self.n_heads == 0
            || self.d_ff == 0
            || self.context < 2
        {
            return Err("layers, width, heads and feed-forward width must be positive and context at least 2".into());
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(format!(
                "d_model ({}) must be divisible by n_heads ({})",
                self.d_model, self.n_heads
            ));
        }
        Ok(())
    }
}

#[derive(Module, Debug)]
pub struct LanguageModel {
    token_embedding: Embedding,
    position_embedding: Embedding,
    transformer: TransformerEncoder,
    norm: LayerNorm,
    output: Linear,
}

impl LanguageModel {
    /// Next-token logits `[batch, seq, vocab]` for token ids `[batch, seq]`
    /// (seq ≤ context), each position attending only to earlier ones.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [batch, seq] = tokens.dims();
        let device = tokens.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .repeat_dim(0, batch);
        let x = self.token_embedding.forward(tokens) + self.position_embedding.forward(positions);
        let mask = generate_autoregressive_mask(batch, seq, &device);
        let h = self
            .transformer
            .forward(TransformerEncoderInput::new(x).mask_attn(mask));
        self.output.forward(self.norm.forward(h))
    }

    /// Log-probability of each target token `[batch, seq]`.
    pub fn target_log_probs(&self, inputs: Tensor<2, Int>, targets: Tensor<2, Int>) -> Tensor<2> {
        let [batch, seq] = targets.dims();
        let log_probs = log_softmax(self.forward(inputs), 2);
        log_probs
            .gather(2, targets.reshape([batch, seq, 1]))
            .reshape([batch, seq])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;

    #[test]
    fn parameter_count_matches_the_built_model() {
        let config = ModelConfig {
            n_layers: 3,
            d_model: 32,
            n_heads: 4,
            d_ff: 64,
            context: 48,
        };
        let model = config.init(&Device::flex());
        assert_eq!(model.num_params() as u64, config.parameter_count());
    }

    #[test]
    fn causal_positions_do_not_see_the_future() {
        let device = Device::flex();
        device.seed(3);
        let model = ModelConfig {
            context: 16,
            ..ModelConfig::default()
        }
        .init(&device);
        let a = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [1, 6]),
            &device,
        );
        let b = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 9, 9, 9], [1, 6]),
            &device,
        );
        let la: Vec<f32> = model
            .forward(a)
            .slice([0..1, 0..3])
            .into_data()
            .try_to_vec()
            .unwrap();
        let lb: Vec<f32> = model
            .forward(b)
            .slice([0..1, 0..3])
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(
            la, lb,
            "the first three positions must not depend on later tokens"
        );
    }
}
