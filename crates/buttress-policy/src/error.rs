//! What is wrong with a document: every problem, each with its path and
//! line.

use std::fmt;

/// One step of a path into a document: a key, or an index in a list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// A key of a table or mapping.
    Key(String),
    /// An index in a list, from 0.
    Index(usize),
}

/// Where in a document: `dependencies.llm.breaker.failure_rate_threshold`.
///
/// ```
/// use buttress_policy::Path;
///
/// let p = Path::root().key("service").key("inbound").key("exempt").index(1);
/// assert_eq!(p.to_string(), "service.inbound.exempt[1]");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(Vec<Segment>);

impl Path {
    /// The whole document.
    pub fn root() -> Path {
        Path(Vec::new())
    }

    /// This path, then `key`.
    pub fn key(mut self, key: impl Into<String>) -> Path {
        self.0.push(Segment::Key(key.into()));
        self
    }

    /// This path, then the `index`-th item of a list.
    pub fn index(mut self, index: usize) -> Path {
        self.0.push(Segment::Index(index));
        self
    }

    /// This path, then each key of a dotted `suffix` (`"open.duration"`).
    pub fn dotted(self, suffix: &str) -> Path {
        suffix
            .split('.')
            .filter(|k| !k.is_empty())
            .fold(self, Path::key)
    }

    /// The steps, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One thing wrong with a document.
///
/// Its `Display` is the line an operator reads:
/// `dependencies.llm.breaker.failure_rate_threshold: must be in (0, 1], got 1.5, line 14`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, in the document's keys.
    pub path: Path,
    /// The line (from 1) of the key, or of the closest enclosing key the
    /// source has; `None` when the document came without text (built in
    /// code) or the place cannot be found.
    pub line: Option<usize>,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        Ok(())
    }
}

/// Why a document was refused: every problem found, in document order
/// where it could tell. Nothing of a refused document is applied.
///
/// ```
/// use buttress_policy::{Format, PolicyDocument};
///
/// let e = PolicyDocument::parse("[dependencies.llm]\ntimeuot = \"30s\"\n", Format::Toml).unwrap_err();
/// assert_eq!(e.problems()[0].path.to_string(), "dependencies.llm.timeuot");
/// assert_eq!(e.problems()[0].line, Some(2));
/// assert!(e.to_string().contains("unknown field `timeuot`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    problems: Vec<Problem>,
}

impl DocumentError {
    pub(crate) fn new(mut problems: Vec<Problem>) -> DocumentError {
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        DocumentError { problems }
    }

    pub(crate) fn one(path: Path, line: Option<usize>, message: impl Into<String>) -> Self {
        DocumentError::new(vec![Problem {
            path,
            line,
            message: message.into(),
        }])
    }

    /// Every problem, by line.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid policy: {one}"),
            many => {
                write!(f, "invalid policy ({} problems):", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}
