//! The one error type of vecdex, with a stable code per kind that JS sees as `err.code`.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A vector or matrix does not have the index's dimension count.
    DimensionMismatch {
        expected: usize,
        actual: usize,
        what: String,
    },
    /// An argument is out of range or malformed (NaN, k = 0, empty batch, duplicate key...).
    InvalidArgument(String),
    /// Cosine needs non-zero vectors.
    ZeroVector(String),
    /// The index was closed.
    Closed,
    /// The caller's AbortSignal fired; the operation stopped between batches with no effect.
    Aborted,
    /// A quantized index was searched before its codec was trained.
    NotTrained(String),
    /// A file or buffer is not a valid vecdex index (damaged, truncated, or inconsistent): the
    /// message says which check failed. Nothing of it was used.
    CorruptFile(String),
    /// A vecdex index of a format version or kind this build cannot read.
    UnsupportedFormat(String),
    /// The operating system refused to read or write a file.
    Io(String),
    /// The index is a read-only view of a file; load it to change it.
    ReadOnly,
    /// A buffer whose size comes from the caller (an option, a count, a file header) could not
    /// be allocated; nothing changed. The message names the buffer and its size.
    OutOfMemory(String),
    /// A bug: a panic or a broken invariant inside vecdex. The process lives on.
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The stable code, as JS sees it in `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::DimensionMismatch { .. } => "ERR_DIMENSION_MISMATCH",
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            Error::ZeroVector(_) => "ERR_ZERO_VECTOR",
            Error::Closed => "ERR_CLOSED",
            Error::NotTrained(_) => "ERR_NOT_TRAINED",
            Error::Aborted => "ERR_ABORTED",
            Error::CorruptFile(_) => "ERR_CORRUPT_FILE",
            Error::UnsupportedFormat(_) => "ERR_UNSUPPORTED_FORMAT",
            Error::Io(_) => "ERR_IO",
            Error::ReadOnly => "ERR_READ_ONLY",
            Error::OutOfMemory(_) => "ERR_OUT_OF_MEMORY",
            Error::Internal(_) => "ERR_INTERNAL",
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DimensionMismatch {
                expected,
                actual,
                what,
            } => {
                write!(f, "{what}: expected {expected} dimensions, got {actual}")
            }
            Error::InvalidArgument(m)
            | Error::ZeroVector(m)
            | Error::NotTrained(m)
            | Error::UnsupportedFormat(m)
            | Error::Io(m)
            | Error::OutOfMemory(m) => f.write_str(m),
            Error::CorruptFile(m) => write!(f, "corrupt index file: {m}"),
            Error::ReadOnly => {
                f.write_str("the index is a read-only view of a file: load it to change it")
            }
            Error::Closed => f.write_str("the index is closed"),
            Error::Aborted => f.write_str("the operation was aborted"),
            Error::Internal(m) => write!(f, "internal error (a bug in vecdex): {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<vecdex_fde::FdeError> for Error {
    fn from(error: vecdex_fde::FdeError) -> Self {
        use vecdex_fde::FdeError;
        match error {
            FdeError::InvalidConfig(m)
            | FdeError::InvalidInput(m)
            | FdeError::EmptyPointCloud(m) => Error::InvalidArgument(m),
            FdeError::OutOfMemory(m) => Error::OutOfMemory(m),
        }
    }
}

impl From<vecdex_quant::QuantError> for Error {
    fn from(error: vecdex_quant::QuantError) -> Self {
        if error.is_out_of_memory() {
            Error::OutOfMemory(error.message().to_string())
        } else {
            Error::InvalidArgument(error.message().to_string())
        }
    }
}

impl From<vecdex_store::StoreError> for Error {
    fn from(error: vecdex_store::StoreError) -> Self {
        use vecdex_store::StoreError;
        match error {
            StoreError::Corrupt(m) => Error::CorruptFile(m),
            StoreError::Unsupported(m) => Error::UnsupportedFormat(m),
            StoreError::Invalid(m) => Error::InvalidArgument(m),
            StoreError::Io(m) => Error::Io(m),
        }
    }
}

/// Runs `f`, turning a panic into [`Error::Internal`] so it never unwinds into the host.
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic with a non-string payload".to_string());
            Err(Error::Internal(message))
        }
    }
}
