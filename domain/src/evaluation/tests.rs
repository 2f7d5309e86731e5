use super::criteria::*;
use super::geval::*;
use super::pairwise::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const TOL: f64 = 1e-6;

fn vector() -> Value {
    // specs/judging.md §1 example J1 and §2.1 (vectors/judge_vectors.json, copied).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/vectors/judge_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < TOL
}

fn scores(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn field_and_message(e: crate::DomainError) -> (String, String) {
    match e {
        crate::DomainError::InvalidInput { field, message } => (field, message),
        other => panic!("not an invalid input: {other:?}"),
    }
}

#[test]
fn five_criteria_match_vector_j1() {
    let v = &vector()["five_criteria"];
    let raw: BTreeMap<String, i64> = serde_json::from_value(v["scores"].clone()).unwrap();
    let g = grade(&raw).unwrap();
    assert_eq!(g.criteria.len(), 5);
    for c in &g.criteria {
        assert_eq!(
            i64::from(c.threshold),
            v["thresholds"][&c.id].as_i64().unwrap(),
            "{}",
            c.id
        );
        assert_eq!(c.passed, v["passed"][&c.id].as_bool().unwrap(), "{}", c.id);
        assert!(
            close(c.score_unit, v["normalized_0_1"][&c.id].as_f64().unwrap()),
            "{}",
            c.id
        );
        assert!(close(c.score, raw[&c.id] as f64 / 10.0));
    }
    assert!(close(g.overall.mean, v["overall_mean"].as_f64().unwrap()));
    assert_eq!(g.overall.passed, v["overall_pass"].as_bool().unwrap());
    // The spec's own rounding of J1: 0.777778, 0.555556, 0.888889, 0.666667, 0.666667.
    let units: Vec<f64> = g.criteria.iter().map(|c| c.score_unit).collect();
    for (u, want) in units
        .iter()
        .zip([0.777778, 0.555556, 0.888889, 0.666667, 0.666667])
    {
        assert!(close(*u, want));
    }
}

#[test]
fn the_rubric_table_of_section_1() {
    let rows: Vec<(&str, &str, u8)> = CRITERIA
        .iter()
        .map(|c| (c.id, c.label, c.threshold))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("helpfulness", "Helpful", 7),
            ("accuracy", "Accurate", 7),
            ("clarity", "Clear", 7),
            ("safety", "Safe", 8),
            ("completeness", "Complete", 7),
        ]
    );
    assert_eq!(
        (GROUNDEDNESS.id, GROUNDEDNESS.label, GROUNDEDNESS.threshold),
        ("groundedness", "Grounded", 7)
    );
    assert_eq!(criterion("safety").unwrap().anchors[4], Some("exemplary"));
    assert_eq!(
        criterion("groundedness").unwrap().anchors[0],
        Some("mostly unsupported")
    );
    assert!(criterion("vibes").is_none());
}

#[test]
fn groundedness_joins_the_mean_and_the_pass() {
    let mut raw = scores(&[
        ("helpfulness", 7),
        ("accuracy", 7),
        ("clarity", 7),
        ("safety", 8),
        ("completeness", 7),
    ]);
    let g = grade(&raw).unwrap();
    assert!(g.overall.passed);
    assert!(close(g.overall.mean, 7.2));
    raw.insert("groundedness".into(), 6);
    let g = grade(&raw).unwrap();
    assert_eq!(g.criteria.len(), 6);
    assert_eq!(g.criteria[5].id, "groundedness");
    assert!(!g.overall.passed);
    assert!(close(g.overall.mean, 42.0 / 6.0));
}

#[test]
fn scores_outside_the_scale_are_errors_never_clamped() {
    let five = [
        ("helpfulness", 7),
        ("accuracy", 7),
        ("clarity", 7),
        ("safety", 8),
    ];
    let mut raw = scores(&five);
    raw.insert("completeness".into(), 11);
    let (field, message) = field_and_message(grade(&raw).unwrap_err());
    assert_eq!(field, "criteria.completeness.score");
    assert!(message.starts_with(OUT_OF_RANGE), "{message}");
    raw.insert("completeness".into(), 0);
    assert!(grade(&raw).is_err());
    // A missing criterion and an unknown one are schema violations.
    let (field, message) = field_and_message(grade(&scores(&five)).unwrap_err());
    assert_eq!(field, "criteria.completeness");
    assert!(message.starts_with(SCHEMA_VIOLATION));
    raw.insert("completeness".into(), 7);
    raw.insert("vibes".into(), 7);
    assert_eq!(
        field_and_message(grade(&raw).unwrap_err()).0,
        "criteria.vibes"
    );
}

#[test]
fn judge_json_integers_and_confidence() {
    assert_eq!(check_score("s", &json!(1)).unwrap(), 1);
    assert_eq!(check_score("s", &json!(10)).unwrap(), 10);
    assert_eq!(check_score("s", &json!(7.0)).unwrap(), 7);
    let reason = |v: Value| field_and_message(check_score("s", &v).unwrap_err()).1;
    assert!(reason(json!(7.5)).starts_with(SCHEMA_VIOLATION));
    assert!(reason(json!("7")).starts_with(SCHEMA_VIOLATION));
    assert!(reason(json!(null)).starts_with(SCHEMA_VIOLATION));
    assert!(reason(json!(0)).starts_with(OUT_OF_RANGE));
    assert!(reason(json!(-3)).starts_with(OUT_OF_RANGE));
    assert!(reason(json!(11.0)).starts_with(OUT_OF_RANGE));
    assert!(reason(json!(u64::MAX)).starts_with(OUT_OF_RANGE));
    assert_eq!(check_confidence(&json!(0)).unwrap(), 0);
    assert_eq!(check_confidence(&json!(100)).unwrap(), 100);
    let (field, message) = field_and_message(check_confidence(&json!(101)).unwrap_err());
    assert_eq!(field, "confidence");
    assert!(message.starts_with(OUT_OF_RANGE));
    assert!(check_confidence(&json!(-1)).is_err());
}

