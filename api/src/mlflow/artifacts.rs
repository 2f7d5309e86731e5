//! MLflow artifacts (`specs/mlflow-api.md` §6): run-scoped files under
//! `/api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>`,
//! kept in the artifact store (`object_store`) under `<project>/<run>/<path>`.
//! Every upload and delete also appends an event to the run's stream.

use super::wire::{ErrorCode, MlflowError};
use super::{MAX_BODY, caller, command_error, message, ok_empty};
use crate::auth::Caller;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use ftl_commands::handler::handle;
use ftl_domain::ids::JobId;
use ftl_domain::job::{JobCommand, JobDecider, in_project, run_id_text};
use ftl_domain::project::Scope;
use ftl_effects::blobs::{BlobError, BlobKey as StorePath};
use ftl_projections::views::tracking::RunRow;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

const PREFIX: &str = "/api/2.0/mlflow-artifacts/artifacts";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PREFIX, web::get().to(list))
        .route(&format!("{PREFIX}/{{path:.*}}"), web::put().to(upload))
        .route(&format!("{PREFIX}/{{path:.*}}"), web::get().to(download))
        .route(&format!("{PREFIX}/{{path:.*}}"), web::delete().to(remove))
        .route(
            "/api/2.0/mlflow-artifacts/mpu/{tail:.*}",
            web::post().to(multipart),
        )
        .route(
            "/api/2.0/mlflow-artifacts/presigned/{tail:.*}",
            web::get().to(presigned),
        )
        .route(
            "/api/2.0/mlflow-artifacts/{tail:.*}",
            web::route().to(super::not_served),
        );
}

/// A run-scoped artifact path, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactPath {
    pub experiment_id: String,
    pub run_id: String,
    /// Inside the run's artifact root; empty for the root itself.
    pub rel: String,
}

fn bad_path(path: &str) -> MlflowError {
    MlflowError::invalid(format!("Invalid path: '{path}'"))
}

/// Percent-decodes a raw URL path once.
pub fn decode_once(raw: &str) -> Result<String, MlflowError> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad_path(raw))
}

/// MLflow's path-safety rules on a decoded path: no empty, `.` or `..`
/// segments, no leading `/`, no backslash, no NUL. A trailing `/` is dropped.
pub fn check_relative(decoded: &str) -> Result<String, MlflowError> {
    if decoded.starts_with('/') || decoded.contains('\\') || decoded.contains('\0') {
        return Err(bad_path(decoded));
    }
    let trimmed = decoded.strip_suffix('/').unwrap_or(decoded);
    if !trimmed.is_empty()
        && trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(bad_path(decoded));
    }
    Ok(trimmed.to_string())
}

/// The part of the request path after `prefix/`, still percent-encoded.
fn raw_tail<'a>(req: &'a HttpRequest, prefix: &str) -> &'a str {
    req.uri()
        .path()
        .strip_prefix(prefix)
        .map(|t| t.trim_start_matches('/'))
        .unwrap_or("")
}

/// `<experiment>/<run>/artifacts[/<path>]`; any other shape is not served.
pub fn parse_run_path(decoded: &str) -> Result<ArtifactPath, MlflowError> {
    let path = check_relative(decoded)?;
    let mut parts = path.splitn(4, '/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(e), Some(r), Some("artifacts"), rest) if !e.is_empty() && !r.is_empty() => {
            Ok(ArtifactPath {
                experiment_id: e.to_string(),
                run_id: r.to_string(),
                rel: rest.unwrap_or("").to_string(),
            })
        }
        _ => Err(MlflowError::new(
            ErrorCode::ResourceDoesNotExist,
            format!(
                "Artifact path '{path}' does not name a run's artifacts (<experiment>/<run>/artifacts/…)"
            ),
        )),
    }
}

fn store_path(c: &Caller, run: &RunRow, rel: &str) -> StorePath {
    let base = format!("{}/{}", c.project_id.0, run_id_text(JobId(run.job_id)));
    if rel.is_empty() {
        StorePath::from(base)
    } else {
        StorePath::from(format!("{base}/{rel}"))
    }
}

