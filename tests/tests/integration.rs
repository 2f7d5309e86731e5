//! The one test binary: backend contract suite and end-to-end tests.
//! Everything here is test code: a failed unwrap is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod feedback;
mod lab;
mod store_contract;
mod training;
