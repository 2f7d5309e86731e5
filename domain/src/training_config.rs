//! The training job config (`training-config.md` §1–4): legacy names mapped,
//! every rule checked and every issue reported (never only the first),
//! defaults filled in, and the normalized config hashed.
//!
//! Pure: what the rules need to know about the dataset, the trainer backend
//! and the device arrives in a [`Context`] built by the caller.

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

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
    fn new(severity: Severity, path: &str, code: &'static str, message: impl Into<String>) -> Self {
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

/// Allowed values and bounds of one field.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    Bool,
    /// Inclusive integer bounds.
    Int(i64, i64),
    /// Number bounds: (min, min exclusive, max, max exclusive).
    Num(f64, bool, f64, bool),
    Enum(&'static [&'static str]),
    StrList,
    /// List of integers within bounds.
    IntList(i64, i64),
    /// Any JSON (free-form options such as tool definitions).
    Any,
}

/// A field: path, kind, nullable, default (JSON text; `"null"` when none).
struct Field(&'static str, Kind, bool, &'static str);

const METHODS: &[&str] = &["sft", "dpo", "orpo", "kto", "rlhf", "cpt"];
const PREFERENCE_METHODS: &[&str] = &["dpo", "orpo"];
const FORMATS: &[&str] = &[
    "openai_chat",
    "chatml",
    "sharegpt",
    "alpaca",
    "openorca",
    "prompt_completion",
    "preference",
    "openai_dpo",
    "kto",
    "raw_text",
];
const U32_MAX: i64 = 4_294_967_295;
const BIG: i64 = i64::MAX;
/// Step counts: a step is a metric point's step, at most 2^53 − 1.
const STEPS: i64 = crate::limits::MAX_STEP;

