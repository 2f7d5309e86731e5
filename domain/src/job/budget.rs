//! Budget rules of `specs/training-config.md` §5, as pure functions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Checkpoint save estimate before any save was observed.
pub const DEFAULT_SAVE_EST_S: f64 = 120.0;
/// Weight of the newest save duration in the estimate.
pub const SAVE_EST_LAMBDA: f64 = 0.3;
/// Time to release resources, for the hard backstop.
pub const RELEASE_S: f64 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    #[default]
    Pause,
    Stop,
    Notify,
}

/// `budget.*` of a normalized job config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub max_cost_usd: Option<f64>,
    pub max_runtime_minutes: Option<u64>,
    pub alert_thresholds_percent: Vec<u32>,
    pub on_exceed: OnExceed,
    pub stop_margin_s: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_cost_usd: None,
            max_runtime_minutes: None,
            alert_thresholds_percent: vec![50, 80, 100],
            on_exceed: OnExceed::Pause,
            stop_margin_s: 60.0,
        }
    }
}

impl Budget {
    /// Reads `budget` from a normalized config (defaults where absent).
    pub fn from_config(config: &Value) -> Self {
        let b = config.get("budget");
        let get = |k: &str| b.and_then(|b| b.get(k));
        let d = Self::default();
        Self {
            max_cost_usd: get("max_cost_usd").and_then(Value::as_f64),
            max_runtime_minutes: get("max_runtime_minutes").and_then(Value::as_u64),
            alert_thresholds_percent: get("alert_thresholds_percent")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_u64)
                        .map(|p| p as u32)
                        .collect()
                })
                .unwrap_or(d.alert_thresholds_percent),
            on_exceed: get("on_exceed")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            stop_margin_s: get("stop_margin_s")
                .and_then(Value::as_f64)
                .unwrap_or(d.stop_margin_s),
        }
    }
}

/// The save estimate after observing a save of `seconds`: an EWMA (λ 0.3)
/// of the observed durations, the first observation taking the default's place.
pub fn next_save_estimate(previous: Option<f64>, seconds: f64) -> f64 {
    match previous {
        None => seconds,
        Some(p) => SAVE_EST_LAMBDA * seconds + (1.0 - SAVE_EST_LAMBDA) * p,
    }
}

/// Predictive stop: pause now when the spend, plus a checkpoint save and the
/// margin at the current rate, would reach the cap.
pub fn predictive_stop(
    spent: f64,
    rate_per_hour: f64,
    save_est_s: f64,
    margin_s: f64,
    cap: f64,
) -> bool {
    spent + rate_per_hour * (save_est_s + margin_s) / 3600.0 >= cap
}

/// The runtime cap, by the same rule on elapsed seconds.
pub fn runtime_stop(elapsed_s: f64, save_est_s: f64, margin_s: f64, cap_minutes: u64) -> bool {
    elapsed_s + save_est_s + margin_s >= cap_minutes as f64 * 60.0
}

/// Hard backstop while pausing: releasing now is all the cap still allows.
pub fn backstop(spent: f64, rate_per_hour: f64, cap: f64) -> bool {
    spent + rate_per_hour * RELEASE_S / 3600.0 >= cap
}

/// Thresholds (percent of the cap) newly reached by `spent`, ascending.
pub fn thresholds_crossed(spent: f64, cap: f64, thresholds: &[u32], already: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = thresholds
        .iter()
        .copied()
        .filter(|p| !already.contains(p) && spent >= cap * f64::from(*p) / 100.0)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_worked_example() {
        // §5: rate 2.49 $/h, cap 10 $, save_est 120 s, margin 60 s.
        // 9.80 + 2.49·180/3600 = 9.9245 < 10 → continue.
        assert!(!predictive_stop(9.80, 2.49, 120.0, 60.0, 10.0));
        // 9.88 + 0.1245 = 10.0045 ≥ 10 → pause now.
        assert!(predictive_stop(9.88, 2.49, 120.0, 60.0, 10.0));
    }

    #[test]
    fn save_estimate_is_an_ewma_after_the_first_save() {
        assert_eq!(next_save_estimate(None, 10.0), 10.0);
        // 0.3·20 + 0.7·10 = 13
        assert!((next_save_estimate(Some(10.0), 20.0) - 13.0).abs() < 1e-12);
    }

    #[test]
    fn thresholds_fire_once_each() {
        assert_eq!(
            thresholds_crossed(4.0, 10.0, &[50, 80, 100], &[]),
            Vec::<u32>::new()
        );
        assert_eq!(
            thresholds_crossed(8.5, 10.0, &[50, 80, 100], &[]),
            vec![50, 80]
        );
        assert_eq!(
            thresholds_crossed(8.5, 10.0, &[50, 80, 100], &[50]),
            vec![80]
        );
        assert_eq!(thresholds_crossed(10.0, 10.0, &[100], &[]), vec![100]);
    }

    #[test]
    fn backstop_and_runtime_cap() {
        // 30 s at 3.6 $/h is 0.03 $.
        assert!(!backstop(0.96, 3.6, 1.0));
        assert!(backstop(0.97, 3.6, 1.0));
        assert!(!runtime_stop(100.0, 120.0, 60.0, 5));
        assert!(runtime_stop(120.0, 120.0, 60.0, 5));
    }

    #[test]
    fn budget_reads_a_normalized_config() {
        let b = Budget::from_config(&serde_json::json!({"budget": {
            "max_cost_usd": 2.5, "max_runtime_minutes": null, "alert_thresholds_percent": [25, 100],
            "on_exceed": "stop", "stop_margin_s": 5}}));
        assert_eq!(b.max_cost_usd, Some(2.5));
        assert_eq!(b.on_exceed, OnExceed::Stop);
        assert_eq!(b.alert_thresholds_percent, vec![25, 100]);
        assert_eq!(b.stop_margin_s, 5.0);
    }
}
