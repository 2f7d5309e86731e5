//! Evaluation's read models (issue #20): test suites and their versions;
//! runs, regression results and benchmark history join them here.

pub mod suites;
