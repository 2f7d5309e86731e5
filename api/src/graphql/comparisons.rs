//! The comparison lab over GraphQL: sessions of 2–4 models × prompts,
//! answers generated in parallel and shown blind in a per-prompt random
//! order, votes, and preference exports (TRL, OpenAI DPO) that become
//! datasets a DPO job trains on.

use super::chat::chat_error;
use super::errors::{Code, domain_error, gql_error, internal};
use super::query::parse_id;
use super::training::Dataset;
use super::{caller, state};
use crate::state::AppState;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use ftl_commands::store::{ExpectedVersion, Metadata, NewEvent};
use ftl_domain::comparison::{
    self as cmp, ComparisonCreated, Preference, ResponseRecorded, Shown, Voted,
};
use ftl_domain::ids::derive_event_id;
use ftl_domain::prediction::ChatMessage;
use ftl_domain::project::Scope;
use ftl_domain::{DomainEvent, PredictionId};
use ftl_effects::models;
use ftl_effects::predictions::Recorder;
use ftl_projections::views::comparisons as view;
use std::collections::BTreeMap;
use std::time::Instant;
use uuid::Uuid;

fn stream(id: Uuid) -> String {
    format!("comparison-{id}")
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LabMessage {
    pub role: String,
    pub content: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LabModel {
    pub id: ID,
    pub name: String,
}

/// One answer in its blind display position.
#[derive(SimpleObject, Clone, Debug)]
pub struct LabResponse {
    pub position: i32,
    pub content: String,
    pub prediction_id: ID,
    /// Revealed once the rater has voted on this prompt.
    pub model: Option<LabModel>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "ftl_domain::comparison::Preference")]
pub enum LabPreference {
    Preferred,
    Rejected,
    Neutral,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LabVote {
    pub rater: String,
    /// Per display position.
    pub preferences: Vec<LabPreference>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LabPrompt {
    pub index: i32,
    pub context: Vec<LabMessage>,
    pub responses: Vec<LabResponse>,
    pub votes: Vec<LabVote>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Comparison {
    pub id: ID,
    pub name: String,
    pub prompts: Vec<LabPrompt>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PreferenceFormat {
    /// TRL explicit-prompt conversational preference rows, with metadata.
    Trl,
    /// OpenAI DPO rows; metadata in the sidecar.
    OpenaiDpo,
    /// One record per vote: the preferred answer and every rejected one.
    Grouped,
    /// TRL unpaired preference (KTO): each voted answer with `label`.
    Kto,
}

/// A leak-free train/test split: the rows of one compared prompt never
/// straddle the two (`formats.md` §4 buckets).
#[derive(InputObject, Clone, Debug)]
pub struct SplitInput {
    #[graphql(default_with = "String::from(\"ftl\")")]
    pub seed: String,
    #[graphql(default = 0.9)]
    pub train_fraction: f64,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct PreferenceExport {
    /// Rows written (to the training side when split).
    pub rows: i32,
    /// Pairs dropped because raters voted them both ways.
    pub contradictions_dropped: i32,
    /// The file (JSONL, `\n` after every line).
    pub jsonl: String,
    /// OpenAI DPO: the sidecar `.meta.jsonl`, same line order.
    pub metadata_jsonl: Option<String>,
    /// With a split: the test side's rows, file and sidecar.
    pub test_rows: Option<i32>,
    pub test_jsonl: Option<String>,
    pub test_metadata_jsonl: Option<String>,
    /// The export registered as a dataset (when `datasetName` was given).
    pub dataset: Option<Dataset>,
}

/// The session as a rater sees it: answers in blind order, models revealed
/// on the prompts this rater voted on.
async fn read(
    st: &AppState,
    project: Uuid,
    id: Uuid,
    rater: &str,
) -> async_graphql::Result<Comparison> {
    let c = view::comparison(&st.effects.db, project, id)
        .await
        .map_err(internal)?
        .ok_or_else(|| gql_error(Code::NotFound, "comparison not found"))?;
    let responses = view::responses(&st.effects.db, id)
        .await
        .map_err(internal)?;
    let votes = view::votes(&st.effects.db, id).await.map_err(internal)?;
    let mut prompts = Vec::with_capacity(c.prompts.len());
    for (i, context) in c.prompts.iter().enumerate() {
        let order = cmp::column_order(id, i as u32, c.model_ids.len());
        let voted = votes
            .iter()
            .any(|v| v.prompt_index == i as i64 && v.rater == rater);
        let shown: Vec<LabResponse> = order
            .iter()
            .enumerate()
            .filter_map(|(position, m)| {
                let model = c.model_ids.get(*m)?;
                let r = responses
                    .iter()
                    .find(|r| r.prompt_index == i as i64 && r.model_id == *model)?;
                Some(LabResponse {
                    position: position as i32,
                    content: r.content.clone(),
                    prediction_id: ID(r.prediction_id.to_string()),
                    model: voted.then(|| LabModel {
                        id: ID(model.to_string()),
                        name: r.model_name.clone(),
                    }),
                })
            })
            .collect();
        let prompt_votes = votes
            .iter()
            .filter(|v| v.prompt_index == i as i64)
            .map(|v| LabVote {
                rater: v.rater.clone(),
                preferences: order
                    .iter()
                    .map(|m| {
                        c.model_ids
                            .get(*m)
                            .and_then(|model| v.preferences.get(model))
                            .copied()
                            .unwrap_or(Preference::Neutral)
                            .into()
                    })
                    .collect(),
            })
            .collect();
        prompts.push(LabPrompt {
            index: i as i32,
            context: context
                .iter()
                .map(|m| LabMessage {
                    role: m.role.clone(),
                    content: m.content.clone(),
                })
                .collect(),
            responses: shown,
            votes: prompt_votes,
        });
    }
    Ok(Comparison {
        id: ID(id.to_string()),
        name: c.name,
        prompts,
    })
}

fn rater_of(c: &crate::auth::Caller, rater: Option<String>) -> async_graphql::Result<String> {
    let r = rater.unwrap_or_else(|| format!("key:{}", c.key_id));
    ftl_domain::feedback::validate_rater(&r).map_err(domain_error)?;
    Ok(r)
}

async fn append(
    st: &AppState,
    id: Uuid,
    expected: ExpectedVersion,
    events: Vec<DomainEvent>,
    meta: &Metadata,
    command: Uuid,
) -> async_graphql::Result<()> {
    let mut meta = meta.clone();
    meta.command_id = Some(command);
    let new: Vec<NewEvent> = events
        .iter()
        .enumerate()
        .map(|(i, e)| NewEvent::from_domain(derive_event_id(command, i), e, meta.clone()))
        .collect();
    let a = st
        .effects
        .store
        .append(&stream(id), expected, new)
        .await
        .map_err(internal)?;
    st.effects
        .projections
        .wait_for(a.last_position, st.ryw_timeout())
        .await;
    Ok(())
}

#[derive(Default)]
pub struct ComparisonQuery;

#[Object]
impl ComparisonQuery {
    /// A session, blind for `rater` (default: the API key) until it votes.
    async fn comparison(
        &self,
        ctx: &Context<'_>,
        id: ID,
        rater: Option<String>,
    ) -> async_graphql::Result<Comparison> {
        let c = caller(ctx, Scope::Read)?;
        let st = state(ctx)?;
        let id = parse_id(&id, "id")?;
        let rater = rater_of(c, rater)?;
        read(st, c.project_id.0, id, &rater).await
    }
}

#[derive(Default)]
pub struct ComparisonMutation;

#[Object]
impl ComparisonMutation {
    /// A session: every model answers every prompt (a user message each),
    /// in parallel; each answer is also recorded as a prediction.
    async fn create_comparison(
        &self,
        ctx: &Context<'_>,
        name: String,
        model_ids: Vec<ID>,
        prompts: Vec<String>,
        #[graphql(default = 128)] max_tokens: i32,
    ) -> async_graphql::Result<Comparison> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        if !(1..=2048).contains(&max_tokens) {
            return Err(gql_error(
                Code::LimitExceeded,
                "maxTokens must be between 1 and 2048",
            ));
        }
        if prompts.iter().any(|p| p.is_empty() || p.len() > 32 * 1024) {
            return Err(gql_error(
                Code::InvalidInput,
                "each prompt is 1 to 32768 bytes",
            ));
        }
        let ids = model_ids
            .iter()
            .map(|m| parse_id(m, "modelIds"))
            .collect::<Result<Vec<_>, _>>()?;
        let id = Uuid::new_v4();
        let created = ComparisonCreated {
            comparison_id: id,
            project_id: c.project_id,
            name,
            model_ids: ids.clone(),
            prompts: prompts
                .iter()
                .map(|p| {
                    vec![ChatMessage {
                        role: "user".into(),
                        content: p.clone(),
                    }]
                })
                .collect(),
        };
        created.validate().map_err(domain_error)?;
        let mut opened = Vec::with_capacity(ids.len());
        for m in &ids {
            let model = models::open(&st.effects, c.project_id, *m)
                .await
                .map_err(chat_error)?
                .ok_or_else(|| gql_error(Code::NotFound, format!("model {m} not found")))?;
            opened.push(model);
        }
        let params = ftl_trainer::GenerateParams {
            max_tokens: max_tokens as usize,
            ..Default::default()
        };
        // Every (prompt, model) answer at once: local ones on the blocking
        // pool, external ones as concurrent requests.
        let mut tasks = vec![];
        for (pi, prompt) in prompts.iter().enumerate() {
            for (mi, model) in opened.iter().enumerate() {
                let messages = vec![ChatMessage {
                    role: "user".into(),
                    content: prompt.clone(),
                }];
                let started = Instant::now();
                let started_ms = chrono::Utc::now().timestamp_millis();
                let running = model.start(messages.clone(), params.clone(), started);
                tasks.push(async move {
                    let _pieces = running.pieces;
                    let out = running.done.await;
                    (pi, mi, messages, started, started_ms, out)
                });
            }
        }
        let done = futures::future::join_all(tasks).await;
        let meta = c.metadata();
        append(
            st,
            id,
            ExpectedVersion::NoStream,
            vec![DomainEvent::ComparisonCreated(created)],
            &meta,
            Uuid::new_v4(),
        )
        .await?;
        let mut recorded = vec![];
        for (pi, mi, messages, started, started_ms, out) in done {
            let reply = out.map_err(internal)?.map_err(chat_error)?;
            let prediction = PredictionId(Uuid::new_v4());
            let row = &opened[mi].row;
            Recorder {
                st: st.effects.clone(),
                caller: c.clone(),
                prediction,
                messages,
                params: params.clone(),
                started,
                started_ms,
                source: "comparison",
            }
            .record(row, &reply)
            .await;
            recorded.push(DomainEvent::ComparisonResponse(ResponseRecorded {
                comparison_id: id,
                prompt_index: pi as u32,
                model_id: ids[mi],
                model_name: row.name.clone(),
                prediction_id: prediction.0,
                content: reply.text,
            }));
        }
        append(
            st,
            id,
            ExpectedVersion::StreamExists,
            recorded,
            &meta,
            Uuid::new_v4(),
        )
        .await?;
        read(st, c.project_id.0, id, &rater_of(c, None)?).await
    }

    /// A vote on one prompt, by display position: `preferred` (null: a tie,
    /// everything neutral), the positions in `neutral` neutral, all others
    /// rejected. Voting again replaces this rater's vote; the models of the
    /// prompt are revealed to the rater in the answer.
    async fn vote_comparison(
        &self,
        ctx: &Context<'_>,
        comparison_id: ID,
        prompt_index: i32,
        preferred: Option<i32>,
        #[graphql(default)] neutral: Vec<i32>,
        rater: Option<String>,
    ) -> async_graphql::Result<Comparison> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        let id = parse_id(&comparison_id, "comparisonId")?;
        let rater = rater_of(c, rater)?;
        let session = view::comparison(&st.effects.db, c.project_id.0, id)
            .await
            .map_err(internal)?
            .ok_or_else(|| gql_error(Code::NotFound, "comparison not found"))?;
        let index = u32::try_from(prompt_index)
            .map_err(|_| gql_error(Code::InvalidInput, "promptIndex must not be negative"))?;
        let n = session.model_ids.len();
        let order = cmp::column_order(id, index, n);
        let in_range = |p: i32| (0..n as i32).contains(&p);
        if preferred.is_some_and(|p| !in_range(p)) || neutral.iter().any(|p| !in_range(*p)) {
            return Err(gql_error(
                Code::InvalidInput,
                format!("positions are 0 to {}", n - 1),
            ));
        }
        let preferences: BTreeMap<Uuid, Preference> = order
            .iter()
            .enumerate()
            .map(|(position, m)| {
                let p = position as i32;
                let pref = match preferred {
                    None => Preference::Neutral,
                    Some(x) if x == p => Preference::Preferred,
                    Some(_) if neutral.contains(&p) => Preference::Neutral,
                    Some(_) => Preference::Rejected,
                };
                (session.model_ids[*m], pref)
            })
            .collect();
        let vote = Voted {
            comparison_id: id,
            prompt_index: index,
            rater: rater.clone(),
            preferences,
        };
        vote.validate(&session.model_ids, session.prompts.len())
            .map_err(domain_error)?;
        append(
            st,
            id,
            ExpectedVersion::StreamExists,
            vec![DomainEvent::ComparisonVoted(vote)],
            &c.metadata(),
            Uuid::new_v4(),
        )
        .await?;
        read(st, c.project_id.0, id, &rater).await
    }

    /// Preference data from the votes of the given sessions (`formats.md`
    /// §4): TRL / OpenAI DPO rows, one per (preferred, rejected) pair in
    /// display order, each carrying its comparison id (pairs voted both ways
    /// by different raters are dropped and counted); GROUPED, one record per
    /// vote; KTO, each voted answer labelled. `split` divides the rows
    /// train/test by compared prompt, never straddling. With `datasetName`
    /// the (training) file is registered as a dataset, ready for a DPO job.
    #[allow(clippy::too_many_arguments)]
    async fn export_preferences(
        &self,
        ctx: &Context<'_>,
        comparison_ids: Vec<ID>,
        format: PreferenceFormat,
        #[graphql(default = false)] neutral_as_rejected: bool,
        split: Option<SplitInput>,
        dataset_name: Option<String>,
    ) -> async_graphql::Result<PreferenceExport> {
        let c = caller(ctx, Scope::Write)?;
        let st = state(ctx)?;
        if let Some(s) = &split
            && (!(s.train_fraction > 0.0 && s.train_fraction < 1.0) || s.seed.len() > 200)
        {
            return Err(gql_error(
                Code::InvalidInput,
                "split: trainFraction in (0, 1), seed at most 200 bytes",
            ));
        }
        if dataset_name.is_some()
            && matches!(format, PreferenceFormat::Grouped | PreferenceFormat::Kto)
        {
            return Err(gql_error(
                Code::InvalidInput,
                "datasetName: the built-in trainer trains DPO from TRL or OPENAI_DPO files; GROUPED and KTO are for export",
            ));
        }
        if comparison_ids.is_empty() || comparison_ids.len() > 100 {
            return Err(gql_error(
                Code::LimitExceeded,
                "1 to 100 comparisons per export",
            ));
        }
        let mut pairs = vec![];
        // (compared prompt, record) for the per-vote formats.
        let mut records: Vec<(String, serde_json::Value)> = vec![];
        for cid in &comparison_ids {
            let id = parse_id(cid, "comparisonIds")?;
            let session = view::comparison(&st.effects.db, c.project_id.0, id)
                .await
                .map_err(internal)?
                .ok_or_else(|| gql_error(Code::NotFound, "comparison not found"))?;
            let responses = view::responses(&st.effects.db, id)
                .await
                .map_err(internal)?;
            let ratings =
                ftl_projections::views::predictions::comparison_ratings(&st.effects.db, id)
                    .await
                    .map_err(internal)?;
            for v in view::votes(&st.effects.db, id).await.map_err(internal)? {
                let i = v.prompt_index as usize;
                let order = cmp::column_order(id, i as u32, session.model_ids.len());
                let shown: Vec<Shown> = order
                    .iter()
                    .enumerate()
                    .filter_map(|(position, m)| {
                        let model = session.model_ids.get(*m)?;
                        let r = responses
                            .iter()
                            .find(|r| r.prompt_index == i as i64 && r.model_id == *model)?;
                        Some(Shown {
                            model: r.model_name.clone(),
                            response_id: r.prediction_id.to_string(),
                            content: r.content.clone(),
                            position,
                            preference: v
                                .preferences
                                .get(model)
                                .copied()
                                .unwrap_or(Preference::Neutral),
                            ratings: ratings
                                .get(&(r.prediction_id, v.rater.clone()))
                                .cloned()
                                .unwrap_or_else(|| serde_json::json!({})),
                        })
                    })
                    .collect();
                let context = session.prompts.get(i).cloned().unwrap_or_default();
                let compared = format!("{id}:{i}");
                let created_at = v.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let vote = cmp::Vote {
                    comparison_id: &compared,
                    context: &context,
                    shown: &shown,
                    rater: &v.rater,
                    created_at: &created_at,
                };
                match format {
                    PreferenceFormat::Grouped => records.extend(
                        cmp::grouped(&vote, neutral_as_rejected).map(|r| (compared.clone(), r)),
                    ),
                    PreferenceFormat::Kto => {
                        records.extend(cmp::kto(&vote).into_iter().map(|r| (compared.clone(), r)))
                    }
                    _ => pairs.extend(cmp::pairs(&vote, neutral_as_rejected)),
                }
            }
        }
        // Contradictions: the same pair both ways (by different raters).
        let key = |p: &cmp::Pair| {
            (
                p.comparison_id.clone(),
                p.chosen.response_id.clone(),
                p.rejected.response_id.clone(),
            )
        };
        let all: Vec<_> = pairs.iter().map(key).collect();
        let before = pairs.len();
        pairs.retain(|p| {
            let (c, a, b) = key(p);
            !all.contains(&(c, b, a))
        });
        let dropped = before - pairs.len();
        // (compared prompt, row, sidecar line) in export order.
        let rows: Vec<(String, serde_json::Value, Option<serde_json::Value>)> = match format {
            PreferenceFormat::Trl => pairs
                .iter()
                .map(|p| (p.comparison_id.clone(), p.trl(), None))
                .collect(),
            PreferenceFormat::OpenaiDpo => pairs
                .iter()
                .map(|p| {
                    let (row, meta) = p.openai_dpo();
                    (p.comparison_id.clone(), row, Some(meta))
                })
                .collect(),
            PreferenceFormat::Grouped | PreferenceFormat::Kto => {
                records.into_iter().map(|(c, r)| (c, r, None)).collect()
            }
        };
        let sidecar = format == PreferenceFormat::OpenaiDpo;
        let write = |side: &[&(String, serde_json::Value, Option<serde_json::Value>)]| {
            let jsonl: String = side.iter().map(|(_, r, _)| format!("{r}\n")).collect();
            let meta = sidecar.then(|| {
                side.iter()
                    .filter_map(|(_, _, m)| m.as_ref().map(|m| format!("{m}\n")))
                    .collect::<String>()
            });
            (jsonl, meta)
        };
        let (train, test): (Vec<_>, Vec<_>) = rows.iter().partition(|(compared, _, _)| {
            split
                .as_ref()
                .is_none_or(|s| cmp::in_train_split(&s.seed, compared, s.train_fraction))
        });
        let (jsonl, metadata_jsonl) = write(&train);
        let (test_jsonl, test_metadata_jsonl) = write(&test);
        let n_train = train.len();
        let test_rows = split.as_ref().map(|_| test.len() as i32);
        let dataset = match dataset_name {
            Some(name) if n_train > 0 => {
                if !ftl_effects::training::storage::valid_name(&name) || !name.ends_with(".jsonl") {
                    return Err(gql_error(
                        Code::InvalidInput,
                        "datasetName is one path segment ending in .jsonl",
                    ));
                }
                let r = ftl_effects::training::datasets::register(
                    &st.effects,
                    c,
                    &name,
                    ftl_effects::training::datasets::Source::Upload,
                    jsonl.clone().into(),
                )
                .await
                .map_err(|e| gql_error(Code::Internal, e.to_string()))?;
                ftl_projections::views::training::dataset(&st.effects.db, c.project_id.0, r.id)
                    .await
                    .map_err(internal)?
                    .map(Dataset::from)
            }
            _ => None,
        };
        Ok(PreferenceExport {
            rows: n_train as i32,
            contradictions_dropped: dropped as i32,
            jsonl,
            metadata_jsonl,
            test_jsonl: split.as_ref().map(|_| test_jsonl),
            test_metadata_jsonl: split.as_ref().and(test_metadata_jsonl),
            test_rows,
            dataset,
        })
    }
}
