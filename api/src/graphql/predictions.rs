//! Recorded exchanges with models (the predictions table).

use super::errors::{Code, gql_error, internal};
use super::query::parse_id;
use super::{caller, state};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use ftl_domain::project::Scope;
use ftl_projections::views::predictions as view;

#[derive(SimpleObject, Clone, Debug)]
pub struct PredictionMessage {
    pub role: String,
    pub content: String,
}

/// One exchange with a model, as recorded.
#[derive(SimpleObject, Clone, Debug)]
pub struct Prediction {
    pub id: ID,
    pub model_id: ID,
    pub model_name: String,
    pub messages: Vec<PredictionMessage>,
    pub response: String,
    /// `stop` or `length`.
    pub finish_reason: String,
    pub params: async_graphql::Json<serde_json::Value>,
    pub latency_ms: f64,
    /// Time to the first token.
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// `openai_api` or `graphql`.
    pub source: String,
    pub started_at: DateTime<Utc>,
}

impl From<view::PredictionRow> for Prediction {
    fn from(r: view::PredictionRow) -> Self {
        let messages = r
            .messages
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| PredictionMessage {
                        role: m["role"].as_str().unwrap_or_default().to_string(),
                        content: m["content"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Prediction {
            id: ID(r.prediction_id.to_string()),
            model_id: ID(r.model_id.to_string()),
            model_name: r.model_name,
            messages,
            response: r.response,
            finish_reason: r.finish_reason,
            params: async_graphql::Json(r.params),
            latency_ms: r.latency_ms,
            ttft_ms: r.ttft_ms,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            total_tokens: r.prompt_tokens + r.completion_tokens,
            source: r.source,
            started_at: r.started_at,
        }
    }
}

#[derive(InputObject, Default)]
pub struct PredictionFilter {
    pub model_id: Option<ID>,
    /// A substring of the messages or the response (case-insensitive).
    pub search: Option<String>,
}

#[derive(Default)]
pub struct PredictionsQuery;

#[Object]
impl PredictionsQuery {
    /// Recorded exchanges of this project, newest first (cursor pagination).
    async fn predictions(
        &self,
        ctx: &Context<'_>,
        filter: Option<PredictionFilter>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Prediction>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let max = st.config.limits.page_size_max;
        if first < 0 || i64::from(first) > max {
            return Err(gql_error(
                Code::LimitExceeded,
                format!("first must be between 0 and {max}"),
            ));
        }
        let f = filter.unwrap_or_default();
        if f.search.as_ref().is_some_and(|s| s.len() > 1024) {
            return Err(gql_error(Code::LimitExceeded, "search: at most 1024 bytes"));
        }
        let before = after
            .as_deref()
            .map(|a| {
                a.strip_prefix("prediction:")
                    .and_then(|n| n.parse::<i64>().ok())
                    .ok_or_else(|| gql_error(Code::InvalidInput, "malformed cursor"))
            })
            .transpose()?;
        let filter = view::PredictionFilter {
            model_id: f.model_id.map(|m| parse_id(&m, "modelId")).transpose()?,
            search: f.search,
        };
        let mut rows = view::predictions(
            &st.db,
            c.project_id.0,
            &filter,
            before,
            i64::from(first) + 1,
        )
        .await
        .map_err(internal)?;
        let has_next = rows.len() > first as usize;
        rows.truncate(first as usize);
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(format!("prediction:{}", r.seq), Prediction::from(r))),
        );
        Ok(conn)
    }

    async fn prediction(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Prediction>> {
        let id = parse_id(&id, "id")?;
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        Ok(view::prediction(&st.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .map(Prediction::from))
    }
}
