//! `manifest.json`: the one mutable file of an index. It lists the live segments, the tombstone files and the
//! composite-vector configuration, and is replaced atomically (write a temporary file, fsync, rename, fsync the
//! directory), so a crash leaves either the old or the new manifest, never a mix.

use crate::composite::CompositeConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format version of the index written by this build (2: segment graphs in the compact `graph.bin` layout
/// instead of hnsw_rs dumps).
pub const FORMAT_VERSION: u32 = 2;
/// Oldest format version this build reads.
pub const OLDEST_READABLE: u32 = 2;
/// File name of the manifest inside the index directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A file of the index, with its size and CRC-32 (of the whole file, footer included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Path relative to the segment directory (segment files) or the index directory (tombstones).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 of the file's bytes.
    pub crc32: u32,
}

/// A sealed segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Segment id: the directory name under `segments/`.
    pub id: String,
    /// Records in the segment (tombstoned ones included).
    pub count: u64,
    /// Whether the segment has an HNSW graph (small segments are scanned exactly).
    pub graph: bool,
    /// Whether the segment has sign sketches of its vectors (`sketch.bin`; segments with a graph written
    /// since they were introduced).
    #[serde(default)]
    pub sketch: bool,
    /// Whether the segment has the channel codes of its records (`channels.bin`; segments written since
    /// session 11). Left out of the JSON when false, so older manifests keep their checksums.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub channels: bool,
    /// Every file of the segment.
    pub files: Vec<FileMeta>,
    /// CRC-32 over the files' CRCs in order: one number that changes when any file does.
    pub checksum: u32,
}

/// A model that could not be ingested, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The path or id that was named.
    pub spec: String,
    /// The model id it would have had.
    pub id: String,
    /// The error message.
    pub reason: String,
    /// Generation of the commit that recorded it.
    pub generation: u64,
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Oldest reader format that can read this index.
    pub oldest_readable: u32,
    /// Commit counter: every commit writes generation + 1.
    pub generation: u64,
    /// Fingerprint definition version of every record.
    pub fingerprint_version: u32,
    /// Composite-vector configuration of every segment.
    pub composite: CompositeConfig,
    /// Live segments, oldest first.
    pub segments: Vec<SegmentMeta>,
    /// Tombstone files (`tombstones/<generation>.del`), oldest first.
    pub tombstones: Vec<FileMeta>,
    /// Models that failed to ingest (latest reason per spec).
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// CRC-32 of this manifest serialised (pretty JSON) with `checksum` = 0.
    #[serde(default)]
    pub checksum: u32,
}

impl Manifest {
    /// An empty index.
    pub fn new(composite: CompositeConfig) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            oldest_readable: OLDEST_READABLE,
            generation: 0,
            fingerprint_version: crate::schema::FINGERPRINT_VERSION,
            composite,
            segments: Vec::new(),
            tombstones: Vec::new(),
            failures: Vec::new(),
            checksum: 0,
        }
    }

    /// Total records, tombstoned ones included.
    pub fn record_count(&self) -> u64 {
        self.segments.iter().map(|s| s.count).sum()
    }

    fn body_crc(&self) -> Result<u32> {
        let mut copy = self.clone();
        copy.checksum = 0;
        let bytes = serde_json::to_vec_pretty(&copy)
            .map_err(|e| Error::corrupt(MANIFEST_FILE, e.to_string()))?;
        Ok(crc32fast::hash(&bytes))
    }

    /// Path of the manifest in an index directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    /// Read and check the manifest of an index directory.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = Self::path(dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoIndex {
                    path: dir.to_path_buf(),
                })
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let probe: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::corrupt(
                &path,
                format!(
                    "not valid JSON at line {} column {} (truncated?)",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let found = probe
            .get("format_version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| Error::corrupt(&path, "no format_version"))? as u32;
        let oldest = probe
            .get("oldest_readable")
            .and_then(|v| v.as_u64())
            .unwrap_or(found as u64) as u32;
        if oldest > FORMAT_VERSION || found < OLDEST_READABLE {
            return Err(Error::IncompatibleFormat {
                path,
                found,
                oldest_supported: OLDEST_READABLE,
                current: FORMAT_VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_value(probe)
            .map_err(|e| Error::corrupt(&path, format!("unexpected structure: {e}")))?;
        let crc = manifest.body_crc()?;
        if crc != manifest.checksum {
            return Err(Error::corrupt(
                &path,
                format!(
                    "checksum mismatch: crc32 {crc:08x}, manifest says {:08x}",
                    manifest.checksum
                ),
            ));
        }
        Ok(manifest)
    }

    /// Atomically replace the manifest of `dir` with this one (checksum filled in).
    pub fn store(&mut self, dir: &Path) -> Result<()> {
        self.checksum = 0;
        self.checksum = self.body_crc()?;
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::corrupt(Self::path(dir), e.to_string()))?;
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp-{}", std::process::id()));
        write_synced(&tmp, &bytes)?;
        let path = Self::path(dir);
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(dir)
    }
}

/// Write a file and fsync it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// fsync a directory so that renames and new entries in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let d = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
        d.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_load_and_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(Error::NoIndex { .. })
        ));
        let mut m = Manifest::new(CompositeConfig::default());
        m.generation = 3;
        m.segments.push(SegmentMeta {
            channels: false,
            id: "s1".into(),
            count: 2,
            graph: false,
            sketch: false,
            files: vec![],
            checksum: 7,
        });
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);

        let path = Manifest::path(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"count\": 2", "\"count\": 3")).unwrap();
        let e = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("checksum") && e.contains("manifest.json"), "{e}");
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let e = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
        // A newer writer's index, and an index of format 1 (hnsw_rs graph dumps), are both refused.
        let current = format!("\"format_version\": {FORMAT_VERSION}");
        let oldest = format!("\"oldest_readable\": {OLDEST_READABLE}");
        for (found, oldest_readable) in [(9, 9), (1, 1)] {
            std::fs::write(
                &path,
                text.replace(&current, &format!("\"format_version\": {found}"))
                    .replace(&oldest, &format!("\"oldest_readable\": {oldest_readable}")),
            )
            .unwrap();
            assert!(matches!(
                Manifest::load(dir.path()),
                Err(Error::IncompatibleFormat { found: f, .. }) if f == found
            ));
        }
    }
}
