//! MLflow's wire conventions (`specs/mlflow-api.md` §2–§5): error bodies and
//! codes, GET messages as query parameters, int64 and double encodings, and
//! the key and id validation rules of `mlflow/utils/validation.py`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// MLflow's `error_code` values and their HTTP statuses (`mlflow/exceptions.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameterValue,
    BadRequest,
    ResourceAlreadyExists,
    Unauthenticated,
    PermissionDenied,
    ResourceDoesNotExist,
    EndpointNotFound,
    RequestLimitExceeded,
    InternalError,
    NotImplemented,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            Self::BadRequest => "BAD_REQUEST",
            Self::ResourceAlreadyExists => "RESOURCE_ALREADY_EXISTS",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceDoesNotExist => "RESOURCE_DOES_NOT_EXIST",
            Self::EndpointNotFound => "ENDPOINT_NOT_FOUND",
            Self::RequestLimitExceeded => "REQUEST_LIMIT_EXCEEDED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::NotImplemented => "NOT_IMPLEMENTED",
            Self::TemporarilyUnavailable => "TEMPORARILY_UNAVAILABLE",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidParameterValue | Self::BadRequest | Self::ResourceAlreadyExists => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::ResourceDoesNotExist | Self::EndpointNotFound => StatusCode::NOT_FOUND,
            Self::RequestLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error as MLflow clients expect it: `{"error_code": …, "message": …}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct MlflowError {
    pub code: ErrorCode,
    pub message: String,
}

impl MlflowError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameterValue, message)
    }
}

impl ResponseError for MlflowError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({
            "error_code": self.code.as_str(),
            "message": self.message,
        }))
    }
}

/// A GET request's message from its query string (the client sends its JSON
/// body as query parameters). Keys named in `repeated` become arrays; other
/// keys keep their last value. Values stay strings: the typed readers below
/// accept int64 and double fields as strings.
pub fn query_message(query: &str, repeated: &[&str]) -> Value {
    let mut out = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let v = Value::String(v.into_owned());
        if repeated.contains(&k.as_ref()) {
            match out
                .entry(k.into_owned())
                .or_insert_with(|| Value::Array(vec![]))
            {
                Value::Array(a) => a.push(v),
                other => *other = Value::Array(vec![v]),
            }
        } else {
            out.insert(k.into_owned(), v);
        }
    }
    Value::Object(out)
}

/// A number field that may also come as a string: the value, `null`, or
/// what the number or the string was. Read with a visitor, straight from the
/// parser (a `#[serde(untagged)]` enum would buffer every field first; a
/// 1,000-point batch has 3,000 of them).
enum Scalar<'a> {
    Null,
    Int(i128),
    Float(f64),
    Str(std::borrow::Cow<'a, str>),
}

struct ScalarVisitor;

impl<'de> serde::de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number or a string")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(v.to_string().into()))
    }
}

/// An int64 field: a JSON number or a decimal string (older clients).
pub fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match d.deserialize_any(ScalarVisitor)? {
        Scalar::Null => Ok(None),
        Scalar::Int(n) => i64::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected an int64, got {n}"))),
        Scalar::Float(f) => Err(D::Error::custom(format!("expected an int64, got {f}"))),
        Scalar::Str(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected an int64, got {s:?}"))),
    }
}

/// An id field sent as a string, or as a JSON number by old clients.
pub fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match d.deserialize_any(ScalarVisitor)? {
        Scalar::Null => Ok(None),
        Scalar::Int(n) => Ok(Some(n.to_string())),
        Scalar::Float(f) => Err(serde::de::Error::custom(format!("expected an id, got {f}"))),
        Scalar::Str(s) => Ok(Some(s.into_owned())),
    }
}

/// `{key, value}` as MLflow sends params and tags (a missing value is "").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyValueMsg {
    pub key: Option<String>,
    pub value: Option<String>,
}

/// A double field: a JSON number, or a string as
/// `ftl_domain::float_json::parse_special` reads it (proto3 JSON's `"NaN"`,
/// `"Infinity"`, `"-Infinity"`, a decimal, Python's `"nan"`/`"inf"`).
pub fn double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match d.deserialize_any(ScalarVisitor)? {
        Scalar::Null => Ok(None),
        Scalar::Int(n) => Ok(Some(n as f64)),
        Scalar::Float(f) => Ok(Some(f)),
        // Surrounding blanks are allowed, as Python's float() allows them.
        Scalar::Str(s) => ftl_domain::float_json::parse_special(s.trim())
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected {}, got {s:?}",
                    ftl_domain::float_json::SPELLINGS
                ))
            }),
    }
}

/// A double for a response: a number, or the proto3 JSON string when not finite.
pub struct Double(pub f64);

impl serde::Serialize for Double {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if v == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(v)
        }
    }
}

/// `run_id`, else the legacy `run_uuid`.
pub fn run_id(run_id: Option<&str>, run_uuid: Option<&str>) -> Result<String, MlflowError> {
    let id = run_id
        .filter(|s| !s.is_empty())
        .or(run_uuid.filter(|s| !s.is_empty()))
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'run_id'."))?;
    validate_id(id, "run_id", 256)?;
    Ok(id.to_string())
}

/// `^[a-zA-Z0-9][\w\-]{0,max-1}$` (run ids: 256, experiment ids: 64).
pub fn validate_id(id: &str, what: &str, max: usize) -> Result<(), MlflowError> {
    let mut chars = id.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().count() <= max
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(MlflowError::invalid(format!(
            "Invalid value \"{id}\" for parameter '{what}' supplied"
        )))
    }
}

pub const MAX_KEY_LENGTH: usize = 250;

