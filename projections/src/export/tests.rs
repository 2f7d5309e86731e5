use super::items::money;
use super::writer::csv_record;
use super::*;
use crate::views::judgments::JudgmentRow;
use crate::views::predictions::PredictionRow;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

#[test]
fn csv_follows_rfc_4180_and_the_spec() {
    let mut out = vec![];
    csv_record(
        &mut out,
        vec![
            json!("plain"),
            json!("a,\"b\"\nc"),
            Value::Null,
            json!(""),
            json!(["x"]),
            json!(true),
            json!(0.25),
        ]
        .into_iter(),
    );
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "plain,\"a,\"\"b\"\"\nc\",,\"\",\"[\"\"x\"\"]\",true,0.25\r\n"
    );
    // Read back by the csv crate: the same cells.
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(out.as_slice());
    let rec = r.records().next().unwrap().unwrap();
    assert_eq!(&rec[1], "a,\"b\"\nc");
    assert_eq!((&rec[2], &rec[3]), ("", ""));
}

#[test]
fn json_is_one_object_with_the_manifest_and_items() {
    let m = json!({"type": "conversations", "position": 7});
    let mut w = Writer::new(Kind::Conversations, Format::Json, m.clone());
    let mut out = w.page(&[json!({"a": 1, "gone": null})]);
    out.extend(w.page(&[]));
    out.extend(w.page(&[json!({"a": 2})]));
    out.extend(w.finish());
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v, json!({"export": m, "items": [{"a": 1}, {"a": 2}]}));
    let mut empty = Writer::new(Kind::Conversations, Format::Json, json!({}));
    let v: Value = serde_json::from_slice(&empty.finish()).unwrap();
    assert_eq!(v, json!({"export": {}, "items": []}));
}

#[test]
fn money_is_exact_decimal_text() {
    assert_eq!(money(0.004832), "0.004832");
    assert_eq!(money(0.000104), "0.000104");
    assert_eq!(money(3.0), "3");
    assert_eq!(money(0.0), "0");
    assert_eq!(money(1.5e-5), "0.000015");
}

fn row(messages: Value) -> PredictionRow {
    PredictionRow {
        prediction_id: Uuid::from_u128(1),
        model_id: Uuid::from_u128(2),
        model_name: "m".into(),
        messages,
        response: "answer".into(),
        finish_reason: "stop".into(),
        params: json!({}),
        latency_ms: 1.0,
        ttft_ms: None,
        prompt_tokens: 1,
        completion_tokens: 1,
        model_version: String::new(),
        usage_source: "tokenizer".into(),
        cost_usd: None,
        source: "graphql".into(),
        started_at: DateTime::<Utc>::UNIX_EPOCH,
        seq: 1,
    }
}

fn judged(position: i64, kind: &str, payload: Value) -> JudgmentRow {
    JudgmentRow {
        position,
        prediction_id: Uuid::from_u128(1),
        model_id: Uuid::from_u128(2),
        started_at: DateTime::<Utc>::UNIX_EPOCH,
        rater: "ann".into(),
        kind: kind.into(),
        payload,
        at: DateTime::<Utc>::UNIX_EPOCH,
    }
}

#[test]
fn bad_answers_are_weighted_zero_or_dropped() {
    let multi = row(
        json!([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                            {"role": "system", "content": "s"}, {"role": "user", "content": "q2"}]),
    );
    let down = [judged(1, "thumb", json!({"up": false}))];
    let r = sft_row(&multi, &down, false).unwrap();
    let m = r["messages"].as_array().unwrap();
    assert_eq!(m[0]["role"], "system", "system first");
    assert_eq!(m.last().unwrap()["content"], "answer");
    assert_eq!(m.last().unwrap()["weight"], 0);
    assert_eq!(m[2].get("weight"), None, "earlier answers keep theirs");
    assert_eq!(sft_row(&multi, &down, true), None);
    // The thumb changed its mind: up now, so nothing is weighted.
    let changed = [down[0].clone(), judged(2, "thumb", json!({"up": true}))];
    assert!(
        sft_row(&multi, &changed, true).unwrap()["messages"][4]
            .get("weight")
            .is_none()
    );
    // One turn whose only answer failed: nothing left to train on.
    let single = row(json!([{"role": "user", "content": "q"}]));
    let failed = [judged(
        1,
        "evaluation",
        json!({"success": false, "tags": []}),
    )];
    assert_eq!(sft_row(&single, &failed, false), None);
    assert!(sft_row(&single, &[], false).is_some());
}