#[rustfmt::skip]
const FIELDS: &[Field] = &[
    Field("model.name", Kind::Str, false, "null"),
    Field("model.revision", Kind::Str, true, "null"),
    Field("model.trust_remote_code", Kind::Bool, false, "false"),
    Field("model.torch_dtype", Kind::Enum(&["float16", "bfloat16", "float32", "auto"]), false, "\"bfloat16\""),
    Field("model.device_map", Kind::Enum(&["auto", "cuda", "cpu"]), false, "\"auto\""),
    Field("tokenizer.name", Kind::Str, true, "null"),
    Field("tokenizer.trust_remote_code", Kind::Bool, true, "null"),
    Field("tokenizer.padding_side", Kind::Enum(&["left", "right"]), true, "null"),
    Field("tokenizer.add_eos_token", Kind::Bool, true, "null"),
    Field("tokenizer.chat_template", Kind::Str, true, "null"),
    Field("training.method", Kind::Enum(METHODS), false, "\"sft\""),
    Field("training.num_epochs", Kind::Num(0.0, true, f64::MAX, false), false, "3"),
    Field("training.max_steps", Kind::Int(1, STEPS), true, "null"),
    Field("training.learning_rate", Kind::Num(0.0, true, 1.0, false), false, "0.0002"),
    Field("training.batch_size", Kind::Int(1, 4096), false, "4"),
    Field("training.gradient_accumulation_steps", Kind::Int(1, 1024), false, "1"),
    Field("training.warmup_steps", Kind::Int(0, STEPS), false, "100"),
    Field("training.warmup_ratio", Kind::Num(0.0, false, 1.0, true), true, "null"),
    Field("training.lr_scheduler_type", Kind::Enum(&["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"]), false, "\"cosine\""),
    Field("training.optim", Kind::Enum(&["adamw_torch", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "sgd"]), false, "\"paged_adamw_8bit\""),
    Field("training.weight_decay", Kind::Num(0.0, false, f64::MAX, false), false, "0.01"),
    Field("training.adam_beta1", Kind::Num(0.0, true, 1.0, true), false, "0.9"),
    Field("training.adam_beta2", Kind::Num(0.0, true, 1.0, true), false, "0.999"),
    Field("training.adam_epsilon", Kind::Num(0.0, true, f64::MAX, false), false, "1e-8"),
    Field("training.max_grad_norm", Kind::Num(0.0, true, f64::MAX, false), false, "1.0"),
    Field("training.max_length", Kind::Int(16, 131_072), false, "512"),
    Field("training.max_prompt_length", Kind::Int(1, 131_072), true, "null"),
    Field("training.beta", Kind::Num(0.0, true, f64::MAX, false), false, "0.1"),
    Field("training.packing", Kind::Bool, false, "false"),
    Field("training.bf16", Kind::Bool, false, "true"),
    Field("training.fp16", Kind::Bool, false, "false"),
    Field("training.gradient_checkpointing", Kind::Bool, false, "true"),
    Field("training.logging_steps", Kind::Int(1, STEPS), false, "10"),
    Field("training.group_by_length", Kind::Bool, false, "false"),
    Field("training.dataloader_num_workers", Kind::Int(0, 64), false, "4"),
    Field("training.dataloader_prefetch_factor", Kind::Int(1, BIG), true, "2"),
    Field("training.dataloader_pin_memory", Kind::Bool, false, "true"),
    Field("training.pretokenize", Kind::Bool, false, "false"),
    Field("training.use_streaming", Kind::Bool, false, "false"),
    Field("training.seed", Kind::Int(0, U32_MAX), false, "42"),
    Field("training.ppo.ppo_epochs", Kind::Int(1, BIG), false, "4"),
    Field("training.ppo.clip_range", Kind::Num(0.0, true, f64::MAX, false), false, "0.2"),
    Field("training.ppo.clip_range_value", Kind::Num(0.0, true, f64::MAX, false), false, "0.2"),
    Field("training.ppo.vf_coef", Kind::Num(0.0, false, f64::MAX, false), false, "0.1"),
    Field("training.ppo.entropy_coef", Kind::Num(0.0, false, f64::MAX, false), false, "0.01"),
    Field("lora.enabled", Kind::Bool, false, "true"),
    Field("lora.r", Kind::Int(1, 1024), false, "16"),
    Field("lora.alpha", Kind::Num(0.0, true, f64::MAX, false), false, "32"),
    Field("lora.dropout", Kind::Num(0.0, false, 1.0, true), false, "0.05"),
    Field("lora.target_modules", Kind::StrList, true, "null"),
    Field("lora.bias", Kind::Enum(&["none", "all", "lora_only"]), false, "\"none\""),
    Field("lora.task_type", Kind::Enum(&["CAUSAL_LM", "SEQ_CLS", "SEQ_2_SEQ_LM"]), false, "\"CAUSAL_LM\""),
    Field("lora.modules_to_save", Kind::StrList, false, "[]"),
    Field("quantization.load_in_4bit", Kind::Bool, false, "false"),
    Field("quantization.load_in_8bit", Kind::Bool, false, "false"),
    Field("quantization.bnb_4bit_quant_type", Kind::Enum(&["nf4", "fp4"]), false, "\"nf4\""),
    Field("quantization.bnb_4bit_compute_dtype", Kind::Enum(&["float16", "bfloat16", "float32"]), false, "\"bfloat16\""),
    Field("quantization.bnb_4bit_use_double_quant", Kind::Bool, false, "true"),
    Field("data.format", Kind::Enum(FORMATS), true, "null"),
    Field("data.tools", Kind::Any, false, "[]"),
    Field("data.train_split", Kind::Num(0.0, true, 1.0, false), false, "0.8"),
    Field("data.eval_split", Kind::Num(0.0, false, 1.0, true), false, "0.2"),
    Field("data.max_samples", Kind::Int(1, BIG), true, "null"),
    Field("data.shuffle_seed", Kind::Int(i64::MIN, BIG), false, "42"),
    Field("data.strategy", Kind::Str, false, "\"standard\""),
    Field("data.generation_type", Kind::Str, false, "\"real\""),
    Field("evaluation.strategy", Kind::Enum(&["no", "steps", "epoch"]), false, "\"steps\""),
    Field("evaluation.eval_steps", Kind::Int(1, STEPS), false, "500"),
    Field("evaluation.eval_batch_size", Kind::Int(1, 4096), true, "null"),
    Field("evaluation.metrics", Kind::StrList, false, "[\"eval_loss\", \"eval_perplexity\"]"),
    Field("evaluation.predictions.enabled", Kind::Bool, false, "false"),
    Field("evaluation.predictions.sample_count", Kind::Int(1, 100), false, "5"),
    Field("evaluation.predictions.frequency", Kind::Enum(&["epoch", "eval", "steps"]), false, "\"eval\""),
    Field("evaluation.predictions.step_interval", Kind::Int(1, STEPS), true, "null"),
    Field("checkpoint.save_strategy", Kind::Enum(&["no", "steps", "epoch", "time"]), false, "\"steps\""),
    Field("checkpoint.save_steps", Kind::Int(1, STEPS), true, "500"),
    Field("checkpoint.save_minutes", Kind::Int(1, BIG), true, "null"),
    Field("checkpoint.save_total_limit", Kind::Int(1, BIG), true, "3"),
    Field("checkpoint.save_on_pause", Kind::Bool, false, "true"),
    Field("checkpoint.metric_for_best_model", Kind::Str, false, "\"eval_loss\""),
    Field("checkpoint.greater_is_better", Kind::Bool, false, "false"),
    Field("checkpoint.resume.from", Kind::Enum(&["none", "latest", "best", "checkpoint", "step"]), false, "\"none\""),
    Field("checkpoint.resume.checkpoint_id", Kind::Str, true, "null"),
    Field("checkpoint.resume.step", Kind::Int(0, STEPS), true, "null"),
    Field("budget.max_cost_usd", Kind::Num(0.0, true, f64::MAX, false), true, "null"),
    Field("budget.max_runtime_minutes", Kind::Int(1, BIG), true, "null"),
    Field("budget.alert_thresholds_percent", Kind::IntList(1, 100), false, "[50, 80, 100]"),
    Field("budget.on_exceed", Kind::Enum(&["pause", "stop", "notify"]), false, "\"pause\""),
    Field("budget.stop_margin_s", Kind::Int(0, BIG), false, "60"),
    Field("resources.provider", Kind::Enum(&["local", "runpod", "aws", "gcp", "azure", "openai"]), false, "\"local\""),
    Field("resources.gpu_type", Kind::Str, true, "null"),
    Field("resources.gpu_count", Kind::Int(1, 16), false, "1"),
    Field("resources.use_spot", Kind::Bool, false, "false"),
    Field("resources.region", Kind::Str, true, "null"),
    Field("resources.max_recoveries", Kind::Int(0, 10), false, "3"),
    Field("distributed.strategy", Kind::Enum(&["none", "ddp", "fsdp", "deepspeed"]), false, "\"none\""),
];

