//! provsearch-formats: dependency-light, fuzzable parsers for the files a model checkpoint is made of.
//!
//! Every parser takes a path (for error messages) and the file's bytes or text, validates before it trusts,
//! and returns a typed [`Error`] that names the file and the problem. Nothing here executes anything from a
//! model repository: pickle files are refused, never opened.
//!
//! - [`safetensors`]: memory-mapped safetensors files and sharded-checkpoint indexes.
//! - [`dtype`]: stored element types and their conversion to `f32`.
//! - [`config`]: `config.json` with the reference's alias table.
//! - [`tokenizer`]: tokenizer files of every common kind into one [`tokenizer::Vocabulary`].
//! - [`card`]: README front matter.
//! - [`python_json`]: JSON with the `NaN`/`Infinity` words Python's `json` writes (config files).
//! - [`strings`]: lists of many short strings in one buffer.
//! - [`mapped`]: read-only memory maps of weight files that give their pages back in batches.
//! - [`fuzzing`]: the fuzz entry points (never panic on any input).
#![warn(missing_docs)]

pub mod card;
pub mod config;
pub mod dtype;
pub mod error;
pub mod fuzzing;
pub mod gguf;
pub mod mapped;
pub mod python_json;
pub mod safetensors;
pub mod strings;
pub mod tokenizer;

pub use error::{Error, Result};
