use super::types::*;
use chrono::{DateTime, TimeZone, Utc};
use ftl_projections::views::judgments::JudgmentRow;
use serde_json::json;

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn j(
    pos: i64,
    p: u128,
    started: DateTime<Utc>,
    rater: &str,
    kind: &str,
    payload: serde_json::Value,
) -> JudgmentRow {
    JudgmentRow {
        position: pos,
        prediction_id: uuid::Uuid::from_u128(p),
        model_id: uuid::Uuid::nil(),
        started_at: started,
        rater: rater.into(),
        kind: kind.into(),
        payload,
        at: started,
    }
}

#[test]
fn trends_bucket_by_day_and_iso_week_worked_by_hand() {
    // 2026-11-29 is a Sunday, 11-30 a Monday.
    let (sun, mon) = (at(29, 10), at(30, 9));
    let times = vec![sun, sun, mon];
    let history = vec![
        j(
            1,
            1,
            sun,
            "ann",
            "evaluation",
            json!({"success": false, "tags": ["hallucination", "incomplete"]}),
        ),
        j(
            2,
            2,
            sun,
            "ann",
            "evaluation",
            json!({"success": true, "tags": []}),
        ),
        j(3, 1, sun, "ann", "rating", json!({"axes": {"overall": 2}})),
        j(4, 3, mon, "bob", "rating", json!({"axes": {"overall": 5}})),
        j(5, 3, mon, "ann", "rating", json!({"axes": {"overall": 4}})),
        j(6, 3, mon, "ann", "thumb", json!({"up": true})),
        j(
            7,
            1,
            sun,
            "bob",
            "evaluation",
            json!({"success": false, "tags": ["hallucination"]}),
        ),
    ];
    let days = trends(&times, &history, TrendBucket::Day);
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].start, at(29, 0));
    assert_eq!((days[0].predictions, days[0].judged), (2, 2));
    assert_eq!(days[0].evaluations, 3);
    assert_eq!(days[0].success_rate, Some(1.0 / 3.0));
    assert_eq!(
        days[0].failure_tags,
        vec![
            TagTally {
                tag: "hallucination".into(),
                count: 2
            },
            TagTally {
                tag: "incomplete".into(),
                count: 1
            }
        ]
    );
    assert_eq!((days[0].ratings, days[0].mean_overall), (1, Some(2.0)));
    assert_eq!(days[1].start, at(30, 0));
    assert_eq!(
        (days[1].predictions, days[1].thumbs_up, days[1].ratings),
        (1, 1, 2)
    );
    assert_eq!(days[1].mean_overall, Some(4.5));
    // Sunday belongs to the week of Monday 11-23; Monday starts a new one.
    let weeks = trends(&times, &history, TrendBucket::Week);
    assert_eq!(
        weeks.iter().map(|w| w.start).collect::<Vec<_>>(),
        vec![at(23, 0), at(30, 0)]
    );
    let all = trends(&times, &history, TrendBucket::All);
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].start, all[0].predictions, all[0].ratings),
        (sun, 3, 3)
    );
    assert_eq!(all[0].mean_overall, Some(11.0 / 3.0));
}
