//! `finetune-lab train` / `generate`: validation exit codes, a pause by
//! Ctrl-C and an exact resume, pruning, and generation from the checkpoint.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_finetune-lab");

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("ftl-tests")
        .join(format!("train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_dataset(dir: &Path) -> PathBuf {
    let words = [
        "red", "blue", "green", "gold", "gray", "pink", "teal", "plum",
    ];
    let mut file = String::new();
    for i in 0..64 {
        let w = words[i % words.len()];
        let row = json!({"messages": [{"role": "user", "content": format!("say {w}")},
                                      {"role": "assistant", "content": format!("{w} {w} {w}")}]});
        file.push_str(&format!("{row}\n"));
    }
    let path = dir.join("data.jsonl");
    std::fs::write(&path, file).unwrap();
    path
}

fn write_config(dir: &Path, config: Value) -> PathBuf {
    let path = dir.join("job.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

fn good_config(steps: u64) -> Value {
    json!({
        "model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "float32"},
        "lora": {"enabled": false},
        "training": {"optim": "adamw_torch", "bf16": false, "batch_size": 8, "max_steps": steps, "warmup_steps": 10,
                     "learning_rate": 0.01, "logging_steps": 1, "max_length": 64},
        "evaluation": {"eval_steps": 100},
        "checkpoint": {"save_steps": 25, "save_total_limit": 2}
    })
}

/// `finetune-lab train --job-config CONFIG --dataset DATA --out OUT`.
fn train_command(config: &Path, data: &Path, out: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("train")
        .arg("--job-config")
        .arg(config)
        .arg("--dataset")
        .arg(data)
        .arg("--out")
        .arg(out)
        .env_remove("FTL_CONFIG")
        .env("FTL__LOG__LEVEL", "warn");
    command
}

fn train(config: &Path, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    train_command(config, data, out)
        .args(extra)
        .output()
        .unwrap()
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// step → train_loss, from the metric lines.
fn losses(lines: &[Value]) -> Vec<(u64, f64)> {
    lines
        .iter()
        .filter_map(|l| {
            Some((
                l["step"].as_u64()?,
                l["metrics"].get("train_loss")?.as_f64()?,
            ))
        })
        .collect()
}

#[test]
fn invalid_config_and_dataset_exit_2_with_every_issue() {
    let dir = workdir("invalid");
    let data = write_dataset(&dir);
    let config = write_config(
        &dir,
        json!({"model": {"name": "llama"}, "training": {"learning_rate": 0}}),
    );
    let out = train(&config, &data, &dir.join("o"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "config_invalid");
    let paths: Vec<&str> = body["error"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "lora.enabled",
            "model.name",
            "model.torch_dtype",
            "training.bf16",
            "training.learning_rate",
            "training.optim"
        ]
    );

    std::fs::write(
        dir.join("bad.jsonl"),
        "{\"messages\":[]}\n\n{\"text\":\"ok\"}\nnope\n",
    )
    .unwrap();
    let config = write_config(&dir, good_config(10));
    let out = train(&config, &dir.join("bad.jsonl"), &dir.join("o"), &[]);
    assert_eq!(out.status.code(), Some(2));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["error"]["code"], "dataset_invalid");
    let lines: Vec<u64> = body["error"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![1, 4]);
}

#[test]
fn ctrl_c_pauses_after_a_checkpoint_and_resume_is_exact() {
    let dir = workdir("resume");
    let data = write_dataset(&dir);
    let steps = 300;
    let config = write_config(&dir, good_config(steps));

    let straight_dir = dir.join("straight");
    let straight = train(&config, &data, &straight_dir, &[]);
    assert!(
        straight.status.success(),
        "{}",
        String::from_utf8_lossy(&straight.stderr)
    );
    let straight_losses = losses(&lines(&straight.stdout));
    assert_eq!(straight_losses.len() as u64, steps);

    // Same job, interrupted with SIGINT once the first checkpoint is stored.
    let paused_dir = dir.join("paused");
    let mut child = train_command(&config, &data, &paused_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_run = Vec::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut signalled = false;
    while reader.read_line(&mut line).unwrap() > 0 {
        let value: Value = serde_json::from_str(line.trim()).unwrap();
        if value.get("checkpoint").is_some() && !signalled {
            assert!(
                Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status()
                    .unwrap()
                    .success()
            );
            signalled = true;
        }
        first_run.push(value);
        line.clear();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "paused runs exit 3");
    let pause = first_run
        .iter()
        .rev()
        .find(|l| l["reason"] == "pause")
        .expect("a pause checkpoint");
    let paused_at = pause["step"].as_u64().unwrap();
    assert!(
        paused_at >= 25 && paused_at < steps,
        "paused at {paused_at}"
    );

    let resumed = train(&config, &data, &paused_dir, &["--resume"]);
    assert!(resumed.status.success());
    let mut curve = losses(&first_run);
    curve.extend(losses(&lines(&resumed.stdout)));
    assert_eq!(
        curve, straight_losses,
        "the paused-and-resumed loss curve equals the straight one"
    );

    // Keep-last-2: older complete checkpoints are gone, the latest are listed.
    let complete: Vec<String> = std::fs::read_dir(paused_dir.join("checkpoints"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        complete.contains(&"checkpoint-00000300".to_string()),
        "{complete:?}"
    );
    assert!(
        complete.len() <= 3,
        "keep-last-2 plus the best at most: {complete:?}"
    );

    let generated = Command::new(BIN)
        .args(["generate", "--chat", "--prompt", "say teal", "--checkpoint"])
        .arg(paused_dir.join("checkpoints").join("checkpoint-00000300"))
        .env_remove("FTL_CONFIG")
        .output()
        .unwrap();
    assert!(generated.status.success());
    assert_eq!(
        String::from_utf8_lossy(&generated.stdout).trim(),
        "teal teal teal"
    );
}
