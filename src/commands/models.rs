//! Loading models for commands: a path or Hub id is fingerprinted, a saved fingerprint file is read.

use crate::flags::ModelArgs;
use anyhow::{Context, Result};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use provsearch_index::Fingerprint;
use provsearch_ingest::download::{ensure_cached, is_hub_spec, DownloadProgress, HubOptions};
use provsearch_ingest::{fingerprint, Extracted, FingerprintOptions};
use std::io::IsTerminal;
use std::path::Path;

/// Library options from the shared model flags.
pub fn options(args: &ModelArgs, id: Option<String>) -> FingerprintOptions {
    FingerprintOptions {
        id,
        hf_cache: args.hf_cache.clone(),
        skip_digests: args.no_digest,
        sha256: args.sha256,
        verify_digests: args.verify_digests,
    }
}

/// A progress bar per downloaded file on a terminal's stderr; nothing otherwise.
struct DownloadBar {
    bar: Option<ProgressBar>,
}

impl DownloadProgress for DownloadBar {
    fn start(&mut self, file: &str, size: u64) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message(file.to_string());
            self.bar = Some(bar);
        }
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// With `--download`, fetch a Hub id that the cache does not fully hold into the cache, so that it then
/// resolves offline. A no-op without the flag, for paths, and for ids the cache already holds.
pub fn fetch_if_asked(spec: &str, args: &ModelArgs) -> Result<()> {
    if !args.download || Path::new(spec).exists() || !is_hub_spec(spec) {
        return Ok(());
    }
    let hub = HubOptions::from_env(args.hf_cache.as_deref());
    let mut bar = DownloadBar { bar: None };
    let fetched = ensure_cached(spec, &hub, &mut bar)?;
    bar.finish();
    if !fetched.files.is_empty() {
        eprintln!(
            "provsearch: downloaded {spec} (commit {}): {} files, {}, from {} into {}",
            fetched.commit,
            fetched.files.len(),
            HumanBytes(fetched.bytes),
            hub.endpoint,
            hub.cache_dir.display()
        );
    }
    Ok(())
}

/// A model given on the command line: freshly extracted, or a saved fingerprint.
pub enum Loaded {
    /// Fingerprinted now (the vocabulary is at hand for exact VOA).
    Extracted(Box<Extracted>),
    /// Read from a file written by `fingerprint -o`.
    Saved(Box<Fingerprint>),
}

impl Loaded {
    /// The fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        match self {
            Loaded::Extracted(e) => &e.fingerprint,
            Loaded::Saved(f) => f,
        }
    }
}

/// Read a fingerprint file (`.json`, else rkyv).
pub fn load_saved(path: &Path) -> Result<Fingerprint> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a provsearch fingerprint", path.display()))
    } else {
        rkyv::from_bytes::<Fingerprint, rkyv::rancor::Error>(&bytes)
            .with_context(|| format!("{}: not a provsearch fingerprint", path.display()))
    }
}

/// Whether `spec` names a fingerprint file written by `fingerprint -o` (`.json` or `.rkyv`).
pub fn is_saved_fingerprint(spec: &str) -> bool {
    let p = Path::new(spec);
    p.is_file() && p.extension().is_some_and(|e| e == "json" || e == "rkyv")
}

/// Load a model named on the command line (a Hub id must be in the cache: see [`fetch_if_asked`]).
pub fn load(spec: &str, args: &ModelArgs) -> Result<Loaded> {
    if is_saved_fingerprint(spec) {
        return Ok(Loaded::Saved(Box::new(load_saved(Path::new(spec))?)));
    }
    let extracted = fingerprint(spec, &options(args, None))
        .with_context(|| format!("cannot fingerprint {spec}"))?;
    Ok(Loaded::Extracted(Box::new(extracted)))
}

/// Write a fingerprint file (`.json`, else rkyv).
pub fn write_fingerprint(f: &Fingerprint, path: &Path) -> Result<()> {
    let bytes = if path.extension().is_some_and(|e| e == "json") {
        serde_json::to_vec_pretty(f)?
    } else {
        rkyv::to_bytes::<rkyv::rancor::Error>(f)?.to_vec()
    };
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}