fn object_error(e: BlobError, what: &str) -> MlflowError {
    match e {
        BlobError::NotFound => MlflowError::new(
            ErrorCode::ResourceDoesNotExist,
            format!("No such artifact: '{what}'"),
        ),
        BlobError::Denied => MlflowError::new(
            ErrorCode::PermissionDenied,
            format!(
                "Artifact path '{what}' passes through a symbolic link, which the artifact store does not follow"
            ),
        ),
        other => {
            tracing::error!(error = %other, "artifact store");
            MlflowError::new(
                ErrorCode::TemporarilyUnavailable,
                "the artifact store is unavailable",
            )
        }
    }
}

/// The run behind a path, in the caller's project and the named experiment.
async fn run_of(state: &AppState, c: &Caller, p: &ArtifactPath) -> Result<RunRow, MlflowError> {
    let run = super::runs::read_run(state, c, &p.run_id).await?;
    if run.experiment_id.to_string() != p.experiment_id {
        return Err(MlflowError::new(
            ErrorCode::ResourceDoesNotExist,
            format!("Run with id={} not found", p.run_id),
        ));
    }
    Ok(run)
}

async fn run_command(
    state: &AppState,
    c: &Caller,
    run: &RunRow,
    cmd: JobCommand,
) -> Result<(), MlflowError> {
    let job = JobId(run.job_id);
    handle::<JobDecider>(
        state.effects.store.as_ref(),
        &job.stream(),
        &cmd,
        Uuid::new_v4(),
        &c.metadata(),
        in_project(c.project_id),
    )
    .await
    .map_err(|e| command_error(e, || format!("Run with id={} not found", run_id_text(job))))?;
    Ok(())
}

async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let p = parse_run_path(&decode_once(raw_tail(&req, PREFIX))?)?;
    if p.rel.is_empty() {
        return Err(bad_path(&p.rel));
    }
    let run = run_of(&state, &c, &p).await?;
    if run.deleted {
        return Err(MlflowError::invalid(ftl_domain::job::deleted_run_message(
            JobId(run.job_id),
        )));
    }
    let location = store_path(&c, &run, &p.rel);
    let limit = state.config.artifacts.max_file_bytes;
    let mut writer = state
        .effects
        .artifacts
        .writer(&location)
        .await
        .map_err(|e| object_error(e, &p.rel))?;
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                writer.abort().await;
                return Err(MlflowError::new(
                    ErrorCode::BadRequest,
                    format!("upload interrupted: {e}"),
                ));
            }
        };
        if writer.size() + chunk.len() as u64 > limit {
            writer.abort().await;
            return Err(MlflowError::invalid(format!(
                "Artifact '{}' exceeds the {limit}-byte limit per file",
                p.rel
            )));
        }
        writer
            .write(&chunk)
            .await
            .map_err(|e| object_error(e, &p.rel))?;
    }
    let written = writer.finish().await.map_err(|e| object_error(e, &p.rel))?;
    let content_type = mime_guess::from_path(&p.rel)
        .first_or_octet_stream()
        .to_string();
    run_command(
        &state,
        &c,
        &run,
        JobCommand::StoreArtifact {
            path: p.rel.clone(),
            size: written.size,
            sha256: written.sha256,
            content_type,
        },
    )
    .await?;
    Ok(ok_empty())
}

/// What a `Range` header asks for (RFC 9110 §14).
#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeAsk {
    /// No header, another unit, or several ranges (served whole: a server may
    /// ignore a Range it does not support).
    Whole,
    /// `bytes=a-b` (`b` inclusive, `None` for `a-`).
    From(u64, Option<u64>),
    /// `bytes=-n`: the last `n` bytes.
    Last(u64),
    /// A `bytes` range that is malformed (`bytes=9-1`, `bytes=x`).
    Invalid,
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range).
fn parse_range(h: &str) -> RangeAsk {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::Invalid;
    };
    let num = |t: &str| {
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => num(n).map_or(RangeAsk::Invalid, RangeAsk::Last),
        (a, "") => num(a).map_or(RangeAsk::Invalid, |a| RangeAsk::From(a, None)),
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => RangeAsk::From(a, Some(b)),
            _ => RangeAsk::Invalid,
        },
    }
}

