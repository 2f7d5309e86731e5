//! OpenAI-compatible serving of the project's models: `GET /v1/models` and
//! `POST /v1/chat/completions` (plain and streamed as server-sent events),
//! so any OpenAI client talks to any model of the project — trained here or
//! an external endpoint (OpenAI-compatible or Anthropic) — with a project
//! key as its API key. Every exchange is recorded as a `prediction.recorded`
//! event: the messages, the response, latency and time to first token, and
//! token counts (the model's own tokenizer, or the provider's usage).

use crate::auth::{self, Caller};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use ftl_domain::PredictionId;
use ftl_domain::prediction::ChatMessage;
use ftl_domain::project::Scope;
use ftl_effects::models::{self, ChatError};
use ftl_effects::predictions::Recorder;
use ftl_trainer::GenerateParams;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/models", web::get().to(list_models))
        .route("/v1/models/{id}", web::get().to(get_model))
        .route("/v1/chat/completions", web::post().to(chat_completions));
}

/// An error the way OpenAI clients read it.
#[derive(Debug)]
pub struct OpenAiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl OpenAiError {
    fn invalid(message: impl Into<String>, param: Option<&'static str>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "invalid_request_error",
            message: message.into(),
            param,
            code: None,
        }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        let id = Uuid::new_v4();
        tracing::error!(error_id = %id, error = %e, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "server_error",
            message: format!("internal error (id {id})"),
            param: None,
            code: None,
        }
    }
}

impl std::fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl actix_web::ResponseError for OpenAiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({"error": {
            "message": self.message, "type": self.kind, "param": self.param, "code": self.code,
        }}))
    }
}

async fn caller(st: &AppState, req: &HttpRequest, needed: Scope) -> Result<Caller, OpenAiError> {
    let key = auth::request_key(req.headers(), false);
    match st.keys.authenticate(&st.effects, key.as_deref()).await {
        Ok(c) if c.scope.allows(needed) => Ok(c),
        Ok(c) => Err(OpenAiError {
            status: StatusCode::FORBIDDEN,
            kind: "permission_error",
            message: format!(
                "this key's scope is {}; {} is needed",
                c.scope.as_str(),
                needed.as_str()
            ),
            param: None,
            code: None,
        }),
        Err(auth::AuthError::Db(e)) => Err(OpenAiError::internal(e)),
        Err(e) => Err(OpenAiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "invalid_request_error",
            message: e.to_string(),
            param: None,
            code: Some("invalid_api_key"),
        }),
    }
}

async fn list_models(
    st: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, OpenAiError> {
    let c = caller(&st, &req, Scope::Read).await?;
    let rows = ftl_projections::views::training::models(&st.effects.db, c.project_id.0, None, 1000)
        .await
        .map_err(OpenAiError::internal)?;
    let data: Vec<Value> = rows
        .iter()
        .map(|m| model_json(m, &c.project_name))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

fn model_json(m: &ftl_projections::views::training::ModelRow, owner: &str) -> Value {
    json!({"id": m.model_id.to_string(), "object": "model",
           "created": m.created_at.timestamp(), "owned_by": owner})
}

fn model_not_found(name: &str) -> OpenAiError {
    OpenAiError {
        status: StatusCode::NOT_FOUND,
        kind: "invalid_request_error",
        message: format!("The model `{name}` does not exist (GET /v1/models lists them)"),
        param: Some("model"),
        code: Some("model_not_found"),
    }
}

async fn get_model(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, OpenAiError> {
    let c = caller(&st, &req, Scope::Read).await?;
    let id = Uuid::parse_str(&path).map_err(|_| model_not_found(&path))?;
    let m = ftl_projections::views::training::model(&st.effects.db, c.project_id.0, id)
        .await
        .map_err(OpenAiError::internal)?
        .ok_or_else(|| model_not_found(&path))?;
    Ok(HttpResponse::Ok().json(model_json(&m, &c.project_name)))
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    model: String,
    messages: Vec<RequestMessage>,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct RequestMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

/// A message's content: a string, or parts of which only text is supported.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Value>),
}

fn text_of(content: Option<Content>) -> Result<String, OpenAiError> {
    match content {
        None => Ok(String::new()),
        Some(Content::Text(t)) => Ok(t),
        Some(Content::Parts(parts)) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t.to_string()),
                _ => Err(OpenAiError::invalid(
                    "only text content parts are supported by this model",
                    Some("messages"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join("")),
    }
}

/// What one request asks for, checked.
struct Asked {
    model: Uuid,
    messages: Vec<ChatMessage>,
    params: GenerateParams,
    stream: bool,
    include_usage: bool,
}

fn check(request: ChatRequest) -> Result<Asked, OpenAiError> {
    let model = Uuid::parse_str(&request.model).map_err(|_| model_not_found(&request.model))?;
    if request.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::invalid("only n = 1 is supported", Some("n")));
    }
    let stop = match request.stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    let params = GenerateParams {
        max_tokens: request
            .max_completion_tokens
            .or(request.max_tokens)
            .unwrap_or(256),
        temperature: request.temperature.unwrap_or(1.0),
        top_p: request.top_p.unwrap_or(1.0),
        stop,
        seed: request.seed.unwrap_or(0),
    };
    let messages = request
        .messages
        .into_iter()
        .map(|m| {
            Ok(ChatMessage {
                role: m.role,
                content: text_of(m.content)?,
            })
        })
        .collect::<Result<Vec<_>, OpenAiError>>()?;
    models::check(&messages, &params)
        .map_err(|r| OpenAiError::invalid(r.message, Some(r.field)))?;
    Ok(Asked {
        model,
        messages,
        params,
        stream: request.stream,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
    })
}

async fn chat_completions(
    st: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OpenAiError> {
    let started = Instant::now();
    let started_ms = Utc::now().timestamp_millis();
    let c = caller(&st, &req, Scope::Write).await?;
    let body = crate::body::read_limited(payload, st.config.limits.body_bytes)
        .await
        .map_err(|e| OpenAiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "invalid_request_error",
            message: e.to_string(),
            param: None,
            code: None,
        })?;
    let request: ChatRequest = serde_json::from_slice(&body)
        .map_err(|e| OpenAiError::invalid(format!("malformed request: {e}"), None))?;
    let asked = check(request)?;
    let model = models::open(&st.effects, c.project_id, asked.model)
        .await
        .map_err(chat_error)?
        .ok_or_else(|| model_not_found(&asked.model.to_string()))?;
    let row = model.row.clone();
    let prediction = PredictionId(Uuid::new_v4());
    let id = format!("chatcmpl-{}", prediction.0.simple());
    let created = started_ms / 1000;
    let model_id = asked.model.to_string();
    let running = model.start(asked.messages.clone(), asked.params.clone(), started);
    let record = Recorder {
        st: st.get_ref().effects.clone(),
        caller: c,
        prediction,
        messages: asked.messages,
        params: asked.params,
        started,
        started_ms,
        source: "openai_api",
    };
    if !asked.stream {
        // The receiver lives until the end: a plain request is not cancelled.
        let _pieces = running.pieces;
        let reply = running
            .done
            .await
            .map_err(OpenAiError::internal)?
            .map_err(chat_error)?;
        record.record(&row, &reply).await;
        return Ok(HttpResponse::Ok().json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                         "logprobs": null, "finish_reason": reply.finish_reason}],
            "usage": usage(reply.prompt_tokens, reply.completion_tokens),
        })));
    }
    let chunk = move |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model_id,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let include_usage = asked.include_usage;
    let stream = async_stream_chunks(chunk, running, row, record, include_usage);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(stream))
}

