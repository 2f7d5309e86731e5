use super::*;
use serde_json::json;

const TOL: f64 = 1e-6;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < TOL
}

fn passages(texts: &[&str]) -> Vec<Passage> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Passage {
            id: format!("doc-{}", i + 1),
            text: t.to_string(),
        })
        .collect()
}

fn field(e: DomainError) -> String {
    match e {
        DomainError::InvalidInput { field, .. } | DomainError::LimitExceeded { field, .. } => field,
        other => panic!("unexpected error {other:?}"),
    }
}

/// §6 example G1 (vectors/grounding_vectors.json, copied).
fn g1() -> (TestCase, String) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/vectors/grounding_vectors.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let docs: Vec<&str> = v["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let case = TestCase {
        context: passages(&docs),
        ..TestCase::default()
    };
    (case, v["answer"].as_str().unwrap().to_string())
}

/// The citation example of §6.
fn citation_example() -> (TestCase, String) {
    let case = TestCase {
        context: passages(&[
            "The trainer writes a checkpoint every 500 steps.",
            "Evaluation runs on the validation split after each epoch.",
        ]),
        ..TestCase::default()
    };
    let answer = "The trainer writes a checkpoint every 500 steps [1]. Evaluation runs on the \
                  validation split after each epoch [2][1]. Checkpoints are uploaded to S3 [3].";
    (case, answer.to_string())
}

#[test]
fn kinds_have_stable_ids() {
    let ids: Vec<&str> = ValidatorKind::ALL.iter().map(|k| k.id()).collect();
    assert_eq!(
        ids,
        [
            "no_hallucination",
            "groundedness",
            "citations",
            "required_elements",
            "format"
        ]
    );
    for k in ValidatorKind::ALL {
        assert_eq!(ValidatorKind::parse(k.id()).unwrap(), k);
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.id()));
        assert_eq!(k.to_string(), k.id());
    }
    assert_eq!(
        field(ValidatorKind::parse("vibes").unwrap_err()),
        "validator"
    );
}

#[test]
fn groundedness_of_g1() {
    let (case, answer) = g1();
    let r = run(ValidatorKind::Groundedness, &case, &answer).unwrap();
    assert!(r.passed);
    assert!(close(r.score.unwrap(), 0.8));
    assert_eq!(r.spans, vec![(215, 273)]);
    // No claims: nothing unsupported, no score.
    let r = run(ValidatorKind::Groundedness, &case, "Sure! Happy to help.").unwrap();
    assert!(r.passed && r.score.is_none() && r.spans.is_empty());
}

#[test]
fn no_hallucination_fails_on_ratio_or_invalid_citation() {
    // G1: 0.8 ≥ 0.7 and every marker names a passage; the unsupported
    // claim is still reported.
    let (case, answer) = g1();
    let r = run(ValidatorKind::NoHallucination, &case, &answer).unwrap();
    assert!(r.passed);
    assert_eq!(r.spans, vec![(215, 273)]);
    // The citation example: 0.666667 < 0.7, and [3] of 2 passages.
    let (case, answer) = citation_example();
    let r = run(ValidatorKind::NoHallucination, &case, &answer).unwrap();
    assert!(!r.passed);
    assert!(close(r.score.unwrap(), 0.666667));
    assert_eq!(r.spans, vec![(118, 153)]);
    assert!(r.reason.contains("[3]"), "{}", r.reason);
    // Supported claims but a marker past the passages: fails all the same.
    let r = run(
        ValidatorKind::NoHallucination,
        &case,
        "The trainer writes a checkpoint every 500 steps [7].",
    )
    .unwrap();
    assert!(!r.passed);
    assert_eq!(r.score, Some(1.0));
    assert_eq!(r.spans, vec![(0, 52)]);
}

