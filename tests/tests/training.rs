//! Managed training end to end through the real server: dataset upload,
//! pretraining then SFT from the pretrained model, live metrics and logs over
//! subscriptions, pause and resume, a budget stop that never overspends,
//! resume with a raised budget, the loss curve equal to a straight run's,
//! checkpoints downloaded with their checksum, generation from the model;
//! and the worker protocol: leases, per-job tokens, recovery when a worker
//! disappears, errors grouped by fingerprint.

use crate::api::{TestServer, chat_rows, subscribe_to, ws_url};
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

pub(crate) const CREATE: &str = "mutation($n: String!, $c: JSON!, $d: ID!) { createTrainingJob(name: $n, config: $c, datasetId: $d) { id status } }";
const JOB: &str = "query($id: ID!) { job(id: $id) { id status failureReason error training {
    spentUsd rateUsdPerHour billableSeconds attempt recoveryCount pauseReason pausedWarning lastCheckpointStep totalSteps
    budget { maxCostUsd maxRuntimeMinutes }
    progress { step fraction etaSeconds projectedTotalUsd }
    budgetAlerts { percent spentUsd maxCostUsd }
    checkpoints(includePruned: true) { step epoch reason pruned evalLoss trainLoss files { name size sha256 downloadPath } }
    spend(bucketSeconds: 1) { usd } } } }";
const SERIES: &str = "query($j: ID!, $k: [String!]!) { metricSeries(jobId: $j, keys: $k, maxPoints: 10000) { key bucketWidth points { step last } } }";
const RESUME: &str =
    "mutation($id: ID!, $b: BudgetInput) { resumeJob(id: $id, newBudget: $b) { status } }";

pub(crate) fn sft_rows() -> String {
    let words = [
        "red", "blue", "green", "gold", "gray", "pink", "teal", "plum",
    ];
    chat_rows(&words, 8, 3)
}

fn corpus() -> String {
    "the quick brown fox jumps over the lazy dog. colours are red blue green gold gray pink teal plum.\n"
        .repeat(60)
}

pub(crate) fn config(model: &str, method: &str, steps: u64) -> Value {
    json!({
        "model": {"name": model, "torch_dtype": "float32"},
        "lora": {"enabled": false},
        "training": {"method": method, "optim": "adamw_torch", "bf16": false, "batch_size": 8,
                     "max_steps": steps, "warmup_steps": 10, "learning_rate": 0.01,
                     "logging_steps": 1, "max_length": 64, "seed": 7},
        "evaluation": {"eval_steps": 100},
        "checkpoint": {"save_steps": 10, "save_total_limit": 2},
        // With the test's rate (a tenth of a cent a second) the margin is
        // 3.5 cents: 5 s to save before the 30 s release backstop.
        "budget": {"stop_margin_s": 35, "alert_thresholds_percent": [10, 100]}
    })
}

async fn job(s: &TestServer, key: &str, id: &str) -> Value {
    s.ok(key, JOB, json!({"id": id})).await["job"].clone()
}

