//! Evaluation over GraphQL (issue #20): test suites — created, uploaded
//! (CSV, JSONL or a plain list, checked whole), any version's cases listed —
//! and the model-free validators run on given text (`validateOutput`, the
//! "try this validator" preview; no model is called).

mod mutation;
mod query;
mod types;
mod validate;

pub use mutation::EvaluationMutation;
pub use query::EvaluationQuery;
