//! Several `serve` processes on one PostgreSQL: the reconciler runs under
//! one leader, a standby takes over when the leader goes, and every cost
//! tick is charged once — also when two processes act on the same lease at
//! the same moment; and a succeeded job's model is registered once while
//! both dispatch the outbox. (SQLite is one process's database.)

use crate::api::TestServer;
use crate::training::{CREATE, config, sft_rows};
use ftl_commands::store::read_full_stream;
use ftl_domain::JobId;
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Two servers on one fresh PostgreSQL database.
async fn two_servers(reconcile_ms: u64, cost_tick_ms: u64) -> (TestServer, TestServer) {
    two_servers_with(reconcile_ms, cost_tick_ms, 0).await
}

/// The same, each with `workers` in-process training workers.
async fn two_servers_with(
    reconcile_ms: u64,
    cost_tick_ms: u64,
    workers: usize,
) -> (TestServer, TestServer) {
    let adjust = move |c: &mut ftl_api::config::Config| {
        c.training.local_workers = workers;
        c.training.reconcile_ms = reconcile_ms;
        c.training.cost_tick_ms = cost_tick_ms;
        c.training.lease_ms = 600_000;
        c.training.local_rate_usd_per_hour = 3.6;
    };
    let a = TestServer::start_with(Backend::Postgres, adjust).await;
    // One database and one artifact store, as a scaled-out deployment has.
    let url = a.state.config.database.url.clone();
    let root = a.state.config.artifacts.root.clone();
    let b = TestServer::start_with(Backend::Postgres, |c| {
        adjust(c);
        c.database.url = url;
        c.artifacts.root = root;
    })
    .await;
    (a, b)
}

/// A training job claimed by a worker and started: (key, job id), with a
/// lease that the reconcilers charge.
async fn running_job(s: &TestServer) -> (String, String) {
    let key = s.key("ticks", Scope::Write).await;
    let (_, data) = s.upload(&key, "chat.jsonl", sft_rows()).await;
    let job = s
        .ok(
            &key,
            CREATE,
            json!({"n": "ticks", "c": config("ftl/byte-transformer-tiny", "sft", 100), "d": data["id"]}),
        )
        .await["createTrainingJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let lease: Value = s
        .http
        .post(format!("{}/api/v1/worker/claim", s.base))
        .bearer_auth(&key)
        .json(&json!({"worker_id": "ticks"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lease["job_id"], job.as_str(), "{lease}");
    let token = lease["token"].as_str().unwrap();
    let r = s
        .http
        .post(format!("{}/api/v1/worker/jobs/{job}/started", s.base))
        .bearer_auth(token)
        .json(&json!({"from_step": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    (key, job)
}

/// The job's cost ticks in log order: (from_ms, to_ms, usd, rate, actor).
async fn ticks(s: &TestServer, job: &str) -> Vec<(i64, i64, f64, f64, String)> {
    let id = JobId(job.parse().unwrap());
    read_full_stream(s.state.effects.store.as_ref(), &id.stream())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event_type == "job.cost_accrued")
        .map(|e| {
            let p: Value = serde_json::from_str(&e.payload).unwrap();
            (
                p["from_ms"].as_i64().unwrap(),
                p["to_ms"].as_i64().unwrap(),
                p["usd"].as_f64().unwrap(),
                p["rate_usd_per_hour"].as_f64().unwrap(),
                e.metadata.actor.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// `ftl_leader{role="reconciler"}` of one server.
async fn leads(s: &TestServer) -> bool {
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .any(|l| l.trim() == "ftl_leader{role=\"reconciler\"} 1")
}

async fn until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !f().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ticks tile time: each starts where the previous ended, none is
/// charged twice, and each is its interval at the job's rate.
fn assert_tiled(t: &[(i64, i64, f64, f64, String)]) {
    for w in t.windows(2) {
        assert_eq!(w[1].0, w[0].1, "ticks overlap or leave a gap: {t:?}");
    }
    for (from, to, usd, rate, _) in t {
        assert_eq!(*rate, 3.6);
        let want = rate * (to - from) as f64 / 3_600_000.0;
        assert!(
            (usd - want).abs() <= 1e-12,
            "{usd} for {from}..{to} at {rate}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_reconciler_leads_and_a_standby_takes_over() {
    let (a, b) = two_servers(20, 150).await;
    until("one leader", Duration::from_secs(5), async || {
        leads(&a).await || leads(&b).await
    })
    .await;
    let (first, second) = if leads(&a).await { (a, b) } else { (b, a) };
    assert!(!leads(&second).await, "two reconcilers lead");
    let (_, job) = running_job(&first).await;
    until(
        "ticks from the leader",
        Duration::from_secs(10),
        async || ticks(&second, &job).await.len() >= 4,
    )
    .await;
    // The leader goes; its session ends and the standby takes the lead.
    first.stop().await;
    until("the standby leads", Duration::from_secs(5), async || {
        leads(&second).await
    })
    .await;
    let before = ticks(&second, &job).await.len();
    until(
        "ticks from the new leader",
        Duration::from_secs(10),
        async || ticks(&second, &job).await.len() >= before + 4,
    )
    .await;
    let t = ticks(&second, &job).await;
    assert_tiled(&t);
    // One actor, then the other: the two never charged side by side.
    let actors: Vec<&str> = t.iter().map(|x| x.4.as_str()).collect();
    let switches = actors.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, 1, "ticks by {actors:?}");
    assert!(actors[0].starts_with("reconciler:"), "{actors:?}");
    // No tick is shorter than the tick interval (a second process would
    // add short ones between the leader's).
    for (from, to, ..) in &t {
        assert!(to - from >= 100, "a {}-ms tick in {t:?}", to - from);
    }
    second.stop().await;
}

/// Without the lead (two processes reconciling at once, or a retry), a
/// tick is still charged once: its command id names the lease and the
/// interval's start, so the second is deduplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ticks_of_one_interval_are_charged_once() {
    // The background reconcilers stay out of the way (an hour apart).
    let (a, b) = two_servers(3_600_000, 50).await;
    let (_, job) = running_job(&a).await;
    for round in 1..=5 {
        tokio::time::sleep(Duration::from_millis(80)).await;
        let (x, y) = tokio::join!(
            ftl_effects::training::reconciler::reconcile_once(&a.state.effects, "reconciler:a"),
            ftl_effects::training::reconciler::reconcile_once(&b.state.effects, "reconciler:b"),
        );
        x.unwrap();
        y.unwrap();
        let t = ticks(&a, &job).await;
        assert_eq!(t.len(), round, "round {round}: {t:?}");
        assert_tiled(&t);
    }
    a.stop().await;
    b.stop().await;
}

/// Two processes, both dispatching the outbox: the job's success is one
/// intent, claimed by one of them, and its model is registered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_register_a_job_s_model_once() {
    let (a, b) = two_servers_with(1_000, 10_000, 1).await;
    let (key, job) = crate::reactions::succeeded_job(&a, "pm2").await;
    let model = crate::training::model_of(&b, &key, &json!(job), "id").await;
    let model_id = model["id"].as_str().unwrap();
    // Both dispatchers keep polling a while after the registration.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(crate::reactions::registrations(&a, model_id).await, 1);
    let rows = ftl_commands::outbox::rows(&a.state.effects.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].status.as_str(), rows[0].attempts),
        ("done", 1),
        "{rows:?}"
    );
    a.stop().await;
    b.stop().await;
}