/// A metric, param or tag key: at most 250 characters of `[/\w.\- :]`, equal
/// to its own POSIX normalisation, not `.`, not starting with `..` or `/`.
pub fn validate_key(kind: &str, key: &str) -> Result<(), MlflowError> {
    let chars_ok = key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '/' | '.' | '-' | ' ' | ':'));
    if !chars_ok || posix_normpath(key) != key || key == "." || key.starts_with("..") {
        return Err(MlflowError::invalid(format!(
            "Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), \
             dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    if key.starts_with('/') {
        return Err(MlflowError::invalid(format!(
            "Invalid {kind} name: '{key}'. Names cannot start with a '/'."
        )));
    }
    if key.chars().count() > MAX_KEY_LENGTH {
        return Err(MlflowError::invalid(format!(
            "'{key}' exceeds the maximum length of {MAX_KEY_LENGTH} characters"
        )));
    }
    Ok(())
}

/// Python's `posixpath.normpath`.
fn posix_normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial == 0 && parts.is_empty()) || parts.last() == Some(&"..") {
            parts.push(comp);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let joined = format!("{}{}", "/".repeat(initial), parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_mlflow_http_statuses() {
        assert_eq!(ErrorCode::ResourceAlreadyExists.status(), 400);
        assert_eq!(ErrorCode::ResourceDoesNotExist.status(), 404);
        assert_eq!(ErrorCode::RequestLimitExceeded.status(), 429);
        assert_eq!(ErrorCode::NotImplemented.status(), 501);
        assert_eq!(ErrorCode::TemporarilyUnavailable.status(), 503);
    }

    #[test]
    fn get_messages_come_from_query_parameters() {
        let m = query_message(
            "run_ids=a&run_ids=b&metric_key=train%2Floss&max_results=25000",
            &["run_ids"],
        );
        assert_eq!(
            m,
            serde_json::json!({ "run_ids": ["a", "b"], "metric_key": "train/loss", "max_results": "25000" })
        );
    }

    #[derive(Deserialize)]
    struct Point {
        #[serde(default, deserialize_with = "int64")]
        step: Option<i64>,
        #[serde(default, deserialize_with = "double")]
        value: Option<f64>,
    }

    #[test]
    fn int64_and_double_accept_both_encodings() {
        // specs/mlflow-api.md §8: numbers, decimal strings, proto3 non-finite strings.
        let p: Point = serde_json::from_str(r#"{"step": "4", "value": "NaN"}"#).unwrap();
        assert_eq!(p.step, Some(4));
        assert!(p.value.unwrap().is_nan());
        let p: Point = serde_json::from_str(r#"{"step": 3, "value": 0.8123}"#).unwrap();
        assert_eq!((p.step, p.value), (Some(3), Some(0.8123)));
        let p: Point = serde_json::from_str(r#"{"value": "-Infinity"}"#).unwrap();
        assert_eq!((p.step, p.value), (None, Some(f64::NEG_INFINITY)));
        assert!(serde_json::from_str::<Point>(r#"{"step": "four"}"#).is_err());
        // Explicit nulls are absent values; an int64 takes no fraction and
        // no number beyond its range; a double takes integers.
        let p: Point = serde_json::from_str(r#"{"step": null, "value": null}"#).unwrap();
        assert_eq!((p.step, p.value), (None, None));
        assert!(serde_json::from_str::<Point>(r#"{"step": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Point>(r#"{"step": 9223372036854775808}"#).is_err());
        let p: Point =
            serde_json::from_str(r#"{"step": -9223372036854775808, "value": 7}"#).unwrap();
        assert_eq!((p.step, p.value), (Some(i64::MIN), Some(7.0)));
        // Query parameters arrive as strings inside a `Value`.
        let p: Point =
            serde_json::from_value(serde_json::json!({"step": " 12 ", "value": "Infinity"}))
                .unwrap();
        assert_eq!((p.step, p.value), (Some(12), Some(f64::INFINITY)));
        assert_eq!(serde_json::json!(Double(f64::INFINITY)), "Infinity");
        assert_eq!(serde_json::json!(Double(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(serde_json::json!(Double(f64::NAN)), "NaN");
        assert_eq!(serde_json::json!(Double(0.5)), 0.5);
    }

    #[test]
    fn run_id_falls_back_to_run_uuid() {
        assert_eq!(run_id(None, Some("5f1c")).unwrap(), "5f1c");
        assert_eq!(run_id(Some("abc"), Some("5f1c")).unwrap(), "abc");
        assert_eq!(
            run_id(None, None).unwrap_err().code,
            ErrorCode::InvalidParameterValue
        );
        assert!(run_id(Some("-bad"), None).is_err());
    }

    #[test]
    fn keys_follow_mlflow_validation() {
        for ok in [
            "loss",
            "train/loss",
            "system/gpu_0_utilization_percentage",
            "eval loss:1",
            "a.b-c",
        ] {
            assert!(validate_key("metric", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a//b", "./x", "x/", ".", "../x", "/abs", "a\\b", "a$b"] {
            assert!(validate_key("metric", bad).is_err(), "{bad:?}");
        }
        assert!(validate_key("param", &"k".repeat(250)).is_ok());
        assert!(validate_key("param", &"k".repeat(251)).is_err());
    }

    #[test]
    fn normpath_matches_python() {
        // Values from Python's posixpath.normpath.
        for (input, want) in [
            ("a//b", "a/b"),
            ("./x", "x"),
            ("x/", "x"),
            ("a/../b", "b"),
            ("../x", "../x"),
            ("/../x", "/x"),
            ("//a", "//a"),
            ("///a", "/a"),
            ("", "."),
        ] {
            assert_eq!(posix_normpath(input), want, "{input}");
        }
    }
}
