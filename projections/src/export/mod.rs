//! Exports of read-model rows as bytes, in the shapes and conventions of
//! `specs/formats.md`, written page by page so an export of a million
//! exchanges streams:
//!
//! - conversations (§5): each exchange as a conversation whose assistant
//!   message carries its model, metrics and evaluation (or the existing web
//!   app's `{messages, metrics, evaluation}` lines);
//! - judgments (§6): every thumb, evaluation and rating — changes included,
//!   each earlier one naming what superseded it — one JSONL line with its
//!   criteria, or one CSV row per criterion (long format);
//! - predictions: one row per exchange with what its judgments add up to.
//!
//! Pure formatting (`items`, `writer`) over one reader (`pages`): the same
//! filter at the same log position gives the same bytes.

mod items;
mod pages;
pub mod preferences;
mod writer;

pub use items::{conversation, omit_nulls, sft_row, ts};
pub use pages::Pages;
pub use writer::Writer;

/// Export shapes' version (in the JSON manifest).
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Predictions,
    Conversations,
    Judgments,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Predictions => "predictions",
            Kind::Conversations => "conversations",
            Kind::Judgments => "judgments",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Jsonl,
}

#[cfg(test)]
mod tests;
