//! Command-line flags (clap derive). Everything here is plain data; `main.rs` turns it into library calls.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// provsearch: which known model is this checkpoint derived from?
#[derive(Debug, Parser)]
#[command(name = "provsearch", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command that reads models.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Hugging Face cache directory used to resolve Hub ids (default: $HF_HUB_CACHE, $HF_HOME/hub,
    /// ~/.cache/huggingface/hub). The network is never used.
    #[arg(long, value_name = "DIR")]
    pub hf_cache: Option<PathBuf>,
    /// Skip the BLAKE3 content digests of the weight files (byte-identity is then not detected).
    #[arg(long)]
    pub no_digest: bool,
    /// Also compute the SHA-256 of every weight file (free for Hugging Face cache snapshots, whose blobs are
    /// named by it; otherwise it costs about five times a read of the files).
    #[arg(long)]
    pub sha256: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fingerprint one model and print a summary (or the whole fingerprint with --json).
    Fingerprint {
        /// A model directory, a .safetensors/.gguf file, or a Hub id `org/name[@revision]` in the local cache.
        model: String,
        /// Print the fingerprint as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the fingerprint to FILE (`.json`, or rkyv binary for any other extension).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Model id to record (default: from the path or Hub id).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        model_args: ModelArgs,
    },
    /// Compare two models (or saved fingerprints) and give a verdict with evidence.
    Compare {
        /// First model (directory, weight file, Hub id, or a fingerprint written by `fingerprint -o`).
        a: String,
        /// Second model.
        b: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        model_args: ModelArgs,
    },
}
