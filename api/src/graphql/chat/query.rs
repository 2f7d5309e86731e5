//! `models`, `model`, `modelUsage`: the registry and each model's history.

use super::types::*;
use crate::graphql::common::errors::{Code, gql_error, internal};
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use ftl_domain::project::Scope;
use ftl_domain::stats::quantile;

#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// A model's exchanges over time in buckets of `bucketSeconds`: request
    /// count, latency and time-to-first-token percentiles, tokens and cost.
    async fn model_usage(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        #[graphql(default = 3600)] bucket_seconds: i32,
    ) -> async_graphql::Result<Vec<UsageBucket>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let id = parse_id(&model_id, "modelId")?;
        if bucket_seconds < 1 || to <= from {
            return Err(gql_error(
                Code::InvalidInput,
                "bucketSeconds must be at least 1 and `to` after `from`",
            ));
        }
        let width = i64::from(bucket_seconds) * 1000;
        let buckets = (to - from).num_milliseconds() / width + 1;
        if buckets > 10_000 {
            return Err(gql_error(
                Code::LimitExceeded,
                "at most 10000 buckets: widen bucketSeconds or narrow the range",
            ));
        }
        let rows = ftl_projections::views::predictions::usage(
            &st.effects.db,
            c.project_id.0,
            id,
            from,
            to,
        )
        .await
        .map_err(internal)?;
        Ok(usage_buckets(&rows, from, width))
    }
}

/// Groups exchanges (time-ordered) into buckets of `width` ms from `from`.
fn usage_buckets(
    rows: &[ftl_projections::views::predictions::UsageRow],
    from: DateTime<Utc>,
    width: i64,
) -> Vec<UsageBucket> {
    let origin = from.timestamp_millis();
    let mut out: Vec<UsageBucket> = vec![];
    let mut i = 0;
    while i < rows.len() {
        let b = (rows[i].started_at.timestamp_millis() - origin).div_euclid(width);
        let mut j = i;
        while j < rows.len()
            && (rows[j].started_at.timestamp_millis() - origin).div_euclid(width) == b
        {
            j += 1;
        }
        let group = &rows[i..j];
        let mut lat: Vec<f64> = group.iter().map(|r| r.latency_ms).collect();
        lat.sort_by(f64::total_cmp);
        let mut ttft: Vec<f64> = group.iter().filter_map(|r| r.ttft_ms).collect();
        ttft.sort_by(f64::total_cmp);
        out.push(UsageBucket {
            start: DateTime::<Utc>::from_timestamp_millis(origin + b * width).unwrap_or(from),
            requests: group.len() as i64,
            latency_p50_ms: quantile(&lat, 0.5).unwrap_or(0.0),
            latency_p95_ms: quantile(&lat, 0.95).unwrap_or(0.0),
            ttft_p50_ms: quantile(&ttft, 0.5),
            prompt_tokens: group.iter().map(|r| r.prompt_tokens).sum(),
            completion_tokens: group.iter().map(|r| r.completion_tokens).sum(),
            cost_usd: group.iter().filter_map(|r| r.cost_usd).sum(),
        });
        i = j;
    }
    out
}
