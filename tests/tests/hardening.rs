//! Issue 18's hardening, each item checked end to end: the artifact store
//! never follows a symbolic link; an idempotency key reused with another
//! request is refused; GraphQL documents over their cost limits are refused
//! before they execute, in milliseconds; unsatisfiable ranges answer 416.

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

/// An MLflow run of a fresh experiment: (experiment id, run id).
async fn mlflow_run(s: &TestServer, key: &str) -> (String, String) {
    let post = |path: &str, body: Value| {
        s.http
            .post(format!("{}/api/2.0/mlflow/{path}", s.base))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let (_, e) = json_of(
        post("experiments/create", json!({"name": "links"}))
            .await
            .unwrap(),
    )
    .await;
    let exp = e["experiment_id"].as_str().unwrap().to_string();
    let (st, r) = json_of(
        post(
            "runs/create",
            json!({"experiment_id": exp, "start_time": 1}),
        )
        .await
        .unwrap(),
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
        // Warm, then time the best of three (the machine is shared).
        let mut best = Duration::MAX;
        let mut body = Value::Null;
        for _ in 0..3 {
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
            Duration::from_millis(10)
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

e2e!(
    artifact_store_never_follows_links,
    idempotency_keys_name_one_request,
    graphql_bombs_are_refused_fast
);
