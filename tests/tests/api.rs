//! End-to-end: a real server on an ephemeral port, driven over HTTP and
//! WebSocket exactly as the frontend or a training script would.

use ftl_api::config::Config;
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub(crate) struct TestServer {
    pub base: String,
    pub state: ftl_api::AppState,
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// A server with the test defaults, then `adjust`ed.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::default();
        config.server.bind = "127.0.0.1:0".into();
        config.server.workers = 2;
        config.database.url = backend.fresh_url().await.unwrap();
        config.artifacts.root = std::env::temp_dir()
            .join("ftl-tests")
            .join(format!("artifacts-{}", uuid::Uuid::new_v4()))
            .to_string_lossy()
            .into_owned();
        config.database.sqlite_synchronous = "normal".into();
        config.projections.poll_ms = 100;
        config.limits.body_bytes = 4 * 1024 * 1024;
        // No in-process training workers unless a test asks for them.
        config.training.local_workers = 0;
        adjust(&mut config);
        let server = ftl_api::build_server(config).await.unwrap();
        let base = format!("http://127.0.0.1:{}", server.port);
        let state = server.state.clone();
        let handle = server.handle();
        tokio::spawn(server.run_until_stopped());
        TestServer {
            base,
            state,
            http: reqwest::Client::new(),
            handle,
        }
    }

    pub async fn key(&self, project: &str, scope: Scope) -> String {
        let k = ftl_api::auth::create_key(
            self.state.effects.store.as_ref(),
            project,
            "test",
            scope,
            "test",
        )
        .await
        .unwrap();
        assert!(
            self.state
                .effects
                .projections
                .wait_for(k.position, Duration::from_secs(10))
                .await
        );
        k.secret
    }

    /// A GET of `path` on this server.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn gql(&self, key: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap())
    }

    /// Data of a successful call; panics with the errors otherwise.
    pub async fn ok(&self, key: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql(Some(key), query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// The `extensions.code` of the first error.
    pub async fn code(&self, key: Option<&str>, query: &str, variables: Value) -> String {
        let (_, body) = self.gql(key, query, variables).await;
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {body}"))
            .to_string()
    }

    /// `PUT /api/v1/datasets?name=…`: (status, body).
    pub async fn upload(&self, key: &str, name: &str, body: String) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}/api/v1/datasets?name={name}", self.base))
            .bearer_auth(key)
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

const CREATE: &str = "mutation($n: String!, $t: [String!]) { createJob(name: $n, config: {lr: 0.001, epochs: 3}, tags: $t) { id status name tags config } }";
const LOG: &str = "mutation($j: ID!, $p: [MetricPointInput!]!, $k: String) { logMetrics(jobId: $j, points: $p, idempotencyKey: $k) { accepted deduplicated position } }";
const SERIES: &str = "query($j: ID!, $k: [String!]!, $m: Int!, $f: Int, $t: Int) { metricSeries(jobId: $j, keys: $k, maxPoints: $m, fromStep: $f, toStep: $t) { key bucketWidth points { step lastStep count nanCount min max mean last } } }";

async fn create_job(s: &TestServer, key: &str, name: &str) -> String {
    let d = s.ok(key, CREATE, json!({ "n": name, "t": ["sft"] })).await;
    d["createJob"]["id"].as_str().unwrap().to_string()
}

async fn job_name(s: &TestServer, key: &str, job: &str) -> Value {
    let d = s
        .ok(
            key,
            "query($id: ID!) { job(id: $id) { name } }",
            json!({ "id": job }),
        )
        .await;
    d["job"]["name"].clone()
}

fn points(key: &str, steps: std::ops::Range<i64>, f: impl Fn(i64) -> Value) -> Value {
    Value::Array(
        steps
            .map(|s| json!({ "key": key, "step": s, "value": f(s) }))
            .collect(),
    )
}

async fn job_lifecycle_and_metrics(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("team-a", Scope::Write).await;
    let job = create_job(&s, &key, "llama-sft").await;
    let d = s
        .ok(
            &key,
            "query($id: ID!) { job(id: $id) { status name tags config } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(d["job"]["status"], "QUEUED");
    assert_eq!(d["job"]["config"], json!({ "lr": 0.001, "epochs": 3 }));

    // First metrics start a queued job. NaN and infinities are kept.
    let special = json!([
        { "key": "loss", "step": 0, "value": 2.5 },
        { "key": "eval_loss", "step": 0, "value": "NaN" },
        { "key": "grad_norm", "step": 0, "value": "Infinity" },
        { "key": "grad_norm", "step": 1, "value": "-Infinity" },
    ]);
    let r = s.ok(&key, LOG, json!({ "j": job, "p": special })).await;
    assert_eq!(r["logMetrics"]["accepted"], 4);
    let d = s
        .ok(
            &key,
            "query($id: ID!) { job(id: $id) { status latestMetrics { key step value } } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(d["job"]["status"], "RUNNING");
    let latest = &d["job"]["latestMetrics"];
    // `loss` was stored under its canonical name.
    assert_eq!(
        latest,
        &json!([
            { "key": "eval_loss", "step": 0, "value": "NaN" },
            { "key": "grad_norm", "step": 1, "value": "-Infinity" },
            { "key": "train_loss", "step": 0, "value": 2.5 },
        ])
    );

    // 10,000 steps of a smooth curve with one spike, downsampled to 100 buckets.
    let curve = |step: i64| {
        if step == 4321 {
            1000.0
        } else {
            1.0 / (1.0 + step as f64)
        }
    };
    for chunk in 0..2 {
        let range = (chunk * 5000 + 1)..(chunk * 5000 + 5001).min(10_000);
        let p = points("train_loss", range, |st| json!(curve(st)));
        s.ok(&key, LOG, json!({ "j": job, "p": p })).await;
    }
    let d = s
        .ok(
            &key,
            SERIES,
            json!({ "j": job, "k": ["train_loss"], "m": 100 }),
        )
        .await;
    let series = &d["metricSeries"][0];
    let buckets = series["points"].as_array().unwrap();
    assert!(
        buckets.len() <= 100 && buckets.len() >= 50,
        "{} buckets",
        buckets.len()
    );
    let total: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
    assert_eq!(
        total, 10_000,
        "every point counted once (step 0 from the first batch)"
    );
    let spike = buckets
        .iter()
        .find(|b| b["step"].as_i64().unwrap() <= 4321 && b["lastStep"].as_i64().unwrap() >= 4321)
        .unwrap();
    assert_eq!(spike["max"], 1000.0, "the spike survives downsampling");
    // Each bucket's mean equals the mean computed here from the same steps.
    for b in buckets {
        let (a, z) = (b["step"].as_i64().unwrap(), b["lastStep"].as_i64().unwrap());
        let vals: Vec<f64> = (a..=z)
            .map(|st| if st == 0 { 2.5 } else { curve(st) })
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        assert_eq!(b["count"].as_i64().unwrap(), vals.len() as i64);
        assert!((b["mean"].as_f64().unwrap() - mean).abs() < 1e-9 * mean.abs().max(1.0));
        assert_eq!(
            b["min"].as_f64().unwrap(),
            vals.iter().cloned().fold(f64::INFINITY, f64::min)
        );
    }
    // A small window comes back point by point.
    let d = s
        .ok(
            &key,
            SERIES,
            json!({ "j": job, "k": ["train_loss"], "m": 1000, "f": 4320, "t": 4322 }),
        )
        .await;
    let pts = d["metricSeries"][0]["points"].as_array().unwrap().clone();
    assert_eq!(
        pts.iter()
            .map(|p| p["last"].as_f64().unwrap())
            .collect::<Vec<_>>(),
        vec![curve(4320), 1000.0, curve(4322)]
    );
    // A step logged again — twice in one call, once more in another — keeps
    // every point (each is its own row), and a window over it counts all three.
    let again = json!([
        { "key": "repeat", "step": 7, "value": 1.0 },
        { "key": "repeat", "step": 7, "value": 3.0 },
    ]);
    s.ok(&key, LOG, json!({ "j": job, "p": again })).await;
    let once_more = json!([{ "key": "repeat", "step": 7, "value": 2.0 }]);
    s.ok(&key, LOG, json!({ "j": job, "p": once_more })).await;
    let d = s
        .ok(
            &key,
            SERIES,
            json!({ "j": job, "k": ["repeat"], "m": 10, "f": 0, "t": 100 }),
        )
        .await;
    let pts = &d["metricSeries"][0]["points"];
    assert_eq!(pts.as_array().unwrap().len(), 1, "{pts}");
    assert_eq!(
        (
            &pts[0]["count"],
            &pts[0]["min"],
            &pts[0]["max"],
            &pts[0]["mean"]
        ),
        (&json!(3), &json!(1.0), &json!(3.0), &json!(2.0))
    );

    let d = s
        .ok(
            &key,
            "mutation($id: ID!) { completeJob(id: $id) { status endedAt } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(d["completeJob"]["status"], "SUCCEEDED");
    // No metrics after a terminal state, and no completing twice.
    let p = points("train_loss", 10_001..10_002, |_| json!(0.1));
    assert_eq!(
        s.code(Some(&key), LOG, json!({ "j": job, "p": p })).await,
        "CONFLICT"
    );
    assert_eq!(
        s.code(
            Some(&key),
            "mutation($id: ID!) { cancelJob(id: $id) { status } }",
            json!({ "id": job })
        )
        .await,
        "CONFLICT"
    );

    // The audit trail: every lifecycle event and metric batch, in log order.
    let d = s
        .ok(
            &key,
            "query($id: ID!) { jobEvents(jobId: $id) { eventType position actor } }",
            json!({ "id": job }),
        )
        .await;
    let types: Vec<&str> = d["jobEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "job.created",
            "job.started",
            "job.metrics_logged",
            "job.metrics_logged",
            "job.metrics_logged",
            "job.metrics_logged",
            "job.metrics_logged",
            "job.succeeded"
        ]
    );
    assert!(
        d["jobEvents"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("key:")
    );

    // A rebuilt read model equals the incrementally built one.
    let before = ftl_tests::read_model_snapshot(&s.state.effects.db)
        .await
        .unwrap();
    for name in ["catalog", "metrics"] {
        s.state.effects.projections.rebuild(name).await.unwrap();
    }
    assert_eq!(
        ftl_tests::read_model_snapshot(&s.state.effects.db)
            .await
            .unwrap(),
        before
    );
    let d = s
        .ok(
            &key,
            SERIES,
            json!({ "j": job, "k": ["train_loss"], "m": 100 }),
        )
        .await;
    assert_eq!(&d["metricSeries"][0], series);
    s.stop().await;
}

async fn authentication_and_project_isolation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.key("team-a", Scope::Write).await;
    let b = s.key("team-b", Scope::Write).await;
    let a_read = s.key("team-a", Scope::Read).await;
    let job = create_job(&s, &a, "private").await;

    assert_eq!(
        s.code(None, "{ me { project } }", json!({})).await,
        "UNAUTHENTICATED"
    );
    let (status, _) = s
        .gql(Some("ftl_not-a-real-key"), "{ me { project } }", json!({}))
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        s.code(Some("ftl_not-a-real-key"), "{ me { project } }", json!({}))
            .await,
        "UNAUTHENTICATED"
    );
    assert_eq!(
        s.ok(&a, "{ me { project scope } }", json!({})).await["me"],
        json!({ "project": "team-a", "scope": "write" })
    );

    // A read key reads but cannot write.
    assert_eq!(
        s.ok(
            &a_read,
            "query($id: ID!) { job(id: $id) { name } }",
            json!({ "id": job })
        )
        .await["job"]["name"],
        "private"
    );
    assert_eq!(
        s.code(Some(&a_read), CREATE, json!({ "n": "x" })).await,
        "FORBIDDEN"
    );

    // Another project sees nothing and changes nothing.
    assert_eq!(
        s.ok(
            &b,
            "query($id: ID!) { job(id: $id) { name } }",
            json!({ "id": job })
        )
        .await["job"],
        Value::Null
    );
    assert_eq!(
        s.ok(&b, "{ jobs { edges { node { id } } } }", json!({}))
            .await["jobs"]["edges"],
        json!([])
    );
    assert_eq!(
        s.code(
            Some(&b),
            "mutation($id: ID!) { startJob(id: $id) { status } }",
            json!({ "id": job })
        )
        .await,
        "NOT_FOUND"
    );
    let p = points("loss", 0..1, |_| json!(1.0));
    assert_eq!(
        s.code(Some(&b), LOG, json!({ "j": job, "p": p })).await,
        "NOT_FOUND"
    );
    assert_eq!(
        s.code(
            Some(&b),
            SERIES,
            json!({ "j": job, "k": ["loss"], "m": 10 })
        )
        .await,
        "NOT_FOUND"
    );
    assert_eq!(
        s.code(
            Some(&b),
            "query($id: ID!) { jobEvents(jobId: $id) { eventType } }",
            json!({ "id": job })
        )
        .await,
        "NOT_FOUND"
    );
    let d = s
        .ok(
            &a,
            "query($id: ID!) { job(id: $id) { status } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(
        d["job"]["status"], "QUEUED",
        "the refused writes changed nothing"
    );

    // Subscriptions: no key, a bad key, or another project's job are refused.
    let ws = ws_url(&s);
    assert!(subscribe(&ws, None, &job).await.is_err());
    assert!(subscribe(&ws, Some("ftl_bogus"), &job).await.is_err());
    let err = subscribe(&ws, Some(&b), &job).await.unwrap_err();
    assert!(
        err.contains("NOT_FOUND") || err.contains("not found"),
        "{err}"
    );
    s.stop().await;
}

/// OpenAI chat rows `say <w>` → `<w>` said `reply_words` times, the words
/// in order, `copies` times over.
pub(crate) fn chat_rows(words: &[&str], copies: usize, reply_words: usize) -> String {
    words
        .iter()
        .map(|w| {
            let reply = vec![*w; reply_words].join(" ");
            json!({"messages": [{"role": "user", "content": format!("say {w}")},
                                {"role": "assistant", "content": reply}]})
            .to_string()
                + "\n"
        })
        .collect::<String>()
        .repeat(copies)
}

pub(crate) fn ws_url(s: &TestServer) -> String {
    format!("{}/graphql", s.base.replace("http://", "ws://"))
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A live graphql-transport-ws subscription. A task reads the socket all
/// the time, as a browser does: the server pings every few seconds and
/// drops a client that does not answer, so a test that stops reading for a
/// while must still answer pings (tungstenite answers them while reading).
#[derive(Debug)]
pub(crate) struct Sub {
    early: Option<Value>,
    messages: tokio::sync::mpsc::UnboundedReceiver<Result<Value, String>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Sub {
    /// The next message, or Err when the connection ended.
    pub(crate) async fn next(&mut self) -> Result<Value, String> {
        if let Some(m) = self.early.take() {
            return Ok(m);
        }
        self.messages
            .recv()
            .await
            .unwrap_or_else(|| Err("connection ended".into()))
    }

    /// The next message within `wait`.
    pub(crate) async fn next_within(&mut self, wait: Duration) -> Result<Value, String> {
        tokio::time::timeout(wait, self.next())
            .await
            .unwrap_or_else(|_| Err(format!("nothing within {wait:?}")))
    }

    /// What has arrived, waiting up to `wait` for each further message.
    pub(crate) async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = vec![];
        while let Ok(m) = self.next_within(wait).await {
            out.push(m);
        }
        out
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        // Closes the socket: the server ends the subscription.
        self.reader.abort();
    }
}

/// Opens a graphql-transport-ws subscription to `jobMetrics`; Err with the
/// server's words when it is refused.
pub(crate) async fn subscribe(url: &str, key: Option<&str>, job: &str) -> Result<Sub, String> {
    let q =
        "subscription($j: ID!) { jobMetrics(jobId: $j) { position points { key step value } } }";
    subscribe_to(url, key, q, json!({ "j": job })).await
}

/// Opens a graphql-transport-ws subscription (id "1"); Err with the server's
/// words when it is refused (an error within 1.5 s). Messages that arrive
/// meanwhile stay queued in the [`Sub`].
pub(crate) async fn subscribe_to(
    url: &str,
    key: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Sub, String> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    let init = match key {
        Some(k) => {
            json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {k}") } })
        }
        None => json!({ "type": "connection_init", "payload": {} }),
    };
    ws.send(Message::text(init.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let ack = next_json(&mut ws).await?;
    if ack["type"] != "connection_ack" {
        return Err(ack.to_string());
    }
    ws.send(Message::text(json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } }).to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let (tx, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let m = next_json(&mut ws).await;
            let end = m.is_err();
            if tx.send(m).is_err() || end {
                return;
            }
        }
    });
    // A refused subscription answers at once with an error; anything else
    // (data, or silence) means it is live.
    let early = match tokio::time::timeout(Duration::from_millis(1500), messages.recv()).await {
        // A resolver's refusal comes as a `next` with errors and no data.
        Ok(Some(Ok(m))) if m["type"] == "next" && m["payload"]["errors"].is_null() => Some(m),
        Ok(Some(Ok(m))) => return Err(m.to_string()),
        Ok(Some(Err(e))) => return Err(e),
        Ok(None) => return Err("connection ended".into()),
        Err(_) => None,
    };
    Ok(Sub {
        early,
        messages,
        reader,
    })
}

pub(crate) async fn next_json(ws: &mut Ws) -> Result<Value, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return serde_json::from_str(&t).map_err(|e| e.to_string());
            }
            Some(Ok(Message::Close(c))) => return Err(format!("closed: {c:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

async fn live_subscriptions(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("team-live", Scope::Read).await;
    let writer = s.key("team-live", Scope::Write).await;
    let job = create_job(&s, &writer, "live").await;
    let mut ws = subscribe(&ws_url(&s), Some(&key), &job).await.unwrap();
    let p = json!([{ "key": "train_loss", "step": 7, "value": 0.5 }, { "key": "lr", "step": 7, "value": "NaN" }]);
    s.ok(&writer, LOG, json!({ "j": job, "p": p })).await;
    let msg = ws.next_within(Duration::from_secs(10)).await.unwrap();
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(
        msg["payload"]["data"]["jobMetrics"]["points"],
        json!([
            { "key": "train_loss", "step": 7, "value": 0.5 },
            { "key": "lr", "step": 7, "value": "NaN" },
        ])
    );

    // jobStatus: the job now, each status change once (metric batches are
    // not changes), and `complete` after the terminal one.
    let q = "subscription($j: ID!) { jobStatus(jobId: $j) { status } }";
    let mut st = subscribe_to(&ws_url(&s), Some(&key), q, json!({"j": job}))
        .await
        .unwrap();
    s.ok(&writer, LOG, json!({ "j": job, "p": p })).await;
    s.ok(
        &writer,
        "mutation($j: ID!) { completeJob(id: $j) { status } }",
        json!({"j": job}),
    )
    .await;
    let got: Vec<Value> = st.drain(Duration::from_secs(3)).await;
    let kinds: Vec<(String, Value)> = got
        .iter()
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_string(),
                m["payload"]["data"]["jobStatus"]["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("next".to_string(), json!("RUNNING")),
            ("next".to_string(), json!("SUCCEEDED")),
            ("complete".to_string(), Value::Null),
        ],
        "{got:?}"
    );
    // A job already finished: its status, then complete.
    let mut done = subscribe_to(&ws_url(&s), Some(&key), q, json!({"j": job}))
        .await
        .unwrap();
    let got = done.drain(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0]["payload"]["data"]["jobStatus"]["status"],
        "SUCCEEDED"
    );
    assert_eq!(got[1]["type"], "complete");
    // Open sockets would hold up the graceful stop.
    drop((ws, st, done));
    s.stop().await;
}

async fn idempotency_pagination_and_limits(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("team-c", Scope::Write).await;
    let job = create_job(&s, &key, "retry").await;
    let p = points("train_loss", 0..100, |st| json!(st as f64));
    let first = s
        .ok(&key, LOG, json!({ "j": job, "p": p, "k": "batch-1" }))
        .await;
    let again = s
        .ok(&key, LOG, json!({ "j": job, "p": p, "k": "batch-1" }))
        .await;
    assert_eq!(first["logMetrics"]["deduplicated"], false);
    assert_eq!(again["logMetrics"]["deduplicated"], true);
    assert_eq!(
        again["logMetrics"]["position"],
        first["logMetrics"]["position"]
    );
    let d = s
        .ok(
            &key,
            SERIES,
            json!({ "j": job, "k": ["train_loss"], "m": 1 }),
        )
        .await;
    assert_eq!(
        d["metricSeries"][0]["points"][0]["count"], 100,
        "a retried batch is stored once"
    );

    // Cursor pagination: 5 more jobs, pages of 2, newest first, no repeats.
    for i in 0..5 {
        create_job(&s, &key, &format!("page-{i}")).await;
    }
    let q = "query($a: String) { jobs(first: 2, after: $a) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }";
    let mut names = Vec::new();
    let mut after = Value::Null;
    loop {
        let d = s.ok(&key, q, json!({ "a": after })).await;
        names.extend(
            d["jobs"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["name"].as_str().unwrap().to_string()),
        );
        if d["jobs"]["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = d["jobs"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(
        names,
        ["page-4", "page-3", "page-2", "page-1", "page-0", "retry"]
    );
    let d = s
        .ok(
            &key,
            "{ jobs(filter: {status: RUNNING}) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["jobs"]["edges"], json!([{ "node": { "name": "retry" } }]));

    // Limits, each with its code.
    let too_many = points("x", 0..10_001, |_| json!(1.0));
    assert_eq!(
        s.code(Some(&key), LOG, json!({ "j": job, "p": too_many }))
            .await,
        "LIMIT_EXCEEDED"
    );
    let bad_step = json!([{ "key": "x", "step": -1, "value": 1.0 }]);
    assert_eq!(
        s.code(Some(&key), LOG, json!({ "j": job, "p": bad_step }))
            .await,
        "INVALID_INPUT"
    );
    let long_key = json!([{ "key": "k".repeat(251), "step": 1, "value": 1.0 }]);
    assert_eq!(
        s.code(Some(&key), LOG, json!({ "j": job, "p": long_key }))
            .await,
        "INVALID_INPUT"
    );
    assert_eq!(
        s.code(Some(&key), CREATE, json!({ "n": "n".repeat(300) }))
            .await,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        s.code(
            Some(&key),
            "{ jobs(first: 100000) { edges { cursor } } }",
            json!({})
        )
        .await,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        s.code(
            Some(&key),
            SERIES,
            json!({ "j": job, "k": ["a"], "m": 1_000_000 })
        )
        .await,
        "LIMIT_EXCEEDED"
    );
    let huge = "x".repeat(5 * 1024 * 1024);
    let (status, body) = s.gql(Some(&key), CREATE, json!({ "n": huge })).await;
    assert_eq!(status, 413);
    assert_eq!(body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED");
    let deep = format!(
        "{{ {}__typename{} }}",
        "jobs { edges { node { ".repeat(5),
        " } } }".repeat(5)
    );
    let (_, body) = s.gql(Some(&key), &deep, json!({})).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("nested too deep"),
        "{body}"
    );
    // Nothing accepted earlier was lost by the refused calls.
    let d = s
        .ok(
            &key,
            SERIES,
            json!({ "j": job, "k": ["train_loss"], "m": 1 }),
        )
        .await;
    assert_eq!(d["metricSeries"][0]["points"][0]["count"], 100);

    // Health, readiness and metrics.
    let r = s.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let m = s.get("/metrics").await.text().await.unwrap();
    assert!(m.contains("ftl_events_appended_total"), "{m}");
    assert!(
        m.contains("ftl_projection_lag_events{projection=\"metrics\"}"),
        "{m}"
    );
    assert!(
        m.contains("ftl_http_request_duration_seconds_bucket"),
        "{m}"
    );
    s.stop().await;
}

/// MLflow routes answer in MLflow's error shape and need a key, as Bearer or
/// as the Basic password (`MLFLOW_TRACKING_TOKEN` / `…_PASSWORD`).
async fn mlflow_transport_and_auth(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("ml", Scope::Write).await;
    let info = format!("{}/api/3.0/mlflow/server-info", s.base);
    let res = s.http.get(&info).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error_code"], "UNAUTHENTICATED");
    let res = s
        .http
        .get(&info)
        .bearer_auth("ftl_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for req in [
        s.http.get(&info).bearer_auth(&key),
        s.http.get(&info).basic_auth("anyone", Some(&key)),
    ] {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["store_type"], "SqlStore");
        assert_eq!(body["multipart_uploads_enabled"], false);
    }
    let res = s
        .http
        .post(format!("{}/api/2.0/mlflow/model-versions/create", s.base))
        .bearer_auth(&key)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error_code"], "ENDPOINT_NOT_FOUND");

    // A key used a moment ago (so remembered by the key cache) is refused
    // as soon as its revocation is projected.
    let row = ftl_projections::views::catalog::key_by_hash(
        &s.state.effects.db,
        &ftl_api::auth::hash_secret(&key),
    )
    .await
    .unwrap()
    .unwrap();
    let revoked = ftl_domain::DomainEvent::ApiKeyRevoked(ftl_domain::project::ApiKeyRevoked {
        key_id: ftl_domain::ids::ApiKeyId(row.key_id),
        project_id: ftl_domain::ids::ProjectId(row.project_id),
    });
    let at = s
        .state
        .effects
        .store
        .append(
            &ftl_domain::ids::ApiKeyId(row.key_id).stream(),
            ftl_commands::store::ExpectedVersion::Any,
            vec![ftl_commands::store::NewEvent::from_domain(
                uuid::Uuid::new_v4(),
                &revoked,
                Default::default(),
            )],
        )
        .await
        .unwrap();
    assert!(
        s.state
            .effects
            .projections
            .wait_for(at.last_position, Duration::from_secs(10))
            .await
    );
    let res = s.http.get(&info).bearer_auth(&key).send().await.unwrap();
    assert_eq!(res.status(), 401, "a revoked key is refused at once");
    s.stop().await;
}

/// MLflow calls are scoped to the key's project and scope; GET messages come
/// from the query string (int64 as strings); deleted runs refuse writes.
async fn mlflow_projects_scopes_and_wire(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (a, b) = (
        s.key("ml-a", Scope::Write).await,
        s.key("ml-b", Scope::Write).await,
    );
    let reader = s.key("ml-a", Scope::Read).await;
    let call = |method: &str, path: &str, key: &str, body: Value| {
        let url = format!("{}/api/2.0/mlflow/{path}", s.base);
        let req = if method == "GET" {
            s.http.get(url)
        } else {
            s.http.post(url).body(body.to_string())
        };
        req.bearer_auth(key.to_string()).send()
    };
    async fn json(r: Result<reqwest::Response, reqwest::Error>) -> (u16, Value) {
        let r = r.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
    // The same experiment name in two projects: two experiments, same id "1".
    for key in [&a, &b] {
        let (st, body) =
            json(call("POST", "experiments/create", key, json!({"name": "sft"})).await).await;
        assert_eq!((st, body["experiment_id"].as_str()), (200, Some("1")));
    }
    let (st, body) = json(
        call(
            "POST",
            "runs/create",
            &a,
            json!({"experiment_id": 1, "start_time": "1700000000000"}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let run = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
    assert_eq!(body["run"]["info"]["start_time"], 1_700_000_000_000i64);
    assert_eq!(body["run"]["info"]["status"], "RUNNING");
    // Another project's key: the run does not exist for it.
    let (st, body) =
        json(call("GET", &format!("runs/get?run_id={run}"), &b, json!({})).await).await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    assert_eq!(body["message"], format!("Run with id={run} not found"));
    let metric = json!({"run_id": run, "key": "loss", "value": 0.5, "timestamp": 1, "step": 1});
    let (st, _) = json(call("POST", "runs/log-metric", &b, metric.clone()).await).await;
    assert_eq!(st, 404);
    // A read key cannot write.
    let (st, body) = json(call("POST", "runs/log-metric", &reader, metric.clone()).await).await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (st, _) = json(call("POST", "runs/log-metric", &a, metric).await).await;
    assert_eq!(st, 200);
    // GET message from the query string; int64 as a string.
    let (st, body) = json(
        call(
            "GET",
            &format!("metrics/get-history?run_uuid={run}&metric_key=loss&max_results=10"),
            &reader,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["metrics"],
        json!([{"key": "loss", "value": 0.5, "timestamp": 1, "step": 1}])
    );
    assert!(body.get("next_page_token").is_none());
    let (st, _) = json(
        call(
            "GET",
            &format!("metrics/get-history?run_id={run}&metric_key=loss&max_results=0"),
            &a,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
    // Deleted: writes refused with MLflow's message, reads still work.
    let (st, _) = json(call("POST", "runs/delete", &a, json!({"run_id": run})).await).await;
    assert_eq!(st, 200);
    let (st, body) = json(
        call(
            "POST",
            "runs/set-tag",
            &a,
            json!({"run_id": run, "key": "k", "value": "v"}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(
        body["message"],
        format!("The run {run} must be in the 'active' state. Current state is deleted.")
    );
    let (_, body) = json(call("GET", &format!("runs/get?run_id={run}"), &a, json!({})).await).await;
    assert_eq!(body["run"]["info"]["lifecycle_stage"], "deleted");
    s.stop().await;
}

/// `runs/search` reads every candidate with only the keys its filter and
/// order name, then the page with everything: each run of a page comes back
/// whole, in order, across more runs than one statement names (500). The
/// unfiltered listing in start-time order is paged in SQL: it must list the
/// same runs in the same order (ties by run id) as the filtering path.
async fn mlflow_search_returns_whole_runs(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("search", Scope::Write).await;
    let post = |path: &str, body: Value| {
        s.http
            .post(format!("{}/api/2.0/mlflow/{path}", s.base))
            .body(body.to_string())
            .bearer_auth(key.clone())
            .send()
    };
    async fn ok(r: Result<reqwest::Response, reqwest::Error>) -> Value {
        let r = r.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
    let exp = ok(post("experiments/create", json!({"name": "many"})).await).await["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    const RUNS: usize = 501;
    let created: Vec<()> = futures::stream::iter(0..RUNS)
        .map(|i| {
            let (post, exp) = (&post, &exp);
            async move {
                let run = ok(post(
                    "runs/create",
                    // Three runs a start time: ties for the run id to break.
                    json!({"experiment_id": exp, "start_time": 1_700_000_000_000i64 + (i / 3) as i64}),
                )
                .await)
                .await["run"]["info"]["run_id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                ok(post(
                    "runs/log-batch",
                    json!({"run_id": run,
                           "params": [{"key": "i", "value": i.to_string()},
                                      {"key": "parity", "value": if i % 2 == 0 { "even" } else { "odd" }}],
                           "tags": [{"key": "t", "value": format!("tag-{i}")}],
                           "metrics": [{"key": "m", "value": i as f64, "timestamp": 1, "step": 0},
                                       {"key": "other", "value": -(i as f64), "timestamp": 1, "step": 0}]}),
                )
                .await)
                .await;
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(created.len(), RUNS);
    let search = |body: Value| async { ok(post("runs/search", body).await).await };
    // A run whose keys the filter and order do not name comes back whole.
    let whole = |r: &Value| {
        let data = &r["data"];
        let i: usize = data["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == "i")
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let keys = |field: &str| {
            let mut k: Vec<String> = data[field]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["key"].as_str().unwrap().to_string())
                .filter(|k| !k.starts_with("mlflow."))
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys("params"), ["i", "parity"], "{r}");
        assert_eq!(keys("tags"), ["t"], "{r}");
        assert_eq!(keys("metrics"), ["m", "other"], "{r}");
        let tag = data["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == "t")
            .unwrap();
        assert_eq!(tag["value"], format!("tag-{i}"));
        i
    };
    // The runs of a reply, each checked whole, by the index it was made with.
    let indices = |found: &Value| -> Vec<usize> {
        found["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(whole)
            .collect()
    };
    let found = search(
        json!({"experiment_ids": [exp], "filter": "params.parity = 'even'",
                              "order_by": ["metrics.m DESC"], "max_results": 1000}),
    )
    .await;
    let got = indices(&found);
    let want: Vec<usize> = (0..RUNS).rev().filter(|i| i % 2 == 0).collect();
    assert_eq!(got, want);
    // Every run (more than one statement's worth), newest start first: the
    // SQL page and the filtering path (a filter every run passes) agree.
    let listed = |body: Value| {
        let search = &search;
        async move {
            let found = search(body).await;
            let runs: Vec<(i64, String, usize)> = found["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let info = &r["info"];
                    let start = info["start_time"].as_i64().unwrap();
                    (
                        start,
                        info["run_id"].as_str().unwrap().to_string(),
                        whole(r),
                    )
                })
                .collect();
            (runs, found.get("next_page_token").cloned())
        }
    };
    let (all, token) = listed(json!({"experiment_ids": [exp], "max_results": 1000})).await;
    assert!(token.is_none());
    let (filtered, _) = listed(json!({"experiment_ids": [exp], "max_results": 1000,
                                      "filter": "attributes.start_time >= 0"}))
    .await;
    assert_eq!(all, filtered);
    let mut want = all.clone();
    want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(all, want, "newest start first, then run id");
    let mut ids: Vec<usize> = all.iter().map(|r| r.2).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..RUNS).collect::<Vec<_>>());
    // Oldest first, in pages of 200, both ways.
    for filter in [json!(null), json!("attributes.start_time >= 0")] {
        let (mut pages, mut token): (Vec<(i64, String, usize)>, Option<Value>) = (Vec::new(), None);
        loop {
            let mut body = json!({"experiment_ids": [exp], "max_results": 200,
                                  "order_by": ["attributes.start_time ASC"], "filter": filter});
            if let Some(t) = &token {
                body["page_token"] = t.clone();
            }
            let (page, next) = listed(body).await;
            pages.extend(page);
            token = next;
            if token.is_none() {
                break;
            }
        }
        let mut want = all.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(pages, want, "filter {filter}");
    }
    // Deleted runs leave the default listing and make up DELETED_ONLY.
    let gone = all[7].1.clone();
    ok(post("runs/delete", json!({"run_id": gone})).await).await;
    let count = |view: &str| {
        let (listed, exp) = (&listed, &exp);
        let view = view.to_string();
        async move {
            let (runs, _) = listed(json!({"experiment_ids": [exp], "max_results": 1000,
                                          "run_view_type": view}))
            .await;
            runs.into_iter().map(|r| r.1).collect::<Vec<_>>()
        }
    };
    let active = count("ACTIVE_ONLY").await;
    assert_eq!(active.len(), RUNS - 1);
    assert!(!active.contains(&gone));
    assert_eq!(count("DELETED_ONLY").await, std::slice::from_ref(&gone));
    assert_eq!(count("ALL").await.len(), RUNS);
    ok(post("runs/restore", json!({"run_id": gone})).await).await;
    // Pages of a metric filter, ordered by a param (text order).
    let first = search(json!({"experiment_ids": [exp], "filter": "metrics.m < 3",
                              "order_by": ["params.i DESC"], "max_results": 2}))
    .await;
    let page = indices(&first);
    assert_eq!(page, [2, 1]);
    let token = first["next_page_token"].as_str().unwrap();
    let rest = search(json!({"experiment_ids": [exp], "filter": "metrics.m < 3",
                             "order_by": ["params.i DESC"], "max_results": 2, "page_token": token}))
    .await;
    let page = indices(&rest);
    assert_eq!(page, [0]);
    s.stop().await;
}

async fn training_config_validation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("trainer", Scope::Read).await;
    let q =
        "query($c: JSON!) { validateTrainingConfig(config: $c) { valid configHash normalizedConfig
        issues { path code severity message value constraint fields } warnings { path code }
        estimates { totalSteps } } }";
    // The spec's error example (training-config.md §4), against the built-in trainer.
    let bad = json!({"model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "float32"},
                     "training": {"learning_rate": 0, "lora_r": 16, "optim": "adamw_torch", "bf16": false},
                     "lora": {"enabled": false}, "quantization": {"load_in_4bit": true, "load_in_8bit": true}});
    let v = &s.ok(&key, q, json!({"c": bad})).await["validateTrainingConfig"];
    assert_eq!(v["valid"], false);
    let codes: Vec<(String, String)> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["path"].as_str().unwrap().to_string(),
                i["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // lora.r = 16 comes from the legacy name; conflicting with nothing; 4/8-bit are
    // mutually exclusive, need LoRA, and the built-in trainer runs neither.
    assert_eq!(
        codes,
        vec![
            ("quantization".to_string(), "mutually_exclusive".to_string()),
            ("quantization".to_string(), "requires".to_string()),
            (
                "quantization.load_in_4bit".to_string(),
                "unsupported_by_trainer".to_string()
            ),
            (
                "quantization.load_in_8bit".to_string(),
                "unsupported_by_trainer".to_string()
            ),
            (
                "training.learning_rate".to_string(),
                "out_of_range".to_string()
            ),
        ]
    );
    let lr = &v["issues"][4];
    assert_eq!(lr["message"], "learning_rate must be > 0 and <= 1 (got 0)");
    assert_eq!(
        lr["constraint"],
        json!({"exclusive_minimum": 0, "maximum": 1})
    );
    assert_eq!(lr["value"], json!(0));
    // The default max_length (512) is above the tiny model's context (256).
    assert_eq!(
        v["warnings"],
        json!([{"path": "model.torch_dtype", "code": "float32_vram"},
               {"path": "training.lora_r", "code": "deprecated_field"},
               {"path": "training.max_length", "code": "exceeds_model_context"}])
    );
    // A valid one: normalized, hashed, same hash for the same config in another key order.
    let good = json!({"model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "auto"}, "lora": {"enabled": false},
                      "training": {"optim": "adamw_torch", "bf16": false, "max_steps": 50}});
    let a = s.ok(&key, q, json!({"c": good})).await["validateTrainingConfig"].clone();
    assert_eq!(a["valid"], true, "{a}");
    assert_eq!(
        a["normalizedConfig"]["training"]["learning_rate"],
        json!(0.0002)
    );
    assert_eq!(
        a["estimates"]["totalSteps"], 50,
        "max_steps fixes the step count without a dataset"
    );
    // As strict as creation: the GPU must be in the catalog, and a step count
    // past what a step can be (2^53 - 1; here past i64 too) is out of range
    // rather than saturated and dropped.
    let issue_codes = |v: &Value| -> Vec<(String, String)> {
        v["issues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["path"].as_str().unwrap().into(),
                    i["code"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let mut gpu = good.clone();
    gpu["resources"] = json!({"provider": "local", "gpu_type": "H9000"});
    let v = s.ok(&key, q, json!({"c": gpu})).await["validateTrainingConfig"].clone();
    assert_eq!(v["valid"], false, "{v}");
    assert!(
        issue_codes(&v)
            .iter()
            .any(|(p, _)| p == "resources.gpu_type"),
        "{v}"
    );
    for steps in [
        json!(1e20),
        json!(18_446_744_073_709_551_615_u64),
        json!(9_007_199_254_740_992_i64),
    ] {
        let mut big = good.clone();
        big["training"]["max_steps"] = steps.clone();
        let v = s.ok(&key, q, json!({"c": big})).await["validateTrainingConfig"].clone();
        assert_eq!(
            issue_codes(&v),
            vec![("training.max_steps".to_string(), "out_of_range".to_string())],
            "{steps}: {v}"
        );
    }
    let reordered = json!({"training": {"max_steps": 50, "bf16": false, "optim": "adamw_torch"}, "lora": {"enabled": false},
                           "model": {"torch_dtype": "auto", "name": "ftl/byte-transformer-tiny"}});
    let b = s.ok(&key, q, json!({"c": reordered})).await["validateTrainingConfig"].clone();
    assert_eq!(a["configHash"], b["configHash"]);
    // Authenticated like every field; bounded like every input.
    assert_eq!(s.code(None, q, json!({"c": good})).await, "UNAUTHENTICATED");
    let huge = json!({"model": {"name": "x".repeat(300 * 1024)}});
    assert_eq!(
        s.code(Some(&key), q, json!({"c": huge})).await,
        "LIMIT_EXCEEDED"
    );
    s.stop().await;
}

/// A read model whose tables changed shape (its DDL hash differs from the
/// one its generation was built with) is rebuilt beside the live generation
/// while the server already serves: `/healthz` answers at once, `/readyz`
/// and `readModels` say "rebuilding" until the switch, writes go on, the
/// other read models are left alone, and nothing is lost. On PostgreSQL
/// another session holds the rebuild lock for a while, so the wait is seen.
async fn changed_read_models_rebuild_beside_the_live_generation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("team-schema", Scope::Write).await;
    let job = create_job(&s, &key, "kept").await;
    let url = s.state.config.database.url.clone();
    let generations = |st: Vec<ftl_projections::registry::ProjectionStatus>| {
        st.into_iter()
            .map(|p| (p.name, p.generation))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = generations(s.state.effects.projections.status().await.unwrap());
    assert_eq!(before["catalog"], 1);
    // As if catalog's tables had been built by an older version.
    let db = s.state.effects.db.clone();
    let stale = "UPDATE projection_active SET ddl_hash = 'built-by-an-older-version' WHERE name = 'catalog'";
    match &db {
        ftl_commands::Db::Sqlite { write, .. } => {
            sqlx::query(stale).execute(write).await.unwrap();
        }
        ftl_commands::Db::Postgres(pool) => {
            sqlx::query(stale).execute(pool).await.unwrap();
        }
    }
    s.stop().await;
    let held = match backend {
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(ftl_projections::Projections::rebuild_lock_key())
                .execute(&mut conn)
                .await
                .unwrap();
            Some(conn)
        }
        Backend::Sqlite => None,
    };

    let started = std::time::Instant::now();
    let s = TestServer::start_with(backend, |c| c.database.url = url).await;
    let health = s.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "/healthz after {took:?}");
    let ready = || async {
        let r = s.get("/readyz").await;
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let read_models =
        "{ readModels { name generation rebuilding { generation position progress startedAt } } }";
    let rebuild_of = |d: &Value, name: &str| {
        d["readModels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()["rebuilding"]
            .clone()
    };
    let mut written = None;
    if let Some(conn) = held {
        for _ in 0..2 {
            let (code, body) = ready().await;
            assert_eq!(code, 503, "{body}");
            assert_eq!(body["status"], "rebuilding", "{body}");
            let catalog = body["projections"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "catalog")
                .unwrap()
                .clone();
            assert_eq!(catalog["generation"], 1, "{body}");
            assert_eq!(catalog["rebuilding"]["generation"], 2, "{body}");
            let d = s.ok(&key, read_models, json!({})).await;
            assert_eq!(rebuild_of(&d, "catalog")["generation"], 2, "{d}");
            assert_eq!(rebuild_of(&d, "metrics"), Value::Null, "{d}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The live generation serves reads, and writes are accepted (they
        // do not wait for the read model being rebuilt).
        assert_eq!(
            job_name(&s, &key, &job).await,
            "kept",
            "the old generation serves"
        );
        let t = std::time::Instant::now();
        let r = s
            .ok(
                &key,
                LOG,
                json!({ "j": job, "p": points("loss", 0..5, |i| json!(i as f64)) }),
            )
            .await;
        assert_eq!(r["logMetrics"]["accepted"], 5, "{r}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        written = Some(5);
        sqlx::Connection::close(conn).await.unwrap();
    }
    // Until the switch /readyz says why it is not ready; then it is.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, body) = ready().await;
        if code == 200 {
            assert_eq!(body["status"], "ready");
            break;
        }
        assert!(
            body["status"] == "rebuilding" || body["status"] == "catching_up",
            "{body}"
        );
        assert!(std::time::Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Ready allows a small lag: let every read model reach the head.
    let head = s.state.effects.store.head_position().await.unwrap();
    assert!(
        s.state
            .effects
            .projections
            .wait_for(head, Duration::from_secs(10))
            .await
    );
    let after = generations(s.state.effects.projections.status().await.unwrap());
    for (name, g) in &before {
        let expected = if name == "catalog" { g + 1 } else { *g };
        assert_eq!(after[name], expected, "{name}: {before:?} → {after:?}");
    }
    let d = s.ok(&key, read_models, json!({})).await;
    for m in d["readModels"].as_array().unwrap() {
        assert_eq!(m["rebuilding"], Value::Null, "{d}");
    }
    assert_eq!(
        job_name(&s, &key, &job).await,
        "kept",
        "rebuilt from the log"
    );
    if let Some(n) = written {
        let d = s
            .ok(
                &key,
                SERIES,
                json!({ "j": job, "k": ["train_loss"], "m": 100 }),
            )
            .await;
        let steps = d["metricSeries"][0]["points"].as_array().unwrap().len();
        assert_eq!(steps, n, "{d}");
    }
    s.stop().await;
}

/// JSON kept as text in a read model that does not parse is an error that
/// names the column, never an empty value served as if it were the data.
async fn undecodable_json_is_an_error_naming_the_column(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("team-json", Scope::Write).await;
    let job = create_job(&s, &key, "tagged").await;
    let me = s.ok(&key, "{ me { projectId } }", json!({})).await;
    let project = uuid::Uuid::parse_str(me["me"]["projectId"].as_str().unwrap()).unwrap();
    let id = uuid::Uuid::parse_str(&job).unwrap();
    let corrupt = "UPDATE jobs_g1 SET tags = '[\"sft\"' WHERE job_id = $1";
    let changed = match &s.state.effects.db {
        ftl_commands::Db::Sqlite { write, .. } => sqlx::query(corrupt)
            .bind(id)
            .execute(write)
            .await
            .unwrap()
            .rows_affected(),
        ftl_commands::Db::Postgres(pool) => sqlx::query(corrupt)
            .bind(id)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(changed, 1);
    let err = ftl_projections::views::catalog::job(&s.state.effects.db, project, id)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"tags\""), "{err}");
    let (status, body) = s
        .gql(
            Some(&key),
            "query($id: ID!) { job(id: $id) { name tags } }",
            json!({ "id": job }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "INTERNAL",
        "{body}"
    );
    assert_eq!(body["data"]["job"], Value::Null, "{body}");
    s.stop().await;
}

/// Another process (a CLI command on the same database) catches the read
/// models up while the server runs: the server's runners find their stored
/// checkpoint moved and carry on from the table at once, so writes are not
/// held up for a poll interval.
async fn another_process_catching_up_holds_nothing_up(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.projections.poll_ms = 5_000).await;
    let key = s.key("team-other-process", Scope::Write).await;
    let job = create_job(&s, &key, "first").await;
    // Metric events: five of the six projections ignore them (on SQLite
    // their runners leave the stored checkpoint behind them).
    s.ok(
        &key,
        LOG,
        json!({ "j": job, "p": points("loss", 0..50, |i| json!(i as f64)) }),
    )
    .await;
    let (db, store) = ftl_tests::open_store(&s.state.config.database.url)
        .await
        .unwrap();
    let other = ftl_projections::Projections::standard(db.clone(), store, Duration::from_secs(5));
    other.catch_up().await.unwrap();
    let head = s.state.effects.store.head_position().await.unwrap();
    for st in other.status().await.unwrap() {
        assert_eq!(st.position, head, "{st:?}");
    }
    // The other process catching up while the server's runners project the
    // same events: whoever moves a checkpoint second starts again from the
    // table; neither fails.
    for round in 0..20 {
        let (log, caught_up) = tokio::join!(
            s.gql(
                Some(&key),
                LOG,
                json!({ "j": job, "p": points("acc", round * 10..round * 10 + 10, |i| json!(i as f64)) }),
            ),
            other.catch_up()
        );
        assert_eq!(log.0, 200, "{:?}", log.1);
        caught_up.unwrap();
    }
    db.close().await;

    let started = std::time::Instant::now();
    let second = create_job(&s, &key, "second").await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2_500),
        "createJob waited {took:?} (the poll interval is 5 s)"
    );
    let d = s
        .ok(
            &key,
            "query($id: ID!) { job(id: $id) { name } }",
            json!({ "id": second }),
        )
        .await;
    assert_eq!(d["job"]["name"], "second");
    s.stop().await;
}

e2e!(
    another_process_catching_up_holds_nothing_up,
    changed_read_models_rebuild_beside_the_live_generation,
    undecodable_json_is_an_error_naming_the_column,
    job_lifecycle_and_metrics,
    authentication_and_project_isolation,
    live_subscriptions,
    idempotency_pagination_and_limits,
    mlflow_transport_and_auth,
    mlflow_projects_scopes_and_wire,
    mlflow_search_returns_whole_runs,
    training_config_validation
);
