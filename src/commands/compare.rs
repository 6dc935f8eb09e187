//! `provsearch compare`: fingerprint two models (in parallel) and print the verdict with its evidence.

use super::models::{fetch_if_asked, load, Loaded};
use crate::flags::ModelArgs;
use crate::output;
use anyhow::Result;
use provsearch_index::score::compare_with;
use provsearch_ingest::vocab::exact_jaccard;
use std::io::Write;
use std::path::Path;

/// Run the command.
pub fn run(a: &str, b: &str, json: bool, config: Option<&Path>, args: &ModelArgs) -> Result<()> {
    let config = super::eval::load_config(config)?;
    // Downloads (with --download) one after the other, so their progress bars do not overlap.
    fetch_if_asked(a, args)?;
    fetch_if_asked(b, args)?;
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
