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
    /// ~/.cache/huggingface/hub). The network is used only with --download.
    #[arg(long, value_name = "DIR")]
    pub hf_cache: Option<PathBuf>,
    /// Fetch a Hub id that the cache does not fully hold from the Hub ($HF_ENDPOINT, token from $HF_TOKEN)
    /// into the cache: config, tokenizer, model card and the safetensors or GGUF weights only, never pickle
    /// or code. Without it the network is never used.
    #[arg(long)]
    pub download: bool,
    /// Skip the BLAKE3 content digests of the weight files (byte-identity is then not detected).
    #[arg(long)]
    pub no_digest: bool,
    /// Also compute the SHA-256 of every weight file (free for Hugging Face cache snapshots, whose blobs are
    /// named by it, and `--local-dir` downloads, which record it; otherwise it costs about five times a read
    /// of the files).
    #[arg(long)]
    pub sha256: bool,
    /// Hash weight files whose SHA-256 the Hub's tools recorded (a cache blob's name, a `--local-dir` download
    /// record) and check them against it (trusted otherwise, which spares a pass over the bytes): a file that
    /// does not match is an error naming it and the record.
    #[arg(long, conflicts_with = "no_digest")]
    pub verify_digests: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fingerprint one model and print a summary (or the whole fingerprint with --json).
    Fingerprint {
        /// A model directory, a .safetensors/.gguf file, or a Hub id `org/name[@revision]` in the local cache
        /// (fetched from the Hub with --download); `org/name[@revision]:FILE.gguf` names one GGUF file of it.
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
        /// Score with a configuration written by `eval --calibrate` (default: the built-in one).
        #[arg(long, value_name = "CALIB.json")]
        config: Option<PathBuf>,
        #[command(flatten)]
        model_args: ModelArgs,
    },
    /// Fingerprint models and add them to an index (resumable; a new revision replaces the old one).
    Ingest(IngestArgs),
    /// Search an index.
    #[command(subcommand)]
    Query(QueryCommand),
    /// Keep an index open (HNSW graphs loaded) and answer queries on a loopback port; `query` uses it.
    Serve {
        #[command(flatten)]
        index: IndexArg,
        /// Address to listen on (loopback only by default; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
        listen: String,
    },
    /// Maintain an index.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Evaluate the verdicts on labelled model pairs (the lineage zoo); optionally calibrate the score.
    Eval(EvalArgs),
}

/// The index directory option.
#[derive(Debug, Clone, clap::Args)]
pub struct IndexArg {
    /// Index directory (default: $PROVSEARCH_INDEX, else the platform data directory).
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
}

/// `provsearch ingest` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Model directories, .safetensors/.gguf files, or directories to walk for models (HF cache layout
    /// included). Each GGUF model of a directory that holds several is ingested as `<id>/<file stem>`.
    #[arg(required_unless_present = "hf_cache_walk")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub index: IndexArg,
    /// Also ingest every snapshot of a Hugging Face cache (default cache when DIR is omitted).
    #[arg(long = "hf-cache", value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub hf_cache_walk: Option<PathBuf>,
    /// Models fingerprinted in parallel.
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Only ingest the models of shard I of N (by a hash of the model id), for parallel workers.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Model id to record (only with a single model).
    #[arg(long)]
    pub id: Option<String>,
    /// Commit after every N models.
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub commit_every: usize,
    /// Print a JSON Lines report (one line per model, then a summary line).
    #[arg(long)]
    pub json: bool,
    /// Skip the content digests of the weight files (faster; byte-identity and resumption of unversioned
    /// directories are then weaker).
    #[arg(long)]
    pub no_digest: bool,
    /// Hash weight files whose SHA-256 the Hub's tools recorded (a cache blob's name, a `--local-dir` download
    /// record) and check them against it (trusted otherwise, which spares a pass over the bytes): a file that
    /// does not match is an error naming it and the record.
    #[arg(long, conflicts_with = "no_digest")]
    pub verify_digests: bool,
}

