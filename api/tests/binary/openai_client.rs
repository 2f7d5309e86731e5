//! The official `openai` Python client (from PyPI) against the real binary,
//! on SQLite and PostgreSQL, talking to a model trained here: models list,
//! chat completions plain and streamed, length cut-off, error types. Then
//! every exchange is in the predictions table with its tokens and timings.
//!
//! `scripts/test.sh` installs the client and sets `FTL_TEST_PYTHON`; without
//! it (a bare `cargo test`) this test says so and passes vacuously.

use crate::process::{ServerProcess, run_cli};
use ftl_tests::Backend;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

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

fn chats() -> String {
    let words = [
        "red", "blue", "green", "gold", "gray", "pink", "teal", "plum",
    ];
    (0..64)
        .map(|i| {
            let w = words[i % words.len()];
            json!({"messages": [{"role": "user", "content": format!("say {w}")},
                                {"role": "assistant", "content": format!("{w} {w} {w}")}]})
            .to_string()
                + "\n"
        })
        .collect()
}

async fn openai_client_suite(backend: Backend) {
    let Some(python) = crate::mlflow_client::python() else {
        return;
    };
    let db = backend.fresh_url().await.unwrap();
    let key = run_cli(&db, &["keys", "create", "--project", "openai-e2e"])
        .trim()
        .to_string();
    let http = reqwest::Client::new();
    let server = ServerProcess::start(&db, &http).await;
    let base = server.base.clone();
    // A chat model trained here by the server's own worker.
    let ds: Value = http
        .put(format!("{base}/api/v1/datasets?name=chats.jsonl"))
        .bearer_auth(&key)
        .body(chats())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let config = json!({
        "model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "float32"},
        "lora": {"enabled": false},
        "training": {"optim": "adamw_torch", "bf16": false, "batch_size": 8, "max_steps": 300,
                     "warmup_steps": 10, "learning_rate": 0.01, "logging_steps": 10, "max_length": 64},
        "evaluation": {"eval_steps": 1000},
        "checkpoint": {"save_steps": 300}
    });
    let q = "mutation($c: JSON!, $d: ID!) { createTrainingJob(name: \"chat\", config: $c, datasetId: $d) { id } }";
    let job =
        gql(&http, &base, &key, q, json!({"c": config, "d": ds["id"]})).await["createTrainingJob"]
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    let deadline = Instant::now() + Duration::from_secs(240);
    let model = loop {
        let d = gql(
            &http,
            &base,
            &key,
            "query($j: ID!) { job(id: $j) { status } models(jobId: $j) { id } }",
            json!({"j": job}),
        )
        .await;
        assert_ne!(d["job"]["status"], "FAILED", "{d}");
        if let Some(id) = d["models"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(Instant::now() < deadline, "training took too long: {d}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/openai/test_client.py"
    );
    let status = Command::new(&python)
        .arg(script)
        .env("OPENAI_BASE_URL", format!("{base}/v1"))
        .env("OPENAI_API_KEY", &key)
        .env("FTL_MODEL_ID", &model)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the openai client suite failed on {backend:?}"
    );

    // Every successful exchange is a prediction: the suite made four (two
    // plain answers, one streamed, one cut off by max_tokens); the refused
    // requests made none.
    let q = "query($m: ID) { predictions(filter: {modelId: $m}, first: 50) { edges { node {
        response finishReason latencyMs ttftMs promptTokens completionTokens totalTokens source messages { role content } } } } }";
    let d = gql(&http, &base, &key, q, json!({"m": model})).await;
    let nodes: Vec<&Value> = d["predictions"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert_eq!(nodes.len(), 4, "{d}");
    for n in &nodes {
        assert_eq!(n["source"], "openai_api");
        let latency = n["latencyMs"].as_f64().unwrap();
        let ttft = n["ttftMs"].as_f64().unwrap();
        assert!(ttft > 0.0 && ttft <= latency, "{n}");
        assert_eq!(
            n["totalTokens"].as_i64().unwrap(),
            n["promptTokens"].as_i64().unwrap() + n["completionTokens"].as_i64().unwrap()
        );
        assert_eq!(n["messages"][0]["role"], "user");
    }
    let cut = nodes
        .iter()
        .find(|n| n["finishReason"] == "length")
        .unwrap();
    assert_eq!(cut["completionTokens"], 3);
    let search =
        "query { predictions(filter: {search: \"PLUM\"}) { edges { node { response } } } }";
    let found = gql(&http, &base, &key, search, json!({})).await;
    assert_eq!(
        found["predictions"]["edges"].as_array().unwrap().len(),
        2,
        "{found}"
    );
    server.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_on_sqlite() {
    openai_client_suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_client_on_postgres() {
    openai_client_suite(Backend::Postgres).await;
}
