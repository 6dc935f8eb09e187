//! A consistent, read-only view of an index at one committed generation: the manifest, its open segments and
//! the union of its tombstones. Opening reads the manifest once and memory-maps the listed files; what a writer
//! commits later is seen after [`IndexReader::reload`].

use crate::composite::CompositeConfig;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::schema::ArchivedFingerprint;
use crate::segment::reader::SegmentReader;
use crate::tombstones::{load_all, Tombstones};
use roaring::RoaringBitmap;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Directory of the segments inside the index.
pub const SEGMENTS_DIR: &str = "segments";

/// A read-only view of an index.
pub struct IndexReader {
    dir: PathBuf,
    manifest: Manifest,
    segments: Vec<Arc<SegmentReader>>,
    tombstones: Tombstones,
    empty: RoaringBitmap,
}

/// Counts for `index stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Index directory.
    pub dir: PathBuf,
    /// Manifest generation.
    pub generation: u64,
    /// Format version.
    pub format_version: u32,
    /// Live (searchable) records.
    pub live: u64,
    /// Tombstoned records still on disk (until `compact`).
    pub deleted: u64,
    /// Segments.
    pub segments: usize,
    /// Segments with an HNSW graph.
    pub graph_segments: usize,
    /// Bytes of all listed files.
    pub disk_bytes: u64,
    /// Models recorded as failed.
    pub failures: usize,
    /// Composite-vector configuration.
    pub composite: CompositeConfig,
}

/// Location of a record: segment ordinal in the reader and record number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocRef {
    /// Index into [`IndexReader::segments`].
    pub segment: usize,
    /// Record number inside the segment.
    pub doc: u32,
}

impl IndexReader {
    /// Open the index in `dir` at its current generation.
    pub fn open(dir: &Path) -> Result<IndexReader> {
        Self::open_reusing(dir, &[])
    }

    fn open_reusing(dir: &Path, reuse: &[Arc<SegmentReader>]) -> Result<IndexReader> {
        // A compaction may delete segments between our manifest read and their open: read again then.
        let mut last = None;
        for _ in 0..3 {
            match Self::try_open(dir, reuse) {
                Err(Error::Io { path, source })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    last = Some(Error::Io { path, source });
                }
                other => return other,
            }
        }
        Err(last.unwrap_or(Error::NoIndex {
            path: dir.to_path_buf(),
        }))
    }

    fn try_open(dir: &Path, reuse: &[Arc<SegmentReader>]) -> Result<IndexReader> {
        let manifest = Manifest::load(dir)?;
        if manifest.composite.version != crate::composite::COMPOSITE_VERSION {
            // Query vectors would be computed with another hashing than the stored ones: every search would
            // silently miss.
            return Err(Error::Mismatch {
                path: dir.join(crate::manifest::MANIFEST_FILE),
                detail: format!(
                    "composite vectors of version {} (this build computes version {}): re-ingest the models \
                     into a new index",
                    manifest.composite.version,
                    crate::composite::COMPOSITE_VERSION
                ),
            });
        }
        let dim = manifest.composite.dimension as usize;
        let segdir = dir.join(SEGMENTS_DIR);
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for meta in &manifest.segments {
            match reuse.iter().find(|s| s.meta() == meta) {
                Some(s) => segments.push(s.clone()),
                None => segments.push(Arc::new(SegmentReader::open(&segdir, meta, dim)?)),
            }
        }
        let tombstones = load_all(dir, &manifest.tombstones)?;
        Ok(IndexReader {
            dir: dir.to_path_buf(),
            manifest,
            segments,
            tombstones,
            empty: RoaringBitmap::new(),
        })
    }

    /// A view of the latest generation, reusing this view's open segments (and their loaded graphs).
    pub fn reload(&self) -> Result<IndexReader> {
        Self::open_reusing(&self.dir, &self.segments)
    }

    /// Whether the manifest on disk is newer than this view.
    pub fn is_stale(&self) -> bool {
        Manifest::load(&self.dir)
            .map(|m| m.generation != self.manifest.generation)
            .unwrap_or(false)
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest of this view.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The open segments, in manifest order.
    pub fn segments(&self) -> &[Arc<SegmentReader>] {
        &self.segments
    }

    /// Tombstoned record numbers of segment `i`.
    pub fn deleted(&self, i: usize) -> &RoaringBitmap {
        self.segments
            .get(i)
            .and_then(|s| self.tombstones.get(&s.meta().id))
            .unwrap_or(&self.empty)
    }

    /// Whether a record is live.
    pub fn is_live(&self, r: DocRef) -> bool {
        !self.deleted(r.segment).contains(r.doc)
    }

    /// The archived record at `r`.
    pub fn record(&self, r: DocRef) -> Result<&ArchivedFingerprint> {
        self.segments
            .get(r.segment)
            .ok_or_else(|| Error::corrupt(&self.dir, format!("no segment {}", r.segment)))?
            .record(r.doc)
    }

    /// Live records.
    pub fn live_count(&self) -> u64 {
        (0..self.segments.len())
            .map(|i| self.segments[i].count() as u64 - self.deleted(i).len())
            .sum()
    }

    /// Warm the graphs of every segment that has one (for long-running processes: CRC check and read-ahead;
    /// queries use the graphs without this).
    pub fn load_graphs(&self) -> Result<()> {
        for s in &self.segments {
            s.load_graph()?;
        }
        Ok(())
    }

    /// Live records whose exact model id is `id` (normally at most one).
    pub fn find_id(&self, id: &str) -> Result<Vec<DocRef>> {
        let mut out = Vec::new();
        for (i, s) in self.segments.iter().enumerate() {
            let m = s.meta_index()?;
            for doc in m.exact(m.fields().id, id)? {
                let r = DocRef { segment: i, doc };
                if self.is_live(r) {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Counts for `index stats`.
    pub fn stats(&self) -> Stats {
        let deleted: u64 = (0..self.segments.len())
            .map(|i| self.deleted(i).len())
            .sum();
        let disk_bytes = self
            .manifest
            .segments
            .iter()
            .flat_map(|s| s.files.iter().map(|f| f.bytes))
            .chain(self.manifest.tombstones.iter().map(|f| f.bytes))
            .sum();
        Stats {
            dir: self.dir.clone(),
            generation: self.manifest.generation,
            format_version: self.manifest.format_version,
            live: self.live_count(),
            deleted,
            segments: self.segments.len(),
            graph_segments: self.manifest.segments.iter().filter(|s| s.graph).count(),
            disk_bytes,
            failures: self.manifest.failures.len(),
            composite: self.manifest.composite,
        }
    }

    /// Check every listed file (sizes, CRCs, rkyv structure of every record, tombstones); the error names the
    /// first damaged file. Returns the number of records checked.
    pub fn verify(&self) -> Result<u64> {
        let mut n = 0;
        for s in &self.segments {
            s.verify()?;
            n += s.count() as u64;
        }
        load_all(&self.dir, &self.manifest.tombstones)?;
        Ok(n)
    }
}
