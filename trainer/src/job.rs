//! The built-in trainer as a job backend: the models it starts from, what
//! it supports of the job config (`training-config.md`), and the mapping
//! from a normalized job config to a [`TrainConfig`].

use ftl_domain::training_config::{DatasetFacts, DatasetShape, ModelFacts, TrainerSupport};
use serde_json::{Value, json};

use crate::TrainError;
use crate::config::{Method, TrainConfig};
use crate::dataset::{Dataset, DatasetKind, Example};
use crate::model::ModelConfig;
use crate::run::{RunPlan, SaveEvery};
use crate::schedule::ScheduleKind;

/// Everything a run of a normalized job config needs, read from it in one place.
pub struct Prepared {
    /// (train, eval) examples.
    pub split: (Vec<Example>, Vec<Example>),
    pub train: TrainConfig,
    pub plan: RunPlan,
    /// `checkpoint.save_total_limit` (`None`: keep all).
    pub keep_last: Option<usize>,
}

/// Split the dataset, map the trainer config and the run plan.
pub fn prepare(
    config: &Value,
    dataset: &Dataset,
    model: ModelConfig,
) -> Result<Prepared, TrainError> {
    let split = dataset.split(
        number(config, "data.train_split")?,
        number(config, "data.eval_split")?,
        field(config, "data.shuffle_seed")?.as_i64().unwrap_or(42) as u64,
    );
    let train = train_config(config, model, split.0.len())?;
    let steps_per_epoch = (split.0.len() as u64).div_ceil(train.samples_per_step());
    Ok(Prepared {
        plan: run_plan(config, steps_per_epoch),
        keep_last: field(config, "checkpoint.save_total_limit")?
            .as_u64()
            .map(|n| n as usize),
        split,
        train,
    })
}

/// The run plan (logging, evaluation, saving) a normalized config describes.
fn run_plan(config: &Value, steps_per_epoch: u64) -> RunPlan {
    let int = |path: &str| field(config, path).ok().and_then(Value::as_u64);
    let text = |path: &str| string(config, path).unwrap_or("");
    let eval_steps = match text("evaluation.strategy") {
        "steps" => int("evaluation.eval_steps"),
        "epoch" => Some(steps_per_epoch.max(1)),
        _ => None,
    };
    let save = match text("checkpoint.save_strategy") {
        "steps" => int("checkpoint.save_steps").map_or(SaveEvery::Never, SaveEvery::Steps),
        "epoch" => SaveEvery::Epoch,
        "time" => int("checkpoint.save_minutes").map_or(SaveEvery::Never, SaveEvery::Minutes),
        _ => SaveEvery::Never,
    };
    RunPlan {
        logging_steps: int("training.logging_steps").unwrap_or(10).max(1),
        eval_steps,
        save,
        save_on_pause: field(config, "checkpoint.save_on_pause")
            .ok()
            .and_then(Value::as_bool)
            .unwrap_or(true),
    }
}

/// The models a job can start from by name (fresh weights of that size).
pub const PRESETS: [(&str, ModelConfig); 3] = [
    (
        "ftl/byte-transformer-tiny",
        ModelConfig {
            n_layers: 2,
            d_model: 64,
            n_heads: 4,
            d_ff: 256,
            context: 256,
        },
    ),
    (
        "ftl/byte-transformer-small",
        ModelConfig {
            n_layers: 4,
            d_model: 128,
            n_heads: 4,
            d_ff: 512,
            context: 512,
        },
    ),
    (
        "ftl/byte-transformer-base",
        ModelConfig {
            n_layers: 6,
            d_model: 256,
            n_heads: 8,
            d_ff: 1024,
            context: 1024,
        },
    ),
];

pub fn preset(name: &str) -> Option<ModelConfig> {
    PRESETS.iter().find(|(id, _)| *id == name).map(|(_, c)| *c)
}

fn facts(id: &str, config: &ModelConfig) -> ModelFacts {
    ModelFacts {
        id: id.to_string(),
        context_length: config.context as u64,
        parameters: config.parameter_count(),
    }
}

fn memory(model: &ModelFacts, batch: u64, seq: u64) -> u64 {
    preset(&model.id)
        .map(|c| c.training_memory_bytes(batch as usize, seq as usize))
        .unwrap_or(model.parameters * 16)
}

