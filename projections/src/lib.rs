//! FineTune Lab read side.
//!
//! A projection folds the global log into read-model tables. Each has a name
//! and generations: generation N's tables are `{table}_g{N}`, and plain views
//! named `{table}` point at the active generation, so queries never know which
//! generation serves them and a rebuild is built beside the live one, then
//! switched by re-pointing the views in one transaction.

pub mod db_tx;
pub mod export;
pub mod feed;
pub mod json_text;
pub mod process;
pub mod registry;
pub mod replay;
pub mod runner;
pub mod views;

pub use db_tx::DbTx;
pub use registry::{ProjectionStatus, Projections};
pub use runner::{Decoded, Projection, ProjectionError};
