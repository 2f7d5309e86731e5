//! Recorded exchanges with models (the predictions table).

use super::errors::{Code, gql_error, internal};
use super::query::parse_id;
use super::{caller, state};
use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
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
fn encode_cursor(c: view::Cursor) -> String {
    format!("prediction:{}:{:x}", c.seq, c.latency_ms.to_bits())
}

fn decode_cursor(s: &str) -> async_graphql::Result<view::Cursor> {
    let malformed = || gql_error(Code::InvalidInput, "malformed cursor");
    let rest = s.strip_prefix("prediction:").ok_or_else(malformed)?;
    let (seq, bits) = rest.split_once(':').ok_or_else(malformed)?;
    Ok(view::Cursor {
        seq: seq.parse().map_err(|_| malformed())?,
        latency_ms: f64::from_bits(u64::from_str_radix(bits, 16).map_err(|_| malformed())?),
    })
}

impl PredictionFilter {
    fn into_view(self) -> async_graphql::Result<view::PredictionFilter> {
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

#[derive(Default)]
pub struct PredictionsQuery;

#[Object]
impl PredictionsQuery {
    /// Recorded exchanges of this project (the predictions table): full-text
    /// search, filters, newest/oldest/slowest/fastest first, cursor pagination.
    async fn predictions(
        &self,
        ctx: &Context<'_>,
        filter: Option<PredictionFilter>,
        #[graphql(default)] sort: PredictionSort,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Prediction>> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        super::query::connection_page(first, st.config.limits.page_size_max)?;
        let filter = filter.unwrap_or_default().into_view()?;
        let cursor = after.as_deref().map(decode_cursor).transpose()?;
        let sort = match sort {
            PredictionSort::Newest => view::PredictionSort::Newest,
            PredictionSort::Oldest => view::PredictionSort::Oldest,
            PredictionSort::Slowest => view::PredictionSort::Slowest,
            PredictionSort::Fastest => view::PredictionSort::Fastest,
        };
        let mut rows = view::predictions(
            &st.effects.db,
            c.project_id.0,
            &filter,
            sort,
            cursor,
            i64::from(first) + 1,
        )
        .await
        .map_err(internal)?;
        let has_next = rows.len() > first as usize;
        rows.truncate(first as usize);
        let mut conn = Connection::new(after.is_some(), has_next);
        conn.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(encode_cursor(view::Cursor::of(&r)), Prediction::from(r))),
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
        Ok(view::prediction(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .map(Prediction::from))
    }
}

// ---- feedback -------------------------------------------------------------

#[derive(InputObject, Default)]
pub struct AxesInput {
    pub clarity: Option<i32>,
    pub accuracy: Option<i32>,
    pub conciseness: Option<i32>,
    pub overall: Option<i32>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Axis {
    Clarity,
    Accuracy,
    Conciseness,
    Overall,
}

impl Axis {
    fn index(self) -> usize {
        self as usize
    }
    fn name(self) -> &'static str {
        ftl_domain::feedback::AXES[self.index()]
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct AxisStats {
    pub axis: String,
    pub n: i64,
    pub mean: Option<f64>,
    /// Sample standard deviation.
    pub sd: Option<f64>,
    pub median: Option<f64>,
    /// How many ratings of 1, 2, 3, 4, 5.
    pub counts: Vec<i64>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct TagCount {
    pub tag: String,
    pub count: i64,
    pub pct_of_failed: f64,
    pub share_of_mentions: f64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct FailureTags {
    pub n_evaluations: i64,
    pub n_failed: i64,
    pub untagged_failures: i64,
    pub tags: Vec<TagCount>,
}

/// Feedback on a model (or the whole project): thumbs, ratings per axis,
/// failure tags on failed evaluations.
#[derive(SimpleObject, Clone, Debug)]
pub struct FeedbackSummary {
    pub thumbs_up: i64,
    pub thumbs_down: i64,
    pub axes: Vec<AxisStats>,
    pub failure_tags: FailureTags,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Calibration {
    pub exact: f64,
    pub within_one: f64,
    pub spearman: Option<f64>,
}

/// Agreement between raters on one axis (`judging.md` §10).
#[derive(SimpleObject, Clone, Debug)]
pub struct Agreement {
    pub axis: String,
    pub raters: Vec<String>,
    /// Items with at least two ratings.
    pub items: i64,
    /// Ordinal α over every rater, missing ratings allowed.
    pub krippendorff_alpha: Option<f64>,
    /// When every item has the same number (≥ 2) of raters.
    pub fleiss_kappa: Option<f64>,
    /// With exactly two raters: quadratic-weighted κ on the items both rated.
    pub cohen_kappa_quadratic: Option<f64>,
    pub calibration: Option<Calibration>,
}

fn stats(axis: Axis, values: &[i64]) -> AxisStats {
    let n = values.len();
    let mut counts = vec![0i64; 5];
    for v in values {
        if (1..=5).contains(v) {
            counts[(*v - 1) as usize] += 1;
        }
    }
    let mean = (n > 0).then(|| values.iter().sum::<i64>() as f64 / n as f64);
    let sd = mean.filter(|_| n > 1).map(|m| {
        (values.iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    });
    let mut sorted: Vec<f64> = values.iter().map(|v| *v as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let median = ftl_domain::stats::quantile(&sorted, 0.5);
    AxisStats {
        axis: axis.name().into(),
        n: n as i64,
        mean,
        sd,
        median,
        counts,
    }
}

#[derive(Default)]
pub struct FeedbackQuery;

#[Object]
impl FeedbackQuery {
    async fn feedback_summary(
        &self,
        ctx: &Context<'_>,
        model_id: Option<ID>,
    ) -> async_graphql::Result<FeedbackSummary> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let model = model_id.map(|m| parse_id(&m, "modelId")).transpose()?;
        let (up, down) = view::thumbs(&st.effects.db, c.project_id.0, model)
            .await
            .map_err(internal)?;
        let ratings = view::ratings(&st.effects.db, c.project_id.0, model)
            .await
            .map_err(internal)?;
        let axes = [
            Axis::Clarity,
            Axis::Accuracy,
            Axis::Conciseness,
            Axis::Overall,
        ]
        .into_iter()
        .map(|a| {
            let values: Vec<i64> = ratings
                .iter()
                .filter_map(|(_, _, v)| v[a.index()])
                .collect();
            stats(a, &values)
        })
        .collect();
        let evals = view::evaluations(&st.effects.db, c.project_id.0, model)
            .await
            .map_err(internal)?;
        let t =
            ftl_domain::feedback::tag_stats(evals.iter().map(|(ok, tags)| (*ok, tags.as_slice())));
        Ok(FeedbackSummary {
            thumbs_up: up,
            thumbs_down: down,
            axes,
            failure_tags: FailureTags {
                n_evaluations: t.n_evaluations as i64,
                n_failed: t.n_failed as i64,
                untagged_failures: t.untagged_failures as i64,
                tags: t
                    .tags
                    .into_iter()
                    .map(|(tag, count, pct, share)| TagCount {
                        tag,
                        count: count as i64,
                        pct_of_failed: pct,
                        share_of_mentions: share,
                    })
                    .collect(),
            },
        })
    }

    /// Inter-rater agreement on one axis over the current ratings.
    async fn agreement(
        &self,
        ctx: &Context<'_>,
        axis: Axis,
        model_id: Option<ID>,
    ) -> async_graphql::Result<Agreement> {
        use ftl_domain::agreement as ag;
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let model = model_id.map(|m| parse_id(&m, "modelId")).transpose()?;
        let ratings: Vec<(uuid::Uuid, String, i64)> =
            view::ratings(&st.effects.db, c.project_id.0, model)
                .await
                .map_err(internal)?
                .into_iter()
                .filter_map(|(p, r, v)| v[axis.index()].map(|v| (p, r, v)))
                .collect();
        let mut raters: Vec<String> = ratings.iter().map(|(_, r, _)| r.clone()).collect();
        raters.sort();
        raters.dedup();
        let as_f: Vec<(uuid::Uuid, String, f64)> = ratings
            .iter()
            .map(|(p, r, v)| (*p, r.clone(), *v as f64))
            .collect();
        let units = ag::units_of(&as_f);
        let rated: Vec<&Vec<f64>> = units.iter().filter(|u| u.len() >= 2).collect();
        // Fleiss: every item rated by the same number of raters.
        let fleiss = rated
            .first()
            .filter(|first| rated.iter().all(|u| u.len() == first.len()))
            .and_then(|_| {
                let counts: Vec<Vec<u64>> = rated
                    .iter()
                    .map(|u| {
                        (1..=5)
                            .map(|c| u.iter().filter(|v| **v == c as f64).count() as u64)
                            .collect()
                    })
                    .collect();
                ag::fleiss_kappa(&counts)
            });
        // Two raters: the items both rated, paired.
        let (cohen, calibration) = if raters.len() == 2 {
            let mut a = vec![];
            let mut b = vec![];
            let mut by: std::collections::BTreeMap<uuid::Uuid, (Option<i64>, Option<i64>)> =
                Default::default();
            for (p, r, v) in &ratings {
                let e = by.entry(*p).or_default();
                if *r == raters[0] {
                    e.0 = Some(*v);
                } else {
                    e.1 = Some(*v);
                }
            }
            for (x, y) in by.values().filter_map(|(x, y)| Some(((*x)?, (*y)?))) {
                a.push(x);
                b.push(y);
            }
            (
                ag::cohen_kappa(&a, &b, 1, 5, ag::Weights::Quadratic),
                ag::calibration(&a, &b).map(|c| Calibration {
                    exact: c.exact,
                    within_one: c.within_one,
                    spearman: c.spearman,
                }),
            )
        } else {
            (None, None)
        };
        Ok(Agreement {
            axis: axis.name().into(),
            items: rated.len() as i64,
            krippendorff_alpha: ag::krippendorff_alpha(&units, ag::Level::Ordinal),
            fleiss_kappa: fleiss,
            cohen_kappa_quadratic: cohen,
            calibration,
            raters,
        })
    }
}

#[derive(Default)]
pub struct FeedbackMutation;

/// Appends a judgment to a prediction of the caller's project.
async fn judge(
    ctx: &Context<'_>,
    prediction: &ID,
    idempotency_key: Option<String>,
    event: impl FnOnce(
        ftl_domain::PredictionId,
        String,
    ) -> Result<ftl_domain::DomainEvent, ftl_domain::DomainError>,
    rater: Option<String>,
    op: &str,
) -> async_graphql::Result<Prediction> {
    use ftl_commands::store::{ExpectedVersion, NewEvent};
    let c = caller(ctx, Scope::Write)?;
    let st = state(ctx)?;
    let id = parse_id(prediction, "predictionId")?;
    view::prediction(&st.effects.db, c.project_id.0, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| gql_error(Code::NotFound, "prediction not found"))?;
    let rater = rater.unwrap_or_else(|| format!("key:{}", c.key_id));
    ftl_domain::feedback::validate_rater(&rater).map_err(super::errors::domain_error)?;
    let event = event(ftl_domain::PredictionId(id), rater).map_err(super::errors::domain_error)?;
    let k = super::mutation::keyed(ctx, c, op, &id.to_string(), idempotency_key.as_deref())?;
    let new = NewEvent::from_domain(ftl_domain::ids::derive_event_id(k.id, 0), &event, k.meta);
    let appended = ftl_commands::handler::append_once(
        st.effects.store.as_ref(),
        &ftl_domain::PredictionId(id).stream(),
        ExpectedVersion::StreamExists,
        vec![new],
    )
    .await
    .map_err(super::errors::command_error)?;
    st.effects
        .projections
        .wait_for(appended.last_position, st.ryw_timeout())
        .await;
    view::prediction(&st.effects.db, c.project_id.0, id)
        .await
        .map_err(internal)?
        .map(Prediction::from)
        .ok_or_else(|| gql_error(Code::Internal, "the prediction is not readable yet; retry"))
}

#[Object]
impl FeedbackMutation {
    /// Thumbs up (`true`), down (`false`) or cleared (`null`); a change is a
    /// new judgment, the earlier one stays in the history. `rater` defaults
    /// to the API key.
    async fn set_thumb(
        &self,
        ctx: &Context<'_>,
        prediction_id: ID,
        up: Option<bool>,
        rater: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Prediction> {
        judge(
            ctx,
            &prediction_id,
            idempotency_key,
            |p, rater| {
                Ok(ftl_domain::DomainEvent::ThumbSet(
                    ftl_domain::feedback::ThumbSet {
                        prediction_id: p,
                        rater,
                        up,
                    },
                ))
            },
            rater,
            "setThumb",
        )
        .await
    }

    /// The detailed evaluation: success, failure tags (`failure_taxonomy_v1`;
    /// an unknown one is refused), strengths, notes, expected behaviour.
    #[allow(clippy::too_many_arguments)]
    async fn evaluate_prediction(
        &self,
        ctx: &Context<'_>,
        prediction_id: ID,
        success: bool,
        #[graphql(default)] tags: Vec<String>,
        #[graphql(default)] strengths: String,
        #[graphql(default)] notes: String,
        #[graphql(default)] expected_behaviour: String,
        #[graphql(default_with = "String::from(\"human\")")] source: String,
        rater: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Prediction> {
        judge(
            ctx,
            &prediction_id,
            idempotency_key,
            |p, rater| {
                let e = ftl_domain::feedback::Evaluated {
                    prediction_id: p,
                    rater,
                    success,
                    tags: ftl_domain::feedback::normalize_tags(&tags)?,
                    source,
                    taxonomy: ftl_domain::feedback::TAXONOMY.into(),
                    strengths,
                    notes,
                    expected_behaviour,
                };
                e.validate()?;
                Ok(ftl_domain::DomainEvent::Evaluated(e))
            },
            rater,
            "evaluatePrediction",
        )
        .await
    }

    /// A multi-axis rating (1–5 on any of clarity, accuracy, conciseness,
    /// overall); a re-rating is a new judgment and becomes the current one.
    #[allow(clippy::too_many_arguments)]
    async fn rate_prediction(
        &self,
        ctx: &Context<'_>,
        prediction_id: ID,
        axes: AxesInput,
        #[graphql(default)] comment: String,
        comparison_id: Option<ID>,
        rater: Option<String>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<Prediction> {
        let comparison = comparison_id
            .map(|c| parse_id(&c, "comparisonId"))
            .transpose()?;
        // A comparison named must exist in the caller's project, like every id.
        if let Some(cmp) = comparison {
            let c = caller(ctx, Scope::Write)?;
            ftl_projections::views::comparisons::comparison(
                &state(ctx)?.effects.db,
                c.project_id.0,
                cmp,
            )
            .await
            .map_err(internal)?
            .ok_or_else(|| gql_error(Code::NotFound, "comparison not found"))?;
        }
        judge(
            ctx,
            &prediction_id,
            idempotency_key,
            |p, rater| {
                let mut map = std::collections::BTreeMap::new();
                for (name, v) in [
                    ("clarity", axes.clarity),
                    ("accuracy", axes.accuracy),
                    ("conciseness", axes.conciseness),
                    ("overall", axes.overall),
                ] {
                    if let Some(v) = v {
                        let v = u8::try_from(v).map_err(|_| {
                            ftl_domain::DomainError::invalid(
                                format!("axes.{name}"),
                                "must be an integer from 1 to 5",
                            )
                        })?;
                        map.insert(name.to_string(), v);
                    }
                }
                let r = ftl_domain::feedback::Rated {
                    rating_id: uuid::Uuid::new_v4(),
                    prediction_id: p,
                    rater,
                    axes: map,
                    comment,
                    comparison_id: comparison,
                };
                r.validate()?;
                Ok(ftl_domain::DomainEvent::Rated(r))
            },
            rater,
            "ratePrediction",
        )
        .await
    }
}
