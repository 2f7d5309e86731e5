//! `POST /api/v1/suites/{id}/cases?format=csv|jsonl|lines&mode=append|replace`:
//! the body is the file (up to 20 MiB, past the GraphQL body limit). It is
//! checked whole first: a bad file is refused (422, or 413 for a limit)
//! with every bad row, and nothing is stored. An `Idempotency-Key` header
//! makes a retry land once; the same key with another file or other
//! parameters is refused (`idempotency_key_reused`, 422).

use crate::state::AppState;
use crate::training::http::caller;
use crate::training::rest::{RestError, RestResult, body_digest, read_body};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_domain::evaluation::suite::upload::MAX_FILE_BYTES;
use ftl_domain::evaluation::suite::{UploadFormat, UploadMode, UploadRejected};
use ftl_domain::ids::{SuiteId, command_id_from_key};
use ftl_domain::limits::MAX_IDEMPOTENCY_KEY_LEN;
use ftl_domain::project::Scope;
use ftl_effects::evaluation::suites::{self, Request, UploadError};
use ftl_projections::views::evaluation::suites as view;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/suites/{suite}/cases", web::post().to(upload_cases));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    format: String,
    mode: Option<String>,
}

async fn upload_cases(
    st: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<Uuid>,
    query: web::Query<UploadQuery>,
    payload: web::Payload,
) -> RestResult {
    let c = caller(&st, &req, Scope::Write).await?;
    let suite = path.into_inner();
    let format = UploadFormat::parse(&query.format).ok_or_else(|| {
        RestError::invalid(format!("format {:?}: csv, jsonl or lines", query.format))
    })?;
    let mode = match query.mode.as_deref().unwrap_or("append") {
        "append" => UploadMode::Append,
        "replace" => UploadMode::Replace,
        other => {
            return Err(RestError::invalid(format!(
                "mode {other:?}: append or replace"
            )));
        }
    };
    let key = idempotency_key(&req)?;
    // The file's own limit answers first, in its own words.
    let bytes = read_body(payload, MAX_FILE_BYTES).await?;
    let mut meta = c.metadata();
    let command_id = match key {
        Some(k) => {
            let mut signed = format!("{}\n{:?}\n", format.as_str(), mode).into_bytes();
            signed.extend_from_slice(&bytes);
            meta.request_digest = Some(body_digest(&signed));
            command_id_from_key(&format!("{}/uploadTestCases/{suite}", c.project_id), &k)
        }
        None => Uuid::new_v4(),
    };
    meta.command_id = Some(command_id);
    let request = Request {
        caller: &c,
        command_id,
        meta: &meta,
    };
    let up = match suites::upload(&st.effects, request, SuiteId(suite), format, mode, &bytes).await
    {
        Ok(u) => u,
        Err(UploadError::Rejected(r)) => return Ok(refusal(r)),
        Err(UploadError::Command(e)) => return Err(RestError::command(e)),
    };
    let row = view::suite(&st.effects.db, c.project_id.0, suite)
        .await
        .map_err(RestError::internal)?;
    Ok(HttpResponse::Created().json(json!({
        "suiteId": suite,
        "version": up.version,
        "rows": up.rows,
        "caseCount": row.map(|r| r.case_count),
    })))
}

fn refusal(r: UploadRejected) -> HttpResponse {
    let (status, code) = if r.is_limit() {
        (StatusCode::PAYLOAD_TOO_LARGE, "limit_exceeded")
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, "suite_file_invalid")
    };
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": format!("the file was refused with {} problem(s); nothing was stored", r.error_count),
        "errorCount": r.error_count,
        "rowErrors": r.errors,
    }))
}

fn idempotency_key(req: &HttpRequest) -> RestResult<Option<String>> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .map_err(|_| RestError::invalid("Idempotency-Key must be visible ASCII"))?;
    if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(RestError::invalid(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes"
        )));
    }
    Ok(Some(k.to_string()))
}
