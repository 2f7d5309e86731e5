//! Evaluation's HTTP routes (issue #20): suite files too large for a
//! GraphQL body. The GraphQL side is `graphql::evaluation`.

pub mod http;

pub use http::configure;
