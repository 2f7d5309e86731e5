//! The pairwise judge with position swap (`judging.md` §3): two verdicts per
//! pair combined into a winner and a consistency flag, and the
//! position-consistency rate per judge model.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One call's verdict, by position: `A` is the response shown first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    A,
    B,
    #[serde(rename = "tie")]
    Tie,
}

/// The pair's outcome, by model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    ModelA,
    ModelB,
    Tie,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairOutcome {
    pub winner: Winner,
    /// Both calls agreed (same model, or both tie).
    pub consistent: bool,
}

impl Verdict {
    /// The verdict by model, given which model was shown first.
    fn by_model(self, a_shown_first: bool) -> Winner {
        match (self, a_shown_first) {
            (Verdict::Tie, _) => Winner::Tie,
            (Verdict::A, true) | (Verdict::B, false) => Winner::ModelA,
            (Verdict::A, false) | (Verdict::B, true) => Winner::ModelB,
        }
    }
}

/// Combine the verdict of the call shown (A, B) with that of the call shown
/// (B, A): both naming the same model → that model wins; both tie → tie;
/// anything else → tie with `consistent = false` (MT-Bench counts
/// inconsistent verdicts as ties).
pub fn combine(first: Verdict, swapped: Verdict) -> PairOutcome {
    let (one, two) = (first.by_model(true), swapped.by_model(false));
    if one == two {
        PairOutcome {
            winner: one,
            consistent: true,
        }
    } else {
        PairOutcome {
            winner: Winner::Tie,
            consistent: false,
        }
    }
}

/// Consistent pairs / pairs; `None` with no pairs.
pub fn consistency_rate<'a>(outcomes: impl IntoIterator<Item = &'a PairOutcome>) -> Option<f64> {
    let (mut pairs, mut consistent) = (0usize, 0usize);
    for o in outcomes {
        pairs += 1;
        consistent += usize::from(o.consistent);
    }
    (pairs > 0).then(|| consistent as f64 / pairs as f64)
}

/// Per judge model: consistent pairs, pairs, and their rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Consistency {
    pub consistent: u64,
    pub pairs: u64,
    pub rate: f64,
}

/// The position-consistency rate of each judge model over `(judge_model,
/// outcome)` pairs.
pub fn consistency_by_judge<'a>(
    outcomes: impl IntoIterator<Item = (&'a str, &'a PairOutcome)>,
) -> BTreeMap<String, Consistency> {
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (judge, o) in outcomes {
        let c = counts.entry(judge.to_string()).or_default();
        c.0 += u64::from(o.consistent);
        c.1 += 1;
    }
    counts
        .into_iter()
        .map(|(judge, (consistent, pairs))| {
            let rate = consistent as f64 / pairs as f64;
            (
                judge,
                Consistency {
                    consistent,
                    pairs,
                    rate,
                },
            )
        })
        .collect()
}
