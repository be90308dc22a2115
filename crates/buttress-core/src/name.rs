//! The validated name of one primitive instance.

use std::fmt;
use std::sync::Arc;

/// The name of one primitive instance (`"embeddings"`, `"llm"`), used as the
/// `name` label of its metrics and in its errors. Cloning is one reference
/// count; the name is never copied per call.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

/// Why a string is not a valid [`Name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty or only white space.
    #[error("name is empty")]
    Empty,
    /// The name is longer than 128 bytes.
    #[error("name is {0} bytes long; at most 128 are allowed")]
    TooLong(usize),
    /// The name holds a control character.
    #[error("name contains a control character")]
    ControlCharacter,
}

impl Name {
    /// Validates `name`: 1 to 128 bytes, not blank, no control characters.
    ///
    /// ```
    /// use buttress_core::{Name, NameError};
    ///
    /// assert!(Name::new("embeddings").is_ok());
    /// assert_eq!(Name::new("  "), Err(NameError::Empty));
    /// assert_eq!(Name::new("a\tb"), Err(NameError::ControlCharacter));
    /// assert_eq!(Name::new("x".repeat(200)), Err(NameError::TooLong(200)));
    /// ```
    pub fn new(name: impl AsRef<str>) -> Result<Self, NameError> {
        let name = name.as_ref();
        if name.trim().is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > 128 {
            return Err(NameError::TooLong(name.len()));
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        Ok(Self(Arc::from(name)))
    }

    /// The name as a string.
    ///
    /// ```
    /// use buttress_core::Name;
    ///
    /// let name = Name::new("llm")?;
    /// assert_eq!(name.as_str(), "llm");
    /// # Ok::<(), buttress_core::NameError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert_eq!(
            Name::new("llm").map(|n| n.to_string()),
            Ok("llm".to_string())
        );
        assert_eq!(Name::new(" "), Err(NameError::Empty));
        assert_eq!(Name::new("a\nb"), Err(NameError::ControlCharacter));
        assert_eq!(Name::new("x".repeat(129)), Err(NameError::TooLong(129)));
    }
}