/// What the built-in trainer honours. `extra_models` are models trained
/// here that a job may start from (by id, with their size).
pub fn support(
    extra_models: &[(String, ModelConfig)],
    device_memory_bytes: Option<u64>,
) -> TrainerSupport {
    let mut models: Vec<ModelFacts> = PRESETS.iter().map(|(id, c)| facts(id, c)).collect();
    models.extend(extra_models.iter().map(|(id, c)| facts(id, c)));
    TrainerSupport {
        name: "built-in burn",
        values: vec![
            (
                "training.method",
                vec![json!("sft"), json!("dpo"), json!("cpt")],
            ),
            // Full fine-tuning in f32 with a 32-bit AdamW on one device.
            ("lora.enabled", vec![json!(false)]),
            ("quantization.load_in_4bit", vec![json!(false)]),
            ("quantization.load_in_8bit", vec![json!(false)]),
            (
                "training.optim",
                vec![json!("adamw_torch"), json!("paged_adamw_32bit")],
            ),
            ("model.torch_dtype", vec![json!("float32"), json!("auto")]),
            ("training.bf16", vec![json!(false)]),
            ("training.fp16", vec![json!(false)]),
            ("training.packing", vec![json!(false)]),
            ("data.tools", vec![json!([])]),
            ("distributed.strategy", vec![json!("none")]),
            ("resources.gpu_count", vec![json!(1)]),
            ("resources.provider", vec![json!("local")]),
        ],
        models: Some(models),
        device_memory_bytes,
        memory_estimate: Some(memory),
        // Measured on the CI machine's class (2 cores) with the tiny preset.
        tokens_per_second: Some(18_000.0),
    }
}

/// What validation needs to know about a parsed dataset.
pub fn dataset_facts(dataset: &Dataset, raw_text: bool) -> DatasetFacts {
    let (shape, format) = match dataset.kind {
        DatasetKind::Text => (
            DatasetShape::Text,
            if raw_text {
                "raw_text"
            } else {
                "prompt_completion"
            },
        ),
        DatasetKind::Supervised => (DatasetShape::Supervised, "openai_chat"),
        DatasetKind::Preference => (DatasetShape::Preference, "preference"),
    };
    let tokens: usize = dataset
        .examples
        .iter()
        .map(|e| match e {
            Example::Sequence(s) => s.len(),
            Example::Preference {
                prompt,
                chosen,
                rejected,
            } => 2 * prompt.len() + chosen.len() + rejected.len(),
        })
        .sum();
    DatasetFacts {
        shape,
        format,
        examples: dataset.examples.len() as u64,
        mean_tokens: tokens as f64 / dataset.examples.len().max(1) as f64,
    }
}

fn field<'a>(config: &'a Value, path: &str) -> Result<&'a Value, TrainError> {
    path.split('.')
        .try_fold(config, |node, key| node.get(key))
        .ok_or_else(|| TrainError::Config(format!("normalized config has no {path}")))
}
fn number(config: &Value, path: &str) -> Result<f64, TrainError> {
    field(config, path)?
        .as_f64()
        .ok_or_else(|| TrainError::Config(format!("{path} must be a number")))
}
fn integer(config: &Value, path: &str) -> Result<u64, TrainError> {
    field(config, path)?
        .as_u64()
        .ok_or_else(|| TrainError::Config(format!("{path} must be a non-negative integer")))
}
fn string<'a>(config: &'a Value, path: &str) -> Result<&'a str, TrainError> {
    field(config, path)?
        .as_str()
        .ok_or_else(|| TrainError::Config(format!("{path} must be a string")))
}

/// Optimizer steps a config runs for on `train_examples` examples.
pub fn total_steps(config: &Value, train_examples: usize) -> Result<u64, TrainError> {
    if let Some(steps) = field(config, "training.max_steps")?.as_u64() {
        return Ok(steps.max(1));
    }
    let per_step = integer(config, "training.batch_size")?
        * integer(config, "training.gradient_accumulation_steps")?;
    let per_epoch = (train_examples as u64).div_ceil(per_step.max(1));
    Ok(
        ((per_epoch as f64) * number(config, "training.num_epochs")?)
            .ceil()
            .max(1.0) as u64,
    )
}

