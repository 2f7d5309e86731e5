//! Recorded exchanges with models (the predictions table): a page of them
//! under any filter and order, one exchange, and the judgments each got.

mod query;
mod types;

pub use query::PredictionsQuery;
pub use types::*;
