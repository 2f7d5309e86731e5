//! The one test binary: backend contract suite and end-to-end tests.
//! Everything here is test code: a failed unwrap is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `e2e!(a, b)`: each end-to-end test `a(backend)` once on SQLite and once
/// on PostgreSQL (modules `sqlite::a`, `postgres::a`).
macro_rules! e2e {
    ($($name:ident),*) => {
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(ftl_tests::Backend::Sqlite).await } )* }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(ftl_tests::Backend::Postgres).await } )* }
    };
}

mod api;
mod chat;
mod evaluation;
mod feedback;
mod hardening;
mod lab;
mod leadership;
mod reactions;
mod store_contract;
mod training;
