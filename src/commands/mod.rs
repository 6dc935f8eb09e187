//! One module per subcommand; each turns parsed flags into library calls and renders the result.

pub mod compare;
pub mod eval;
pub mod fingerprint;
pub mod index;
pub mod ingest;
pub mod models;
pub mod query;
pub mod serve;