#[test]
fn citations_resolve_and_support() {
    let (case, answer) = citation_example();
    let r = run(ValidatorKind::Citations, &case, &answer).unwrap();
    assert!(!r.passed);
    assert!(close(r.score.unwrap(), 0.666667));
    assert_eq!(r.spans, vec![(118, 153)]);
    assert!(r.reason.contains("precision 0.500000"), "{}", r.reason);
    // G1: every marker valid, but claim 4 is not supported by [1].
    let (case, answer) = g1();
    let r = run(ValidatorKind::Citations, &case, &answer).unwrap();
    assert!(!r.passed);
    assert!(close(r.score.unwrap(), 0.8));
    assert_eq!(r.spans, vec![(215, 273)]);
    // A correctly cited claim passes; an uncited one fails only when the
    // case requires citations.
    let (mut case, _) = citation_example();
    let ok = "The trainer writes a checkpoint every 500 steps [1]. The trainer writes checkpoints.";
    let r = run(ValidatorKind::Citations, &case, ok).unwrap();
    assert!(r.passed, "{}", r.reason);
    assert!(close(r.score.unwrap(), 0.5));
    case.require_citations = true;
    let r = run(ValidatorKind::Citations, &case, ok).unwrap();
    assert!(!r.passed);
    assert_eq!(r.spans, vec![(53, 84)]);
}

#[test]
fn context_validators_need_distinct_passages() {
    let empty = TestCase::default();
    for k in [
        ValidatorKind::NoHallucination,
        ValidatorKind::Groundedness,
        ValidatorKind::Citations,
    ] {
        assert_eq!(field(run(k, &empty, "x").unwrap_err()), "context");
        assert!(check_config(k, &empty).is_err());
    }
    let mut case = TestCase {
        context: passages(&["a", "b"]),
        ..TestCase::default()
    };
    case.context[1].id = "doc-1".into();
    assert_eq!(
        field(check_config(ValidatorKind::Citations, &case).unwrap_err()),
        "context[1].id"
    );
}

#[test]
fn required_elements_case_insensitive_and_missing_named() {
    let case = TestCase {
        required_elements: vec!["Resume".into(), "checkpoint".into(), "ONNX".into()],
        ..TestCase::default()
    };
    let r = run(
        ValidatorKind::RequiredElements,
        &case,
        "Press RESUME to continue from the last Checkpoint.",
    )
    .unwrap();
    assert!(!r.passed);
    assert!(close(r.score.unwrap(), 2.0 / 3.0));
    assert!(
        r.reason.contains("\"ONNX\"") && !r.reason.contains("Resume"),
        "{}",
        r.reason
    );
    let r = run(
        ValidatorKind::RequiredElements,
        &case,
        "resume checkpoint onnx",
    )
    .unwrap();
    assert!(r.passed && r.score == Some(1.0));
    assert_eq!(
        field(run(ValidatorKind::RequiredElements, &TestCase::default(), "x").unwrap_err()),
        "required_elements"
    );
    let blank = TestCase {
        required_elements: vec!["a".into(), " ".into()],
        ..TestCase::default()
    };
    assert_eq!(
        field(check_config(ValidatorKind::RequiredElements, &blank).unwrap_err()),
        "required_elements[1]"
    );
}

fn schema_case(schema: serde_json::Value) -> TestCase {
    TestCase {
        output_schema: Some(schema),
        ..TestCase::default()
    }
}

