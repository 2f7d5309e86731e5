//! Idempotency keys on mutations (the IETF `Idempotency-Key` draft's rules):
//! a key names one request. The command id is derived from the key (scoped
//! to the project, the operation and its target), so a retry lands on the
//! events the first request wrote and stores nothing twice; the request's
//! digest is kept in those events' metadata, so the same key sent with a
//! different request is refused (`IDEMPOTENCY_KEY_REUSED`) instead of being
//! silently "deduplicated" with its new values dropped.

use super::errors::domain_error;
use crate::auth::Caller;
use async_graphql::{Context, Name, Value};
use ftl_commands::digest::FieldHasher;
use ftl_commands::store::Metadata;
use ftl_domain::DomainError;
use ftl_domain::ids::command_id_from_key;
use ftl_domain::limits::MAX_IDEMPOTENCY_KEY_LEN;
use uuid::Uuid;

/// The argument that carries the key; it is not part of the request's digest.
const KEY_ARGUMENT: &str = "idempotencyKey";

/// A command's id and the metadata of the events it writes.
pub(crate) struct Keyed {
    pub id: Uuid,
    pub meta: Metadata,
}

/// The command id — derived from `key` or fresh — and the caller's event
/// metadata, carrying the digest of this field's arguments when keyed.
pub(crate) fn keyed(
    ctx: &Context<'_>,
    c: &Caller,
    op: &str,
    target: &str,
    key: Option<&str>,
) -> async_graphql::Result<Keyed> {
    let mut meta = c.metadata();
    let id = match key {
        Some(k) if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN => {
            return Err(domain_error(DomainError::invalid(
                KEY_ARGUMENT,
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} bytes"),
            )));
        }
        Some(k) => {
            let args = ctx.field().arguments()?;
            meta.request_digest = Some(digest(&args));
            command_id_from_key(&format!("{}/{op}/{target}", c.project_id), k)
        }
        None => Uuid::new_v4(),
    };
    meta.command_id = Some(id);
    Ok(Keyed { id, meta })
}

/// SHA-256 (first 16 bytes, hex) of the arguments in a canonical form:
/// names sorted at every level, the key and null arguments left out (an
/// omitted argument and an explicit null are the same request).
pub(crate) fn digest(args: &[(Name, Value)]) -> String {
    let mut sorted: Vec<&(Name, Value)> = args
        .iter()
        .filter(|(n, v)| n.as_str() != KEY_ARGUMENT && *v != Value::Null)
        .collect();
    sorted.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut h = FieldHasher::new();
    for (name, value) in sorted {
        feed_str(&mut h, name.as_str());
        feed(&mut h, value);
    }
    h.hex16()
}

/// Each value is tagged and length-prefixed, so no two values feed the same bytes.
fn feed(h: &mut FieldHasher, v: &Value) {
    match v {
        Value::Null => h.raw(b"n"),
        Value::Boolean(b) => h.raw(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.raw(b"#");
            feed_str(h, &n.to_string());
        }
        Value::String(s) => {
            h.raw(b"s");
            feed_str(h, s);
        }
        Value::Enum(e) => {
            h.raw(b"e");
            feed_str(h, e.as_str());
        }
        Value::Binary(b) => {
            h.raw(b"b");
            h.field(b);
        }
        Value::List(items) => {
            h.raw(b"[");
            h.raw(&(items.len() as u64).to_le_bytes());
            for i in items {
                feed(h, i);
            }
        }
        Value::Object(fields) => {
            let mut sorted: Vec<_> = fields.iter().collect();
            sorted.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            h.raw(b"{");
            h.raw(&(sorted.len() as u64).to_le_bytes());
            for (k, v) in sorted {
                feed_str(h, k.as_str());
                feed(h, v);
            }
        }
    }
}

fn feed_str(h: &mut FieldHasher, s: &str) {
    h.field(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::indexmap::IndexMap;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (Name::new(k), v.clone()))
                .collect::<IndexMap<_, _>>(),
        )
    }

    #[test]
    fn the_digest_ignores_order_the_key_and_nulls_but_not_values() {
        let p1 = obj(&[("key", Value::from("loss")), ("step", Value::from(1))]);
        let p1_reordered = obj(&[("step", Value::from(1)), ("key", Value::from("loss"))]);
        let a = vec![
            (Name::new("jobId"), Value::from("j")),
            (Name::new("points"), Value::List(vec![p1.clone()])),
            (Name::new(KEY_ARGUMENT), Value::from("k1")),
        ];
        let b = vec![
            (Name::new(KEY_ARGUMENT), Value::from("k2")),
            (Name::new("points"), Value::List(vec![p1_reordered])),
            (Name::new("jobId"), Value::from("j")),
            (Name::new("tags"), Value::Null),
        ];
        assert_eq!(digest(&a), digest(&b));
        let changed = vec![
            (Name::new("jobId"), Value::from("j")),
            (
                Name::new("points"),
                Value::List(vec![obj(&[
                    ("key", Value::from("loss")),
                    ("step", Value::from(2)),
                ])]),
            ),
        ];
        assert_ne!(digest(&a), digest(&changed));
        // A string "1" is not the number 1; ["ab"] is not ["a", "b"].
        let s = |v: Value| digest(&[(Name::new("x"), v)]);
        assert_ne!(s(Value::from("1")), s(Value::from(1)));
        assert_ne!(
            s(Value::List(vec![Value::from("ab")])),
            s(Value::List(vec![Value::from("a"), Value::from("b")]))
        );
        assert_eq!(digest(&a).len(), 32);
    }
}
