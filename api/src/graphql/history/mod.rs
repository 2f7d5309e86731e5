//! Judgment history over GraphQL: trends of what raters said per day or
//! week of the judged exchanges ("quality improved after retraining"),
//! any of them as of a past moment (folded from the log's judgments), and
//! conversations turned into a fine-tuning dataset.

mod mutation;
mod query;
mod types;

pub use mutation::HistoryMutation;
pub use query::HistoryQuery;

#[cfg(test)]
mod tests;
