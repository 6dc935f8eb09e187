//! Ingest's error type: format errors from the parsers plus problems with locating and reading a model.

use std::path::PathBuf;

/// Result alias for ingest.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a model could not be fingerprinted. Every variant names the file or model it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model file is unreadable, malformed or refused (see the wrapped error).
    #[error(transparent)]
    Format(#[from] provsearch_formats::Error),
    /// The model could not be found (no such path, not in the HF cache, ...).
    #[error("{spec}: model not found: {detail}")]
    NotFound {
        /// What the user named.
        spec: String,
        /// Where we looked.
        detail: String,
    },
    /// The model exists but holds nothing provsearch can read as weights.
    #[error("{}: no readable weights: {detail}", path.display())]
    NoWeights {
        /// The model directory or file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// A tensor holds NaN or infinite values.
    #[error("{}: tensor `{tensor}` contains {what} values", path.display())]
    NonFinite {
        /// File holding the tensor.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
        /// "NaN" or "infinite".
        what: &'static str,
    },
    /// The same tensor name appears in two weight files.
    #[error("{}: tensor `{tensor}` appears in more than one weight file", path.display())]
    DuplicateTensor {
        /// The second file.
        path: PathBuf,
        /// Tensor name.
        tensor: String,
    },
    /// A weight file's bytes do not hash to the SHA-256 the Hub's tools recorded for it (`--verify-digests`):
    /// its HF cache blob name or its `--local-dir` download record.
    #[error(
        "{}: {claimed_by} gives SHA-256 {named}, but its bytes hash to {actual}: the file or its record is \
         corrupt or was altered",
        path.display()
    )]
    DigestMismatch {
        /// The weight file (in a cache snapshot, a link to the blob).
        path: PathBuf,
        /// What recorded the SHA-256: the blob name, or the download record's path.
        claimed_by: String,
        /// The recorded SHA-256.
        named: String,
        /// The SHA-256 of its bytes.
        actual: String,
    },
    /// A PEFT adapter (`adapter_config.json` and no `config.json`): low-rank weight deltas for a base model,
    /// not a model of its own.
    #[error(
        "{}: a PEFT {kind} adapter{}, not a model: it holds weight deltas for its base model. Merge it into \
         the base (peft's `merge_and_unload`) and fingerprint the merged model, or query the base model",
        path.display(),
        base.as_ref().map(|b| format!(" of `{b}`")).unwrap_or_default()
    )]
    Adapter {
        /// The model directory.
        path: PathBuf,
        /// `peft_type` from `adapter_config.json` (`LORA`, ...), or "unknown".
        kind: String,
        /// `base_model_name_or_path` from `adapter_config.json`, when it names one.
        base: Option<String>,
    },
    /// Fetching a Hub id into the cache failed (only with `--download`): the Hub is unreachable, has no such
    /// repository, revision or file, answered outside its protocol, or lists nothing that may be downloaded.
    #[error("{repo}{}: cannot download: {detail}", in_file(.file))]
    Download {
        /// The repository, `org/name`.
        repo: String,
        /// The file concerned, when the problem is one file.
        file: Option<String>,
        /// The HTTP status the Hub answered with, when it answered with an error.
        status: Option<u16>,
        /// What went wrong and what to do about it.
        detail: String,
    },
}

fn in_file(file: &Option<String>) -> String {
    file.as_ref().map(|f| format!(" ({f})")).unwrap_or_default()
}

impl Error {
    /// Shorthand for [`Error::NoWeights`].
    pub fn no_weights(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::NoWeights {
            path: path.into(),
            detail: detail.into(),
        }
    }
}
