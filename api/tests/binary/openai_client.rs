//! The official `openai` Python client (from PyPI) against the real binary,
//! on SQLite and PostgreSQL, talking to a model trained here: models list,
//! chat completions plain and streamed, length cut-off, error types — and
//! to external models behind it (a local server speaking the OpenAI and
//! Anthropic wire formats). Then every exchange is in the predictions
//! table with its tokens and timings.
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
    let provider = ftl_tests::mock_provider::Mock::start().await;
    let secret = ftl_effects::secrets::generate_key();
    let server = ServerProcess::start_with(&db, &http, |c| {
        c.env("FTL__SECRETS__ENCRYPTION_KEY", &secret).env(
            "FTL__EXTERNAL_MODELS__ALLOWED_NETWORKS",
            "[\"127.0.0.1/32\"]",
        )
    })
    .await;
    let base = server.base.clone();
    // External models behind the same API: OpenAI-compatible and Anthropic.
    let register = "mutation($i: ExternalModelInput!) { registerExternalModel(input: $i) { id } }";
    let mut external = vec![];
    for (name, provider_name, path, remote, api_key) in [
        ("oa", "openai", "/oa/v1", "gpt-mock", "sk-test-openai"),
        ("an", "anthropic", "/an", "claude-mock", "sk-ant-test"),
        ("bad", "openai", "/oa/v1", "gpt-mock", "sk-wrong"),
    ] {
        let d = gql(
            &http,
            &base,
            &key,
            register,
            json!({"i": {"name": name, "provider": provider_name, "baseUrl": format!("{}{path}", provider.base),
                          "remoteModel": remote, "apiKey": api_key}}),
        )
        .await;
        external.push(
            d["registerExternalModel"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
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
        .env("FTL_EXTERNAL_OPENAI_ID", &external[0])
        .env("FTL_EXTERNAL_ANTHROPIC_ID", &external[1])
        .env("FTL_EXTERNAL_BAD_KEY_ID", &external[2])
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
    // The external exchanges: the provider's usage, its model version.
    let q = "query($m: ID) { predictions(filter: {modelId: $m}, first: 50) { edges { node { usageSource modelVersion source promptTokens } } } }";
    for (id, version, n) in [
        (&external[0], "gpt-mock-2025-01-01", 2),
        (&external[1], "claude-mock-20250101", 1),
        (&external[2], "", 0),
    ] {
        let d = gql(&http, &base, &key, q, json!({"m": id})).await;
        let nodes = d["predictions"]["edges"].as_array().unwrap();
        assert_eq!(nodes.len(), n, "{d}");
        for e in nodes {
            assert_eq!(e["node"]["usageSource"], "provider");
            assert_eq!(e["node"]["modelVersion"], version);
            assert_eq!(e["node"]["source"], "openai_api");
        }
    }
    assert_eq!(
        provider.last("/messages").header("x-api-key"),
        Some("sk-ant-test")
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