/// Map a normalized (validated) job config onto the trainer's config.
/// `model` is the size of the starting model (a preset or a model trained here).
pub fn train_config(
    config: &Value,
    model: ModelConfig,
    train_examples: usize,
) -> Result<TrainConfig, TrainError> {
    let method = match string(config, "training.method")? {
        "sft" => Method::Sft,
        "dpo" => Method::Dpo,
        "cpt" => Method::Cpt,
        other => {
            return Err(TrainError::Config(format!(
                "the built-in trainer cannot run method {other}"
            )));
        }
    };
    let schedule = string(config, "training.lr_scheduler_type")?;
    let schedule = ScheduleKind::ALL
        .iter()
        .find(|(name, _)| *name == schedule)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| TrainError::Config(format!("unknown lr_scheduler_type {schedule}")))?;
    let total_steps = total_steps(config, train_examples)?;
    // Hugging Face: warmup_steps wins when set (> 0), else ceil(ratio × total).
    let warmup_steps = match (
        integer(config, "training.warmup_steps")?,
        field(config, "training.warmup_ratio")?.as_f64(),
    ) {
        (0, Some(ratio)) => (ratio * total_steps as f64).ceil() as u64,
        (steps, _) => steps,
    };
    if warmup_steps >= total_steps
        && matches!(
            schedule,
            ScheduleKind::Cosine
                | ScheduleKind::CosineWithRestarts
                | ScheduleKind::Linear
                | ScheduleKind::Polynomial
        )
    {
        return Err(TrainError::Config(format!(
            "warmup ({warmup_steps} steps) leaves no decay phase in {total_steps} total steps"
        )));
    }
    let max_length = (integer(config, "training.max_length")? as usize).min(model.context);
    let batch_size = integer(config, "training.batch_size")? as usize;
    Ok(TrainConfig {
        method,
        model,
        learning_rate: number(config, "training.learning_rate")?,
        schedule,
        warmup_steps,
        total_steps,
        batch_size,
        gradient_accumulation_steps: integer(config, "training.gradient_accumulation_steps")?
            as usize,
        weight_decay: number(config, "training.weight_decay")?,
        adam_beta1: number(config, "training.adam_beta1")?,
        adam_beta2: number(config, "training.adam_beta2")?,
        adam_epsilon: number(config, "training.adam_epsilon")?,
        max_grad_norm: number(config, "training.max_grad_norm")?,
        max_length,
        max_prompt_length: field(config, "training.max_prompt_length")?
            .as_u64()
            .map(|n| n as usize)
            .unwrap_or(max_length / 2)
            .min(max_length),
        seed: integer(config, "training.seed")?,
        beta: number(config, "training.beta")?,
        eval_batch_size: field(config, "evaluation.eval_batch_size")?
            .as_u64()
            .map(|n| n as usize)
            .unwrap_or(batch_size),
        eval_max_batches: 16,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ftl_domain::training_config::{Context, validate};

    #[test]
    fn a_validated_config_maps_onto_the_trainer() {
        let data = Dataset::parse(
            "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}\n".repeat(50).as_bytes(),
            false,
            0,
        )
        .unwrap();
        let ctx = Context {
            dataset: Some(dataset_facts(&data, false)),
            trainer: support(&[], None),
            ..Context::default()
        };
        let defaults = validate(
            &json!({"model": {"name": "ftl/byte-transformer-tiny"}}),
            &ctx,
        );
        // The HF-centric defaults (LoRA, 8-bit paged AdamW, bf16) are refused, with what is supported.
        let refused: Vec<&str> = defaults.issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            refused,
            vec![
                "lora.enabled",
                "model.torch_dtype",
                "training.bf16",
                "training.optim"
            ]
        );

        let v = validate(
            &json!({"model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "float32"}, "lora": {"enabled": false},
                    "training": {"optim": "adamw_torch", "bf16": false, "batch_size": 4, "num_epochs": 2, "warmup_ratio": 0.1, "warmup_steps": 0,
                                 "max_length": 1024, "learning_rate": 0.001}}),
            &ctx,
        );
        assert!(v.valid, "{:?}", v.issues);
        let model = preset("ftl/byte-transformer-tiny").unwrap();
        let config = train_config(&v.normalized_config, model, 40).unwrap();
        // 40 examples / 4 = 10 steps an epoch × 2; warmup ceil(0.1 × 20) = 2.
        assert_eq!(
            (config.total_steps, config.warmup_steps, config.method),
            (20, 2, Method::Sft)
        );
        assert_eq!(config.max_length, 256, "cut to the model's context");
        assert_eq!(config.schedule, ScheduleKind::Cosine);
        assert_eq!(v.estimates.total_steps, Some(20));
    }
}
