use super::upload::*;
use super::*;
use crate::decider::testing::given;

fn codes(r: &UploadRejected) -> Vec<(Option<usize>, Option<&str>, &str)> {
    r.errors
        .iter()
        .map(|e| (e.line, e.column.as_deref(), e.code))
        .collect()
}

fn suite() -> SuiteCreated {
    SuiteCreated {
        suite_id: SuiteId(uuid::Uuid::from_u128(1)),
        project_id: ProjectId(uuid::Uuid::from_u128(2)),
        name: "s".into(),
        description: String::new(),
    }
}

fn source() -> UploadSource {
    UploadSource {
        format: UploadFormat::Lines,
        sha256: "00".into(),
        rows: 1,
    }
}

fn cases(ids: &[&str]) -> Vec<SuiteCase> {
    ids.iter()
        .map(|id| SuiteCase {
            id: id.to_string(),
            case: TestCase {
                messages: vec![crate::evaluation::validators::Message {
                    role: "user".into(),
                    content: format!("question {id}"),
                }],
                ..Default::default()
            },
            labels: vec![],
            metadata: None,
        })
        .collect()
}

fn uploaded(version: u32, mode: UploadMode, ids: &[&str]) -> SuiteEvent {
    SuiteEvent::CasesUploaded(CasesUploaded {
        suite_id: suite().suite_id,
        version,
        chunk: 0,
        chunks: 1,
        mode,
        source: source(),
        cases: cases(ids),
    })
}

#[test]
fn csv_with_every_column_becomes_cases() {
    let file = "id,prompt,system,expected_output,labels,required_elements,tags,metadata,context,output_schema,output_pattern,min_length,max_length,require_citations\r\n\
        q1,Can I resume?,Cite as [k].,Yes.,\"[\"\"core\"\"]\",\"[\"\"checkpoint\"\"]\",\"[\"\"rag\"\"]\",\"{\"\"o\"\": 1}\",\"[\"\"Resume from the last checkpoint.\"\"]\",\"{\"\"type\"\": \"\"string\"\"}\",\\[1\\],5,500,true\r\n\
        ,\"multi\nline\",,,,,,,,,,,,\r\n";
    let got = parse_upload(UploadFormat::Csv, file.as_bytes()).unwrap();
    assert_eq!(got.len(), 2);
    let c = &got[0];
    assert_eq!(c.id, "q1");
    assert_eq!(c.case.messages.len(), 2);
    assert_eq!(c.case.messages[0].role, "system");
    assert_eq!(c.case.messages[1].content, "Can I resume?");
    assert_eq!(c.case.reference_answer.as_deref(), Some("Yes."));
    assert_eq!(c.labels, vec!["core"]);
    assert_eq!(c.case.required_elements, vec!["checkpoint"]);
    assert_eq!(c.case.tags, vec!["rag"]);
    assert_eq!(c.metadata, Some(serde_json::json!({"o": 1})));
    assert_eq!(c.case.context[0].id, "1");
    assert_eq!(c.case.output_pattern.as_deref(), Some("\\[1\\]"));
    assert_eq!((c.case.min_length, c.case.max_length), (Some(5), Some(500)));
    assert!(c.case.require_citations);
    // A missing id is row-<line>, the line where the record starts.
    assert_eq!(got[1].id, "row-3");
    assert_eq!(got[1].case.messages[0].content, "multi\nline");
}

#[test]
fn a_bad_csv_reports_every_bad_row_and_keeps_nothing() {
    let file = "\u{feff}id,prompt,required_elements,output_schema,min_length\n\
        a,fine,,,\n\
        b,,,,\n\
        c,x,not json,,\n\
        a,dup,,,\n\
        d,x,,\"{\"\"type\"\": \"\"nope\"\"}\",\n\
        e,x,,,-3\n\
        f,x\n";
    let err = parse_upload(UploadFormat::Csv, file.as_bytes()).unwrap_err();
    assert_eq!(
        codes(&err),
        vec![
            (Some(3), Some("prompt"), "missing_prompt"),
            (Some(4), Some("required_elements"), "invalid_json"),
            (Some(5), Some("id"), "duplicate_id"),
            (Some(6), Some("output_schema"), "invalid_schema"),
            (Some(7), Some("min_length"), "invalid_value"),
            (Some(8), None, "invalid_row"),
        ]
    );
    assert_eq!(err.error_count, 6);
    assert!(
        err.errors[2].message.contains("line 2"),
        "{:?}",
        err.errors[2]
    );
    assert!(!err.is_limit());
}

