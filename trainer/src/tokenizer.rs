//! The byte-level tokenizer and the chat template.
//!
//! Every UTF-8 byte is its own token (ids 0–255), so any text can be encoded
//! and nothing is ever out of vocabulary; a handful of special tokens above
//! them mark sequence ends and chat roles. Token counts reported anywhere
//! (throughput, usage) are counts of these ids — never characters / 4.

use serde::{Deserialize, Serialize};

/// Padding: never a training target.
pub const PAD: u32 = 256;
/// Start of a sequence.
pub const BOS: u32 = 257;
/// End of a document (pretraining) or of a plain completion.
pub const EOS: u32 = 258;
/// Role markers of the chat template: a message is `ROLE bytes… END`.
pub const SYSTEM: u32 = 259;
pub const USER: u32 = 260;
pub const ASSISTANT: u32 = 261;
pub const TOOL: u32 = 262;
/// End of a chat message.
pub const END: u32 = 263;
/// Size of the vocabulary: 256 bytes and the specials above.
pub const VOCAB_SIZE: usize = 264;

/// Chat roles (`formats.md`): `developer` is treated as `system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

impl Role {
    fn marker(self) -> u32 {
        match self {
            Role::System | Role::Developer => SYSTEM,
            Role::User => USER,
            Role::Assistant => ASSISTANT,
            Role::Tool => TOOL,
        }
    }
}

/// One chat message as the trainer sees it: the role, its text, and whether
/// an assistant turn is trained on (`weight` 1) or only context (`weight` 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    pub train: bool,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            train: role == Role::Assistant,
        }
    }
}

/// A token sequence with, per token, whether it is a training target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    pub tokens: Vec<u32>,
    pub targets: Vec<bool>,
}

impl Encoded {
    fn push_all(&mut self, tokens: impl IntoIterator<Item = u32>, target: bool) {
        for token in tokens {
            self.tokens.push(token);
            self.targets.push(target);
        }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Number of tokens that are training targets.
    pub fn target_count(&self) -> usize {
        self.targets.iter().filter(|t| **t).count()
    }
}

/// The bytes of `text` as token ids.
pub fn encode_text(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

/// Text of the byte tokens in `tokens`; special tokens are dropped and invalid
/// UTF-8 (a sequence cut inside a character) is replaced, never an error.
pub fn decode(tokens: &[u32]) -> String {
    let bytes: Vec<u8> = tokens
        .iter()
        .filter_map(|t| u8::try_from(*t).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A plain text trained on in full: `BOS text EOS`.
pub fn encode_document(text: &str) -> Encoded {
    let mut out = Encoded::default();
    out.push_all([BOS], false);
    out.push_all(encode_text(text), true);
    out.push_all([EOS], true);
    out
}

/// A conversation in the chat template. Only the content and closing `END`
/// of assistant messages with `train` set are targets: the model learns to
/// answer, not to predict the user.
pub fn encode_chat(messages: &[Message]) -> Encoded {
    let mut out = Encoded::default();
    out.push_all([BOS], false);
    for message in messages {
        let target = message.role == Role::Assistant && message.train;
        out.push_all([message.role.marker()], false);
        out.push_all(encode_text(&message.content), target);
        out.push_all([END], target);
    }
    out
}

/// The prompt for generating the next assistant turn: the conversation so
/// far followed by the assistant marker.
pub fn chat_prompt(messages: &[Message]) -> Vec<u32> {
    let mut tokens = encode_chat(messages).tokens;
    tokens.push(ASSISTANT);
    tokens
}

/// The tokens of an assistant reply as a completion of [`chat_prompt`].
pub fn reply_tokens(content: &str) -> Vec<u32> {
    let mut tokens = encode_text(content);
    tokens.push(END);
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_including_multibyte_characters() {
        let text = "Grüße — 学习 🚀";
        let tokens = encode_text(text);
        assert_eq!(tokens.len(), text.len());
        assert!(tokens.iter().all(|t| *t < 256));
        assert_eq!(decode(&tokens), text);
    }

    #[test]
    fn decode_drops_specials_and_survives_cut_characters() {
        let mut tokens = vec![BOS, USER];
        tokens.extend(encode_text("hé"));
        tokens.pop(); // cut inside 'é'
        tokens.push(END);
        assert_eq!(decode(&tokens), "h\u{FFFD}");
    }

    #[test]
    fn chat_targets_only_trained_assistant_turns() {
        let mut context_turn = Message::new(Role::Assistant, "no");
        context_turn.train = false;
        let encoded = encode_chat(&[
            Message::new(Role::System, "s"),
            Message::new(Role::User, "hi"),
            context_turn,
            Message::new(Role::User, "again"),
            Message::new(Role::Assistant, "ok"),
        ]);
        let expected: Vec<u32> = [
            BOS,
            SYSTEM,
            b's' as u32,
            END,
            USER,
            b'h' as u32,
            b'i' as u32,
            END,
        ]
        .into_iter()
        .chain([ASSISTANT, b'n' as u32, b'o' as u32, END])
        .chain([USER])
        .chain(encode_text("again"))
        .chain([END, ASSISTANT, b'o' as u32, b'k' as u32, END])
        .collect();
        assert_eq!(encoded.tokens, expected);
        // Targets: exactly "ok" and its END (3 tokens), the last three.
        assert_eq!(encoded.target_count(), 3);
        assert!(encoded.targets[encoded.len() - 3..].iter().all(|t| *t));
        assert_eq!(
            chat_prompt(&[Message::new(Role::User, "x")]),
            vec![BOS, USER, b'x' as u32, END, ASSISTANT]
        );
    }
}