/// `provsearch query` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Rank the indexed models by how likely they share weight lineage with MODEL.
    Model {
        /// A model id in the index, a model directory or file, or a Hub id in the local cache (fetched with
        /// --download when it is not in the index).
        model: String,
        #[command(flatten)]
        index: IndexArg,
        /// Results to show.
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        /// Approximate candidates rescored exactly.
        #[arg(long, default_value_t = 100)]
        candidates: usize,
        /// Only consider models matching this metadata query (tantivy syntax, e.g. `model_type:llama`).
        #[arg(long, value_name = "QUERY")]
        filter: Option<String>,
        /// Rescore every model in the index (slow; the ground truth).
        #[arg(long)]
        exact: bool,
        /// Share (0 to 1) of each large segment's records also taken as candidates from a linear scan of its
        /// sign sketches: it finds weak relatives that the graph search misses, at about 2 ms per million
        /// records. 0 searches the graph alone: faster at scale, but it misses weak relatives in small
        /// families (docs/index.md, Sketches).
        #[arg(long, default_value_t = provsearch_index::search::DEFAULT_SKETCH_SHARE, value_name = "FRACTION", value_parser = parse_share)]
        sketch_share: f64,
        /// Print one JSON document.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV.
        #[arg(long)]
        csv: bool,
        /// Do not use a running `provsearch serve`.
        #[arg(long)]
        no_server: bool,
        #[command(flatten)]
        model_args: ModelArgs,
    },
    /// Search the indexed metadata (model id, organisation, type, tags, license, base model, ...).
    Text {
        /// tantivy query, e.g. `llama license:apache-2.0` or `base_model:meta-llama/Llama-2-7b-hf`.
        query: String,
        #[command(flatten)]
        index: IndexArg,
        /// Results to show.
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        /// Print one JSON document.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV.
        #[arg(long)]
        csv: bool,
    },
}

/// `provsearch index` subcommands.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Counts, sizes and configuration.
    Stats {
        #[command(flatten)]
        index: IndexArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check every file's checksum and every record's structure; names the first damaged file.
    Verify {
        #[command(flatten)]
        index: IndexArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Merge all segments into one, dropping deleted records, and rebuild the graph.
    Compact {
        #[command(flatten)]
        index: IndexArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Join indexes built separately (e.g. by `ingest --shard I/N` workers) into OUT.
    Merge {
        /// Output index (created if missing).
        out: PathBuf,
        /// Input indexes.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `provsearch eval` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Pairs file (CSV `a,b,label,category,difficulty,split,detail`), e.g. datasets/pairs.csv.
    pub pairs: PathBuf,
    /// Zoo root that the pairs' model paths are relative to (made by `cargo run -p datasets --bin zoo`).
    #[arg(long, default_value = ".cache/zoo", value_name = "DIR")]
    pub zoo: PathBuf,
    /// Pairs to evaluate.
    #[arg(long, value_enum, default_value = "report")]
    pub split: SplitArg,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Draw the score distributions of related and independent pairs, with the threshold, as SVG.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Fit weights, baselines and threshold on the calibration split, write them to OUT.json and evaluate
    /// with them.
    #[arg(long, value_name = "OUT.json", conflicts_with = "config")]
    pub calibrate: Option<PathBuf>,
    /// Score with a configuration written by --calibrate (default: the built-in one).
    #[arg(long, value_name = "CALIB.json")]
    pub config: Option<PathBuf>,
    /// Exit non-zero when the specificity on the evaluated pairs is below this.
    #[arg(long, default_value_t = 1.0, value_name = "RATE")]
    pub min_specificity: f64,
    /// Leave out pairs whose models are missing from the zoo (instead of failing).
    #[arg(long)]
    pub skip_missing: bool,
}

/// Which split of a pairs file to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// The held-out pairs results are reported on.
    Report,
    /// The pairs calibration fits on.
    Calibration,
    /// Every pair.
    All,
}

/// A fraction in [0, 1] (`--sketch-share`).
fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        Ok(_) => Err(format!("{text} is not between 0 and 1")),
        Err(e) => Err(format!("{text}: {e}")),
    }
}
