//! The comparison lab closes the loop: two models trained here answer the
//! same prompts, raters vote blind, contradicting votes drop out, the votes
//! export as TRL and OpenAI DPO preference data, and a DPO job trains on the
//! exported dataset.

use crate::api::{TestServer, chat_rows};
use ftl_domain::project::Scope;
use ftl_tests::Backend;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WORDS: [&str; 6] = ["red", "blue", "teal", "plum", "gold", "gray"];

async fn train(
    s: &TestServer,
    key: &str,
    dataset: &Value,
    method: &str,
    model: &str,
    steps: u64,
) -> (String, Value) {
    let mut config = json!({
        "model": {"name": model, "torch_dtype": "float32"},
        "lora": {"enabled": false},
        "training": {"method": method, "optim": "adamw_torch", "bf16": false, "batch_size": 4,
                     "max_steps": steps, "warmup_steps": 1, "learning_rate": 0.01, "max_length": 64},
        "evaluation": {"eval_steps": 1000}, "checkpoint": {"save_steps": 1000}
    });
    if method == "dpo" {
        config["data"] = json!({"eval_split": 0.0});
        config["evaluation"] = json!({"strategy": "no"});
        config["checkpoint"]["metric_for_best_model"] = json!("train_loss");
    }
    let q = "mutation($c: JSON!, $d: ID!) { createTrainingJob(name: \"lab\", config: $c, datasetId: $d) { id } }";
    let (_, body) = s
        .gql(Some(key), q, json!({"c": config, "d": dataset["id"]}))
        .await;
    let job = body["data"]["createTrainingJob"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = s
            .ok(
                key,
                "query($j: ID!) { job(id: $j) { status error } models(jobId: $j) { id } }",
                json!({"j": job}),
            )
            .await;
        assert_ne!(d["job"]["status"], "FAILED", "{d}");
        // The model follows the success by a moment (a reaction).
        if d["job"]["status"] == "SUCCEEDED" && !d["models"][0]["id"].is_null() {
            return (job, d["models"][0]["id"].clone());
        }
        assert!(Instant::now() < deadline, "{d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `tests/trl/check_preferences.py` on an export (when scripts/test.sh
/// provides the Python environment; a bare `cargo test` skips it, saying so).
fn check_preferences(kind: &str, jsonl: &str, extra: &[&str], rows: usize) {
    let Ok(python) = std::env::var("FTL_TEST_PYTHON") else {
        eprintln!("FTL_TEST_PYTHON is not set: skipping the TRL-conventions check");
        return;
    };
    let path = std::env::temp_dir().join(format!("ftl-prefs-{}.jsonl", uuid::Uuid::new_v4()));
    std::fs::write(&path, jsonl).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/trl/check_preferences.py");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script)
        .arg(kind)
        .arg(&path)
        .env("HF_DATASETS_OFFLINE", "1");
    if !extra.is_empty() {
        cmd.arg("--extra").args(extra);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{kind} export fails the check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        rows.to_string()
    );
}

const VOTE: &str = "mutation($c: ID!, $i: Int!, $p: Int, $r: String) { voteComparison(comparisonId: $c, promptIndex: $i, preferred: $p, rater: $r) { id } }";
const VIEW: &str = "query($c: ID!, $r: String) { comparison(id: $c, rater: $r) { name prompts { index context { content } responses { position content predictionId model { id name } } votes { rater preferences } } } }";
const EXPORT: &str = "mutation($c: [ID!]!, $f: PreferenceFormat!, $d: String) { exportPreferences(comparisonIds: $c, format: $f, datasetName: $d) { rows contradictionsDropped jsonl metadataJsonl dataset { id kind examples } } }";

async fn comparison_lab_to_dpo(backend: Backend) {
    let s = TestServer::start_with(backend, |c| {
        c.training.local_workers = 1;
        c.training.heartbeat_ms = 100;
        c.training.reconcile_ms = 50;
    })
    .await;
    let key = s.key("lab", Scope::Write).await;
    let (_, chats) = s.upload(&key, "chats.jsonl", chat_rows(&WORDS, 3, 2)).await;
    let (_, a) = train(&s, &key, &chats, "sft", "ftl/byte-transformer-tiny", 12).await;
    let (_, b) = train(&s, &key, &chats, "sft", "ftl/byte-transformer-tiny", 4).await;

    let prompts: Vec<String> = WORDS.iter().map(|w| format!("say {w}")).collect();
    let q = "mutation($m: [ID!]!, $p: [String!]!) { createComparison(name: \"a vs b\", modelIds: $m, prompts: $p, maxTokens: 8) { id prompts { responses { model { id } } } } }";
    let created =
        s.ok(&key, q, json!({"m": [a, b], "p": prompts})).await["createComparison"].clone();
    let id = created["id"].as_str().unwrap().to_string();
    // Blind: no model shown before voting.
    for p in created["prompts"].as_array().unwrap() {
        assert_eq!(p["responses"].as_array().unwrap().len(), 2);
        assert!(
            p["responses"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["model"].is_null()),
            "{p}"
        );
    }
    // ann prefers position 0 on every prompt; bob contradicts her on prompt 0.
    for i in 0..WORDS.len() {
        s.ok(&key, VOTE, json!({"c": id, "i": i, "p": 0, "r": "ann"}))
            .await;
    }
    s.ok(&key, VOTE, json!({"c": id, "i": 0, "p": 1, "r": "bob"}))
        .await;
    let ann = s.ok(&key, VIEW, json!({"c": id, "r": "ann"})).await["comparison"].clone();
    let bob = s.ok(&key, VIEW, json!({"c": id, "r": "bob"})).await["comparison"].clone();
    assert!(
        ann["prompts"][3]["responses"][0]["model"]["id"].is_string(),
        "revealed after voting"
    );
    assert!(
        bob["prompts"][3]["responses"][0]["model"].is_null(),
        "still blind for bob on prompt 3"
    );
    assert_eq!(ann["prompts"][0]["votes"].as_array().unwrap().len(), 2);
    // The display order is fixed per prompt, the same for every rater.
    assert_eq!(
        ann["prompts"][2]["responses"][0]["predictionId"],
        bob["prompts"][2]["responses"][0]["predictionId"]
    );

    // ann rates the two answers of prompt 1 inside the comparison; the
    // pair rows carry her ratings of both (formats.md §4).
    let rate = "mutation($p: ID!, $a: AxesInput!, $c: ID, $r: String) { ratePrediction(predictionId: $p, axes: $a, comparisonId: $c, rater: $r) { id } }";
    let shown = &ann["prompts"][1]["responses"];
    for (pos, axes) in [
        (0, json!({"clarity": 4, "overall": 5})),
        (1, json!({"overall": 2})),
    ] {
        s.ok(
            &key,
            rate,
            json!({"p": shown[pos]["predictionId"], "a": axes, "c": id, "r": "ann"}),
        )
        .await;
    }
    // A comparison that is not there, or is another project's, is NOT_FOUND.
    let other = s.key("lab-other", Scope::Write).await;
    for (k, c) in [
        (&key, uuid::Uuid::new_v4().to_string()),
        (&other, id.clone()),
    ] {
        assert_eq!(
            s.code(
                Some(k),
                rate,
                json!({"p": shown[0]["predictionId"], "a": {"overall": 1}, "c": c, "r": "ann"})
            )
            .await,
            "NOT_FOUND"
        );
    }
    let trl = s
        .ok(
            &key,
            EXPORT,
            json!({"c": [id], "f": "TRL", "d": "lab-prefs.jsonl"}),
        )
        .await["exportPreferences"]
        .clone();
    assert_eq!(trl["rows"], 5, "{trl}");
    assert_eq!(trl["contradictionsDropped"], 2, "prompt 0 both ways");
    let lines: Vec<Value> = trl["jsonl"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(trl["jsonl"].as_str().unwrap().ends_with('\n'));
    let first = &lines[0];
    assert_eq!(first["metadata"]["comparison_id"], format!("{id}:1"));
    assert_eq!(first["prompt"][0]["content"], "say blue");
    assert_eq!(
        first["metadata"]["ratings"],
        json!({"chosen": {"clarity": 4, "overall": 5}, "rejected": {"overall": 2}})
    );
    let voted_at = first["metadata"]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(voted_at).is_ok(),
        "{voted_at}"
    );
    assert_eq!(
        lines[1]["metadata"]["ratings"],
        json!({"chosen": {}, "rejected": {}})
    );
    assert_eq!(
        first["chosen"][0]["content"], ann["prompts"][1]["responses"][0]["content"],
        "chosen is what ann preferred (position 0)"
    );
    assert_eq!(
        first["rejected"][0]["content"],
        ann["prompts"][1]["responses"][1]["content"]
    );
    assert_eq!(trl["dataset"]["kind"], "preference");
    assert_eq!(trl["dataset"]["examples"], 5);

    let dpo = s
        .ok(&key, EXPORT, json!({"c": [id], "f": "OPENAI_DPO"}))
        .await["exportPreferences"]
        .clone();
    let rows: Vec<Value> = dpo["jsonl"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let meta: Vec<Value> = dpo["metadataJsonl"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!((rows.len(), meta.len()), (5, 5));
    assert!(
        rows.iter()
            .all(|r| r.get("metadata").is_none() && r["input"]["messages"].is_array())
    );
    assert_eq!(meta[0]["comparison_id"], format!("{id}:1"));
    // Both files load with Hugging Face `datasets` and follow TRL's and
    // OpenAI's conventions (tests/trl/check_preferences.py).
    check_preferences("trl", trl["jsonl"].as_str().unwrap(), &["metadata"], 5);
    check_preferences("openai", dpo["jsonl"].as_str().unwrap(), &[], 5);

    // Per-vote formats: GROUPED (one record per vote with a preferred
    // answer) and KTO (each voted answer labelled); contradictions are a
    // pair-level notion, so these keep all 5 + 2 pairs' answers.
    let per_vote = |f: &'static str| {
        let s = &s;
        let key = key.clone();
        let id = id.clone();
        async move {
            let q = "mutation($c: [ID!]!, $f: PreferenceFormat!) { exportPreferences(comparisonIds: $c, format: $f) { rows jsonl } }";
            let d = s.ok(&key, q, json!({"c": [id], "f": f})).await["exportPreferences"].clone();
            let rows: Vec<Value> = d["jsonl"]
                .as_str()
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(d["rows"], rows.len());
            rows
        }
    };
    let grouped = per_vote("GROUPED").await;
    let rejected: usize = grouped
        .iter()
        .map(|g| g["rejected"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        rejected,
        5 + 2,
        "every pair's rejected answer, before contradictions"
    );
    for g in &grouped {
        assert_eq!(g["chosen"][0]["role"], "assistant");
        assert!(g["metadata"]["created_at"].is_string(), "{g}");
        assert_eq!(
            g["metadata"]["rejected_models"].as_array().unwrap().len(),
            g["rejected"].as_array().unwrap().len()
        );
    }
    let kto = per_vote("KTO").await;
    let labelled = |l: bool| kto.iter().filter(|r| r["label"] == l).count();
    assert_eq!((labelled(true), labelled(false)), (grouped.len(), rejected));
    assert_eq!(
        s.code(
            Some(&key),
            EXPORT,
            json!({"c": [id], "f": "KTO", "d": "kto.jsonl"})
        )
        .await,
        "INVALID_INPUT",
        "the built-in trainer has no KTO"
    );

    // A leak-free split: a compared prompt's rows all on one side, the side
    // the spec's bucket formula gives (computed here independently).
    let q = "mutation($c: [ID!]!) { exportPreferences(comparisonIds: $c, format: TRL, split: {seed: \"lab\", trainFraction: 0.5}) { rows testRows jsonl testJsonl } }";
    let sp = s.ok(&key, q, json!({"c": [id]})).await["exportPreferences"].clone();
    assert_eq!(
        sp["rows"].as_i64().unwrap() + sp["testRows"].as_i64().unwrap(),
        5
    );
    let side = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["metadata"]["comparison_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let (train_side, test_side) = (
        side(sp["jsonl"].as_str().unwrap()),
        side(sp["testJsonl"].as_str().unwrap()),
    );
    assert!(train_side.is_disjoint(&test_side));
    for (set, in_train) in [(&train_side, true), (&test_side, false)] {
        for c in set {
            let digest = <sha2::Sha256 as sha2::Digest>::digest(format!("lab:{c}").as_bytes());
            let bucket = u64::from_be_bytes(digest[..8].try_into().unwrap()) % 10_000;
            assert_eq!(bucket < 5_000, in_train, "{c}: bucket {bucket}");
        }
    }

    // Every lab answer is a prediction too.
    let preds = s
        .ok(
            &key,
            "query($m: ID) { predictions(filter: {modelId: $m}) { edges { node { source } } } }",
            json!({"m": a}),
        )
        .await;
    let edges = preds["predictions"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), WORDS.len());
    assert!(edges.iter().all(|e| e["node"]["source"] == "comparison"));

    // The loop closes: DPO from the lab's votes, starting from model A.
    train(&s, &key, &trl["dataset"], "dpo", a.as_str().unwrap(), 3).await;
    s.stop().await;
}

e2e!(comparison_lab_to_dpo);
