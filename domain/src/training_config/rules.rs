//! Cross-field rules, method vs dataset, the GPU catalog and trainer support.

use super::fields::PREFERENCE_METHODS;
use super::path::{flag, get, int, num, text};
use super::types::{Context, DatasetShape, Issue, Severity};
use serde_json::{Value, json};

pub(super) fn cross_field_rules(
    config: &Value,
    ctx: &Context,
    method: &str,
    issues: &mut Vec<Issue>,
) {
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

pub(super) fn trainer_support(config: &Value, ctx: &Context, issues: &mut Vec<Issue>) {
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
