//! `zoo`: generate the lineage zoo and its labelled pairs.
//!
//! ```text
//! zoo --out DIR [--trained DIR] [--minilm DIR] [--pairs FILE] [--check-pairs FILE]
//! ```
//! - `--out DIR`: zoo root to fill (`DIR/trained` and `DIR/real/minilm` become links, `DIR/gen/*` is generated;
//!   models already up to date are kept);
//! - `--trained DIR`: the committed trained zoo (default: `datasets/zoo/trained`);
//! - `--minilm DIR`: the all-MiniLM-L6-v2 snapshot (default: `.cache/test-models/minilm` when fetched; without
//!   it the MiniLM derivations are skipped);
//! - `--pairs FILE`: (re)write the labelled pairs file;
//! - `--check-pairs FILE`: fail if FILE differs from the pairs the recipes define.
//!
//! Example: `cargo run --release -p datasets --bin zoo -- --out .cache/zoo`.

use anyhow::{bail, Context, Result};
use datasets::zoo::{self, pairs, Sources};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut sources = Sources::from_checkout();
    let (mut out, mut pairs_out, mut check) = (None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--trained" => sources.trained = PathBuf::from(value()?),
            "--minilm" => sources.minilm = Some(PathBuf::from(value()?)),
            "--pairs" => pairs_out = Some(PathBuf::from(value()?)),
            "--check-pairs" => check = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("usage: zoo --out DIR [--trained DIR] [--minilm DIR] [--pairs FILE] [--check-pairs FILE]");
                return Ok(());
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    if out.is_none() && pairs_out.is_none() && check.is_none() {
        bail!("nothing to do: give --out DIR, --pairs FILE or --check-pairs FILE");
    }
    let labelled = pairs::labelled_pairs(&sources.trained.join("MANIFEST.json"))?;
    let csv = pairs::to_csv(&labelled);
    if let Some(path) = &pairs_out {
        std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("zoo: wrote {} pairs to {}", labelled.len(), path.display());
    }
    if let Some(path) = &check {
        let current =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        if current != csv {
            bail!(
                "{} is out of date: regenerate it with --pairs",
                path.display()
            );
        }
    }
    if let Some(root) = &out {
        if sources.minilm.is_none() {
            eprintln!("zoo: MiniLM not found (run scripts/fetch-test-models.sh); skipping its derivations");
        }
        let start = Instant::now();
        let summary = zoo::generate(root, &sources)?;
        eprintln!(
            "zoo: {} built, {} up to date, {} skipped (no MiniLM) in {:.1}s → {}",
            summary.built.len(),
            summary.cached.len(),
            summary.skipped.len(),
            start.elapsed().as_secs_f64(),
            root.display()
        );
    }
    Ok(())
}
