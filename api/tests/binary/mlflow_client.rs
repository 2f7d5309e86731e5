//! The real `mlflow` Python client (from PyPI) against the real binary, on
//! SQLite and PostgreSQL: `tests/mlflow/test_client.py` sets an experiment,
//! starts, resumes and ends runs, logs params, tags, single metrics, batches
//! and artifacts, reads history back, searches runs, and checks every value
//! round-trips exactly.
//!
//! `scripts/test.sh` installs the client into a virtual environment and sets
//! `FTL_TEST_PYTHON` to its interpreter; without it (a bare `cargo test`)
//! these tests say so and pass vacuously.

use crate::process::{ServerProcess, run_cli};
use ftl_tests::Backend;
use std::process::Command;

pub fn python() -> Option<String> {
    match std::env::var("FTL_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "FTL_TEST_PYTHON is not set: skipping the Python client suites (scripts/test.sh runs them)"
            );
            None
        }
    }
}

async fn mlflow_client_suite(backend: Backend) {
    let Some(python) = python() else { return };
    let db = backend.fresh_url().await.unwrap();
    let out = run_cli(&db, &["keys", "create", "--project", "mlflow-e2e"]);
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("ftl_"))
        .expect("the CLI prints the new key")
        .to_string();
    let http = reqwest::Client::new();
    let server = ServerProcess::start(&db, &http).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/mlflow/test_client.py"
    );
    let status = Command::new(&python)
        .arg(script)
        .env("MLFLOW_TRACKING_URI", &server.base)
        .env("MLFLOW_TRACKING_TOKEN", &key)
        // Fail fast instead of retrying for minutes on an error status.
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env_remove("MLFLOW_EXPERIMENT_NAME")
        .env_remove("MLFLOW_RUN_ID")
        .status()
        .unwrap();
    server.terminate();
    assert!(
        status.success(),
        "the mlflow client suite failed on {backend:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_client_on_sqlite() {
    mlflow_client_suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_client_on_postgres() {
    mlflow_client_suite(Backend::Postgres).await;
}
