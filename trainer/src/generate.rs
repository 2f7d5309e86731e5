//! Text generation from a trained model: greedy or sampled (temperature,
//! top-p), bounded by max tokens, ending at the end-of-message token or a
//! stop sequence.

use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::model::{LanguageModel, ModelConfig};
use crate::tokenizer::{self, END, EOS, PAD};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateParams {
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability
    /// reaches `top_p` (1 = all).
    pub top_p: f64,
    pub stop: Vec<String>,
    pub seed: u64,
}

impl Default for GenerateParams {
    fn default() -> Self {
        Self {
            max_tokens: 128,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its message or a stop sequence appeared.
    Stop,
    /// `max_tokens` reached.
    Length,
    /// The caller stopped it (e.g. a streaming client went away).
    Cancelled,
}

impl FinishReason {
    /// The OpenAI-style name: `stop`, `length`, `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: FinishReason,
}

/// A model ready to generate: weights loaded for inference on a device.
pub struct Generator {
    model: LanguageModel,
    config: ModelConfig,
    device: Device,
}

impl Generator {
    pub fn new(model: LanguageModel, config: ModelConfig, device: Device) -> Self {
        Self {
            model,
            config,
            device,
        }
    }

    /// Load checkpoint weights (`model.bpk` bytes) for inference on the CPU.
    pub fn from_weights(config: ModelConfig, weights: &[u8]) -> Result<Self, TrainError> {
        let device = Device::flex();
        let model = crate::train::load_model(config.init(&device), weights)?;
        Ok(Self::new(model, config, device))
    }

    /// Continue `prompt` (token ids). `on_token` sees each piece of text as it
    /// is produced (streaming); a piece may be empty while a multi-byte
    /// character is incomplete.
    pub fn generate(
        &self,
        prompt: &[u32],
        params: &GenerateParams,
        on_token: impl FnMut(&str),
    ) -> Result<Generation, TrainError> {
        self.generate_until(prompt, params, || false, on_token)
    }

    /// [`Self::generate`], checking `cancelled` before each token: once it
    /// says so, generation stops with what it has (`FinishReason::Cancelled`).
    pub fn generate_until(
        &self,
        prompt: &[u32],
        params: &GenerateParams,
        cancelled: impl Fn() -> bool,
        mut on_token: impl FnMut(&str),
    ) -> Result<Generation, TrainError> {
        if !(params.temperature >= 0.0 && params.top_p > 0.0 && params.top_p <= 1.0) {
            return Err(TrainError::Config(
                "temperature must be >= 0 and top_p in (0, 1]".into(),
            ));
        }
        let mut rng = StdRng::seed_from_u64(params.seed);
        let mut tokens: Vec<u32> = prompt.to_vec();
        let mut produced: Vec<u32> = Vec::new();
        let mut emitted = 0usize; // bytes of text already streamed
        let longest_stop = params.stop.iter().map(String::len).max().unwrap_or(0);
        let mut finish = FinishReason::Length;
        while produced.len() < params.max_tokens {
            if cancelled() {
                finish = FinishReason::Cancelled;
                break;
            }
            let window = &tokens[tokens.len().saturating_sub(self.config.context)..];
            let input = Tensor::<2, Int>::from_data(
                TensorData::new(
                    window.iter().map(|t| i64::from(*t)).collect::<Vec<_>>(),
                    [1, window.len()],
                ),
                &self.device,
            );
            let last = window.len() - 1;
            let logits: Vec<f32> = self
                .model
                .forward(input)
                .slice([0..1, last..last + 1])
                .into_data()
                .try_to_vec()
                .map_err(|e| TrainError::Internal(format!("{e:?}")))?;
            let next = choose(&logits, params, &mut rng);
            if next == END || next == EOS {
                finish = FinishReason::Stop;
                break;
            }
            tokens.push(next);
            produced.push(next);
            let text = tokenizer::decode(&produced);
            if let Some(at) = params
                .stop
                .iter()
                .filter_map(|s| text.find(s.as_str()))
                .min()
            {
                if at > emitted {
                    on_token(&text[emitted..at]);
                }
                return Ok(self.finish(
                    prompt,
                    &produced,
                    text[..at].to_string(),
                    FinishReason::Stop,
                ));
            }
            // Hold back what could still become a stop sequence, and a cut character.
            let safe = safe_prefix(&text, longest_stop.saturating_sub(1));
            if safe > emitted {
                on_token(&text[emitted..safe]);
                emitted = safe;
            }
        }
        let text = tokenizer::decode(&produced);
        if text.len() > emitted {
            on_token(&text[emitted..]);
        }
        Ok(self.finish(prompt, &produced, text, finish))
    }

    fn finish(
        &self,
        prompt: &[u32],
        produced: &[u32],
        text: String,
        finish_reason: FinishReason,
    ) -> Generation {
        Generation {
            text,
            prompt_tokens: prompt.len(),
            completion_tokens: produced.len(),
            finish_reason,
        }
    }
}

/// Length of `text` minus `hold` bytes and any replacement character at the
/// end (an incomplete UTF-8 sequence), on a char boundary.
fn safe_prefix(text: &str, hold: usize) -> usize {
    let trimmed = text.trim_end_matches('\u{FFFD}');
    let mut end = trimmed.len().saturating_sub(hold);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// Pick the next token from the last position's logits.
fn choose(logits: &[f32], params: &GenerateParams, rng: &mut StdRng) -> u32 {
    let candidates = logits
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as u32 != PAD && *i as u32 != tokenizer::BOS);
    if params.temperature == 0.0 {
        return candidates
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap_or(END);
    }
    let scaled: Vec<(usize, f64)> = candidates
        .map(|(i, l)| (i, f64::from(*l) / params.temperature))
        .collect();
    let max = scaled
        .iter()
        .map(|(_, l)| *l)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut probs: Vec<(usize, f64)> = scaled.iter().map(|(i, l)| (*i, (l - max).exp())).collect();
    let total: f64 = probs.iter().map(|(_, p)| p).sum();
    probs.iter_mut().for_each(|(_, p)| *p /= total);
    probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept = 0.0;
    let mut cut = probs.len();
    for (n, (_, p)) in probs.iter().enumerate() {
        kept += p;
        if kept >= params.top_p {
            cut = n + 1;
            break;
        }
    }
    probs.truncate(cut);
    let mass: f64 = probs.iter().map(|(_, p)| p).sum();
    let mut draw = rng.random::<f64>() * mass;
    for (i, p) in &probs {
        if draw < *p {
            return *i as u32;
        }
        draw -= p;
    }
    probs.last().map(|(i, _)| *i as u32).unwrap_or(END)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_logit_and_top_p_keeps_the_nucleus() {
        let mut logits = vec![0.0f32; tokenizer::VOCAB_SIZE];
        logits[b'a' as usize] = 10.0;
        logits[b'b' as usize] = 9.0;
        logits[PAD as usize] = 100.0; // never produced
        let mut rng = StdRng::seed_from_u64(1);
        let greedy = GenerateParams::default();
        assert_eq!(choose(&logits, &greedy, &mut rng), u32::from(b'a'));
        // p(a) = e^10 / (e^10 + e^9 + 261 e^0) ≈ 0.72 < 0.9 → nucleus {a, b}.
        let nucleus = GenerateParams {
            temperature: 1.0,
            top_p: 0.9,
            ..GenerateParams::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            seen.insert(choose(&logits, &nucleus, &mut rng));
        }
        assert_eq!(
            seen,
            [u32::from(b'a'), u32::from(b'b')].into_iter().collect()
        );
        // top_p below p(a): only a.
        let tight = GenerateParams {
            temperature: 1.0,
            top_p: 0.5,
            ..GenerateParams::default()
        };
        assert!((0..100).all(|_| choose(&logits, &tight, &mut rng) == u32::from(b'a')));
    }

    #[test]
    fn streaming_holds_back_partial_stop_sequences_and_characters() {
        assert_eq!(safe_prefix("hello wor", 3), 6);
        assert_eq!(safe_prefix("h\u{FFFD}", 0), 1);
        assert_eq!(safe_prefix("é", 1), 0);
    }
}
