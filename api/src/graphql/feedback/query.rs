//! `feedbackSummary` and `agreement`.

use super::types::*;
use crate::graphql::common::errors::internal;
use crate::graphql::common::parse_id;
use crate::graphql::common::{caller, state};
use async_graphql::{Context, ID, Object};
use ftl_domain::project::Scope;
use ftl_projections::views::predictions as view;

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
