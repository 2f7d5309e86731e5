//! The public types: issues, the facts a [`Context`] brings, estimates and the outcome.

use serde::Serialize;
use serde_json::Value;

/// Issue severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem with a config: where, which rule, and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub path: String,
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl Issue {
    pub(super) fn new(
        severity: Severity,
        path: &str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.to_string(),
            code,
            severity,
            message: message.into(),
            value: None,
            constraint: None,
            fields: Vec::new(),
        }
    }
}

/// What the dataset is, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetShape {
    /// Raw text or `{"text"}` rows.
    Text,
    /// Conversations or prompt–completion rows.
    Supervised,
    /// `{prompt, chosen, rejected}` (or OpenAI DPO) rows.
    Preference,
    /// `{prompt, completion, label}` rows (KTO).
    Unpaired,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetFacts {
    pub shape: DatasetShape,
    /// The format inferred from the rows (`data.format` when not given).
    pub format: &'static str,
    pub examples: u64,
    /// Mean tokens per example (for the token and duration estimates).
    pub mean_tokens: f64,
}

/// A model the trainer can start from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    pub id: String,
    pub context_length: u64,
    pub parameters: u64,
}

/// What a trainer backend supports: the values it can honour per field
/// (anything else is `unsupported_by_trainer`), its models, and the device.
#[derive(Debug, Clone, Default)]
pub struct TrainerSupport {
    pub name: &'static str,
    /// `(path, supported values)`.
    pub values: Vec<(&'static str, Vec<Value>)>,
    /// When set, `model.name` must be one of these.
    pub models: Option<Vec<ModelFacts>>,
    /// Memory of the device training runs on, bytes.
    pub device_memory_bytes: Option<u64>,
    /// Peak training memory for (model, batch size, sequence length), bytes.
    pub memory_estimate: Option<fn(&ModelFacts, u64, u64) -> u64>,
    /// Training throughput in tokens per second, for duration estimates.
    pub tokens_per_second: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct Context {
    pub dataset: Option<DatasetFacts>,
    pub has_eval_dataset: bool,
    pub trainer: TrainerSupport,
    /// GPU catalog ids of the chosen provider (`None`: not checked).
    pub gpu_types: Option<Vec<String>>,
    /// Price of the chosen resources, $/hour.
    pub rate_usd_per_hour: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimates {
    pub total_steps: Option<u64>,
    pub tokens: Option<u64>,
    pub vram_gb: Option<f64>,
    pub duration_s: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// The outcome of validation: issues (errors) and warnings, each sorted by
/// path then code, and the normalized config with its hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    pub valid: bool,
    pub issues: Vec<Issue>,
    pub warnings: Vec<Issue>,
    pub normalized_config: Value,
    pub config_hash: String,
    pub estimates: Estimates,
}

impl Validation {
    /// `"Training config has 2 errors and 1 warning"`.
    pub fn summary(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        format!(
            "Training config has {} and {}",
            plural(self.issues.len(), "error"),
            plural(self.warnings.len(), "warning")
        )
    }
}
