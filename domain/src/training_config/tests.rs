use super::*;

fn codes(issues: &[Issue]) -> Vec<(String, &'static str)> {
    issues.iter().map(|i| (i.path.clone(), i.code)).collect()
}

fn pair(path: &str, code: &'static str) -> (String, &'static str) {
    (path.to_string(), code)
}

/// The error example of training-config.md §4, field for field.
#[test]
fn spec_error_example_is_reproduced() {
    let config = json!({
        "model": {"name": "meta-llama/Llama-3.2-1B-Instruct"},
        "training": {"learning_rate": 0, "lora_r": 16},
        "quantization": {"load_in_4bit": true, "load_in_8bit": true}
    });
    let v = validate(&config, &Context::default());
    assert!(!v.valid);
    assert_eq!(v.summary(), "Training config has 2 errors and 1 warning");
    let got = serde_json::to_value(json!({"issues": v.issues, "warnings": v.warnings})).unwrap();
    let spec = json!({
      "issues":[
        {"path":"quantization","code":"mutually_exclusive","severity":"error","message":"load_in_4bit and load_in_8bit cannot both be true","fields":["quantization.load_in_4bit","quantization.load_in_8bit"]},
        {"path":"training.learning_rate","code":"out_of_range","severity":"error","message":"learning_rate must be > 0 and <= 1 (got 0)","value":0,"constraint":{"exclusive_minimum":0,"maximum":1}}],
      "warnings":[
        {"path":"training.lora_r","code":"deprecated_field","severity":"warning","message":"use lora.r","fields":["training.lora_r","lora.r"]}]
    });
    assert_eq!(got, spec);
}

#[test]
fn defaults_fill_every_field_and_the_hash_ignores_key_order_and_legacy_names() {
    let a = validate(
        &json!({"model": {"name": "m"}, "training": {"batch_size": 8, "seed": 7}}),
        &Context::default(),
    );
    assert!(a.valid, "{:?}", a.issues);
    let n = &a.normalized_config;
    assert_eq!(n["training"]["learning_rate"], json!(0.0002));
    assert_eq!(n["lora"]["r"], json!(16));
    assert_eq!(
        n["tokenizer"]["name"],
        json!("m"),
        "tokenizer.name defaults to model.name"
    );
    assert_eq!(
        n["evaluation"]["eval_batch_size"],
        json!(8),
        "eval_batch_size defaults to batch_size"
    );
    assert_eq!(
        n["budget"]["alert_thresholds_percent"],
        json!([50, 80, 100])
    );
    assert_eq!(n["checkpoint"]["resume"]["from"], json!("none"));
    assert_eq!(a.config_hash.len(), 64);
    // Same config, other key order and the legacy top-level seed: same hash.
    let b = validate(
        &json!({"seed": 7, "training": {"batch_size": 8}, "model": {"name": "m"}}),
        &Context::default(),
    );
    assert_eq!(b.normalized_config, a.normalized_config);
    assert_eq!(b.config_hash, a.config_hash);
    assert_eq!(codes(&b.warnings), vec![pair("seed", "deprecated_field")]);
    // The hash is over canonical JSON: SHA-256 of the sorted, compact text.
    let canonical = serde_json::to_string(&a.normalized_config).unwrap();
    assert!(canonical.starts_with("{\"budget\":{\"alert_thresholds_percent\":[50,80,100],"));
    let c = validate(
        &json!({"model": {"name": "m"}, "training": {"batch_size": 9, "seed": 7}}),
        &Context::default(),
    );
    assert_ne!(c.config_hash, a.config_hash);
}

