//! An exchange as GraphQL shows it, and the filters and orders of the
//! predictions table (cursors included).

use crate::graphql::common::errors::{Code, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::state;
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use ftl_projections::views::predictions as view;

#[derive(SimpleObject, Clone, Debug)]
pub struct PredictionMessage {
    pub role: String,
    pub content: String,
}

/// One exchange with a model, as recorded.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Prediction {
    pub id: ID,
    pub model_id: ID,
    pub model_name: String,
    pub messages: Vec<PredictionMessage>,
    pub response: String,
    /// `stop`, `length`, `tool_calls`, `content_filter` or `cancelled`.
    pub finish_reason: String,
    pub params: async_graphql::Json<serde_json::Value>,
    pub latency_ms: f64,
    /// Time to the first token.
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// What answered: `<job>@<step>` for a model trained here, the
    /// provider's model for an external one.
    pub model_version: String,
    /// Where the token counts come from: `tokenizer` (the model's own),
    /// `provider` (its reported usage) or `none` (not reported: counts are 0).
    pub usage_source: String,
    /// From the model's price table when it answered (absent without one).
    pub cost_usd: Option<f64>,
    /// `graphql`, `openai_api` or `comparison`.
    pub source: String,
    pub started_at: DateTime<Utc>,
    #[graphql(skip)]
    pub uuid: uuid::Uuid,
}

/// A judgment a prediction received (thumb, evaluation or rating), as recorded.
#[derive(SimpleObject, Clone, Debug)]
pub struct Judgment {
    /// `thumb`, `evaluation` or `rating`.
    pub kind: String,
    pub payload: async_graphql::Json<serde_json::Value>,
    pub at: DateTime<Utc>,
}

#[ComplexObject]
impl Prediction {
    /// Every judgment, in order; a change is a new entry, nothing is overwritten.
    async fn judgments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Judgment>> {
        let st = state(ctx)?;
        Ok(view::feedback_history(&st.effects.db, self.uuid)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(kind, payload, at)| Judgment {
                kind,
                payload: async_graphql::Json(payload),
                at,
            })
            .collect())
    }
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
            model_version: r.model_version,
            usage_source: r.usage_source,
            cost_usd: r.cost_usd,
            source: r.source,
            started_at: r.started_at,
            uuid: r.prediction_id,
        }
    }
}

#[derive(InputObject, Default)]
pub struct PredictionFilter {
    pub model_id: Option<ID>,
    /// Words that must all appear in the messages or the response (full
    /// text: case, accents and English word endings do not matter).
    pub search: Option<String>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    /// A failure tag of a current evaluation (`failure_taxonomy_v1`).
    pub tag: Option<String>,
    /// A current overall rating (any rater) of at least / at most this.
    pub min_rating: Option<i32>,
    pub max_rating: Option<i32>,
    pub outcome: Option<Outcome>,
    /// `graphql`, `openai_api` or `comparison`.
    pub source: Option<String>,
}

/// A judged outcome (any rater's current judgment).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    Success,
    Failure,
    ThumbsUp,
    ThumbsDown,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum PredictionSort {
    #[default]
    Newest,
    Oldest,
    Slowest,
    Fastest,
}

/// `prediction:<seq>:<latency bits>`: the last row's sort key.
pub(super) fn encode_cursor(c: view::Cursor) -> String {
    format!("prediction:{}:{:x}", c.seq, c.latency_ms.to_bits())
}

pub(super) fn decode_cursor(s: &str) -> async_graphql::Result<view::Cursor> {
    let malformed = || gql_error(Code::InvalidInput, "malformed cursor");
    let rest = s.strip_prefix("prediction:").ok_or_else(malformed)?;
    let (seq, bits) = rest.split_once(':').ok_or_else(malformed)?;
    Ok(view::Cursor {
        seq: seq.parse().map_err(|_| malformed())?,
        latency_ms: f64::from_bits(u64::from_str_radix(bits, 16).map_err(|_| malformed())?),
    })
}

impl PredictionFilter {
    pub(super) fn into_view(self) -> async_graphql::Result<view::PredictionFilter> {
        if self.search.as_ref().is_some_and(|s| s.len() > 1024) {
            return Err(gql_error(Code::LimitExceeded, "search: at most 1024 bytes"));
        }
        ftl_domain::feedback::check_tag_filter(self.tag.as_deref())
            .map_err(|m| gql_error(Code::InvalidInput, m))?;
        Ok(view::PredictionFilter {
            model_id: self.model_id.map(|m| parse_id(&m, "modelId")).transpose()?,
            search: self.search,
            from: self.from,
            to: self.to,
            tag: self.tag,
            min_rating: self.min_rating.map(i64::from),
            max_rating: self.max_rating.map(i64::from),
            outcome: self.outcome.map(|o| match o {
                Outcome::Success => view::Outcome::Success,
                Outcome::Failure => view::Outcome::Failure,
                Outcome::ThumbsUp => view::Outcome::ThumbsUp,
                Outcome::ThumbsDown => view::Outcome::ThumbsDown,
            }),
            source: self.source,
            until_position: None,
        })
    }
}
