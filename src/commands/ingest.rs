//! `provsearch ingest`: find models under the given paths (snapshot directories, .safetensors/.gguf files,
//! Hugging Face cache layouts), fingerprint them in parallel, and add them to the index, committing every N
//! models. Resumable (committed id + revision + content digest → skipped), a new revision replaces the old
//! one, and a model that fails is recorded with its reason without stopping the rest. A directory holding
//! several GGUF models yields each as its own model (`<id>/<file stem>`); the parts of a gguf-split model are
//! one model.

use super::index::index_dir;
use crate::flags::IngestArgs;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use provsearch_formats::gguf::split::SplitName;
use provsearch_index::writer::{AddOutcome, IndexWriter, WriterOptions};
use provsearch_ingest::locate::{hf_cache_dir, locate_all, ModelLocation};
use provsearch_ingest::{fingerprint_location, FingerprintOptions};
use rayon::prelude::*;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

/// A model found by the walk (or a path that could not be located, with the reason).
#[derive(Debug)]
struct Found {
    spec: PathBuf,
    location: std::result::Result<ModelLocation, String>,
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn is_model_dir(dir: &Path) -> bool {
    if !dir.join("config.json").is_file() {
        return false;
    }
    dir.join("model.safetensors.index.json").is_file()
        || std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .any(|e| has_ext(&e.path(), &["safetensors", "gguf"]))
            })
            .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The snapshot a cache repo folder (`models--org--name`) stands for: `refs/main`, else the newest snapshot.
