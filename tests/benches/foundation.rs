//! Foundation benchmarks (issue #2), printed as a table of medians.
//!
//! - `store`: event-store appends in batches of 1,000 beside a bare multi-row
//!   insert of the same rows into a plain table, alternating in one run.
//! - `ingest`: 100 keys × 10,000 steps through GraphQL `logMetrics` (which
//!   returns once the read model has the points) on a server in this process.
//! - `series`: `metricSeries(maxPoints: 1000)` over a 1,000,000-point series.
//! - `rebuild`: `projections rebuild` over a log of small per-step events.
//!
//! Run with `scripts/bench-foundation [store|ingest|series|rebuild] [--backend …]`.

use clap::{Parser, ValueEnum};
use ftl_api::config::Config;
use ftl_commands::Db;
use ftl_commands::store::{DynStore, ExpectedVersion, Metadata, NewEvent};
use ftl_domain::DomainEvent;
use ftl_domain::ids::{JobId, ProjectId, derive_event_id};
use ftl_domain::job::{JobCreated, JobEvent, JobStarted, JobSucceeded, Provider};
use ftl_domain::metrics::{MetricPoint, MetricsLogged};
use ftl_domain::project::Scope;
use ftl_tests::bench::{BackendArg, drop_database, label, median, pct, print_machine};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(name = "foundation", about = "FineTune Lab foundation benchmarks")]
struct Args {
    /// Benchmarks to run (default: all).
    #[arg(value_enum)]
    which: Vec<Which>,
    /// Store backend(s).
    #[arg(long, value_enum, default_value_t = BackendArg::Both)]
    backend: BackendArg,
    /// Timed rounds per figure.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Which {
    Store,
    Ingest,
    Series,
    Rebuild,
}

type Res<T> = anyhow::Result<T>;

/// The allocator of the `finetune-lab` binary, so the in-process server
/// measures as it runs.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Res<()> {
    let args = Args::parse();
    let which = if args.which.is_empty() {
        vec![Which::Store, Which::Ingest, Which::Series, Which::Rebuild]
    } else {
        args.which.clone()
    };
    print_machine();
    for backend in args.backend.backends() {
        for w in &which {
            let url = backend.fresh_url().await?;
            let r = match w {
                Which::Store => bench_store(&url, args.rounds.max(10) * 6).await,
                Which::Ingest => bench_ingest(&url, args.rounds).await,
                Which::Series => bench_series(&url, args.rounds).await,
                Which::Rebuild => bench_rebuild(&url, args.rounds).await,
            };
            drop_database(&url).await;
            r?;
        }
    }
    Ok(())
}

fn metrics_event(job: JobId, step: i64, keys: &[&str]) -> DomainEvent {
    DomainEvent::MetricsLogged(MetricsLogged {
        job_id: job,
        points: keys
            .iter()
            .enumerate()
            .map(|(i, k)| MetricPoint {
                key: (*k).to_string(),
                step,
                value: 2.0 / (step as f64 + 1.0) + i as f64,
                timestamp_ms: 1_764_000_000_000 + step * 1000,
            })
            .collect(),
    })
}

const STEP_KEYS: [&str; 5] = [
    "train_loss",
    "eval_loss",
    "learning_rate",
    "grad_norm",
    "tokens_per_second",
];

// ---- (a) append vs bare insert --------------------------------------------

