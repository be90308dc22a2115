//! Reading a document: the format's syntax, then the typed reading, then
//! the checks that need more than one key; each problem with its path and
//! line.

use serde_json::Value;

use crate::document::PolicyDocument;
use crate::error::{DocumentError, Path, Problem};
use crate::format::{self, Format};
use crate::validate;

impl PolicyDocument {
    /// Reads and checks a document. Every problem the checks find is
    /// reported at once, each with its path and line; a syntax error or a
    /// wrong type stops the reading at the first one. Unknown keys are
    /// errors.
    ///
    /// ```
    /// use buttress_policy::{Format, PolicyDocument};
    ///
    /// let e = PolicyDocument::parse(r#"
    /// dependencies:
    ///   llm:
    ///     breaker:
    ///       failure_rate_threshold: 1.5
    /// "#, Format::Yaml).unwrap_err();
    /// assert_eq!(
    ///     e.problems()[0].to_string(),
    ///     "dependencies.llm.breaker.failure_rate_threshold: must be in (0, 1], got 1.5, line 5",
    /// );
    /// ```
    pub fn parse(text: &str, format: Format) -> Result<PolicyDocument, DocumentError> {
        let value = format::read(text, format)?;
        let doc = typed(value).map_err(|(path, message)| {
            let line = format::locate(text, format, &path);
            DocumentError::one(path, line, message)
        })?;
        doc.check_with(|path| format::locate(text, format, path))?;
        Ok(doc)
    }

    /// Checks a document built in code (or changed after reading): the
    /// same checks as [`parse`](Self::parse), without lines.
    ///
    /// ```
    /// use buttress_policy::{DependencyPolicy, PolicyDocument};
    ///
    /// let mut doc = PolicyDocument::default();
    /// let mut llm = DependencyPolicy::default();
    /// llm.timeout = Some(std::time::Duration::ZERO);
    /// doc.dependencies.insert("llm".into(), llm);
    /// let e = doc.validate().unwrap_err();
    /// assert_eq!(e.problems()[0].to_string(), "dependencies.llm.timeout: must be above zero");
    /// ```
    pub fn validate(&self) -> Result<(), DocumentError> {
        self.check_with(|_| None)
    }

    fn check_with(&self, line: impl Fn(&Path) -> Option<usize>) -> Result<(), DocumentError> {
        let problems: Vec<Problem> = validate::problems(self)
            .into_iter()
            .map(|(path, message)| Problem {
                line: line(&path),
                path,
                message,
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DocumentError::new(problems))
        }
    }

    /// The document as text in `format`: what `GET /admin/config` serves,
    /// and what [`parse`](Self::parse) reads back to an equal document.
    ///
    /// ```
    /// use buttress_policy::{Format, PolicyDocument};
    ///
    /// let doc = PolicyDocument::parse("[dependencies.db]\ntimeout = \"5s\"\n", Format::Toml)?;
    /// for format in [Format::Toml, Format::Yaml, Format::Json] {
    ///     let text = doc.to_text(format);
    ///     assert_eq!(PolicyDocument::parse(&text, format)?, doc);
    /// }
    /// # Ok::<(), buttress_policy::DocumentError>(())
    /// ```
    pub fn to_text(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default() + "\n",
            Format::Toml => toml::to_string_pretty(self).unwrap_or_default(),
            Format::Yaml => crate::emit::yaml(self),
        }
    }
}

/// The typed reading of a value tree; on failure, where and why.
fn typed(value: Value) -> Result<PolicyDocument, (Path, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = Path::root();
        for segment in e.path() {
            path = match segment {
                serde_path_to_error::Segment::Map { key } => path.key(key.clone()),
                serde_path_to_error::Segment::Seq { index } => path.index(*index),
                _ => path,
            };
        }
        // An unknown key's path names the key itself, so its line is the
        // key's.
        (path, e.inner().to_string())
    })
}
