//! The `provsearch` command: a thin shell over `provsearch-ingest` and `provsearch-index`.
//!
//! Exit codes: 0 success (whatever the verdict), 1 a model or file could not be read or written, 2 bad usage.

mod flags;
mod output;

use anyhow::{Context, Result};
use clap::Parser;
use flags::{Cli, Command, ModelArgs};
use provsearch_index::score::{compare_with, ScoreConfig};
use provsearch_index::Fingerprint;
use provsearch_ingest::{fingerprint, vocab::exact_jaccard, Extracted, FingerprintOptions};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn options(args: &ModelArgs, id: Option<String>) -> FingerprintOptions {
    FingerprintOptions {
        id,
        hf_cache: args.hf_cache.clone(),
        skip_digests: args.no_digest,
    }
}

/// A model to compare: freshly extracted, or a saved fingerprint.
enum Loaded {
    Extracted(Box<Extracted>),
    Saved(Box<Fingerprint>),
}

impl Loaded {
    fn fingerprint(&self) -> &Fingerprint {
        match self {
            Loaded::Extracted(e) => &e.fingerprint,
            Loaded::Saved(f) => f,
        }
    }
}

fn load_saved(path: &Path) -> Result<Fingerprint> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a provsearch fingerprint", path.display()))
    } else {
        rkyv::from_bytes::<Fingerprint, rkyv::rancor::Error>(&bytes)
            .with_context(|| format!("{}: not a provsearch fingerprint", path.display()))
    }
}

fn is_saved_fingerprint(spec: &str) -> bool {
    let p = Path::new(spec);
    p.is_file() && p.extension().is_some_and(|e| e == "json" || e == "rkyv")
}

fn load(spec: &str, args: &ModelArgs) -> Result<Loaded> {
    if is_saved_fingerprint(spec) {
        return Ok(Loaded::Saved(Box::new(load_saved(Path::new(spec))?)));
    }
    let extracted = fingerprint(spec, &options(args, None))
        .with_context(|| format!("cannot fingerprint {spec}"))?;
    Ok(Loaded::Extracted(Box::new(extracted)))
}

fn write_fingerprint(f: &Fingerprint, path: &Path) -> Result<()> {
    let bytes = if path.extension().is_some_and(|e| e == "json") {
        serde_json::to_vec_pretty(f)?
    } else {
        rkyv::to_bytes::<rkyv::rancor::Error>(f)?.to_vec()
    };
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

fn run(cli: Cli) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Fingerprint {
            model,
            json,
            output,
            id,
            model_args,
        } => {
            let extracted = fingerprint(&model, &options(&model_args, id))
                .with_context(|| format!("cannot fingerprint {model}"))?;
            let f = &extracted.fingerprint;
            if let Some(path) = &output {
                write_fingerprint(f, path)?;
            }
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
        }
        Command::Compare {
            a,
            b,
            json,
            model_args,
        } => {
            let (la, lb) = rayon_join(|| load(&a, &model_args), || load(&b, &model_args));
            let (la, lb) = (la?, lb?);
            let exact_voa = match (&la, &lb) {
                (Loaded::Extracted(x), Loaded::Extracted(y)) => {
                    match (&x.vocabulary, &y.vocabulary) {
                        (Some(va), Some(vb)) => Some(exact_jaccard(va, vb)),
                        _ => None,
                    }
                }
                _ => None,
            };
            let (fa, fb) = (la.fingerprint(), lb.fingerprint());
            let c = compare_with(fa, fb, exact_voa, &ScoreConfig::default());
            if json {
                serde_json::to_writer_pretty(&mut stdout, &output::json::comparison(fa, fb, &c))?;
                writeln!(stdout)?;
            } else {
                write!(stdout, "{}", output::human::comparison(fa, fb, &c))?;
            }
        }
    }
    Ok(())
}

/// Run two closures on two threads (fingerprinting both sides of a compare at once).
fn rayon_join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    std::thread::scope(|s| {
        let hb = s.spawn(b);
        let ra = a();
        (
            ra,
            hb.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    })
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`provsearch ... | head`) is not an error.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("provsearch: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
