//! The single writer of an index: takes the write lock, streams added fingerprints into a new segment, turns
//! replaced revisions into tombstones, and commits (seal the segment, write the tombstone file, atomically
//! replace the manifest). Files the manifest does not list are garbage and are removed when a writer opens.

use crate::composite::CompositeConfig;
use crate::error::{Error, Result};
use crate::hnsw::GraphParams;
use crate::manifest::{Failure, Manifest};
use crate::reader::{IndexReader, SEGMENTS_DIR};
use crate::schema::Fingerprint;
use crate::segment::new_segment_id;
use crate::segment::writer::{SegmentWriter, GRAPH_MIN_RECORDS};
use crate::tombstones::{self, Tombstones, TOMBSTONE_DIR};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Name of the lock file inside the index.
pub const LOCK_FILE: &str = "write.lock";

/// What [`IndexWriter::add`] did with a fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new model.
    Added,
    /// A new revision or new weights of a known id; the old record is tombstoned at commit.
    Replaced,
    /// Same id, revision and content digest as a committed (or pending) record: nothing to do.
    Unchanged,
}

/// What a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// New manifest generation.
    pub generation: u64,
    /// Records in the new segment (0 when only tombstones or failures were committed).
    pub records: u64,
    /// Records tombstoned by this commit.
    pub deleted: u64,
}

/// Writer options.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Composite configuration for a new index (an existing index keeps its own).
    pub composite: CompositeConfig,
    /// HNSW parameters for new segments.
    pub graph: GraphParams,
    /// Smallest segment that gets a graph.
    pub graph_min_records: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            composite: CompositeConfig::default(),
            graph: GraphParams::default(),
            graph_min_records: GRAPH_MIN_RECORDS,
        }
    }
}

/// Identity of a stored record, for skip/replace decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    revision: Option<String>,
    content: String,
}

/// The index writer (one per index at a time: it holds `write.lock`).
pub struct IndexWriter {
    dir: PathBuf,
    _lock: File,
    manifest: Manifest,
    committed: IndexReader,
    options: WriterOptions,
    current: Option<SegmentWriter>,
    pending_ids: HashMap<String, (u32, Key)>,
    pending_tombstones: Tombstones,
    pending_failures: Vec<Failure>,
    resolved: HashSet<String>,
}

#[cfg(unix)]
fn lock(path: &Path) -> Result<File> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    // SAFETY: flock on a file descriptor we own; released by the OS when the process exits (even on SIGKILL).
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let pid = std::fs::read_to_string(path).unwrap_or_default();
        return Err(Error::Locked {
            path: path.to_path_buf(),
            pid: pid.trim().to_string(),
        });
    }
    let _ = f.set_len(0);
    let _ = std::fs::write(path, std::process::id().to_string());
    Ok(f)
}

