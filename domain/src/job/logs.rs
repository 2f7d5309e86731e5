//! A job's log lines (trainer log, stdout, stderr): batched onto the job's
//! log stream, appended without a version check like its metrics.

use crate::DomainError;
use crate::ids::JobId;
use serde::{Deserialize, Serialize};

/// Lines accepted in one call, and the length of one line.
pub const MAX_LINES_PER_CALL: usize = 5_000;
pub const MAX_LINE_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Debug, Self::Info, Self::Warn, Self::Error]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub level: LogLevel,
    /// `trainer`, `stdout` or `stderr`.
    pub source: String,
    pub message: String,
}

/// `job.logs_appended` v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsAppended {
    pub job_id: JobId,
    pub lines: Vec<LogLine>,
}

pub fn validate_lines(lines: &[LogLine]) -> Result<(), DomainError> {
    if lines.is_empty() {
        return Err(DomainError::invalid("lines", "must not be empty"));
    }
    if lines.len() > MAX_LINES_PER_CALL {
        return Err(DomainError::limit(
            "lines",
            format!("at most {MAX_LINES_PER_CALL} lines per call"),
        ));
    }
    if let Some(i) = lines.iter().position(|l| l.message.len() > MAX_LINE_LEN) {
        return Err(DomainError::limit(
            format!("lines[{i}].message"),
            format!("at most {MAX_LINE_LEN} bytes"),
        ));
    }
    if let Some(i) = lines
        .iter()
        .position(|l| !matches!(l.source.as_str(), "trainer" | "stdout" | "stderr"))
    {
        return Err(DomainError::invalid(
            format!("lines[{i}].source"),
            "must be trainer, stdout or stderr",
        ));
    }
    Ok(())
}
