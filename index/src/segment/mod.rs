//! Segments: immutable directories `segments/<id>/` holding a batch of fingerprint records, their composite
//! vectors, an optional HNSW graph with sign sketches and a metadata index. Written once by [`writer::SegmentWriter`], read
//! zero-copy by [`reader::SegmentReader`].
//!
//! Files (byte layouts in docs/format.md):
//! - `fingerprints.rkyv`: rkyv records at 16-byte-aligned offsets, an offset table, footer `FPRS`;
//! - `vectors.bin`: a 16-byte header and `count × dimension` `i8` composite vectors, footer `VECS`;
//! - `graph.bin`: the HNSW graph in the compact layout of [`crate::graph`] (segments with at least
//!   [`writer::GRAPH_MIN_RECORDS`] records only);
//! - `sketch.bin`: the vectors' sign sketches ([`crate::sketch`]), beside every graph;
//! - `meta/`: the tantivy index of the records' metadata.

pub mod reader;
pub mod writer;

use crate::error::{Error, Result};
use crate::manifest::FileMeta;
use std::path::Path;

/// File kind tag of `fingerprints.rkyv`.
pub const RECORDS_KIND: [u8; 4] = *b"FPRS";
/// File kind tag of `vectors.bin`.
pub const VECTORS_KIND: [u8; 4] = *b"VECS";
/// Records file name.
pub const RECORDS_FILE: &str = "fingerprints.rkyv";
/// Vectors file name.
pub const VECTORS_FILE: &str = "vectors.bin";
/// Metadata index directory name.
pub const META_DIR: &str = "meta";
/// Alignment of each record in the records file.
pub const RECORD_ALIGN: usize = 16;

/// A new, unique segment id: time, process and a counter, hashed (shards building in parallel never collide).
pub fn new_segment_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos
        ^ ((std::process::id() as u64) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", x ^ (x >> 31))
}

/// CRC-32 and size of a whole file (streamed).
pub fn file_meta(root: &Path, name: &str) -> Result<FileMeta> {
    use std::io::Read;
    let path = root.join(name);
    let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(&path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileMeta {
        name: name.to_string(),
        bytes,
        crc32: hasher.finalize(),
    })
}

/// The combined checksum of a segment's files.
pub fn combined_checksum(files: &[FileMeta]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for f in files {
        h.update(f.name.as_bytes());
        h.update(&f.bytes.to_le_bytes());
        h.update(&f.crc32.to_le_bytes());
    }
    h.finalize()
}

/// Check every file of a segment against its listed size and CRC; the first mismatch names the file.
pub fn verify_files(root: &Path, files: &[FileMeta]) -> Result<()> {
    for listed in files {
        let path = root.join(&listed.name);
        let actual = file_meta(root, &listed.name)?;
        if actual.bytes != listed.bytes {
            return Err(Error::corrupt(
                &path,
                format!(
                    "{} bytes, manifest says {} (truncated?)",
                    actual.bytes, listed.bytes
                ),
            ));
        }
        if actual.crc32 != listed.crc32 {
            return Err(Error::corrupt(
                &path,
                format!(
                    "checksum mismatch: crc32 {:08x}, manifest says {:08x}",
                    actual.crc32, listed.crc32
                ),
            ));
        }
    }
    Ok(())
}
