//! The chat portal against external models: a local HTTP server speaks the
//! OpenAI chat-completions and Anthropic Messages wire formats (streaming
//! included, as the real services send them), and FineTune Lab registers
//! it, seals its keys, chats with it over GraphQL (whole and streamed) and
//! the OpenAI-compatible API, records every exchange with the provider's
//! usage and the price table's cost, and refuses endpoints inside the network.

use crate::api::{TestServer, subscribe_to, ws_url};
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use ftl_tests::mock_provider::Mock;
use serde_json::{Value, json};
use std::time::Duration;

const REGISTER: &str = "mutation($i: ExternalModelInput!) { registerExternalModel(input: $i) { id name kind provider baseUrl remoteModel hasApiKey capabilities { streaming tools vision jsonMode source } price { inputUsdPerMTok outputUsdPerMTok } } }";
const CHAT: &str = "mutation($m: ID!, $msgs: [ChatMessageInput!]!, $p: ChatParams) { chat(modelId: $m, messages: $msgs, params: $p) { predictionId text finishReason promptTokens completionTokens totalTokens usageSource costUsd latencyMs ttftMs modelVersion } }";
const CHAT_SUB: &str = "subscription($m: ID!, $msgs: [ChatMessageInput!]!, $p: ChatParams) { chat(modelId: $m, messages: $msgs, params: $p) { delta result { predictionId text finishReason promptTokens completionTokens usageSource costUsd modelVersion } } }";

fn msgs(system: &str, user: &str) -> Value {
    json!([{"role": "system", "content": system}, {"role": "user", "content": user}])
}

