//! Evaluation end to end (issue #20): test suites created, uploaded as CSV,
//! JSONL and plain lists over GraphQL and the REST route, versioned (every
//! version's cases listable), bad files refused with every bad row and
//! nothing stored, idempotent retries, project isolation and scopes; the
//! validators' preview on given text.

use crate::api::TestServer;
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use serde_json::{Value, json};

const CREATE: &str = "mutation($n: String!, $d: String, $k: String) { createTestSuite(name: $n, description: $d, idempotencyKey: $k) { id name description version caseCount } }";
const UPLOAD: &str = "mutation($s: ID!, $f: SuiteFileFormat!, $c: String!, $m: SuiteUploadMode = APPEND, $k: String) { uploadTestCases(suiteId: $s, format: $f, content: $c, mode: $m, idempotencyKey: $k) { version rows suite { version caseCount } } }";
const SUITE: &str = "query($s: ID!, $v: Int, $n: Int = 50, $a: String) { testSuite(id: $s) { id version caseCount versions { version mode format sha256 rows caseCount } cases(version: $v, first: $n, after: $a) { edges { cursor node { id messages { role content } referenceAnswer context { id text } requiredElements labels tags metadata } } pageInfo { hasNextPage } } } }";

const CSV: &str = "id,prompt,system,expected_output,required_elements,labels,context\n\
    refund,How do I get a refund?,Be brief.,Bring the receipt.,\"[\"\"receipt\"\"]\",\"[\"\"billing\"\"]\",\n\
    hours,When are you open?,,,,,\"[\"\"We open at nine.\"\"]\"\n\
    ,\"Say \"\"hi\"\"\nin two lines\",,,,,\n";

async fn upload(
    s: &TestServer,
    key: &str,
    suite: &str,
    format: &str,
    content: &str,
    mode: &str,
) -> Value {
    s.ok(
        key,
        UPLOAD,
        json!({"s": suite, "f": format, "c": content, "m": mode}),
    )
    .await["uploadTestCases"]
        .clone()
}

