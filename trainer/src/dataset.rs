//! Training data: the dataset formats the trainer reads (`formats.md`),
//! parsed with line-numbered errors, and the deterministic train/eval split.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::tokenizer::{self, Encoded, Message, Role};

/// What the rows of a dataset are, which decides the methods that can use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Raw text, trained on in full (continued pretraining).
    Text,
    /// Conversations or prompt–completion pairs with targets (SFT).
    Supervised,
    /// `{prompt, chosen, rejected}` pairs (DPO).
    Preference,
}

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub enum Example {
    Sequence(Encoded),
    Preference {
        prompt: Vec<u32>,
        chosen: Vec<u32>,
        rejected: Vec<u32>,
    },
}

/// A problem in a dataset, with its 1-based line (0 for the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIssue {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for DataIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

/// Report at most this many issues: a broken 1 GB file must not produce a 1 GB error.
pub const MAX_ISSUES: usize = 100;

/// A parsed dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub examples: Vec<Example>,
    /// SHA-256 of the file's bytes: the lineage of every model trained on it.
    pub digest: String,
}

impl Dataset {
    /// Parse a dataset file. Raw text when `raw_text` is set; otherwise JSONL,
    /// each line's shape detected from its keys (all lines must agree).
    pub fn parse(bytes: &[u8], raw_text: bool, window: usize) -> Result<Self, Vec<DataIssue>> {
        let digest = hex::encode(Sha256::digest(bytes));
        if raw_text {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                vec![DataIssue {
                    line: line_of(bytes, e.valid_up_to()),
                    message: "text is not valid UTF-8".into(),
                }]
            })?;
            return Ok(Self {
                kind: DatasetKind::Text,
                examples: text_windows(text, window),
                digest,
            });
        }
        let mut issues = Vec::new();
        let mut examples = Vec::new();
        let mut kind: Option<(DatasetKind, usize)> = None;
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let number = index + 1;
            if issues.len() >= MAX_ISSUES {
                break;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_row(line) {
                Ok((row_kind, example)) => {
                    match kind {
                        None => kind = Some((row_kind, number)),
                        Some((first, first_line)) if first != row_kind => issues.push(DataIssue {
                            line: number,
                            message: format!(
                                "row is {} but line {first_line} is {}: one dataset holds one kind of row",
                                kind_name(row_kind),
                                kind_name(first)
                            ),
                        }),
                        Some(_) => {}
                    }
                    examples.push(example);
                }
                Err(message) => issues.push(DataIssue {
                    line: number,
                    message,
                }),
            }
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        match kind {
            Some((kind, _)) => Ok(Self {
                kind,
                examples,
                digest,
            }),
            None => Err(vec![DataIssue {
                line: 0,
                message: "dataset has no rows".into(),
            }]),
        }
    }

    /// Split into (train, eval) by a shuffle seeded with `seed`: `train_split`
    /// of the examples train, `eval_split` evaluate (both fractions of the whole).
    pub fn split(
        &self,
        train_split: f64,
        eval_split: f64,
        seed: u64,
    ) -> (Vec<Example>, Vec<Example>) {
        let mut order: Vec<usize> = (0..self.examples.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let n = self.examples.len() as f64;
        let n_eval = ((n * eval_split).round() as usize).min(self.examples.len().saturating_sub(1));
        let n_train = ((n * train_split).round() as usize).clamp(1, self.examples.len() - n_eval);
        let pick = |ids: &[usize]| {
            ids.iter()
                .map(|i| self.examples[*i].clone())
                .collect::<Vec<_>>()
        };
        (
            pick(&order[..n_train]),
            pick(&order[n_train..n_train + n_eval]),
        )
    }
}

fn kind_name(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Text => "text",
        DatasetKind::Supervised => "a supervised example",
        DatasetKind::Preference => "a preference pair",
    }
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1
}

/// Raw text as overlapping-free windows of `window + 1` tokens (input and
/// shifted target), documents separated by blank lines.
fn text_windows(text: &str, window: usize) -> Vec<Example> {
    let mut stream = Vec::new();
    for document in text.split("\n\n").filter(|d| !d.trim().is_empty()) {
        stream.extend(tokenizer::encode_text(document));
        stream.push(tokenizer::EOS);
    }
    stream
        .chunks(window + 1)
        .filter(|chunk| chunk.len() > 1)
        .map(|chunk| {
            Example::Sequence(Encoded {
                tokens: chunk.to_vec(),
                targets: vec![true; chunk.len()],
            })
        })
        .collect()
}

