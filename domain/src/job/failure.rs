//! Failures: stack traces parsed into frames, and a fingerprint that groups
//! the same error across jobs (`errors(filter)`), in the manner of Sentry's
//! grouping: the message with its variable parts masked, plus the top frames.

use super::managed::Frame;
use sha2::{Digest, Sha256};

/// Frames kept per error.
pub const MAX_FRAMES: usize = 64;
/// Frames that take part in the fingerprint.
const FINGERPRINT_FRAMES: usize = 5;

/// Parses a Rust (`std::backtrace`) or Python traceback into frames,
/// innermost first as Rust prints them. Unknown lines are skipped.
pub fn parse_frames(trace: &str) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    let mut python = false;
    for line in trace.lines() {
        let t = line.trim();
        // Rust: "12: crate::module::function" then "at ./src/file.rs:10:5".
        if let Some((n, rest)) = t.split_once(": ")
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
        {
            frames.push(Frame {
                function: strip_hash(rest.trim()).to_string(),
                file: None,
                line: None,
            });
        } else if let Some(at) = t.strip_prefix("at ") {
            if let Some(last) = frames.last_mut() {
                let mut parts = at.rsplitn(3, ':');
                let (_col, line, file) = (parts.next(), parts.next(), parts.next());
                match (file, line.and_then(|l| l.parse().ok())) {
                    (Some(f), Some(l)) => {
                        last.file = Some(f.to_string());
                        last.line = Some(l);
                    }
                    _ => last.file = Some(at.to_string()),
                }
            }
        } else if let Some(rest) = t.strip_prefix("File \"") {
            // Python: File "x.py", line 10, in fn
            python = true;
            let (file, rest) = rest.split_once('"').unwrap_or((rest, ""));
            let line = rest
                .split("line ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.trim().parse().ok());
            let function = rest.rsplit(" in ").next().unwrap_or("").trim().to_string();
            frames.push(Frame {
                function,
                file: Some(file.to_string()),
                line,
            });
        }
        if frames.len() >= MAX_FRAMES {
            break;
        }
    }
    if python {
        // Python prints outermost first.
        frames.reverse();
    }
    frames
}

/// `foo::bar::h0123456789abcdef` → `foo::bar`.
fn strip_hash(f: &str) -> &str {
    match f.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head
        }
        _ => f,
    }
}

/// Masks the parts of a message that vary between occurrences: numbers,
/// hex strings and UUIDs, quoted values.
pub fn normalize_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    let mut out = String::with_capacity(first.len());
    let mut chars = first.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            out.push(c);
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
            }
            out.push_str("<s>");
            out.push(c);
        } else if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_hexdigit() || matches!(d, '.' | '-' | 'x'))
            {
                chars.next();
            }
            out.push_str("<n>");
        } else {
            out.push(c);
        }
    }
    out
}

/// A stable 16-hex-digit fingerprint of an error.
pub fn fingerprint(message: &str, frames: &[Frame]) -> String {
    let mut h = Sha256::new();
    h.update(normalize_message(message).as_bytes());
    for f in frames
        .iter()
        .filter(|f| !is_runtime_frame(&f.function))
        .take(FINGERPRINT_FRAMES)
    {
        h.update(b"\n");
        h.update(f.function.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// Frames of the runtime and panic machinery, which say nothing about the error.
fn is_runtime_frame(function: &str) -> bool {
    [
        "std::",
        "core::",
        "alloc::",
        "rust_begin_unwind",
        "__rust",
        "tokio::",
        "<unknown>",
    ]
    .iter()
    .any(|p| function.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUST: &str = "   0: std::backtrace_rs::backtrace::trace\n             at /rustc/abc/library/std/src/../../backtrace/src/backtrace/mod.rs:66:5\n   1: ftl_trainer::train::Trainer::step::h0123456789abcdef\n             at ./trainer/src/train.rs:412:17\n   2: ftl_trainer::run::run\n             at ./trainer/src/run.rs:90:9\n";

    #[test]
    fn rust_backtraces_parse_into_frames() {
        let f = parse_frames(RUST);
        assert_eq!(f.len(), 3);
        assert_eq!(f[1].function, "ftl_trainer::train::Trainer::step");
        assert_eq!(f[1].file.as_deref(), Some("./trainer/src/train.rs"));
        assert_eq!(f[1].line, Some(412));
    }

    #[test]
    fn python_tracebacks_parse_innermost_first() {
        let t = "Traceback (most recent call last):\n  File \"train.py\", line 10, in main\n    step()\n  File \"train.py\", line 4, in step\n    raise ValueError('x')\nValueError: x";
        let f = parse_frames(t);
        assert_eq!(f[0].function, "step");
        assert_eq!(f[0].line, Some(4));
        assert_eq!(f[1].function, "main");
    }

    #[test]
    fn the_same_error_with_other_numbers_groups_together() {
        let frames = parse_frames(RUST);
        let a = fingerprint("loss is NaN at step 120 (lr 0.001)", &frames);
        let b = fingerprint("loss is NaN at step 4711 (lr 3e-4)", &frames);
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("dataset line 3: not JSON", &frames));
        // Another place in the code is another error.
        assert_ne!(
            a,
            fingerprint("loss is NaN at step 120 (lr 0.001)", &frames[2..])
        );
        assert_eq!(
            normalize_message("file 'a.jsonl' at 0xdeadbeef"),
            "file '<s>' at <n>"
        );
    }
}
