//! CLI of the zoo trainer: `train` one model, `manifest` to collect the runs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use provsearch_trainer::model::Arch;
use provsearch_trainer::train::{self, Spec};
use provsearch_trainer::{shell_join, tok};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(
    name = "provsearch-trainer",
    about = "Train the provsearch lineage zoo"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train (or derive) one model and write its snapshot directory.
    Train(Box<TrainArgs>),
    /// Train a byte-level BPE tokenizer and write tokenizer.json.
    Tokenizer {
        #[arg(long, required = true, num_args = 1..)]
        data: Vec<PathBuf>,
        #[arg(long, default_value_t = 2048)]
        vocab_size: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Collect run records into the zoo MANIFEST.json.
    Manifest {
        /// Directory of <name>.json records written by `train --record-dir`.
        #[arg(long)]
        records: PathBuf,
        /// Model names, in manifest order.
        #[arg(long, value_delimiter = ',', required = true)]
        order: Vec<String>,
        /// Where the snapshots live, as written into the manifest.
        #[arg(long, default_value = "datasets/zoo/trained")]
        root: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// Model name (the snapshot directory name).
    #[arg(long)]
    name: String,
    /// Family label, e.g. "L" (the Llama lineage) or "G".
    #[arg(long)]
    family: String,
    /// Constitution category, e.g. fine-tuning, independent-reproduction.
    #[arg(long)]
    mechanism: String,
    /// Prose for the model card.
    #[arg(long, default_value = "")]
    description: String,
    #[arg(long, default_value = "provsearch-zoo")]
    hub_prefix: String,
    /// `base_model_relation:` for the card (finetune, quantized, adapter, merge).
    #[arg(long)]
    relation: Option<String>,
    /// For traps: models this one resembles but is not derived from.
    #[arg(long, value_delimiter = ',')]
    independent_of: Vec<String>,

    /// Start from this snapshot directory (its weights, config and tokenizer).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Distil from this teacher snapshot (student starts fresh).
    #[arg(long)]
    teacher: Option<PathBuf>,
    #[arg(long, default_value_t = 2.0)]
    temperature: f64,
    /// Remove these layers of the parent (structural pruning).
    #[arg(long, value_delimiter = ',')]
    drop_layers: Vec<usize>,
    /// Keep this many MLP neurons per layer of the parent (width pruning).
    #[arg(long)]
    prune_mlp: Option<usize>,
    /// Keep this many residual-stream channels of the parent (hidden-size
    /// pruning, llama only; heads keep their width via an explicit head_dim).
    #[arg(long)]
    prune_hidden: Option<usize>,
    /// Widen the parent's residual stream to this many channels (scaled
    /// transfer, Net2WiderNet; llama only; heads keep their width).
    #[arg(long)]
    grow_hidden: Option<usize>,
    /// Depth up-scaling: comma-separated parent layer indices, new layer i is
    /// a copy of parent layer SPEC[i] (e.g. 0,1,2,1,2,3). Applied first.
    #[arg(long, value_name = "SPEC")]
    stack_layers: Option<String>,

    #[arg(long, value_enum, default_value = "llama")]
    arch: Arch,
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    #[arg(long, default_value_t = 2)]
    layers: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// MLP width (default: Llama 8/3·hidden rounded to 16, GPT-2 4·hidden).
    #[arg(long)]
    intermediate: Option<usize>,
    /// max_position_embeddings / n_positions.
    #[arg(long, default_value_t = 128)]
    max_positions: usize,

    /// tokenizer.json to use (default: the --init or --teacher snapshot's).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Train a fresh tokenizer on these files.
    #[arg(long, num_args = 1..)]
    train_tokenizer_on: Vec<PathBuf>,
    #[arg(long, default_value_t = 2048)]
    tokenizer_vocab: usize,
    /// Extend the tokenizer with merges learned on these files.
    #[arg(long, num_args = 1..)]
    extend_tokenizer_on: Vec<PathBuf>,
    #[arg(long, default_value_t = 200)]
    extend_tokens: usize,

    /// Training text files.
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    steps: usize,
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 64)]
    seq: usize,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    #[arg(long, default_value_t = 1.0)]
    clip: f64,
    #[arg(long, default_value_t = 100)]
    log_every: usize,

    /// Snapshot directory to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write <name>.json (the manifest record) here.
    #[arg(long)]
    record_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Train(a) => {
            // The thread settings are part of the recipe (one thread: same bytes).
            let env: String = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"]
                .iter()
                .filter_map(|k| {
                    std::env::var(k)
                        .ok()
                        .map(|v| format!("{k}={} ", shell_join([v])))
                })
                .collect();
            let command = env + &shell_join(std::env::args());
            let spec = Spec {
                name: a.name,
                family: a.family,
                mechanism: a.mechanism,
                description: a.description,
                hub_prefix: a.hub_prefix,
                relation: a.relation,
                independent_of: a.independent_of,
                init: a.init,
                teacher: a.teacher,
                temperature: a.temperature,
                drop_layers: a.drop_layers,
                prune_mlp: a.prune_mlp,
                prune_hidden: a.prune_hidden,
                grow_hidden: a.grow_hidden,
                stack_layers: a
                    .stack_layers
                    .as_deref()
                    .map(train::parse_layer_spec)
                    .transpose()?,
                arch: a.arch,
                hidden: a.hidden,
                layers: a.layers,
                heads: a.heads,
                intermediate: a.intermediate,
                max_positions: a.max_positions,
                tokenizer: a.tokenizer,
                train_tokenizer_on: a.train_tokenizer_on,
                tokenizer_vocab: a.tokenizer_vocab,
                extend_tokenizer_on: a.extend_tokenizer_on,
                extend_tokens: a.extend_tokens,
                data: a.data,
                seed: a.seed,
                steps: a.steps,
                batch: a.batch,
                seq: a.seq,
                lr: a.lr,
                warmup: a.warmup,
                weight_decay: a.weight_decay,
                clip: a.clip,
                log_every: a.log_every,
                out: a.out,
                record_dir: a.record_dir,
                command,
            };
            train::run(&spec)?;
        }
        Cmd::Tokenizer {
            data,
            vocab_size,
            out,
        } => {
            let tk = tok::train_bpe(&data, vocab_size)?;
            std::fs::write(&out, tok::to_json(&tk)?)?;
        }
        Cmd::Manifest {
            records,
            order,
            root,
            out,
        } => {
            let mut models = Vec::new();
            for name in &order {
                let p = records.join(format!("{name}.json"));
                let mut r: Value = serde_json::from_str(
                    &std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?,
                )?;
                let obj = r.as_object_mut().context("record is not an object")?;
                // Timing varies run to run; it lives in trainer/README.md, not here.
                obj.remove("train_seconds");
                obj.insert("path".into(), Value::from(format!("{root}/{name}")));
                models.push(r);
            }
            let manifest = json!({
                "description": "Trained lineage zoo. Two models are related (provenance-linked) iff one is reachable from the other through `parents` (constitution C1-C5: direct descent, distillation, mechanical transformation, transitivity); every other pair is independent. Models with parents = null were trained from scratch; their `mechanism` names the independent category that makes them a trap, and `independent_of` the model they resemble (they are independent of it and of all its descendants too). Distillation students share no weights with their teacher and may be undetectable by weight signals.",
                "regenerate": "cd trainer && ./fetch-corpus.sh && ./train-zoo.sh",
                "hub_prefix": "provsearch-zoo",
                "models": models,
            });
            std::fs::write(&out, serde_json::to_string_pretty(&manifest)? + "\n")?;
        }
    }
    Ok(())
}
