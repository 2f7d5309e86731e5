//! Evaluation's pure core (`judging.md` §1–3, §6; issue #20): the judge
//! rubric and its arithmetic, G-Eval weighting, pairwise verdicts, the
//! model-free groundedness and citation checks, and the validators that
//! score a test case's output. No I/O: the judge calls live elsewhere.

pub mod criteria;
pub mod geval;
pub mod grounding;
pub mod pairwise;
pub mod suite;
pub mod validators;

#[cfg(test)]
mod tests;
