//! Anthropic's Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version`, system prompt as a top-level field, streamed as
//! typed server-sent events (`message_start` carries the input tokens,
//! `content_block_delta` the text, `message_delta` the stop reason and
//! output tokens).

use super::{ChatError, Endpoint, Reply, join, provider_error, send_error};
use eventsource_stream::Eventsource;
use ftl_domain::prediction::ChatMessage;
use ftl_trainer::GenerateParams;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Instant;
use tokio::sync::mpsc;

pub const API_VERSION: &str = "2023-06-01";

/// `/v1/messages` under the base (which may or may not end in `/v1`).
pub fn messages_url(base: &str) -> String {
    if base.trim_end_matches('/').ends_with("/v1") {
        join(base, "messages")
    } else {
        join(base, "v1/messages")
    }
}

pub fn request_body(
    model: &str,
    messages: &[ChatMessage],
    p: &GenerateParams,
) -> Result<Value, ChatError> {
    let mut system = Vec::new();
    let mut turns: Vec<(String, String)> = Vec::new();
    for m in messages {
        let role = match m.role.as_str() {
            "system" | "developer" => {
                system.push(m.content.clone());
                continue;
            }
            "user" | "assistant" => m.role.clone(),
            other => {
                return Err(ChatError::Invalid(format!(
                    "role {other:?} is not supported by Anthropic models"
                )));
            }
        };
        // Anthropic alternates roles: consecutive turns of one role are joined.
        match turns.last_mut() {
            Some((r, text)) if *r == role => {
                text.push_str("\n\n");
                text.push_str(&m.content);
            }
            _ => turns.push((role, m.content.clone())),
        }
    }
    if turns.is_empty() {
        return Err(ChatError::Invalid(
            "an Anthropic chat needs a user message".into(),
        ));
    }
    if p.temperature > 1.0 {
        return Err(ChatError::Invalid(
            "temperature must be at most 1 for Anthropic models".into(),
        ));
    }
    let mut body = json!({
        "model": model,
        "max_tokens": p.max_tokens,
        "messages": turns.iter().map(|(r, c)| json!({"role": r, "content": c})).collect::<Vec<_>>(),
        "temperature": p.temperature,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    // Recent models refuse temperature and top_p together: top_p only when set.
    if p.top_p < 1.0 {
        body["top_p"] = json!(p.top_p);
    }
    if !p.stop.is_empty() {
        body["stop_sequences"] = json!(p.stop);
    }
    Ok(body)
}

/// Anthropic's stop reasons in OpenAI's words.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    }
}

pub async fn chat(
    ep: &Endpoint,
    messages: &[ChatMessage],
    params: &GenerateParams,
    started: Instant,
    tx: &mpsc::UnboundedSender<String>,
) -> Result<Reply, ChatError> {
    let body = request_body(&ep.remote_model, messages, params)?;
    let mut req = ep
        .client
        .post(messages_url(&ep.base_url))
        .header("anthropic-version", API_VERSION)
        .json(&body);
    if let Some(key) = &ep.api_key {
        req = req.header("x-api-key", key);
    }
    let resp = req.send().await.map_err(send_error)?;
    if !resp.status().is_success() {
        return Err(provider_error(resp).await);
    }
    let mut events = resp.bytes_stream().eventsource();
    let mut reply = Reply::empty(&ep.remote_model);
    let mut stopped = false;
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|e| ChatError::Stream(e.to_string()))?;
        let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::Null);
        match data["type"].as_str().unwrap_or(ev.event.as_str()) {
            "message_start" => {
                let m = &data["message"];
                if let Some(v) = m["model"].as_str() {
                    reply.model_version = v.to_string();
                }
                if let Some(n) = m["usage"]["input_tokens"].as_u64() {
                    reply.prompt_tokens = n;
                    reply.usage_source = "provider";
                }
                if let Some(n) = m["usage"]["output_tokens"].as_u64() {
                    reply.completion_tokens = n;
                }
            }
            "content_block_delta" => {
                if let Some(piece) = data["delta"]["text"].as_str().filter(|p| !p.is_empty())
                    && !reply.take_piece(piece, started, tx)?
                {
                    return Ok(reply);
                }
            }
            "message_delta" => {
                if let Some(r) = data["delta"]["stop_reason"].as_str() {
                    reply.finish_reason = finish_reason(r).to_string();
                }
                // Cumulative: the final count.
                if let Some(n) = data["usage"]["output_tokens"].as_u64() {
                    reply.completion_tokens = n;
                }
            }
            "message_stop" => {
                stopped = true;
                break;
            }
            "error" => {
                let message = data["error"]["message"]
                    .as_str()
                    .unwrap_or("error")
                    .to_string();
                return Err(ChatError::Stream(message));
            }
            _ => {} // ping, content_block_start/stop, future event types
        }
    }
    if !stopped {
        return Err(ChatError::Stream(
            "the stream ended without message_stop".into(),
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn requests_follow_the_messages_api() {
        let p = GenerateParams {
            max_tokens: 64,
            temperature: 0.5,
            top_p: 1.0,
            stop: vec!["\n\n".into()],
            seed: 3,
        };
        let body = request_body(
            "claude-x",
            &[
                m("system", "Be brief."),
                m("user", "a"),
                m("user", "b"),
                m("assistant", "c"),
                m("user", "d"),
            ],
            &p,
        )
        .unwrap();
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["stop_sequences"], json!(["\n\n"]));
        assert_eq!(body.get("top_p"), None, "top_p only when set");
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "a\n\nb"}, {"role": "assistant", "content": "c"}, {"role": "user", "content": "d"}])
        );
        assert!(request_body("x", &[m("tool", "t")], &p).is_err());
        assert!(
            request_body(
                "x",
                &[m("user", "t")],
                &GenerateParams {
                    temperature: 1.5,
                    ..p.clone()
                }
            )
            .is_err()
        );
        assert_eq!(
            messages_url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(messages_url("http://h:1/v1/"), "http://h:1/v1/messages");
        assert_eq!(finish_reason("end_turn"), "stop");
        assert_eq!(finish_reason("max_tokens"), "length");
    }
}