/// Objects whose other keys are free-form options (not `unknown_field`).
const OPEN_OBJECTS: &[&str] = &["distributed"];
/// Objects that may be absent or null as a whole (their fields then default).
const OPTIONAL_OBJECTS: &[&str] = &["training.ppo"];

/// `(legacy path, new path, warn)`: §3. `training.lora_config.*` and
/// `training.checkpoint_resume` are handled in [`map_legacy`].
#[rustfmt::skip]
const LEGACY: &[(&str, &str)] = &[
    ("training.use_lora", "lora.enabled"),
    ("training.lora_r", "lora.r"),
    ("training.lora_alpha", "lora.alpha"),
    ("training.lora_dropout", "lora.dropout"),
    ("training.evaluation_strategy", "evaluation.strategy"),
    ("training.eval_steps", "evaluation.eval_steps"),
    ("training.eval_batch_size", "evaluation.eval_batch_size"),
    ("training.save_strategy", "checkpoint.save_strategy"),
    ("training.save_steps", "checkpoint.save_steps"),
    ("training.save_total_limit", "checkpoint.save_total_limit"),
    ("training.metric_for_best_model", "checkpoint.metric_for_best_model"),
    ("seed", "training.seed"),
    ("provider", "resources.provider"),
    ("tools", "data.tools"),
    ("predictions", "evaluation.predictions"),
    ("data.dataset_format", "data.format"),
    ("training.quantization", "quantization"),
    ("training.distributed", "distributed"),
];

#[rustfmt::skip]
const LORA_CONFIG: &[(&str, &str)] = &[
    ("r", "r"), ("lora_alpha", "alpha"), ("lora_dropout", "dropout"), ("target_modules", "target_modules"),
    ("bias", "bias"), ("task_type", "task_type"), ("modules_to_save", "modules_to_save"),
];

fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |node, key| node.get(key))
}

fn take(root: &mut Value, path: &str) -> Option<Value> {
    let (parent, key) = match path.rsplit_once('.') {
        Some((parent, key)) => (
            parent
                .split('.')
                .try_fold(&mut *root, |n, k| n.get_mut(k))?,
            key,
        ),
        None => (root, path),
    };
    parent.as_object_mut()?.remove(key)
}

