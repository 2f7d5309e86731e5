//! OpenAI-compatible serving of the project's models: `GET /v1/models` and
//! `POST /v1/chat/completions` (plain and streamed as server-sent events),
//! so any OpenAI client talks to a model trained here with a project key as
//! its API key. Every exchange is recorded as a `prediction.recorded` event:
//! the messages, the response, latency and time to first token, and token
//! counts from the model's own tokenizer.

use crate::auth::{self, Caller};
use crate::predictions::Recorder;
use crate::state::AppState;
use crate::training::models::{self, Prompt};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use ftl_domain::PredictionId;
use ftl_domain::prediction::ChatMessage;
use ftl_domain::project::Scope;
use ftl_trainer::GenerateParams;
use ftl_trainer::tokenizer::Role;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;
use uuid::Uuid;

/// Longest completion a request may ask for, and most messages it may send.
const MAX_TOKENS: usize = 4096;
const MAX_MESSAGES: usize = 256;

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
    match auth::authenticate(&st.db, key.as_deref()).await {
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
    let rows = ftl_projections::views::training::models(&st.db, c.project_id.0, None, 1000)
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
    let m = ftl_projections::views::training::model(&st.db, c.project_id.0, id)
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

fn role(name: &str) -> Option<Role> {
    Some(match name {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => return None,
    })
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
    prompt: Prompt,
    params: GenerateParams,
    stream: bool,
    include_usage: bool,
}

fn check(request: ChatRequest) -> Result<Asked, OpenAiError> {
    let model = Uuid::parse_str(&request.model).map_err(|_| model_not_found(&request.model))?;
    if request.messages.is_empty() || request.messages.len() > MAX_MESSAGES {
        return Err(OpenAiError::invalid(
            format!("messages must hold 1 to {MAX_MESSAGES} messages"),
            Some("messages"),
        ));
    }
    if request.n.is_some_and(|n| n != 1) {
        return Err(OpenAiError::invalid("only n = 1 is supported", Some("n")));
    }
    let max_tokens = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(256);
    if max_tokens == 0 || max_tokens > MAX_TOKENS {
        return Err(OpenAiError::invalid(
            format!("max_tokens must be between 1 and {MAX_TOKENS}"),
            Some("max_tokens"),
        ));
    }
    let temperature = request.temperature.unwrap_or(1.0);
    let top_p = request.top_p.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(OpenAiError::invalid(
            "temperature must be between 0 and 2",
            Some("temperature"),
        ));
    }
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(OpenAiError::invalid(
            "top_p must be in (0, 1]",
            Some("top_p"),
        ));
    }
    let stop = match request.stop {
        None => vec![],
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > 4 || stop.iter().any(|s| s.is_empty()) {
        return Err(OpenAiError::invalid(
            "stop: up to 4 non-empty sequences",
            Some("stop"),
        ));
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    let mut turns = Vec::with_capacity(request.messages.len());
    for m in request.messages {
        let r = role(&m.role).ok_or_else(|| {
            OpenAiError::invalid(format!("unknown role {:?}", m.role), Some("messages"))
        })?;
        let text = text_of(m.content)?;
        turns.push((r, text.clone()));
        messages.push(ChatMessage {
            role: m.role,
            content: text,
        });
    }
    Ok(Asked {
        model,
        messages,
        prompt: Prompt::Chat(turns),
        params: GenerateParams {
            max_tokens,
            temperature,
            top_p,
            stop,
            seed: request.seed.unwrap_or(0),
        },
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
    let loaded = models::load(&st, c.project_id, asked.model)
        .await
        .map_err(OpenAiError::internal)?
        .ok_or_else(|| model_not_found(&asked.model.to_string()))?;
    let prediction = PredictionId(Uuid::new_v4());
    let id = format!("chatcmpl-{}", prediction.0.simple());
    let created = started_ms / 1000;
    let model_id = asked.model.to_string();
    let tokens = asked.prompt.tokens();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let params = asked.params.clone();
    let job = tokio::task::spawn_blocking(move || {
        let mut first: Option<f64> = None;
        // A streaming client that goes away (its receiver dropped) stops
        // the generation; a plain request's receiver lives until the end.
        let out = loaded.generate_until(
            &tokens,
            &params,
            || tx.is_closed(),
            |piece| {
                if !piece.is_empty() {
                    first.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
                    let _ = tx.send(piece.to_string());
                }
            },
        );
        (loaded.row, out, first)
    });
    let record = Recorder {
        st: st.get_ref().clone(),
        caller: c,
        prediction,
        messages: asked.messages,
        params: asked.params,
        started,
        started_ms,
        source: "openai_api",
    };
    if !asked.stream {
        let (row, out, ttft) = job.await.map_err(OpenAiError::internal)?;
        let out = out.map_err(OpenAiError::internal)?;
        let finish = out.finish_reason.as_str();
        record
            .record(
                &row,
                &out.text,
                finish,
                ttft,
                out.prompt_tokens,
                out.completion_tokens,
            )
            .await;
        return Ok(HttpResponse::Ok().json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": out.text},
                         "logprobs": null, "finish_reason": finish}],
            "usage": usage(out.prompt_tokens, out.completion_tokens),
        })));
    }
    let chunk = move |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model_id,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let include_usage = asked.include_usage;
    let stream = async_stream_chunks(chunk, rx, job, record, include_usage);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(stream))
}

fn usage(prompt: usize, completion: usize) -> Value {
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn sse(v: &Value) -> web::Bytes {
    web::Bytes::from(format!("data: {v}\n\n"))
}

type Job = tokio::task::JoinHandle<(
    ftl_projections::views::training::ModelRow,
    Result<ftl_trainer::Generation, ftl_trainer::TrainError>,
    Option<f64>,
)>;

/// The SSE body: a role chunk, a chunk per piece as it is generated, a
/// final chunk with the finish reason (and usage when asked), `[DONE]`;
/// the prediction is recorded once the generation ends.
fn async_stream_chunks(
    chunk: impl Fn(Value, Value) -> Value + 'static,
    rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    job: Job,
    record: Recorder,
    include_usage: bool,
) -> impl futures::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    use futures::StreamExt;
    // The outcome is recorded by a task of its own: a client that goes away
    // drops this stream, not the record (its exchange ends `cancelled`).
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let outcome = match job.await {
            Ok((row, Ok(g), ttft)) => {
                record
                    .record(
                        &row,
                        &g.text,
                        g.finish_reason.as_str(),
                        ttft,
                        g.prompt_tokens,
                        g.completion_tokens,
                    )
                    .await;
                Ok((
                    g.finish_reason.as_str(),
                    g.prompt_tokens,
                    g.completion_tokens,
                ))
            }
            Ok((_, Err(e), _)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let _ = done_tx.send(outcome);
    });
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
        tokio_stream::wrappers::UnboundedReceiverStream::new(rx)
            .map(move |piece| sse(&chunk(json!({"content": piece}), Value::Null)))
    };
    let tail = futures::stream::once(async move {
        let mut out = Vec::new();
        match done_rx.await {
            Ok(Ok((finish, prompt, completion))) => {
                out.push(sse(&chunk(json!({}), json!(finish))));
                if include_usage {
                    // OpenAI's last chunk: no choices, the usage.
                    let mut last = chunk(json!({}), Value::Null);
                    last["choices"] = json!([]);
                    last["usage"] = usage(prompt, completion);
                    out.push(sse(&last));
                }
            }
            Ok(Err(e)) => out.push(sse(
                &json!({"error": {"message": e, "type": "server_error"}}),
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
