//! Read models: each module owns its tables (DDL per generation), folds events
//! into them, and answers the queries the API needs.

pub mod catalog;
pub mod comparisons;
pub mod evaluation;
pub mod judgments;
pub mod metrics;
pub mod predictions;
pub mod tracking;
pub mod training;

/// Column types that differ between the backends.
pub(crate) struct Types {
    pub uuid: &'static str,
    pub ts: &'static str,
    pub float: &'static str,
}

pub(crate) fn types(postgres: bool) -> Types {
    if postgres {
        Types {
            uuid: "UUID",
            ts: "TIMESTAMPTZ",
            float: "DOUBLE PRECISION",
        }
    } else {
        Types {
            uuid: "BLOB",
            ts: "TEXT",
            float: "REAL",
        }
    }
}

/// `(?,?,…),(?,…)`: `rows` rows of `cols` positional placeholders, for
/// SQLite multi-row statements. Positional, not `$n`: sqlx resolves each `$n`
/// by name, a linear search per parameter, quadratic in a 30,000-parameter
/// statement (it was 84% of a rebuild's time).
pub(crate) fn sqlite_values(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(","));
    vec![row; rows].join(",")
}

/// NaN is stored as SQL NULL on both backends (SQLite cannot store NaN).
pub(crate) fn to_sql_f64(v: f64) -> Option<f64> {
    if v.is_nan() { None } else { Some(v) }
}

pub(crate) fn from_sql_f64(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(super::sqlite_values(2, 3), "(?,?,?),(?,?,?)");
    }
}
