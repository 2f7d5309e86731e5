//! Issue 18's hardening, each item checked end to end: the artifact store
//! never follows a symbolic link; an idempotency key reused with another
//! request is refused; GraphQL documents over their cost limits are refused
//! before they execute, in milliseconds; unsatisfiable ranges answer 416;
//! GraphiQL loads nothing from outside; every error body is JSON with a
//! stable code; floats, steps and step ranges are refused where they would
//! be misread.

use crate::api::TestServer;
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const LOG: &str = "mutation($j: ID!, $p: [MetricPointInput!]!, $k: String) { logMetrics(jobId: $j, points: $p, idempotencyKey: $k) { accepted deduplicated position } }";

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
    (status, body)
}

/// `POST /api/2.0/mlflow/{path}` with a JSON body: (status, body).
async fn mlflow_post(s: &TestServer, key: &str, path: &str, body: Value) -> (u16, Value) {
    json_of(
        s.http
            .post(format!("{}/api/2.0/mlflow/{path}", s.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// An MLflow run of a fresh experiment: (experiment id, run id).
async fn mlflow_run(s: &TestServer, key: &str) -> (String, String) {
    let (_, e) = mlflow_post(s, key, "experiments/create", json!({"name": "links"})).await;
    let exp = e["experiment_id"].as_str().unwrap().to_string();
    let (st, r) = mlflow_post(
        s,
        key,
        "runs/create",
        json!({"experiment_id": exp, "start_time": 1}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    (
        exp,
        r["run"]["info"]["run_id"].as_str().unwrap().to_string(),
    )
}

/// Links placed under the artifact root by something else never give access
/// beyond it: reads, listings, writes and deletes through them are refused
/// (403 PERMISSION_DENIED) or left out; plain files keep working.
async fn artifact_store_never_follows_links(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("links", Scope::Write).await;
    let (exp, run) = mlflow_run(&s, &key).await;
    let url = |rel: &str| {
        format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/{rel}",
            s.base
        )
    };
    let put = s
        .http
        .put(url("plain.txt"))
        .bearer_auth(&key)
        .body("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    // The run's folder: <root>/<project>/<run>.
    let root = std::path::PathBuf::from(&s.state.config.artifacts.root);
    let project_dir = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let run_dir = project_dir.join(&run);
    assert!(run_dir.join("plain.txt").is_file());
    // Outside the root: a secret file and a folder.
    let outside = std::env::temp_dir().join(format!("ftl-outside-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), run_dir.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(&outside, run_dir.join("linkdir")).unwrap();

    for rel in ["link.txt", "linkdir/secret.txt"] {
        let (st, body) =
            json_of(s.http.get(url(rel)).bearer_auth(&key).send().await.unwrap()).await;
        assert_eq!(
            (st, body["error_code"].as_str()),
            (403, Some("PERMISSION_DENIED")),
            "GET {rel}: {body}"
        );
    }
    let (st, body) = json_of(
        s.http
            .put(url("linkdir/new.txt"))
            .bearer_auth(&key)
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{body}"
    );
    assert!(
        !outside.join("new.txt").exists(),
        "a write went through the link"
    );
    let (st, _) = json_of(
        s.http
            .delete(url("linkdir/secret.txt"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 403);
    assert!(
        outside.join("secret.txt").exists(),
        "a delete went through the link"
    );
    // Listings show the plain file only.
    let (srv, k) = (&s, &key);
    let list = |path: String| async move {
        let r = srv
            .http
            .get(format!("{}/api/2.0/mlflow-artifacts/artifacts", srv.base))
            .query(&[("path", path)])
            .bearer_auth(k)
            .send()
            .await
            .unwrap();
        json_of(r).await
    };
    let (st, body) = list(format!("{exp}/{run}/artifacts")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body["files"],
        json!([{"path": "plain.txt", "is_dir": false, "file_size": 10}])
    );
    let (st, _) = list(format!("{exp}/{run}/artifacts/linkdir")).await;
    assert_eq!(st, 403);

    // Ranges: satisfiable ones are served, the others answer 416 with the size.
    let ranged = |r: &'static str| {
        s.http
            .get(url("plain.txt"))
            .bearer_auth(&key)
            .header("Range", r)
            .send()
    };
    let r = ranged("bytes=2-4").await.unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 2-4/10");
    assert_eq!(r.text().await.unwrap(), "234");
    let r = ranged("bytes=7-100").await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (206, "789".to_string())
    );
    for bad in [
        "bytes=10-",
        "bytes=20-30",
        "bytes=5-2",
        "bytes=-0",
        "bytes=x-",
    ] {
        let r = ranged(bad).await.unwrap();
        assert_eq!(r.status().as_u16(), 416, "{bad}");
        assert_eq!(r.headers()["content-range"], "bytes */10", "{bad}");
        let (_, body) = json_of(r).await;
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE", "{bad}");
    }
    std::fs::remove_dir_all(&outside).ok();
    s.stop().await;
}

/// The same idempotency key with a different request is refused with
/// IDEMPOTENCY_KEY_REUSED and stores nothing; an identical retry (argument
/// order and an omitted timestamp included) stays deduplicated.
async fn idempotency_keys_name_one_request(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("idem", Scope::Write).await;
    let create =
        "mutation($n: String!, $k: String) { createJob(name: $n, idempotencyKey: $k) { id name } }";
    let a = s.ok(&key, create, json!({"n": "one", "k": "c-1"})).await;
    let again = s.ok(&key, create, json!({"n": "one", "k": "c-1"})).await;
    assert_eq!(a, again);
    assert_eq!(
        s.code(Some(&key), create, json!({"n": "two", "k": "c-1"}))
            .await,
        "IDEMPOTENCY_KEY_REUSED"
    );
    let job = a["createJob"]["id"].as_str().unwrap().to_string();
    let p1 =
        json!([{"key": "acc", "step": 1, "value": 1.5}, {"key": "acc", "step": 2, "value": 1.25}]);
    let first = s
        .ok(&key, LOG, json!({"j": job, "p": p1, "k": "b-1"}))
        .await;
    assert_eq!(first["logMetrics"]["deduplicated"], false);
    // The same points, fields in another order: the same request.
    let p1_reordered =
        json!([{"value": 1.5, "step": 1, "key": "acc"}, {"step": 2, "key": "acc", "value": 1.25}]);
    let retry = s
        .ok(&key, LOG, json!({"j": job, "p": p1_reordered, "k": "b-1"}))
        .await;
    assert_eq!(retry["logMetrics"]["deduplicated"], true);
    assert_eq!(
        retry["logMetrics"]["position"],
        first["logMetrics"]["position"]
    );
    let p2 = json!([{"key": "acc", "step": 1, "value": 9.0}]);
    let (_, body) = s
        .gql(Some(&key), LOG, json!({"j": job, "p": p2, "k": "b-1"}))
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "IDEMPOTENCY_KEY_REUSED",
        "{body}"
    );
    // Nothing of the refused request was stored.
    let d = s
        .ok(
            &key,
            "query($j: ID!) { metricSeries(jobId: $j, keys: [\"acc\"], maxPoints: 10) { points { step max } } }",
            json!({"j": job}),
        )
        .await;
    assert_eq!(
        d["metricSeries"][0]["points"],
        json!([{"step": 1, "max": 1.5}, {"step": 2, "max": 1.25}])
    );
    // Transitions too: failJob with one error, then another under the same key.
    let fail = "mutation($j: ID!, $e: String!, $k: String) { failJob(id: $j, error: $e, idempotencyKey: $k) { status } }";
    let f = s
        .ok(&key, fail, json!({"j": job, "e": "oom", "k": "f-1"}))
        .await;
    assert_eq!(f["failJob"]["status"], "FAILED");
    let f2 = s
        .ok(&key, fail, json!({"j": job, "e": "oom", "k": "f-1"}))
        .await;
    assert_eq!(f2["failJob"]["status"], "FAILED");
    assert_eq!(
        s.code(
            Some(&key),
            fail,
            json!({"j": job, "e": "disk full", "k": "f-1"})
        )
        .await,
        "IDEMPOTENCY_KEY_REUSED"
    );
    s.stop().await;
}

/// Alias, fragment, operation, directive and size bombs are refused with
/// LIMIT_EXCEEDED before they run, each in under 10 ms of server time.
async fn graphql_bombs_are_refused_fast(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("bombs", Scope::Read).await;
    let aliases = format!(
        "{{ {} }}",
        (0..3_000)
            .map(|i| format!("a{i}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let spreads = format!(
        "{{ ...F }} fragment F on Query {{ {} }} fragment G on Query {{ __typename }}",
        "...G ".repeat(10_000)
    );
    let operations = (0..2_000)
        .map(|i| format!("query Q{i} {{ __typename }}"))
        .collect::<String>();
    let directives = format!("{{ __typename {} }}", "@skip(if: false) ".repeat(3_000));
    let comment = format!("{{ __typename }}\n#{}", "x".repeat(3 * 1024 * 1024));
    let nested = format!(
        "{{ j: jobs {{ ...A }} }} fragment A on JobConnection {{ {} }} fragment B on JobConnection {{ {} }}",
        "...B ".repeat(100),
        "totalCount ".repeat(100)
    );
    for (name, q) in [
        ("aliases", &aliases),
        ("spreads", &spreads),
        ("operations", &operations),
        ("directives", &directives),
        ("comment", &comment),
        ("nested spreads", &nested),
    ] {
        // Warm, then time the best of five (the machine is shared: a
        // parallel build can hold both cores for a while).
        let mut best = Duration::MAX;
        let mut body = Value::Null;
        for _ in 0..5 {
            let started = Instant::now();
            let (st, b) = s.gql(Some(&key), q, json!({})).await;
            best = best.min(started.elapsed());
            assert_eq!(st, 200, "{name}");
            body = b;
        }
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED",
            "{name}: {body}"
        );
        assert!(
            body.get("data").is_none_or(Value::is_null),
            "{name} ran: {body}"
        );
        eprintln!("{name}: {} bytes refused in {best:?}", q.len());
        // The 3 MB body is mostly upload and JSON decoding on loopback.
        let budget = if name == "comment" {
            Duration::from_millis(400)
        } else {
            // Executed, these documents take seconds; refused, well under
            // a millisecond on an idle machine.
            Duration::from_millis(25)
        };
        assert!(best < budget, "{name} took {best:?}");
    }
    // Ordinary documents still pass.
    let d = s
        .ok(
            &key,
            "{ a: __typename ...F } fragment F on Query { b: __typename }",
            json!({}),
        )
        .await;
    assert_eq!(
        (d["a"].as_str(), d["b"].as_str()),
        (Some("Query"), Some("Query"))
    );
    s.stop().await;
}

/// GraphiQL's page and every script and stylesheet it names come from this
/// server (nothing from a CDN), gzipped when the browser accepts it, under
/// a Content Security Policy that allows this origin's scripts only.
async fn graphiql_is_served_from_the_binary(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s
        .http
        .get(format!("{}/graphql", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("//"),
        "the page names something outside: {page}"
    );
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|t| t.starts_with("/graphiql/"))
        .collect();
    // GraphiQL, its stylesheet, React, ReactDOM and the start-up script.
    assert_eq!(assets.len(), 5, "{page}");
    for path in assets {
        let r = s
            .http
            .get(format!("{}{path}", s.base))
            .header("accept-encoding", "gzip, deflate")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let gzipped = r
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v == "gzip");
        let bytes = r.bytes().await.unwrap();
        let text = if gzipped {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .unwrap();
            out
        } else {
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        assert!(text.len() > 500, "{path}: {} bytes", text.len());
        if path.ends_with("graphiql.min.js") {
            assert!(gzipped, "the 1 MB bundle goes compressed");
            assert!(text.contains("GraphiQL"));
        }
    }
    // The bundles also go to a client that takes no gzip.
    let plain = s
        .http
        .get(format!("{}/graphiql/react.production.min.js", s.base))
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(plain.text().await.unwrap().contains("react"));
    let (st, b) = json_of(
        s.http
            .get(format!("{}/graphiql/evil.js", s.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((st, b["code"].as_str()), (404, Some("not_found")));
    s.stop().await;
}

/// What actix-web itself answers (unknown routes, wrong methods, rejected
/// query strings and paths, bodies over a limit) comes as the JSON error of
/// the route's family with a stable code, never as text or an empty body.
/// Registering a model with a key on a server that cannot seal keys is
/// NOT_CONFIGURED before any name is looked up.
async fn every_error_body_is_json(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("shapes", Scope::Write).await;
    let send = |method: reqwest::Method, path: &str| {
        s.http
            .request(method, format!("{}{path}", s.base))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body("{}")
            .send()
    };
    use reqwest::Method;
    let cases: Vec<(Method, &str, u16, &str, &str)> = vec![
        // (method, path, status, where the code is, the code)
        (Method::GET, "/nowhere", 404, "/code", "not_found"),
        (Method::DELETE, "/healthz", 404, "/code", "not_found"),
        (
            Method::PUT,
            "/graphql",
            404,
            "/errors/0/extensions/code",
            "NOT_FOUND",
        ),
        (
            Method::PUT,
            "/api/v1/datasets",
            400,
            "/code",
            "invalid_input",
        ),
        (
            Method::GET,
            "/api/v1/jobs/not-a-uuid/checkpoints/x/files/y",
            404,
            "/code",
            "not_found",
        ),
        (
            Method::GET,
            "/api/2.0/mlflow/no/such/call",
            404,
            "/error_code",
            "ENDPOINT_NOT_FOUND",
        ),
        (
            Method::DELETE,
            "/api/2.0/mlflow/runs/create",
            404,
            "/error_code",
            "ENDPOINT_NOT_FOUND",
        ),
        (
            Method::GET,
            "/v1/no-such-call",
            404,
            "/error/code",
            "unknown_url",
        ),
        (
            Method::GET,
            "/v1/chat/completions",
            404,
            "/error/code",
            "unknown_url",
        ),
    ];
    for (method, path, status, pointer, code) in cases {
        let r = send(method.clone(), path).await.unwrap();
        let (st, b) = json_of(r).await;
        assert_eq!(st, status, "{method} {path}: {b}");
        assert_eq!(
            b.pointer(pointer).and_then(Value::as_str),
            Some(code),
            "{method} {path}: {b}"
        );
        let message = ["/message", "/errors/0/message", "/error/message"]
            .iter()
            .find_map(|p| b.pointer(p).and_then(Value::as_str))
            .unwrap_or("");
        assert!(!message.is_empty(), "{method} {path}: no message in {b}");
    }
    // A body past the worker protocol's 16 MiB limit: 413 with a code, not text.
    let r = s
        .http
        .post(format!("{}/api/v1/worker/claim", s.base))
        .body(vec![b'x'; (16 << 20) + 1])
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    let b: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({st}): {text}"));
    assert!(b["code"].is_string(), "{st}: {b}");

    // No `[secrets] encryption_key` here: a key cannot be sealed, and that is
    // said before the (unresolvable) name is looked up.
    let register = "mutation($i: ExternalModelInput!) { registerExternalModel(input: $i) { id } }";
    let input = |api_key: Option<&str>| {
        json!({"i": {"name": "remote", "provider": "openai", "baseUrl": "https://unresolvable.invalid/v1",
                      "remoteModel": "gpt-4o-mini", "apiKey": api_key}})
    };
    assert_eq!(
        s.code(Some(&key), register, input(Some("sk-test"))).await,
        "NOT_CONFIGURED"
    );
    // Without a key the name is looked up, and fails as a name.
    assert_ne!(
        s.code(Some(&key), register, input(None)).await,
        "NOT_CONFIGURED"
    );
    s.stop().await;
}

/// Floats sent as strings take exactly the documented spellings; steps past
/// 2^53 - 1 are refused (GraphQL and MLflow), not rounded; a step range
/// that ends before it starts is an error, not an empty series.
async fn floats_steps_and_ranges_are_read_exactly(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("floats", Scope::Write).await;
    let job = s
        .ok(
            &key,
            "mutation { createJob(name: \"f\") { id } }",
            json!({}),
        )
        .await["createJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = |points: Value| s.gql(Some(&key), LOG, json!({"j": job, "p": points}));
    for bad in ["NAN", "infinity", "iNf", "1e999", "nan "] {
        let (_, b) = log(json!([{"key": "l", "step": 1, "value": bad}])).await;
        let msg = b["errors"][0]["message"].as_str().unwrap_or("");
        assert!(msg.contains("NaN") && msg.contains("nan"), "{bad:?}: {b}");
    }
    let (_, b) = log(json!([
        {"key": "l", "step": 1, "value": "nan"}, {"key": "l", "step": 2, "value": "-inf"},
        {"key": "l", "step": 9_007_199_254_740_991_i64, "value": 1.5}
    ]))
    .await;
    assert_eq!(b["data"]["logMetrics"]["accepted"], 3, "{b}");
    let (_, b) = log(json!([{"key": "l", "step": 9_007_199_254_740_993_i64, "value": 1}])).await;
    assert_eq!(b["errors"][0]["extensions"]["code"], "INVALID_INPUT", "{b}");
    assert_eq!(
        b["errors"][0]["extensions"]["field"], "points[0].step",
        "{b}"
    );

    let (_, run) = mlflow_run(&s, &key).await;
    let (st, b) = mlflow_post(
        &s,
        &key,
        "runs/log-metric",
        json!({"run_id": run, "key": "m", "value": 1, "timestamp": 1, "step": "9007199254740993"}),
    )
    .await;
    assert_eq!(
        (st, b["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE")),
        "{b}"
    );
    let (st, b) = mlflow_post(
        &s,
        &key,
        "runs/log-metric",
        json!({"run_id": run, "key": "m", "value": "INFINITY", "timestamp": 1}),
    )
    .await;
    assert_eq!(
        (st, b["error_code"].as_str()),
        (400, Some("BAD_REQUEST")),
        "{b}"
    );

    let series = "query($j: ID!, $f: Int, $t: Int) { metricSeries(jobId: $j, keys: [\"l\"], fromStep: $f, toStep: $t) { points { step count } } }";
    let (_, b) = s
        .gql(Some(&key), series, json!({"j": job, "f": 5, "t": 2}))
        .await;
    assert_eq!(b["errors"][0]["extensions"]["code"], "INVALID_INPUT", "{b}");
    let d = s.ok(&key, series, json!({"j": job, "f": 2, "t": 2})).await;
    assert_eq!(d["metricSeries"][0]["points"][0]["step"], 2, "{d}");
    s.stop().await;
}

/// `job`, `jobs` and `metricSeries` as of a log position answer what they
/// answered when the log ended there: folded from the events up to it by
/// the projections' code, equal to the live answer of that moment.
async fn reads_as_of_a_log_position(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("as-of", Scope::Write).await;
    let create = "mutation($n: String!) { createJob(name: $n) { id } }";
    let a = s.ok(&key, create, json!({"n": "a"})).await["createJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pts = |from: i64, scale: f64| -> Value {
        (from..from + 50)
            .map(|i| json!({"key": "loss", "step": i, "value": scale / (1.0 + i as f64)}))
            .collect()
    };
    let log = |points: Value| s.ok(&key, LOG, json!({"j": a, "p": points}));
    let p1 = log(pts(0, 1.0)).await["logMetrics"]["position"]
        .as_str()
        .unwrap()
        .to_string();
    let series = "query($j: ID!, $t: Int, $at: String) { metricSeries(jobId: $j, keys: [\"train_loss\"], toStep: $t, maxPoints: 7, asOf: $at) { key bucketWidth points { step lastStep count min max mean last } } }";
    let live_then = s.ok(&key, series, json!({"j": a})).await["metricSeries"].clone();
    // Then more points, a second job, and the end of the first.
    log(pts(50, 3.0)).await;
    let b = s.ok(&key, create, json!({"n": "b"})).await["createJob"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(
        &key,
        "mutation($j: ID!) { completeJob(id: $j) { status } }",
        json!({"j": a}),
    )
    .await;

    let job = "query($j: ID!, $at: String) { job(id: $j, asOf: $at) { status asOf endedAt latestMetrics { key step } training { spentUsd } } }";
    let now = s.ok(&key, job, json!({"j": a})).await["job"].clone();
    assert_eq!(
        (now["status"].as_str(), &now["asOf"]),
        (Some("SUCCEEDED"), &Value::Null)
    );
    assert_eq!(now["latestMetrics"][0]["step"], 99);
    let then = s.ok(&key, job, json!({"j": a, "at": p1})).await["job"].clone();
    assert_eq!(then["status"], "RUNNING", "{then}");
    assert_eq!(then["asOf"], p1.as_str());
    assert_eq!(then["endedAt"], Value::Null);
    assert_eq!(
        then["latestMetrics"][0]["step"], 49,
        "nested fields read as of too"
    );
    assert_eq!(then["training"], Value::Null);
    // The series as of p1 is the series as it was served at p1.
    let replayed = s.ok(&key, series, json!({"j": a, "at": p1})).await["metricSeries"].clone();
    assert_eq!(replayed, live_then);
    let now_series = s.ok(&key, series, json!({"j": a})).await["metricSeries"].clone();
    assert_ne!(now_series, live_then, "the live series moved on");
    // The listing as of p1 has one job, running.
    let jobs = "query($at: String) { jobs(first: 10, asOf: $at) { edges { node { id status asOf latestMetrics { step } } } } }";
    let listed = s.ok(&key, jobs, json!({"at": p1})).await["jobs"]["edges"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["node"]["id"], a.as_str());
    assert_eq!(listed[0]["node"]["status"], "RUNNING");
    assert_eq!(listed[0]["node"]["latestMetrics"][0]["step"], 49);
    let listed = s.ok(&key, jobs, json!({})).await["jobs"]["edges"].clone();
    assert_eq!(listed[0]["node"]["id"], b.as_str(), "newest first, live");
    // Bad positions; another project's job is nobody's at any position.
    for at in ["later", "-1", "99999999999"] {
        assert_eq!(
            s.code(Some(&key), job, json!({"j": a, "at": at})).await,
            "INVALID_INPUT",
            "{at}"
        );
    }
    let other = s.key("as-of-other", Scope::Read).await;
    let (_, r) = s.gql(Some(&other), job, json!({"j": a, "at": p1})).await;
    assert_eq!(r["data"]["job"], Value::Null, "{r}");
    s.stop().await;
}

/// The hostile set: malformed, oversized, mistyped and injected input on
/// every route family, as an attacker would send it. None may answer 5xx
/// (a panic in a handler would), every error is JSON, and the service still
/// serves afterwards.
async fn hostile_inputs_never_answer_5xx(backend: Backend) {
    let s = TestServer::start(backend).await;
    let key = s.key("hostile", Scope::Write).await;
    let (_, run) = mlflow_run(&s, &key).await;
    let job = uuid::Uuid::new_v4();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let long = format!(
        "{{\"name\": \"{}\", \"key\": \"{}\"}}",
        "x".repeat(1 << 20),
        "k".repeat(100_000)
    );
    let typed = json!({"experiment_id": {"$ne": 1}, "run_id": [run], "name": 123, "max_results": -5,
        "filter": "metrics.x > '1'; DROP TABLE runs; --", "order_by": ["x DESC; --"], "key": "../../etc",
        "value": "Infinity", "step": "NaN", "timestamp": 1e300, "metrics": [{"key": null}],
        "params": [{"key": "\u{0000}", "value": "\u{202e}"}], "tags": {"a": 1},
        "model": "\u{0000}", "messages": [{"role": "root", "content": [1, 2]}], "max_tokens": -1,
        "worker_id": "", "points": [{"step": -1}], "lines": [{"level": "x".repeat(10_000)}]});
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"just a string\"".to_vec(),
        b"1e999".to_vec(),
        b"\xff\xfe{\"a\": \"\xc3\x28\"}".to_vec(),
        b"{\"a\": 99999999999999999999999999999, \"b\": -0.0e-400}".to_vec(),
        deep.into_bytes(),
        long.into_bytes(),
        typed.to_string().into_bytes(),
        json!({"run_id": run, "experiment_id": "0", "metrics": (0..1001).map(|i| json!({"key": "m", "value": i, "timestamp": 0, "step": i})).collect::<Vec<_>>()}).to_string().into_bytes(),
    ];
    let mut posts: Vec<String> = [
        "experiments/create",
        "experiments/search",
        "experiments/update",
        "experiments/delete",
        "experiments/restore",
        "experiments/set-experiment-tag",
        "runs/create",
        "runs/update",
        "runs/delete",
        "runs/restore",
        "runs/search",
        "runs/log-metric",
        "runs/log-parameter",
        "runs/set-tag",
        "runs/delete-tag",
        "runs/log-batch",
        "runs/log-inputs",
        "logged-models/search",
    ]
    .iter()
    .map(|p| format!("/api/2.0/mlflow/{p}"))
    .collect();
    posts.extend(
        ["/graphql", "/v1/chat/completions", "/api/v1/worker/claim"]
            .iter()
            .map(|p| p.to_string()),
    );
    posts.extend(
        [
            "heartbeat",
            "started",
            "metrics",
            "logs",
            "checkpoints",
            "paused",
            "failed",
        ]
        .iter()
        .map(|p| format!("/api/v1/worker/jobs/{job}/{p}")),
    );
    let gets = [
        "/api/2.0/mlflow/experiments/get?experiment_id=%27%20OR%201%3D1",
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=%00",
        &format!("/api/2.0/mlflow/runs/get?run_id={}", "a".repeat(10_000)),
        &format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=../x&max_results=-1&page_token=%FF"
        ),
        &format!(
            "/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids={run}&metric_key=m&start_step=9&end_step=-9&max_results=0"
        ),
        &format!("/api/2.0/mlflow/artifacts/list?run_id={run}&path=../../../etc"),
        "/api/2.0/mlflow/experiments/search?max_results=99999999999999999999&filter=%27",
        &format!(
            "/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/..%2F..%2F..%2Fetc%2Fpasswd"
        ),
        "/api/2.0/mlflow-artifacts/artifacts/%2e%2e/%2e%2e/secret",
        "/api/v1/exports/predictions?format=bogus&limit=-1&position=abc",
        "/api/v1/exports/..%2F..%2Fetc?format=csv",
        "/api/v1/exports/predictions?from=not-a-date&tag=%00",
        "/v1/models/%00%2F..",
        &format!("/api/v1/jobs/{job}/checkpoints/-1/files/..%2F..%2Fetc%2Fpasswd"),
        &format!("/api/v1/jobs/{job}/checkpoints/99999999999999999999999/files/x"),
        "/graphql?query=%7B__typename%7D",
    ];
    let gql_hostile = [
        "{ jobs(first: 2147483647) { totalCount } }",
        "{ job(id: \"../../etc/passwd\") { id } }",
        "{ job(id: \"00000000-0000-0000-0000-000000000000\", asOf: \"18446744073709551616\") { id } }",
        "query($p: [MetricPointInput!]!) { __typename }",
        "mutation { createJob(name: \"\\u0000\", config: {a: {b: {c: {d: {e: {f: {g: {h: 1}}}}}}}}) { id } }",
        "{ metricSeries(jobId: \"x\", keys: [], maxPoints: -1) { key } }",
        "subscription { jobStatus(jobId: \"x\") { status } }",
        "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }",
        "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }",
        "{ a: __typename @skip(if: \"yes\") }",
    ];
    let (mut sent, mut by_status) = (0, std::collections::BTreeMap::<u16, usize>::new());
    let mut check = |what: String, r: reqwest::Response| {
        let status = r.status().as_u16();
        *by_status.entry(status).or_default() += 1;
        sent += 1;
        async move {
            let ctype = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = r.bytes().await.unwrap_or_default();
            assert!(
                status < 500,
                "{what}: {status} {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            );
            if status >= 400 {
                assert!(
                    ctype.starts_with("application/json")
                        && serde_json::from_slice::<Value>(&body).is_ok(),
                    "{what}: {status} {ctype} {}",
                    String::from_utf8_lossy(&body[..body.len().min(300)])
                );
            }
        }
    };
    for path in &posts {
        for (i, body) in bodies.iter().enumerate() {
            for auth in [true, false] {
                let mut req = s
                    .http
                    .post(format!("{}{path}", s.base))
                    .header("content-type", "application/json")
                    .body(body.clone());
                if auth {
                    req = req.bearer_auth(&key);
                }
                let r = req.send().await.unwrap();
                check(format!("POST {path} body #{i} auth={auth}"), r).await;
            }
        }
    }
    for path in gets {
        let r = s
            .http
            .get(format!("{}{path}", s.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        check(format!("GET {path}"), r).await;
    }
    for q in gql_hostile {
        let r = s
            .http
            .post(format!("{}/graphql", s.base))
            .bearer_auth(&key)
            .json(&json!({"query": q, "variables": {"p": "not a list"}}))
            .send()
            .await
            .unwrap();
        check(format!("GraphQL {q}"), r).await;
    }
    let r = s
        .http
        .put(format!(
            "{}/api/v1/datasets?name=..%2F..%2Fevil.jsonl",
            s.base
        ))
        .bearer_auth(&key)
        .body(b"\xff\xfe\x00garbage\n{\"messages\": 1}\n".to_vec())
        .send()
        .await
        .unwrap();
    check("PUT dataset".into(), r).await;
    eprintln!("hostile: {sent} requests, by status {by_status:?}");
    assert!(sent > 600, "{sent}");
    // U+0000 is refused at the door on every path (PostgreSQL can store it
    // neither in TEXT nor in JSONB: once in the log it would stop the read
    // models for everyone).
    assert_eq!(
        s.code(
            Some(&key),
            "mutation { createJob(name: \"a\\u0000b\") { id } }",
            json!({})
        )
        .await,
        "INVALID_INPUT"
    );
    let (st, b) = mlflow_post(
        &s,
        &key,
        "runs/set-tag",
        json!({"run_id": run, "key": "k", "value": "a\u{0}b"}),
    )
    .await;
    assert_eq!(st, 400, "{b}");
    // An MLflow message is a JSON object: `[]` is not an empty one.
    let (st, b) = mlflow_post(&s, &key, "runs/create", json!([])).await;
    assert_eq!(
        (st, b["error_code"].as_str()),
        (400, Some("BAD_REQUEST")),
        "{b}"
    );
    // Still serving: a write and its read.
    let j = s
        .ok(
            &key,
            "mutation { createJob(name: \"after\") { id } }",
            json!({}),
        )
        .await["createJob"]["id"]
        .clone();
    let d = s
        .ok(
            &key,
            LOG,
            json!({"j": j, "p": [{"key": "x", "step": 1, "value": 1}]}),
        )
        .await;
    assert_eq!(d["logMetrics"]["accepted"], 1);
    s.stop().await;
}

e2e!(
    hostile_inputs_never_answer_5xx,
    reads_as_of_a_log_position,
    artifact_store_never_follows_links,
    idempotency_keys_name_one_request,
    graphql_bombs_are_refused_fast,
    graphiql_is_served_from_the_binary,
    every_error_body_is_json,
    floats_steps_and_ranges_are_read_exactly
);
