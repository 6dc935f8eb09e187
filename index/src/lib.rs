//! provsearch-index: the Fingerprint schema, how two fingerprints are compared, and the searchable index that
//! holds millions of them.
//!
//! Concepts:
//! - [`schema::Fingerprint`]: the one record ingest produces. Bounded in size (≤ 64 KiB), archived with rkyv.
//! - [`anchors::ANCHORS`] and [`sampling`]: the fixed definitions that make any two fingerprints comparable
//!   (token-string anchors, shape-only sample positions).
//! - [`score`]: per-signal similarities, the identity score and the verdict.
//! - [`eval`]: labelled pairs, evaluation metrics and calibration of the score configuration.
//! - [`composite`]: the fixed-dimension `i8` vector whose inner product tracks the identity score.
//! - [`channel_codes`]: hashes of the embedding-channel profiles, indexed as metadata terms, through which a
//!   query finds models that share channels with it at other indices (width-changed, residual-permuted).
//! - Segment ([`segment`]): an immutable directory of rkyv records, composite vectors, an HNSW graph (built by
//!   hnsw_rs in [`hnsw`], stored and searched memory-mapped by [`graph`]), the vectors' sign sketches
//!   ([`sketch`], scanned beside the graph) and a tantivy metadata index ([`meta_index`]).
//! - Manifest ([`manifest`]): the list of live segments and tombstone files ([`tombstones`]), replaced
//!   atomically by each commit.
//!
//! Data flow:
//! 1. [`writer::IndexWriter::add`] streams fingerprints into a new segment (replaced revisions become tombstones);
//! 2. [`writer::IndexWriter::commit`] seals the segment (files fsynced, graph built) and replaces the manifest;
//! 3. [`reader::IndexReader::open`] maps the segments listed by the current manifest;
//! 4. [`search::query`] takes candidates from the composite vectors (HNSW plus a sketch scan, or an exact scan),
//!    metadata and shared channel codes, rescores them exactly with `score::compare`, applies the metadata filter and ranks related
//!    models first.
#![warn(missing_docs)]

pub mod anchors;
pub mod channel_codes;
pub mod composite;
pub mod error;
pub mod eval;
pub mod footer;
pub mod graph;
pub mod hnsw;
pub mod manifest;
pub mod meta_index;
mod prefetch;
pub mod reader;
pub mod sampling;
pub mod schema;
pub mod score;
pub mod search;
pub mod segment;
pub mod sketch;
#[cfg(test)]
mod testutil;
pub mod tombstones;
pub mod writer;

pub use error::{Error, Result};
pub use reader::IndexReader;
pub use schema::Fingerprint;
pub use writer::IndexWriter;

/// Test hook: when the environment variable `PROVSEARCH_FAILPOINT` equals `name`, abort the process here (as a
/// crash would). Used by the crash-safety tests; costs one environment read per commit.
pub fn failpoint(name: &str) {
    if std::env::var_os("PROVSEARCH_FAILPOINT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}
