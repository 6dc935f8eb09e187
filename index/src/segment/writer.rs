//! Writing a segment: records are streamed to disk as they are added (only the composite vectors stay in
//! memory), and once the segment is large enough to get a graph, its vectors are inserted into the graph in
//! the background as they arrive. [`SegmentWriter::seal`] finishes the files, waits for the graph (and writes
//! the vectors' sign sketches beside it), fsyncs
//! everything and returns the [`SegmentMeta`] that a commit lists in the manifest.

use super::{
    combined_checksum, file_meta, META_DIR, RECORDS_FILE, RECORDS_KIND, RECORD_ALIGN, VECTORS_FILE,
    VECTORS_KIND,
};
use crate::channel_codes::CHANNELS_FILE;
use crate::composite::{composite, CompositeConfig};
use crate::error::{Error, Result};
use crate::footer::FooterWriter;
use crate::graph::GRAPH_FILE;
use crate::hnsw::{Builder, GraphParams};
use crate::manifest::{sync_dir, SegmentMeta};
use crate::meta_index::MetaWriter;
use crate::schema::Fingerprint;
use crate::sketch::SKETCH_FILE;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Segments with fewer records than this get no graph: an exact scan of their vectors is as fast.
pub const GRAPH_MIN_RECORDS: u64 = 4096;