/// A chat failure the way OpenAI clients read it.
fn chat_error(e: ChatError) -> OpenAiError {
    let (status, kind) = match &e {
        ChatError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        ChatError::Provider { .. } | ChatError::Stream(_) | ChatError::Unreachable(_) => {
            (StatusCode::BAD_GATEWAY, "upstream_error")
        }
        ChatError::Internal(_) => return OpenAiError::internal(e),
    };
    OpenAiError {
        status,
        kind,
        message: e.to_string(),
        param: None,
        code: Some(e.code()),
    }
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn sse(v: &Value) -> web::Bytes {
    web::Bytes::from(format!("data: {v}\n\n"))
}

/// The SSE body: a role chunk, a chunk per piece as it is generated, a
/// final chunk with the finish reason (and usage when asked), `[DONE]`;
/// the prediction is recorded once the generation ends.
fn async_stream_chunks(
    chunk: impl Fn(Value, Value) -> Value + 'static,
    running: models::Running,
    row: ftl_projections::views::training::ModelRow,
    record: Recorder,
    include_usage: bool,
) -> impl futures::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    use futures::StreamExt;
    let done_rx = record.record_when_done(row, running.done);
    let head = futures::stream::once({
        let first = sse(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ));
        async move { first }
    });
    let chunk = std::rc::Rc::new(chunk);
    let pieces = {
        let chunk = chunk.clone();
        tokio_stream::wrappers::UnboundedReceiverStream::new(running.pieces)
            .map(move |piece| sse(&chunk(json!({"content": piece}), Value::Null)))
    };
    let tail = futures::stream::once(async move {
        let mut out = Vec::new();
        match done_rx.await {
            Ok(Ok((reply, _))) => {
                out.push(sse(&chunk(json!({}), json!(reply.finish_reason))));
                if include_usage {
                    // OpenAI's last chunk: no choices, the usage.
                    let mut last = chunk(json!({}), Value::Null);
                    last["choices"] = json!([]);
                    last["usage"] = usage(reply.prompt_tokens, reply.completion_tokens);
                    out.push(sse(&last));
                }
            }
            Ok(Err(e)) => out.push(sse(
                &json!({"error": {"message": e.to_string(), "type": "server_error", "code": e.code()}}),
            )),
            Err(e) => out.push(sse(
                &json!({"error": {"message": e.to_string(), "type": "server_error"}}),
            )),
        }
        out.push(web::Bytes::from_static(b"data: [DONE]\n\n"));
        futures::stream::iter(out)
    })
    .flatten();
    head.chain(pieces).chain(tail).map(Ok)
}