#[test]
fn format_checks_a_json_schema() {
    let case = schema_case(json!({
        "type": "object",
        "required": ["answer", "confidence"],
        "properties": {"answer": {"type": "string"}, "confidence": {"type": "integer", "minimum": 0, "maximum": 100}},
        "additionalProperties": false
    }));
    assert!(
        run(
            ValidatorKind::Format,
            &case,
            r#"{"answer": "yes", "confidence": 90}"#
        )
        .unwrap()
        .passed
    );
    let r = run(
        ValidatorKind::Format,
        &case,
        r#"{"answer": 3, "confidence": 101}"#,
    )
    .unwrap();
    assert!(!r.passed && r.score.is_none());
    assert!(
        r.reason.contains("/answer") && r.reason.contains("/confidence"),
        "{}",
        r.reason
    );
    let r = run(ValidatorKind::Format, &case, "Sure! {\"answer\": \"yes\"}").unwrap();
    assert!(
        !r.passed && r.reason.contains("not valid JSON"),
        "{}",
        r.reason
    );
    // The draft follows $schema.
    let draft7 = schema_case(
        json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "array", "maxItems": 1}),
    );
    assert!(
        !run(ValidatorKind::Format, &draft7, "[1, 2]")
            .unwrap()
            .passed
    );
}

#[test]
fn format_rejects_bad_configuration_naming_the_field() {
    for schema in [json!({"type": 5}), json!({"minimum": "ten"})] {
        assert_eq!(
            field(run(ValidatorKind::Format, &schema_case(schema), "{}").unwrap_err()),
            "output_schema"
        );
    }
    // Offline: a reference outside the schema is refused, never fetched.
    let remote = schema_case(json!({"$ref": "https://example.com/schema.json"}));
    assert_eq!(
        field(check_config(ValidatorKind::Format, &remote).unwrap_err()),
        "output_schema"
    );
    let bad_regex = TestCase {
        output_pattern: Some("(unclosed".into()),
        ..TestCase::default()
    };
    assert_eq!(
        field(run(ValidatorKind::Format, &bad_regex, "x").unwrap_err()),
        "output_pattern"
    );
    let long = TestCase {
        output_pattern: Some("a".repeat(MAX_PATTERN_LEN + 1)),
        ..TestCase::default()
    };
    assert_eq!(
        field(check_config(ValidatorKind::Format, &long).unwrap_err()),
        "output_pattern"
    );
    let crossed = TestCase {
        min_length: Some(5),
        max_length: Some(4),
        ..TestCase::default()
    };
    assert_eq!(
        field(check_config(ValidatorKind::Format, &crossed).unwrap_err()),
        "max_length"
    );
    assert_eq!(
        field(check_config(ValidatorKind::Format, &TestCase::default()).unwrap_err()),
        "output_schema"
    );
}

#[test]
fn format_regex_and_lengths_in_code_points() {
    let case = TestCase {
        output_pattern: Some(r"^[A-Z]".into()),
        min_length: Some(3),
        max_length: Some(5),
        ..TestCase::default()
    };
    // "Héllo": 5 code points (6 bytes).
    assert!(run(ValidatorKind::Format, &case, "Héllo").unwrap().passed);
    let r = run(ValidatorKind::Format, &case, "héllo!").unwrap();
    assert!(!r.passed);
    assert!(
        r.reason.contains("max_length 5") && r.reason.contains("output_pattern"),
        "{}",
        r.reason
    );
    assert!(!run(ValidatorKind::Format, &case, "Hi").unwrap().passed);
    // A pattern is searched for, not matched whole.
    let search = TestCase {
        output_pattern: Some(r"\d{3}".into()),
        ..TestCase::default()
    };
    assert!(
        run(ValidatorKind::Format, &search, "code 404 here")
            .unwrap()
            .passed
    );
}

#[test]
fn test_cases_read_from_json_with_defaults() {
    let case: TestCase = serde_json::from_value(json!({
        "messages": [{"role": "user", "content": "How do I resume?"}],
        "context": [{"id": "kb-1", "text": "Users can resume a failed job."}],
        "required_elements": ["resume"],
        "tags": ["rag"]
    }))
    .unwrap();
    assert_eq!(case.messages[0].role, "user");
    assert!(
        case.reference_answer.is_none() && case.output_schema.is_none() && !case.require_citations
    );
    for k in [ValidatorKind::Groundedness, ValidatorKind::RequiredElements] {
        assert!(check_config(k, &case).is_ok());
    }
}
