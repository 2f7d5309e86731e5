use super::*;

#[test]
fn nul_is_refused_anywhere_in_an_event_and_only_nul() {
    let ev = |payload: Value, actor: &str| NewEvent {
        event_id: Uuid::from_u128(1),
        event_type: "t".into(),
        schema_version: 1,
        payload,
        metadata: Metadata {
            actor: Some(actor.into()),
            ..Metadata::default()
        },
    };
    for bad in [
        ev(serde_json::json!({"name": "a\u{0}b"}), "x"),
        ev(serde_json::json!({"deep": [{"k": ["\u{0}"]}]}), "x"),
        ev(serde_json::json!({"\u{0}key": 1}), "x"),
        ev(serde_json::json!({}), "worker:\u{0}"),
    ] {
        assert!(refuse_nul(&[bad]).is_err());
    }
    // The escape's text, other control characters and numbers are fine.
    let ok = ev(
        serde_json::json!({"s": "\\u0000 \u{1} \u{7f}", "n": [0, 0.0]}),
        "x",
    );
    assert!(refuse_nul(&[ok]).is_ok());
}

fn typed(t: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: t.into(),
        schema_version: 1,
        payload: Value::Null,
        metadata: Metadata::default(),
    }
}

#[test]
fn recent_appends_vouch_only_for_a_complete_ignored_run() {
    let r = RecentAppends::default();
    let metrics = |n| vec![typed("job.metrics_logged"); n];
    let ignore_metrics = |t: &str| t == "job.metrics_logged";
    // Recorded out of order (two appends finishing in either order).
    r.record(4, &metrics(2));
    r.record(1, &metrics(3));
    assert_eq!(r.skip(0, 5, &ignore_metrics), Some(5));
    assert_eq!(r.skip(2, 5, &ignore_metrics), Some(5));
    // Nothing new, or a head it has not seen yet.
    assert_eq!(r.skip(5, 5, &ignore_metrics), None);
    assert_eq!(r.skip(0, 6, &ignore_metrics), None, "position 6 unknown");
    // A type the reader handles must be read.
    r.record(6, &[typed("job.started")]);
    assert_eq!(r.skip(0, 6, &ignore_metrics), None);
    assert_eq!(r.skip(6, 6, &ignore_metrics), None);
    // A gap (another process's append at 7) is never vouched for.
    r.record(8, &metrics(1));
    assert_eq!(r.skip(6, 8, &ignore_metrics), None);
    assert_eq!(r.skip(7, 8, &ignore_metrics), Some(8));
    // Forgotten positions are unknown again.
    r.record(9, &metrics(RecentAppends::CAPACITY));
    assert_eq!(
        r.skip(7, 8 + RecentAppends::CAPACITY as u64, &ignore_metrics),
        None
    );
    let newest = 8 + RecentAppends::CAPACITY as u64;
    assert_eq!(r.skip(newest - 10, newest, &ignore_metrics), Some(newest));
}

#[test]
fn expected_version_rules() {
    assert!(ExpectedVersion::NoStream.accepts(0));
    assert!(!ExpectedVersion::NoStream.accepts(1));
    assert!(ExpectedVersion::StreamExists.accepts(3));
    assert!(!ExpectedVersion::StreamExists.accepts(0));
    assert!(ExpectedVersion::Exact(2).accepts(3));
    assert!(!ExpectedVersion::Exact(2).accepts(2));
    assert!(ExpectedVersion::Any.accepts(0));
    assert_eq!(ExpectedVersion::after_length(0), ExpectedVersion::NoStream);
    assert_eq!(ExpectedVersion::after_length(5), ExpectedVersion::Exact(4));
}

#[test]
fn replay_detection() {
    let ev = |id: u128| NewEvent {
        event_id: Uuid::from_u128(id),
        event_type: "t".into(),
        schema_version: 1,
        payload: Value::Null,
        metadata: Metadata::default(),
    };
    let events = vec![ev(1), ev(2)];
    assert_eq!(replayed_result("s", &events, &[]).unwrap(), None);
    let stored = vec![
        (Uuid::from_u128(1), "s".to_string(), 10, 0),
        (Uuid::from_u128(2), "s".to_string(), 11, 1),
    ];
    let r = replayed_result("s", &events, &stored).unwrap().unwrap();
    assert_eq!(
        (
            r.first_position,
            r.last_position,
            r.last_version,
            r.deduplicated
        ),
        (10, 11, 1, true)
    );
    assert!(replayed_result("s", &events, &stored[..1]).is_err());
    assert!(replayed_result("other", &events, &stored).is_err());
    assert!(validate_batch(&[ev(1), ev(1)]).is_err());
    assert!(validate_batch(&[]).is_err());
}
