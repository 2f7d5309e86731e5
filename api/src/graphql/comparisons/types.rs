//! The lab as GraphQL shows it: sessions, prompts, blind responses, votes,
//! and the preference export's inputs and result.

use crate::graphql::registry::Dataset;
use async_graphql::{Enum, ID, InputObject, SimpleObject};

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