async fn bench_store(url: &str, rounds: usize) -> Res<()> {
    let (db, store) = ftl_tests::open_store(url).await?;
    let plain = match &db {
        Db::Sqlite { .. } => {
            "CREATE TABLE plain (global_position INTEGER PRIMARY KEY, event_id BLOB, stream_id TEXT,
             stream_version INTEGER, event_type TEXT, schema_version INTEGER, recorded_at TEXT,
             payload TEXT, metadata TEXT)"
        }
        Db::Postgres(_) => {
            "CREATE TABLE plain (global_position BIGSERIAL PRIMARY KEY, event_id UUID, stream_id TEXT,
             stream_version BIGINT, event_type TEXT, schema_version INTEGER, recorded_at TIMESTAMPTZ,
             payload JSON, metadata JSONB)"
        }
    };
    match &db {
        Db::Sqlite { write, .. } => {
            sqlx::query(plain).execute(write).await?;
        }
        Db::Postgres(pool) => {
            sqlx::query(plain).execute(pool).await?;
        }
    }
    const N: usize = 1000;
    let job = JobId(Uuid::new_v4());
    let meta = Metadata {
        actor: Some("bench".into()),
        ..Metadata::default()
    };
    let mut store_s = Vec::new();
    let mut bare_s = Vec::new();
    for round in 0..rounds + 3 {
        // Event ids as every write path makes them: derived from a command id.
        let command = Uuid::new_v4();
        let batch: Vec<NewEvent> = (0..N)
            .map(|i| {
                let step = (round * N + i) as i64;
                NewEvent::from_domain(
                    derive_event_id(command, i),
                    &metrics_event(job, step, &STEP_KEYS),
                    meta.clone(),
                )
            })
            .collect();
        let stream = job.metrics_stream();
        let store_first = round % 2 == 0;
        for pass in 0..2 {
            if (pass == 0) == store_first {
                let t = Instant::now();
                store
                    .append(&stream, ExpectedVersion::Any, batch.clone())
                    .await?;
                if round >= 3 {
                    store_s.push(t.elapsed().as_secs_f64());
                }
            } else {
                let t = Instant::now();
                bare_insert(&db, &stream, (round * N) as i64, &batch).await?;
                if round >= 3 {
                    bare_s.push(t.elapsed().as_secs_f64());
                }
            }
        }
    }
    let (s, b) = (N as f64 / median(store_s), N as f64 / median(bare_s));
    println!(
        "(a) {:<8} append 1,000/batch: {:>9.0} events/s   bare INSERT: {:>9.0} rows/s   ratio {:.2}   ({rounds} rounds, median)",
        label(url),
        s,
        b,
        s / b
    );
    db.close().await;
    Ok(())
}

