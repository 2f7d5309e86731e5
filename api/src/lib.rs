//! FineTune Lab service: GraphQL over actix-web, API keys, configuration,
//! Prometheus metrics, and the `finetune-lab` command line.

pub mod auth;
pub mod body;
pub mod chat;
pub mod cli;
pub mod config;
pub mod egress;
pub mod exports;
pub mod fallback;
pub mod graphiql;
pub mod graphql;
pub mod mlflow;
pub mod objects;
pub mod openai;
pub mod predictions;
pub mod secrets;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod training;

pub use config::Config;
pub use server::{Server, build_server};
pub use state::AppState;
