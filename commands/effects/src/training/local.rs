//! `finetune-lab train`: validate a job config against a dataset, then train
//! with the built-in trainer on this machine, printing metrics as JSON lines
//! and storing checkpoints through `object_store`; Ctrl-C pauses after a
//! checkpoint and `--resume` continues exactly where it stopped.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ftl_domain::training_config::{Context, Validation, validate};
use ftl_trainer::run::{Control, LogLevel, Observer, Outcome, SaveReason};
use ftl_trainer::{Backend, Checkpoint, Dataset, TrainError, Trainer, job};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use serde_json::{Value, json};

use super::checkpoints::CheckpointStore;

pub struct TrainArgs {
    pub job_config: PathBuf,
    pub dataset: PathBuf,
    pub out: PathBuf,
    pub raw_text: bool,
    pub resume: bool,
    pub validate_only: bool,
}

/// The error body of training-config.md §4.
pub fn config_invalid(v: &Validation) -> Value {
    json!({"error": {"code": "config_invalid", "message": v.summary(), "issues": v.issues, "warnings": v.warnings}})
}

/// Dataset file → parsed dataset, or the line-numbered problems.
pub fn load_dataset(bytes: &[u8], raw_text: bool, context: usize) -> Result<Dataset, Value> {
    Dataset::parse(bytes, raw_text, context).map_err(|issues| {
        json!({"error": {"code": "dataset_invalid",
            "message": format!("dataset has {} problem(s)", issues.len()),
            "issues": issues.iter().map(|i| json!({"line": i.line, "message": i.message})).collect::<Vec<_>>()}})
    })
}

/// This machine's memory (the CPU backend's device memory).
pub fn total_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Returns the process exit code: 0 done, 2 invalid input, 3 paused.
pub async fn train(args: TrainArgs) -> anyhow::Result<u8> {
    let config: Value = serde_json::from_slice(&std::fs::read(&args.job_config)?)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", args.job_config.display()))?;
    let model_name = config
        .pointer("/model/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let model = job::preset(model_name).unwrap_or_default();
    let raw_text = args.raw_text || args.dataset.extension().is_some_and(|e| e == "txt");
    let bytes = std::fs::read(&args.dataset)?;
    let dataset = match load_dataset(&bytes, raw_text, model.context) {
        Ok(d) => d,
        Err(body) => {
            println!("{body}");
            return Ok(2);
        }
    };
    let ctx = Context {
        dataset: Some(job::dataset_facts(&dataset, raw_text)),
        trainer: job::support(&[], total_memory_bytes()),
        ..Context::default()
    };
    let validation = validate(&config, &ctx);
    for w in &validation.warnings {
        eprintln!("warning: {} [{}]: {}", w.path, w.code, w.message);
    }
    if args.validate_only {
        println!("{}", serde_json::to_string_pretty(&validation)?);
        return Ok(if validation.valid { 0 } else { 2 });
    }
    if !validation.valid {
        println!("{}", config_invalid(&validation));
        return Ok(2);
    }
    let normalized = validation.normalized_config.clone();
    let job::Prepared {
        split,
        train: train_config,
        plan,
        keep_last,
    } = job::prepare(&normalized, &dataset, model)?;

    std::fs::create_dir_all(&args.out)?;
    let store = Arc::new(CheckpointStore::new(
        Arc::new(LocalFileSystem::new_with_prefix(&args.out)?),
        Path::from("checkpoints"),
        keep_last,
    ));
    std::fs::write(
        args.out.join("config.json"),
        serde_json::to_vec_pretty(&normalized)?,
    )?;
    let resume_from = if args.resume {
        store.latest().await?
    } else {
        None
    };
    let mut trainer = match &resume_from {
        Some(checkpoint) => {
            eprintln!("resuming from step {}", checkpoint.meta.step);
            Trainer::resume(Backend::Cpu, &dataset, split, checkpoint)?
        }
        None => Trainer::new(train_config, Backend::Cpu, &dataset, split, None)?,
    };

    let pause = Arc::new(AtomicBool::new(false));
    let on_signal = pause.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("pausing after a checkpoint…");
            on_signal.store(true, Ordering::SeqCst);
        }
    });
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut observer = CliObserver {
            handle,
            store,
            pause,
        };
        ftl_trainer::run::run(&mut trainer, &plan, &mut observer)
    })
    .await??;
    Ok(match outcome {
        Outcome::Finished => 0,
        Outcome::Paused | Outcome::Stopped => 3,
    })
}

struct CliObserver {
    handle: tokio::runtime::Handle,
    store: Arc<CheckpointStore>,
    pause: Arc<AtomicBool>,
}

impl Observer for CliObserver {
    fn metrics(&mut self, step: u64, points: &[(&str, f64)]) -> Result<(), TrainError> {
        let metrics: serde_json::Map<String, Value> = points
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        println!("{}", json!({"step": step, "metrics": metrics}));
        Ok(())
    }

    fn checkpoint(
        &mut self,
        checkpoint: Checkpoint,
        reason: SaveReason,
        eval_loss: Option<f64>,
    ) -> Result<(), TrainError> {
        let info = self
            .handle
            .block_on(self.store.save(&checkpoint, eval_loss))
            .map_err(|e| TrainError::Checkpoint(format!("storing: {e:#}")))?;
        println!(
            "{}",
            json!({"checkpoint": info.name, "step": info.step, "reason": format!("{reason:?}").to_lowercase(), "files": info.files})
        );
        Ok(())
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        eprintln!("{level:?}: {message}");
    }

    fn control(&mut self, _step: u64) -> Control {
        if self.pause.load(Ordering::SeqCst) {
            Control::Pause
        } else {
            Control::Continue
        }
    }
}

pub struct GenerateArgs {
    pub checkpoint: PathBuf,
    pub prompt: String,
    pub chat: bool,
    pub params: ftl_trainer::GenerateParams,
}

/// `finetune-lab generate`: text from a stored checkpoint, streamed to stdout.
pub async fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let folder: &FsPath = &args.checkpoint;
    let name = folder
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow::anyhow!("checkpoint path has no name"))?
        .to_string();
    let parent = folder
        .parent()
        .ok_or_else(|| anyhow::anyhow!("checkpoint path has no parent"))?;
    let store = CheckpointStore::new(
        Arc::new(LocalFileSystem::new_with_prefix(parent)?),
        Path::from(""),
        None,
    );
    let checkpoint = store.load(&name).await?;
    let generator =
        ftl_trainer::Generator::from_weights(checkpoint.meta.config.model, &checkpoint.model)?;
    let prompt = if args.chat {
        ftl_trainer::tokenizer::chat_prompt(&[ftl_trainer::tokenizer::Message::new(
            ftl_trainer::tokenizer::Role::User,
            args.prompt,
        )])
    } else {
        ftl_trainer::tokenizer::encode_text(&args.prompt)
    };
    let out = tokio::task::spawn_blocking(move || {
        generator.generate(&prompt, &args.params, |piece| {
            use std::io::Write;
            print!("{piece}");
            let _ = std::io::stdout().flush();
        })
    })
    .await??;
    println!();
    eprintln!(
        "{} prompt tokens, {} completion tokens, finish: {:?}",
        out.prompt_tokens, out.completion_tokens, out.finish_reason
    );
    Ok(())
}