#[test]
fn every_problem_is_reported_sorted_by_path_then_code() {
    let v = validate(
        &json!({
            "model": {"torch_dtype": "float64", "colour": "red"},
            "training": {"batch_size": 0, "num_epochs": "three", "bf16": true, "fp16": true, "method": "sft"},
            "lora": {"dropout": 1},
            "evaluation": {"strategy": "no"},
            "data": {"train_split": 0.9, "eval_split": 0.2},
            "bogus": 1
        }),
        &Context::default(),
    );
    assert_eq!(
        codes(&v.issues),
        vec![
            pair("bogus", "unknown_field"),
            pair("checkpoint.metric_for_best_model", "requires"),
            pair("data", "split_sum"),
            pair("lora.dropout", "out_of_range"),
            pair("model.colour", "unknown_field"),
            pair("model.name", "required"),
            pair("model.torch_dtype", "invalid_enum"),
            pair("training", "mutually_exclusive"),
            pair("training.batch_size", "out_of_range"),
            pair("training.num_epochs", "invalid_type"),
        ]
    );
    let dtype = v.issues.iter().find(|i| i.code == "invalid_enum").unwrap();
    assert_eq!(
        dtype.message,
        "torch_dtype must be one of float16, bfloat16, float32, auto (got \"float64\")"
    );
    let batch = v
        .issues
        .iter()
        .find(|i| i.path == "training.batch_size")
        .unwrap();
    assert_eq!(batch.message, "batch_size must be >= 1 and <= 4096 (got 0)");
    assert_eq!(
        batch.constraint,
        Some(json!({"minimum": 1, "maximum": 4096}))
    );
}

#[test]
fn legacy_fields_map_and_conflicts_are_errors() {
    let v = validate(
        &json!({
            "model": {"name": "m"},
            "training": {"use_lora": false, "lora_config": {"r": 8, "lora_alpha": 16}, "evaluation_strategy": "epoch",
                         "checkpoint_resume": {"enabled": true, "resume_from_best": true}},
            "provider": "local",
            "tensorboard": {"enabled": true},
            "data": {"dataset_format": "openai_chat", "max_samples": 0}
        }),
        &Context::default(),
    );
    assert!(v.valid, "{:?}", v.issues);
    let n = &v.normalized_config;
    assert_eq!(
        (
            n["lora"]["enabled"].clone(),
            n["lora"]["r"].clone(),
            n["lora"]["alpha"].clone()
        ),
        (json!(false), json!(8), json!(16))
    );
    assert_eq!(n["evaluation"]["strategy"], json!("epoch"));
    assert_eq!(
        n["checkpoint"]["resume"],
        json!({"from": "best", "checkpoint_id": null, "step": null})
    );
    assert_eq!(n["data"]["format"], json!("openai_chat"));
    assert_eq!(n["data"]["max_samples"], Value::Null);
    assert!(n.get("tensorboard").is_none());
    assert_eq!(v.warnings.len(), 8, "{:?}", codes(&v.warnings));

    let conflict = validate(
        &json!({"model": {"name": "m"}, "training": {"lora_r": 8}, "lora": {"r": 16}}),
        &Context::default(),
    );
    assert_eq!(
        codes(&conflict.issues),
        vec![pair("lora.r", "conflicting_fields")]
    );
    let same = validate(
        &json!({"model": {"name": "m"}, "training": {"lora_r": 16}, "lora": {"r": 16}}),
        &Context::default(),
    );
    assert!(same.valid);
}

fn burn_like() -> TrainerSupport {
    TrainerSupport {
        name: "built-in",
        values: vec![
            ("lora.enabled", vec![json!(false)]),
            (
                "training.method",
                vec![json!("sft"), json!("dpo"), json!("cpt")],
            ),
        ],
        models: Some(vec![ModelFacts {
            id: "tiny".into(),
            context_length: 256,
            parameters: 150_000,
        }]),
        device_memory_bytes: Some(1 << 30),
        memory_estimate: Some(|_, batch, seq| batch * seq * 2_000_000),
        tokens_per_second: Some(1000.0),
    }
}