#[cfg(not(unix))]
fn lock(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

impl IndexWriter {
    /// Open the index in `dir` for writing, creating it if needed.
    pub fn open(dir: &Path, options: WriterOptions) -> Result<IndexWriter> {
        std::fs::create_dir_all(dir.join(SEGMENTS_DIR)).map_err(|e| Error::io(dir, e))?;
        let lock = lock(&dir.join(LOCK_FILE))?;
        let mut manifest = match Manifest::load(dir) {
            Ok(m) => m,
            Err(Error::NoIndex { .. }) => {
                let mut m = Manifest::new(options.composite);
                m.store(dir)?;
                m
            }
            Err(e) => return Err(e),
        };
        if manifest.fingerprint_version != crate::schema::FINGERPRINT_VERSION {
            return Err(Error::Mismatch {
                path: Manifest::path(dir),
                detail: format!(
                    "records have fingerprint version {}, this build writes {}: re-ingest into a new index",
                    manifest.fingerprint_version,
                    crate::schema::FINGERPRINT_VERSION
                ),
            });
        }
        collect_garbage(dir, &manifest)?;
        let committed = IndexReader::open(dir)?;
        manifest = committed.manifest().clone();
        Ok(IndexWriter {
            dir: dir.to_path_buf(),
            _lock: lock,
            manifest,
            committed,
            options,
            current: None,
            pending_ids: HashMap::new(),
            pending_tombstones: Tombstones::new(),
            pending_failures: Vec::new(),
            resolved: HashSet::new(),
        })
    }

    /// The committed state this writer builds on.
    pub fn committed(&self) -> &IndexReader {
        &self.committed
    }

    /// Records added since the last commit.
    pub fn pending(&self) -> u64 {
        self.current.as_ref().map_or(0, |s| s.len())
    }

    /// The composite configuration of this index.
    pub fn composite(&self) -> CompositeConfig {
        self.manifest.composite
    }

    /// Whether a model with this id and revision is committed or pending (revision `None` never matches:
    /// plain directories need their content digest, see [`IndexWriter::is_unchanged`]).
    pub fn has_revision(&self, id: &str, revision: &str) -> Result<bool> {
        if let Some((_, k)) = self.pending_ids.get(id) {
            return Ok(k.revision.as_deref() == Some(revision));
        }
        for r in self.committed.find_id(id)? {
            if self.pending_deleted(r) {
                continue;
            }
            let a = self.committed.record(r)?;
            if a.source.revision.as_ref().map(|s| s.as_str()) == Some(revision) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn pending_deleted(&self, r: crate::reader::DocRef) -> bool {
        let seg = &self.committed.segments()[r.segment].meta().id;
        self.pending_tombstones
            .get(seg)
            .is_some_and(|b| b.contains(r.doc))
    }

    /// Whether a committed or pending record has this id, revision and content digest.
    pub fn is_unchanged(&self, f: &Fingerprint) -> Result<bool> {
        let key = Key {
            revision: f.source.revision.clone(),
            content: f.source.content_digest.clone(),
        };
        if let Some((_, k)) = self.pending_ids.get(&f.source.id) {
            return Ok(*k == key);
        }
        for r in self.committed.find_id(&f.source.id)? {
            if self.pending_deleted(r) {
                continue;
            }
            let a = self.committed.record(r)?;
            let same_rev =
                a.source.revision.as_ref().map(|s| s.as_str()) == key.revision.as_deref();
            if same_rev && a.source.content_digest.as_str() == key.content {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Add a fingerprint: skipped when unchanged, replacing an older record of the same id otherwise.
    pub fn add(&mut self, f: &Fingerprint) -> Result<AddOutcome> {
        let v = crate::composite::composite(f, &self.manifest.composite);
        self.add_with_vector(f, &v)
    }

    /// Add many fingerprints, computing their composite vectors in parallel.
    pub fn add_batch(&mut self, batch: &[Fingerprint]) -> Result<Vec<AddOutcome>> {
        use rayon::prelude::*;
        let config = self.manifest.composite;
        let vectors: Vec<Vec<i8>> = batch
            .par_iter()
            .map(|f| crate::composite::composite(f, &config))
            .collect();
        batch
            .iter()
            .zip(&vectors)
            .map(|(f, v)| self.add_with_vector(f, v))
            .collect()
    }

    fn add_with_vector(&mut self, f: &Fingerprint, vector: &[i8]) -> Result<AddOutcome> {
        if self.is_unchanged(f)? {
            self.resolved.insert(f.source.id.clone());
            return Ok(AddOutcome::Unchanged);
        }
        let mut outcome = AddOutcome::Added;
        for r in self.committed.find_id(&f.source.id)? {
            let seg = self.committed.segments()[r.segment].meta().id.clone();
            self.pending_tombstones
                .entry(seg)
                .or_default()
                .insert(r.doc);
            outcome = AddOutcome::Replaced;
        }
        if self.current.is_none() {
            let id = new_segment_id();
            self.current = Some(SegmentWriter::create(
                &self.dir.join(SEGMENTS_DIR),
                &id,
                self.manifest.composite,
                self.options.graph,
                self.options.graph_min_records,
            )?);
        }
        let Some(seg) = self.current.as_mut() else {
            return Err(Error::corrupt(&self.dir, "no open segment"));
        };
        if let Some((old, _)) = self.pending_ids.get(&f.source.id) {
            // Replaced twice before a commit: the earlier pending record dies with this commit.
            let id = seg.id().to_string();
            self.pending_tombstones.entry(id).or_default().insert(*old);
            outcome = AddOutcome::Replaced;
        }
        let doc = seg.add_with_vector(f, vector)?;
        self.pending_ids.insert(
            f.source.id.clone(),
            (
                doc,
                Key {
                    revision: f.source.revision.clone(),
                    content: f.source.content_digest.clone(),
                },
            ),
        );
        self.resolved.insert(f.source.id.clone());
        Ok(outcome)
    }

    /// Record that a model could not be ingested (committed with the next commit).
    pub fn record_failure(&mut self, spec: &str, id: &str, reason: &str) {
        self.pending_failures.push(Failure {
            spec: spec.to_string(),
            id: id.to_string(),
            reason: reason.to_string(),
            generation: self.manifest.generation + 1,
        });
    }

    /// Commit: seal the pending segment, write tombstones, replace the manifest. A no-op commit (nothing
    /// pending) still succeeds and does not bump the generation.
    pub fn commit(&mut self) -> Result<CommitInfo> {
        if self.current.is_none()
            && self.pending_tombstones.is_empty()
            && self.pending_failures.is_empty()
        {
            return Ok(CommitInfo {
                generation: self.manifest.generation,
                records: 0,
                deleted: 0,
            });
        }
        let generation = self.manifest.generation + 1;
        let mut next = self.manifest.clone();
        let mut records = 0;
        if let Some(seg) = self.current.take() {
            let meta = seg.seal()?;
            records = meta.count;
            next.segments.push(meta);
        }
        let deleted: u64 = self.pending_tombstones.values().map(|b| b.len()).sum();
        if !self.pending_tombstones.is_empty() {
            next.tombstones.push(tombstones::write(
                &self.dir,
                generation,
                &self.pending_tombstones,
            )?);
        }
        // Failures: the latest per spec; models that were ingested since are no longer failures.
        let new_failures = std::mem::take(&mut self.pending_failures);
        let failed_now: HashSet<&str> = new_failures.iter().map(|f| f.spec.as_str()).collect();
        next.failures
            .retain(|f| !failed_now.contains(f.spec.as_str()) && !self.resolved.contains(&f.id));
        next.failures.extend(new_failures.iter().cloned());
        next.generation = generation;
        crate::failpoint("commit-before-manifest");
        next.store(&self.dir)?;
        self.manifest = next;
        self.pending_ids.clear();
        self.pending_tombstones.clear();
        self.resolved.clear();
        self.committed = self.committed.reload()?;
        Ok(CommitInfo {
            generation,
            records,
            deleted,
        })
    }

    /// Merge every segment into one, dropping tombstoned records, and rebuild the graph. Pending work is
    /// committed first. Returns (records kept, records dropped).
    pub fn compact(&mut self) -> Result<(u64, u64)> {
        self.commit()?;
        let reader = &self.committed;
        let total: u64 = reader.segments().iter().map(|s| s.count() as u64).sum();
        let id = new_segment_id();
        let mut out = SegmentWriter::create(
            &self.dir.join(SEGMENTS_DIR),
            &id,
            self.manifest.composite,
            self.options.graph,
            self.options.graph_min_records,
        )?;
        for (i, s) in reader.segments().iter().enumerate() {
            let dead = reader.deleted(i);
            s.read_records_in_order(|| -> Result<()> {
                for doc in 0..s.count() {
                    if dead.contains(doc) {
                        continue;
                    }
                    let f = s.fingerprint(doc)?;
                    out.add_with_vector(&f, s.vector(doc))?;
                }
                Ok(())
            })?;
        }
        let kept = out.len();
        let mut next = self.manifest.clone();
        next.segments = if kept > 0 {
            vec![out.seal()?]
        } else {
            drop(out);
            Vec::new()
        };
        next.tombstones.clear();
        next.generation += 1;
        next.store(&self.dir)?;
        self.manifest = next;
        collect_garbage(&self.dir, &self.manifest)?;
        self.committed = IndexReader::open(&self.dir)?;
        Ok((kept, total - kept))
    }

    /// Add every segment (and tombstone file) of another index, built separately (e.g. by a `--shard I/N`
    /// worker), to this one. Segment directories are hard-linked when possible, copied otherwise.
    pub fn absorb(&mut self, other: &Path) -> Result<u64> {
        self.commit()?;
        let theirs = Manifest::load(other)?;
        if theirs.composite != self.manifest.composite {
            return Err(Error::Mismatch {
                path: other.to_path_buf(),
                detail: "composite-vector configuration differs from the target index".into(),
            });
        }
        if theirs.fingerprint_version != self.manifest.fingerprint_version {
            return Err(Error::Mismatch {
                path: other.to_path_buf(),
                detail: "fingerprint version differs from the target index".into(),
            });
        }
        let mut next = self.manifest.clone();
        let mut added = 0;
        for seg in &theirs.segments {
            if next.segments.iter().any(|s| s.id == seg.id) {
                return Err(Error::Mismatch {
                    path: other.join(SEGMENTS_DIR).join(&seg.id),
                    detail: "segment id already present in the target index".into(),
                });
            }
            let src = other.join(SEGMENTS_DIR).join(&seg.id);
            crate::segment::verify_files(&src, &seg.files)?;
            let dst = self.dir.join(SEGMENTS_DIR).join(&seg.id);
            copy_tree(&src, &dst)?;
            crate::segment::writer::sync_tree(&dst)?;
            next.segments.push(seg.clone());
            added += seg.count;
        }
        next.generation += 1;
        for (n, t) in theirs.tombstones.iter().enumerate() {
            let bytes = std::fs::read(other.join(&t.name))
                .map_err(|e| Error::io(other.join(&t.name), e))?;
            let name = format!("{TOMBSTONE_DIR}/{:08}-m{n}.del", next.generation);
            std::fs::create_dir_all(self.dir.join(TOMBSTONE_DIR))
                .map_err(|e| Error::io(&self.dir, e))?;
            crate::manifest::write_synced(&self.dir.join(&name), &bytes)?;
            next.tombstones
                .push(crate::manifest::FileMeta { name, ..t.clone() });
        }
        next.failures.extend(theirs.failures.iter().cloned());
        next.store(&self.dir)?;
        self.manifest = next;
        self.committed = self.committed.reload()?;
        Ok(added)
    }
}

fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(|e| Error::io(dst, e))?;
    for entry in std::fs::read_dir(src).map_err(|e| Error::io(src, e))? {
        let entry = entry.map_err(|e| Error::io(src, e))?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        if from.is_dir() {
            copy_tree(&from, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
        }
    }
    Ok(())
}

/// Remove what the manifest does not list: unlisted segment directories, tombstone files and temporary
/// manifests. Only a writer holding the lock calls this.
pub fn collect_garbage(dir: &Path, manifest: &Manifest) -> Result<()> {
    let live: HashSet<&str> = manifest.segments.iter().map(|s| s.id.as_str()).collect();
    let segdir = dir.join(SEGMENTS_DIR);
    if let Ok(entries) = std::fs::read_dir(&segdir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !live.contains(name.as_str()) {
                let p = e.path();
                let r = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                r.map_err(|e| Error::io(&p, e))?;
            }
        }
    }
    let tombs: HashSet<&str> = manifest
        .tombstones
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join(TOMBSTONE_DIR)) {
        for e in entries.flatten() {
            let name = format!("{TOMBSTONE_DIR}/{}", e.file_name().to_string_lossy());
            if !tombs.contains(name.as_str()) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with("manifest.json.tmp-")
            {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}
