//! Model-free groundedness, no-hallucination and citation checks
//! (`judging.md` §6): a deterministic screening score over lexical overlap.
//!
//! Low scores reliably flag unsupported claims; high scores do not prove
//! correctness (overlap cannot see negation, contradiction or paraphrase).
//! [`analyze`] splits and tokenises an answer and its passages once;
//! [`Analysis::groundedness`] and [`Analysis::citations`] read the result.

mod citations;
mod sentences;
mod support;
mod text;

pub use citations::{Citations, ClaimCitations, InvalidCitation};
pub use sentences::Sentence;
pub use support::{TAU, support, supports};
pub use text::{Lexer, Lexicon, STOPWORDS, is_number, is_stopword, lexer, resolve_marker, stem};

use crate::DomainError;
use serde::{Deserialize, Serialize};

/// A sentence with fewer distinct content tokens is not a claim ("Sure!").
pub const MIN_CLAIM_TOKENS: usize = 3;
/// Groundedness passes when `supported_ratio` reaches this (the existing
/// app's 70 % bar).
pub const PASS_RATIO: f64 = 0.7;

/// An answer split into sentences, each with its lexicon, against the
/// lexicons of the retrieved passages (in order: marker `[k]` names
/// passage k, 1-based).
#[derive(Debug, Clone)]
pub struct Analysis {
    pub sentences: Vec<AnalyzedSentence>,
    pub passages: Vec<Lexicon>,
}

#[derive(Debug, Clone)]
pub struct AnalyzedSentence {
    pub sentence: Sentence,
    pub lexicon: Lexicon,
    /// The digits of its citation markers, in order (duplicates kept).
    pub markers: Vec<String>,
}

impl AnalyzedSentence {
    /// At least [`MIN_CLAIM_TOKENS`] distinct content tokens.
    pub fn is_claim(&self) -> bool {
        self.lexicon.distinct.len() >= MIN_CLAIM_TOKENS
    }
}

/// Split and tokenise `answer` and `passages`.
pub fn analyze(answer: &str, passages: &[&str]) -> Result<Analysis, DomainError> {
    let lexer = lexer()?;
    let sentences = lexer
        .sentences(answer)
        .into_iter()
        .map(|sentence| AnalyzedSentence {
            lexicon: lexer.lexicon(&sentence.text),
            markers: lexer
                .markers(&sentence.text)
                .into_iter()
                .map(str::to_string)
                .collect(),
            sentence,
        })
        .collect();
    let passages = passages.iter().map(|p| lexer.lexicon(p)).collect();
    Ok(Analysis {
        sentences,
        passages,
    })
}

/// One sentence of the groundedness report; `support` and `supported` only
/// for claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentenceSupport {
    pub span: (usize, usize),
    pub text: String,
    pub claim: bool,
    pub support: Option<f64>,
    pub supported: Option<bool>,
}

/// Groundedness of an answer (§6 step 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Groundedness {
    pub sentences: Vec<SentenceSupport>,
    pub claims: usize,
    pub supported_claims: usize,
    /// Supported claims / claims: the primary score; `None` with no claims.
    pub supported_ratio: Option<f64>,
    /// Mean support of the claims; `None` with no claims.
    pub mean_support: Option<f64>,
    /// Spans of the unsupported claims, in order.
    pub hallucinated_spans: Vec<(usize, usize)>,
    /// `supported_ratio ≥ 0.7`; `None` with no claims (nothing to judge).
    pub passed: Option<bool>,
}

impl Analysis {
    pub fn passage_refs(&self) -> Vec<&Lexicon> {
        self.passages.iter().collect()
    }

    /// Every claim against all passages: supported when `support ≥ τ`.
    pub fn groundedness(&self) -> Groundedness {
        let all = self.passage_refs();
        let sentences: Vec<SentenceSupport> = self
            .sentences
            .iter()
            .map(|s| {
                let claim = s.is_claim();
                let value = claim.then(|| support(&s.lexicon, &all));
                SentenceSupport {
                    span: s.sentence.span,
                    text: s.sentence.text.clone(),
                    claim,
                    support: value,
                    supported: value.map(|v| v >= TAU),
                }
            })
            .collect();
        let values: Vec<f64> = sentences.iter().filter_map(|s| s.support).collect();
        let claims = values.len();
        let supported_claims = sentences
            .iter()
            .filter(|s| s.supported == Some(true))
            .count();
        let mean = |sum: f64| (claims > 0).then(|| sum / claims as f64);
        let supported_ratio = mean(supported_claims as f64);
        Groundedness {
            hallucinated_spans: sentences
                .iter()
                .filter(|s| s.supported == Some(false))
                .map(|s| s.span)
                .collect(),
            claims,
            supported_claims,
            supported_ratio,
            mean_support: mean(values.iter().sum()),
            passed: supported_ratio.map(|r| r >= PASS_RATIO),
            sentences,
        }
    }
}

#[cfg(test)]
mod tests;