#[test]
fn dataset_trainer_and_estimate_rules() {
    let ctx = Context {
        dataset: Some(DatasetFacts {
            shape: DatasetShape::Supervised,
            format: "openai_chat",
            examples: 100,
            mean_tokens: 50.0,
        }),
        trainer: burn_like(),
        rate_usd_per_hour: Some(3.6),
        ..Context::default()
    };
    let v = validate(
        &json!({"model": {"name": "llama"}, "training": {"method": "dpo", "max_length": 1024, "batch_size": 8, "learning_rate": 0.01},
                "lora": {"enabled": true}}),
        &ctx,
    );
    assert_eq!(
        codes(&v.issues),
        vec![
            pair("lora.enabled", "unsupported_by_trainer"),
            pair("model.name", "unsupported_by_trainer"),
            pair("training.method", "incompatible_dataset")
        ]
    );
    assert!(
        v.issues[0].message.contains("supports false"),
        "{}",
        v.issues[0].message
    );
    // 80 train examples / 8 per step = 10 steps an epoch × 3 epochs; warmup 100 ≥ 10 % of 30.
    assert_eq!(v.estimates.total_steps, Some(30));
    assert_eq!(v.estimates.tokens, Some(30 * 8 * 50));
    assert_eq!(v.normalized_config["data"]["format"], json!("openai_chat"));
    assert_eq!(
        v.normalized_config["training"]["max_prompt_length"],
        json!(512),
        "max_length / 2 for DPO"
    );
    assert_eq!(
        codes(&v.warnings),
        vec![
            pair("training.learning_rate", "high_learning_rate"),
            pair("training.warmup_steps", "warmup_exceeds_steps")
        ]
    );

    let ok = validate(
        &json!({"model": {"name": "tiny"}, "training": {"max_length": 512, "batch_size": 4, "max_steps": 50, "warmup_steps": 0, "learning_rate": 0.001},
                "lora": {"enabled": false}, "checkpoint": {"save_steps": 25}, "budget": {"max_cost_usd": 0.005}}),
        &ctx,
    );
    assert!(ok.valid, "{:?}", ok.issues);
    // 50 steps × 4 × 50 tokens = 10,000 tokens at 1,000/s = 10 s at $3.60/h = $0.01;
    // the first checkpoint (step 25) costs $0.005 + ... = half: exactly the cap, not above.
    assert_eq!(ok.estimates.duration_s, Some(10.0));
    assert!((ok.estimates.cost_usd.unwrap() - 0.01).abs() < 1e-12);
    // 4 × 256 × 2e6 bytes > 1 GiB; max_length 512 > context 256.
    assert_eq!(
        codes(&ok.warnings),
        vec![
            pair("training.batch_size", "vram_estimate_exceeds_gpu"),
            pair("training.max_length", "exceeds_model_context")
        ]
    );
    let tight = validate(
        &json!({"model": {"name": "tiny"}, "training": {"max_steps": 50, "warmup_steps": 0, "max_length": 128, "batch_size": 1, "learning_rate": 0.001},
                "lora": {"enabled": false}, "checkpoint": {"save_steps": 25}, "budget": {"max_cost_usd": 0.0001}}),
        &ctx,
    );
    assert_eq!(
        codes(&tight.warnings),
        vec![pair("budget.max_cost_usd", "budget_below_first_checkpoint")]
    );
}

#[test]
fn requires_rules() {
    let v = validate(
        &json!({"model": {"name": "m"}, "lora": {"enabled": false}, "quantization": {"load_in_4bit": true},
                "training": {"dataloader_num_workers": 0},
                "checkpoint": {"save_strategy": "time", "resume": {"from": "checkpoint"}}, "data": {"eval_split": 0}}),
        &Context::default(),
    );
    assert_eq!(
        codes(&v.issues),
        vec![
            pair("checkpoint.resume.checkpoint_id", "requires"),
            pair("checkpoint.save_minutes", "requires"),
            pair("data.eval_split", "split_sum"),
            pair("quantization", "requires"),
            pair("training.dataloader_prefetch_factor", "requires"),
        ]
    );
    assert!(!validate(&json!([1]), &Context::default()).valid);
}