/// The bytes `ask` names in an object of `size` bytes, or `None` when it
/// cannot be satisfied (416).
fn resolve_range(ask: RangeAsk, size: u64) -> Option<std::ops::Range<u64>> {
    match ask {
        RangeAsk::Whole => Some(0..size),
        RangeAsk::From(a, b) if a < size => {
            Some(a..b.map_or(size, |b| b.saturating_add(1).min(size)))
        }
        RangeAsk::Last(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
        RangeAsk::From(..) | RangeAsk::Last(_) | RangeAsk::Invalid => None,
    }
}

async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let p = parse_run_path(&decode_once(raw_tail(&req, PREFIX))?)?;
    let run = run_of(&state, &c, &p).await?;
    let location = store_path(&c, &run, &p.rel);
    let ask = req
        .headers()
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .map_or(RangeAsk::Whole, parse_range);
    let ranged = ask != RangeAsk::Whole;
    // A ranged read learns the size first, so an unsatisfiable range is
    // answered 416 on every backend instead of whatever error it raises.
    let range = if ranged {
        let meta = state
            .effects
            .artifacts
            .head(&location)
            .await
            .map_err(|e| object_error(e, &p.rel))?;
        match resolve_range(ask, meta.size) {
            Some(r) => Some(r),
            None => {
                return Ok(HttpResponse::RangeNotSatisfiable()
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{}", meta.size)))
                    .json(json!({
                        "error_code": ErrorCode::InvalidParameterValue.as_str(),
                        "message": format!(
                            "Range '{}' cannot be satisfied: '{}' is {} bytes",
                            req.headers().get(header::RANGE).and_then(|h| h.to_str().ok()).unwrap_or(""),
                            p.rel,
                            meta.size
                        ),
                    })));
            }
        }
    } else {
        None
    };
    let got = state
        .effects
        .artifacts
        .read(&location, range)
        .await
        .map_err(|e| object_error(e, &p.rel))?;
    let total = got.size;
    let r = got.range.clone();
    let name = p
        .rel
        .rsplit('/')
        .next()
        .unwrap_or("artifact")
        .replace('"', "");
    let mut resp = if ranged {
        let mut b = HttpResponse::PartialContent();
        b.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{total}", r.start, r.end.saturating_sub(1)),
        ));
        b
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((
        header::CONTENT_TYPE,
        mime_guess::from_path(&p.rel)
            .first_or_octet_stream()
            .to_string(),
    ))
    .insert_header((
        header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    ))
    .insert_header((header::ACCEPT_RANGES, "bytes"))
    .no_chunking(r.end - r.start);
    let stream = got.bytes.map_err(|e| {
        tracing::error!(error = %e, "artifact read");
        actix_web::error::ErrorInternalServerError("artifact read failed")
    });
    Ok(resp.streaming(stream))
}

async fn remove(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Write).await?;
    let p = parse_run_path(&decode_once(raw_tail(&req, PREFIX))?)?;
    if p.rel.is_empty() {
        return Err(bad_path(&p.rel));
    }
    let run = run_of(&state, &c, &p).await?;
    let location = store_path(&c, &run, &p.rel);
    // A file, or every file under a folder.
    state
        .effects
        .artifacts
        .delete_all(&location)
        .await
        .map_err(|e| object_error(e, &p.rel))?;
    run_command(&state, &c, &run, JobCommand::DeleteArtifact { path: p.rel }).await?;
    Ok(ok_empty())
}

/// Immediate children of a folder: basenames, folders first as the store
/// lists them; a path naming a file lists nothing.
async fn children(
    state: &AppState,
    c: &Caller,
    run: &RunRow,
    rel: &str,
) -> Result<Vec<serde_json::Value>, MlflowError> {
    let location = store_path(c, run, rel);
    let listing = state
        .effects
        .artifacts
        .list_dir(&location)
        .await
        .map_err(|e| object_error(e, rel))?;
    let folders = listing
        .folders
        .iter()
        .map(|name| json!({"path": name, "is_dir": true}));
    let files = listing
        .files
        .iter()
        .map(|(name, size)| json!({"path": name, "is_dir": false, "file_size": size}));
    Ok(folders.chain(files).collect())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    path: Option<String>,
}