async fn external_models_chat_and_usage(backend: Backend) {
    let mock = Mock::start().await;
    let s = TestServer::start_with(backend, |c| {
        c.secrets.encryption_key = Some(ftl_effects::secrets::generate_key());
        // The mock lives on loopback: this deployment allows it, nothing else.
        c.external_models.allowed_networks = vec!["127.0.0.1/32".into()];
    })
    .await;
    let key = s.key("chat", Scope::Write).await;
    let reader = s.key("chat", Scope::Read).await;

    // An OpenAI-compatible endpoint with a key and a price.
    let oa = s
        .ok(
            &key,
            REGISTER,
            json!({"i": {"name": "mock gpt", "provider": "openai", "baseUrl": format!("{}/oa/v1/", mock.base),
                          "remoteModel": "gpt-mock", "apiKey": "sk-test-openai",
                          "inputUsdPerMTok": 1.5, "outputUsdPerMTok": 6.0}}),
        )
        .await["registerExternalModel"]
        .clone();
    assert_eq!(oa["kind"], "external");
    assert_eq!(oa["provider"], "openai");
    assert_eq!(oa["baseUrl"], format!("{}/oa/v1", mock.base));
    assert_eq!(oa["hasApiKey"], true);
    assert_eq!(oa["capabilities"]["source"], "default");
    assert_eq!(oa["price"]["outputUsdPerMTok"], 6.0);
    let oa_id = oa["id"].as_str().unwrap().to_string();

    // The key is sealed in the log and never comes back.
    let events = s.state.effects.store.read_all(0, 100_000).await.unwrap();
    let registered = events
        .iter()
        .find(|e| e.event_type == "model.external_registered")
        .unwrap();
    let payload: Value = serde_json::from_str(&registered.payload).unwrap();
    assert!(!registered.payload.contains("sk-test-openai"), "{payload}");
    assert!(
        payload["api_key_sealed"]
            .as_str()
            .unwrap()
            .starts_with("v1:")
    );
    let listed = s
        .ok(
            &reader,
            "{ models(first: 10) { id kind hasApiKey baseUrl } }",
            json!({}),
        )
        .await;
    assert!(!listed.to_string().contains("sk-test"), "{listed}");
    assert_eq!(listed["models"][0]["id"], oa_id);

    // Whole answer over GraphQL: the provider's usage, the price table's cost.
    let r = s
        .ok(
            &key,
            CHAT,
            json!({"m": oa_id, "msgs": msgs("Be brief.", "hello there"), "p": {"maxTokens": 32, "temperature": 0.2}}),
        )
        .await["chat"]
        .clone();
    assert_eq!(r["text"], "echo: hello there");
    assert_eq!(r["finishReason"], "stop");
    assert_eq!(r["usageSource"], "provider");
    let (p, c) = (
        "Be brief.".len() + "hello there".len(),
        "echo: hello there".len().div_ceil(4),
    );
    assert_eq!(
        (r["promptTokens"].as_u64(), r["completionTokens"].as_u64()),
        (Some(p as u64), Some(c as u64))
    );
    assert_eq!(r["totalTokens"], p + c);
    let cost = (p as f64 * 1.5 + c as f64 * 6.0) / 1e6;
    assert!((r["costUsd"].as_f64().unwrap() - cost).abs() < 1e-15, "{r}");
    assert_eq!(r["modelVersion"], "gpt-mock-2025-01-01");
    assert!(r["ttftMs"].as_f64().unwrap() <= r["latencyMs"].as_f64().unwrap());
    // What went over the wire: the real format, the opened key.
    let seen = mock.last("/chat/completions");
    assert_eq!(seen.path, "/oa/v1/chat/completions");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-test-openai"));
    assert_eq!(seen.body["model"], "gpt-mock");
    assert_eq!(seen.body["max_tokens"], 32);
    assert_eq!(seen.body["temperature"], 0.2);
    assert_eq!(seen.body["stream"], true);
    assert_eq!(seen.body["stream_options"]["include_usage"], true);
    assert_eq!(seen.body["messages"], msgs("Be brief.", "hello there"));

    // Anthropic, streamed over the subscription.
    let an = s
        .ok(
            &key,
            REGISTER,
            json!({"i": {"name": "mock claude", "provider": "anthropic", "baseUrl": format!("{}/an", mock.base),
                          "remoteModel": "claude-mock", "apiKey": "sk-ant-test",
                          "capabilities": {"streaming": true, "tools": true, "vision": false, "jsonMode": false}}}),
        )
        .await["registerExternalModel"]
        .clone();
    assert_eq!(an["capabilities"]["source"], "declared");
    assert_eq!(an["capabilities"]["tools"], true);
    assert_eq!(an["price"], Value::Null);
    let an_id = an["id"].as_str().unwrap().to_string();
    let mut sub = subscribe_to(
        &ws_url(&s),
        Some(&key),
        CHAT_SUB,
        json!({"m": an_id, "msgs": msgs("Be brief.", "hi claude"), "p": {"maxTokens": 50, "temperature": 0.5}}),
    )
    .await
    .unwrap();
    let mut deltas = String::new();
    let mut chunks = 0;
    let result = loop {
        let m = sub.next_within(Duration::from_secs(20)).await.unwrap();
        assert_eq!(m["type"], "next", "{m}");
        let chunk = &m["payload"]["data"]["chat"];
        if !chunk["result"].is_null() {
            break chunk["result"].clone();
        }
        chunks += 1;
        deltas.push_str(chunk["delta"].as_str().unwrap());
    };
    assert_eq!(deltas, "echo: hi claude");
    assert_eq!(
        chunks,
        "echo: hi claude".len().div_ceil(4),
        "one chunk per piece"
    );
    assert_eq!(result["text"], deltas);
    assert_eq!(result["finishReason"], "stop", "end_turn");
    assert_eq!(result["usageSource"], "provider");
    assert_eq!(
        result["promptTokens"],
        "Be brief.".len() + "hi claude".len()
    );
    assert_eq!(result["completionTokens"], chunks, "message_delta's count");
    assert_eq!(result["costUsd"], Value::Null, "no price, no cost");
    assert_eq!(result["modelVersion"], "claude-mock-20250101");
    let seen = mock.last("/messages");
    assert_eq!(seen.path, "/an/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.body["system"], "Be brief.");
    assert_eq!(
        seen.body["messages"],
        json!([{"role": "user", "content": "hi claude"}])
    );
    assert_eq!(seen.body["max_tokens"], 50);
    drop(sub);

    // The OpenAI-compatible API serves the external models too (streamed).
    let res = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(&key)
        .json(
            &json!({"model": oa_id, "messages": [{"role": "user", "content": "via api"}],
                      "stream": true, "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let data: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = data
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "echo: via api");
    assert_eq!(
        data.last().unwrap()["usage"]["prompt_tokens"],
        "via api".len()
    );
    assert!(body.ends_with("data: [DONE]\n\n"));

    // The provider's refusal arrives with its words and a stable code.
    let bad = s
        .ok(
            &key,
            REGISTER,
            json!({"i": {"name": "bad key", "provider": "openai", "baseUrl": format!("{}/oa/v1", mock.base),
                          "remoteModel": "gpt-mock", "apiKey": "sk-wrong"}}),
        )
        .await["registerExternalModel"]["id"]
        .clone();
    let (_, refused) = s
        .gql(Some(&key), CHAT, json!({"m": bad, "msgs": msgs("x", "y")}))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UPSTREAM_ERROR",
        "{refused}"
    );
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("401") && message.contains("Incorrect API key"),
        "{message}"
    );
    assert!(!message.contains("sk-wrong"), "{message}");

    // A new price applies from now on; earlier exchanges keep theirs.
    s.ok(
        &key,
        "mutation($m: ID!) { setModelPrice(modelId: $m, inputUsdPerMTok: 3, outputUsdPerMTok: 15) { id } }",
        json!({"m": an_id}),
    )
    .await;
    let priced = s
        .ok(&key, CHAT, json!({"m": an_id, "msgs": msgs("s", "again")}))
        .await["chat"]
        .clone();
    let (p, c) = (1 + "again".len(), "echo: again".len().div_ceil(4));
    let cost = (p as f64 * 3.0 + c as f64 * 15.0) / 1e6;
    assert!(
        (priced["costUsd"].as_f64().unwrap() - cost).abs() < 1e-15,
        "{priced}"
    );

    // Ending a streamed chat early cancels it; the exchange is recorded.
    let mut slow = subscribe_to(
        &ws_url(&s),
        Some(&key),
        CHAT_SUB,
        json!({"m": oa_id, "msgs": msgs("s", "a slow and long answer please")}),
    )
    .await
    .unwrap();
    let first = slow.next_within(Duration::from_secs(10)).await.unwrap();
    assert_eq!(first["payload"]["data"]["chat"]["delta"], "echo");
    drop(slow);

    // Every exchange is a prediction with its usage, version and cost.
    let q = "query($m: ID) { predictions(first: 20, filter: {modelId: $m}) { edges { node { response finishReason usageSource costUsd modelVersion source promptTokens } } } }";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let oa_preds = loop {
        let d = s.ok(&reader, q, json!({"m": oa_id})).await;
        let edges = d["predictions"]["edges"].as_array().unwrap().clone();
        if edges.len() == 3 {
            break edges;
        }
        assert!(std::time::Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let newest = &oa_preds[0]["node"];
    assert_eq!(newest["finishReason"], "cancelled", "{newest}");
    assert!(
        newest["response"].as_str().unwrap().len() < "echo: a slow and long answer please".len()
    );
    assert_eq!(oa_preds[1]["node"]["source"], "openai_api");
    assert_eq!(oa_preds[2]["node"]["source"], "graphql");
    assert_eq!(oa_preds[2]["node"]["usageSource"], "provider");
    assert_eq!(oa_preds[2]["node"]["modelVersion"], "gpt-mock-2025-01-01");
    let an_preds = s.ok(&reader, q, json!({"m": an_id})).await;
    let an_edges = an_preds["predictions"]["edges"].as_array().unwrap();
    assert_eq!(an_edges.len(), 2);
    assert_eq!(an_edges[1]["node"]["costUsd"], Value::Null, "priced later");
    assert!(an_edges[0]["node"]["costUsd"].as_f64().unwrap() > 0.0);

    // Latency and usage history of a model.
    let now = chrono::Utc::now();
    let usage = s
        .ok(
            &reader,
            "query($m: ID!, $f: DateTime!, $t: DateTime!) { modelUsage(modelId: $m, from: $f, to: $t, bucketSeconds: 86400) { requests promptTokens completionTokens costUsd latencyP50Ms latencyP95Ms ttftP50Ms } }",
            json!({"m": an_id, "f": (now - chrono::Duration::hours(1)).to_rfc3339(), "t": (now + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await["modelUsage"]
        .clone();
    assert_eq!(usage.as_array().unwrap().len(), 1, "{usage}");
    assert_eq!(usage[0]["requests"], 2);
    assert_eq!(
        usage[0]["promptTokens"],
        ("Be brief.".len() + "hi claude".len()) + (1 + "again".len())
    );
    assert!((usage[0]["costUsd"].as_f64().unwrap() - cost).abs() < 1e-15);
    assert!(
        usage[0]["latencyP95Ms"].as_f64().unwrap() >= usage[0]["latencyP50Ms"].as_f64().unwrap()
    );

    // Endpoints inside the network, bad URLs and unknown providers are refused.
    for (url, code) in [
        ("http://10.1.2.3/v1", "FORBIDDEN_DESTINATION"),
        ("http://169.254.169.254/latest", "FORBIDDEN_DESTINATION"),
        ("http://[::1]:9/v1", "FORBIDDEN_DESTINATION"),
        ("file:///etc/passwd", "INVALID_INPUT"),
        ("http://user:pw@127.0.0.1/v1", "INVALID_INPUT"),
    ] {
        let got = s
            .code(
                Some(&key),
                REGISTER,
                json!({"i": {"name": "x", "provider": "openai", "baseUrl": url, "remoteModel": "m"}}),
            )
            .await;
        assert_eq!(got, code, "{url}");
    }
    let got = s
        .code(
            Some(&key),
            REGISTER,
            json!({"i": {"name": "x", "provider": "cohere", "baseUrl": mock.base, "remoteModel": "m"}}),
        )
        .await;
    assert_eq!(got, "INVALID_INPUT");
    let got = s
        .code(
            Some(&reader),
            REGISTER,
            json!({"i": {"name": "x", "provider": "openai", "baseUrl": mock.base, "remoteModel": "m"}}),
        )
        .await;
    assert_eq!(got, "FORBIDDEN", "a read key registers nothing");
    // Another project does not see these models.
    let other = s.key("someone-else", Scope::Write).await;
    let got = s
        .code(
            Some(&other),
            CHAT,
            json!({"m": oa_id, "msgs": msgs("x", "y")}),
        )
        .await;
    assert_eq!(got, "NOT_FOUND");

    // The comparison lab asks external models too, in parallel.
    let q = "mutation($m: [ID!]!) { createComparison(name: \"ext\", modelIds: $m, prompts: [\"compare me\"], maxTokens: 8) { prompts { responses { content predictionId } } } }";
    let cmp = s.ok(&key, q, json!({"m": [oa_id, an_id]})).await["createComparison"].clone();
    let answers = cmp["prompts"][0]["responses"].as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert!(
        answers.iter().all(|a| a["content"] == "echo: compare me"),
        "{cmp}"
    );
    s.stop().await;

    // Without an encryption key, a key cannot be stored (fail closed); a
    // key-less endpoint (a local Ollama) still can.
    let s = TestServer::start_with(backend, |c| {
        c.external_models.allowed_networks = vec!["127.0.0.0/8".into()];
    })
    .await;
    let key = s.key("chat", Scope::Write).await;
    let with_key = json!({"i": {"name": "x", "provider": "openai", "baseUrl": format!("{}/oa/v1", mock.base),
                                 "remoteModel": "m", "apiKey": "sk-test-openai"}});
    assert_eq!(
        s.code(Some(&key), REGISTER, with_key).await,
        "NOT_CONFIGURED"
    );
    let keyless = s
        .ok(
            &key,
            REGISTER,
            json!({"i": {"name": "ollama", "provider": "openai", "baseUrl": format!("{}/oa/v1", mock.base), "remoteModel": "llama3"}}),
        )
        .await;
    assert_eq!(keyless["registerExternalModel"]["hasApiKey"], false);
    s.stop().await;
    mock.handle.stop(true).await;
}

e2e!(external_models_chat_and_usage);
