//! The comparison lab: 2–4 models answer the same prompts; raters see the
//! answers blind, in a per-prompt random column order, and vote one
//! preferred, others rejected (or neutral, or a tie); votes become
//! preference data (`specs/formats.md` §4).

use crate::DomainError;
use crate::ids::ProjectId;
use crate::prediction::ChatMessage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const MIN_MODELS: usize = 2;
pub const MAX_MODELS: usize = 4;
pub const MAX_PROMPTS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preference {
    Preferred,
    Rejected,
    Neutral,
}

/// `comparison.created` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonCreated {
    pub comparison_id: Uuid,
    pub project_id: ProjectId,
    pub name: String,
    pub model_ids: Vec<Uuid>,
    /// The context of each prompt (messages before the compared turn).
    pub prompts: Vec<Vec<ChatMessage>>,
}

/// `comparison.response_recorded` v1: one model's answer to one prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecorded {
    pub comparison_id: Uuid,
    pub prompt_index: u32,
    pub model_id: Uuid,
    pub model_name: String,
    /// The prediction this answer was recorded as.
    pub prediction_id: Uuid,
    pub content: String,
}

/// `comparison.voted` v1: one rater's vote on one prompt's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Voted {
    pub comparison_id: Uuid,
    pub prompt_index: u32,
    pub rater: String,
    /// Per model: preferred (at most one), rejected or neutral.
    pub preferences: BTreeMap<Uuid, Preference>,
}

