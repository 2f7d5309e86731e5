//! `GET /api/v1/exports/{predictions|conversations|judgments}?format=csv|json|jsonl`
//! with the predictions table's filters as query parameters (`modelId`,
//! `search`, `from`, `to`, `tag`, `minRating`, `maxRating`, `outcome`,
//! `source`, `limit`) and `position`; the rows are made into bytes by
//! `ftl_projections::export` (the shapes of `specs/formats.md`).
//!
//! Every export is read at a log position (the `position` parameter, by
//! default the read model's at the request; in the JSON manifest and the
//! `X-FTL-Export-Position` header): exchanges and judgments recorded after
//! it are left out, so the same request at the same position gives the
//! same bytes. (Filters on judgments — tag, rating, outcome — use the
//! current ones.)

use crate::state::AppState;
use crate::training::rest::{RestError, RestResult};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ftl_domain::project::Scope;
use ftl_projections::export::{Format, Kind, Pages, VERSION, Writer, omit_nulls, ts};
use ftl_projections::views::predictions::{Outcome, PredictionFilter};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/exports/{kind}", web::get().to(export));
}

/// The most exchanges one export reads.
pub const MAX_ROWS: usize = 1_000_000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
    model_id: Option<Uuid>,
    search: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    tag: Option<String>,
    min_rating: Option<i64>,
    max_rating: Option<i64>,
    /// `success`, `failure`, `thumbs_up` or `thumbs_down`.
    outcome: Option<String>,
    source: Option<String>,
    limit: Option<usize>,
    position: Option<u64>,
    /// Conversations in the existing web app's shape.
    #[serde(default)]
    legacy_shape: bool,
}

struct Request {
    kind: Kind,
    format: Format,
    filter: PredictionFilter,
    limit: usize,
    legacy: bool,
    /// The filters as given, for the manifest.
    filters: Value,
}

fn parse(kind: &str, q: ExportQuery) -> RestResult<Request> {
    let kind = match kind {
        "predictions" => Kind::Predictions,
        "conversations" => Kind::Conversations,
        "judgments" => Kind::Judgments,
        other => {
            return Err(RestError::not_found(format!(
                "no export {other:?}: predictions, conversations or judgments"
            )));
        }
    };
    let format = match q.format.as_deref().unwrap_or("jsonl") {
        "csv" => Format::Csv,
        "json" => Format::Json,
        "jsonl" => Format::Jsonl,
        other => {
            return Err(RestError::invalid(format!(
                "format {other:?}: csv, json or jsonl"
            )));
        }
    };
    if q.search.as_ref().is_some_and(|s| s.len() > 1024) {
        return Err(RestError::invalid("search: at most 1024 bytes"));
    }
    ftl_domain::feedback::check_tag_filter(q.tag.as_deref()).map_err(RestError::invalid)?;
    let outcome = match q.outcome.as_deref() {
        None => None,
        Some("success") => Some(Outcome::Success),
        Some("failure") => Some(Outcome::Failure),
        Some("thumbs_up") => Some(Outcome::ThumbsUp),
        Some("thumbs_down") => Some(Outcome::ThumbsDown),
        Some(other) => {
            return Err(RestError::invalid(format!(
                "outcome {other:?}: success, failure, thumbs_up or thumbs_down"
            )));
        }
    };
    let limit = q.limit.unwrap_or(MAX_ROWS);
    if limit == 0 || limit > MAX_ROWS {
        return Err(RestError::invalid(format!(
            "limit must be between 1 and {MAX_ROWS}"
        )));
    }
    if q.legacy_shape && kind != Kind::Conversations {
        return Err(RestError::invalid("legacyShape applies to conversations"));
    }
    let filters = omit_nulls(json!({
        "model_id": q.model_id, "search": q.search, "from": q.from.map(ts), "to": q.to.map(ts),
        "tag": q.tag, "min_rating": q.min_rating, "max_rating": q.max_rating,
        "outcome": q.outcome, "source": q.source, "limit": q.limit,
    }));
    Ok(Request {
        kind,
        format,
        filter: PredictionFilter {
            model_id: q.model_id,
            search: q.search,
            from: q.from,
            to: q.to,
            tag: q.tag,
            min_rating: q.min_rating,
            max_rating: q.max_rating,
            outcome,
            source: q.source,
            until_position: q.position.map(|p| p as i64),
        },
        limit,
        legacy: q.legacy_shape,
        filters,
    })
}

/// `ftl-<type>-<project-slug>-<YYYYMMDDTHHMMSSZ>.<ext>`.
fn file_name(kind: Kind, project: &str, at: DateTime<Utc>, format: Format) -> String {
    let slug: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let slug = slug.trim_matches('-');
    let ext = match format {
        Format::Csv => "csv",
        Format::Json => "json",
        Format::Jsonl => "jsonl",
    };
    format!(
        "ftl-{}-{}-{}.{ext}",
        kind.name(),
        if slug.is_empty() { "project" } else { slug },
        at.format("%Y%m%dT%H%M%SZ")
    )
}

async fn export(
    st: web::Data<AppState>,
    req: HttpRequest,
    kind: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> RestResult {
    let c = crate::training::http::caller(&st, &req, Scope::Read).await?;
    let mut r = parse(&kind, query.into_inner())?;
    // The position read at: the predictions read model's, unless asked
    // for an earlier one.
    let current = st
        .effects
        .projections
        .position("predictions")
        .await
        .map_err(RestError::internal)?;
    let position = match r.filter.until_position {
        Some(p) if p as u64 > current => {
            return Err(RestError::invalid(format!(
                "position {p} is ahead of the read model ({current})"
            )));
        }
        Some(p) => p as u64,
        None => current,
    };
    r.filter.until_position = Some(position as i64);
    let now = Utc::now();
    let content_type = match r.format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json => "application/json",
        Format::Jsonl => "application/jsonl",
    };
    let name = file_name(r.kind, &c.project_name, now, r.format);
    let manifest = json!({"type": r.kind.name(), "version": VERSION, "created_at": ts(now),
                          "position": position, "filters": r.filters});
    let mut pages = Pages::new(
        st.effects.db.clone(),
        c.project_id.0,
        r.filter,
        r.limit,
        r.kind,
        r.legacy,
    );
    // The first page is read before the answer starts, so a failure is an
    // error status rather than a broken download.
    let first = pages.next().await.map_err(RestError::internal)?;
    let mut writer = Writer::new(r.kind, r.format, manifest);
    let head = writer.page(&first);
    // The first chunk, then a chunk per page, then the file's end; an
    // error after the status is sent ends the body early (the client sees
    // a truncated download) and is logged.
    let rest = futures::stream::unfold(Some((pages, writer)), |state| async move {
        let (mut pages, mut writer) = state?;
        if pages.done() {
            return Some((Ok(web::Bytes::from(writer.finish())), None));
        }
        match pages.next().await {
            Ok(rows) => Some((
                Ok(web::Bytes::from(writer.page(&rows))),
                Some((pages, writer)),
            )),
            Err(e) => {
                tracing::error!(error = %e, "export failed mid-stream");
                Some((
                    Err(actix_web::error::ErrorInternalServerError("export failed")),
                    None,
                ))
            }
        }
    });
    let stream = futures::stream::once(async move { Ok(web::Bytes::from(head)) }).chain(rest);
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-FTL-Export-Position", position.to_string()))
        .streaming(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_the_convention() {
        let at = DateTime::parse_from_rfc3339("2026-03-02T14:05:11.482Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            file_name(Kind::Judgments, "Team A/B", at, Format::Csv),
            "ftl-judgments-team-a-b-20260302T140511Z.csv"
        );
    }
}