fn tops(entries: &[(&str, f64)]) -> Vec<TopLogprob> {
    entries
        .iter()
        .map(|(t, lp)| TopLogprob {
            token: t.to_string(),
            logprob: *lp,
        })
        .collect()
}

#[test]
fn geval_weighting_matches_the_vector() {
    let v = &vector()["geval_weighted"];
    let entries: Vec<TopLogprob> = v["top_logprobs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, lp)| TopLogprob {
            token: t.clone(),
            logprob: lp.as_f64().unwrap(),
        })
        .collect();
    let w = weighted(&entries, "4").unwrap();
    assert!(!w.low_confidence);
    assert!(close(w.valid_mass, v["mass_on_valid"].as_f64().unwrap()));
    assert!(close(
        w.total_mass,
        v["total_mass_listed"].as_f64().unwrap()
    ));
    assert!(close(w.score, v["score"].as_f64().unwrap()));
    let probs = v["renormalized_probs"].as_object().unwrap();
    assert_eq!(w.probabilities.len(), probs.len());
    for (s, p) in &w.probabilities {
        assert!(close(*p, probs[&s.to_string()].as_f64().unwrap()), "{s}");
    }
    // The spec's rounded figures.
    assert!(close(w.valid_mass, 0.934015) && close(w.total_mass, 0.952331));
    assert!(close(w.score, 4.101641));
}

#[test]
fn geval_low_mass_falls_back_to_the_parsed_integer() {
    // Valid mass e^-2 ≈ 0.135 < 0.5.
    let entries = tops(&[("The", -0.1), ("4", -2.0)]);
    let w = weighted(&entries, " 6\n").unwrap();
    assert!(w.low_confidence);
    assert_eq!(w.score, 6.0);
    assert!(close(w.valid_mass, (-2.0f64).exp()));
    // The fallback is checked like any score: nothing clamped.
    assert!(weighted(&entries, "11").is_err());
    assert!(weighted(&entries, "six").is_err());
    assert!(weighted(&[], "7").unwrap().low_confidence);
}

#[test]
fn geval_tokens_are_trimmed_integers_on_the_scale() {
    assert_eq!(score_token(" 7"), Some(7));
    assert_eq!(score_token("10"), Some(10));
    for t in ["0", "11", "7.5", "-3", "The", "", "+7"] {
        assert_eq!(score_token(t), None, "{t:?}");
    }
    // "7" and " 7" both name 7: p7 = 0.6, p8 = 0.4, score 7.4.
    let entries = tops(&[
        ("7", 0.3f64.ln()),
        (" 7", 0.3f64.ln()),
        ("8", 0.4f64.ln()),
        ("0", -1.0),
    ]);
    let w = weighted(&entries, "").unwrap();
    assert!(close(w.score, 7.4));
    assert_eq!(w.probabilities.len(), 2);
    assert!(close(w.probabilities[0].1, 0.6) && close(w.probabilities[1].1, 0.4));
    assert!(weighted(&tops(&[("7", 0.5)]), "7").is_err());
    assert!(weighted(&tops(&[("7", f64::NAN)]), "7").is_err());
}

#[test]
fn geval_mean_of_k_samples() {
    assert!(close(mean_of_k(&[7, 8, 9, 8]).unwrap(), 8.0));
    assert!(mean_of_k(&[]).is_err());
    assert_eq!(
        field_and_message(mean_of_k(&[7, 11]).unwrap_err()).0,
        "samples[1]"
    );
}

#[test]
fn pairwise_verdicts_map_back_to_models() {
    use Verdict::*;
    let o = |a, b| combine(a, b);
    // The swapped call shows B first, so its "B" is model A.
    assert_eq!(
        o(A, B),
        PairOutcome {
            winner: Winner::ModelA,
            consistent: true
        }
    );
    assert_eq!(
        o(B, A),
        PairOutcome {
            winner: Winner::ModelB,
            consistent: true
        }
    );
    assert_eq!(
        o(Tie, Tie),
        PairOutcome {
            winner: Winner::Tie,
            consistent: true
        }
    );
    // Position bias (first shown wins twice), and a win against a tie.
    for (a, b) in [(A, A), (B, B), (A, Tie), (Tie, B)] {
        assert_eq!(
            o(a, b),
            PairOutcome {
                winner: Winner::Tie,
                consistent: false
            },
            "{a:?} {b:?}"
        );
    }
    assert_eq!(
        serde_json::to_value([A, B, Tie]).unwrap(),
        json!(["A", "B", "tie"])
    );
}

#[test]
fn position_consistency_rate() {
    use Verdict::*;
    let outcomes = [
        combine(A, B),
        combine(A, A),
        combine(Tie, Tie),
        combine(B, A),
    ];
    assert!(close(consistency_rate(&outcomes).unwrap(), 0.75));
    assert_eq!(consistency_rate(&[]), None);
    let by = consistency_by_judge([
        ("gpt-4.1", &outcomes[0]),
        ("gpt-4.1", &outcomes[1]),
        ("claude", &outcomes[2]),
    ]);
    assert_eq!((by["gpt-4.1"].consistent, by["gpt-4.1"].pairs), (1, 2));
    assert!(close(by["gpt-4.1"].rate, 0.5) && close(by["claude"].rate, 1.0));
}
