//! Never losing progress, with the real binaries: a managed job trains on a
//! `finetune-lab worker` process; the worker and then the server are killed
//! with SIGKILL mid-training; the server restarts on the same database, the
//! dead worker's lease expires, the job goes RECOVERING, and a new worker
//! resumes it from its last checkpoint. Its loss curve then equals the one
//! `finetune-lab train` prints for the same job run straight through.

use crate::process::{KillOnDrop, ServerProcess, command, run_cli};
use ftl_tests::Backend;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};

const STEPS: u64 = 120;

fn job_config() -> Value {
    json!({
        "model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "float32"},
        "lora": {"enabled": false},
        "training": {"method": "sft", "optim": "adamw_torch", "bf16": false, "batch_size": 8,
                     "max_steps": STEPS, "warmup_steps": 10, "learning_rate": 0.01,
                     "logging_steps": 1, "max_length": 64, "seed": 11},
        "evaluation": {"eval_steps": 1000},
        "checkpoint": {"save_steps": 10, "save_total_limit": 3}
    })
}

fn dataset() -> String {
    let words = ["red", "blue", "green", "gold"];
    (0..32)
        .map(|i| {
            let w = words[i % words.len()];
            json!({"messages": [{"role": "user", "content": format!("say {w}")},
                                {"role": "assistant", "content": format!("{w} {w}")}]})
            .to_string()
                + "\n"
        })
        .collect()
}

/// Fast heartbeats, a short lease, a quick reconciler; no in-process
/// workers (the worker is its own process here).
fn tuned(c: &mut std::process::Command) -> &mut std::process::Command {
    c.env("FTL__TRAINING__LOCAL_WORKERS", "0")
        .env("FTL__TRAINING__HEARTBEAT_MS", "200")
        .env("FTL__TRAINING__REPORT_MS", "200")
        .env("FTL__TRAINING__LEASE_MS", "2000")
        .env("FTL__TRAINING__RECONCILE_MS", "100")
}

async fn start_server(db_url: &str, http: &reqwest::Client) -> ServerProcess {
    ServerProcess::start_with(db_url, http, tuned).await
}

fn start_worker(db_url: &str, base: &str, key: &str) -> KillOnDrop {
    KillOnDrop(
        command(db_url)
            .args([
                "worker", "--server", base, "--token", key, "--poll-s", "0.1",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

async fn gql(http: &reqwest::Client, base: &str, key: &str, q: &str, v: Value) -> Value {
    let body: Value = http
        .post(format!("{base}/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": q, "variables": v }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

const JOB: &str = "query($j: ID!) { job(id: $j) { status training { attempt recoveryCount lastCheckpointStep } } }";

async fn wait_job(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    job: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let j = gql(http, base, key, JOB, json!({"j": job})).await["job"].clone();
        if done(&j) {
            // Every read model at the log's head (`/readyz` answers 200 only
            // then: the tests run with `ready_max_lag = 0`), then read again.
            while http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .map(|r| r.status() != 200)
                .unwrap_or(true)
            {
                assert!(Instant::now() < deadline, "read models never caught up");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            return gql(http, base, key, JOB, json!({"j": job})).await["job"].clone();
        }
        assert_ne!(j["status"], "FAILED", "{j}");
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The per-step training losses `finetune-lab train` prints.
fn straight_losses(dir: &std::path::Path) -> Vec<f64> {
    std::fs::write(dir.join("job.json"), job_config().to_string()).unwrap();
    std::fs::write(dir.join("data.jsonl"), dataset()).unwrap();
    let out = command("sqlite::memory:")
        .arg("train")
        .arg("--job-config")
        .arg(dir.join("job.json"))
        .arg("--dataset")
        .arg(dir.join("data.jsonl"))
        .arg("--out")
        .arg(dir.join("straight"))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["metrics"]["train_loss"].as_f64())
        .collect()
}

async fn worker_and_server_killed_mid_training(backend: Backend) {
    let db_url = backend.fresh_url().await.unwrap();
    let dir = std::env::temp_dir()
        .join("ftl-tests")
        .join(format!("train-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let straight = straight_losses(&dir);
    assert_eq!(straight.len() as u64, STEPS);

    let http = reqwest::Client::new();
    let key = run_cli(&db_url, &["keys", "create", "--project", "crash"])
        .trim()
        .to_string();
    let server = start_server(&db_url, &http).await;
    let uploaded: Value = http
        .put(format!("{}/api/v1/datasets?name=data.jsonl", server.base))
        .bearer_auth(&key)
        .body(dataset())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let q = "mutation($c: JSON!, $d: ID!) { createTrainingJob(name: \"crash\", config: $c, datasetId: $d) { id } }";
    let job = gql(
        &http,
        &server.base,
        &key,
        q,
        json!({"c": job_config(), "d": uploaded["id"]}),
    )
    .await["createTrainingJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Train until two checkpoints exist, then kill -9 the worker, then the server.
    let worker = start_worker(&db_url, &server.base, &key);
    let before = wait_job(&http, &server.base, &key, &job, "checkpoints", |j| {
        j["training"]["lastCheckpointStep"].as_u64().unwrap_or(0) >= 20
    })
    .await;
    drop(worker); // SIGKILL
    assert_eq!(before["status"], "RUNNING");
    server.kill9();

    // Restart on the same database: the lease expires, the job recovers, and
    // a new worker finishes it from the last checkpoint.
    let server = start_server(&db_url, &http).await;
    let recovering = wait_job(&http, &server.base, &key, &job, "recovery", |j| {
        // Both read models: the catalog's status and the training facts.
        j["status"] == "RECOVERING" && j["training"]["recoveryCount"] == 1
    })
    .await;
    assert_eq!(recovering["training"]["recoveryCount"], 1);
    let worker = start_worker(&db_url, &server.base, &key);
    let done = wait_job(&http, &server.base, &key, &job, "success", |j| {
        j["status"] == "SUCCEEDED"
    })
    .await;
    assert_eq!(done["training"]["attempt"], 2, "{done}");

    let q = "query($j: ID!) { metricSeries(jobId: $j, keys: [\"train_loss\"], maxPoints: 10000) { bucketWidth points { step last } } }";
    let series = gql(&http, &server.base, &key, q, json!({"j": job})).await;
    let points = series["metricSeries"][0]["points"].as_array().unwrap();
    assert_eq!(series["metricSeries"][0]["bucketWidth"], 1);
    let curve: Vec<f64> = points.iter().map(|p| p["last"].as_f64().unwrap()).collect();
    assert_eq!(
        curve, straight,
        "killed, recovered and resumed, the loss curve equals the straight run's"
    );
    drop(worker);
    server.terminate();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_survives_kill9_on_sqlite() {
    worker_and_server_killed_mid_training(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_survives_kill9_on_postgres() {
    worker_and_server_killed_mid_training(Backend::Postgres).await;
}
