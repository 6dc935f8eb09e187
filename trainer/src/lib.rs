//! provsearch-trainer: trains the tiny lineage zoo (models derived from one
//! another, and look-alikes that are not) that provsearch is tested on.
//!
//! Flow of one run ([`train::run`]):
//! 1. resolve the tokenizer (a file, trained here, or the parent's extended),
//! 2. build the model: fresh from a seed, or a parent snapshot, optionally
//!    pruned (layers / MLP width / residual width), grown (residual width,
//!    stacked layers) or with extended vocabulary rows,
//! 3. train with AdamW on cross-entropy or on a teacher's soft outputs,
//! 4. write a Hugging Face snapshot (F16 safetensors, config, tokenizer, card).
//!
//! Not part of the product: the root workspace excludes this crate.

pub mod checkpoint;
pub mod data;
pub mod model;
pub mod rng;
pub mod tok;
pub mod train;

/// Quote `args` for a POSIX shell (only where needed).
pub fn shell_join<I: IntoIterator<Item = String>>(args: I) -> String {
    args.into_iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
