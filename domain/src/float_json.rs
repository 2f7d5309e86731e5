//! JSON encoding of `f64` that keeps NaN and ±Infinity.
//!
//! JSON has no NaN or Infinity; serde_json would write `null` and lose the value.
//! Non-finite values are written as the strings `"NaN"`, `"Infinity"` and
//! `"-Infinity"` (the spelling MLflow and JavaScript use) and read back exactly.

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        s.serialize_str("NaN")
    } else if *v == f64::INFINITY {
        s.serialize_str("Infinity")
    } else if *v == f64::NEG_INFINITY {
        s.serialize_str("-Infinity")
    } else {
        s.serialize_f64(*v)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(F64Visitor)
}

/// What a float sent as a string may be, for error messages.
pub const SPELLINGS: &str = "a decimal number, \"NaN\", \"Infinity\" or \"-Infinity\" \
                             (or Python's str(): \"nan\", \"inf\", \"-inf\")";

/// Parses a float sent as a string, on every ingestion path: a decimal
/// number that fits a double, the JSON/JavaScript spellings `NaN`,
/// `Infinity`, `-Infinity` (`+Infinity`), and exactly the spellings Python's
/// `str(float)` writes (`nan`, `inf`, `-inf`). Nothing else: not `NAN`,
/// `infinity` or `iNf` (which Rust's own parser takes), and not a decimal
/// past the double range such as `1e999`, which would silently become ∞.
pub fn parse_special(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "+Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        // A finite result means `s` was a decimal; the special words all
        // parse to NaN or ±∞ and are refused here.
        _ => s.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

struct F64Visitor;

impl Visitor<'_> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SPELLINGS)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        parse_special(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// Wrapper for use inside tuples and collections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonF64(pub f64);

impl serde::Serialize for JsonF64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

impl<'de> serde::Deserialize<'de> for JsonF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(JsonF64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_round_trip() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
            -2.5e-300,
            1e308,
        ] {
            let s = serde_json::to_string(&JsonF64(v)).unwrap();
            let back: JsonF64 = serde_json::from_str(&s).unwrap();
            assert!(back.0 == v || (v.is_nan() && back.0.is_nan()), "{v} -> {s}");
            assert_eq!(back.0.to_bits(), v.to_bits(), "bits differ for {v}");
        }
        assert_eq!(
            serde_json::to_string(&JsonF64(f64::NAN)).unwrap(),
            "\"NaN\""
        );
        assert_eq!(
            serde_json::to_string(&JsonF64(f64::NEG_INFINITY)).unwrap(),
            "\"-Infinity\""
        );
    }

    #[test]
    fn rejects_other_strings() {
        assert!(serde_json::from_str::<JsonF64>("\"abc\"").is_err());
        for bad in [
            "NAN",
            "Nan",
            "infinity",
            "iNf",
            "+inf",
            "-INFINITY",
            "1e999",
            " 1",
            "",
        ] {
            assert_eq!(parse_special(bad).map(f64::to_bits), None, "{bad:?}");
        }
        assert!(parse_special("nan").is_some_and(f64::is_nan));
        assert_eq!(parse_special("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_special("+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_special("-2.5e-3"), Some(-0.0025));
        assert_eq!(serde_json::from_str::<JsonF64>("3").unwrap().0, 3.0);
    }
}
