//! Read models: each module owns its tables (DDL per generation), folds events
//! into them, and answers the queries the API needs.

pub mod catalog;
pub mod metrics;

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

/// `($1,$2,…),($k+1,…)` for `rows` rows of `cols` placeholders.
pub(crate) fn values_placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
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
        assert_eq!(super::values_placeholders(2, 3), "($1,$2,$3),($4,$5,$6)");
    }
}
