//! Feedback on exchanges: thumbs, evaluations and ratings given (each an
//! event on the exchange's stream), and what they add up to per model —
//! ratings per axis, failure tags, calibration and rater agreement.

mod mutation;
mod query;
mod types;

pub use mutation::FeedbackMutation;
pub use query::FeedbackQuery;