fn parse_row(line: &[u8]) -> Result<(DatasetKind, Example), String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(row) = value else {
        return Err("each line must be a JSON object".into());
    };
    if let Some(messages) = row.get("messages") {
        let messages = parse_messages(messages, "messages")?;
        if !messages
            .iter()
            .any(|m| m.role == Role::Assistant && m.train)
        {
            return Err("messages has no assistant message with weight 1 to train on".into());
        }
        return Ok((
            DatasetKind::Supervised,
            Example::Sequence(tokenizer::encode_chat(&messages)),
        ));
    }
    if let Some(input) = row.get("input") {
        // OpenAI DPO: {input: {messages}, preferred_output, non_preferred_output}
        let messages = input.get("messages").ok_or("input.messages is required")?;
        let prompt = tokenizer::chat_prompt(&parse_messages(messages, "input.messages")?);
        let chosen = reply_of(row.get("preferred_output"), "preferred_output")?;
        let rejected = reply_of(row.get("non_preferred_output"), "non_preferred_output")?;
        return Ok(preference(prompt, chosen, rejected));
    }
    if row.contains_key("chosen") || row.contains_key("rejected") {
        let prompt = prompt_of(
            row.get("prompt")
                .ok_or("prompt is required (explicit-prompt preference form)")?,
        )?;
        let chosen = reply_of(row.get("chosen"), "chosen")?;
        let rejected = reply_of(row.get("rejected"), "rejected")?;
        return Ok(preference(prompt, chosen, rejected));
    }
    if let Some(completion) = row.get("completion") {
        let prompt = prompt_of(
            row.get("prompt")
                .ok_or("prompt is required with completion")?,
        )?;
        let reply = reply_of(Some(completion), "completion")?;
        let mut encoded = Encoded {
            targets: vec![false; prompt.len()],
            tokens: prompt,
        };
        encoded
            .targets
            .extend(std::iter::repeat_n(true, reply.len()));
        encoded.tokens.extend(reply);
        return Ok((DatasetKind::Supervised, Example::Sequence(encoded)));
    }
    if let Some(text) = row.get("text") {
        let text = text.as_str().ok_or("text must be a string")?;
        if text.is_empty() {
            return Err("text is empty".into());
        }
        return Ok((
            DatasetKind::Text,
            Example::Sequence(tokenizer::encode_document(text)),
        ));
    }
    let keys: Vec<&str> = row.keys().map(String::as_str).collect();
    Err(format!(
        "unrecognised row with keys [{}]: expected messages, text, prompt+completion, prompt+chosen+rejected, or input+preferred_output+non_preferred_output",
        keys.join(", ")
    ))
}

fn preference(prompt: Vec<u32>, chosen: Vec<u32>, rejected: Vec<u32>) -> (DatasetKind, Example) {
    (
        DatasetKind::Preference,
        Example::Preference {
            prompt,
            chosen,
            rejected,
        },
    )
}

fn parse_messages(value: &Value, path: &str) -> Result<Vec<Message>, String> {
    let list = value
        .as_array()
        .ok_or_else(|| format!("{path} must be a list"))?;
    if list.is_empty() {
        return Err(format!("{path} is empty"));
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            let role: Role = serde_json::from_value(m.get("role").cloned().unwrap_or(Value::Null))
                .map_err(|_| {
                    format!(
                        "{path}[{i}].role must be one of system, developer, user, assistant, tool"
                    )
                })?;
            let mut content = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(""),
                None | Some(Value::Null) => String::new(),
                Some(_) => {
                    return Err(format!(
                        "{path}[{i}].content must be a string or a list of text parts"
                    ));
                }
            };
            if let Some(calls) = m.get("tool_calls") {
                // Tool calls are trained as their JSON text after any content.
                content.push_str(&calls.to_string());
            }
            if content.is_empty() {
                return Err(format!("{path}[{i}].content is empty"));
            }
            let train = match m.get("weight") {
                None => role == Role::Assistant,
                Some(w) if role != Role::Assistant => {
                    return Err(format!(
                        "{path}[{i}].weight is allowed on assistant messages only (got {w})"
                    ));
                }
                Some(w) => match w.as_f64() {
                    Some(0.0) => false,
                    Some(1.0) => true,
                    _ => return Err(format!("{path}[{i}].weight must be 0 or 1 (got {w})")),
                },
            };
            Ok(Message {
                role,
                content,
                train,
            })
        })
        .collect()
}

