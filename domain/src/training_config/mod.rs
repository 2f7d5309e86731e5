//! The training job config (`training-config.md` §1–4): legacy names mapped,
//! every rule checked and every issue reported (never only the first),
//! defaults filled in, and the normalized config hashed.
//!
//! Pure: what the rules need to know about the dataset, the trainer backend
//! and the device arrives in a [`Context`] built by the caller.

mod check;
mod estimate;
mod fields;
mod legacy;
mod path;
mod rules;
mod types;

pub use types::{
    Context, DatasetFacts, DatasetShape, Estimates, Issue, ModelFacts, Severity, TrainerSupport,
    Validation,
};

use check::{check_unknown, check_value, type_name};
use estimate::estimate;
use fields::{FIELDS, Field, PREFERENCE_METHODS};
use legacy::map_legacy;
use path::{get, int, set, text};
use rules::{cross_field_rules, trainer_support};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

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

#[cfg(test)]
mod tests;
