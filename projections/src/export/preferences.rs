//! Preference exports of comparison sessions (`formats.md` §4): TRL and
//! OpenAI DPO pairs in blind display order (pairs voted both ways by
//! different raters are dropped and counted), GROUPED records, KTO labels,
//! and a leak-free train/test split by compared prompt.

use crate::views::comparisons as view;
use crate::views::predictions::comparison_ratings;
use ftl_commands::Db;
use ftl_domain::comparison::{self as cmp, Preference, Shown};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferenceFormat {
    Trl,
    OpenaiDpo,
    Grouped,
    Kto,
}

/// Rows of one compared prompt go to one side: train when
/// `cmp::in_train_split(seed, prompt, train_fraction)`.
#[derive(Debug, Clone)]
pub struct Split {
    pub seed: String,
    pub train_fraction: f64,
}

/// One side of an export: its rows, the JSONL file (`\n` after every line)
/// and, for OpenAI DPO, the sidecar in the same line order.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferenceFile {
    pub rows: usize,
    pub jsonl: String,
    pub metadata_jsonl: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreferenceExport {
    /// The training side (everything without a split).
    pub train: PreferenceFile,
    /// The test side, with a split.
    pub test: Option<PreferenceFile>,
    /// Pairs dropped because raters voted them both ways.
    pub contradictions_dropped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PreferenceError {
    #[error("comparison {0} not found")]
    NotFound(Uuid),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// A row in export order: its compared prompt, the row, its sidecar line.
type Row = (String, Value, Option<Value>);

/// The export of these sessions of `project` in `format`.
pub async fn preferences(
    db: &Db,
    project: Uuid,
    comparisons: &[Uuid],
    format: PreferenceFormat,
    neutral_as_rejected: bool,
    split: Option<&Split>,
) -> Result<PreferenceExport, PreferenceError> {
    let mut pairs = vec![];
    // (compared prompt, record) for the per-vote formats.
    let mut records: Vec<(String, Value)> = vec![];
    for &id in comparisons {
        let session = view::comparison(db, project, id)
            .await?
            .ok_or(PreferenceError::NotFound(id))?;
        let responses = view::responses(db, id).await?;
        let ratings = comparison_ratings(db, id).await?;
        for v in view::votes(db, id).await? {
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
    let contradictions_dropped = before - pairs.len();
    let rows: Vec<Row> = match format {
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
    let (train, test): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|(compared, _, _)| {
        split.is_none_or(|s| cmp::in_train_split(&s.seed, compared, s.train_fraction))
    });
    Ok(PreferenceExport {
        train: file(&train, sidecar),
        test: split.map(|_| file(&test, sidecar)),
        contradictions_dropped,
    })
}

fn file(side: &[&Row], sidecar: bool) -> PreferenceFile {
    PreferenceFile {
        rows: side.len(),
        jsonl: side.iter().map(|(_, r, _)| format!("{r}\n")).collect(),
        metadata_jsonl: sidecar.then(|| {
            side.iter()
                .filter_map(|(_, _, m)| m.as_ref().map(|m| format!("{m}\n")))
                .collect()
        }),
    }
}
