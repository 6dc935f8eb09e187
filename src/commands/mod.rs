//! One module per subcommand; each turns parsed flags into library calls and renders the result.

pub mod compare;
pub mod fingerprint;
pub mod models;