/// The same rows into a plain table: one transaction, one statement (as the
/// store does it on each backend), payloads serialised as the store does.
async fn bare_insert(db: &Db, stream: &str, first: i64, batch: &[NewEvent]) -> Res<()> {
    let now = chrono::Utc::now();
    let payloads: Vec<String> = batch
        .iter()
        .map(|e| serde_json::to_string(&e.payload))
        .collect::<Result<_, _>>()?;
    let metas: Vec<String> = batch
        .iter()
        .map(|e| serde_json::to_string(&e.metadata))
        .collect::<Result<_, _>>()?;
    match db {
        Db::Sqlite { write, .. } => {
            let mut tx = write.begin().await?;
            let sql = format!(
                "INSERT INTO plain (event_id, stream_id, stream_version, event_type, schema_version, recorded_at, payload, metadata) VALUES {}",
                (0..batch.len())
                    .map(|_| "(?,?,?,?,?,?,?,?)")
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, e) in batch.iter().enumerate() {
                q = q
                    .bind(e.event_id)
                    .bind(stream)
                    .bind(first + i as i64)
                    .bind(&e.event_type)
                    .bind(e.schema_version as i64)
                    .bind(now.to_rfc3339())
                    .bind(&payloads[i])
                    .bind(&metas[i]);
            }
            q.execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let ids: Vec<Uuid> = batch.iter().map(|e| e.event_id).collect();
            let versions: Vec<i64> = (0..batch.len() as i64).map(|i| first + i).collect();
            let types: Vec<&str> = batch.iter().map(|e| e.event_type.as_str()).collect();
            let svs: Vec<i32> = batch.iter().map(|e| e.schema_version as i32).collect();
            sqlx::query(
                "INSERT INTO plain (event_id, stream_id, stream_version, event_type, schema_version, recorded_at, payload, metadata)
                 SELECT id, $2, v, et, sv, $3, p::json, m::jsonb
                 FROM UNNEST($1::uuid[], $4::int8[], $5::text[], $6::int4[], $7::text[], $8::text[]) AS t(id, v, et, sv, p, m)",
            )
            .bind(&ids)
            .bind(stream)
            .bind(now)
            .bind(&versions)
            .bind(&types)
            .bind(&svs)
            .bind(&payloads)
            .bind(&metas)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

// ---- (b), (c) through the server -------------------------------------------

struct Bench {
    base: String,
    key: String,
    http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    /// The server until it has stopped its runners and closed its pools.
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// A throwaway artifact folder (benchmarks write none).
fn scratch_artifacts() -> String {
    std::env::temp_dir()
        .join("ftl-bench-artifacts")
        .to_string_lossy()
        .into_owned()
}

impl Bench {
    async fn start(url: &str) -> Res<Self> {
        let mut config = Config::default();
        config.server.bind = "127.0.0.1:0".into();
        config.database.url = url.to_string();
        config.artifacts.root = scratch_artifacts();
        config.log.level = "warn".into();
        ftl_api::telemetry::init_logging("text", "warn");
        let server = ftl_api::build_server(config).await?;
        let base = format!("http://127.0.0.1:{}", server.port);
        let state = server.state.clone();
        let handle = server.handle();
        let served = tokio::spawn(server.run_until_stopped());
        let k = ftl_api::auth::create_key(
            state.effects.store.as_ref(),
            "bench",
            "bench",
            Scope::Write,
            "bench",
        )
        .await?;
        state
            .effects
            .projections
            .wait_for(k.position, Duration::from_secs(30))
            .await;
        Ok(Bench {
            base,
            key: k.secret,
            http: reqwest::Client::new(),
            handle,
            served,
        })
    }

    async fn post(&self, body: String) -> Res<Value> {
        let res = self
            .http
            .post(format!("{}/graphql", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let v: Value = res.json().await?;
        anyhow::ensure!(v.get("errors").is_none(), "GraphQL errors: {v}");
        Ok(v["data"].clone())
    }

    async fn gql(&self, query: &str, variables: Value) -> Res<Value> {
        self.post(serde_json::to_string(
            &json!({ "query": query, "variables": variables }),
        )?)
        .await
    }

    async fn create_job(&self, name: &str) -> Res<String> {
        let d = self
            .gql(
                "mutation($n: String!) { createJob(name: $n) { id } }",
                json!({ "n": name }),
            )
            .await?;
        Ok(d["createJob"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Sends prepared `logMetrics` bodies with `concurrency` callers; returns
    /// the seconds until the last one is acknowledged (and so projected).
    async fn send_all(&self, bodies: Vec<String>, concurrency: usize) -> Res<f64> {
        let t = Instant::now();
        let results: Vec<Res<Value>> = futures::stream::iter(bodies)
            .map(|b| self.post(b))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let secs = t.elapsed().as_secs_f64();
        for r in results {
            r?;
        }
        Ok(secs)
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.served.await;
    }
}

const LOG: &str = "mutation($j: ID!, $p: [MetricPointInput!]!, $k: String) { logMetrics(jobId: $j, points: $p, idempotencyKey: $k) { accepted } }";
const SERIES: &str = "query($j: ID!, $k: [String!]!, $m: Int!, $f: Int, $t: Int) { metricSeries(jobId: $j, keys: $k, maxPoints: $m, fromStep: $f, toStep: $t) { key bucketWidth points { step count min max mean } } }";

/// `logMetrics` bodies: `calls` calls, each `steps_per_call` steps of every key.
fn log_bodies(job: &str, keys: &[String], steps: i64, steps_per_call: i64) -> Res<Vec<String>> {
    (0..steps / steps_per_call)
        .map(|c| {
            let mut points = Vec::with_capacity((steps_per_call as usize) * keys.len());
            for s in c * steps_per_call..(c + 1) * steps_per_call {
                for (i, k) in keys.iter().enumerate() {
                    points.push(
                        json!({ "key": k, "step": s, "value": 1.0 / (s as f64 + 1.0) + i as f64 }),
                    );
                }
            }
            Ok(serde_json::to_string(&json!({
                "query": LOG,
                "variables": { "j": job, "p": points, "k": format!("{job}-{c}") }
            }))?)
        })
        .collect()
}

async fn series_count(b: &Bench, job: &str, key: &str, max_points: i64) -> Res<(i64, usize)> {
    let d = b
        .gql(SERIES, json!({ "j": job, "k": [key], "m": max_points }))
        .await?;
    let pts = d["metricSeries"][0]["points"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok((
        pts.iter().map(|p| p["count"].as_i64().unwrap_or(0)).sum(),
        pts.len(),
    ))
}

async fn bench_ingest(url: &str, rounds: usize) -> Res<()> {
    let b = Bench::start(url).await?;
    let keys: Vec<String> = (0..100).map(|i| format!("metric_{i:02}")).collect();
    const STEPS: i64 = 10_000;
    let mut rates = Vec::new();
    for round in 0..rounds.max(1) {
        let job = b.create_job(&format!("ingest-{round}")).await?;
        // 100 calls of 10,000 points (100 steps × 100 keys), prepared ahead.
        let bodies = log_bodies(&job, &keys, STEPS, 100)?;
        let secs = b.send_all(bodies, 4).await?;
        let (n, _) = series_count(&b, &job, "metric_42", 10_000).await?;
        anyhow::ensure!(n == STEPS, "metric_42 has {n} points, expected {STEPS}");
        rates.push((STEPS as f64 * keys.len() as f64) / secs);
    }
    println!(
        "(b) {:<8} GraphQL ingest 100 keys × 10,000 steps: {:>9.0} points/s   (median of {}, 4 concurrent callers, 10,000 points/call)",
        label(url),
        median(rates.clone()),
        rates.len()
    );
    b.stop().await;
    Ok(())
}

async fn bench_series(url: &str, rounds: usize) -> Res<()> {
    let b = Bench::start(url).await?;
    let job = b.create_job("series").await?;
    const STEPS: i64 = 1_000_000;
    let bodies = log_bodies(&job, &["train_loss".to_string()], STEPS, 10_000)?;
    let secs = b.send_all(bodies, 4).await?;
    let (n, buckets) = series_count(&b, &job, "train_loss", 1000).await?;
    anyhow::ensure!(
        n == STEPS && buckets <= 1000,
        "{n} points in {buckets} buckets"
    );
    let queries = 100 * rounds.max(1);
    let mut full = Vec::with_capacity(queries);
    let mut zoom = Vec::with_capacity(queries);
    for i in 0..queries {
        let t = Instant::now();
        b.gql(SERIES, json!({ "j": job, "k": ["train_loss"], "m": 1000 }))
            .await?;
        full.push(t.elapsed().as_secs_f64() * 1000.0);
        // A zoomed window with ragged edges (raw points at both ends).
        let from = (i as i64 * 7919) % 900_000 + 13;
        let t = Instant::now();
        b.gql(
            SERIES,
            json!({ "j": job, "k": ["train_loss"], "m": 1000, "f": from, "t": from + 99_991 }),
        )
        .await?;
        zoom.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "(c) {:<8} metricSeries 1,000,000 points → ≤1000: full range p50 {:.2} ms p95 {:.2} ms; 100k-step window p50 {:.2} ms p95 {:.2} ms   ({queries} queries each; series ingested at {:.0} points/s)",
        label(url),
        median(full.clone()),
        pct(full, 0.95),
        median(zoom.clone()),
        pct(zoom, 0.95),
        STEPS as f64 / secs
    );
    // "As of" a log position: the same query answered from a replay, the
    // job's 100 batches folded into an in-memory read model per query.
    let d = b
        .gql(
            "mutation($j: ID!) { logMetrics(jobId: $j, points: [{key: \"other\", step: 0, value: 1}]) { position } }",
            json!({ "j": job }),
        )
        .await?;
    let at = d["logMetrics"]["position"].clone();
    const AS_OF: &str = "query($j: ID!, $k: [String!]!, $m: Int!, $a: String) { metricSeries(jobId: $j, keys: $k, maxPoints: $m, asOf: $a) { key bucketWidth points { step count min max mean } } }";
    let live = b
        .gql(AS_OF, json!({ "j": job, "k": ["train_loss"], "m": 1000 }))
        .await?;
    let mut replay = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        let past = b
            .gql(
                AS_OF,
                json!({ "j": job, "k": ["train_loss"], "m": 1000, "a": at }),
            )
            .await?;
        replay.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            past == live,
            "the replayed series differs from the live one"
        );
    }
    println!(
        "(c) {:<8} metricSeries asOf (a replay of 1,000,000 points): p50 {:.0} ms of 3, equal to the live answer",
        label(url),
        median(replay)
    );
    b.stop().await;
    Ok(())
}

// ---- (d) rebuild -----------------------------------------------------------

async fn seed_log(store: &DynStore, jobs: usize, steps: i64) -> Res<(u64, u64)> {
    let project = ProjectId(Uuid::new_v4());
    let meta = Metadata {
        actor: Some("bench".into()),
        project_id: Some(project),
        ..Metadata::default()
    };
    let mut events = 0u64;
    let mut points = 0u64;
    for j in 0..jobs {
        let job = JobId(Uuid::new_v4());
        let lifecycle = [
            DomainEvent::Job(JobEvent::Created(JobCreated {
                job_id: job,
                project_id: project,
                name: format!("job-{j}"),
                config: json!({ "lr": 0.001 }),
                tags: vec!["bench".into()],
                provider: Provider::External,
                experiment_id: "0".into(),
                user_id: String::new(),
                start_time_ms: None,
            })),
            DomainEvent::Job(JobEvent::Started(JobStarted {
                job_id: job,
                from_step: None,
            })),
        ];
        let new: Vec<NewEvent> = lifecycle
            .iter()
            .map(|e| NewEvent::from_domain(Uuid::new_v4(), e, meta.clone()))
            .collect();
        events += new.len() as u64;
        store
            .append(&job.stream(), ExpectedVersion::NoStream, new)
            .await?;
        for chunk in (0..steps).collect::<Vec<_>>().chunks(1000) {
            let command = Uuid::new_v4();
            let batch: Vec<NewEvent> = chunk
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    NewEvent::from_domain(
                        derive_event_id(command, i),
                        &metrics_event(job, *s, &STEP_KEYS),
                        meta.clone(),
                    )
                })
                .collect();
            events += batch.len() as u64;
            points += (batch.len() * STEP_KEYS.len()) as u64;
            store
                .append(&job.metrics_stream(), ExpectedVersion::Any, batch)
                .await?;
        }
        let done = DomainEvent::Job(JobEvent::Succeeded(JobSucceeded { job_id: job }));
        store
            .append(
                &job.stream(),
                ExpectedVersion::Exact(1),
                vec![NewEvent::from_domain(Uuid::new_v4(), &done, meta.clone())],
            )
            .await?;
        events += 1;
    }
    Ok((events, points))
}

async fn bench_rebuild(url: &str, rounds: usize) -> Res<()> {
    let mut config = Config::default();
    config.database.url = url.to_string();
    config.artifacts.root = scratch_artifacts();
    let state = ftl_api::AppState::build(config).await?;
    // 100 jobs × 2,000 steps, one event per step with 5 metrics (as a
    // training loop logs), plus each job's lifecycle.
    let (events, points) = seed_log(&state.effects.store, 100, 2_000).await?;
    for name in ["catalog", "metrics"] {
        let mut rates = Vec::new();
        for _ in 0..rounds.clamp(1, 3) {
            let r = state.effects.projections.rebuild(name).await?;
            rates.push(r.elapsed.as_secs_f64());
        }
        let secs = median(rates);
        let extra = if name == "metrics" {
            format!(" ({:.0} points/s)", points as f64 / secs)
        } else {
            String::new()
        };
        println!(
            "(d) {:<8} rebuild {name:<8} over {events} events: {:>9.0} events/s{extra}",
            label(url),
            events as f64 / secs
        );
    }
    state.close().await;
    Ok(())
}
