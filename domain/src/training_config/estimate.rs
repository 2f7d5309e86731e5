//! Step, token, memory, duration and cost estimates, and the warnings they raise.

use super::path::{get, int, num, text};
use super::types::{Context, Estimates, Issue, Severity};
use serde_json::{Value, json};

pub(super) fn estimate(config: &Value, ctx: &Context, issues: &mut Vec<Issue>) -> Estimates {
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
