//! The chat portal over GraphQL: the model registry's external endpoints
//! (OpenAI-compatible servers and Anthropic, keys sealed at rest), a price
//! table, chat with any model — streamed over a subscription or answered
//! whole — and each model's latency and usage history.

mod mutation;
mod query;
mod start;
mod subscription;
mod types;

pub use mutation::ChatMutation;
pub use query::ChatQuery;
pub use subscription::ChatSubscription;
