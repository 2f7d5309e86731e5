//! Per-field checks: types, ranges and enums of given values, and unknown keys.

use super::fields::{BIG, FIELDS, Kind, OPEN_OBJECTS, OPTIONAL_OBJECTS};
use super::types::{Issue, Severity};
use serde_json::{Map, Value, json};

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn fmt_bound(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A bound as JSON: whole numbers as integers (`0`, not `0.0`).
fn bound_json(x: f64) -> Value {
    if x == x.trunc() && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// Check one present value against its kind.
pub(super) fn check_value(path: &str, kind: Kind, value: &Value, issues: &mut Vec<Issue>) {
    let invalid_type = |expected: &str| {
        let mut i = Issue::new(
            Severity::Error,
            path,
            "invalid_type",
            format!("{path} must be {expected} (got {})", type_name(value)),
        );
        i.value = Some(value.clone());
        i
    };
    let name = path.rsplit('.').next().unwrap_or(path);
    match kind {
        Kind::Any => {}
        Kind::Str if !value.is_string() => issues.push(invalid_type("a string")),
        Kind::Bool if !value.is_boolean() => issues.push(invalid_type("a boolean")),
        Kind::Str | Kind::Bool => {}
        Kind::Int(min, max) => {
            // Integers past i64 (u64, or integral floats such as 1e20) are
            // out of range, not saturated into it.
            let n: Option<i128> = value
                .as_i64()
                .map(i128::from)
                .or_else(|| value.as_u64().map(i128::from))
                .or_else(|| {
                    value
                        .as_f64()
                        .filter(|f| f.is_finite() && f.fract() == 0.0)
                        .map(|f| f as i128)
                });
            match n {
                None => issues.push(invalid_type("an integer")),
                Some(n) if n < i128::from(min) || n > i128::from(max) => {
                    let message = if max == BIG {
                        format!("{name} must be >= {min} and fit a 64-bit integer (got {n})")
                    } else {
                        format!("{name} must be >= {min} and <= {max} (got {n})")
                    };
                    let mut i = Issue::new(Severity::Error, path, "out_of_range", message);
                    i.value = Some(value.clone());
                    i.constraint = Some(json!({"minimum": min, "maximum": max}));
                    issues.push(i);
                }
                Some(_) => {}
            }
        }
        Kind::Num(min, min_excl, max, max_excl) => match value.as_f64() {
            None => issues.push(invalid_type("a number")),
            Some(x) => {
                let low = if min_excl { x <= min } else { x < min };
                let high = if max_excl { x >= max } else { x > max };
                if low || high {
                    let lo = format!("{} {}", if min_excl { ">" } else { ">=" }, fmt_bound(min));
                    let bounded = max < f64::MAX;
                    let message = if bounded {
                        let hi =
                            format!("{} {}", if max_excl { "<" } else { "<=" }, fmt_bound(max));
                        format!("{name} must be {lo} and {hi} (got {value})")
                    } else {
                        format!("{name} must be {lo} (got {value})")
                    };
                    let mut constraint = Map::new();
                    constraint.insert(
                        (if min_excl {
                            "exclusive_minimum"
                        } else {
                            "minimum"
                        })
                        .into(),
                        bound_json(min),
                    );
                    if bounded {
                        constraint.insert(
                            (if max_excl {
                                "exclusive_maximum"
                            } else {
                                "maximum"
                            })
                            .into(),
                            bound_json(max),
                        );
                    }
                    let mut i = Issue::new(Severity::Error, path, "out_of_range", message);
                    i.value = Some(value.clone());
                    i.constraint = Some(Value::Object(constraint));
                    issues.push(i);
                }
            }
        },
        Kind::Enum(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => {}
            Some(s) => {
                let mut i = Issue::new(
                    Severity::Error,
                    path,
                    "invalid_enum",
                    format!("{name} must be one of {} (got {s:?})", allowed.join(", ")),
                );
                i.value = Some(value.clone());
                i.constraint = Some(json!({"enum": allowed}));
                issues.push(i);
            }
            None => issues.push(invalid_type("a string")),
        },
        Kind::StrList => match value.as_array() {
            Some(items) => {
                for (n, item) in items.iter().enumerate() {
                    check_value(&format!("{path}[{n}]"), Kind::Str, item, issues);
                }
            }
            None => issues.push(invalid_type("a list of strings")),
        },
        Kind::IntList(min, max) => match value.as_array() {
            Some(items) => {
                for (n, item) in items.iter().enumerate() {
                    check_value(&format!("{path}[{n}]"), Kind::Int(min, max), item, issues);
                }
            }
            None => issues.push(invalid_type("a list of integers")),
        },
    }
}

/// Report keys that are not fields (or parents of fields).
pub(super) fn check_unknown(node: &Value, prefix: &str, issues: &mut Vec<Issue>) {
    let Value::Object(map) = node else { return };
    if OPEN_OBJECTS.contains(&prefix) {
        return;
    }
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let is_field = FIELDS.iter().any(|f| f.0 == path);
        let is_parent = FIELDS.iter().any(|f| f.0.starts_with(&format!("{path}.")));
        if is_field {
            continue;
        }
        if is_parent {
            if value.is_object() {
                check_unknown(value, &path, issues);
            } else if !(value.is_null() && OPTIONAL_OBJECTS.contains(&path.as_str())) {
                let mut i = Issue::new(
                    Severity::Error,
                    &path,
                    "invalid_type",
                    format!("{path} must be an object (got {})", type_name(value)),
                );
                i.value = Some(value.clone());
                issues.push(i);
            }
        } else {
            issues.push(Issue::new(
                Severity::Error,
                &path,
                "unknown_field",
                format!("{path} is not a config field"),
            ));
        }
    }
}
