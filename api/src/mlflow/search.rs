//! MLflow's search grammar, the subset people use (`specs/mlflow-api.md` §4):
//! `metrics.acc > 0.5 AND params.lr = '0.001' AND tags.\`my key\` LIKE 'a%'`,
//! and `order_by` terms such as `metrics.loss DESC`.

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    ILike,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub op: Op,
    pub value: Lit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}

fn entity(prefix: &str) -> Option<Entity> {
    Some(match prefix.to_ascii_lowercase().as_str() {
        "metric" | "metrics" => Entity::Metric,
        "param" | "params" | "parameter" | "parameters" => Entity::Param,
        "tag" | "tags" => Entity::Tag,
        "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(Entity, String),
    Op(Op),
    And,
    Str(String),
    Num(f64),
}

fn quoted(chars: &[char], i: &mut usize, close: char) -> Result<String, String> {
    let mut out = String::new();
    *i += 1;
    while *i < chars.len() {
        let c = chars[*i];
        *i += 1;
        if c == close {
            // SQL-style doubled quote inside a string literal.
            if chars.get(*i) == Some(&close) && close == '\'' {
                out.push(close);
                *i += 1;
                continue;
            }
            return Ok(out);
        }
        out.push(c);
    }
    Err(format!("unterminated {close} quote"))
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let word_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':');
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || (c == '"' && !matches!(out.last(), Some(Tok::Ident(..)) | None)) {
            out.push(Tok::Str(quoted(&chars, &mut i, c)?));
        } else if matches!(c, '=' | '!' | '<' | '>') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let (op, n) = match two.as_str() {
                "!=" => (Op::Ne, 2),
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                "==" => (Op::Eq, 2),
                _ => match c {
                    '=' => (Op::Eq, 1),
                    '<' => (Op::Lt, 1),
                    '>' => (Op::Gt, 1),
                    _ => return Err(format!("unexpected '{c}'")),
                },
            };
            out.push(Tok::Op(op));
            i += n;
        } else if c.is_ascii_digit() || ((c == '-' || c == '.') && i + 1 < chars.len()) {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '+' | '-'))
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n: f64 = text
                .parse()
                .map_err(|_| format!("expected a number, got {text}"))?;
            out.push(Tok::Num(n));
        } else if word_char(c) || c == '`' || c == '"' {
            // An identifier: `prefix.key`, the key bare, `backticked` or "quoted".
            let start = i;
            while i < chars.len() && word_char(chars[i]) && chars[i] != '.' {
                i += 1;
            }
            let head: String = chars[start..i].iter().collect();
            if i < chars.len() && chars[i] == '.' {
                i += 1;
                let key = match chars.get(i) {
                    Some('`') => quoted(&chars, &mut i, '`')?,
                    Some('"') => quoted(&chars, &mut i, '"')?,
                    _ => {
                        let k = i;
                        while i < chars.len() && word_char(chars[i]) {
                            i += 1;
                        }
                        chars[k..i].iter().collect()
                    }
                };
                let e = entity(&head).ok_or_else(|| format!("invalid entity type '{head}'"))?;
                if key.is_empty() {
                    return Err(format!("missing key after '{head}.'"));
                }
                out.push(Tok::Ident(e, key));
            } else {
                match head.to_ascii_uppercase().as_str() {
                    "AND" => out.push(Tok::And),
                    "LIKE" => out.push(Tok::Op(Op::Like)),
                    "ILIKE" => out.push(Tok::Op(Op::ILike)),
                    "" => return Err(format!("unexpected '{c}'")),
                    _ => out.push(Tok::Ident(Entity::Attribute, head)),
                }
            }
        } else {
            return Err(format!("unexpected '{c}'"));
        }
    }
    Ok(out)
}

/// Parses a filter into clauses joined by `AND`. Empty → no clauses.
pub fn parse_filter(filter: &str) -> Result<Vec<Clause>, String> {
    let toks = tokens(filter)?;
    let mut out = Vec::new();
    let mut it = toks.into_iter().peekable();
    while it.peek().is_some() {
        let (entity, key) = match it.next() {
            Some(Tok::Ident(e, k)) => (e, k),
            other => return Err(format!("expected an identifier, got {other:?}")),
        };
        let op = match it.next() {
            Some(Tok::Op(op)) => op,
            other => return Err(format!("expected a comparison after {key}, got {other:?}")),
        };
        let value = match it.next() {
            Some(Tok::Str(s)) => Lit::Str(s),
            Some(Tok::Num(n)) => Lit::Num(n),
            other => return Err(format!("expected a value after {key}, got {other:?}")),
        };
        let numeric = entity == Entity::Metric
            || (entity == Entity::Attribute
                && matches!(
                    key.as_str(),
                    "start_time" | "end_time" | "creation_time" | "last_update_time"
                ));
        match (&value, numeric, op) {
            (Lit::Num(_), true, Op::Like | Op::ILike) => {
                return Err(format!("LIKE is not supported for numeric field {key}"));
            }
            (Lit::Str(_), true, _) => {
                return Err(format!("expected a numeric value for {key}"));
            }
            (Lit::Num(_), false, _) => {
                return Err(format!("expected a quoted string value for {key}"));
            }
            (Lit::Str(_), false, Op::Lt | Op::Le | Op::Gt | Op::Ge) => {
                return Err(format!(
                    "only '=', '!=', 'LIKE' and 'ILIKE' compare string field {key}"
                ));
            }
            _ => {}
        }
        out.push(Clause {
            entity,
            key,
            op,
            value,
        });
        match it.next() {
            None => break,
            Some(Tok::And) if it.peek().is_some() => {}
            other => return Err(format!("expected AND, got {other:?}")),
        }
    }
    Ok(out)
}

