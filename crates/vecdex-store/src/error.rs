//! Errors of reading and writing index files.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The bytes are not a valid vecdex file: the message says which check failed.
    Corrupt(String),
    /// A vecdex file of a version or kind this build cannot read.
    Unsupported(String),
    /// What the caller asked to write cannot be written (too large, duplicate sections…).
    Invalid(String),
    /// The operating system refused a read or write.
    Io(String),
}

impl StoreError {
    pub fn corrupt(message: impl Into<String>) -> Self {
        StoreError::Corrupt(message.into())
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        StoreError::Invalid(message.into())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Corrupt(m) => write!(f, "corrupt index file: {m}"),
            StoreError::Unsupported(m) | StoreError::Invalid(m) | StoreError::Io(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for StoreError {}
