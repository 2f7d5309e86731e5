//! Crash safety of the real `finetune-lab` binary, on SQLite and PostgreSQL.
//!
//! Several writers ingest metric batches through GraphQL; the server is
//! killed with SIGKILL while requests are in flight and started again on the
//! same database. Then: every acknowledged batch is present, each batch is
//! present whole or not at all, nothing is duplicated, retrying every batch
//! with its idempotency key completes the set exactly once, and the read
//! model equals one rebuilt from the log by `finetune-lab projections rebuild`.

use crate::process::{ServerProcess, run_cli};
use ftl_tests::Backend;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BATCH: i64 = 250;
const BATCHES: i64 = 400;
const WRITERS: i64 = 6;
const KILL_AFTER_ACKS: usize = 60;
const LOG: &str = "mutation($j: ID!, $p: [MetricPointInput!]!, $k: String) { logMetrics(jobId: $j, points: $p, idempotencyKey: $k) { accepted deduplicated } }";

async fn gql(http: &reqwest::Client, base: &str, key: &str, q: &str, v: Value) -> Option<Value> {
    let res = http
        .post(format!("{base}/graphql"))
        .bearer_auth(key)
        .json(&json!({ "query": q, "variables": v }))
        .send()
        .await
        .ok()?;
    if res.status() != 200 {
        return None;
    }
    let body: Value = res.json().await.ok()?;
    body.get("errors").is_none().then(|| body["data"].clone())
}

async fn log_batch(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    job: &str,
    b: i64,
) -> Option<Value> {
    let points: Vec<Value> = (b * BATCH..(b + 1) * BATCH)
        .map(|s| json!({ "key": "train_loss", "step": s, "value": 1.0 / (s + 1) as f64 }))
        .collect();
    let v = json!({ "j": job, "p": points, "k": format!("batch-{b}") });
    gql(http, base, key, LOG, v)
        .await
        .map(|d| d["logMetrics"].clone())
}

/// Steps in `metric_points` with how often each occurs.
async fn step_counts(db_url: &str) -> BTreeMap<i64, i64> {
    let (db, _) = ftl_tests::open_store(db_url).await.unwrap();
    let rows: Vec<(i64, i64)> = ftl_projections::on_pool!(&db, |pool| sqlx::query_as(
        "SELECT step, COUNT(*) FROM metric_points GROUP BY step"
    )
    .fetch_all(pool)
    .await
    .unwrap());
    db.close().await;
    rows.into_iter().collect()
}

async fn snapshot(db_url: &str) -> Vec<String> {
    let (db, _) = ftl_tests::open_store(db_url).await.unwrap();
    let s = ftl_tests::read_model_snapshot(&db).await.unwrap();
    db.close().await;
    s
}

async fn kill9_mid_ingest(backend: Backend) {
    let url = backend.fresh_url().await.unwrap();
    let http = reqwest::Client::new();
    let key = run_cli(&url, &["keys", "create", "--project", "crash"])
        .trim()
        .to_string();

    let first = ServerProcess::start(&url, &http).await;
    let d = gql(
        &http,
        &first.base,
        &key,
        "mutation { createJob(name: \"crash\") { id } }",
        json!({}),
    )
    .await
    .unwrap();
    let job = d["createJob"]["id"].as_str().unwrap().to_string();

    let next = Arc::new(Mutex::new(0_i64));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let failed = Arc::new(Mutex::new(0_usize));
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (http, base, key, job) = (http.clone(), first.base.clone(), key.clone(), job.clone());
        let (next, acked, failed) = (next.clone(), acked.clone(), failed.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let b = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                if b >= BATCHES {
                    return;
                }
                match log_batch(&http, &base, &key, &job, b).await {
                    Some(r) => {
                        assert_eq!(r["accepted"], BATCH);
                        acked.lock().unwrap().insert(b);
                    }
                    None => {
                        *failed.lock().unwrap() += 1;
                        return;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < KILL_AFTER_ACKS {
        assert!(Instant::now() < deadline, "ingestion too slow to test");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        *failed.lock().unwrap() > 0,
        "the kill must interrupt requests in flight"
    );
    assert!((acked.len() as i64) < BATCHES, "the kill came too late");

    // Restart on the same database: the projections catch up from the log.
    let second = ServerProcess::start(&url, &http).await;
    let counts = step_counts(&url).await;
    assert!(counts.values().all(|&c| c == 1), "a point was stored twice");
    for b in &acked {
        for s in b * BATCH..(b + 1) * BATCH {
            assert!(
                counts.contains_key(&s),
                "acknowledged batch {b} lost step {s}"
            );
        }
    }
    // Each batch is atomic: whole or absent.
    let present: BTreeSet<i64> = counts.keys().map(|s| s / BATCH).collect();
    for b in &present {
        let n = (b * BATCH..(b + 1) * BATCH)
            .filter(|s| counts.contains_key(s))
            .count();
        assert_eq!(n as i64, BATCH, "batch {b} is torn");
    }

    // Clients retry what was not acknowledged (and send what they never
    // sent) with the same idempotency keys: batches that committed before the
    // crash are recognised, not stored again.
    let mut deduplicated = BTreeSet::new();
    for b in (0..BATCHES).filter(|b| !acked.contains(b)) {
        let r = log_batch(&http, &second.base, &key, &job, b).await.unwrap();
        assert_eq!(r["deduplicated"], present.contains(&b), "batch {b}");
        if r["deduplicated"] == true {
            deduplicated.insert(b);
        }
    }
    let counts = step_counts(&url).await;
    assert_eq!(counts.len() as i64, BATCHES * BATCH);
    assert!(counts.values().all(|&c| c == 1));
    assert_eq!(
        present.difference(&acked).copied().collect::<BTreeSet<_>>(),
        deduplicated
    );

    // Graceful stop, then the read model equals one rebuilt from the log.
    second.terminate();
    let live = snapshot(&url).await;
    for name in ["catalog", "metrics"] {
        let out = run_cli(&url, &["projections", "rebuild", name]);
        assert!(out.contains(&format!("rebuilt {name}")), "{out}");
    }
    assert_eq!(snapshot(&url).await, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_survives_kill9_mid_ingest() {
    kill9_mid_ingest(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_survives_kill9_mid_ingest() {
    kill9_mid_ingest(Backend::Postgres).await;
}
