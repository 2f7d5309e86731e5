//! Human feedback on predictions (`specs/judging.md` §8–9): thumbs up/down
//! (changeable; every change kept), detailed evaluations with the seven
//! failure tags, and multi-axis ratings 1–5 by any number of raters. Each is
//! an event on the prediction's stream; nothing is overwritten — the latest
//! per (prediction, rater) is current, the earlier ones stay in the log.

use crate::DomainError;
use crate::ids::PredictionId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `failure_taxonomy_v1`, in the spec's order.
pub const FAILURE_TAGS: [&str; 7] = [
    "hallucination",
    "incorrect_info",
    "incomplete",
    "off_topic",
    "wrong_tool",
    "tone_issues",
    "format_issues",
];
pub const TAXONOMY: &str = "failure_taxonomy_v1";
/// The rating axes (integers 1–5).
pub const AXES: [&str; 4] = ["clarity", "accuracy", "conciseness", "overall"];
pub const MAX_TEXT: usize = 16 * 1024;
pub const MAX_RATER_LEN: usize = 200;

/// `prediction.thumb_set` v1: up, down, or cleared (`None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThumbSet {
    pub prediction_id: PredictionId,
    pub rater: String,
    pub up: Option<bool>,
}

/// `prediction.evaluated` v1: the detailed evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluated {
    pub prediction_id: PredictionId,
    pub rater: String,
    pub success: bool,
    /// A set: sorted, no duplicates, each one of [`FAILURE_TAGS`].
    pub tags: Vec<String>,
    /// `human`, `llm` or `rule`.
    pub source: String,
    pub taxonomy: String,
    pub strengths: String,
    pub notes: String,
    pub expected_behaviour: String,
}

/// `prediction.rated` v1: a multi-axis rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rated {
    pub rating_id: uuid::Uuid,
    pub prediction_id: PredictionId,
    pub rater: String,
    /// Axis → 1..=5 (any non-empty subset of [`AXES`]).
    pub axes: BTreeMap<String, u8>,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison_id: Option<uuid::Uuid>,
}

/// A failure tag given as a filter: one of [`FAILURE_TAGS`], or why not.
pub fn check_tag_filter(tag: Option<&str>) -> Result<(), String> {
    match tag {
        Some(t) if !FAILURE_TAGS.contains(&t) => {
            Err(format!("tag must be one of {}", FAILURE_TAGS.join(", ")))
        }
        _ => Ok(()),
    }
}

pub fn validate_rater(rater: &str) -> Result<(), DomainError> {
    if rater.trim().is_empty() || rater.len() > MAX_RATER_LEN {
        return Err(DomainError::invalid(
            "rater",
            format!("must be 1 to {MAX_RATER_LEN} bytes"),
        ));
    }
    Ok(())
}

