//! `provsearch fingerprint`: fingerprint one model, print a summary or the JSON, optionally save it.

use super::models::{fetch_if_asked, options, write_fingerprint};
use crate::flags::ModelArgs;
use crate::output;
use anyhow::{Context, Result};
use provsearch_ingest::fingerprint;
use std::io::Write;
use std::path::PathBuf;

/// Run the command.
pub fn run(
    model: &str,
    json: bool,
    output_path: Option<&PathBuf>,
    id: Option<String>,
    args: &ModelArgs,
) -> Result<()> {
    fetch_if_asked(model, args)?;
    let extracted = fingerprint(model, &options(args, id))
        .with_context(|| format!("cannot fingerprint {model}"))?;
    let f = &extracted.fingerprint;
    if let Some(path) = output_path {
        write_fingerprint(f, path)?;
    }
    // Buffered: the JSON holds the whole vocabulary, one line per token, and a locked stdout is
    // line-buffered (a write call per line).
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut stdout, f)?;
        writeln!(stdout)?;
    } else {
        write!(
            stdout,
            "{}",
            output::human::fingerprint(f, f.archived_size())
        )?;
    }
    stdout.flush()?;
    Ok(())
}
