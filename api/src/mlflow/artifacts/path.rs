//! Artifact paths: percent-decoded once, checked by MLflow's path-safety
//! rules, and mapped to where the run's bytes live in the artifact store.

use crate::auth::Caller;
use crate::mlflow::wire::{ErrorCode, MlflowError};
use actix_web::HttpRequest;
use ftl_domain::ids::JobId;
use ftl_domain::job::run_id_text;
use ftl_effects::blobs::BlobKey as StorePath;
use ftl_projections::views::tracking::RunRow;

/// A run-scoped artifact path, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtifactPath {
    pub experiment_id: String,
    pub run_id: String,
    /// Inside the run's artifact root; empty for the root itself.
    pub rel: String,
}

pub(super) fn bad_path(path: &str) -> MlflowError {
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
pub(super) fn raw_tail<'a>(req: &'a HttpRequest, prefix: &str) -> &'a str {
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

/// Where `rel` of a run lives in the artifact store: `<project>/<run>/<rel>`.
pub(super) fn store_path(c: &Caller, run: &RunRow, rel: &str) -> StorePath {
    let base = format!("{}/{}", c.project_id.0, run_id_text(JobId(run.job_id)));
    if rel.is_empty() {
        StorePath::from(base)
    } else {
        StorePath::from(format!("{base}/{rel}"))
    }
}

/// The `Content-Type` of an artifact, from its name.
pub(super) fn content_type(rel: &str) -> String {
    mime_guess::from_path(rel)
        .first_or_octet_stream()
        .to_string()
}
