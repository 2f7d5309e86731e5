//! FineTune Lab service, the edge: GraphQL over actix-web, the MLflow,
//! OpenAI-compatible, worker and export routes, API keys, configuration and
//! the `finetune-lab` command line. The work is done by `ftl_effects`.

pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod evaluation;
pub mod exports;
pub mod fallback;
pub mod graphiql;
pub mod graphql;
pub mod mlflow;
pub mod openai;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod training;

pub use config::Config;
pub use server::{Server, build_server};
pub use state::AppState;
