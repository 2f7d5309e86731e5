//! Artifact path checks and `Range` parsing.

use super::path::{ArtifactPath, decode_once, parse_run_path};
use super::range::{RangeAsk, parse_range, resolve_range};
use crate::mlflow::wire::ErrorCode;

#[test]
fn run_paths_parse_and_unsafe_paths_are_refused() {
    let parse = |raw: &str| decode_once(raw).and_then(|d| parse_run_path(&d));
    assert_eq!(
        parse("1/abc/artifacts/checkpoint-500/model.safetensors").unwrap(),
        ArtifactPath {
            experiment_id: "1".into(),
            run_id: "abc".into(),
            rel: "checkpoint-500/model.safetensors".into()
        }
    );
    assert_eq!(parse("1/abc/artifacts").unwrap().rel, "");
    assert_eq!(parse("1/abc/artifacts/a%20b.txt").unwrap().rel, "a b.txt");
    for bad in [
        "1/abc/artifacts/../x",
        "1/abc/artifacts/a//b",
        "/1/abc/artifacts/x",
        "1/abc/artifacts/a\\b",
        "1/abc/artifacts/%2e%2e/x",
        "1/abc/artifacts/./x",
        "1/abc/artifacts/x%00",
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameterValue, "{bad}");
    }
    assert_eq!(
        parse("1/abc/other/x").unwrap_err().code,
        ErrorCode::ResourceDoesNotExist
    );
    // Decoded once only: %252e stays "%2e", a literal name.
    assert_eq!(parse("1/r/artifacts/%252e").unwrap().rel, "%2e");
}

#[test]
fn ranges() {
    use RangeAsk::*;
    assert_eq!(parse_range("bytes=0-9"), From(0, Some(9)));
    assert_eq!(parse_range("bytes=5-"), From(5, None));
    assert_eq!(parse_range("bytes=-3"), Last(3));
    assert_eq!(parse_range("bytes=0-1,4-5"), Whole);
    assert_eq!(parse_range("items=0-1"), Whole);
    for bad in ["bytes=9-1", "bytes=x-1", "bytes=-", "bytes=1", "bytes=+1-2"] {
        assert_eq!(parse_range(bad), Invalid, "{bad}");
    }
    // Resolved against a 10-byte object (RFC 9110 §14.1.2).
    assert_eq!(resolve_range(From(0, Some(9)), 10), Some(0..10));
    assert_eq!(resolve_range(From(8, Some(100)), 10), Some(8..10));
    assert_eq!(resolve_range(From(9, None), 10), Some(9..10));
    assert_eq!(resolve_range(Last(3), 10), Some(7..10));
    assert_eq!(resolve_range(Last(30), 10), Some(0..10));
    assert_eq!(resolve_range(From(10, None), 10), None);
    assert_eq!(resolve_range(From(10, Some(12)), 10), None);
    assert_eq!(resolve_range(Last(0), 10), None);
    assert_eq!(resolve_range(Last(1), 0), None);
    assert_eq!(resolve_range(Invalid, 10), None);
    assert_eq!(resolve_range(Whole, 0), Some(0..0));
}
