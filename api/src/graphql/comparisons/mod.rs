//! The comparison lab over GraphQL: sessions of 2–4 models × prompts,
//! answers generated in parallel and shown blind in a per-prompt random
//! order, votes, and preference exports (TRL, OpenAI DPO) that become
//! datasets a DPO job trains on.

mod export;
mod mutation;
mod query;
mod session;
mod types;

pub use export::PreferenceMutation;
pub use mutation::ComparisonMutation;
pub use query::ComparisonQuery;