/// `GET /api/2.0/mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts[/dir]`.
async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let q: ListQuery = message(&req, payload, MAX_BODY, &[]).await?;
    let raw = q.path.unwrap_or_default();
    // The query value was decoded once by the query parser.
    let p = parse_run_path(&raw)?;
    let run = run_of(&state, &c, &p).await?;
    let files = children(&state, &c, &run, &p.rel).await?;
    Ok(HttpResponse::Ok().json(if files.is_empty() {
        json!({})
    } else {
        json!({ "files": files })
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RunList {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
    page_token: Option<String>,
}

/// `GET /api/2.0/mlflow/artifacts/list?run_id=…&path=…` (tracking API).
pub async fn list_for_run(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, MlflowError> {
    let c = caller(&state, &req, Scope::Read).await?;
    let q: RunList = message(&req, payload, MAX_BODY, &[]).await?;
    let run_id = super::wire::run_id(q.run_id.as_deref(), q.run_uuid.as_deref())?;
    super::decode_page_token(q.page_token.as_deref())?;
    let run = super::runs::read_run(&state, &c, &run_id).await?;
    let rel = match q.path.as_deref() {
        None | Some("") => String::new(),
        Some(p) => check_relative(p)?,
    };
    let files: Vec<serde_json::Value> = children(&state, &c, &run, &rel)
        .await?
        .into_iter()
        .map(|mut f| {
            if let Some(name) = f["path"].as_str() {
                let full = if rel.is_empty() {
                    name.to_string()
                } else {
                    format!("{rel}/{name}")
                };
                f["path"] = json!(full);
            }
            f
        })
        .collect();
    let id = run_id_text(JobId(run.job_id));
    Ok(HttpResponse::Ok().json(json!({
        "root_uri": format!("mlflow-artifacts:/{}/{id}/artifacts", run.experiment_id),
        "files": files,
    })))
}

async fn multipart(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req, Scope::Write).await?;
    Err(MlflowError::new(
        ErrorCode::NotImplemented,
        "Multipart upload is not supported for the current artifact repository",
    ))
}

async fn presigned(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, MlflowError> {
    caller(&state, &req, Scope::Read).await?;
    Err(MlflowError::new(
        ErrorCode::NotImplemented,
        "Presigned download is not supported for the current artifact repository",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_paths_parse_and_unsafe_paths_are_refused() {
        let parse = |raw: &str| decode_once(raw).and_then(|d| parse_run_path(&d));
        assert_eq!(
            parse("1/abc/artifacts/checkpoint-500/model.safetensors").unwrap(),
            ArtifactPath {
                experiment_id: "1".into(),
                run_id: "abc".into(),
                rel: "checkpoint-500/model.safetensors".into()
            }
        );
        assert_eq!(parse("1/abc/artifacts").unwrap().rel, "");
        assert_eq!(parse("1/abc/artifacts/a%20b.txt").unwrap().rel, "a b.txt");
        for bad in [
            "1/abc/artifacts/../x",
            "1/abc/artifacts/a//b",
            "/1/abc/artifacts/x",
            "1/abc/artifacts/a\\b",
            "1/abc/artifacts/%2e%2e/x",
            "1/abc/artifacts/./x",
            "1/abc/artifacts/x%00",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{bad}");
        }
        assert_eq!(
            parse("1/abc/other/x").unwrap_err().code,
            ErrorCode::ResourceDoesNotExist
        );
        // Decoded once only: %252e stays "%2e", a literal name.
        assert_eq!(parse("1/r/artifacts/%252e").unwrap().rel, "%2e");
    }

    #[test]
    fn ranges() {
        use RangeAsk::*;
        assert_eq!(parse_range("bytes=0-9"), From(0, Some(9)));
        assert_eq!(parse_range("bytes=5-"), From(5, None));
        assert_eq!(parse_range("bytes=-3"), Last(3));
        assert_eq!(parse_range("bytes=0-1,4-5"), Whole);
        assert_eq!(parse_range("items=0-1"), Whole);
        for bad in ["bytes=9-1", "bytes=x-1", "bytes=-", "bytes=1", "bytes=+1-2"] {
            assert_eq!(parse_range(bad), Invalid, "{bad}");
        }
        // Resolved against a 10-byte object (RFC 9110 §14.1.2).
        assert_eq!(resolve_range(From(0, Some(9)), 10), Some(0..10));
        assert_eq!(resolve_range(From(8, Some(100)), 10), Some(8..10));
        assert_eq!(resolve_range(From(9, None), 10), Some(9..10));
        assert_eq!(resolve_range(Last(3), 10), Some(7..10));
        assert_eq!(resolve_range(Last(30), 10), Some(0..10));
        assert_eq!(resolve_range(From(10, None), 10), None);
        assert_eq!(resolve_range(From(10, Some(12)), 10), None);
        assert_eq!(resolve_range(Last(0), 10), None);
        assert_eq!(resolve_range(Last(1), 0), None);
        assert_eq!(resolve_range(Invalid, 10), None);
        assert_eq!(resolve_range(Whole, 0), Some(0..0));
    }
}
