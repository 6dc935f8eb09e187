//! `provsearch index stats|verify|compact|merge`, and where the index lives by default.

use crate::flags::{IndexArg, IndexCommand};
use crate::output;
use anyhow::{Context, Result};
use provsearch_index::writer::{IndexWriter, WriterOptions};
use provsearch_index::IndexReader;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

/// The index directory: `--index`, else `$PROVSEARCH_INDEX`, else the platform data directory
/// (`$XDG_DATA_HOME/provsearch/index`, `~/.local/share/provsearch/index`, or on macOS
/// `~/Library/Application Support/provsearch/index`).
pub fn index_dir(arg: &IndexArg) -> Result<PathBuf> {
    if let Some(d) = &arg.index {
        return Ok(d.clone());
    }
    if let Some(d) = std::env::var_os("PROVSEARCH_INDEX").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("provsearch").join("index"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("no index directory: pass --index DIR or set PROVSEARCH_INDEX")?;
    let base = if cfg!(target_os = "macos") {
        PathBuf::from(home)
            .join("Library")
            .join("Application Support")
    } else {
        PathBuf::from(home).join(".local").join("share")
    };
    Ok(base.join("provsearch").join("index"))
}

/// Open an index for reading, with the directory in the error.
pub fn open_reader(arg: &IndexArg) -> Result<IndexReader> {
    let dir = index_dir(arg)?;
    IndexReader::open(&dir).with_context(|| format!("cannot open index {}", dir.display()))
}

/// Run the command.
pub fn run(command: IndexCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        IndexCommand::Stats { index, json } => {
            let stats = open_reader(&index)?.stats();
            if json {
                serde_json::to_writer_pretty(&mut out, &stats)?;
                writeln!(out)?;
            } else {
                write!(out, "{}", output::search::index_stats(&stats))?;
            }
        }
        IndexCommand::Verify { index, json } => {
            let reader = open_reader(&index)?;
            let records = reader
                .verify()
                .with_context(|| format!("index {} failed verification", reader.dir().display()))?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"ok": true, "records": records, "segments": reader.segments().len(), "generation": reader.manifest().generation})
                )?;
            } else {
                writeln!(
                    out,
                    "ok: {records} records in {} segments (generation {}) match their checksums",
                    reader.segments().len(),
                    reader.manifest().generation
                )?;
            }
        }
        IndexCommand::Compact { index, json } => {
            let dir = index_dir(&index)?;
            let mut w = IndexWriter::open(&dir, WriterOptions::default())
                .with_context(|| format!("cannot open index {} for writing", dir.display()))?;
            let (kept, dropped) = w.compact().context("compaction failed")?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"kept": kept, "dropped": dropped, "generation": w.committed().manifest().generation})
                )?;
            } else {
                writeln!(
                    out,
                    "compacted: {kept} records kept, {dropped} deleted records dropped"
                )?;
            }
        }
        IndexCommand::Merge {
            out: target,
            inputs,
            json,
        } => {
            let mut w = IndexWriter::open(&target, WriterOptions::default())
                .with_context(|| format!("cannot open index {} for writing", target.display()))?;
            let mut total = 0;
            for input in &inputs {
                total += w
                    .absorb(input)
                    .with_context(|| format!("cannot merge {}", input.display()))?;
            }
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"added": total, "inputs": inputs.len(), "generation": w.committed().manifest().generation})
                )?;
            } else {
                writeln!(
                    out,
                    "merged {} indexes: {total} records added to {}",
                    inputs.len(),
                    target.display()
                )?;
            }
        }
    }
    Ok(())
}
