//! provsearch-ingest: a checkpoint on disk → a [`Fingerprint`](provsearch_index::Fingerprint).
//!
//! Data flow:
//! 1. [`locate`]: a path or Hub id → a [`locate::ModelLocation`] (snapshot directory, single file, or HF cache
//!    entry; never the network). Only when asked (`--download`), [`download`] first fetches a Hub id's files
//!    into that cache.
//! 2. The format parsers of `provsearch-formats` read config.json, the model card and the tokenizer; the
//!    weights are memory-mapped behind one [`weights::WeightSource`] view (safetensors shards, GGUF).
//! 3. [`vocab`]: tokenizer features (TFV), a MinHash sketch, and each canonical anchor's token id.
//! 4. [`signals`]: weight signals streamed tensor by tensor (EAS/END from the embedding, WVC/LEP from the layer
//!    matrices, NLF from norms), in parallel with the file digests ([`digest`]).
//! 5. [`fingerprint()`] assembles the record; `provsearch_index::score::compare` compares two.
//!
//! Nothing here executes code from a model repository: pickle checkpoints are refused.
#![warn(missing_docs)]

pub mod digest;
pub mod download;
pub mod error;
pub mod fingerprint;
pub mod locate;
pub mod roles;
pub mod signals;
pub mod vocab;
pub mod weights;

pub use error::{Error, Result};
pub use fingerprint::{fingerprint, fingerprint_location, Extracted, FingerprintOptions};