fn cache_snapshot(repo: &Path) -> Option<PathBuf> {
    if let Ok(commit) = std::fs::read_to_string(repo.join("refs").join("main")) {
        let s = repo.join("snapshots").join(commit.trim());
        if s.is_dir() {
            return Some(s);
        }
    }
    sorted_entries(&repo.join("snapshots"))
        .into_iter()
        .filter(|p| p.is_dir())
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

/// Every model at `spec` (a directory can hold several GGUF models, each found on its own and reported by its
/// first file), or the reason none could be located.
fn found(spec: &Path, out: &mut Vec<Found>) {
    match locate_all(spec) {
        Ok(models) if models.len() > 1 => out.extend(models.into_iter().map(|l| {
            Found {
                spec: l
                    .weight_files
                    .first()
                    .cloned()
                    .unwrap_or_else(|| spec.to_path_buf()),
                location: Ok(l),
            }
        })),
        Ok(models) => out.extend(models.into_iter().map(|l| Found {
            spec: spec.to_path_buf(),
            location: Ok(l),
        })),
        Err(e) => out.push(Found {
            spec: spec.to_path_buf(),
            location: Err(e.to_string()),
        }),
    }
}

fn walk(path: &Path, depth: usize, out: &mut Vec<Found>) {
    if path.is_file() {
        if has_ext(path, &["safetensors", "gguf"]) || depth == 0 {
            found(path, out);
        }
        return;
    }
    if !path.is_dir() {
        if depth == 0 {
            out.push(Found {
                spec: path.to_path_buf(),
                location: Err(format!("{}: no such file or directory", path.display())),
            });
        }
        return;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("models--") {
        if let Some(snapshot) = cache_snapshot(path) {
            found(&snapshot, out);
        }
        return;
    }
    if is_model_dir(path) {
        found(path, out);
        return;
    }
    if depth >= 8 {
        return;
    }
    // The parts of a gguf-split model are one model: only the first part present is walked.
    let mut splits = std::collections::HashSet::new();
    for child in sorted_entries(path) {
        let file_name = child
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if file_name.starts_with('.')
            || (child.is_file() && !has_ext(&child, &["safetensors", "gguf"]))
        {
            continue;
        }
        if let Some(split) = SplitName::parse(&file_name).filter(|_| child.is_file()) {
            if !splits.insert((split.prefix, split.count)) {
                continue;
            }
        }
        walk(&child, depth + 1, out);
    }
}

fn stable_hash(s: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn parse_shard(s: &str) -> Result<(u64, u64)> {
    let (i, n) = s.split_once('/').context("--shard takes I/N, e.g. 0/4")?;
    let (i, n): (u64, u64) = (i.trim().parse()?, n.trim().parse()?);
    if n == 0 || i >= n {
        bail!("--shard {s}: need 0 <= I < N");
    }
    Ok((i, n))
}

#[derive(Default)]
struct Summary {
    added: u64,
    replaced: u64,
    unchanged: u64,
    failed: u64,
    other_shards: u64,
}

/// Run the command.
pub fn run(args: &IngestArgs) -> Result<()> {
    let started = Instant::now();
    let dir = index_dir(&args.index)?;
    let mut found = Vec::new();
    for p in &args.paths {
        walk(p, 0, &mut found);
    }
    if let Some(cache) = &args.hf_cache_walk {
        let cache = if cache.as_os_str().is_empty() {
            hf_cache_dir(None)
        } else {
            cache.clone()
        };
        for repo in sorted_entries(&cache) {
            if repo
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("models--"))
            {
                walk(&repo, 1, &mut found);
            }
        }
    }
    if args.id.is_some() && found.len() > 1 {
        bail!("--id names one model, but {} were found", found.len());
    }
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    let mut summary = Summary::default();
    let total_found = found.len();
    if let Some((i, n)) = shard {
        found.retain(|f| {
            let id = match (&args.id, &f.location) {
                (Some(id), _) => id.clone(),
                (None, Ok(l)) => l.id.clone(),
                (None, Err(_)) => f.spec.display().to_string(),
            };
            stable_hash(&id) % n == i
        });
        summary.other_shards = (total_found - found.len()) as u64;
    }

    let mut writer = IndexWriter::open(&dir, WriterOptions::default())
        .with_context(|| format!("cannot open index {} for writing", dir.display()))?;
    let stdout = std::io::stdout();
    let emit = |v: serde_json::Value| {
        if args.json {
            let mut out = stdout.lock();
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
        }
    };

    // Already committed at this revision: skip without reading the weights.
    let mut todo = Vec::with_capacity(found.len());
    for f in found {
        if let Ok(l) = &f.location {
            let id = args.id.clone().unwrap_or_else(|| l.id.clone());
            if let Some(rev) = &l.revision {
                if writer.has_revision(&id, rev)? {
                    summary.unchanged += 1;
                    emit(
                        json!({"event": "model", "spec": f.spec, "id": id, "status": "unchanged"}),
                    );
                    continue;
                }
            }
        }
        todo.push(f);
    }

    let bar = if std::io::stderr().is_terminal() && !args.json {
        let b = ProgressBar::new(todo.len() as u64);
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .context("cannot start worker threads")?;
    let opts = FingerprintOptions {
        id: args.id.clone(),
        hf_cache: None,
        skip_digests: args.no_digest,
        sha256: false,
        verify_digests: args.verify_digests,
    };
    // Bounded: at most 2 × jobs fingerprints wait for the writer, whatever the number of models.
    let (tx, rx) = sync_channel(jobs * 2);
    let mut since_commit: Vec<String> = Vec::new();
    // Set when the writer fails: workers stop taking new models.
    let stop = AtomicBool::new(false);
    let written = std::thread::scope(|scope| -> Result<()> {
        let stop = &stop;
        let todo = &todo;
        let opts = &opts;
        scope.spawn(move || {
            pool.install(|| {
                todo.par_iter().for_each_with(tx, |tx, f| {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let result = match &f.location {
                        Ok(l) => fingerprint_location(l.clone(), opts)
                            .map(|e| e.fingerprint)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.clone()),
                    };
                    let _ = tx.send((f, result));
                });
            });
        });
        let consumed = (|| -> Result<()> {
            for (f, result) in rx {
                let id = match (&args.id, &f.location) {
                    (Some(id), _) => id.clone(),
                    (None, Ok(l)) => l.id.clone(),
                    (None, Err(_)) => f.spec.display().to_string(),
                };
                match result {
                    Ok(fp) => {
                        let outcome = writer.add(&fp).with_context(|| {
                            format!("cannot add {} to the index", f.spec.display())
                        })?;
                        let status = match outcome {
                            AddOutcome::Added => {
                                summary.added += 1;
                                "added"
                            }
                            AddOutcome::Replaced => {
                                summary.replaced += 1;
                                "replaced"
                            }
                            AddOutcome::Unchanged => {
                                summary.unchanged += 1;
                                "unchanged"
                            }
                        };
                        if outcome != AddOutcome::Unchanged {
                            since_commit.push(id.clone());
                        }
                        emit(json!({"event": "model", "spec": f.spec, "id": id, "status": status}));
                    }
                    Err(reason) => {
                        summary.failed += 1;
                        writer.record_failure(&f.spec.display().to_string(), &id, &reason);
                        bar.println(format!("failed: {}: {reason}", f.spec.display()));
                        emit(
                            json!({"event": "model", "spec": f.spec, "id": id, "status": "failed", "reason": reason}),
                        );
                    }
                }
                bar.inc(1);
                bar.set_message(id);
                if since_commit.len() >= args.commit_every.max(1) {
                    let info = writer.commit().context("commit failed")?;
                    emit(
                        json!({"event": "commit", "generation": info.generation, "models": since_commit}),
                    );
                    since_commit.clear();
                }
            }
            Ok(())
        })();
        if consumed.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        consumed
    });
    written?;
    let info = writer.commit().context("commit failed")?;
    if !since_commit.is_empty() {
        emit(json!({"event": "commit", "generation": info.generation, "models": since_commit}));
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        emit(json!({
            "event": "summary", "added": summary.added, "replaced": summary.replaced,
            "unchanged": summary.unchanged, "failed": summary.failed, "other_shards": summary.other_shards,
            "generation": info.generation, "live": writer.committed().live_count(), "seconds": seconds,
            "index": dir,
        }));
    } else {
        let mut out = stdout.lock();
        writeln!(
            out,
            "ingested into {}: {} added, {} replaced, {} unchanged, {} failed{} in {:.1}s (generation {}, {} models)",
            dir.display(),
            summary.added,
            summary.replaced,
            summary.unchanged,
            summary.failed,
            if shard.is_some() { format!(", {} left to other shards", summary.other_shards) } else { String::new() },
            seconds,
            info.generation,
            writer.committed().live_count()
        )?;
    }
    Ok(())
}
