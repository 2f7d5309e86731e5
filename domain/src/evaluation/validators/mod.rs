//! Validators (issue #20): pure functions `(case, output) → ValidatorResult`
//! over a [`TestCase`], dispatched by [`ValidatorKind`]. A validator's bad
//! configuration (an invalid regex or schema, missing context) is a
//! [`DomainError`] naming the field; a failing output is a result with
//! `passed = false`, never an error.

mod format;
mod grounded;

use crate::DomainError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The validators' version, for `rubric_version` in judgment exports.
pub const VALIDATOR_VERSION: &str = "ftl-validators-v1";
/// Length of a format validator's regex, in bytes.
pub const MAX_PATTERN_LEN: usize = 4096;

/// One input message of a test case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A retrieved context passage; citation marker `[k]` names the k-th
/// passage of [`TestCase::context`] (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passage {
    pub id: String,
    pub text: String,
}

/// A test case: what a model is asked, and what its output is checked by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_answer: Option<String>,
    /// Retrieved passages, in the order the answer cites them.
    #[serde(default)]
    pub context: Vec<Passage>,
    /// Strings the output must contain (case-insensitive).
    #[serde(default)]
    pub required_elements: Vec<String>,
    /// A JSON Schema (draft 4 to 2020-12, by `$schema`; 2020-12 without one)
    /// the output, read as JSON, must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// A regex the output must match somewhere (anchor it with `^…$` to
    /// match the whole output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_pattern: Option<String>,
    /// Bounds on the output's length in Unicode code points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// The citations validator also fails a claim that cites nothing.
    #[serde(default)]
    pub require_citations: bool,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// What a validator found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatorResult {
    pub passed: bool,
    /// A 0–1 score where the validator has one (`None` for pass/fail checks,
    /// and for groundedness with no claims).
    pub score: Option<f64>,
    pub reason: String,
    /// `[start, end)` offsets in Unicode code points of the output.
    pub spans: Vec<(usize, usize)>,
}

/// The validators, with stable string ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidatorKind {
    /// Fails on an unsupported-claim ratio below 0.7 or any invalid citation.
    NoHallucination,
    /// The supported-claim ratio, passing at 0.7.
    Groundedness,
    /// Every marker names a passage and the cited passages support the claim.
    Citations,
    /// Every required element appears (case-insensitive).
    RequiredElements,
    /// JSON Schema, regex and length bounds.
    Format,
}

impl ValidatorKind {
    pub const ALL: [ValidatorKind; 5] = [
        Self::NoHallucination,
        Self::Groundedness,
        Self::Citations,
        Self::RequiredElements,
        Self::Format,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::NoHallucination => "no_hallucination",
            Self::Groundedness => "groundedness",
            Self::Citations => "citations",
            Self::RequiredElements => "required_elements",
            Self::Format => "format",
        }
    }

    /// The kind with this id, or an error naming `validator`.
    pub fn parse(id: &str) -> Result<Self, DomainError> {
        Self::ALL.into_iter().find(|k| k.id() == id).ok_or_else(|| {
            DomainError::invalid(
                "validator",
                format!(
                    "unknown validator {id:?} (one of {})",
                    Self::ALL.map(Self::id).join(", ")
                ),
            )
        })
    }
}

impl std::fmt::Display for ValidatorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// Run one validator on `output`.
pub fn run(
    kind: ValidatorKind,
    case: &TestCase,
    output: &str,
) -> Result<ValidatorResult, DomainError> {
    match kind {
        ValidatorKind::NoHallucination => grounded::no_hallucination(case, output),
        ValidatorKind::Groundedness => grounded::groundedness(case, output),
        ValidatorKind::Citations => grounded::citations(case, output),
        ValidatorKind::RequiredElements => format::required_elements(case, output),
        ValidatorKind::Format => format::format(case, output),
    }
}

/// Check a case's configuration for a validator without an output, so a bad
/// case is refused when it is saved rather than when it runs.
pub fn check_config(kind: ValidatorKind, case: &TestCase) -> Result<(), DomainError> {
    match kind {
        ValidatorKind::NoHallucination | ValidatorKind::Groundedness | ValidatorKind::Citations => {
            check_context(case)
        }
        ValidatorKind::RequiredElements => format::check_required(case),
        ValidatorKind::Format => format::FormatRules::compile(case).map(|_| ()),
    }
}

/// The model-free checks need passages to check against, with distinct,
/// non-empty ids.
fn check_context(case: &TestCase) -> Result<(), DomainError> {
    if case.context.is_empty() {
        return Err(DomainError::invalid(
            "context",
            "the groundedness and citation validators need context passages",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, p) in case.context.iter().enumerate() {
        if p.id.trim().is_empty() {
            return Err(DomainError::invalid(
                format!("context[{i}].id"),
                "must not be empty",
            ));
        }
        if !seen.insert(p.id.as_str()) {
            return Err(DomainError::invalid(
                format!("context[{i}].id"),
                format!("duplicate passage id {:?}", p.id),
            ));
        }
    }
    Ok(())
}

/// A share to six decimals, for reasons.
fn fmt_share(x: f64) -> String {
    format!("{x:.6}")
}

#[cfg(test)]
mod tests;
