//! Chat-portal benchmarks (issue #5), printed as a table of medians.
//!
//! - `search`: full-text search over N predictions (default 1,000,000) —
//!   the predictions table's `search` filter (SQLite FTS5 / PostgreSQL
//!   full text) beside a substring scan (`LIKE`) of the same rows, in one
//!   run; p50/p95 over a mix of rare, common and two-word queries.
//! - `record`: what FineTune Lab adds to one chat exchange — the OpenAI
//!   client path through `/v1/chat/completions` (auth, model lookup,
//!   proxying, recording the prediction and waiting for the read model)
//!   against the same request sent to the provider directly, alternating.
//!
//! Run with `scripts/bench-lab [search|record] [--backend …] [--predictions N]`.

use actix_web::{HttpResponse, web};
use clap::{Parser, ValueEnum};
use ftl_api::config::Config;
use ftl_commands::store::{ExpectedVersion, Metadata, NewEvent};
use ftl_domain::DomainEvent;
use ftl_domain::ids::{PredictionId, derive_event_id};
use ftl_domain::prediction::{ChatMessage, PredictionRecorded};
use ftl_domain::project::Scope;
use ftl_projections::views::predictions::{self as view, PredictionFilter, PredictionSort};
use ftl_tests::bench::{BackendArg, drop_database, label, pct, print_machine};
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(name = "lab", about = "FineTune Lab chat-portal benchmarks")]
struct Args {
    /// Benchmarks to run (default: all).
    #[arg(value_enum)]
    which: Vec<Which>,
    /// Store backend(s).
    #[arg(long, value_enum, default_value_t = BackendArg::Sqlite)]
    backend: BackendArg,
    /// Predictions to search over.
    #[arg(long, default_value_t = 1_000_000)]
    predictions: usize,
    /// Timed queries (search) or exchanges (record) per figure.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Which {
    Search,
    Record,
}

type Res<T> = anyhow::Result<T>;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Res<()> {
    let args = Args::parse();
    let which = if args.which.is_empty() {
        vec![Which::Search, Which::Record]
    } else {
        args.which.clone()
    };
    print_machine();
    for backend in args.backend.backends() {
        for w in &which {
            let url = backend.fresh_url().await?;
            let r = match w {
                Which::Search => bench_search(&url, args.predictions, args.samples).await,
                Which::Record => bench_record(&url, args.samples).await,
            };
            drop_database(&url).await;
            r?;
        }
    }
    Ok(())
}

fn config(url: &str) -> Config {
    let mut c = Config::default();
    c.server.bind = "127.0.0.1:0".into();
    c.database.url = url.to_string();
    c.database.sqlite_synchronous = "normal".into();
    c.training.local_workers = 0;
    c.artifacts.root = std::env::temp_dir()
        .join(format!("ftl-bench-{}", Uuid::new_v4().simple()))
        .to_string_lossy()
        .into_owned();
    c
}

/// A deterministic word stream: a 5,000-word vocabulary drawn with a
/// Zipf-like skew (word k about 1/k as often), like natural text.
struct Words {
    vocab: Vec<String>,
    cumulative: Vec<f64>,
    state: u64,
}