#[test]
fn csv_header_problems_are_file_errors_on_line_one() {
    let err = parse_upload(UploadFormat::Csv, b"prompt,colour,prompt\nx,y,z\n").unwrap_err();
    assert_eq!(
        codes(&err),
        vec![
            (Some(1), Some("colour"), "unknown_column"),
            (Some(1), Some("prompt"), "duplicate_column"),
        ]
    );
    let err = parse_upload(UploadFormat::Csv, b"id,system\n1,x\n").unwrap_err();
    assert_eq!(codes(&err), vec![(Some(1), None, "missing_column")]);
    let err = parse_upload(UploadFormat::Csv, b"prompt\n").unwrap_err();
    assert_eq!(codes(&err), vec![(None, None, "empty_file")]);
}

#[test]
fn jsonl_rows_are_checked_like_csv_rows() {
    let file = "{\"prompt\": \"hi\", \"tags\": [\"a\"]}\n\
        \n\
        {\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}], \"id\": \"m\"}\n\
        not json\n\
        [1]\n\
        {\"prompt\": \"x\", \"colour\": 1, \"tags\": \"a\"}\n\
        {\"prompt\": \"x\", \"messages\": [{\"role\": \"user\", \"content\": \"y\"}]}\n\
        {\"messages\": [{\"role\": \"robot\", \"content\": \"y\"}]}\n\
        {\"prompt\": 7}\n";
    let err = parse_upload(UploadFormat::Jsonl, file.as_bytes()).unwrap_err();
    let mut got = codes(&err);
    got.sort();
    let mut want = vec![
        (Some(4), None, "invalid_json"),
        (Some(5), None, "invalid_row"),
        (Some(6), Some("colour"), "unknown_field"),
        (Some(6), Some("tags"), "invalid_type"),
        (Some(7), Some("prompt"), "conflicting_fields"),
        (Some(8), Some("messages"), "invalid_messages"),
        (Some(9), Some("prompt"), "invalid_type"),
    ];
    want.sort();
    assert_eq!(got, want);
    let good = "{\"prompt\": \"hi\"}\r\n{\"id\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"context\": [{\"id\": \"d1\", \"text\": \"t\"}]}\n";
    let got = parse_upload(UploadFormat::Jsonl, good.as_bytes()).unwrap();
    assert_eq!(got[0].id, "row-1");
    assert_eq!(got[1].case.context[0].id, "d1");
}

#[test]
fn plain_lists_are_one_prompt_per_line() {
    let got = parse_upload(UploadFormat::Lines, b"  first  \n\n second\r\n").unwrap();
    let prompts: Vec<(&str, &str)> = got
        .iter()
        .map(|c| (c.id.as_str(), c.case.messages[0].content.as_str()))
        .collect();
    assert_eq!(prompts, vec![("row-1", "first"), ("row-3", "second")]);
}

#[test]
fn limits_are_stated_and_refuse_the_file() {
    let big = vec![b'a'; MAX_FILE_BYTES + 1];
    let err = parse_upload(UploadFormat::Lines, &big).unwrap_err();
    assert_eq!(codes(&err), vec![(None, None, "file_too_large")]);
    assert!(err.errors[0].message.contains("20 MiB"));
    assert!(err.is_limit());

    let many = "q\n".repeat(MAX_ROWS + 1);
    let err = parse_upload(UploadFormat::Lines, many.as_bytes()).unwrap_err();
    assert_eq!(codes(&err), vec![(None, None, "too_many_rows")]);
    assert!(parse_upload(UploadFormat::Lines, "q\n".repeat(MAX_ROWS).as_bytes()).is_ok());

    let long = format!("prompt\n{}\n", "x".repeat(MAX_PROMPT_BYTES + 1));
    let err = parse_upload(UploadFormat::Csv, long.as_bytes()).unwrap_err();
    assert_eq!(
        codes(&err),
        vec![(Some(2), Some("prompt"), "prompt_too_long")]
    );

    let err = parse_upload(UploadFormat::Lines, b"ok\n\xff\xfe\n").unwrap_err();
    assert_eq!(codes(&err), vec![(Some(2), None, "invalid_encoding")]);
}

#[test]
fn errors_are_capped_at_one_hundred_but_counted() {
    let file = format!("prompt,min_length\n{}", "x,bad\n".repeat(150));
    let err = parse_upload(UploadFormat::Csv, file.as_bytes()).unwrap_err();
    assert_eq!(err.errors.len(), MAX_ERRORS);
    assert_eq!(err.error_count, 150);
    assert_eq!(err.errors[99].line, Some(101));
}

