//! `exportPreferences`: the sessions' votes as preference data
//! (`ftl_projections::export::preferences`), optionally registered as a
//! dataset a DPO job trains on.

use super::types::*;
use crate::graphql::common::{Code, caller, gql_error, internal, parse_id, state};
use crate::graphql::registry::Dataset;
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;
use ftl_effects::training::{datasets, storage};
use ftl_projections::export::preferences::{self as prefs, PreferenceError};
use ftl_projections::views::training as view;

#[derive(Default)]
pub struct PreferenceMutation;

#[Object]
impl PreferenceMutation {
    /// Preference data from the votes of the given sessions (`formats.md`
    /// §4): TRL / OpenAI DPO rows, one per (preferred, rejected) pair in
    /// display order, each carrying its comparison id (pairs voted both ways
    /// by different raters are dropped and counted); GROUPED, one record per
    /// vote; KTO, each voted answer labelled. `split` divides the rows
    /// train/test by compared prompt, never straddling. With `datasetName`
    /// the (training) file is registered as a dataset, ready for a DPO job.
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
        if let Some(name) = &dataset_name
            && (!storage::valid_name(name) || !name.ends_with(".jsonl"))
        {
            return Err(gql_error(
                Code::InvalidInput,
                "datasetName is one path segment ending in .jsonl",
            ));
        }
        let ids = comparison_ids
            .iter()
            .map(|id| parse_id(id, "comparisonIds"))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let split = split.map(|s| prefs::Split {
            seed: s.seed,
            train_fraction: s.train_fraction,
        });
        let export = prefs::preferences(
            &st.effects.db,
            c.project_id.0,
            &ids,
            format.into(),
            neutral_as_rejected,
            split.as_ref(),
        )
        .await
        .map_err(|e| match e {
            PreferenceError::NotFound(_) => gql_error(Code::NotFound, "comparison not found"),
            PreferenceError::Db(e) => internal(e),
        })?;
        let dataset = match dataset_name {
            Some(name) if export.train.rows > 0 => {
                let r = datasets::register(
                    &st.effects,
                    c,
                    &name,
                    datasets::Source::Upload,
                    export.train.jsonl.clone().into(),
                )
                .await
                .map_err(|e| gql_error(Code::Internal, e.to_string()))?;
                view::dataset(&st.effects.db, c.project_id.0, r.id)
                    .await
                    .map_err(internal)?
                    .map(Dataset::from)
            }
            _ => None,
        };
        Ok(PreferenceExport {
            rows: export.train.rows as i32,
            contradictions_dropped: export.contradictions_dropped as i32,
            jsonl: export.train.jsonl,
            metadata_jsonl: export.train.metadata_jsonl,
            test_rows: export.test.as_ref().map(|t| t.rows as i32),
            test_jsonl: export.test.as_ref().map(|t| t.jsonl.clone()),
            test_metadata_jsonl: export.test.and_then(|t| t.metadata_jsonl),
            dataset,
        })
    }
}

impl From<PreferenceFormat> for prefs::PreferenceFormat {
    fn from(f: PreferenceFormat) -> Self {
        match f {
            PreferenceFormat::Trl => Self::Trl,
            PreferenceFormat::OpenaiDpo => Self::OpenaiDpo,
            PreferenceFormat::Grouped => Self::Grouped,
            PreferenceFormat::Kto => Self::Kto,
        }
    }
}