impl Words {
    fn new() -> Self {
        let syllables = [
            "ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pa", "de", "zu", "fen",
        ];
        let vocab: Vec<String> = (0..5000usize)
            .map(|i| {
                let mut w = String::new();
                let mut n = i + 12;
                while n > 0 {
                    w.push_str(syllables[n % syllables.len()]);
                    n /= syllables.len();
                }
                w
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=vocab.len())
            .map(|k| {
                total += 1.0 / k as f64;
                total
            })
            .collect();
        Words {
            vocab,
            cumulative,
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn next(&mut self) -> &str {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let r = (self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
        let target = r * self.cumulative[self.cumulative.len() - 1];
        let i = self.cumulative.partition_point(|c| *c < target);
        &self.vocab[i.min(self.vocab.len() - 1)]
    }

    fn sentence(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| self.next().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

async fn bench_search(url: &str, n: usize, samples: usize) -> Res<()> {
    let st = ftl_api::AppState::build(config(url)).await?;
    let key = ftl_api::auth::create_key(
        st.effects.store.as_ref(),
        "bench",
        "bench",
        Scope::Write,
        "bench",
    )
    .await?;
    st.effects.projections.catch_up().await?;
    let caller = st.keys.authenticate(&st.effects, Some(&key.secret)).await?;
    let project = caller.project_id;
    let model = Uuid::new_v4();
    let mut words = Words::new();
    // Load: 1,000 predictions per append, 4 appenders.
    let t = Instant::now();
    let mut batches = vec![];
    for b in 0..n.div_ceil(1000) {
        let events: Vec<NewEvent> = (0..1000.min(n - b * 1000))
            .map(|i| {
                let id = PredictionId(Uuid::new_v4());
                let prompt = words.sentence(20);
                let response = words.sentence(30);
                let e = DomainEvent::PredictionRecorded(PredictionRecorded {
                    prediction_id: id,
                    project_id: project,
                    model_id: model,
                    model_name: "bench".into(),
                    messages: vec![ChatMessage {
                        role: "user".into(),
                        content: prompt,
                    }],
                    response,
                    finish_reason: "stop".into(),
                    params: json!({}),
                    latency_ms: 100.0 + (i % 50) as f64,
                    ttft_ms: Some(10.0),
                    model_version: "bench@1".into(),
                    prompt_tokens: 20,
                    completion_tokens: 30,
                    usage_source: "tokenizer".into(),
                    cost_usd: None,
                    source: "graphql".into(),
                    started_ms: 1_764_000_000_000 + (b * 1000 + i) as i64,
                });
                NewEvent::from_domain(
                    derive_event_id(id.0, 0),
                    &e,
                    Metadata {
                        project_id: Some(project),
                        ..Metadata::default()
                    },
                )
            })
            .collect();
        batches.push(events);
    }
    let mut batches = batches.into_iter().enumerate();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < 4 {
            let Some((b, events)) = batches.next() else {
                break;
            };
            let store = st.effects.store.clone();
            tasks.spawn(async move {
                store
                    .append(
                        &format!("prediction-bench-{b}"),
                        ExpectedVersion::NoStream,
                        events,
                    )
                    .await
            });
        }
        match tasks.join_next().await {
            Some(r) => {
                r??;
            }
            None => break,
        }
    }
    let appended = t.elapsed().as_secs_f64();
    let t = Instant::now();
    st.effects.projections.catch_up().await?;
    let projected = t.elapsed().as_secs_f64();
    // Table statistics, as autovacuum keeps them on a live PostgreSQL (the
    // planner needs them to tell a common word from a rare one).
    if let ftl_commands::Db::Postgres(pool) = &st.effects.db {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    println!(
        "{}: {n} predictions appended in {appended:.1} s, projected (table + full-text index) in {projected:.1} s ({:.0}/s)",
        label(url),
        n as f64 / projected
    );
    // Queries: a rare word, a common word, two words together, a common
    // word with a model filter, and a word no prediction holds — each newest first, a page of 20; beside
    // each, the substring scan the table did before full text (few samples:
    // a word in few rows makes it read the whole table).
    let kinds = [
        ("rare word", words.vocab[4000].clone(), None),
        ("common word", words.vocab[40].clone(), None),
        (
            "two words",
            format!("{} {}", words.vocab[3], words.vocab[900]),
            None,
        ),
        ("word + model filter", words.vocab[7].clone(), Some(model)),
        // No row has it: the scan reads the whole table to say so.
        ("absent word", "zzzunseen".to_string(), None),
    ];
    let mut all = vec![];
    for (name, q, model) in kinds {
        let filter = PredictionFilter {
            model_id: model,
            search: Some(q.clone()),
            ..PredictionFilter::default()
        };
        let mut fts = vec![];
        let mut hits = 0;
        for _ in 0..(samples / 4).max(1) {
            let t = Instant::now();
            let rows = view::predictions(
                &st.effects.db,
                project.0,
                &filter,
                PredictionSort::Newest,
                None,
                20,
            )
            .await?;
            fts.push(t.elapsed().as_secs_f64() * 1000.0);
            hits = rows.len();
            anyhow::ensure!(
                rows.iter().all(|r| q
                    .split(' ')
                    .all(|w| r.response.contains(w) || r.messages.to_string().contains(w))),
                "a hit without the words {q:?}"
            );
        }
        let mut like = vec![];
        for _ in 0..3 {
            let t = Instant::now();
            like_scan(&st.effects.db, project.0, &q, model).await?;
            like.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "{}: {name:<20} full-text p50 {:>7.2} ms  p95 {:>7.2} ms  ({hits} hits)   substring scan p50 {:>9.1} ms",
            label(url),
            pct(fts.clone(), 0.5),
            pct(fts.clone(), 0.95),
            pct(like, 0.5)
        );
        all.extend(fts);
    }
    println!(
        "{}: search over {n} predictions, all kinds: full-text p50 {:.2} ms, p95 {:.2} ms (aim p50 <= 50 ms)",
        label(url),
        pct(all.clone(), 0.5),
        pct(all, 0.95)
    );
    st.close().await;
    Ok(())
}

/// What a search cost before full text: a case-insensitive substring scan
/// for every word, newest first.
async fn like_scan(
    db: &ftl_commands::Db,
    project: Uuid,
    q: &str,
    model: Option<Uuid>,
) -> Res<usize> {
    let words: Vec<String> = q.split(' ').map(|w| format!("%{w}%")).collect();
    let mut sql = "SELECT prediction_id FROM predictions WHERE project_id = $1 AND ($2 IS NULL OR model_id = $2)".to_string();
    for i in 0..words.len() {
        let k = i + 3;
        sql.push_str(&format!(
            " AND (LOWER(messages) LIKE ${k} OR LOWER(response) LIKE ${k})"
        ));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT 20");
    Ok(ftl_projections::on_pool!(db, |pool| {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(project)
            .bind(model);
        for w in &words {
            query = query.bind(w.clone());
        }
        query.fetch_all(pool).await?.len()
    }))
}

/// The provider: an OpenAI-compatible server answering at once.
async fn provider() -> Res<String> {
    async fn complete() -> HttpResponse {
        HttpResponse::Ok().json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "teal"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}))
    }
    let server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route("/v1/chat/completions", web::post().to(complete))
    })
    .workers(1)
    .bind("127.0.0.1:0")?;
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    Ok(format!("http://127.0.0.1:{port}/v1"))
}

async fn bench_record(url: &str, samples: usize) -> Res<()> {
    let base = provider().await?;
    let mut c = config(url);
    c.external_models.allowed_networks = vec!["127.0.0.1/32".into()];
    let server = ftl_api::build_server(c).await?;
    let ftl = format!("http://127.0.0.1:{}", server.port);
    let st = server.state.clone();
    let handle = server.handle();
    tokio::spawn(server.run_until_stopped());
    let key = ftl_api::auth::create_key(
        st.effects.store.as_ref(),
        "bench",
        "bench",
        Scope::Write,
        "bench",
    )
    .await?;
    st.effects
        .projections
        .wait_for(key.position, std::time::Duration::from_secs(10))
        .await;
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{ftl}/graphql"))
        .bearer_auth(&key.secret)
        .json(&json!({"query": "mutation($i: ExternalModelInput!) { registerExternalModel(input: $i) { id } }",
                      "variables": {"i": {"name": "m", "provider": "openai", "baseUrl": base, "remoteModel": "mock"}}}))
        .send()
        .await?
        .json()
        .await?;
    let model = reg["data"]["registerExternalModel"]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("{reg}"))?
        .to_string();
    let body = json!({"model": model, "messages": [{"role": "user", "content": "say teal"}], "max_tokens": 8});
    let direct_body = json!({"model": "mock", "messages": [{"role": "user", "content": "say teal"}], "max_tokens": 8});
    let mut direct = vec![];
    let mut through = vec![];
    for _ in 0..samples.max(10) {
        let t = Instant::now();
        let r = http
            .post(format!("{base}/chat/completions"))
            .json(&direct_body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success());
        r.bytes().await?;
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let r = http
            .post(format!("{ftl}/v1/chat/completions"))
            .bearer_auth(&key.secret)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{}", r.text().await?);
        r.bytes().await?;
        through.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (d, f) = (pct(direct, 0.5), pct(through.clone(), 0.5));
    println!(
        "{}: one chat exchange, p50: provider directly {d:.2} ms, through FineTune Lab {f:.2} ms (p95 {:.2} ms) — recording and proxying add {:.2} ms",
        label(url),
        pct(through, 0.95),
        f - d
    );
    handle.stop(true).await;
    Ok(())
}
