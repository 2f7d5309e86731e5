//! Citation recall and precision, ALCE's procedure with lexical entailment
//! (`support ≥ τ`) in place of NLI (`judging.md` §6 step 6).

use super::support::{support, supports};
use super::text::{Lexicon, resolve_marker};
use super::{Analysis, AnalyzedSentence};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One claim's citations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimCitations {
    pub span: (usize, usize),
    pub text: String,
    /// The 1-based numbers its markers name, in order, as written.
    pub markers: Vec<String>,
    /// Whether any of its markers names no retrieved passage.
    pub invalid: bool,
    /// The support of the claim by its cited passages together; `None` when
    /// it cites nothing or cites an invalid index.
    pub support: Option<f64>,
    /// Cited passages together support the claim (false when uncited or any
    /// citation is invalid).
    pub joint: bool,
    /// Per marker, whether that citation is relevant.
    pub relevant: Vec<bool>,
}

/// A marker that names no retrieved passage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidCitation {
    /// The span of the sentence that carries it.
    pub span: (usize, usize),
    /// The marker's number as written (`"3"` for `[3]`).
    pub marker: String,
    /// Whether that sentence is a claim (only claims count in recall and
    /// precision; a marker anywhere is checked).
    pub claim: bool,
}

/// The citation report of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citations {
    pub claims: Vec<ClaimCitations>,
    /// Markers on claims (the precision denominator, invalid ones included).
    pub citations: usize,
    pub relevant_citations: usize,
    /// Claims with `joint` true / claims (uncited claims count as 0); `None`
    /// with no claims.
    pub recall: Option<f64>,
    /// Relevant citations / citations; `None` when claims cite nothing.
    pub precision: Option<f64>,
    pub uncited_claim_spans: Vec<(usize, usize)>,
    /// Markers naming no retrieved passage, over every sentence.
    pub invalid_citations: Vec<InvalidCitation>,
}

impl Analysis {
    /// Recall, precision, uncited claims and invalid citations.
    pub fn citations(&self) -> Citations {
        let claims: Vec<ClaimCitations> = self
            .sentences
            .iter()
            .filter(|s| s.is_claim())
            .map(|s| self.claim_citations(s))
            .collect();
        let citations = claims.iter().map(|c| c.markers.len()).sum();
        let relevant_citations = claims
            .iter()
            .flat_map(|c| &c.relevant)
            .filter(|r| **r)
            .count();
        let joint = claims.iter().filter(|c| c.joint).count();
        let n = self.passages.len();
        Citations {
            recall: (!claims.is_empty()).then(|| joint as f64 / claims.len() as f64),
            precision: (citations > 0).then(|| relevant_citations as f64 / citations as f64),
            uncited_claim_spans: claims
                .iter()
                .filter(|c| c.markers.is_empty())
                .map(|c| c.span)
                .collect(),
            invalid_citations: self
                .sentences
                .iter()
                .flat_map(|s| {
                    s.markers
                        .iter()
                        .filter(move |m| resolve_marker(m, n).is_none())
                        .map(|m| InvalidCitation {
                            span: s.sentence.span,
                            marker: m.clone(),
                            claim: s.is_claim(),
                        })
                })
                .collect(),
            citations,
            relevant_citations,
            claims,
        }
    }

    fn claim_citations(&self, s: &AnalyzedSentence) -> ClaimCitations {
        let n = self.passages.len();
        let resolved: Vec<Option<usize>> = s.markers.iter().map(|m| resolve_marker(m, n)).collect();
        let invalid = resolved.iter().any(Option::is_none);
        let cited: BTreeSet<usize> = resolved.iter().flatten().copied().collect();
        let joint_support =
            (!cited.is_empty() && !invalid).then(|| support(&s.lexicon, &self.pick(&cited)));
        let joint = joint_support.is_some_and(|v| v >= super::TAU);
        let relevant = resolved
            .iter()
            .map(|k| match k {
                Some(k) if joint => resolved.len() == 1 || self.relevant(s, *k, &cited),
                _ => false,
            })
            .collect();
        ClaimCitations {
            span: s.sentence.span,
            text: s.sentence.text.clone(),
            markers: s.markers.clone(),
            invalid,
            support: joint_support,
            joint,
            relevant,
        }
    }

    /// With several citations and `joint`: citation k is relevant if its
    /// passage alone supports the claim, or if the other cited passages
    /// (without passage k) do not.
    fn relevant(&self, s: &AnalyzedSentence, k: usize, cited: &BTreeSet<usize>) -> bool {
        if supports(&s.lexicon, &self.pick(&BTreeSet::from([k]))) {
            return true;
        }
        let others: BTreeSet<usize> = cited.iter().copied().filter(|i| *i != k).collect();
        !supports(&s.lexicon, &self.pick(&others))
    }

    fn pick(&self, indices: &BTreeSet<usize>) -> Vec<&Lexicon> {
        indices
            .iter()
            .filter_map(|i| self.passages.get(*i))
            .collect()
    }
}
