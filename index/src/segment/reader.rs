//! Reading a segment: memory-maps the records, vectors, graph and sketches, checks their footers and tables at open
//! (O(records) for the offset table, O(1) per file otherwise), and gives zero-copy access to each archived record. A
//! record's rkyv structure is validated (bytecheck) the first time it is touched and trusted afterwards; the
//! CRC over whole files is `index verify`'s job (and the writer's).

use super::{
    verify_files, META_DIR, RECORDS_FILE, RECORDS_KIND, RECORD_ALIGN, VECTORS_FILE, VECTORS_KIND,
};
use crate::channel_codes::ChannelFile;
use crate::error::{Error, Result};
use crate::footer;
use crate::graph::{GraphFile, GRAPH_FILE};
use crate::manifest::SegmentMeta;
use crate::meta_index::MetaReader;
use crate::schema::{ArchivedFingerprint, Fingerprint};
use crate::sketch::{SketchFile, SKETCH_FILE};
use memmap2::{Advice, Mmap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// An open, immutable segment.
pub struct SegmentReader {
    meta: SegmentMeta,
    dir: PathBuf,
    records: Mmap,
    /// Record table: `count` pairs of little-endian u64 (start, end) starting at this byte of `records`.
    table_at: usize,
    vectors: Mmap,
    dim: usize,
    validated: Vec<AtomicU64>,
    meta_index: OnceLock<std::result::Result<MetaReader, String>>,
    graph: Option<GraphFile>,
    sketch: Option<SketchFile>,
    channels: Option<ChannelFile>,
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl SegmentReader {
    /// Open the segment described by `meta` under `segments_dir`.
    pub fn open(segments_dir: &Path, meta: &SegmentMeta, dim: usize) -> Result<Self> {
        let dir = segments_dir.join(&meta.id);
        let rpath = dir.join(RECORDS_FILE);
        let records = footer::map(&rpath)?;
        let (body, _) = footer::payload(&rpath, &records, RECORDS_KIND)?;
        if body.len() < 16 {
            return Err(Error::corrupt(&rpath, "no record table"));
        }
        let count = le_u64(body, body.len() - 16);
        let table_at = le_u64(body, body.len() - 8) as usize;
        if count != meta.count {
            return Err(Error::corrupt(
                &rpath,
                format!("{count} records, manifest says {}", meta.count),
            ));
        }
        let table_len = count as usize * 16;
        if table_at.checked_add(table_len) != Some(body.len() - 16) {
            return Err(Error::corrupt(
                &rpath,
                format!("record table at byte {table_at} does not fit the file"),
            ));
        }
        let mut prev = 0u64;
        for i in 0..count as usize {
            let (start, end) = (
                le_u64(body, table_at + i * 16),
                le_u64(body, table_at + i * 16 + 8),
            );
            if start < prev
                || end < start
                || end as usize > table_at
                || !(start as usize).is_multiple_of(RECORD_ALIGN)
            {
                return Err(Error::corrupt(
                    &rpath,
                    format!(
                        "record {i}'s extent (table byte {}) is out of order, misaligned or outside the file",
                        table_at + i * 16
                    ),
                ));
            }
            prev = end;
        }
        // Queries read a few dozen scattered records. The records file is the one index file that outgrows
        // RAM (58 KB × 1M records), and the kernel's default read-around on a page fault is `read_ahead_kb`
        // (8 MB on this project's VMs): each record touched read up to 8 MB around it, a million-record
        // query some 400 MB, which evicted the rest of the working set (one-thread p50 41–106 ms at 1M, against
        // 10.6–13 ms without it). So no read-around here: the query path asks for exactly the records it will
        // read, all at once ([`SegmentReader::prefetch_records`]), and whole-file passes switch to in-order
        // read-ahead ([`SegmentReader::read_records_in_order`]). Advice only tunes caching, so a failure is
        // ignored.
        let _ = records.advise(Advice::Random);

        let vpath = dir.join(VECTORS_FILE);
        let vectors = footer::map(&vpath)?;
        let (vbody, _) = footer::payload(&vpath, &vectors, VECTORS_KIND)?;
        if vbody.len() < 16 {
            return Err(Error::corrupt(&vpath, "no header"));
        }
        let vcount = le_u64(vbody, 0);
        let vdim = u32::from_le_bytes([vbody[8], vbody[9], vbody[10], vbody[11]]) as usize;
        if vcount != count || vdim != dim || vbody.len() != 16 + count as usize * dim {
            return Err(Error::corrupt(
                &vpath,
                format!(
                    "{vcount} vectors of dimension {vdim} in {} bytes; expected {count} of dimension {dim}",
                    vbody.len()
                ),
            ));
        }
        let words = (count as usize).div_ceil(64);
        let graph = if meta.graph {
            Some(GraphFile::open(&dir, count as u32)?)
        } else {
            None
        };
        let sketch = if meta.sketch {
            Some(SketchFile::open(&dir, count as u32, dim)?)
        } else {
            None
        };
        let channels = if meta.channels {
            Some(ChannelFile::open(&dir, count as u32)?)
        } else {
            None
        };
        Ok(SegmentReader {
            meta: meta.clone(),
            dir,
            records,
            table_at,
            vectors,
            dim,
            validated: (0..words).map(|_| AtomicU64::new(0)).collect(),
            meta_index: OnceLock::new(),
            graph,
            sketch,
            channels,
        })
    }

    /// The segment's manifest entry.
    pub fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// The segment directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records in the segment.
    pub fn count(&self) -> u32 {
        self.meta.count as u32
    }

    /// All composite vectors, `count × dim`.
    pub fn vectors(&self) -> &[i8] {
        let raw = &self.vectors[16..16 + self.meta.count as usize * self.dim];
        // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid for both.
        unsafe { std::slice::from_raw_parts(raw.as_ptr() as *const i8, raw.len()) }
    }

    /// The composite vector of record `doc`.
    pub fn vector(&self, doc: u32) -> &[i8] {
        let at = doc as usize * self.dim;
        &self.vectors()[at..at + self.dim]
    }

    fn record_bytes(&self, doc: u32) -> &[u8] {
        let i = doc as usize;
        let start = le_u64(&self.records, self.table_at + i * 16) as usize;
        let end = le_u64(&self.records, self.table_at + i * 16 + 8) as usize;
        &self.records[start..end]
    }

    /// Ask the kernel to read records `docs` (a range of record numbers) into the page cache now, as one
    /// request, without waiting for it. Reading a record from a cold page cache then costs one request for all of
    /// it instead of a fault per page (the map reads no more than the faulting page: see [`Self::open`]), and
    /// the records of one query's candidates are read side by side. Costs a system call when they are cached.
    pub fn prefetch_records(&self, docs: Range<u32>) {
        let end = docs.end.min(self.count());
        if docs.start >= end {
            return;
        }
        let (first, last) = (docs.start as usize, end as usize - 1);
        let start = le_u64(&self.records, self.table_at + first * 16) as usize;
        let stop = le_u64(&self.records, self.table_at + last * 16 + 8) as usize;
        if stop > start {
            let _ = self
                .records
                .advise_range(Advice::WillNeed, start, stop - start);
        }
    }

    /// Run `pass`, which reads every record in order (compaction, verification), with the kernel's in-order
    /// read-ahead on the records file, then go back to the query-time advice (read no more than asked for).
    /// The advice belongs to the shared mapping, so a query that runs meanwhile reads with it too: a cost in
    /// speed only.
    pub fn read_records_in_order<T>(&self, pass: impl FnOnce() -> T) -> T {
        let _ = self.records.advise(Advice::Sequential);
        let out = pass();
        let _ = self.records.advise(Advice::Random);
        out
    }

    /// The archived record `doc`, validated on first access.
    pub fn record(&self, doc: u32) -> Result<&ArchivedFingerprint> {
        if doc >= self.count() {
            return Err(Error::corrupt(
                self.dir.join(RECORDS_FILE),
                format!("record {doc} out of range ({} records)", self.count()),
            ));
        }
        let bytes = self.record_bytes(doc);
        let (word, bit) = (doc as usize / 64, 1u64 << (doc % 64));
        if self.validated[word].load(Ordering::Acquire) & bit != 0 {
            // SAFETY: these exact bytes passed rkyv's validation before (the map is immutable).
            return Ok(unsafe { rkyv::access_unchecked::<ArchivedFingerprint>(bytes) });
        }
        // Validation reads the whole record: one request for it rather than a fault per page.
        self.prefetch_records(doc..doc + 1);
        // The records file is 16-byte aligned at every record start, and the map is page-aligned.
        let archived =
            rkyv::access::<ArchivedFingerprint, rkyv::rancor::Error>(bytes).map_err(|e| {
                Error::corrupt(
                    self.dir.join(RECORDS_FILE),
                    format!(
                        "record {doc} at byte {}: {e}",
                        bytes.as_ptr() as usize - self.records.as_ptr() as usize
                    ),
                )
            })?;
        self.validated[word].fetch_or(bit, Ordering::AcqRel);
        Ok(archived)
    }

    /// Record `doc`, deserialised.
    pub fn fingerprint(&self, doc: u32) -> Result<Fingerprint> {
        let a = self.record(doc)?;
        rkyv::deserialize::<Fingerprint, rkyv::rancor::Error>(a)
            .map_err(|e| Error::corrupt(self.dir.join(RECORDS_FILE), format!("record {doc}: {e}")))
    }

    /// The metadata index, opened on first use.
    pub fn meta_index(&self) -> Result<&MetaReader> {
        let dir = self.dir.join(META_DIR);
        match self
            .meta_index
            .get_or_init(|| MetaReader::open(&dir).map_err(|e| e.to_string()))
        {
            Ok(m) => Ok(m),
            Err(detail) => Err(Error::Meta {
                path: dir,
                detail: detail.clone(),
            }),
        }
    }

    /// The segment's graph (memory-mapped at open), if it has one.
    pub fn graph(&self) -> Option<&GraphFile> {
        self.graph.as_ref()
    }

    /// The sign sketches of the segment's vectors (memory-mapped at open), if it has them.
    pub fn sketch(&self) -> Option<&SketchFile> {
        self.sketch.as_ref()
    }

    /// The channel codes of the segment's records (memory-mapped at open), if it has them.
    pub fn channels(&self) -> Option<&ChannelFile> {
        self.channels.as_ref()
    }

    /// Warm the graph and the sketches for a long-running server: check their CRCs against the manifest and
    /// ask the kernel to read them ahead. One-shot queries skip this (both are usable as soon as the segment
    /// is open).
    pub fn load_graph(&self) -> Result<()> {
        let Some(g) = &self.graph else {
            return Ok(());
        };
        let listed: Vec<_> = self
            .meta
            .files
            .iter()
            .filter(|f| f.name == GRAPH_FILE || f.name == SKETCH_FILE)
            .cloned()
            .collect();
        verify_files(&self.dir, &listed)?;
        g.prefetch();
        if let Some(s) = &self.sketch {
            s.prefetch();
        }
        Ok(())
    }

    /// Full check: every file's size and CRC against the manifest, then every record's rkyv structure.
    pub fn verify(&self) -> Result<()> {
        verify_files(&self.dir, &self.meta.files)?;
        let rpath = self.dir.join(RECORDS_FILE);
        self.read_records_in_order(|| footer::verified(&rpath, &self.records, RECORDS_KIND))?;
        let vpath = self.dir.join(VECTORS_FILE);
        footer::verified(&vpath, &self.vectors, VECTORS_KIND)?;
        if let Some(g) = &self.graph {
            g.verify()?;
        }
        if let Some(s) = &self.sketch {
            s.verify()?;
        }
        if let Some(c) = &self.channels {
            c.verify()?;
        }
        self.read_records_in_order(|| {
            (0..self.count()).try_for_each(|doc| self.record(doc).map(|_| ()))
        })
    }
}