/// A prompt: a string (one user message) or a list of messages.
fn prompt_of(value: &Value) -> Result<Vec<u32>, String> {
    match value {
        Value::String(s) if !s.is_empty() => Ok(tokenizer::chat_prompt(&[Message::new(
            Role::User,
            s.clone(),
        )])),
        Value::Array(_) => Ok(tokenizer::chat_prompt(&parse_messages(value, "prompt")?)),
        _ => Err("prompt must be a non-empty string or a list of messages".into()),
    }
}

/// A reply: a string or a list holding one assistant message.
fn reply_of(value: Option<&Value>, path: &str) -> Result<Vec<u32>, String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Ok(tokenizer::reply_tokens(s)),
        Some(v @ Value::Array(_)) => {
            let messages = parse_messages(v, path)?;
            match messages.as_slice() {
                [m] if m.role == Role::Assistant => Ok(tokenizer::reply_tokens(&m.content)),
                _ => Err(format!("{path} must hold exactly one assistant message")),
            }
        }
        Some(_) => Err(format!(
            "{path} must be a non-empty string or a list with one assistant message"
        )),
        None => Err(format!("{path} is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let file = concat!(
            "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]}\n",
            "not json\n",
            "\n",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n",
            "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}\n",
            "{\"prompt\":\"p\",\"chosen\":\"a\",\"rejected\":\"b\"}\n",
        );
        let issues = Dataset::parse(file.as_bytes(), false, 64).unwrap_err();
        let lines: Vec<usize> = issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![2, 4, 5, 6]);
        assert!(issues[0].message.starts_with("invalid JSON"));
        assert!(issues[1].message.contains("no assistant message"));
        assert!(issues[2].message.contains("messages[0].role"));
        assert!(issues[3].message.contains("line 1 is a supervised example"));
    }

    #[test]
    fn formats_are_detected_and_encoded() {
        let sft = Dataset::parse(
            b"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\",\"weight\":1}]}\n{\"prompt\":\"q\",\"completion\":\"r\"}\n",
            false,
            64,
        )
        .unwrap();
        assert_eq!(sft.kind, DatasetKind::Supervised);
        let Example::Sequence(pc) = &sft.examples[1] else {
            panic!("sequence expected")
        };
        // prompt "q" as a user turn + ASSISTANT, then "r" END as targets.
        assert_eq!(pc.target_count(), 2);

        let dpo = Dataset::parse(
            b"{\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]},\"preferred_output\":[{\"role\":\"assistant\",\"content\":\"good\"}],\"non_preferred_output\":[{\"role\":\"assistant\",\"content\":\"bad\"}]}\n",
            false,
            64,
        )
        .unwrap();
        assert_eq!(dpo.kind, DatasetKind::Preference);
        assert_eq!(
            dpo.examples[0],
            Example::Preference {
                prompt: tokenizer::chat_prompt(&[Message::new(Role::User, "q")]),
                chosen: tokenizer::reply_tokens("good"),
                rejected: tokenizer::reply_tokens("bad"),
            }
        );
        assert_eq!(dpo.digest.len(), 64);
    }

    #[test]
    fn raw_text_is_windowed_and_split_deterministically() {
        let text = "abcdefghij".repeat(10); // 100 bytes + EOS = 101 tokens
        let data = Dataset::parse(text.as_bytes(), true, 9).unwrap();
        assert_eq!(data.kind, DatasetKind::Text);
        assert_eq!(data.examples.len(), 10); // 10 windows of 10; the last 1-token chunk dropped
        let (train, eval) = data.split(0.8, 0.2, 7);
        assert_eq!((train.len(), eval.len()), (8, 2));
        assert_eq!(data.split(0.8, 0.2, 7).1, eval);
        assert!(Dataset::parse(&[0xff, 0xfe], true, 9).is_err());
    }
}
