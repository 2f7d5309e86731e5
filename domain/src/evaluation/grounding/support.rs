//! Lexical support of a sentence by passages (`judging.md` §6 step 4).

use super::text::Lexicon;
use std::collections::BTreeSet;

/// The support threshold τ: a sentence is supported (and, for citations,
/// entailed) when its support is at least τ.
pub const TAU: f64 = 0.6;

/// `support(s, P) = (0.5u + 0.5b)·num` with
///
/// - `u = |set(CT(s)) ∩ ∪CT(P)| / |set(CT(s))|`,
/// - `b = |Big(s) ∩ ∪Big(P)| / |Big(s)|`, or `b = u` when s has no bigram,
/// - `num` = the share of the numbers of s found among the tokens of P, or 1
///   when s has none.
///
/// Bigrams are taken within each passage (no pair spans two passages); the
/// sets of s are sets (a repeated token, bigram or number counts once). A
/// sentence with no content token has support 0 (it is never a claim).
pub fn support(sentence: &Lexicon, passages: &[&Lexicon]) -> f64 {
    if sentence.distinct.is_empty() {
        return 0.0;
    }
    let tokens: BTreeSet<&String> = passages.iter().flat_map(|p| &p.distinct).collect();
    let bigrams: BTreeSet<&(String, String)> = passages.iter().flat_map(|p| &p.bigrams).collect();
    let share = |found: usize, of: usize| found as f64 / of as f64;
    let u = share(
        sentence
            .distinct
            .iter()
            .filter(|t| tokens.contains(t))
            .count(),
        sentence.distinct.len(),
    );
    let b = if sentence.bigrams.is_empty() {
        u
    } else {
        share(
            sentence
                .bigrams
                .iter()
                .filter(|g| bigrams.contains(g))
                .count(),
            sentence.bigrams.len(),
        )
    };
    let num = if sentence.numbers.is_empty() {
        1.0
    } else {
        share(
            sentence
                .numbers
                .iter()
                .filter(|t| tokens.contains(t))
                .count(),
            sentence.numbers.len(),
        )
    };
    (0.5 * u + 0.5 * b) * num
}

/// Whether `support ≥ τ`.
pub fn supports(sentence: &Lexicon, passages: &[&Lexicon]) -> bool {
    support(sentence, passages) >= TAU
}
