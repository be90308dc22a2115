//! Policies kept in a file: loaded at start, applied again on request.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use crate::document::PolicyDocument;
use crate::error::DocumentError;
use crate::format::Format;
use crate::policy::{Applied, DEFAULT_VERSIONS_KEPT, Policy};

/// Why a policy file could not be used. Nothing is applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read.
    #[error("cannot read the policy file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's extension names no format this crate reads.
    #[error("the policy file {0} must end in .toml, .yaml, .yml or .json")]
    Format(PathBuf),
    /// The document is invalid, or cannot be applied to what runs.
    #[error("the policy file {path} was refused")]
    Document {
        /// The file.
        path: PathBuf,
        /// Every problem, with its path and line.
        #[source]
        source: DocumentError,
    },
}

impl FileError {
    /// The document's problems, when that is what is wrong.
    pub fn document(&self) -> Option<&DocumentError> {
        match self {
            FileError::Document { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The file's text and format.
pub(crate) fn read(path: &FsPath) -> Result<(String, Format), FileError> {
    let format = Format::from_path(path).ok_or_else(|| FileError::Format(path.to_owned()))?;
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok((text, format))
}

/// Who applied a file, for the history.
pub(crate) fn by(path: &FsPath) -> String {
    format!("file {}", path.display())
}

impl Policy {
    /// Reads, checks and builds the policy in `path` (its format from the
    /// extension), as version 1 applied by `"file <path>"`.
    ///
    /// ```
    /// use buttress_policy::Policy;
    ///
    /// let dir = std::env::temp_dir().join(format!("policy-load-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("policy.yaml");
    /// std::fs::write(&path, "dependencies:\n  db:\n    timeout: 5s\n")?;
    /// let policy = Policy::load(&path)?;
    /// assert_eq!(policy.current().by, format!("file {}", path.display()));
    /// let e = Policy::load(dir.join("policy.ini")).unwrap_err();
    /// assert_eq!(e.to_string(), format!("the policy file {} must end in .toml, .yaml, .yml or .json", dir.join("policy.ini").display()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: impl AsRef<FsPath>) -> Result<Policy, FileError> {
        let path = path.as_ref();
        let (text, format) = read(path)?;
        let refused = |source| FileError::Document {
            path: path.to_owned(),
            source,
        };
        let document = PolicyDocument::parse(&text, format).map_err(refused)?;
        Policy::build(
            document,
            Some((&text, format)),
            &by(path),
            DEFAULT_VERSIONS_KEPT,
        )
        .map_err(refused)
    }

    /// Reads `path` and applies it (see [`apply_text`](Self::apply_text)),
    /// by `"file <path>"`: what a watcher or a `SIGHUP` handler calls.
    pub fn apply_file(&self, path: impl AsRef<FsPath>) -> Result<Arc<Applied>, FileError> {
        let path = path.as_ref();
        let (text, format) = read(path)?;
        self.apply_text(&text, format, by(path))
            .map_err(|source| FileError::Document {
                path: path.to_owned(),
                source,
            })
    }
}
