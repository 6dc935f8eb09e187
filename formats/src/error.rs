//! The one error type of the format parsers: every variant names the file it is about.

use std::path::PathBuf;

/// Result alias for the format parsers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem with a model file. Every variant carries the path, so a message is useful on its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is damaged or inconsistent (truncated, bad offsets, bad header, ...).
    #[error("{}: corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset or field where it helps.
        detail: String,
    },
    /// JSON that does not parse or does not have the expected shape.
    #[error("{}: malformed JSON: {detail}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Parser message (with line and column) or the field that is wrong.
        detail: String,
    },
    /// A tensor whose contents are unusable (NaN/Inf, wrong dtype/shape).
    #[error("{}: tensor `{tensor}`: {detail}", path.display())]
    Tensor {
        /// The file holding the tensor.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// What is wrong.
        detail: String,
    },
    /// A well-formed file that uses something this version does not support (a dtype, a quant type, ...).
    #[error("{}: unsupported: {detail}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        detail: String,
    },
    /// A file provsearch refuses to read for safety (pickle, a path escaping the snapshot, ...).
    #[error("{}: refused: {detail}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why, and what to use instead.
        detail: String,
    },
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            Error::Io { path, .. }
            | Error::Corrupt { path, .. }
            | Error::Json { path, .. }
            | Error::Tensor { path, .. }
            | Error::Unsupported { path, .. }
            | Error::Refused { path, .. } => path,
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
