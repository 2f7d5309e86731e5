//! `MetricFloat`: a float that may be NaN or ±Infinity.

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};

/// A float that may also be `"NaN"`, `"Infinity"` or `"-Infinity"`. GraphQL's
/// `Float` cannot carry those, and training losses do diverge: we keep them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricFloat(pub f64);

#[Scalar(name = "MetricFloat")]
impl ScalarType for MetricFloat {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_f64()
                .map(MetricFloat)
                .ok_or_else(|| InputValueError::custom("not a float")),
            Value::String(s) => ftl_domain::float_json::parse_special(s)
                .map(MetricFloat)
                .ok_or_else(|| {
                    InputValueError::custom(format!(
                        "{s:?} is not {}",
                        ftl_domain::float_json::SPELLINGS
                    ))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        let v = self.0;
        if v.is_nan() {
            Value::String("NaN".into())
        } else if v == f64::INFINITY {
            Value::String("Infinity".into())
        } else if v == f64::NEG_INFINITY {
            Value::String("-Infinity".into())
        } else {
            Number::from_f64(v)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
    }
}
