//! The feedback summary's shapes: axes, their statistics, tags, calibration
//! and agreement.

use async_graphql::{Enum, InputObject, SimpleObject};

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
    pub(super) fn index(self) -> usize {
        self as usize
    }
    pub(super) fn name(self) -> &'static str {
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

pub(super) fn stats(axis: Axis, values: &[i64]) -> AxisStats {
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
