//! `provsearch compare`: fingerprint two models (in parallel) and print the verdict with its evidence.

use super::models::{fetch_if_asked, is_saved_fingerprint, load, Loaded};
use crate::flags::ModelArgs;
use crate::output;
use anyhow::Result;
use provsearch_index::score::compare_with;
use provsearch_ingest::locate::locate;
use provsearch_ingest::vocab::exact_jaccard;
use std::io::Write;
use std::path::Path;

/// Run the command.
pub fn run(a: &str, b: &str, json: bool, config: Option<&Path>, args: &ModelArgs) -> Result<()> {
    let config = super::eval::load_config(config)?;
    // Downloads (with --download) one after the other, so their progress bars do not overlap.
    fetch_if_asked(a, args)?;
    fetch_if_asked(b, args)?;
    // Weight files of different total sizes cannot be byte-identical, so neither content digest can change the
    // verdict: skip both (the digest is the one pass over every byte of a local model).
    let mut args = args.clone();
    if let (Some(x), Some(y)) = (weight_bytes(a, &args), weight_bytes(b, &args)) {
        args.no_digest |= x != y;
    }
    let args = &args;
    let (la, lb) = std::thread::scope(|s| {
        let hb = s.spawn(|| load(b, args));
        let la = load(a, args);
        (
            la,
            hb.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    let (la, lb) = (la?, lb?);
    let exact_voa = match (&la, &lb) {
        (Loaded::Extracted(x), Loaded::Extracted(y)) => match (&x.vocabulary, &y.vocabulary) {
            (Some(va), Some(vb)) => Some(exact_jaccard(va, vb)),
            _ => None,
        },
        _ => None,
    };
    let (fa, fb) = (la.fingerprint(), lb.fingerprint());
    let c = compare_with(fa, fb, exact_voa, &config);
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &output::json::comparison(fa, fb, &c))?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{}", output::human::comparison(fa, fb, &c))?;
    }
    Ok(())
}

/// Total size of a model's weight files, when `spec` names a model that can be located (not a saved
/// fingerprint) and every file's size can be read; `None` otherwise, and the digests are then computed as usual.
fn weight_bytes(spec: &str, args: &ModelArgs) -> Option<u64> {
    if is_saved_fingerprint(spec) {
        return None;
    }
    let location = locate(spec, args.hf_cache.as_deref()).ok()?;
    if location.weight_files.is_empty() {
        return None;
    }
    location
        .weight_files
        .iter()
        .map(|f| std::fs::metadata(f).ok().map(|m| m.len()))
        .sum()
}