fn validate_text(field: &str, text: &str) -> Result<(), DomainError> {
    if text.len() > MAX_TEXT {
        return Err(DomainError::limit(
            field,
            format!("at most {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

/// Tags as a set in taxonomy order; an unknown one is `unknown_failure_tag`.
pub fn normalize_tags(tags: &[String]) -> Result<Vec<String>, DomainError> {
    if let Some(bad) = tags.iter().find(|t| !FAILURE_TAGS.contains(&t.as_str())) {
        return Err(DomainError::invalid(
            "tags",
            format!(
                "unknown_failure_tag: {bad:?} is not in {TAXONOMY} ({})",
                FAILURE_TAGS.join(", ")
            ),
        ));
    }
    Ok(FAILURE_TAGS
        .iter()
        .filter(|t| tags.iter().any(|x| x == *t))
        .map(|t| t.to_string())
        .collect())
}

impl Evaluated {
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_rater(&self.rater)?;
        if !matches!(self.source.as_str(), "human" | "llm" | "rule") {
            return Err(DomainError::invalid("source", "must be human, llm or rule"));
        }
        validate_text("strengths", &self.strengths)?;
        validate_text("notes", &self.notes)?;
        validate_text("expectedBehaviour", &self.expected_behaviour)
    }
}

impl Rated {
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_rater(&self.rater)?;
        validate_text("comment", &self.comment)?;
        if self.axes.is_empty() {
            return Err(DomainError::invalid("axes", "rate at least one axis"));
        }
        for (axis, v) in &self.axes {
            if !AXES.contains(&axis.as_str()) {
                return Err(DomainError::invalid(
                    "axes",
                    format!("unknown axis {axis:?} (one of {})", AXES.join(", ")),
                ));
            }
            if !(1..=5).contains(v) {
                return Err(DomainError::invalid(
                    format!("axes.{axis}"),
                    "must be an integer from 1 to 5",
                ));
            }
        }
        Ok(())
    }
}

/// Failure-tag analytics over evaluations (§8): tags count only on failed
/// evaluations.
#[derive(Debug, Clone, PartialEq)]
pub struct TagStats {
    pub n_evaluations: u64,
    pub n_failed: u64,
    pub untagged_failures: u64,
    /// Per tag (taxonomy order): count in failed, % of failed, share of mentions.
    pub tags: Vec<(String, u64, f64, f64)>,
}

pub fn tag_stats<'a>(evaluations: impl IntoIterator<Item = (bool, &'a [String])>) -> TagStats {
    let mut counts: BTreeMap<&str, u64> = FAILURE_TAGS.iter().map(|t| (*t, 0)).collect();
    let (mut n, mut failed, mut untagged) = (0, 0, 0);
    for (success, tags) in evaluations {
        n += 1;
        if success {
            continue;
        }
        failed += 1;
        let mut distinct: Vec<&str> = tags.iter().map(String::as_str).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.is_empty() {
            untagged += 1;
        }
        for t in distinct {
            if let Some(c) = counts.get_mut(t) {
                *c += 1;
            }
        }
    }
    let mentions: u64 = counts.values().sum();
    let pct = |c: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            100.0 * c as f64 / of as f64
        }
    };
    TagStats {
        n_evaluations: n,
        n_failed: failed,
        untagged_failures: untagged,
        tags: FAILURE_TAGS
            .iter()
            .map(|t| {
                let c = counts[t];
                (t.to_string(), c, pct(c, failed), pct(c, mentions))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn tag_stats_match_vector_t1() {
        // specs/judging.md §8 example T1 (vectors/failure_tags_vector.json, copied).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/vectors/failure_tags_vector.json"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let evals: Vec<(bool, Vec<String>)> = v["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["success"].as_bool().unwrap(),
                    serde_json::from_value(e["tags"].clone()).unwrap(),
                )
            })
            .collect();
        let s = tag_stats(evals.iter().map(|(ok, t)| (*ok, t.as_slice())));
        assert_eq!(s.n_evaluations, v["n_evaluations"].as_u64().unwrap());
        assert_eq!(s.n_failed, v["n_failed"].as_u64().unwrap());
        assert_eq!(
            s.untagged_failures,
            v["untagged_failures"].as_u64().unwrap()
        );
        for (tag, count, pct, share) in &s.tags {
            assert_eq!(
                *count,
                v["counts_in_failed"][tag].as_u64().unwrap(),
                "{tag}"
            );
            assert!((pct - v["pct_of_failed_evaluations"][tag].as_f64().unwrap()).abs() < 1e-6);
            assert!((share - v["share_of_tag_mentions"][tag].as_f64().unwrap()).abs() < 1e-6);
        }
    }

    #[test]
    fn tags_are_a_set_in_taxonomy_order_and_unknown_ones_fail() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            normalize_tags(&t(&["format_issues", "hallucination", "format_issues"])).unwrap(),
            t(&["hallucination", "format_issues"])
        );
        let e = normalize_tags(&t(&["rude"])).unwrap_err().to_string();
        assert!(e.contains("unknown_failure_tag"), "{e}");
    }

    #[test]
    fn ratings_take_known_axes_from_one_to_five() {
        let r = |axes: &[(&str, u8)]| Rated {
            rating_id: uuid::Uuid::nil(),
            prediction_id: PredictionId(uuid::Uuid::nil()),
            rater: "ann".into(),
            axes: axes.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            comment: String::new(),
            comparison_id: None,
        };
        assert!(r(&[("clarity", 5), ("overall", 1)]).validate().is_ok());
        assert!(r(&[("clarity", 6)]).validate().is_err());
        assert!(r(&[("clarity", 0)]).validate().is_err());
        assert!(r(&[("vibes", 3)]).validate().is_err());
        assert!(r(&[]).validate().is_err());
    }
}
