//! G-Eval probability weighting of a score token's `top_logprobs`, and the
//! mean of k sampled scores where a provider has no logprobs (`judging.md` §2.1).

use super::criteria::{SCHEMA_VIOLATION, SCORE_MAX, SCORE_MIN, check_score};
use crate::DomainError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Below this probability mass on valid score tokens the weighting is not
/// trusted: the parsed integer stands and the score is `low_confidence`.
pub const MIN_VALID_MASS: f64 = 0.5;

/// One alternative of the score token (OpenAI's `top_logprobs` entries;
/// `bytes` is not needed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f64,
}

/// A probability-weighted score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weighted {
    /// `Σ p_s·s`, or the parsed integer when `low_confidence`.
    pub score: f64,
    /// `Σ exp(lp)` over the entries whose token is a score on the scale.
    pub valid_mass: f64,
    /// `Σ exp(lp)` over every listed entry.
    pub total_mass: f64,
    /// `p_s = exp(lp_s) / valid_mass` per score, ascending (entries naming
    /// the same score, e.g. `"7"` and `" 7"`, add up).
    pub probabilities: Vec<(u8, f64)>,
    /// The valid mass was below [`MIN_VALID_MASS`].
    pub low_confidence: bool,
}

/// The score a token names: trimmed, ASCII digits only, an integer on the
/// 1–10 scale. `"The"`, `"0"`, `"11"`, `"7.5"` and `"-3"` name none.
pub fn score_token(token: &str) -> Option<u8> {
    let t = token.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let s: i64 = t.parse().ok()?;
    (SCORE_MIN..=SCORE_MAX).contains(&s).then_some(s as u8)
}

/// Weight the scores of `top_logprobs`; `parsed` is the completion's text,
/// read as the integer score only when the valid mass is below 0.5 (then it
/// must be an integer 1–10, or the judgment fails: nothing is clamped).
/// A logprob must be a number ≤ 0 (−∞ allowed: probability 0).
pub fn weighted(top_logprobs: &[TopLogprob], parsed: &str) -> Result<Weighted, DomainError> {
    if let Some((i, bad)) = top_logprobs
        .iter()
        .enumerate()
        .find(|(_, e)| e.logprob.is_nan() || e.logprob > 0.0)
    {
        return Err(DomainError::invalid(
            format!("top_logprobs[{i}].logprob"),
            format!("must be a log-probability ≤ 0 (got {})", bad.logprob),
        ));
    }
    let total_mass = top_logprobs.iter().map(|e| e.logprob.exp()).sum();
    let valid: Vec<(u8, f64)> = top_logprobs
        .iter()
        .filter_map(|e| score_token(&e.token).map(|s| (s, e.logprob.exp())))
        .collect();
    let valid_mass: f64 = valid.iter().map(|(_, p)| p).sum();
    if valid_mass < MIN_VALID_MASS {
        let score = parse_score(parsed)?;
        return Ok(Weighted {
            score: f64::from(score),
            valid_mass,
            total_mass,
            probabilities: Vec::new(),
            low_confidence: true,
        });
    }
    let mut probabilities: Vec<(u8, f64)> = Vec::new();
    for s in SCORE_MIN as u8..=SCORE_MAX as u8 {
        let mass: f64 = valid.iter().filter(|(v, _)| *v == s).map(|(_, p)| p).sum();
        if valid.iter().any(|(v, _)| *v == s) {
            probabilities.push((s, mass / valid_mass));
        }
    }
    let score = valid
        .iter()
        .map(|(s, p)| f64::from(*s) * p / valid_mass)
        .sum();
    Ok(Weighted {
        score,
        valid_mass,
        total_mass,
        probabilities,
        low_confidence: false,
    })
}

/// The completion's text as the integer score (trimmed, ASCII digits with
/// an optional `-`): anything else is a schema violation, an integer off the
/// scale is out of range.
pub fn parse_score(text: &str) -> Result<u8, DomainError> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let value = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for an i64 is still an integer, far off the scale.
        Value::from(t.parse::<i64>().unwrap_or(i64::MAX))
    } else {
        Value::String(t.to_string())
    };
    check_score("score", &value)
}

/// Without logprobs: the mean of k ≥ 1 sampled integer scores, each 1–10.
pub fn mean_of_k(samples: &[i64]) -> Result<f64, DomainError> {
    if samples.is_empty() {
        return Err(DomainError::invalid(
            "samples",
            format!("{SCHEMA_VIOLATION}: at least one sampled score"),
        ));
    }
    for (i, s) in samples.iter().enumerate() {
        check_score(&format!("samples[{i}]"), &Value::from(*s))?;
    }
    Ok(samples.iter().map(|s| *s as f64).sum::<f64>() / samples.len() as f64)
}
