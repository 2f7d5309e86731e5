//! Normalisation, content tokens, bigrams and numbers (`judging.md` §6 steps 1–2).

use crate::DomainError;
use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

/// The stopwords of §6 (appendix, v1), sorted so that a lookup is a binary
/// search. The same list as the `stopwords` array of `grounding_vectors.json`.
pub const STOPWORDS: [&str; 108] = [
    "a", "about", "again", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "being", "both", "but", "by", "can", "could", "did", "do", "does", "done", "down", "each",
    "else", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "may", "me",
    "might", "more", "most", "must", "my", "no", "nor", "not", "of", "off", "on", "once", "only",
    "or", "other", "our", "out", "over", "own", "same", "shall", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this",
    "those", "to", "too", "under", "up", "very", "was", "we", "were", "what", "when", "where",
    "which", "who", "whom", "whose", "why", "will", "with", "would", "you", "your",
];

/// A citation marker: `[k]` with k decimal digits (§6 step 1).
const MARKER: &str = r"\[(\d+)\]";
/// A token of the normalised text: ASCII letters and digits, a decimal part
/// kept whole (§6 step 2).
const TOKEN: &str = r"[a-z0-9]+(?:\.[0-9]+)?";

/// The compiled patterns of §6. Built once; the patterns are constants, so a
/// build failure cannot happen (a test builds them), but it is reported as an
/// error rather than a panic.
pub struct Lexer {
    marker: Regex,
    marker_at_start: Regex,
    token: Regex,
}

static LEXER: LazyLock<Result<Lexer, regex::Error>> = LazyLock::new(|| {
    Ok(Lexer {
        marker: Regex::new(MARKER)?,
        marker_at_start: Regex::new(&format!("^{MARKER}"))?,
        token: Regex::new(TOKEN)?,
    })
});

/// The shared [`Lexer`].
pub fn lexer() -> Result<&'static Lexer, DomainError> {
    LEXER.as_ref().map_err(|e| {
        DomainError::invalid(
            "grounding",
            format!("internal: a built-in pattern does not compile: {e}"),
        )
    })
}

/// What the support formula needs of a text: its content tokens `CT` in
/// order, their set, the set of adjacent pairs and the set of numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lexicon {
    pub tokens: Vec<String>,
    pub distinct: BTreeSet<String>,
    pub bigrams: BTreeSet<(String, String)>,
    /// Tokens that start with a digit, compared as literal strings.
    pub numbers: BTreeSet<String>,
}

impl Lexicon {
    pub fn new(tokens: Vec<String>) -> Self {
        let distinct = tokens.iter().cloned().collect();
        let bigrams = tokens
            .windows(2)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect();
        let numbers = tokens.iter().filter(|t| is_number(t)).cloned().collect();
        Self {
            tokens,
            distinct,
            bigrams,
            numbers,
        }
    }
}

/// A token that starts with a digit is a number.
pub fn is_number(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_digit())
}

/// The stemming rule: a token longer than 3 characters that ends in `s`, not
/// in `ss`, and does not start with a digit loses the final `s`.
pub fn stem(token: &str) -> &str {
    if token.chars().count() > 3
        && token.ends_with('s')
        && !token.ends_with("ss")
        && !is_number(token)
    {
        &token[..token.len() - 1]
    } else {
        token
    }
}

pub fn is_stopword(token: &str) -> bool {
    STOPWORDS.binary_search(&token).is_ok()
}

impl Lexer {
    /// Step 1: citation markers replaced by a space, then NFKC, then lower case.
    pub fn normalize(&self, text: &str) -> String {
        let unmarked = self.marker.replace_all(text, " ");
        unmarked.nfkc().collect::<String>().to_lowercase()
    }

    /// Step 2: the content tokens `CT` of a text, in order (normalised,
    /// tokenised, stopwords dropped, then stemmed).
    pub fn content_tokens(&self, text: &str) -> Vec<String> {
        let normalized = self.normalize(text);
        self.token
            .find_iter(&normalized)
            .map(|m| m.as_str())
            .filter(|t| !is_stopword(t))
            .map(|t| stem(t).to_string())
            .collect()
    }

    pub fn lexicon(&self, text: &str) -> Lexicon {
        Lexicon::new(self.content_tokens(text))
    }

    /// The citation markers of a text in order, as their digit strings.
    pub fn markers<'t>(&self, text: &'t str) -> Vec<&'t str> {
        self.marker
            .captures_iter(text)
            .filter_map(|c| c.get(1))
            .map(|m| m.as_str())
            .collect()
    }

    /// The length in bytes of a citation marker that starts exactly at
    /// byte `at` of `text`, if one does.
    pub fn marker_len_at(&self, text: &str, at: usize) -> Option<usize> {
        let rest = text.get(at..)?;
        self.marker_at_start.find(rest).map(|m| m.end())
    }
}

/// The 1-based passage number a marker's digits name, resolved against
/// `passages` passages: `Some(zero-based index)` when it names one of them;
/// `None` for 0, past the last passage, or digits that do not read as a
/// number (too long, or decimal digits of another script after NFKC).
pub fn resolve_marker(digits: &str, passages: usize) -> Option<usize> {
    let ascii: String = digits.nfkc().collect();
    let k: usize = ascii.parse().ok()?;
    (1..=passages).contains(&k).then(|| k - 1)
}
