//! Renderers: human tables and JSON documents for each command's result. Libraries never print; these do.

pub mod eval;
pub mod human;
pub mod json;
pub mod search;