/// Streams records into a new segment directory.
pub struct SegmentWriter {
    id: String,
    dir: PathBuf,
    records: FooterWriter<BufWriter<File>>,
    offsets: Vec<(u64, u64)>,
    vectors: Vec<i8>,
    /// Channel codes of every record so far (record `d`'s at `codes[code_offsets[d]..code_offsets[d + 1]]`).
    codes: Vec<u32>,
    code_offsets: Vec<u32>,
    meta: MetaWriter,
    config: CompositeConfig,
    graph_params: GraphParams,
    graph_min: u64,
    /// The graph under construction, started once the segment reaches `graph_min` records.
    graph: Option<Builder>,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl SegmentWriter {
    /// Start segment `id` under `segments_dir`; it gets a graph if it reaches `graph_min` records.
    pub fn create(
        segments_dir: &Path,
        id: &str,
        config: CompositeConfig,
        graph_params: GraphParams,
        graph_min: u64,
    ) -> Result<Self> {
        let dir = segments_dir.join(id);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(RECORDS_FILE);
        let file = File::create(&path).map_err(io_err(&path))?;
        let meta = MetaWriter::create(&dir.join(META_DIR))?;
        Ok(SegmentWriter {
            id: id.to_string(),
            dir,
            records: FooterWriter::new(BufWriter::with_capacity(1 << 20, file)),
            offsets: Vec::new(),
            vectors: Vec::new(),
            codes: Vec::new(),
            code_offsets: vec![0],
            meta,
            config,
            graph_params,
            graph_min,
            graph: None,
        })
    }

    /// Records added so far.
    pub fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The segment id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Append a record whose composite vector is already computed.
    pub fn add_with_vector(&mut self, f: &Fingerprint, vector: &[i8]) -> Result<u32> {
        let path = self.dir.join(RECORDS_FILE);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(f)
            .map_err(|e| Error::corrupt(&path, format!("cannot archive {}: {e}", f.source.id)))?;
        let pad = (RECORD_ALIGN - (self.records.position() as usize % RECORD_ALIGN)) % RECORD_ALIGN;
        self.records
            .write_all(&[0u8; RECORD_ALIGN][..pad])
            .map_err(io_err(&path))?;
        let doc = self.offsets.len() as u32;
        let start = self.records.position();
        self.records.write_all(&bytes).map_err(io_err(&path))?;
        self.offsets.push((start, self.records.position()));
        self.vectors.extend_from_slice(vector);
        if let Some(e) = f
            .weights
            .embedding
            .as_ref()
            .filter(|e| e.anchor_set_version == crate::anchors::ANCHOR_SET_VERSION)
        {
            self.codes.extend(crate::channel_codes::channel_codes(e));
        }
        self.code_offsets.push(self.codes.len() as u32);
        self.meta.add(doc as u64, f)?;
        self.grow_graph();
        Ok(doc)
    }

    /// Append a record (its composite vector is computed here).
    pub fn add(&mut self, f: &Fingerprint) -> Result<u32> {
        let v = composite(f, &self.config);
        self.add_with_vector(f, &v)
    }

    /// Feed the graph: once the segment is large enough to get one, every vector goes to the builder, which
    /// inserts in the background while records keep streaming in.
    fn grow_graph(&mut self) {
        let count = self.offsets.len();
        let dim = self.config.dimension as usize;
        if let Some(b) = &mut self.graph {
            b.push(&self.vectors[(count - 1) * dim..]);
        } else if count as u64 >= self.graph_min.max(1) {
            let mut b = Builder::new(self.graph_params, count);
            for v in self.vectors.chunks_exact(dim) {
                b.push(v);
            }
            self.graph = Some(b);
        }
    }

    /// Finish every file, complete the graph when the segment has one, fsync, and describe the segment.
    pub fn seal(mut self) -> Result<SegmentMeta> {
        let count = self.offsets.len() as u64;
        let path = self.dir.join(RECORDS_FILE);
        // Record table (start, end) per record, then count and table offset.
        let table_at = self.records.position();
        let mut tail = Vec::with_capacity(self.offsets.len() * 16 + 16);
        for &(start, end) in &self.offsets {
            tail.extend_from_slice(&start.to_le_bytes());
            tail.extend_from_slice(&end.to_le_bytes());
        }
        tail.extend_from_slice(&count.to_le_bytes());
        tail.extend_from_slice(&table_at.to_le_bytes());
        self.records.write_all(&tail).map_err(io_err(&path))?;
        let (w, _) = self.records.finish(RECORDS_KIND).map_err(io_err(&path))?;
        let file = w
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(io_err(&path))?;

        let dim = self.config.dimension as usize;
        let vpath = self.dir.join(VECTORS_FILE);
        {
            let file = File::create(&vpath).map_err(io_err(&vpath))?;
            let mut w = FooterWriter::new(BufWriter::new(file));
            let mut header = [0u8; 16];
            header[0..8].copy_from_slice(&count.to_le_bytes());
            header[8..12].copy_from_slice(&(dim as u32).to_le_bytes());
            w.write_all(&header).map_err(io_err(&vpath))?;
            let raw: Vec<u8> = self.vectors.iter().map(|&v| v as u8).collect();
            w.write_all(&raw).map_err(io_err(&vpath))?;
            let (w, _) = w.finish(VECTORS_KIND).map_err(io_err(&vpath))?;
            let file = w
                .into_inner()
                .map_err(|e| Error::io(&vpath, e.into_error()))?;
            file.sync_all().map_err(io_err(&vpath))?;
        }

        self.meta.finish()?;
        let graph = self.graph.is_some();
        if let Some(b) = self.graph.take() {
            let layout = b.finish().map_err(|detail| Error::Graph {
                path: self.dir.join(GRAPH_FILE),
                detail,
            })?;
            layout.write(&self.dir)?;
            crate::sketch::write(&self.dir, &self.vectors, dim)?;
        }
        crate::channel_codes::write(&self.dir, &self.codes, &self.code_offsets)?;
        sync_tree(&self.dir)?;

        let mut names = vec![
            RECORDS_FILE.to_string(),
            VECTORS_FILE.to_string(),
            CHANNELS_FILE.to_string(),
        ];
        if graph {
            names.push(GRAPH_FILE.to_string());
            names.push(SKETCH_FILE.to_string());
        }
        let meta_dir = self.dir.join(META_DIR);
        let mut meta_files: Vec<String> = std::fs::read_dir(&meta_dir)
            .map_err(io_err(&meta_dir))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // tantivy's writer lock files are not part of the index.
            .filter(|n| !n.ends_with(".lock"))
            .map(|n| format!("{META_DIR}/{n}"))
            .collect();
        meta_files.sort();
        names.extend(meta_files);
        let files = names
            .iter()
            .map(|n| file_meta(&self.dir, n))
            .collect::<Result<Vec<_>>>()?;
        Ok(SegmentMeta {
            id: self.id,
            count,
            graph,
            sketch: graph,
            channels: true,
            checksum: combined_checksum(&files),
            files,
        })
    }
}

/// fsync every file and directory under `dir` (tantivy's own files included).
pub fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            let f = File::open(&path).map_err(io_err(&path))?;
            f.sync_all().map_err(io_err(&path))?;
        }
    }
    sync_dir(dir)
}
