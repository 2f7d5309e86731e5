//! Evaluation's use cases (issue #20): test suites created and uploaded;
//! judge calls, runs and regression suites join them here.

pub mod suites;