/// (id, first message's content) of each case of `version`.
async fn cases(s: &TestServer, key: &str, suite: &str, version: i64) -> Vec<(String, String)> {
    let d = s
        .ok(key, SUITE, json!({"s": suite, "v": version, "n": 100}))
        .await;
    d["testSuite"]["cases"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            let last = n["messages"].as_array().unwrap().last().unwrap();
            (
                n["id"].as_str().unwrap().to_string(),
                last["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn rest_upload(
    s: &TestServer,
    key: &str,
    suite: &str,
    query: &str,
    body: Vec<u8>,
    idempotency: Option<&str>,
) -> (u16, Value) {
    let mut req = s
        .http
        .post(format!("{}/api/v1/suites/{suite}/cases?{query}", s.base))
        .bearer_auth(key)
        .body(body);
    if let Some(k) = idempotency {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn test_suites(backend: Backend) {
    let s = TestServer::start_with(backend, |c| c.limits.body_bytes = 8 * 1024 * 1024).await;
    let key = s.key("evals", Scope::Write).await;
    let other = s.key("elsewhere", Scope::Write).await;
    let reader = s.key("evals", Scope::Read).await;

    // Created once per idempotency key; the key with other values is refused.
    let args = json!({"n": "support bot", "d": "billing and hours", "k": "suite-1"});
    let created = s.ok(&key, CREATE, args.clone()).await["createTestSuite"].clone();
    assert_eq!(created["version"], 0);
    assert_eq!(created["caseCount"], 0);
    let again = s.ok(&key, CREATE, args).await["createTestSuite"].clone();
    assert_eq!(again["id"], created["id"]);
    let reused = json!({"n": "another", "k": "suite-1"});
    assert_eq!(
        s.code(Some(&key), CREATE, reused).await,
        "IDEMPOTENCY_KEY_REUSED"
    );
    assert_eq!(
        s.code(Some(&reader), CREATE, json!({"n": "x"})).await,
        "FORBIDDEN"
    );
    let id = created["id"].as_str().unwrap().to_string();

    // Version 1 from CSV: system + prompt become messages, a missing id is
    // row-<line>, an embedded newline stays in its field.
    let v1 = upload(&s, &key, &id, "CSV", CSV, "APPEND").await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["rows"], 3);
    assert_eq!(v1["suite"]["caseCount"], 3);
    let d = s.ok(&key, SUITE, json!({"s": id})).await["testSuite"].clone();
    let first = &d["cases"]["edges"][0]["node"];
    assert_eq!(first["id"], "refund");
    assert_eq!(
        first["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I get a refund?"}])
    );
    assert_eq!(first["referenceAnswer"], "Bring the receipt.");
    assert_eq!(first["requiredElements"], json!(["receipt"]));
    assert_eq!(first["labels"], json!(["billing"]));
    assert_eq!(
        d["cases"]["edges"][1]["node"]["context"],
        json!([{"id": "1", "text": "We open at nine."}])
    );
    assert_eq!(
        cases(&s, &key, &id, 1).await[2],
        ("row-4".to_string(), "Say \"hi\"\nin two lines".to_string())
    );
    let sha = d["versions"][0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);

    // A bad file: every bad row with its line, nothing stored.
    let bad = "id,prompt,required_elements\nok,fine,\nb,,\nc,x,not json\n";
    let (_, body) = s
        .gql(Some(&key), UPLOAD, json!({"s": id, "f": "CSV", "c": bad}))
        .await;
    let err = &body["errors"][0]["extensions"];
    assert_eq!(err["code"], "INVALID_INPUT", "{body}");
    assert_eq!(err["errorCount"], 2);
    assert_eq!(
        err["rowErrors"],
        json!([
            {"line": 3, "column": "prompt", "code": "missing_prompt", "message": err["rowErrors"][0]["message"]},
            {"line": 4, "column": "required_elements", "code": "invalid_json", "message": err["rowErrors"][1]["message"]},
        ])
    );
    let d = s.ok(&key, SUITE, json!({"s": id})).await["testSuite"].clone();
    assert_eq!(
        (d["version"].clone(), d["caseCount"].clone()),
        (json!(1), json!(3))
    );

    // Version 2, JSONL appended: "hours" is replaced by id, "new" added;
    // version 1 still reads as it was.
    let jsonl = "{\"id\": \"hours\", \"prompt\": \"Are you open on Sunday?\"}\n{\"id\": \"new\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], \"tags\": [\"smoke\"]}\n";
    let v2 = upload(&s, &key, &id, "JSONL", jsonl, "APPEND").await;
    assert_eq!(
        (v2["version"].clone(), v2["suite"]["caseCount"].clone()),
        (json!(2), json!(4))
    );
    let ids = |v: Vec<(String, String)>| v.into_iter().map(|c| c.0).collect::<Vec<_>>();
    assert_eq!(
        ids(cases(&s, &key, &id, 2).await),
        ["refund", "row-4", "hours", "new"]
    );
    assert!(
        cases(&s, &key, &id, 2)
            .await
            .contains(&("hours".into(), "Are you open on Sunday?".into()))
    );
    assert_eq!(
        ids(cases(&s, &key, &id, 1).await),
        ["refund", "hours", "row-4"]
    );
    assert!(
        cases(&s, &key, &id, 1)
            .await
            .contains(&("hours".into(), "When are you open?".into()))
    );
    assert!(cases(&s, &key, &id, 0).await.is_empty());

    // Cursor pages cover the version exactly once.
    let p1 = s.ok(&key, SUITE, json!({"s": id, "n": 3})).await["testSuite"]["cases"].clone();
    assert_eq!(p1["pageInfo"]["hasNextPage"], true);
    let after = p1["edges"][2]["cursor"].clone();
    let p2 = s
        .ok(&key, SUITE, json!({"s": id, "n": 3, "a": after}))
        .await["testSuite"]["cases"]
        .clone();
    assert_eq!(p2["edges"].as_array().unwrap().len(), 1);
    assert_eq!(p2["edges"][0]["node"]["id"], "new");
    assert_eq!(p2["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        s.code(Some(&key), SUITE, json!({"s": id, "a": "nonsense"}))
            .await,
        "INVALID_INPUT"
    );
    assert_eq!(
        s.code(Some(&key), SUITE, json!({"s": id, "v": 9})).await,
        "INVALID_INPUT"
    );

    // Version 3 over REST: a plain list replacing everything, sent twice
    // under one key (stored once); the key with another file is refused.
    let list = b"first prompt\n\nsecond prompt\n".to_vec();
    let (st, r) = rest_upload(
        &s,
        &key,
        &id,
        "format=lines&mode=replace",
        list.clone(),
        Some("v3"),
    )
    .await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(
        (r["version"].clone(), r["caseCount"].clone()),
        (json!(3), json!(2))
    );
    let (st, r) = rest_upload(&s, &key, &id, "format=lines&mode=replace", list, Some("v3")).await;
    assert_eq!((st, r["version"].clone()), (201, json!(3)), "{r}");
    let (st, r) = rest_upload(
        &s,
        &key,
        &id,
        "format=lines&mode=replace",
        b"other\n".to_vec(),
        Some("v3"),
    )
    .await;
    assert_eq!(
        (st, r["code"].clone()),
        (422, json!("idempotency_key_reused")),
        "{r}"
    );
    assert_eq!(ids(cases(&s, &key, &id, 3).await), ["row-1", "row-3"]);
    assert_eq!(cases(&s, &key, &id, 2).await.len(), 4, "version 2 is kept");

    // REST refusals: rows (422), a file past 20 MiB (413), bad parameters.
    let (st, r) = rest_upload(
        &s,
        &key,
        &id,
        "format=jsonl",
        b"{\"prompt\": 1}\nnot json\n".to_vec(),
        None,
    )
    .await;
    assert_eq!(
        (st, r["code"].clone(), r["errorCount"].clone()),
        (422, json!("suite_file_invalid"), json!(2)),
        "{r}"
    );
    assert_eq!(r["rowErrors"][1]["line"], 2);
    let huge = vec![b'x'; 20 * 1024 * 1024 + 1];
    let (st, r) = rest_upload(&s, &key, &id, "format=lines", huge, None).await;
    assert_eq!(
        (st, r["code"].clone()),
        (413, json!("limit_exceeded")),
        "{r}"
    );
    let (st, _) = rest_upload(&s, &key, &id, "format=xlsx", b"a\n".to_vec(), None).await;
    assert_eq!(st, 400);
    let (st, _) = rest_upload(
        &s,
        &key,
        &id,
        "format=lines&mode=merge",
        b"a\n".to_vec(),
        None,
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = rest_upload(&s, &reader, &id, "format=lines", b"a\n".to_vec(), None).await;
    assert_eq!(st, 403);
    let d = s.ok(&key, SUITE, json!({"s": id})).await["testSuite"].clone();
    assert_eq!(
        (d["version"].clone(), d["caseCount"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(d["versions"].as_array().unwrap().len(), 3);
    assert_eq!(d["versions"][2]["mode"], "replace");
    assert_eq!(d["versions"][2]["format"], "lines");

    // Another project sees nothing and can change nothing.
    let theirs = s.ok(&other, SUITE, json!({"s": id})).await;
    assert_eq!(theirs["testSuite"], Value::Null);
    assert_eq!(
        s.code(
            Some(&other),
            UPLOAD,
            json!({"s": id, "f": "LINES", "c": "a"})
        )
        .await,
        "NOT_FOUND"
    );
    let (st, _) = rest_upload(&s, &other, &id, "format=lines", b"a\n".to_vec(), None).await;
    assert_eq!(st, 404);
    let listed = s
        .ok(
            &other,
            "{ testSuites { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["testSuites"]["edges"], json!([]));
    let mine = s
        .ok(
            &key,
            "{ testSuites { edges { node { id caseCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine["testSuites"]["edges"],
        json!([{"node": {"id": id, "caseCount": 2}}])
    );
    assert_eq!(
        s.code(
            Some(&key),
            UPLOAD,
            json!({"s": uuid::Uuid::new_v4(), "f": "LINES", "c": "a"})
        )
        .await,
        "NOT_FOUND"
    );

    // The validators' preview: no model, no write; unknown ids refused.
    const VALIDATE: &str = "query($c: TestCaseInput!, $o: String!, $v: [String!]) { validateOutput(case: $c, output: $o, validators: $v) { validator passed score reason spans { start end } } }";
    let case = json!({"context": [{"id": "a", "text": "We open at nine on weekdays."}], "outputPattern": "^We"});
    let out = s
        .ok(
            &reader,
            VALIDATE,
            json!({"c": case, "o": "We open at nine [2].", "v": ["citations", "format"]}),
        )
        .await["validateOutput"]
        .clone();
    assert_eq!(out[0]["validator"], "citations");
    assert_eq!(out[0]["passed"], false, "[2] names no passage: {out}");
    assert_eq!(out[1]["validator"], "format");
    assert_eq!(out[1]["passed"], true);
    assert_eq!(
        s.code(
            Some(&reader),
            VALIDATE,
            json!({"c": case, "o": "x", "v": ["vibes"]})
        )
        .await,
        "INVALID_INPUT"
    );
    assert_eq!(
        s.code(None, VALIDATE, json!({"c": case, "o": "x"})).await,
        "UNAUTHENTICATED"
    );
    s.stop().await;
}

e2e!(test_suites);
