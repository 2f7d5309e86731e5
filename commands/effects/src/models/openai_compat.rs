//! The OpenAI chat-completions wire format, spoken to any compatible server
//! (OpenAI, vLLM, Ollama, llama.cpp, TGI …): `POST {base}/chat/completions`
//! with a bearer key, streamed as server-sent events with usage in the last
//! chunk (`stream_options.include_usage`).

use super::{ChatError, Endpoint, Reply, join, ms_since, provider_error, send_error};
use eventsource_stream::Eventsource;
use ftl_domain::prediction::ChatMessage;
use ftl_trainer::GenerateParams;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Instant;
use tokio::sync::mpsc;

pub fn request_body(
    model: &str,
    messages: &[ChatMessage],
    p: &GenerateParams,
    stream: bool,
) -> Value {
    let mut body = json!({
        "model": model,
        "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
        "max_tokens": p.max_tokens,
        "temperature": p.temperature,
        "top_p": p.top_p,
        "stream": stream,
    });
    if !p.stop.is_empty() {
        body["stop"] = json!(p.stop);
    }
    if p.seed != 0 {
        body["seed"] = json!(p.seed);
    }
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

pub async fn chat(
    ep: &Endpoint,
    messages: &[ChatMessage],
    params: &GenerateParams,
    started: Instant,
    tx: &mpsc::UnboundedSender<String>,
) -> Result<Reply, ChatError> {
    let mut req = ep
        .client
        .post(join(&ep.base_url, "chat/completions"))
        .json(&request_body(&ep.remote_model, messages, params, true));
    if let Some(key) = &ep.api_key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.map_err(send_error)?;
    if !resp.status().is_success() {
        return Err(provider_error(resp).await);
    }
    let plain = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if plain {
        // A server that ignores `stream` answers in one piece.
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ChatError::Stream(e.to_string()))?;
        return whole(v, started, tx);
    }
    let mut events = resp.bytes_stream().eventsource();
    let mut reply = Reply::empty(&ep.remote_model);
    let mut finished = false;
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|e| ChatError::Stream(e.to_string()))?;
        if ev.data.trim() == "[DONE]" {
            finished = true;
            break;
        }
        let chunk: Value = serde_json::from_str(&ev.data)
            .map_err(|e| ChatError::Stream(format!("a chunk is not JSON: {e}")))?;
        if let Some(err) = chunk.get("error") {
            let message = err["message"].as_str().unwrap_or("error").to_string();
            return Err(ChatError::Stream(message));
        }
        if let Some(m) = chunk["model"].as_str() {
            reply.model_version = m.to_string();
        }
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            read_usage(u, &mut reply);
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        if let Some(piece) = choice["delta"]["content"]
            .as_str()
            .filter(|p| !p.is_empty())
            && !reply.take_piece(piece, started, tx)?
        {
            // The caller went away: dropping the stream closes it.
            return Ok(reply);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            reply.finish_reason = f.to_string();
        }
    }
    if !finished {
        return Err(ChatError::Stream("the stream ended without [DONE]".into()));
    }
    Ok(reply)
}

fn read_usage(u: &Value, reply: &mut Reply) {
    if let (Some(p), Some(c)) = (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()) {
        reply.prompt_tokens = p;
        reply.completion_tokens = c;
        reply.usage_source = "provider";
    }
}

fn whole(
    v: Value,
    started: Instant,
    tx: &mpsc::UnboundedSender<String>,
) -> Result<Reply, ChatError> {
    let choice = &v["choices"][0];
    let text = choice["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut reply = Reply {
        finish_reason: choice["finish_reason"]
            .as_str()
            .unwrap_or("stop")
            .to_string(),
        prompt_tokens: 0,
        completion_tokens: 0,
        usage_source: "none",
        ttft_ms: (!text.is_empty()).then(|| ms_since(started)),
        model_version: v["model"].as_str().unwrap_or_default().to_string(),
        text,
    };
    if let Some(u) = v.get("usage") {
        read_usage(u, &mut reply);
    }
    if !reply.text.is_empty() {
        let _ = tx.send(reply.text.clone());
    }
    Ok(reply)
}
