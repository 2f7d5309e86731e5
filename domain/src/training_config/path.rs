//! Reading and writing a config's values by dotted path.

use serde_json::{Map, Value};

pub(super) fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |node, key| node.get(key))
}

pub(super) fn take(root: &mut Value, path: &str) -> Option<Value> {
    let (parent, key) = match path.rsplit_once('.') {
        Some((parent, key)) => (
            parent
                .split('.')
                .try_fold(&mut *root, |n, k| n.get_mut(k))?,
            key,
        ),
        None => (root, path),
    };
    parent.as_object_mut()?.remove(key)
}

pub(super) fn set(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut keys = path.split('.').peekable();
    while let Some(key) = keys.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if keys.peek().is_none() {
            map.insert(key.to_string(), value);
            return;
        }
        node = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}
pub(super) fn num(config: &Value, path: &str) -> Option<f64> {
    get(config, path).and_then(Value::as_f64)
}
pub(super) fn int(config: &Value, path: &str) -> Option<i64> {
    get(config, path).and_then(Value::as_i64)
}
pub(super) fn text<'a>(config: &'a Value, path: &str) -> Option<&'a str> {
    get(config, path).and_then(Value::as_str)
}
pub(super) fn flag(config: &Value, path: &str) -> bool {
    get(config, path).and_then(Value::as_bool).unwrap_or(false)
}
