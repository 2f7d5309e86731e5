use super::*;
use serde_json::Value;
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/events")
}

fn fixture(event_type: &str, version: u32) -> Value {
    let path = fixture_dir().join(format!("{event_type}.v{version}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing fixture {} ({e})", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn every_schema_version_has_a_fixture_that_decodes() {
    for (event_type, version) in SCHEMAS {
        let payload = fixture(event_type, *version);
        let event = DomainEvent::decode(event_type, *version, payload)
            .unwrap_or_else(|e| panic!("{event_type} v{version}: {e}"));
        assert_eq!(event.event_type(), *event_type);
    }
}

#[test]
fn latest_fixtures_round_trip_exactly() {
    for (event_type, version) in SCHEMAS {
        if latest_version(event_type) != Some(*version) {
            continue;
        }
        let payload = fixture(event_type, *version);
        let event = DomainEvent::decode(event_type, *version, payload.clone()).unwrap();
        assert_eq!(
            event.to_payload(),
            payload,
            "{event_type} v{version} changed shape"
        );
    }
}

#[test]
fn text_decoding_agrees_with_value_decoding() {
    for (event_type, version) in SCHEMAS {
        let path = fixture_dir().join(format!("{event_type}.v{version}.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        let from_text = DomainEvent::decode_text(event_type, *version, &text)
            .unwrap_or_else(|e| panic!("{event_type} v{version}: {e}"));
        let from_value =
            DomainEvent::decode(event_type, *version, serde_json::from_str(&text).unwrap())
                .unwrap();
        assert_eq!(
            from_text.to_payload(),
            from_value.to_payload(),
            "{event_type} v{version}"
        );
    }
}

#[test]
fn text_decoding_rejects_what_value_decoding_rejects() {
    let text = std::fs::read_to_string(fixture_dir().join("job.started.v1.json")).unwrap();
    let trailing = format!("{text} {{}}");
    assert!(matches!(
        DomainEvent::decode_text("job.started", 1, &trailing),
        Err(EventCodecError::Malformed { .. })
    ));
    assert!(matches!(
        DomainEvent::decode_text("job.started", 1, "{\"job_id\": 7}"),
        Err(EventCodecError::Malformed { .. })
    ));
    assert!(matches!(
        DomainEvent::decode_text("job.no_such_event", 1, "{}"),
        Err(EventCodecError::Unknown { .. })
    ));
    assert!(matches!(
        DomainEvent::decode_text("job.started", 99, &text),
        Err(EventCodecError::Unknown { .. })
    ));
    // A metric batch whose rows name a key index that does not exist.
    let bad = r#"{"job_id":"6f1c2f0e-8d9b-4c59-9f57-1f0a4c1d2e3f","keys":["loss"],"points":[[3,1,0.5,1700000000000]]}"#;
    assert!(matches!(
        DomainEvent::decode_text("job.metrics_logged", 1, bad),
        Err(EventCodecError::Malformed { .. })
    ));
}

#[test]
fn no_fixture_without_a_schema() {
    for entry in std::fs::read_dir(fixture_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name.strip_suffix(".json").unwrap();
        let (t, v) = stem.rsplit_once(".v").unwrap();
        let v: u32 = v.parse().unwrap();
        assert!(
            SCHEMAS.contains(&(t, v)),
            "fixture {name} names no known schema"
        );
    }
}

#[test]
fn job_created_v1_upcasts_with_defaults() {
    let event = DomainEvent::decode("job.created", 1, fixture("job.created", 1)).unwrap();
    match event {
        DomainEvent::Job(JobEvent::Created(c)) => {
            assert!(c.tags.is_empty());
            assert_eq!(c.provider, Provider::External);
            assert_eq!(c.name, "imported-run");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn job_created_v2_upcasts_into_the_default_experiment() {
    let event = DomainEvent::decode("job.created", 2, fixture("job.created", 2)).unwrap();
    match event {
        DomainEvent::Job(JobEvent::Created(c)) => {
            assert_eq!(c.experiment_id, "0");
            assert_eq!(c.user_id, "");
            assert_eq!(c.start_time_ms, None);
            assert_eq!(c.tags, vec!["sft".to_string(), "llama".to_string()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn prediction_recorded_v1_upcasts_as_a_local_tokenizer_count() {
    let event =
        DomainEvent::decode("prediction.recorded", 1, fixture("prediction.recorded", 1)).unwrap();
    let DomainEvent::PredictionRecorded(p) = event else {
        panic!()
    };
    assert_eq!(p.usage_source, "tokenizer");
    assert_eq!(p.model_version, "");
    assert_eq!(p.cost_usd, None);
    assert_eq!((p.prompt_tokens, p.completion_tokens), (14, 15));
}

#[test]
fn metrics_payload_keeps_non_finite_values() {
    let event =
        DomainEvent::decode("job.metrics_logged", 1, fixture("job.metrics_logged", 1)).unwrap();
    let DomainEvent::MetricsLogged(m) = event else {
        panic!()
    };
    assert!(m.points.iter().any(|p| p.value.is_nan()));
    assert!(m.points.iter().any(|p| p.value == f64::INFINITY));
    assert!(m.points.iter().any(|p| p.value == f64::NEG_INFINITY));
}

#[test]
fn unknown_types_and_versions_are_errors() {
    assert!(matches!(
        DomainEvent::decode("job.exploded", 1, Value::Null),
        Err(EventCodecError::Unknown { .. })
    ));
    assert!(matches!(
        DomainEvent::decode("job.started", 9, Value::Null),
        Err(EventCodecError::Unknown { .. })
    ));
    assert!(matches!(
        DomainEvent::decode("job.started", 1, serde_json::json!({"nope": 1})),
        Err(EventCodecError::Malformed { .. })
    ));
}
