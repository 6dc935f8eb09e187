//! provsearch-index: the Fingerprint schema and how two fingerprints are compared.
//!
//! Concepts:
//! - [`schema::Fingerprint`]: the one record ingest produces. Bounded in size (≤ 64 KiB), archived with rkyv.
//! - [`anchors::ANCHORS`] and [`sampling`]: the fixed definitions that make any two fingerprints comparable
//!   (token-string anchors, shape-only sample positions).
//! - [`score`]: per-signal similarities, the identity score and the verdict.
//!
//! Data flow: ingest builds a `Fingerprint` → `score::compare(&a, &b)` → a [`score::Comparison`] with the
//! identity score, the verdict and the evidence lines that explain it.
#![warn(missing_docs)]

pub mod anchors;
pub mod sampling;
pub mod schema;
pub mod score;

pub use schema::Fingerprint;
