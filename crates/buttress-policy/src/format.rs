//! The three formats a document may come in, read into one value tree
//! (`serde_json::Value`) so that one typed reading serves them all, and the
//! line of any path in the text it came from.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Number, Value};

use crate::error::{DocumentError, Path, Segment};

/// The format of a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// TOML (`.toml`).
    Toml,
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
}

impl Format {
    /// The format a file's extension names, if any.
    ///
    /// ```
    /// use buttress_policy::Format;
    ///
    /// assert_eq!(Format::from_path("/etc/knowledge-api/policy.yml"), Some(Format::Yaml));
    /// assert_eq!(Format::from_path("policy.ini"), None);
    /// ```
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Option<Format> {
        let ext = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The format a media type names (`application/toml`, `application/yaml`,
    /// `application/json`, with or without parameters), if any.
    ///
    /// ```
    /// use buttress_policy::Format;
    ///
    /// assert_eq!(Format::from_media_type("application/json; charset=utf-8"), Some(Format::Json));
    /// assert_eq!(Format::from_media_type("text/plain"), None);
    /// ```
    pub fn from_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/toml" | "text/toml" => Some(Format::Toml),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                Some(Format::Yaml)
            }
            "application/json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Its media type, for answers that carry a document.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Toml => "application/toml",
            Format::Yaml => "application/yaml",
            Format::Json => "application/json",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        })
    }
}

/// Reads `text` into a value tree; a syntax error names its line.
pub(crate) fn read(text: &str, format: Format) -> Result<Value, DocumentError> {
    match format {
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            DocumentError::one(Path::root(), line, first_line(e.message()))
        }),
        // A syntax error read from a string always has a line.
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| {
            DocumentError::one(Path::root(), Some(e.line()), strip_position(&e.to_string()))
        }),
        Format::Yaml => yaml::read(text),
    }
}

/// The line (from 1) of `path` in `text`, or of the closest enclosing key
/// the text has.
pub(crate) fn locate(text: &str, format: Format, path: &Path) -> Option<usize> {
    match format {
        Format::Toml => toml_line(text, path),
        // JSON is YAML's flow style: one locator serves both.
        Format::Json | Format::Yaml => yaml::locate(text, path),
    }
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

/// serde_json says "at line 3 column 5" in its message; the problem says
/// the line itself.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn toml_line(text: &str, path: &Path) -> Option<usize> {
    use toml::de::{DeArray, DeTable, DeValue};
    let root = DeTable::parse(text).ok()?;
    let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
    let mut array: Option<&DeArray<'_>> = None;
    let mut line = None;
    for segment in path.segments() {
        let value = match (segment, table, array) {
            (Segment::Key(k), Some(t), _) => {
                let Some((key, value)) = t.iter().find(|(key, _)| key.get_ref().as_ref() == k)
                else {
                    break;
                };
                line = Some(line_of(text, key.span().start));
                value
            }
            (Segment::Index(i), _, Some(a)) => {
                let Some(item) = a.get(*i) else { break };
                line = Some(line_of(text, item.span().start));
                item
            }
            _ => break,
        };
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(a)),
            _ => (None, None),
        };
    }
    line
}

mod yaml {
    use super::*;
    use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

    pub(super) fn read(text: &str) -> Result<Value, DocumentError> {
        let docs = MarkedYaml::load_from_str(text).map_err(|e| {
            DocumentError::one(Path::root(), Some(e.marker().line()), e.info().to_owned())
        })?;
        match docs.as_slice() {
            [] => Ok(Value::Object(Map::new())),
            [doc] => value(doc),
            [_, second, ..] => Err(DocumentError::one(
                Path::root(),
                Some(second.span.start.line()),
                "one document per file: found a second one",
            )),
        }
    }

    fn value(node: &MarkedYaml<'_>) -> Result<Value, DocumentError> {
        let line = Some(node.span.start.line());
        let unsupported = |what: &str| {
            Err(DocumentError::one(
                Path::root(),
                line,
                format!("{what} are not supported in a policy"),
            ))
        };
        Ok(match &node.data {
            YamlData::Value(s) => scalar(s, line)?,
            YamlData::Representation(raw, _, _) => Value::String(raw.to_string()),
            YamlData::Sequence(items) => {
                Value::Array(items.iter().map(value).collect::<Result<_, _>>()?)
            }
            YamlData::Mapping(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    // The loader resolves every scalar, keys too.
                    let key = match &k.data {
                        YamlData::Value(s) => scalar_text(s),
                        _ => return unsupported("keys that are not plain words"),
                    };
                    out.insert(key.into_owned(), value(v)?);
                }
                Value::Object(out)
            }
            YamlData::Tagged(_, inner) => value(inner)?,
            YamlData::Alias(_) => return unsupported("aliases"),
            YamlData::BadValue => {
                return Err(DocumentError::one(
                    Path::root(),
                    line,
                    "a value YAML cannot read",
                ));
            }
        })
    }

    fn scalar(s: &Scalar<'_>, line: Option<usize>) -> Result<Value, DocumentError> {
        Ok(match s {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Number((*i).into()),
            Scalar::FloatingPoint(f) => match Number::from_f64(f.into_inner()) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(DocumentError::one(
                        Path::root(),
                        line,
                        "infinite and NaN numbers are not allowed",
                    ));
                }
            },
            Scalar::String(s) => Value::String(s.to_string()),
        })
    }

    fn scalar_text<'a>(s: &'a Scalar<'_>) -> Cow<'a, str> {
        match s {
            Scalar::String(s) => Cow::Borrowed(s.as_ref()),
            Scalar::Null => Cow::Borrowed("null"),
            Scalar::Boolean(b) => Cow::Owned(b.to_string()),
            Scalar::Integer(i) => Cow::Owned(i.to_string()),
            Scalar::FloatingPoint(f) => Cow::Owned(f.to_string()),
        }
    }

    pub(super) fn locate(text: &str, path: &Path) -> Option<usize> {
        let docs = MarkedYaml::load_from_str(text).ok()?;
        let mut node = docs.first()?;
        let mut line = None;
        for segment in path.segments() {
            let next = match (segment, &node.data) {
                (Segment::Key(k), YamlData::Mapping(map)) => {
                    let Some((key, value)) = map.iter().find(|(key, _)| match &key.data {
                        YamlData::Value(s) => scalar_text(s) == k.as_str(),
                        _ => false,
                    }) else {
                        break;
                    };
                    line = Some(key.span.start.line());
                    value
                }
                (Segment::Index(i), YamlData::Sequence(items)) => {
                    let Some(item) = items.get(*i) else { break };
                    line = Some(item.span.start.line());
                    item
                }
                _ => break,
            };
            node = next;
        }
        line
    }
}
