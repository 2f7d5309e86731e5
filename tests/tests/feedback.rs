//! Feedback on predictions end to end: predictions made through the
//! OpenAI-compatible API, then thumbs (changed, cleared, every change kept),
//! evaluations with failure tags (aggregated as `judging.md` §8's vector T1
//! says), multi-axis ratings by two raters (agreement as §10's worked
//! example says), re-ratings, and project isolation.

use crate::api::{TestServer, chat_rows};
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use ftl_tests::mock_provider::Mock;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const R1: [i64; 10] = [1, 2, 3, 3, 4, 5, 5, 2, 4, 3];
const R2: [i64; 10] = [1, 3, 3, 2, 4, 5, 4, 2, 4, 4];

async fn trained_model(s: &TestServer, key: &str) -> String {
    let (_, ds) = s
        .upload(
            key,
            "chats.jsonl",
            chat_rows(&["red", "blue", "teal", "plum"], 4, 2),
        )
        .await;
    let config = json!({
        "model": {"name": "ftl/byte-transformer-tiny", "torch_dtype": "float32"},
        "lora": {"enabled": false},
        "training": {"optim": "adamw_torch", "bf16": false, "batch_size": 4, "max_steps": 10,
                     "warmup_steps": 2, "learning_rate": 0.01, "max_length": 64},
        "evaluation": {"eval_steps": 100}, "checkpoint": {"save_steps": 10}
    });
    let q = "mutation($c: JSON!, $d: ID!) { createTrainingJob(name: \"fb\", config: $c, datasetId: $d) { id } }";
    let job =
        s.ok(key, q, json!({"c": config, "d": ds["id"]})).await["createTrainingJob"]["id"].clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = s
            .ok(
                key,
                "query($j: ID!) { models(jobId: $j) { id } }",
                json!({"j": job}),
            )
            .await;
        if let Some(id) = d["models"][0]["id"].as_str() {
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "no model");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn predict(s: &TestServer, key: &str, model: &str, prompt: &str) -> String {
    let r: Value = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 4, "temperature": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["id"].as_str().unwrap_or_else(|| panic!("{r}"));
    // chatcmpl-<uuid simple> → the prediction id.
    uuid::Uuid::parse_str(id.trim_start_matches("chatcmpl-"))
        .unwrap()
        .to_string()
}

const RATE: &str = "mutation($p: ID!, $a: AxesInput!, $r: String) { ratePrediction(predictionId: $p, axes: $a, rater: $r) { id } }";
const EVAL: &str = "mutation($p: ID!, $s: Boolean!, $t: [String!]!) { evaluatePrediction(predictionId: $p, success: $s, tags: $t, notes: \"n\") { id } }";
const THUMB: &str = "mutation($p: ID!, $u: Boolean) { setThumb(predictionId: $p, up: $u) { judgments { kind payload } } }";

async fn feedback_and_agreement(backend: Backend) {
    let mock = Mock::start().await;
    let s = TestServer::start_with(backend, |c| {
        c.training.local_workers = 1;
        c.training.heartbeat_ms = 100;
        c.training.reconcile_ms = 50;
        c.secrets.encryption_key = Some(ftl_effects::secrets::generate_key());
        // The mock provider lives on loopback: this deployment allows it.
        c.external_models.allowed_networks = vec!["127.0.0.1/32".into()];
    })
    .await;
    let key = s.key("raters", Scope::Write).await;
    let other = s.key("elsewhere", Scope::Write).await;
    let model = trained_model(&s, &key).await;
    let mut preds = vec![];
    for i in 0..12 {
        preds.push(predict(&s, &key, &model, &format!("say red {i}")).await);
    }

    // Two raters on the overall axis: the spec's Cohen example.
    for (i, p) in preds.iter().take(10).enumerate() {
        s.ok(
            &key,
            RATE,
            json!({"p": p, "a": {"overall": R1[i]}, "r": "ann"}),
        )
        .await;
        s.ok(
            &key,
            RATE,
            json!({"p": p, "a": {"overall": R2[i]}, "r": "bob"}),
        )
        .await;
    }
    let q = "query($m: ID) { agreement(axis: OVERALL, modelId: $m) { raters items cohenKappaQuadratic fleissKappa krippendorffAlpha calibration { exact withinOne spearman } } }";
    let a = s.ok(&key, q, json!({"m": model})).await["agreement"].clone();
    assert_eq!(a["raters"], json!(["ann", "bob"]));
    assert_eq!(a["items"], 10);
    let close = |v: &Value, x: f64| assert!((v.as_f64().unwrap() - x).abs() < 5e-7, "{v} vs {x}");
    close(&a["cohenKappaQuadratic"], 0.863014);
    close(&a["calibration"]["exact"], 0.6);
    close(&a["calibration"]["withinOne"], 1.0);
    close(&a["calibration"]["spearman"], 0.865064);

    // A re-rating replaces the current value and keeps the earlier one.
    s.ok(
        &key,
        RATE,
        json!({"p": preds[0], "a": {"clarity": 2}, "r": "ann"}),
    )
    .await;
    s.ok(
        &key,
        RATE,
        json!({"p": preds[0], "a": {"clarity": 4, "overall": 1}, "r": "ann"}),
    )
    .await;
    let sum = s
        .ok(&key, "query($m: ID) { feedbackSummary(modelId: $m) { thumbsUp thumbsDown axes { axis n mean counts } failureTags { nEvaluations nFailed untaggedFailures tags { tag count pctOfFailed shareOfMentions } } } }", json!({"m": model}))
        .await["feedbackSummary"]
        .clone();
    let clarity = sum["axes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["axis"] == "clarity")
        .unwrap();
    assert_eq!(
        (clarity["n"].as_i64(), clarity["mean"].as_f64()),
        (Some(1), Some(4.0))
    );
    let overall = sum["axes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["axis"] == "overall")
        .unwrap();
    assert_eq!(overall["n"], 20);
    let mut expected_counts = [0i64; 5];
    for v in R1.iter().chain(R2.iter()) {
        expected_counts[(*v - 1) as usize] += 1;
    }
    assert_eq!(overall["counts"], json!(expected_counts));

    // Evaluations: vector T1 over twelve predictions.
    let t1: Vec<(bool, Vec<&str>)> = vec![
        (false, vec!["hallucination"]),
        (false, vec!["hallucination", "incorrect_info"]),
        (false, vec!["incomplete"]),
        (true, vec![]),
        (false, vec!["off_topic"]),
        (false, vec!["hallucination"]),
        (true, vec![]),
        (false, vec!["format_issues", "incomplete"]),
        (false, vec!["wrong_tool"]),
        (true, vec!["tone_issues"]),
        (false, vec!["hallucination"]),
        (false, vec!["incorrect_info"]),
    ];
    // A moment between the ratings and the evaluations, for as-of views.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before_evaluations = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for (p, (ok, tags)) in preds.iter().zip(&t1) {
        s.ok(&key, EVAL, json!({"p": p, "s": ok, "t": tags})).await;
    }
    let (_, bad) = s
        .gql(
            Some(&key),
            EVAL,
            json!({"p": preds[0], "s": false, "t": ["rude"]}),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "INVALID_INPUT",
        "{bad}"
    );
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown_failure_tag")
    );
    let sum = s
        .ok(&key, "query($m: ID) { feedbackSummary(modelId: $m) { failureTags { nEvaluations nFailed untaggedFailures tags { tag count pctOfFailed shareOfMentions } } } }", json!({"m": model}))
        .await["feedbackSummary"]["failureTags"]
        .clone();
    assert_eq!(
        (
            sum["nEvaluations"].as_i64(),
            sum["nFailed"].as_i64(),
            sum["untaggedFailures"].as_i64()
        ),
        (Some(12), Some(9), Some(0))
    );
    let tag = |t: &str| {
        sum["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["tag"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(tag("hallucination")["count"], 4);
    close(&tag("hallucination")["pctOfFailed"], 44.444444);
    close(&tag("hallucination")["shareOfMentions"], 36.363636);
    assert_eq!(
        tag("tone_issues")["count"],
        0,
        "tags on successes do not count"
    );

    // Thumbs: up, then down, then cleared — every change kept.
    s.ok(&key, THUMB, json!({"p": preds[1], "u": true})).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let while_up = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.ok(&key, THUMB, json!({"p": preds[1], "u": false})).await;
    let sum = s
        .ok(
            &key,
            "query { feedbackSummary { thumbsUp thumbsDown } }",
            json!({}),
        )
        .await["feedbackSummary"]
        .clone();
    assert_eq!(
        (sum["thumbsUp"].as_i64(), sum["thumbsDown"].as_i64()),
        (Some(0), Some(1))
    );
    let cleared =
        s.ok(&key, THUMB, json!({"p": preds[1], "u": null})).await["setThumb"]["judgments"].clone();
    let thumbs: Vec<Value> = cleared
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "thumb")
        .map(|j| j["payload"]["up"].clone())
        .collect();
    assert_eq!(thumbs, vec![json!(true), json!(false), Value::Null]);

    // The predictions table: filters by judgment, full-text search, sorts.
    s.ok(&key, THUMB, json!({"p": preds[2], "u": true})).await;
    s.ok(&key, THUMB, json!({"p": preds[3], "u": false})).await;
    let find = |filter: Value, sort: &'static str| {
        let s = &s;
        let key = key.clone();
        async move {
            let q = format!(
                "query($f: PredictionFilter, $a: String) {{ predictions(filter: $f, sort: {sort}, first: 5, after: $a) {{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ id latencyMs response messages {{ content }} }} }} }} }}"
            );
            let mut out: Vec<Value> = vec![];
            let mut after = Value::Null;
            loop {
                let d = s.ok(&key, &q, json!({"f": filter, "a": after})).await;
                let page = &d["predictions"];
                out.extend(
                    page["edges"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["node"].clone()),
                );
                if page["pageInfo"]["hasNextPage"] != true {
                    return out;
                }
                after = page["pageInfo"]["endCursor"].clone();
            }
        }
    };
    let ids = |rows: &[Value]| {
        let mut v: Vec<String> = rows
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let of = |idx: &[usize]| {
        let mut v: Vec<String> = idx.iter().map(|i| preds[*i].clone()).collect();
        v.sort();
        v
    };
    let with_tag = |t: &str| -> Vec<usize> { (0..12).filter(|i| t1[*i].1.contains(&t)).collect() };
    assert_eq!(
        ids(&find(json!({"tag": "hallucination"}), "NEWEST").await),
        of(&with_tag("hallucination"))
    );
    assert_eq!(
        ids(&find(json!({"tag": "tone_issues"}), "NEWEST").await),
        of(&[9]),
        "tags of successes too"
    );
    let successes: Vec<usize> = (0..12).filter(|i| t1[*i].0).collect();
    let failures: Vec<usize> = (0..12).filter(|i| !t1[*i].0).collect();
    assert_eq!(
        ids(&find(json!({"outcome": "SUCCESS"}), "NEWEST").await),
        of(&successes)
    );
    assert_eq!(
        ids(&find(json!({"outcome": "FAILURE"}), "OLDEST").await),
        of(&failures)
    );
    assert_eq!(
        ids(&find(json!({"outcome": "THUMBS_UP"}), "NEWEST").await),
        of(&[2])
    );
    assert_eq!(
        ids(&find(json!({"outcome": "THUMBS_DOWN"}), "NEWEST").await),
        of(&[3])
    );
    // Current overall ratings: ann's R1 (preds[0] re-rated 1), bob's R2.
    let rated = |keep: &dyn Fn(i64) -> bool| -> Vec<usize> {
        (0..10).filter(|i| keep(R1[*i]) || keep(R2[*i])).collect()
    };
    assert_eq!(
        ids(&find(json!({"minRating": 5}), "NEWEST").await),
        of(&rated(&|v| v >= 5))
    );
    assert_eq!(
        ids(&find(json!({"maxRating": 1}), "NEWEST").await),
        of(&rated(&|v| v <= 1))
    );
    assert_eq!(
        ids(&find(
            json!({"outcome": "FAILURE", "tag": "hallucination", "minRating": 2}),
            "NEWEST"
        )
        .await),
        of(&with_tag("hallucination")
            .into_iter()
            .filter(|i| *i < 10 && (R1[*i] >= 2 || R2[*i] >= 2))
            .collect::<Vec<_>>())
    );
    // Full text: every word must appear (in the prompt or the answer),
    // whatever its case or English ending.
    let hits = find(json!({"search": "RED 11"}), "NEWEST").await;
    assert!(ids(&hits).contains(&preds[11]), "{hits:?}");
    for h in &hits {
        let text = format!("{} {}", h["messages"], h["response"]).to_lowercase();
        assert!(text.contains("red") && text.contains("11"), "{h}");
    }
    assert_eq!(
        ids(&find(json!({"search": "saying"}), "NEWEST").await),
        of(&(0..12).collect::<Vec<_>>()),
        "stemmed: say"
    );
    assert!(find(json!({"search": "zebra"}), "NEWEST").await.is_empty());
    assert!(
        find(json!({"search": "!!! \"(*"}), "NEWEST")
            .await
            .is_empty(),
        "syntax is text"
    );
    // Sorted by latency across pages (compound cursor), both ways.
    let slow = find(json!({}), "SLOWEST").await;
    let fast = find(json!({}), "FASTEST").await;
    assert_eq!(ids(&slow), of(&(0..12).collect::<Vec<_>>()));
    let lat = |rows: &[Value]| {
        rows.iter()
            .map(|r| r["latencyMs"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert!(
        lat(&slow).windows(2).all(|w| w[0] >= w[1]),
        "{:?}",
        lat(&slow)
    );
    assert!(
        lat(&fast).windows(2).all(|w| w[0] <= w[1]),
        "{:?}",
        lat(&fast)
    );
    let now = chrono::Utc::now();
    let hour = chrono::Duration::hours(1);
    assert_eq!(
        find(
            json!({"from": (now - hour).to_rfc3339(), "to": (now + hour).to_rfc3339()}),
            "NEWEST"
        )
        .await
        .len(),
        12
    );
    assert!(
        find(json!({"from": (now + hour).to_rfc3339()}), "NEWEST")
            .await
            .is_empty()
    );
    assert_eq!(
        s.code(
            Some(&key),
            "query { predictions(filter: {tag: \"rude\"}) { edges { cursor } } }",
            json!({})
        )
        .await,
        "INVALID_INPUT"
    );
    assert_eq!(
        s.code(
            Some(&key),
            "query { predictions(after: \"prediction:x\") { edges { cursor } } }",
            json!({})
        )
        .await,
        "INVALID_INPUT"
    );

    // Trends of judgments, now and as of earlier moments (from the log).
    let trends = |as_of: Option<chrono::DateTime<chrono::Utc>>| {
        let s = &s;
        let key = key.clone();
        let model = model.clone();
        async move {
            let q = "query($m: ID, $a: DateTime) { judgmentTrends(modelId: $m, bucket: ALL, asOf: $a) { predictions judged thumbsUp thumbsDown evaluations successRate ratings meanOverall failureTags { tag count } } }";
            s.ok(
                &key,
                q,
                json!({"m": model, "a": as_of.map(|t| t.to_rfc3339())}),
            )
            .await["judgmentTrends"][0]
                .clone()
        }
    };
    let now = trends(None).await;
    let overall_sum: i64 = R1.iter().chain(R2.iter()).sum();
    assert_eq!(now["predictions"], 12);
    assert_eq!(now["judged"], 12);
    assert_eq!(
        (now["thumbsUp"].as_i64(), now["thumbsDown"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(now["evaluations"], 12);
    close(&now["successRate"], successes.len() as f64 / 12.0);
    assert_eq!(now["ratings"], 20);
    close(&now["meanOverall"], overall_sum as f64 / 20.0);
    assert_eq!(
        now["failureTags"][0],
        json!({"tag": "hallucination", "count": 4})
    );
    let earlier = trends(Some(before_evaluations)).await;
    assert_eq!(
        (
            earlier["evaluations"].as_i64(),
            earlier["thumbsUp"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(earlier["successRate"], Value::Null);
    assert_eq!(earlier["ratings"], 20, "the ratings came before");
    let up = trends(Some(while_up)).await;
    assert_eq!(
        (
            up["thumbsUp"].as_i64(),
            up["thumbsDown"].as_i64(),
            up["evaluations"].as_i64()
        ),
        (Some(1), Some(0), Some(12))
    );
    // Narrowed to a failure tag (as evaluated) and to a kind of prompt.
    let q = "query($m: ID, $t: String, $s: String) { judgmentTrends(modelId: $m, bucket: ALL, tag: $t, source: $s) { predictions evaluations successRate } }";
    let tagged = s
        .ok(&key, q, json!({"m": model, "t": "hallucination"}))
        .await["judgmentTrends"][0]
        .clone();
    assert_eq!(tagged["predictions"], with_tag("hallucination").len());
    assert_eq!(tagged["successRate"], 0.0);
    let lab = s.ok(&key, q, json!({"m": model, "s": "comparison"})).await["judgmentTrends"].clone();
    assert_eq!(
        lab,
        json!([]),
        "these came through the OpenAI API, not the lab"
    );
    let api =
        s.ok(&key, q, json!({"m": model, "s": "openai_api"})).await["judgmentTrends"][0].clone();
    assert_eq!(api["predictions"], 12);
    let days = s
        .ok(
            &key,
            "query($m: ID) { judgmentTrends(modelId: $m, bucket: DAY) { start predictions } }",
            json!({"m": model}),
        )
        .await["judgmentTrends"]
        .clone();
    let total: i64 = days
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["predictions"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 12);

    // Exports of any filter: predictions (CSV), judgments (JSONL),
    // conversations (JSON), streamed.
    let export_at = |path: String| {
        let s = &s;
        let key = key.clone();
        async move {
            let r = s
                .http
                .get(format!("{}/api/v1/exports/{path}", s.base))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            let position = r
                .headers()
                .get("x-ftl-export-position")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            (r.status().as_u16(), r.text().await.unwrap(), position)
        }
    };
    let export = |path: String| {
        let export_at = &export_at;
        async move {
            let (status, body, _) = export_at(path).await;
            (status, body)
        }
    };
    let (status, body) = export(format!(
        "predictions?format=csv&modelId={model}&outcome=failure"
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let mut csv = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = csv.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(&header[..3], ["prediction_id", "started_at", "model_id"]);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let mut got: Vec<String> = records
        .iter()
        .map(|r| r[col("prediction_id")].to_string())
        .collect();
    got.sort();
    assert_eq!(got, of(&failures));
    let second = records
        .iter()
        .find(|r| r[col("prediction_id")] == preds[1])
        .unwrap();
    assert_eq!(
        &second[col("failure_tags")],
        r#"["hallucination","incorrect_info"]"#
    );
    assert_eq!(&second[col("thumbs_down")], "0", "its thumb was cleared");
    assert_eq!(&second[col("ratings")], "2");
    let mean: f64 = second[col("mean_overall")].parse().unwrap();
    close(&json!(mean), (R1[1] + R2[1]) as f64 / 2.0);
    let (status, body, position) = export_at("judgments?format=jsonl".into()).await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 20 ratings + 2 re-ratings, 12 evaluations, 5 thumbs (3 on preds[1]): every change kept.
    assert_eq!(lines.len(), 22 + 12 + 5, "{body}");
    let thumbs_1: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target_id"] == preds[1] && l.get("rubric_version").is_none())
        .collect();
    assert_eq!(thumbs_1.len(), 3, "up, down, cleared");
    assert_eq!(thumbs_1[0]["criteria"][0]["raw_score"], 1);
    assert_eq!(thumbs_1[1]["criteria"][0]["raw_score"], -1);
    assert_eq!(
        thumbs_1[0]["superseded_by"], thumbs_1[1]["judgment_id"],
        "each change names the next"
    );
    assert_eq!(thumbs_1[2].get("superseded_by"), None);
    assert_eq!(thumbs_1[2]["criteria"], json!([]), "cleared");
    let rated = lines
        .iter()
        .find(|l| {
            l["rubric_version"] == "ftl-axes-v1"
                && l["judge_name"] == "bob"
                && l["target_id"] == preds[9]
        })
        .unwrap();
    assert_eq!(
        rated["criteria"],
        json!([{"criterion": "overall", "raw_score": R2[9] as f64, "scale_min": 1, "scale_max": 5, "score": (R2[9] as f64 - 1.0) / 4.0}])
    );
    // The same export at the same position is the same bytes, whatever
    // was judged since.
    let position = position.unwrap();
    s.ok(&key, THUMB, json!({"p": preds[4], "u": true})).await;
    let (_, again, _) = export_at(format!("judgments?format=jsonl&position={position}")).await;
    assert_eq!(again, body, "reproducible at position {position}");
    let (_, now) = export("judgments?format=jsonl".into()).await;
    assert_eq!(now.lines().count(), lines.len() + 1);
    // Judgments in CSV, long format: a row per criterion.
    let (_, csv_body) = export(format!("judgments?format=csv&position={position}")).await;
    assert!(csv_body.ends_with("\r\n"));
    let mut r = csv::Reader::from_reader(csv_body.as_bytes());
    let jh: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        &jh[..4],
        ["judgment_id", "created_at", "judge_type", "judge_name"]
    );
    let criterion = jh.iter().position(|h| h == "criterion").unwrap();
    let jrows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    // Ann's clarity + overall re-rating has two criteria, every other
    // judgment one; a cleared thumb keeps its row.
    assert_eq!(jrows.len(), 22 + 1 + 12 + 5, "{csv_body}");
    assert_eq!(
        jrows.iter().filter(|r| &r[criterion] == "clarity").count(),
        2
    );
    let (status, body) = export(format!("conversations?format=json&limit=5&modelId={model}")).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["export"]["type"], "conversations");
    assert_eq!(doc["export"]["filters"]["limit"], 5);
    let rows = doc["items"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for r in rows {
        let m = r["messages"].as_array().unwrap();
        assert_eq!(m[0]["role"], "user");
        let answer = m.last().unwrap();
        assert_eq!(answer["role"], "assistant");
        assert_eq!(answer["model"]["id"], model);
        assert!(answer["metrics"]["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(
            answer["metrics"].get("cost_usd").is_none(),
            "no price: omitted, not null"
        );
    }
    let (_, legacy) = export("conversations?format=jsonl&legacyShape=true&limit=1".into()).await;
    let legacy: Value = serde_json::from_str(legacy.trim()).unwrap();
    assert_eq!(
        legacy["messages"].as_array().unwrap().last().unwrap()["role"],
        "assistant"
    );
    assert!(legacy["evaluation"].is_object() && legacy.get("conversation_id").is_none());
    let (status, body) = export("predictions?format=xml".into()).await;
    assert_eq!(
        (status, body.contains("invalid_input")),
        (400, true),
        "{body}"
    );
    let r = s
        .http
        .get(format!("{}/api/v1/exports/predictions", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (_, body) = export("predictions?format=json&search=zebra".into()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["items"],
        json!([])
    );

    // Selected conversations become a chat dataset a job can train on;
    // answers judged bad (failed, thumb down) are weighted 0, which leaves a
    // one-turn conversation nothing to train on: it is skipped and counted.
    let q = "mutation($p: [ID!]!, $n: String!, $d: Boolean) { createDatasetFromConversations(predictionIds: $p, datasetName: $n, dropBadConversations: $d) { rows skipped dataset { kind examples } } }";
    let picked = json!([preds[0], preds[6], preds[9]]);
    let good = [0usize, 6, 9].iter().filter(|i| t1[**i].0).count();
    assert_eq!(good, 2, "6 and 9 succeeded, 0 failed");
    let d = s
        .ok(&key, q, json!({"p": picked, "n": "convos.jsonl"}))
        .await["createDatasetFromConversations"]
        .clone();
    assert_eq!(
        (d["rows"].as_i64(), d["skipped"].as_i64()),
        (Some(good as i64), Some(1)),
        "{d}"
    );
    assert_eq!(
        (
            d["dataset"]["kind"].as_str(),
            d["dataset"]["examples"].as_i64()
        ),
        (Some("supervised"), Some(good as i64))
    );
    assert_eq!(
        s.code(
            Some(&key),
            q,
            json!({"p": [preds[0], preds[1]], "n": "none.jsonl", "d": true})
        )
        .await,
        "INVALID_INPUT"
    );

    // A streaming client that goes away stops the generation; the exchange
    // is still recorded, as cancelled. The answer comes from a provider that
    // sends a piece every 300 ms, so the client has gone long before it ends
    // (the local model may sample its end token before the server notices).
    let slow = s
        .ok(
            &key,
            "mutation($i: ExternalModelInput!) { registerExternalModel(input: $i) { id } }",
            json!({"i": {"name": "mock gpt", "provider": "openai",
                          "baseUrl": format!("{}/oa/v1/", mock.base), "remoteModel": "gpt-mock",
                          "apiKey": "sk-test-openai"}}),
        )
        .await["registerExternalModel"]["id"]
        .clone();
    let content = "a slow and long answer please";
    let mut r = s
        .http
        .post(format!("{}/v1/chat/completions", s.base))
        .bearer_auth(&key)
        .json(
            &json!({"model": slow, "messages": [{"role": "user", "content": content}],
                      "stream": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    assert!(std::str::from_utf8(&first).unwrap().starts_with("data: "));
    drop(r);
    let deadline = Instant::now() + Duration::from_secs(60);
    let q = "query($m: ID) { predictions(first: 5, filter: {modelId: $m}) { edges { node { finishReason response } } } }";
    let cancelled = loop {
        let d = s.ok(&key, q, json!({"m": slow})).await;
        if let Some(h) = d["predictions"]["edges"].as_array().unwrap().first() {
            break h["node"].clone();
        }
        assert!(Instant::now() < deadline, "no prediction: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cancelled["finishReason"], "cancelled", "{cancelled}");
    assert!(
        cancelled["response"].as_str().unwrap().len() < format!("echo: {content}").len(),
        "{cancelled}"
    );

    // Another project sees none of it and cannot judge it.
    let q = "mutation($p: ID!) { setThumb(predictionId: $p, up: true) { id } }";
    assert_eq!(
        s.code(Some(&other), q, json!({"p": preds[0]})).await,
        "NOT_FOUND"
    );
    let theirs = s
        .ok(
            &other,
            "query { feedbackSummary { thumbsUp thumbsDown axes { n } } }",
            json!({}),
        )
        .await;
    assert_eq!(theirs["feedbackSummary"]["axes"][3]["n"], 0);
    s.stop().await;
    mock.handle.stop(true).await;
}

e2e!(feedback_and_agreement);