fn set(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if keys.peek().is_none() {
            map.insert(key.to_string(), value);
            return;
        }
        node = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Move a legacy value to its new path; both present with different values
/// is `conflicting_fields`.
fn move_legacy(config: &mut Value, old: &str, new: &str, issues: &mut Vec<Issue>) {
    if let Some(value) = take(config, old) {
        place_legacy(config, old, value, new, issues);
    }
}

/// Put the value found at legacy path `old` at `new`, warning; both set and
/// different is `conflicting_fields`.
fn place_legacy(config: &mut Value, old: &str, value: Value, new: &str, issues: &mut Vec<Issue>) {
    let mut warning = Issue::new(
        Severity::Warning,
        old,
        "deprecated_field",
        format!("use {new}"),
    );
    warning.fields = vec![old.to_string(), new.to_string()];
    issues.push(warning);
    match get(config, new) {
        Some(existing) if *existing != value => {
            let mut conflict = Issue::new(
                Severity::Error,
                new,
                "conflicting_fields",
                format!("{old} ({value}) and {new} ({existing}) disagree; set only {new}"),
            );
            conflict.fields = vec![old.to_string(), new.to_string()];
            issues.push(conflict);
        }
        Some(_) => {}
        None => set(config, new, value),
    }
}

fn map_legacy(config: &mut Value, issues: &mut Vec<Issue>) {
    if let Some(Value::Object(lora)) = take(config, "training.lora_config") {
        for (old, new) in LORA_CONFIG {
            if let Some(value) = lora.get(*old) {
                let old = format!("training.lora_config.{old}");
                place_legacy(config, &old, value.clone(), &format!("lora.{new}"), issues);
            }
        }
    }
    if let Some(Value::Object(resume)) = take(config, "training.checkpoint_resume") {
        let mut warning = Issue::new(
            Severity::Warning,
            "training.checkpoint_resume",
            "deprecated_field",
            "use checkpoint.resume",
        );
        warning.fields = vec![
            "training.checkpoint_resume".into(),
            "checkpoint.resume".into(),
        ];
        issues.push(warning);
        let enabled = resume
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mut new = json!({"from": "none"});
        if enabled {
            if let Some(path) = resume.get("checkpoint_path").filter(|v| !v.is_null()) {
                new = json!({"from": "checkpoint", "checkpoint_id": path});
            } else if resume.get("resume_from_best").and_then(Value::as_bool) == Some(true) {
                new = json!({"from": "best"});
            } else if let Some(step) = resume.get("resume_from_step").filter(|v| !v.is_null()) {
                new = json!({"from": "step", "step": step});
            } else {
                new = json!({"from": "latest"});
            }
        }
        if get(config, "checkpoint.resume").is_none() {
            set(config, "checkpoint.resume", new);
        }
    }
    for (old, new) in LEGACY {
        move_legacy(config, old, new, issues);
    }
    if let Some(v) = take(config, "tensorboard") {
        let mut warning = Issue::new(
            Severity::Warning,
            "tensorboard",
            "deprecated_field",
            "dropped: metrics are served by FineTune Lab",
        );
        warning.value = Some(v);
        issues.push(warning);
    }
    // `data.max_samples: 0` means "all" in the existing app.
    if get(config, "data.max_samples").and_then(Value::as_i64) == Some(0) {
        set(config, "data.max_samples", Value::Null);
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn fmt_bound(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A bound as JSON: whole numbers as integers (`0`, not `0.0`).
fn bound_json(x: f64) -> Value {
    if x == x.trunc() && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// Check one present value against its kind.
fn check_value(path: &str, kind: Kind, value: &Value, issues: &mut Vec<Issue>) {
    let invalid_type = |expected: &str| {
        let mut i = Issue::new(
            Severity::Error,
            path,
            "invalid_type",
            format!("{path} must be {expected} (got {})", type_name(value)),
        );
        i.value = Some(value.clone());
        i
    };
    let name = path.rsplit('.').next().unwrap_or(path);
    match kind {
        Kind::Any => {}
        Kind::Str if !value.is_string() => issues.push(invalid_type("a string")),
        Kind::Bool if !value.is_boolean() => issues.push(invalid_type("a boolean")),
        Kind::Str | Kind::Bool => {}
        Kind::Int(min, max) => {
            // Integers past i64 (u64, or integral floats such as 1e20) are
            // out of range, not saturated into it.
            let n: Option<i128> = value
                .as_i64()
                .map(i128::from)
                .or_else(|| value.as_u64().map(i128::from))
                .or_else(|| {
                    value
                        .as_f64()
                        .filter(|f| f.is_finite() && f.fract() == 0.0)
                        .map(|f| f as i128)
                });
            match n {
                None => issues.push(invalid_type("an integer")),
                Some(n) if n < i128::from(min) || n > i128::from(max) => {
                    let message = if max == BIG {
                        format!("{name} must be >= {min} and fit a 64-bit integer (got {n})")
                    } else {
                        format!("{name} must be >= {min} and <= {max} (got {n})")
                    };
                    let mut i = Issue::new(Severity::Error, path, "out_of_range", message);
                    i.value = Some(value.clone());
                    i.constraint = Some(json!({"minimum": min, "maximum": max}));
                    issues.push(i);
                }
                Some(_) => {}
            }
        }
        Kind::Num(min, min_excl, max, max_excl) => match value.as_f64() {
            None => issues.push(invalid_type("a number")),
            Some(x) => {
                let low = if min_excl { x <= min } else { x < min };
                let high = if max_excl { x >= max } else { x > max };
                if low || high {
                    let lo = format!("{} {}", if min_excl { ">" } else { ">=" }, fmt_bound(min));
                    let bounded = max < f64::MAX;
                    let message = if bounded {
                        let hi =
                            format!("{} {}", if max_excl { "<" } else { "<=" }, fmt_bound(max));
                        format!("{name} must be {lo} and {hi} (got {value})")
                    } else {
                        format!("{name} must be {lo} (got {value})")
                    };
                    let mut constraint = Map::new();
                    constraint.insert(
                        (if min_excl {
                            "exclusive_minimum"
                        } else {
                            "minimum"
                        })
                        .into(),
                        bound_json(min),
                    );
                    if bounded {
                        constraint.insert(
                            (if max_excl {
                                "exclusive_maximum"
                            } else {
                                "maximum"
                            })
                            .into(),
                            bound_json(max),
                        );
                    }
                    let mut i = Issue::new(Severity::Error, path, "out_of_range", message);
                    i.value = Some(value.clone());
                    i.constraint = Some(Value::Object(constraint));
                    issues.push(i);
                }
            }
        },
        Kind::Enum(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => {}
            Some(s) => {
                let mut i = Issue::new(
                    Severity::Error,
                    path,
                    "invalid_enum",
                    format!("{name} must be one of {} (got {s:?})", allowed.join(", ")),
                );
                i.value = Some(value.clone());
                i.constraint = Some(json!({"enum": allowed}));
                issues.push(i);
            }
            None => issues.push(invalid_type("a string")),
        },
        Kind::StrList => match value.as_array() {
            Some(items) => {
                for (n, item) in items.iter().enumerate() {
                    check_value(&format!("{path}[{n}]"), Kind::Str, item, issues);
                }
            }
            None => issues.push(invalid_type("a list of strings")),
        },
        Kind::IntList(min, max) => match value.as_array() {
            Some(items) => {
                for (n, item) in items.iter().enumerate() {
                    check_value(&format!("{path}[{n}]"), Kind::Int(min, max), item, issues);
                }
            }
            None => issues.push(invalid_type("a list of integers")),
        },
    }
}

/// Report keys that are not fields (or parents of fields).
fn check_unknown(node: &Value, prefix: &str, issues: &mut Vec<Issue>) {
    let Value::Object(map) = node else { return };
    if OPEN_OBJECTS.contains(&prefix) {
        return;
    }
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let is_field = FIELDS.iter().any(|f| f.0 == path);
        let is_parent = FIELDS.iter().any(|f| f.0.starts_with(&format!("{path}.")));
        if is_field {
            continue;
        }
        if is_parent {
            if value.is_object() {
                check_unknown(value, &path, issues);
            } else if !(value.is_null() && OPTIONAL_OBJECTS.contains(&path.as_str())) {
                let mut i = Issue::new(
                    Severity::Error,
                    &path,
                    "invalid_type",
                    format!("{path} must be an object (got {})", type_name(value)),
                );
                i.value = Some(value.clone());
                issues.push(i);
            }
        } else {
            issues.push(Issue::new(
                Severity::Error,
                &path,
                "unknown_field",
                format!("{path} is not a config field"),
            ));
        }
    }
}

fn num(config: &Value, path: &str) -> Option<f64> {
    get(config, path).and_then(Value::as_f64)
}
fn int(config: &Value, path: &str) -> Option<i64> {
    get(config, path).and_then(Value::as_i64)
}
fn text<'a>(config: &'a Value, path: &str) -> Option<&'a str> {
    get(config, path).and_then(Value::as_str)
}
fn flag(config: &Value, path: &str) -> bool {
    get(config, path).and_then(Value::as_bool).unwrap_or(false)
}

/// Validate and normalize a submitted config.
pub fn validate(input: &Value, ctx: &Context) -> Validation {
    let mut issues = Vec::new();
    let mut config = input.clone();
    if !config.is_object() {
        issues.push(Issue::new(
            Severity::Error,
            "",
            "invalid_type",
            format!("config must be an object (got {})", type_name(input)),
        ));
        config = json!({});
    }
    map_legacy(&mut config, &mut issues);
    check_unknown(&config, "", &mut issues);
    let ppo_given = get(&config, "training.ppo").is_some_and(|v| !v.is_null());

    // Types and ranges of what was given; then defaults.
    for Field(path, kind, nullable, default) in FIELDS {
        if path.starts_with("training.ppo.") && !ppo_given {
            continue;
        }
        match get(&config, path) {
            Some(Value::Null) if *nullable => {}
            Some(Value::Null) | None if *path == "model.name" => {
                issues.push(Issue::new(
                    Severity::Error,
                    path,
                    "required",
                    "model.name is required",
                ));
            }
            Some(Value::Null) | None => {
                let value = serde_json::from_str(default).unwrap_or(Value::Null);
                set(&mut config, path, value);
            }
            Some(value) => {
                let value = value.clone();
                check_value(path, *kind, &value, &mut issues);
            }
        }
    }
    if !ppo_given {
        set(&mut config, "training.ppo", Value::Null);
    }

    // Defaults that follow other fields.
    if get(&config, "tokenizer.name").is_none_or(Value::is_null)
        && let Some(model) = get(&config, "model.name").cloned()
    {
        set(&mut config, "tokenizer.name", model);
    }
    if get(&config, "tokenizer.trust_remote_code").is_none_or(Value::is_null) {
        let trust = get(&config, "model.trust_remote_code")
            .cloned()
            .unwrap_or(json!(false));
        set(&mut config, "tokenizer.trust_remote_code", trust);
    }
    if get(&config, "evaluation.eval_batch_size").is_none_or(Value::is_null) {
        let batch = get(&config, "training.batch_size")
            .cloned()
            .unwrap_or(json!(4));
        set(&mut config, "evaluation.eval_batch_size", batch);
    }
    let method = text(&config, "training.method")
        .unwrap_or("sft")
        .to_string();
    let preference = PREFERENCE_METHODS.contains(&method.as_str()) || method == "kto";
    if preference
        && get(&config, "training.max_prompt_length").is_none_or(Value::is_null)
        && let Some(max_length) = int(&config, "training.max_length")
    {
        set(
            &mut config,
            "training.max_prompt_length",
            json!(max_length / 2),
        );
    }
    if get(&config, "data.format").is_none_or(Value::is_null)
        && let Some(dataset) = &ctx.dataset
    {
        set(&mut config, "data.format", json!(dataset.format));
    }

    cross_field_rules(&config, ctx, &method, &mut issues);
    trainer_support(&config, ctx, &mut issues);
    let estimates = estimate(&config, ctx, &mut issues);

    let (mut errors, mut warnings): (Vec<Issue>, Vec<Issue>) = issues
        .into_iter()
        .partition(|i| i.severity == Severity::Error);
    let order = |a: &Issue, b: &Issue| a.path.cmp(&b.path).then(a.code.cmp(b.code));
    errors.sort_by(order);
    warnings.sort_by(order);
    // serde_json's Map is a BTreeMap: keys serialize sorted, without whitespace.
    let canonical = serde_json::to_string(&config).unwrap_or_default();
    Validation {
        valid: errors.is_empty(),
        issues: errors,
        warnings,
        config_hash: hex::encode(Sha256::digest(canonical.as_bytes())),
        normalized_config: config,
        estimates,
    }
}

fn cross_field_rules(config: &Value, ctx: &Context, method: &str, issues: &mut Vec<Issue>) {
    let exclusive = |a: &str, b: &str, path: &str, message: &str, issues: &mut Vec<Issue>| {
        if flag(config, a) && flag(config, b) {
            let mut i = Issue::new(Severity::Error, path, "mutually_exclusive", message);
            i.fields = vec![a.into(), b.into()];
            issues.push(i);
        }
    };
    exclusive(
        "quantization.load_in_4bit",
        "quantization.load_in_8bit",
        "quantization",
        "load_in_4bit and load_in_8bit cannot both be true",
        issues,
    );
    exclusive(
        "training.bf16",
        "training.fp16",
        "training",
        "bf16 and fp16 cannot both be true",
        issues,
    );

    let requires = |path: &str, message: &str, fields: &[&str], issues: &mut Vec<Issue>| {
        let mut i = Issue::new(Severity::Error, path, "requires", message);
        i.fields = fields.iter().map(|f| f.to_string()).collect();
        issues.push(i);
    };
    let quantized =
        flag(config, "quantization.load_in_4bit") || flag(config, "quantization.load_in_8bit");
    if quantized && !flag(config, "lora.enabled") {
        requires(
            "quantization",
            "quantized training requires lora.enabled (QLoRA)",
            &["quantization", "lora.enabled"],
            issues,
        );
    }
    if int(config, "training.dataloader_num_workers") == Some(0)
        && get(config, "training.dataloader_prefetch_factor").is_some_and(|v| !v.is_null())
    {
        requires(
            "training.dataloader_prefetch_factor",
            "dataloader_prefetch_factor requires dataloader_num_workers > 0 (set it to null)",
            &[
                "training.dataloader_prefetch_factor",
                "training.dataloader_num_workers",
            ],
            issues,
        );
    }
    let eval_off = text(config, "evaluation.strategy") == Some("no");
    if eval_off
        && text(config, "checkpoint.metric_for_best_model").is_some_and(|m| m.starts_with("eval_"))
    {
        requires(
            "checkpoint.metric_for_best_model",
            "an eval metric for the best model requires evaluation (evaluation.strategy is no)",
            &["checkpoint.metric_for_best_model", "evaluation.strategy"],
            issues,
        );
    }
    for (strategy, field) in [
        ("steps", "checkpoint.save_steps"),
        ("time", "checkpoint.save_minutes"),
    ] {
        if text(config, "checkpoint.save_strategy") == Some(strategy)
            && get(config, field).is_none_or(Value::is_null)
        {
            requires(
                field,
                &format!("save_strategy {strategy} requires {field}"),
                &[field, "checkpoint.save_strategy"],
                issues,
            );
        }
    }
    match text(config, "checkpoint.resume.from") {
        Some("checkpoint")
            if get(config, "checkpoint.resume.checkpoint_id").is_none_or(Value::is_null) =>
        {
            requires(
                "checkpoint.resume.checkpoint_id",
                "resume from checkpoint requires checkpoint_id",
                &["checkpoint.resume.checkpoint_id"],
                issues,
            )
        }
        Some("step") if get(config, "checkpoint.resume.step").is_none_or(Value::is_null) => {
            requires(
                "checkpoint.resume.step",
                "resume from step requires step",
                &["checkpoint.resume.step"],
                issues,
            )
        }
        _ => {}
    }

    // Splits.
    let (train, eval) = (
        num(config, "data.train_split").unwrap_or(0.8),
        num(config, "data.eval_split").unwrap_or(0.2),
    );
    if !ctx.has_eval_dataset {
        if train + eval > 1.0 + 1e-9 {
            let mut i = Issue::new(
                Severity::Error,
                "data",
                "split_sum",
                format!(
                    "train_split + eval_split must be <= 1 (got {})",
                    train + eval
                ),
            );
            i.fields = vec!["data.train_split".into(), "data.eval_split".into()];
            issues.push(i);
        } else if !eval_off && eval == 0.0 {
            let mut i = Issue::new(
                Severity::Error,
                "data.eval_split",
                "split_sum",
                "evaluation is on but eval_split is 0 and no eval dataset is given",
            );
            i.fields = vec!["data.eval_split".into(), "evaluation.strategy".into()];
            issues.push(i);
        }
    }

    // Method vs dataset.
    if let Some(dataset) = &ctx.dataset {
        use DatasetShape::*;
        let fits = match method {
            "dpo" | "orpo" => dataset.shape == Preference,
            "kto" => dataset.shape == Unpaired,
            "cpt" => dataset.shape == Text,
            _ => matches!(dataset.shape, Supervised | Text),
        };
        if !fits {
            let shape = match dataset.shape {
                Text => "text",
                Supervised => "supervised (chat or prompt-completion)",
                Preference => "preference",
                Unpaired => "unpaired preference (KTO)",
            };
            let mut i = Issue::new(
                Severity::Error,
                "training.method",
                "incompatible_dataset",
                format!("method {method} cannot train on a {shape} dataset"),
            );
            i.value = Some(json!(method));
            issues.push(i);
        }
    }
    if flag(config, "training.packing") && (preference_method(method)) {
        let mut i = Issue::new(
            Severity::Error,
            "training.packing",
            "incompatible_dataset",
            format!("packing is for SFT; method {method} trains on pairs"),
        );
        i.fields = vec!["training.packing".into(), "training.method".into()];
        issues.push(i);
    }

    // GPU catalog.
    if let (Some(gpu), Some(catalog)) = (text(config, "resources.gpu_type"), &ctx.gpu_types)
        && !catalog.iter().any(|g| g == gpu)
    {
        let mut i = Issue::new(
            Severity::Error,
            "resources.gpu_type",
            "unknown_gpu_type",
            format!(
                "{gpu} is not in the {} catalog (known: {})",
                text(config, "resources.provider").unwrap_or("local"),
                catalog.join(", ")
            ),
        );
        i.value = Some(json!(gpu));
        issues.push(i);
    }

    // Warnings.
    if num(config, "training.learning_rate").is_some_and(|lr| lr > 1e-3) {
        issues.push(Issue::new(
            Severity::Warning,
            "training.learning_rate",
            "high_learning_rate",
            "learning_rate above 1e-3 often diverges when fine-tuning",
        ));
    }
    if text(config, "model.torch_dtype") == Some("float32") {
        issues.push(Issue::new(
            Severity::Warning,
            "model.torch_dtype",
            "float32_vram",
            "float32 weights take twice the memory of bfloat16",
        ));
    }
}

fn preference_method(method: &str) -> bool {
    PREFERENCE_METHODS.contains(&method) || method == "kto"
}

fn trainer_support(config: &Value, ctx: &Context, issues: &mut Vec<Issue>) {
    let trainer = &ctx.trainer;
    for (path, supported) in &trainer.values {
        if let Some(value) = get(config, path)
            && !supported.contains(value)
        {
            let list: Vec<String> = supported.iter().map(Value::to_string).collect();
            let mut i = Issue::new(
                Severity::Error,
                path,
                "unsupported_by_trainer",
                format!(
                    "the {} trainer cannot run {path} = {value}; it supports {}",
                    trainer.name,
                    list.join(", ")
                ),
            );
            i.value = Some(value.clone());
            i.constraint = Some(json!({"supported": supported}));
            issues.push(i);
        }
    }
    if let (Some(models), Some(name)) = (&trainer.models, text(config, "model.name"))
        && !models.iter().any(|m| m.id == name)
    {
        let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
        let mut i = Issue::new(
            Severity::Error,
            "model.name",
            "unsupported_by_trainer",
            format!(
                "the {} trainer has no model {name:?}; it can start from {}",
                trainer.name,
                ids.join(", ")
            ),
        );
        i.value = Some(json!(name));
        i.constraint = Some(json!({"supported": ids}));
        issues.push(i);
    }
}

fn estimate(config: &Value, ctx: &Context, issues: &mut Vec<Issue>) -> Estimates {
    let mut out = Estimates {
        total_steps: None,
        tokens: None,
        vram_gb: None,
        duration_s: None,
        cost_usd: None,
    };
    let batch = int(config, "training.batch_size").unwrap_or(4).max(1) as u64;
    let accumulation = int(config, "training.gradient_accumulation_steps")
        .unwrap_or(1)
        .max(1) as u64;
    let max_length = int(config, "training.max_length").unwrap_or(512).max(1) as u64;
    let model = ctx.trainer.models.as_ref().and_then(|models| {
        text(config, "model.name").and_then(|n| models.iter().find(|m| m.id == n))
    });
    // max_steps fixes the step count with or without a dataset.
    out.total_steps = int(config, "training.max_steps").map(|s| s.max(1) as u64);
    if let Some(dataset) = &ctx.dataset {
        let mut examples = dataset.examples;
        if let Some(max) = int(config, "data.max_samples") {
            examples = examples.min(max.max(0) as u64);
        }
        let train = if ctx.has_eval_dataset {
            examples
        } else {
            ((examples as f64) * num(config, "data.train_split").unwrap_or(0.8)).round() as u64
        }
        .max(1);
        let per_epoch = train.div_ceil(batch * accumulation);
        let total = match int(config, "training.max_steps") {
            Some(steps) => steps.max(1) as u64,
            None => ((per_epoch as f64) * num(config, "training.num_epochs").unwrap_or(3.0))
                .ceil()
                .max(1.0) as u64,
        };
        out.total_steps = Some(total);
        let tokens_per_example = dataset.mean_tokens.min(max_length as f64);
        let tokens = (total * batch * accumulation) as f64 * tokens_per_example;
        out.tokens = Some(tokens as u64);
        if let Some(rate) = ctx.trainer.tokens_per_second.filter(|r| *r > 0.0) {
            let duration = tokens / rate;
            out.duration_s = Some(duration);
            if let Some(usd) = ctx.rate_usd_per_hour {
                out.cost_usd = Some(usd * duration / 3600.0);
                if let (Some(cap), Some(first)) = (
                    num(config, "budget.max_cost_usd"),
                    first_checkpoint_steps(config, per_epoch),
                ) && total > 0
                {
                    let to_first =
                        usd * duration * (first.min(total) as f64 / total as f64) / 3600.0;
                    if to_first > cap {
                        issues.push(Issue::new(
                            Severity::Warning,
                            "budget.max_cost_usd",
                            "budget_below_first_checkpoint",
                            format!("the first checkpoint is projected to cost ${to_first:.2}, above the ${cap:.2} budget"),
                        ));
                    }
                }
            }
        }
        let warmup = match (
            int(config, "training.warmup_steps"),
            num(config, "training.warmup_ratio"),
        ) {
            (Some(steps), _) if get(config, "training.warmup_steps").is_some() => {
                steps.max(0) as u64
            }
            (_, Some(ratio)) => (ratio * total as f64).ceil() as u64,
            _ => 0,
        };
        if total > 0 && warmup as f64 >= 0.1 * total as f64 && warmup > 0 {
            issues.push(Issue::new(
                Severity::Warning,
                "training.warmup_steps",
                "warmup_exceeds_steps",
                format!(
                    "warmup of {warmup} steps is {:.0} % of the {total} total steps",
                    100.0 * warmup as f64 / total as f64
                ),
            ));
        }
    }
    if let Some(model) = model {
        if max_length > model.context_length {
            issues.push(Issue::new(
                Severity::Warning,
                "training.max_length",
                "exceeds_model_context",
                format!("max_length {max_length} is above the context length {} of {}: sequences are cut there", model.context_length, model.id),
            ));
        }
        if let Some(estimate) = ctx.trainer.memory_estimate {
            let bytes = estimate(model, batch, max_length.min(model.context_length));
            let gb = bytes as f64 / f64::from(1u32 << 30);
            out.vram_gb = Some(gb);
            if let Some(device) = ctx.trainer.device_memory_bytes
                && bytes > device
            {
                let mut i = Issue::new(
                    Severity::Warning,
                    "training.batch_size",
                    "vram_estimate_exceeds_gpu",
                    format!(
                        "estimated peak memory {gb:.2} GiB exceeds the device's {:.2} GiB",
                        device as f64 / f64::from(1u32 << 30)
                    ),
                );
                i.value = Some(json!(gb));
                issues.push(i);
            }
        }
    }
    out
}

fn first_checkpoint_steps(config: &Value, per_epoch: u64) -> Option<u64> {
    match text(config, "checkpoint.save_strategy") {
        Some("steps") => int(config, "checkpoint.save_steps").map(|s| s.max(1) as u64),
        Some("epoch") => Some(per_epoch),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
