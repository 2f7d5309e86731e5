//! A provider for tests: a local HTTP server speaking OpenAI's chat
//! completions (`POST …/oa/v1/chat/completions`) and Anthropic's Messages
//! API (`POST …/an/v1/messages`) the way the real services send them,
//! streaming included. It answers `echo: <last user message>` in pieces of
//! 4 bytes, counts prompt tokens by a rule of its own (so a test can tell
//! the provider's usage from a guess), wants the keys `sk-test-openai` /
//! `sk-ant-test`, and keeps every request it received. A prompt containing
//! "slow" streams at 300 ms a piece.

// Test support: a failed unwrap is how a test using it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the mock provider received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

pub struct Mock {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub seen: Log,
    pub handle: actix_web::dev::ServerHandle,
}

/// The answer: `echo: <last user message>` in pieces of 4 bytes.
fn pieces(body: &Value) -> Vec<String> {
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let text = format!("echo: {last}");
    text.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// The provider's own token count of the prompt (any deterministic rule:
/// the point is that FineTune Lab reports the provider's number).
fn prompt_tokens(body: &Value) -> usize {
    let system = body["system"].as_str().map_or(0, str::len);
    system
        + body["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|m| m["content"].as_str().map_or(0, str::len))
                    .sum()
            })
            .unwrap_or(0)
}

fn sse_body(
    events: Vec<String>,
    delay: Duration,
) -> impl futures::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    futures::stream::unfold(events.into_iter(), move |mut it| async move {
        let next = it.next()?;
        tokio::time::sleep(delay).await;
        Some((Ok(web::Bytes::from(next)), it))
    })
}

fn record(log: &Log, req: &HttpRequest, body: &Value) {
    log.lock().unwrap().push(Seen {
        path: req.path().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: body.clone(),
    });
}

fn delay_for(body: &Value) -> Duration {
    if body.to_string().contains("slow") {
        Duration::from_millis(300)
    } else {
        Duration::from_millis(5)
    }
}

async fn openai(log: web::Data<Log>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    let body = body.into_inner();
    record(&log, &req, &body);
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some("Bearer sk-test-openai")
    {
        return HttpResponse::Unauthorized().json(json!({"error": {
            "message": "Incorrect API key provided: sk-wr***ng.", "type": "invalid_request_error",
            "param": null, "code": "invalid_api_key"}}));
    }
    let parts = pieces(&body);
    let usage = json!({"prompt_tokens": prompt_tokens(&body), "completion_tokens": parts.len(),
                       "total_tokens": prompt_tokens(&body) + parts.len()});
    let model = "gpt-mock-2025-01-01";
    if body["stream"] != true {
        return HttpResponse::Ok().json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": parts.concat()},
                         "finish_reason": "stop"}],
            "usage": usage}));
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        parts
            .iter()
            .map(|p| chunk(json!({"content": p}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    if body["stream_options"]["include_usage"] == true {
        events.push(format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                   "model": model, "choices": [], "usage": usage})
        ));
    }
    events.push("data: [DONE]\n\n".into());
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(sse_body(events, delay_for(&body)))
}

async fn anthropic(log: web::Data<Log>, req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    let body = body.into_inner();
    record(&log, &req, &body);
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    if header("x-api-key") != Some("sk-ant-test") || header("anthropic-version").is_none() {
        return HttpResponse::Unauthorized().json(json!({"type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"}}));
    }
    let parts = pieces(&body);
    let model = "claude-mock-20250101";
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                "content": [], "model": model, "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": prompt_tokens(&body), "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    events.extend(parts.iter().map(|p| {
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        )
    }));
    events.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": parts.len()}}),
    ));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(sse_body(events, delay_for(&body)))
}

impl Mock {
    pub async fn start() -> Mock {
        let seen: Log = Arc::default();
        let data = web::Data::new(seen.clone());
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .route("/oa/v1/chat/completions", web::post().to(openai))
                .route("/an/v1/messages", web::post().to(anthropic))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Mock {
            base: format!("http://127.0.0.1:{port}"),
            seen,
            handle,
        }
    }

    /// The latest request whose path ends with `path_suffix`.
    pub fn last(&self, path_suffix: &str) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.path.ends_with(path_suffix))
            .cloned()
            .unwrap_or_else(|| panic!("nothing reached {path_suffix}"))
    }
}
