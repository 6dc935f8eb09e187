//! The index's error type: every variant names the file (and where useful the offset) it is about.

use std::path::{Path, PathBuf};

/// Result alias for the index.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a file of the index.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file's contents are damaged: bad checksum, truncated, or not what its footer says.
    #[error("{}: corrupt index file: {detail}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong, with the byte offset where known.
        detail: String,
    },
    /// The index was written by a format this build cannot read.
    #[error(
        "{}: index format {found} is not readable by this build (reads {oldest_supported}..={current})",
        path.display()
    )]
    IncompatibleFormat {
        /// The manifest.
        path: PathBuf,
        /// Format version found.
        found: u32,
        /// Oldest version this build reads.
        oldest_supported: u32,
        /// This build's version.
        current: u32,
    },
    /// There is no index at the given directory.
    #[error("{}: no provsearch index here (no manifest.json); create one with `provsearch ingest`", path.display())]
    NoIndex {
        /// The directory.
        path: PathBuf,
    },
    /// Another process holds the index's write lock.
    #[error("{}: the index is locked by another writer (pid {pid})", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Writer pid from the lock file, if readable.
        pid: String,
    },
    /// A metadata query or filter could not be parsed.
    #[error("invalid query `{query}`: {detail}")]
    Query {
        /// The query text.
        query: String,
        /// What the parser said.
        detail: String,
    },
    /// The metadata index (tantivy) failed.
    #[error("{}: metadata index: {detail}", path.display())]
    Meta {
        /// The metadata index directory.
        path: PathBuf,
        /// The tantivy error.
        detail: String,
    },
    /// The ANN graph could not be built, written or loaded.
    #[error("{}: ANN graph: {detail}", path.display())]
    Graph {
        /// The graph file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// Indexes or segments that cannot be combined (different composite-vector configurations).
    #[error("{}: {detail}", path.display())]
    Mismatch {
        /// The index that does not match.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Corrupt`].
    pub fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// Shorthand for [`Error::Meta`].
    pub fn meta(path: &Path, detail: impl std::fmt::Display) -> Self {
        Error::Meta {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        }
    }

    /// Whether the error reports damaged index data (as opposed to I/O or usage).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::Graph { .. })
    }
}
