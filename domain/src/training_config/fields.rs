//! The field table: every config path with its kind, nullability and default.

/// Allowed values and bounds of one field.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
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
pub(super) struct Field(
    pub(super) &'static str,
    pub(super) Kind,
    pub(super) bool,
    pub(super) &'static str,
);

const METHODS: &[&str] = &["sft", "dpo", "orpo", "kto", "rlhf", "cpt"];
pub(super) const PREFERENCE_METHODS: &[&str] = &["dpo", "orpo"];
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
pub(super) const BIG: i64 = i64::MAX;
/// Step counts: a step is a metric point's step, at most 2^53 − 1.
const STEPS: i64 = crate::limits::MAX_STEP;

#[rustfmt::skip]
pub(super) const FIELDS: &[Field] = &[
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
pub(super) const OPEN_OBJECTS: &[&str] = &["distributed"];
/// Objects that may be absent or null as a whole (their fields then default).
pub(super) const OPTIONAL_OBJECTS: &[&str] = &["training.ppo"];
