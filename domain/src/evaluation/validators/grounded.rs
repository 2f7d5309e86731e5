//! The model-free context validators (`judging.md` §6): `no_hallucination`,
//! `groundedness` and `citations`.

use super::{TestCase, ValidatorResult, check_context, fmt_share};
use crate::DomainError;
use crate::evaluation::grounding::{Analysis, PASS_RATIO, analyze};

fn analysis(case: &TestCase, output: &str) -> Result<Analysis, DomainError> {
    check_context(case)?;
    let passages: Vec<&str> = case.context.iter().map(|p| p.text.as_str()).collect();
    analyze(output, &passages)
}

/// Spans sorted and each once.
fn spans(mut spans: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    spans.sort_unstable();
    spans.dedup();
    spans
}

fn ratio_reason(supported: usize, claims: usize, ratio: Option<f64>) -> String {
    match ratio {
        None => "no claims to check".to_string(),
        Some(r) => format!(
            "{supported} of {claims} claims supported (ratio {}, pass at {PASS_RATIO})",
            fmt_share(r)
        ),
    }
}

/// Passes with a supported-claim ratio of at least 0.7 (and with no claims:
/// nothing is unsupported); the score is the ratio.
pub fn groundedness(case: &TestCase, output: &str) -> Result<ValidatorResult, DomainError> {
    let g = analysis(case, output)?.groundedness();
    Ok(ValidatorResult {
        passed: g.passed.unwrap_or(true),
        score: g.supported_ratio,
        reason: ratio_reason(g.supported_claims, g.claims, g.supported_ratio),
        spans: g.hallucinated_spans,
    })
}

/// The model-free part of `judging.md` §7 step 4: fails when the
/// supported-claim ratio is below 0.7 or any citation is invalid; reports
/// the unsupported claims and the sentences with invalid citations.
pub fn no_hallucination(case: &TestCase, output: &str) -> Result<ValidatorResult, DomainError> {
    let a = analysis(case, output)?;
    let g = a.groundedness();
    let c = a.citations();
    let mut reason = ratio_reason(g.supported_claims, g.claims, g.supported_ratio);
    if !c.invalid_citations.is_empty() {
        let markers: Vec<String> = c
            .invalid_citations
            .iter()
            .map(|i| format!("[{}]", i.marker))
            .collect();
        reason.push_str(&format!(
            "; invalid citations {} ({} passages)",
            markers.join(", "),
            case.context.len()
        ));
    }
    Ok(ValidatorResult {
        passed: g.passed.unwrap_or(true) && c.invalid_citations.is_empty(),
        score: g.supported_ratio,
        reason,
        spans: spans(
            g.hallucinated_spans
                .into_iter()
                .chain(c.invalid_citations.iter().map(|i| i.span))
                .collect(),
        ),
    })
}

/// Every marker names a retrieved passage and every cited claim is
/// supported by its cited passages (with `require_citations`, every claim
/// cites). The score is the citation recall.
pub fn citations(case: &TestCase, output: &str) -> Result<ValidatorResult, DomainError> {
    let c = analysis(case, output)?.citations();
    let unsupported: Vec<(usize, usize)> = c
        .claims
        .iter()
        .filter(|k| !k.markers.is_empty() && !k.invalid && !k.joint)
        .map(|k| k.span)
        .collect();
    let uncited_fails = case.require_citations && !c.uncited_claim_spans.is_empty();
    let mut problems = Vec::new();
    if !c.invalid_citations.is_empty() {
        problems.push(format!(
            "{} invalid citation(s) ({} passages)",
            c.invalid_citations.len(),
            case.context.len()
        ));
    }
    if !unsupported.is_empty() {
        problems.push(format!(
            "{} cited claim(s) not supported by their citations",
            unsupported.len()
        ));
    }
    if uncited_fails {
        problems.push(format!(
            "{} claim(s) cite nothing",
            c.uncited_claim_spans.len()
        ));
    }
    let shares = format!(
        "recall {}, precision {}",
        c.recall.map_or("n/a".to_string(), fmt_share),
        c.precision.map_or("n/a".to_string(), fmt_share)
    );
    let reason = if problems.is_empty() {
        shares
    } else {
        format!("{}; {shares}", problems.join("; "))
    };
    let mut flagged: Vec<(usize, usize)> = c.invalid_citations.iter().map(|i| i.span).collect();
    flagged.extend(unsupported.iter().copied());
    if uncited_fails {
        flagged.extend(c.uncited_claim_spans.iter().copied());
    }
    Ok(ValidatorResult {
        passed: problems.is_empty(),
        score: c.recall,
        reason,
        spans: spans(flagged),
    })
}
