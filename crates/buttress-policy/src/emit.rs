//! Writing a document as YAML (TOML and JSON have serde writers of their
//! own).

use std::borrow::Cow;

use saphyr::{Mapping, Scalar, Yaml, YamlEmitter};
use serde_json::Value;

use crate::document::PolicyDocument;

/// `doc` as a YAML document.
pub(crate) fn yaml(doc: &PolicyDocument) -> String {
    let value = serde_json::to_value(doc).unwrap_or(Value::Null);
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    // A document of maps, numbers and strings always emits.
    let _ = emitter.dump(&node(&value));
    out.push('\n');
    out
}

fn node(value: &Value) -> Yaml<'_> {
    match value {
        Value::Null => Yaml::Value(Scalar::Null),
        Value::Bool(b) => Yaml::Value(Scalar::Boolean(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Yaml::Value(Scalar::Integer(i)),
            (None, Some(f)) if n.is_f64() => Yaml::Value(Scalar::FloatingPoint(f.into())),
            // A u64 above i64::MAX: YAML integers are read as i64.
            _ => Yaml::Value(Scalar::String(Cow::Owned(n.to_string()))),
        },
        Value::String(s) => Yaml::Value(Scalar::String(Cow::Borrowed(s))),
        Value::Array(items) => Yaml::Sequence(items.iter().map(node).collect()),
        Value::Object(map) => {
            let mut out = Mapping::new();
            for (k, v) in map {
                out.insert(Yaml::Value(Scalar::String(Cow::Borrowed(k))), node(v));
            }
            Yaml::Mapping(out)
        }
    }
}
