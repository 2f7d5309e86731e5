//! Sentence splitting with spans in Unicode code points (`judging.md` §6 step 3).

use super::text::Lexer;
use serde::{Deserialize, Serialize};

/// One sentence of an answer: `[start, end)` in code points of the original
/// answer, and its trimmed text (citation markers kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    pub span: (usize, usize),
    pub text: String,
}

fn is_terminal(c: char) -> bool {
    matches!(c, '.' | '!' | '?')
}

impl Lexer {
    /// The sentences of `answer`, scanned in the original text:
    ///
    /// - at `.`, `!` or `?`, the citation markers that directly follow are
    ///   absorbed; if the next character is then whitespace or the end of
    ///   the text, the sentence ends there (so `3.5` does not split, and
    ///   `intervals.[1] Next` keeps `[1]` in the first sentence);
    /// - a `\n` ends a sentence and belongs to neither;
    /// - empty or all-whitespace segments are dropped;
    /// - `start` skips leading whitespace, `end` is the split position
    ///   (trailing spaces before a newline or the end stay inside), and the
    ///   text is the trimmed segment.
    pub fn sentences(&self, answer: &str) -> Vec<Sentence> {
        let chars: Vec<(usize, char)> = answer.char_indices().collect();
        let n = chars.len();
        let byte_at = |i: usize| chars.get(i).map_or(answer.len(), |(b, _)| *b);
        let mut out = Vec::new();
        let mut push = |from: usize, to: usize| {
            let lead = chars[from..to]
                .iter()
                .take_while(|(_, c)| c.is_whitespace())
                .count();
            let text = answer[byte_at(from)..byte_at(to)].trim();
            if from + lead < to && !text.is_empty() {
                out.push(Sentence {
                    span: (from + lead, to),
                    text: text.to_string(),
                });
            }
        };
        let (mut segment, mut i) = (0, 0);
        while i < n {
            let c = chars[i].1;
            if c == '\n' {
                push(segment, i);
                segment = i + 1;
                i += 1;
                continue;
            }
            if is_terminal(c) {
                let mut j = i + 1;
                while let Some(len) = self.marker_len_at(answer, byte_at(j)) {
                    // A marker is `[`, digits, `]`: count its code points.
                    let end = byte_at(j) + len;
                    j += answer[byte_at(j)..end].chars().count();
                }
                if j == n || chars[j].1.is_whitespace() {
                    push(segment, j);
                    segment = j;
                    i = j;
                    continue;
                }
            }
            i += 1;
        }
        push(segment, n);
        out
    }
}