impl ComparisonCreated {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut distinct = self.model_ids.clone();
        distinct.sort();
        distinct.dedup();
        if distinct.len() != self.model_ids.len()
            || !(MIN_MODELS..=MAX_MODELS).contains(&self.model_ids.len())
        {
            return Err(DomainError::invalid(
                "modelIds",
                format!("{MIN_MODELS} to {MAX_MODELS} different models"),
            ));
        }
        if self.prompts.is_empty() || self.prompts.len() > MAX_PROMPTS {
            return Err(DomainError::limit(
                "prompts",
                format!("1 to {MAX_PROMPTS} prompts"),
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > crate::limits::MAX_NAME_LEN {
            return Err(DomainError::invalid("name", "must be 1 to 256 bytes"));
        }
        Ok(())
    }
}

impl Voted {
    /// Against the session's models: every shown model has a preference, at
    /// most one is preferred.
    pub fn validate(&self, models: &[Uuid], prompts: usize) -> Result<(), DomainError> {
        crate::feedback::validate_rater(&self.rater)?;
        if self.prompt_index as usize >= prompts {
            return Err(DomainError::invalid("promptIndex", "no such prompt"));
        }
        let mut keys: Vec<Uuid> = self.preferences.keys().copied().collect();
        let mut expected = models.to_vec();
        keys.sort();
        expected.sort();
        if keys != expected {
            return Err(DomainError::invalid(
                "preferences",
                "give a preference for every response shown",
            ));
        }
        if self
            .preferences
            .values()
            .filter(|p| **p == Preference::Preferred)
            .count()
            > 1
        {
            return Err(DomainError::invalid(
                "preferences",
                "at most one response is preferred",
            ));
        }
        Ok(())
    }
}

/// The blind display order of a prompt's `n` answers: `order[position] =
/// index of the model in the session`, a permutation fixed by the
/// comparison and prompt (every rater sees the same, stable across reloads).
pub fn column_order(comparison: Uuid, prompt_index: u32, n: usize) -> Vec<usize> {
    let mut seed = Sha256::new();
    seed.update(comparison.as_bytes());
    seed.update(prompt_index.to_be_bytes());
    let digest = seed.finalize();
    let mut state = u64::from_be_bytes(digest[..8].try_into().unwrap_or([1; 8])) | 1;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Leak-free split bucket (§4): `u64_be(SHA-256(seed ":" id)[..8]) mod 10000`.
pub fn split_bucket(split_seed: &str, comparison_id: &str) -> u64 {
    let digest = Sha256::digest(format!("{split_seed}:{comparison_id}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % 10_000
}

/// One compared answer, as the export sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    pub model: String,
    pub response_id: String,
    pub content: String,
    /// Display position (0-based).
    pub position: usize,
    pub preference: Preference,
    /// The voter's ratings of this answer in this comparison (clarity,
    /// accuracy, conciseness, overall: those given), `{}` when unrated.
    pub ratings: Value,
}

/// One vote as the export reads it: a compared prompt, what was shown, who
/// voted and when (RFC 3339).
#[derive(Debug, Clone, Copy)]
pub struct Vote<'a> {
    pub comparison_id: &'a str,
    pub context: &'a [ChatMessage],
    pub shown: &'a [Shown],
    pub rater: &'a str,
    pub created_at: &'a str,
}

/// One preference pair with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub comparison_id: String,
    pub pair_index: usize,
    pub context: Vec<ChatMessage>,
    pub chosen: Shown,
    pub rejected: Shown,
    pub rater: String,
    pub created_at: String,
}

/// Pair expansion of one vote: the preferred answer with each rejected one
/// (and each neutral one with `neutral_as_rejected`), in display order.
pub fn pairs(v: &Vote, neutral_as_rejected: bool) -> Vec<Pair> {
    let Some(chosen) = v
        .shown
        .iter()
        .find(|s| s.preference == Preference::Preferred)
    else {
        return vec![];
    };
    let mut others: Vec<&Shown> = v
        .shown
        .iter()
        .filter(|s| {
            s.preference == Preference::Rejected
                || (neutral_as_rejected && s.preference == Preference::Neutral)
        })
        .collect();
    others.sort_by_key(|s| s.position);
    others
        .into_iter()
        .enumerate()
        .map(|(i, r)| Pair {
            comparison_id: v.comparison_id.to_string(),
            pair_index: i,
            context: v.context.to_vec(),
            chosen: chosen.clone(),
            rejected: r.clone(),
            rater: v.rater.to_string(),
            created_at: v.created_at.to_string(),
        })
        .collect()
}

/// The grouped record of one vote (§4, `ftl_preference_grouped`): the
/// preferred answer and every rejected one (neutral ones too with
/// `neutral_as_rejected`) in display order; `None` without a preferred one.
pub fn grouped(v: &Vote, neutral_as_rejected: bool) -> Option<Value> {
    let expanded = pairs(v, neutral_as_rejected);
    let chosen = &expanded.first()?.chosen;
    Some(json!({
        "prompt": v.context,
        "chosen": reply(&chosen.content),
        "rejected": expanded.iter().map(|p| reply(&p.rejected.content)).collect::<Vec<_>>(),
        "metadata": {"comparison_id": v.comparison_id, "chosen_model": chosen.model,
                     "rejected_models": expanded.iter().map(|p| p.rejected.model.clone()).collect::<Vec<_>>(),
                     "rater": v.rater, "created_at": v.created_at},
    }))
}

/// KTO rows of one vote (§4): the preferred answer `label: true`, each
/// rejected one `label: false`, neutral ones left out; none without a
/// preferred answer.
pub fn kto(v: &Vote) -> Vec<Value> {
    if !v
        .shown
        .iter()
        .any(|s| s.preference == Preference::Preferred)
    {
        return vec![];
    }
    let mut rows: Vec<&Shown> = v
        .shown
        .iter()
        .filter(|s| s.preference != Preference::Neutral)
        .collect();
    rows.sort_by_key(|s| s.position);
    rows.into_iter()
        .map(|s| {
            json!({"prompt": v.context, "completion": reply(&s.content),
                   "label": s.preference == Preference::Preferred,
                   "metadata": {"comparison_id": v.comparison_id, "model": s.model,
                                "response_id": s.response_id, "rater": v.rater,
                                "created_at": v.created_at, "ratings": s.ratings}})
        })
        .collect()
}

/// Whether a comparison's rows go to the training side of a leak-free
/// split (§4): `bucket < floor(train_fraction · 10000)`.
pub fn in_train_split(split_seed: &str, comparison_id: &str, train_fraction: f64) -> bool {
    split_bucket(split_seed, comparison_id) < (train_fraction * 10_000.0).floor() as u64
}

fn reply(content: &str) -> Value {
    json!([{"role": "assistant", "content": content}])
}

impl Pair {
    pub fn metadata(&self) -> Value {
        json!({
            "comparison_id": self.comparison_id, "pair_index": self.pair_index,
            "chosen_model": self.chosen.model, "rejected_model": self.rejected.model,
            "chosen_response_id": self.chosen.response_id, "rejected_response_id": self.rejected.response_id,
            "rater": self.rater, "created_at": self.created_at,
            "ratings": {"chosen": self.chosen.ratings, "rejected": self.rejected.ratings},
        })
    }

    /// TRL explicit-prompt conversational preference row (with metadata).
    pub fn trl(&self) -> Value {
        json!({"prompt": self.context, "chosen": reply(&self.chosen.content),
               "rejected": reply(&self.rejected.content), "metadata": self.metadata()})
    }

    /// OpenAI DPO row (no extra keys) and its sidecar metadata line.
    pub fn openai_dpo(&self) -> (Value, Value) {
        (
            json!({"input": {"messages": self.context, "tools": [], "parallel_tool_calls": true},
                   "preferred_output": reply(&self.chosen.content),
                   "non_preferred_output": reply(&self.rejected.content)}),
            self.metadata(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_buckets_match_the_specs_example() {
        assert_eq!(split_bucket("ftl", "cmp_001"), 937);
        assert_eq!(split_bucket("ftl", "cmp_002"), 6160);
        assert_eq!(split_bucket("ftl", "cmp_003"), 4134);
        assert_eq!(split_bucket("ftl", "cmp_004"), 2666);
        assert_eq!(split_bucket("ftl", "cmp_005"), 9604);
    }

    fn shown(model: &str, position: usize, preference: Preference) -> Shown {
        Shown {
            model: model.into(),
            response_id: format!("r-{model}"),
            content: format!("answer of {model}"),
            position,
            preference,
            ratings: json!({"overall": position + 1}),
        }
    }

    const AT: &str = "2026-12-01T10:00:00.000Z";

    fn vote<'a>(shown: &'a [Shown], ctx: &'a [ChatMessage]) -> Vote<'a> {
        Vote {
            comparison_id: "cmp_7",
            context: ctx,
            shown,
            rater: "usr_3",
            created_at: AT,
        }
    }

    /// cmp_7 of the spec: its answers as shown, and its one-message context.
    fn worked_example() -> (Vec<Shown>, Vec<ChatMessage>) {
        let s = vec![
            shown("base", 0, Preference::Neutral),
            shown("ft-v1", 1, Preference::Preferred),
            shown("ft-v2", 2, Preference::Rejected),
            shown("ref", 3, Preference::Rejected),
        ];
        let ctx = vec![ChatMessage {
            role: "user".into(),
            content: "q".into(),
        }];
        (s, ctx)
    }

    #[test]
    fn pair_expansion_follows_the_worked_example() {
        // cmp_7: base neutral, ft-v1 preferred, ft-v2 rejected, ref rejected.
        let (s, ctx) = worked_example();
        let p = pairs(&vote(&s, &ctx), false);
        let got: Vec<(usize, &str, &str)> = p
            .iter()
            .map(|p| {
                (
                    p.pair_index,
                    p.chosen.model.as_str(),
                    p.rejected.model.as_str(),
                )
            })
            .collect();
        assert_eq!(got, vec![(0, "ft-v1", "ft-v2"), (1, "ft-v1", "ref")]);
        let with_neutral = pairs(&vote(&s, &ctx), true);
        let rejected: Vec<&str> = with_neutral
            .iter()
            .map(|p| p.rejected.model.as_str())
            .collect();
        assert_eq!(rejected, vec!["base", "ft-v2", "ref"]);
        // No preferred answer: no pairs.
        let tie: Vec<Shown> = s
            .iter()
            .cloned()
            .map(|mut x| {
                x.preference = Preference::Neutral;
                x
            })
            .collect();
        assert!(pairs(&vote(&tie, &ctx), true).is_empty());
        let row = p[0].trl();
        assert_eq!(row["chosen"][0]["content"], "answer of ft-v1");
        assert_eq!(row["metadata"]["pair_index"], 0);
        // formats.md §4: every pair row carries created_at and both ratings.
        assert_eq!(row["metadata"]["created_at"], AT);
        assert_eq!(
            row["metadata"]["ratings"],
            json!({"chosen": {"overall": 2}, "rejected": {"overall": 3}})
        );
        let (dpo, meta) = p[1].openai_dpo();
        assert_eq!(dpo["non_preferred_output"][0]["content"], "answer of ref");
        assert!(dpo.get("metadata").is_none(), "OpenAI validates its keys");
        assert_eq!(meta["rejected_model"], "ref");
        assert_eq!(meta["ratings"]["rejected"], json!({"overall": 4}));
    }

    #[test]
    fn grouped_and_kto_follow_the_worked_example() {
        // cmp_7 again: grouped 1 record (ft-v1 over [ft-v2, ref]); KTO 3 rows.
        let (s, ctx) = worked_example();
        let g = grouped(&vote(&s, &ctx), false).unwrap();
        assert_eq!(g["metadata"]["created_at"], AT);
        assert_eq!(g["chosen"][0]["content"], "answer of ft-v1");
        assert_eq!(g["metadata"]["rejected_models"], json!(["ft-v2", "ref"]));
        assert_eq!(g["rejected"][1][0]["content"], "answer of ref");
        let k = kto(&vote(&s, &ctx));
        assert_eq!(k[0]["metadata"]["created_at"], AT);
        let got: Vec<(&str, bool)> = k
            .iter()
            .map(|r| {
                (
                    r["metadata"]["model"].as_str().unwrap(),
                    r["label"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, vec![("ft-v1", true), ("ft-v2", false), ("ref", false)]);
        let tie: Vec<Shown> = s
            .iter()
            .cloned()
            .map(|mut x| {
                x.preference = Preference::Neutral;
                x
            })
            .collect();
        assert!(grouped(&vote(&tie, &ctx), true).is_none());
        assert!(kto(&vote(&tie, &ctx)).is_empty());
        // The spec's split example at the default 0.9.
        let train: Vec<bool> = ["cmp_001", "cmp_002", "cmp_003", "cmp_004", "cmp_005"]
            .iter()
            .map(|c| in_train_split("ftl", c, 0.9))
            .collect();
        assert_eq!(train, vec![true, true, true, true, false]);
    }

    #[test]
    fn column_order_is_a_stable_permutation_that_varies_by_prompt() {
        let id = Uuid::from_u128(7);
        let a = column_order(id, 0, 4);
        assert_eq!(a, column_order(id, 0, 4));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
        // Over many prompts every model shows up first at least once.
        let firsts: std::collections::BTreeSet<usize> =
            (0..40).map(|i| column_order(id, i, 4)[0]).collect();
        assert_eq!(firsts.len(), 4);
    }
}