#[test]
fn uploads_make_versions_and_append_replaces_by_id() {
    let created = SuiteEvent::Created(suite());
    let state = SuiteDecider::fold(&[
        created.clone(),
        uploaded(1, UploadMode::Append, &["a", "b"]),
        uploaded(2, UploadMode::Append, &["b", "c"]),
    ]);
    assert_eq!(state.version, 2);
    assert_eq!(state.case_ids.len(), 3);
    let state = SuiteDecider::evolve(state, &uploaded(3, UploadMode::Replace, &["z"]));
    assert_eq!(state.case_ids.into_iter().collect::<Vec<_>>(), vec!["z"]);

    given::<SuiteDecider>(&[created.clone(), uploaded(1, UploadMode::Append, &["a"])])
        .when(SuiteCommand::Upload {
            mode: UploadMode::Append,
            source: source(),
            cases: cases(&["b"]),
        })
        .then(vec![uploaded(2, UploadMode::Append, &["b"])]);
}

#[test]
fn uploads_need_a_suite_and_respect_the_case_cap() {
    given::<SuiteDecider>(&[])
        .when(SuiteCommand::Upload {
            mode: UploadMode::Append,
            source: source(),
            cases: cases(&["a"]),
        })
        .then_error(DomainError::NotFound {
            entity: "test suite",
        });
    let ids: Vec<String> = (0..MAX_SUITE_CASES).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let full = [
        SuiteEvent::Created(suite()),
        uploaded(1, UploadMode::Append, &refs),
    ];
    // Replacing an existing id adds nothing; a new one is one too many.
    given::<SuiteDecider>(&full)
        .when(SuiteCommand::Upload {
            mode: UploadMode::Append,
            source: source(),
            cases: cases(&["7"]),
        })
        .then(vec![uploaded(2, UploadMode::Append, &["7"])]);
    given::<SuiteDecider>(&full)
        .when(SuiteCommand::Upload {
            mode: UploadMode::Append,
            source: source(),
            cases: cases(&["new"]),
        })
        .then_error_matches(|e| matches!(e, DomainError::LimitExceeded { .. }));
    given::<SuiteDecider>(&full)
        .when(SuiteCommand::Upload {
            mode: UploadMode::Replace,
            source: source(),
            cases: cases(&["new"]),
        })
        .then(vec![uploaded(2, UploadMode::Replace, &["new"])]);
}

#[test]
fn a_large_upload_is_chunked_in_order_under_the_event_size() {
    let ids: Vec<String> = (0..3000).map(|i| format!("case-{i}")).collect();
    let mut big = cases(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    for c in &mut big {
        c.case.messages[0].content = "x".repeat(1000);
    }
    let events = SuiteDecider::decide(
        &SuiteDecider::fold(&[SuiteEvent::Created(suite())]),
        &SuiteCommand::Upload {
            mode: UploadMode::Replace,
            source: source(),
            cases: big.clone(),
        },
        chrono::Utc::now(),
    )
    .unwrap();
    assert!(events.len() >= 3, "{} chunks", events.len());
    let mut all = vec![];
    for (i, e) in events.iter().enumerate() {
        let SuiteEvent::CasesUploaded(u) = e else {
            panic!("not an upload")
        };
        assert_eq!(
            (u.chunk as usize, u.chunks as usize, u.version),
            (i, events.len(), 1)
        );
        assert!(serde_json::to_vec(&u.cases).unwrap().len() <= CHUNK_BYTES + 2);
        all.extend(u.cases.clone());
    }
    assert_eq!(all, big);
    // Folding every chunk of a replace keeps all of them.
    let mut history = vec![SuiteEvent::Created(suite())];
    history.extend(events);
    assert_eq!(SuiteDecider::fold(&history).case_ids.len(), 3000);
}

#[test]
fn suite_names_and_duplicates_are_checked() {
    let create = |name: &str| SuiteCommand::Create {
        suite_id: suite().suite_id,
        project_id: suite().project_id,
        name: name.into(),
        description: String::new(),
    };
    given::<SuiteDecider>(&[])
        .when(create(" "))
        .then_error_matches(|e| matches!(e, DomainError::InvalidInput { .. }));
    given::<SuiteDecider>(&[SuiteEvent::Created(suite())])
        .when(create("again"))
        .then_error(DomainError::AlreadyExists {
            entity: "test suite",
        });
}