/// Polls the job until `done` holds (or fails the test after `secs`).
async fn wait_for(
    s: &TestServer,
    key: &str,
    id: &str,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let j = job(s, key, id).await;
        if done(&j) {
            // The job's fields come from several read models: let every one
            // reach the log's head before the caller reads them together.
            caught_up(s).await;
            return job(s, key, id).await;
        }
        assert!(
            !matches!(j["status"].as_str(), Some("FAILED")),
            "job failed while waiting for {what}: {j}"
        );
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every projection has applied the whole log. While a worker
/// trains, events keep coming, so this needs a moment when all six runners
/// are at the head together; on a loaded 2-core CI machine (a lease expired
/// there once for lack of CPU) 30 s was seen to be too short.
pub(crate) async fn caught_up(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = s.state.effects.projections.status().await.unwrap();
        if status.iter().all(|p| p.lag() == 0) {
            return;
        }
        assert!(Instant::now() < deadline, "read models never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |j: &Value| j["status"] == status
}

/// The model a succeeded job's success made: its registration is a
/// reaction (an outbox intent), so it shows up a moment after the status.
pub(crate) async fn model_of(s: &TestServer, key: &str, job: &Value, fields: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let q = format!("query($j: ID) {{ models(jobId: $j) {{ {fields} }} }}");
        let d = s.ok(key, &q, json!({"j": job})).await;
        if let Some(m) = d["models"].as_array().and_then(|a| a.first()) {
            return m.clone();
        }
        assert!(Instant::now() < deadline, "the job's model never came: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn series(s: &TestServer, key: &str, job: &str, metric: &str) -> Vec<(i64, f64)> {
    let d = s.ok(key, SERIES, json!({"j": job, "k": [metric]})).await;
    let serie = &d["metricSeries"][0];
    assert_eq!(serie["bucketWidth"], 1, "one point per step: {serie}");
    serie["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["step"].as_i64().unwrap(), p["last"].as_f64().unwrap()))
        .collect()
}

async fn managed_training_end_to_end(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.training.local_workers = 2;
        c.training.heartbeat_ms = 100;
        c.training.lease_ms = 10_000;
        c.training.report_ms = 200;
        c.training.cost_tick_ms = 100;
        c.training.reconcile_ms = 50;
        c.training.telemetry_ms = 300;
        // 3.6 $/h: a tenth of a cent a second, so a budget runs out within the test.
        c.training.local_rate_usd_per_hour = 3.6;
    })
    .await;
    let key = s.key("trainers", Scope::Write).await;

    // Datasets: parsed before anything is stored; the same file twice is one dataset.
    let (status, bad) = s
        .upload(&key, "bad.jsonl", "{\"messages\": []}\nnot json\n".into())
        .await;
    assert_eq!(status, 422, "{bad}");
    assert_eq!(bad["code"], "dataset_invalid");
    assert_eq!(bad["issues"][1]["line"], 2, "{bad}");
    let (status, text) = s.upload(&key, "corpus.txt", corpus()).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(text["kind"], "text");
    let (status, again) = s.upload(&key, "corpus.txt", corpus()).await;
    assert_eq!((status, again["id"].clone()), (200, text["id"].clone()));
    let (status, chat) = s.upload(&key, "chat.jsonl", sft_rows()).await;
    assert_eq!(status, 201, "{chat}");
    assert_eq!(
        (chat["kind"].as_str(), chat["examples"].as_i64()),
        (Some("supervised"), Some(64))
    );
    let chat_sha = format!("{:x}", Sha256::digest(sft_rows().as_bytes()));
    assert_eq!(chat["sha256"], chat_sha.as_str());

    // Validation rejects before anything runs, listing every issue.
    let mut bad_config = config("ftl/byte-transformer-tiny", "cpt", 10);
    bad_config["training"]["learning_rate"] = json!(5.0);
    bad_config["lora"]["enabled"] = json!(true);
    let (_, body) = s
        .gql(
            Some(&key),
            CREATE,
            json!({"n": "bad", "c": bad_config, "d": text["id"]}),
        )
        .await;
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "CONFIG_INVALID", "{body}");
    let paths: Vec<&str> = err["extensions"]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"training.learning_rate"), "{paths:?}");
    assert!(paths.contains(&"lora.enabled"), "{paths:?}");
    let jobs = s
        .ok(&key, "{ jobs { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(jobs["jobs"]["edges"], json!([]), "nothing was created");

    // Pretraining on raw text, then its model is the base of the SFT jobs.
    let cpt = s
        .ok(&key, CREATE, json!({"n": "pretrain", "c": config("ftl/byte-transformer-tiny", "cpt", 20), "d": text["id"]}))
        .await["createTrainingJob"]
        .clone();
    assert_eq!(cpt["status"], "QUEUED");
    let cpt_id = cpt["id"].as_str().unwrap().to_string();
    wait_for(
        &s,
        &key,
        &cpt_id,
        120,
        "pretraining",
        status_is("SUCCEEDED"),
    )
    .await;
    let base = model_of(&s, &key, &json!(cpt_id), "id baseModel checkpointStep").await;
    assert_eq!(base["checkpointStep"], 20, "{base}");
    let base_id = base["id"].as_str().unwrap().to_string();

    // Two identical SFT jobs from the pretrained model: R runs straight, J is
    // paused, resumed, stopped by its budget and resumed again.
    // Long enough that the budget, not the end of training, stops J.
    let steps = 300;
    let sft = config(&base_id, "sft", steps);
    let r_id = s
        .ok(
            &key,
            CREATE,
            json!({"n": "straight", "c": sft, "d": chat["id"]}),
        )
        .await["createTrainingJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let j_id = s
        .ok(
            &key,
            CREATE,
            json!({"n": "interrupted", "c": sft, "d": chat["id"]}),
        )
        .await["createTrainingJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = ws_url(&s);
    let mut logs_ws = subscribe_to(
        &url,
        Some(&key),
        "subscription($j: ID!) { jobLogLines(jobId: $j, level: \"info\") { level source message } }",
        json!({"j": j_id}),
    )
    .await
    .unwrap();
    let mut alerts_ws = subscribe_to(
        &url,
        Some(&key),
        "subscription($j: ID!) { budgetAlerts(jobId: $j) { percent spentUsd maxCostUsd } }",
        json!({"j": j_id}),
    )
    .await
    .unwrap();
    let mut metrics_ws = subscribe_to(
        &url,
        Some(&key),
        "subscription($j: ID!) { jobMetrics(jobId: $j, keys: [\"train_loss\"]) { points { key step value } } }",
        json!({"j": j_id}),
    )
    .await
    .unwrap();

    // Pause once it has trained a little: the worker saves, then releases.
    wait_for(&s, &key, &j_id, 120, "progress", |j| {
        j["training"]["progress"]["step"].as_i64().unwrap_or(0) >= 5
    })
    .await;
    s.ok(
        &key,
        "mutation($id: ID!) { pauseJob(id: $id) { status } }",
        json!({"id": j_id}),
    )
    .await;
    let paused = wait_for(&s, &key, &j_id, 60, "the pause", status_is("PAUSED")).await;
    let t = &paused["training"];
    assert_eq!(t["pauseReason"], "user");
    let pause_step = t["lastCheckpointStep"].as_i64().unwrap();
    assert!(pause_step < steps as i64, "{paused}");
    let pause_cp = t["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == pause_step)
        .unwrap();
    // Saved for the pause, or just before it by the schedule (not twice).
    let reason = pause_cp["reason"].as_str().unwrap();
    assert!(
        reason == "pause" || (reason == "interval" && pause_step % 10 == 0),
        "{pause_cp}"
    );

    // Resume with a budget 3.8 cents above what is spent: with the 3.5 cent
    // margin it runs about 3 s, then must stop itself, after a checkpoint,
    // before crossing the cap.
    let spent = t["spentUsd"].as_f64().unwrap();
    let cap = spent + 0.038;
    s.ok(&key, RESUME, json!({"id": j_id, "b": {"maxCostUsd": cap}}))
        .await;
    let stopped = wait_for(&s, &key, &j_id, 120, "the budget stop", |j| {
        j["status"] == "PAUSED" && j["training"]["pauseReason"] == "budget"
    })
    .await;
    let t = &stopped["training"];
    let spent_at_stop = t["spentUsd"].as_f64().unwrap();
    assert!(spent_at_stop <= cap, "spent {spent_at_stop} > cap {cap}");
    assert!(spent_at_stop > spent, "it ran on the new budget");
    assert!(
        t["lastCheckpointStep"].as_i64().unwrap() > pause_step,
        "{stopped}"
    );
    assert_eq!(
        t["pausedWarning"],
        Value::Null,
        "saved before the backstop: {stopped}"
    );
    let alerts: Vec<i64> = t["budgetAlerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["percent"].as_i64().unwrap())
        .collect();
    assert_eq!(alerts, vec![10], "10 % crossed once, 100 % never");
    // Spend is the sum of its ticks.
    let ticks: f64 = t["spend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["usd"].as_f64().unwrap())
        .sum();
    assert!(
        (ticks - spent_at_stop).abs() < 1e-9,
        "{ticks} vs {spent_at_stop}"
    );

    // The alert arrived over the subscription as it was crossed.
    let alerts = alerts_ws.drain(Duration::from_millis(500)).await;
    assert_eq!(
        alerts
            .first()
            .map(|a| a["payload"]["data"]["budgetAlerts"]["percent"].clone()),
        Some(json!(10)),
        "{alerts:?}"
    );

    // The same budget cannot resume it; a raised one (none) can.
    let (_, refused) = s.gql(Some(&key), RESUME, json!({"id": j_id})).await;
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("budget_exhausted"),
        "{refused}"
    );
    s.ok(&key, RESUME, json!({"id": j_id, "b": {"maxCostUsd": null}}))
        .await;
    let done = wait_for(&s, &key, &j_id, 240, "J to finish", status_is("SUCCEEDED")).await;
    wait_for(&s, &key, &r_id, 240, "R to finish", status_is("SUCCEEDED")).await;
    let t = &done["training"];
    assert_eq!(t["progress"]["step"], steps);
    assert_eq!(t["progress"]["fraction"], 1.0);
    assert!(t["attempt"].as_i64().unwrap() >= 3, "three leases: {t}");

    // The audit trail: every start after the first says where it resumed,
    // and each lease's events carry one actor, the worker that claimed it.
    let mut audit: Vec<Value> = vec![];
    loop {
        let after = audit.last().map(|e| e["position"].clone());
        let page = s
            .ok(
                &key,
                "query($j: ID!, $a: String) { jobEvents(jobId: $j, first: 200, after: $a) { position eventType actor payload } }",
                json!({"j": j_id, "a": after}),
            )
            .await["jobEvents"]
            .as_array()
            .unwrap()
            .clone();
        if page.is_empty() {
            break;
        }
        audit.extend(page);
    }
    let starts: Vec<Value> = audit
        .iter()
        .filter(|e| e["eventType"] == "job.started")
        .map(|e| e["payload"]["from_step"].clone())
        .collect();
    assert_eq!(starts.len(), 3, "{starts:?}");
    assert_eq!(starts[0], Value::Null, "the first start resumes nothing");
    assert_eq!(starts[1], json!(pause_step), "{starts:?}");
    assert!(starts[2].as_i64().unwrap() > pause_step, "{starts:?}");
    let workers: std::collections::BTreeSet<&str> = audit
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .filter(|a| a.starts_with("worker:"))
        .collect();
    assert_eq!(workers.len(), 1, "one worker, one name: {workers:?}");

    // Exact resume: J's loss and LR curves equal R's, step for step.
    let j_loss = series(&s, &key, &j_id, "train_loss").await;
    let r_loss = series(&s, &key, &r_id, "train_loss").await;
    assert_eq!(j_loss.len(), steps as usize);
    assert_eq!(
        j_loss, r_loss,
        "the interrupted run's loss curve equals the straight one"
    );
    assert!(
        j_loss[steps as usize - 1].1 < j_loss[0].1 / 2.0,
        "it learned: {j_loss:?}"
    );
    let j_lr = series(&s, &key, &j_id, "learning_rate").await;
    assert_eq!(j_lr, series(&s, &key, &r_id, "learning_rate").await);
    assert!(
        j_lr[0].1 < j_lr[9].1,
        "warmup on the same step axis: {j_lr:?}"
    );
    let cpu = series(&s, &key, &j_id, "system/cpu_percent").await;
    assert!(!cpu.is_empty(), "telemetry arrived");

    // Live updates arrived while it trained.
    let logs = logs_ws.drain(Duration::from_millis(300)).await;
    assert!(
        logs.iter()
            .any(|m| m["payload"]["data"]["jobLogLines"]["message"]
                .as_str()
                .is_some_and(|t| t.starts_with("checkpoint saved"))),
        "{} log messages",
        logs.len()
    );
    let metrics = metrics_ws.drain(Duration::from_millis(300)).await;
    assert!(metrics.len() >= 10, "{} metric batches", metrics.len());

    // Logs: filtered by level and text, paged by cursor.
    let q = "query($j: ID!, $s: String, $l: String, $a: String) { jobLogs(jobId: $j, search: $s, level: $l, after: $a, first: 3) { cursor level message } }";
    let saved = s
        .ok(&key, q, json!({"j": j_id, "s": "CHECKPOINT SAVED"}))
        .await["jobLogs"]
        .clone();
    assert_eq!(saved.as_array().unwrap().len(), 3);
    let next = s
        .ok(
            &key,
            q,
            json!({"j": j_id, "s": "checkpoint saved", "a": saved[2]["cursor"]}),
        )
        .await["jobLogs"]
        .clone();
    assert_ne!(next[0]["cursor"], saved[2]["cursor"]);
    let errors_only = s.ok(&key, q, json!({"j": j_id, "l": "error"})).await["jobLogs"].clone();
    assert_eq!(errors_only, json!([]));

    // Checkpoints: keep-last-2 pruned the older ones; files download with their checksum.
    let cps = t["checkpoints"].as_array().unwrap();
    let live: Vec<i64> = cps
        .iter()
        .filter(|c| c["pruned"] == false)
        .map(|c| c["step"].as_i64().unwrap())
        .collect();
    // The last two, plus the one with the best eval loss wherever it is.
    assert!(
        live.ends_with(&[steps as i64 - 10, steps as i64]),
        "{live:?}"
    );
    assert!(live.len() <= 3, "{live:?}");
    assert!(cps.iter().any(|c| c["pruned"] == true));
    let last = cps.iter().find(|c| c["step"] == steps).unwrap();
    let file = last["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "model.bpk")
        .unwrap();
    let r = s
        .http
        .get(format!(
            "{}{}",
            s.base,
            file["downloadPath"].as_str().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let header = r.headers()["x-checksum-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = r.bytes().await.unwrap();
    assert_eq!(format!("{:x}", Sha256::digest(&bytes)), header);
    assert_eq!(header, file["sha256"].as_str().unwrap());
    assert_eq!(bytes.len() as i64, file["size"].as_i64().unwrap());

    // The finished job is a model with its lineage, and it answers.
    let m = model_of(
        &s,
        &key,
        &json!(j_id),
        "id baseModel datasetDigest checkpointStep",
    )
    .await;
    assert_eq!(m["baseModel"], base_id.as_str());
    assert_eq!(m["datasetDigest"], chat_sha.as_str());
    assert_eq!(m["checkpointStep"], steps);
    let g = s
        .ok(&key, "query($m: ID!) { generate(modelId: $m, prompt: \"say teal\", maxTokens: 24) { text finishReason completionTokens } }", json!({"m": m["id"]}))
        .await["generate"]
        .clone();
    assert_eq!(g["text"], "teal teal teal", "{g}");
    assert_eq!(g["finishReason"], "stop");
    // Sampling parameters out of range are refused, naming the parameter,
    // as the chat portal refuses them.
    let sample = "query($m: ID!, $t: Float!, $p: Float!) { generate(modelId: $m, prompt: \"x\", temperature: $t, topP: $p) { text } }";
    for (t, p, field) in [
        (1e300, 1.0, "temperature"),
        (2.5, 1.0, "temperature"),
        (-0.1, 1.0, "temperature"),
        (1.0, 0.0, "top_p"),
        (1.0, 1.5, "top_p"),
    ] {
        let (_, b) = s
            .gql(Some(&key), sample, json!({"m": m["id"], "t": t, "p": p}))
            .await;
        assert_eq!(
            b["errors"][0]["extensions"]["code"], "INVALID_INPUT",
            "{t} {p}: {b}"
        );
        assert_eq!(b["errors"][0]["extensions"]["field"], field, "{b}");
    }

    // The GPU selection screen.
    let gpus = s
        .ok(
            &key,
            "{ gpuCatalog(filter: {provider: \"local\"}) { sku usdPerHour } }",
            json!({}),
        )
        .await;
    assert_eq!(
        gpus["gpuCatalog"],
        json!([{"sku": "cpu", "usdPerHour": 3.6}])
    );
    s.stop().await;
}

async fn worker_leases_tokens_recovery_and_errors(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.training.local_workers = 0;
        c.training.heartbeat_ms = 100;
        c.training.lease_ms = 2_000;
        c.training.reconcile_ms = 50;
    })
    .await;
    let key = s.key("workers", Scope::Write).await;
    let reader = s.key("workers", Scope::Read).await;
    let other = s.key("elsewhere", Scope::Write).await;
    let (_, chat) = s.upload(&key, "chat.jsonl", sft_rows()).await;
    let mut c = config("ftl/byte-transformer-tiny", "sft", 12);
    c["checkpoint"]["save_steps"] = json!(5);
    let create = |name: &'static str| {
        let c = c.clone();
        let chat = chat["id"].clone();
        let s = &s;
        let key = key.clone();
        async move {
            s.ok(&key, CREATE, json!({"n": name, "c": c, "d": chat}))
                .await["createTrainingJob"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let job_id = create("recovered").await;
    let claim_url = format!("{}/api/v1/worker/claim", s.base);
    let claim = |token: Option<String>| {
        let http = s.http.clone();
        let url = claim_url.clone();
        async move {
            let mut r = http.post(url).json(&json!({"worker_id": "test-worker"}));
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Claiming needs a write key, of the job's project.
    assert_eq!(claim(None).await.0, 401);
    assert_eq!(claim(Some(reader.clone())).await.0, 403);
    assert_eq!(claim(Some(other.clone())).await.0, 204);
    let (status, lease) = claim(Some(key.clone())).await;
    assert_eq!(status, 200, "{lease}");
    assert_eq!(lease["job_id"], job_id.as_str());
    let token = lease["token"].as_str().unwrap().to_string();
    let job_url = format!("{}/api/v1/worker/jobs/{job_id}", s.base);
    let post = |path: &str, token: &str, body: Value| {
        let r = s
            .http
            .post(format!("{job_url}{path}"))
            .bearer_auth(token)
            .json(&body);
        async move {
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // The job token opens this job's worker calls and nothing else.
    assert_eq!(
        post("/started", &token, json!({"from_step": null})).await.0,
        200
    );
    wait_for(&s, &key, &job_id, 10, "running", status_is("RUNNING")).await;
    assert_eq!(
        s.code(Some(&token), "{ me { project } }", json!({})).await,
        "UNAUTHENTICATED"
    );
    let second = create("second").await;
    // Another project sees neither the running job nor the queued one: no
    // read, no control, no subscription, no worker call with its own key.
    for (id, status) in [(&job_id, "RUNNING"), (&second, "QUEUED")] {
        assert_eq!(job(&s, &key, id).await["status"], status);
        let (_, b) = s
            .gql(
                Some(&other),
                "query($j: ID!) { job(id: $j) { id } }",
                json!({"j": id}),
            )
            .await;
        assert_eq!(b["data"]["job"], Value::Null, "{b}");
        for q in [
            "query($j: ID!) { metricSeries(jobId: $j, keys: [\"train_loss\"]) { key } }",
            "query($j: ID!) { jobLogs(jobId: $j) { cursor } }",
            "query($j: ID!) { jobEvents(jobId: $j) { position } }",
            "mutation($j: ID!) { pauseJob(id: $j) { status } }",
            "mutation($j: ID!) { cancelJob(id: $j) { status } }",
        ] {
            assert_eq!(
                s.code(Some(&other), q, json!({"j": id})).await,
                "NOT_FOUND",
                "{q}"
            );
        }
        for q in [
            "subscription($j: ID!) { jobStatus(jobId: $j) { status } }",
            "subscription($j: ID!) { jobMetrics(jobId: $j) { position } }",
            "subscription($j: ID!) { jobLogLines(jobId: $j) { message } }",
            "subscription($j: ID!) { budgetAlerts(jobId: $j) { percent } }",
        ] {
            let refused = subscribe_to(&ws_url(&s), Some(&other), q, json!({"j": id}))
                .await
                .expect_err(q);
            assert!(refused.contains("NOT_FOUND"), "{q}: {refused}");
        }
        let r = s
            .http
            .post(format!("{}/api/v1/worker/jobs/{id}/heartbeat", s.base))
            .bearer_auth(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "a project key is not a job token");
        assert_eq!(job(&s, &key, id).await["status"], status, "untouched");
    }
    let r = s
        .http
        .post(format!("{}/api/v1/worker/jobs/{second}/heartbeat", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        post("/heartbeat", "ftlw_bogus_token", json!({})).await.0,
        401
    );
    let (status, beat) = post("/heartbeat", &token, json!({})).await;
    assert_eq!((status, beat["control"].as_str()), (200, Some("continue")));
    // A full batch (10,000 points, ~1 MiB) is within the worker limits; more is refused.
    let points = |n: i64| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"key": "system/rss_mb", "step": i, "value": 1.5, "timestamp_ms": 1_700_000_000_000i64 + i}))
            .collect()
    };
    let batch = |n: i64| json!({"batch_id": uuid::Uuid::new_v4(), "points": points(n)});
    // (A heartbeat before each keeps the short test lease alive.)
    assert_eq!(post("/heartbeat", &token, json!({})).await.0, 200);
    let (status, body) = post("/metrics", &token, batch(10_000)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(post("/heartbeat", &token, json!({})).await.0, 200);
    let (status, body) = post("/metrics", &token, batch(10_001)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("limit_exceeded")),
        "{body}"
    );

    // The worker goes silent: its lease expires and the job recovers.
    // (Status and training facts come from two read models: wait for both.)
    let recovering = wait_for(&s, &key, &job_id, 20, "recovery", |j| {
        j["status"] == "RECOVERING" && j["training"]["recoveryCount"] == 1
    })
    .await;
    assert_eq!(recovering["training"]["recoveryCount"], 1);
    let (status, lost) = post("/heartbeat", &token, json!({})).await;
    assert_eq!(status, 409, "{lost}");
    assert_eq!(lost["code"], "lease_lost");

    // A real worker with the project's key picks both jobs up and finishes them.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(ftl_trainer::worker::run_worker(
        ftl_trainer::worker::WorkerOptions {
            server: s.base.clone(),
            token: key.clone(),
            worker_id: "real-worker".into(),
            idle_poll: Duration::from_millis(100),
            once: false,
        },
        rx,
    ));
    let done = wait_for(
        &s,
        &key,
        &job_id,
        120,
        "the recovered job",
        status_is("SUCCEEDED"),
    )
    .await;
    assert_eq!(done["training"]["attempt"], 2);
    // Any stored checkpoint can become a model; a pruned one cannot.
    let reg = "mutation($j: ID!, $s: Int!) { registerModel(jobId: $j, step: $s, name: \"mid\") { id name checkpointStep } }";
    let pruned = done["training"]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["pruned"] == true)
        .cloned()
        .unwrap();
    let (_, refused) = s
        .gql(Some(&key), reg, json!({"j": job_id, "s": pruned["step"]}))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{refused}"
    );
    let mid = s.ok(&key, reg, json!({"j": job_id, "s": 10})).await["registerModel"].clone();
    assert_eq!(
        (mid["name"].as_str(), mid["checkpointStep"].as_i64()),
        (Some("mid"), Some(10))
    );
    let g = s
        .ok(&key, "query($m: ID!) { generate(modelId: $m, prompt: \"say red\", maxTokens: 4) { completionTokens } }", json!({"m": mid["id"]}))
        .await;
    assert!(
        g["generate"]["completionTokens"].as_i64().unwrap() > 0,
        "{g}"
    );
    assert_eq!(done["training"]["progress"]["step"], 12);
    wait_for(
        &s,
        &key,
        &second,
        120,
        "the second job",
        status_is("SUCCEEDED"),
    )
    .await;

    // Cancelling a running job: the worker stops after a checkpoint, then
    // releases; the job ends CANCELLED.
    let mut long = c.clone();
    long["training"]["max_steps"] = json!(5000);
    let long_id = s
        .ok(
            &key,
            CREATE,
            json!({"n": "cancelled", "c": long, "d": chat["id"]}),
        )
        .await["createTrainingJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&s, &key, &long_id, 60, "it to train", |j| {
        j["training"]["progress"]["step"].as_i64().unwrap_or(0) >= 3
    })
    .await;
    let answered = s
        .ok(
            &key,
            "mutation($id: ID!) { cancelJob(id: $id) { status } }",
            json!({"id": long_id}),
        )
        .await;
    assert_eq!(answered["cancelJob"]["status"], "CANCELLING", "{answered}");
    let cancelled = wait_for(&s, &key, &long_id, 60, "the cancel", status_is("CANCELLED")).await;
    let last = cancelled["training"]["checkpoints"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        last["reason"] == "stop" || last["reason"] == "interval",
        "a checkpoint to come back to: {cancelled}"
    );
    let _ = tx.send(true);
    let _ = worker.await;

    // Two failures that differ only in numbers group under one fingerprint.
    let trace = |n: u32| {
        format!(
            "Traceback (most recent call last):\n  File \"train.py\", line 10, in main\n    step()\n  File \"train.py\", line {n}, in step\n    raise ValueError('x')\nValueError: loss is NaN at step {n}"
        )
    };
    let mut failed_ids = vec![];
    for (name, n) in [("fail-a", 120u32), ("fail-b", 4711)] {
        let id = create(name).await;
        let (status, l) = claim(Some(key.clone())).await;
        assert_eq!((status, l["job_id"].as_str()), (200, Some(id.as_str())));
        let t = l["token"].as_str().unwrap().to_string();
        let url = format!("{}/api/v1/worker/jobs/{id}", s.base);
        let r = s
            .http
            .post(format!("{url}/failed"))
            .bearer_auth(&t)
            .json(&json!({"kind": "error", "message": format!("loss is NaN at step {n}"), "trace": trace(n)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let j = wait_for(&s, &key, &id, 10, "failed", status_is("FAILED")).await;
        assert_eq!(j["error"], format!("loss is NaN at step {n}"));
        failed_ids.push(id);
    }
    let groups = s
        .ok(
            &key,
            "{ errors { fingerprint count jobIds message frames { function line } } }",
            json!({}),
        )
        .await["errors"]
        .clone();
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["count"], 2);
    assert_eq!(groups[0]["message"], "loss is NaN at step 4711");
    assert_eq!(groups[0]["frames"][0]["function"], "step");
    let mut ids: Vec<String> = groups[0]["jobIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    failed_ids.sort();
    assert_eq!(ids, failed_ids);
    // Another project sees none of it.
    let theirs = s.ok(&other, "{ errors { count } }", json!({})).await;
    assert_eq!(theirs["errors"], json!([]));
    s.stop().await;
}

/// Datasets read in place from S3 and checkpoints stored on S3, against the
/// local S3-compatible server that `scripts/test.sh` starts
/// (`FTL_TEST_S3_URL`); skipped, saying so, when it is not running.
async fn s3_datasets_in_place_and_checkpoints(backend: Backend) {
    let Ok(endpoint) = std::env::var("FTL_TEST_S3_URL") else {
        eprintln!("FTL_TEST_S3_URL is not set: S3 test skipped (scripts/test.sh starts one)");
        return;
    };
    let bucket = format!("ftl-{}", uuid::Uuid::new_v4().simple());
    let http = reqwest::Client::new();
    let made = http
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(
        made.status().is_success(),
        "creating the bucket: {}",
        made.status()
    );
    let s3: std::collections::BTreeMap<String, String> = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_region", "us-east-1"),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (store, path) =
        ftl_effects::blobs::open_object(&format!("s3://{bucket}/data/chat.jsonl"), &s3).unwrap();
    object_store::ObjectStoreExt::put(&*store, &path, sft_rows().into_bytes().into())
        .await
        .unwrap();
    let s = TestServer::start_with(backend, |c| {
        c.artifacts.root = format!("s3://{bucket}/artifacts");
        c.artifacts.options = s3.clone();
        c.training.dataset_sources = vec![format!("s3://{bucket}/data/")];
        c.training.local_workers = 1;
        c.training.heartbeat_ms = 100;
        c.training.reconcile_ms = 50;
    })
    .await;
    let key = s.key("s3-team", Scope::Write).await;
    let q =
        "mutation($u: String!) { registerDataset(uri: $u) { id name uri kind examples sha256 } }";
    // Only under a configured prefix (nothing else the server can reach).
    let outside = format!("s3://{bucket}/artifacts/x.jsonl");
    assert_eq!(
        s.code(Some(&key), q, json!({"u": outside})).await,
        "FORBIDDEN"
    );
    assert_eq!(
        s.code(Some(&key), q, json!({"u": "file:///etc/passwd"}))
            .await,
        "FORBIDDEN"
    );
    let uri = format!("s3://{bucket}/data/chat.jsonl");
    let d = s.ok(&key, q, json!({"u": uri})).await["registerDataset"].clone();
    assert_eq!(
        (
            d["name"].as_str(),
            d["kind"].as_str(),
            d["examples"].as_i64()
        ),
        (Some("chat.jsonl"), Some("supervised"), Some(64))
    );
    assert_eq!(d["uri"], uri.as_str());
    assert_eq!(
        d["sha256"],
        format!("{:x}", Sha256::digest(sft_rows().as_bytes())).as_str()
    );

    let mut c = config("ftl/byte-transformer-tiny", "sft", 12);
    c["checkpoint"]["save_steps"] = json!(5);
    let id = s
        .ok(&key, CREATE, json!({"n": "on-s3", "c": c, "d": d["id"]}))
        .await["createTrainingJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_for(&s, &key, &id, 120, "the S3 job", status_is("SUCCEEDED")).await;
    let last = done["training"]["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["step"] == 12)
        .unwrap()
        .clone();
    // The checkpoint is in the bucket, byte for byte what was recorded.
    for f in last["files"].as_array().unwrap() {
        let (store, path) = ftl_effects::blobs::open_object(
            &format!(
                "s3://{bucket}/artifacts/jobs/{}/checkpoints/checkpoint-00000012/{}",
                id.replace('-', ""),
                f["name"].as_str().unwrap()
            ),
            &s3,
        )
        .unwrap();
        let bytes = object_store::ObjectStoreExt::get(&*store, &path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            format!("{:x}", Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap()
        );
    }
    let m = model_of(&s, &key, &json!(id), "id").await["id"].clone();
    let g = s
        .ok(&key, "query($m: ID!) { generate(modelId: $m, prompt: \"say red\", maxTokens: 8) { completionTokens } }", json!({"m": m}))
        .await;
    assert!(
        g["generate"]["completionTokens"].as_i64().unwrap() > 0,
        "{g}"
    );
    s.stop().await;
}

e2e!(
    managed_training_end_to_end,
    worker_leases_tokens_recovery_and_errors,
    s3_datasets_in_place_and_checkpoints
);