/// Parses one `order_by` term: `metrics.loss DESC`, `attributes.start_time`.
pub fn parse_order_by(term: &str) -> Result<OrderBy, String> {
    let t = term.trim();
    let (field, ascending) = match t.rsplit_once(char::is_whitespace) {
        Some((f, dir)) if dir.eq_ignore_ascii_case("asc") => (f.trim(), true),
        Some((f, dir)) if dir.eq_ignore_ascii_case("desc") => (f.trim(), false),
        _ => (t, true),
    };
    match tokens(field)?.as_slice() {
        [Tok::Ident(entity, key)] => Ok(OrderBy {
            entity: *entity,
            key: key.clone(),
            ascending,
        }),
        _ => Err(format!("invalid order_by clause '{term}'")),
    }
}

/// SQL `LIKE`: `%` any run of characters, `_` exactly one.
pub fn like(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let fold = |s: &str| {
        if case_insensitive {
            s.to_lowercase().chars().collect::<Vec<_>>()
        } else {
            s.chars().collect()
        }
    };
    let (p, t) = (fold(pattern), fold(text));
    // Iterative wildcard matching with backtracking to the last `%`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// Applies a string comparison.
pub fn compare_str(op: Op, actual: &str, expected: &str) -> bool {
    match op {
        Op::Eq => actual == expected,
        Op::Ne => actual != expected,
        Op::Like => like(expected, actual, false),
        Op::ILike => like(expected, actual, true),
        _ => false,
    }
}

/// Applies a numeric comparison (NaN compares false, as in SQL).
pub fn compare_num(op: Op, actual: f64, expected: f64) -> bool {
    match (op, actual.partial_cmp(&expected)) {
        (_, None) => op == Op::Ne,
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(entity: Entity, key: &str, op: Op, value: Lit) -> Clause {
        Clause {
            entity,
            key: key.into(),
            op,
            value,
        }
    }

    #[test]
    fn parses_the_subset_people_use() {
        let got = parse_filter(
            "metrics.acc > 0.5 and params.lr = '0.001' AND tags.`my key` LIKE 'a%' AND attributes.status != \"FAILED\"",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                clause(Entity::Metric, "acc", Op::Gt, Lit::Num(0.5)),
                clause(Entity::Param, "lr", Op::Eq, Lit::Str("0.001".into())),
                clause(Entity::Tag, "my key", Op::Like, Lit::Str("a%".into())),
                clause(
                    Entity::Attribute,
                    "status",
                    Op::Ne,
                    Lit::Str("FAILED".into())
                ),
            ]
        );
        assert_eq!(
            parse_filter("metrics.\"train/loss\" <= -1e-3").unwrap(),
            vec![clause(
                Entity::Metric,
                "train/loss",
                Op::Le,
                Lit::Num(-1e-3)
            )]
        );
        assert_eq!(
            parse_filter("name = 'it''s'").unwrap(),
            vec![clause(
                Entity::Attribute,
                "name",
                Op::Eq,
                Lit::Str("it's".into())
            )]
        );
        assert_eq!(parse_filter("  ").unwrap(), vec![]);
    }

    #[test]
    fn rejects_what_mlflow_rejects() {
        for bad in [
            "metrics.acc > 'x'",
            "params.lr > '1'",
            "params.lr = 1",
            "foo.bar = 'x'",
            "metrics.acc >",
            "metrics.acc > 1 AND",
            "metrics.acc > 1 OR metrics.b < 2",
            "params.lr = 'unterminated",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_by_terms() {
        assert_eq!(
            parse_order_by("metrics.loss DESC").unwrap(),
            OrderBy {
                entity: Entity::Metric,
                key: "loss".into(),
                ascending: false
            }
        );
        assert_eq!(
            parse_order_by("attributes.start_time").unwrap(),
            OrderBy {
                entity: Entity::Attribute,
                key: "start_time".into(),
                ascending: true
            }
        );
        assert!(parse_order_by("metrics.a metrics.b").is_err());
    }

    #[test]
    fn like_matches_sql() {
        assert!(like("a%", "abc", false));
        assert!(like("%b%", "abc", false));
        assert!(like("a_c", "abc", false));
        assert!(!like("a_c", "abbc", false));
        assert!(like("%c", "abcabc", false));
        assert!(!like("A%", "abc", false));
        assert!(like("A%", "abc", true));
        assert!(like("%", "", false));
    }

    #[test]
    fn numeric_comparisons_treat_nan_like_sql() {
        assert!(compare_num(Op::Gt, 0.6, 0.5));
        assert!(!compare_num(Op::Gt, f64::NAN, 0.5));
        assert!(!compare_num(Op::Eq, f64::NAN, f64::NAN));
        assert!(compare_num(Op::Le, 0.5, 0.5));
    }
}
