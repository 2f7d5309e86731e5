//! Metric points (`specs/training-config.md` §7) and the batch event that carries them.

use crate::error::DomainError;
use crate::float_json::JsonF64;
use crate::ids::JobId;
use crate::limits::*;
use serde::{Deserialize, Serialize};

/// One point: value may be NaN or ±Infinity and is kept as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    pub key: String,
    pub step: i64,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl MetricPoint {
    /// Bitwise equality, so NaN equals NaN (used by tests and idempotency checks).
    pub fn same_as(&self, other: &Self) -> bool {
        self.key == other.key
            && self.step == other.step
            && self.timestamp_ms == other.timestamp_ms
            && self.value.to_bits() == other.value.to_bits()
    }
}

/// Maps ingestion aliases to canonical keys (spec §7), e.g. HF `loss` → `train_loss`.
pub fn canonical_key(key: &str) -> &str {
    match key {
        "loss" => "train_loss",
        "valid_loss" => "eval_loss",
        "full_valid_loss" => "eval_loss_full",
        "perplexity" => "eval_perplexity",
        "mean_token_accuracy" => "train_mean_token_accuracy",
        "valid_mean_token_accuracy" => "eval_mean_token_accuracy",
        "train_steps_per_second" => "steps_per_second",
        "rewards/chosen" => "reward_chosen",
        "rewards/rejected" => "reward_rejected",
        "rewards/accuracies" => "reward_accuracy",
        "rewards/margins" => "reward_margin",
        "logps/chosen" => "logp_chosen",
        "logps/rejected" => "logp_rejected",
        other => other,
    }
}

/// Checks a batch against the limits; the first offending point is named by index.
pub fn validate_points(points: &[MetricPoint]) -> Result<(), DomainError> {
    if points.is_empty() {
        return Err(DomainError::invalid("points", "must not be empty"));
    }
    if points.len() > MAX_POINTS_PER_CALL {
        return Err(DomainError::limit(
            "points",
            format!(
                "at most {MAX_POINTS_PER_CALL} points per call, got {}",
                points.len()
            ),
        ));
    }
    for (i, p) in points.iter().enumerate() {
        if p.key.is_empty() || p.key.len() > MAX_METRIC_KEY_LEN {
            return Err(DomainError::invalid(
                format!("points[{i}].key"),
                format!("must be 1 to {MAX_METRIC_KEY_LEN} bytes"),
            ));
        }
        if p.key.chars().any(|c| c.is_control()) {
            return Err(DomainError::invalid(
                format!("points[{i}].key"),
                "must not contain control characters",
            ));
        }
        if p.step < 0 {
            return Err(DomainError::invalid(
                format!("points[{i}].step"),
                "must be >= 0",
            ));
        }
        if p.step > MAX_STEP {
            return Err(DomainError::invalid(
                format!("points[{i}].step"),
                format!("must be at most 2^53 - 1 ({MAX_STEP}), got {}", p.step),
            ));
        }
    }
    Ok(())
}

/// `job.metrics_logged` v1: one batch of points for one job.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsLogged {
    pub job_id: JobId,
    pub points: Vec<MetricPoint>,
}

/// The stored shape is columnar (`keys` once, then `[key_index, step, value, ts]`
/// rows): a 10,000-point batch is about half the size of one object per point.
#[derive(Serialize, Deserialize)]
pub(crate) struct MetricsLoggedV1 {
    job_id: JobId,
    keys: Vec<String>,
    points: Vec<(u32, i64, JsonF64, i64)>,
}

impl From<&MetricsLogged> for MetricsLoggedV1 {
    fn from(e: &MetricsLogged) -> Self {
        let mut keys: Vec<String> = Vec::new();
        let mut index = std::collections::HashMap::<&str, u32>::new();
        let points = e
            .points
            .iter()
            .map(|p| {
                let k = *index.entry(p.key.as_str()).or_insert_with(|| {
                    keys.push(p.key.clone());
                    (keys.len() - 1) as u32
                });
                (k, p.step, JsonF64(p.value), p.timestamp_ms)
            })
            .collect();
        Self {
            job_id: e.job_id,
            keys,
            points,
        }
    }
}

impl TryFrom<MetricsLoggedV1> for MetricsLogged {
    type Error = String;
    fn try_from(v: MetricsLoggedV1) -> Result<Self, String> {
        let points = v
            .points
            .into_iter()
            .map(|(k, step, value, ts)| {
                let key = v
                    .keys
                    .get(k as usize)
                    .ok_or_else(|| format!("key index {k} out of range"))?;
                Ok(MetricPoint {
                    key: key.clone(),
                    step,
                    value: value.0,
                    timestamp_ms: ts,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            job_id: v.job_id,
            points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(key: &str, step: i64, value: f64) -> MetricPoint {
        MetricPoint {
            key: key.into(),
            step,
            value,
            timestamp_ms: 1_700_000_000_000 + step,
        }
    }

    #[test]
    fn validation_names_the_offending_point() {
        assert!(validate_points(&[p("loss", 0, 1.0)]).is_ok());
        let err = validate_points(&[p("loss", 0, 1.0), p("loss", -1, 1.0)]).unwrap_err();
        assert_eq!(err, DomainError::invalid("points[1].step", "must be >= 0"));
        // 2^53 - 1 is the last step a double holds exactly; 2^53 + 1 is not.
        assert!(validate_points(&[p("loss", 9_007_199_254_740_991, 1.0)]).is_ok());
        let err = validate_points(&[p("loss", 9_007_199_254_740_993, 1.0)]).unwrap_err();
        assert!(
            matches!(err, DomainError::InvalidInput { field, .. } if field == "points[0].step")
        );
        let err = validate_points(&[p(&"k".repeat(MAX_METRIC_KEY_LEN + 1), 0, 1.0)]).unwrap_err();
        assert!(matches!(err, DomainError::InvalidInput { field, .. } if field == "points[0].key"));
        let many = vec![p("loss", 0, 1.0); MAX_POINTS_PER_CALL + 1];
        assert!(matches!(
            validate_points(&many),
            Err(DomainError::LimitExceeded { .. })
        ));
        assert!(validate_points(&[]).is_err());
    }

    #[test]
    fn aliases_map_to_canonical_keys() {
        assert_eq!(canonical_key("loss"), "train_loss");
        assert_eq!(canonical_key("rewards/margins"), "reward_margin");
        assert_eq!(canonical_key("custom/thing"), "custom/thing");
    }
}
