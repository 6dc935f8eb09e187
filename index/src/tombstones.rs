//! Tombstones: which records of which segments are deleted (replaced by a newer revision). One small file per
//! commit, `tombstones/<generation>.del`, listed in the manifest; a record is dead if any listed file names it.
//!
//! Payload: `u32` entry count, then per entry `u16` segment-id length, the id bytes, `u32` bitmap length and a
//! portable roaring bitmap of record numbers; footer kind `TOMB`.

use crate::error::{Error, Result};
use crate::footer;
use crate::manifest::{write_synced, FileMeta};
use roaring::RoaringBitmap;
use std::collections::BTreeMap;
use std::path::Path;

/// File kind tag.
pub const TOMBSTONE_KIND: [u8; 4] = *b"TOMB";
/// Directory of tombstone files inside the index.
pub const TOMBSTONE_DIR: &str = "tombstones";

/// Deleted records per segment id.
pub type Tombstones = BTreeMap<String, RoaringBitmap>;

/// Encode tombstones as a footer-wrapped file body.
pub fn encode(t: &Tombstones) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(t.len() as u32).to_le_bytes());
    for (id, bits) in t {
        out.extend_from_slice(&(id.len() as u16).to_le_bytes());
        out.extend_from_slice(id.as_bytes());
        let mut b = Vec::with_capacity(bits.serialized_size());
        // Writing into a Vec cannot fail.
        let _ = bits.serialize_into(&mut b);
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(&b);
    }
    footer::wrap(TOMBSTONE_KIND, out)
}

/// Decode and check (footer and CRC) a tombstone file's bytes.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Tombstones> {
    let body = footer::verified(path, bytes, TOMBSTONE_KIND)?;
    let bad = |at: usize| Error::corrupt(path, format!("malformed entry at byte {at}"));
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let s = body.get(*at..*at + n).ok_or_else(|| bad(*at))?;
        *at += n;
        Ok(s)
    };
    let count = u32::from_le_bytes(take(&mut at, 4)?.try_into().map_err(|_| bad(0))?);
    let mut out = Tombstones::new();
    for _ in 0..count {
        let start = at;
        let n = u16::from_le_bytes(take(&mut at, 2)?.try_into().map_err(|_| bad(start))?) as usize;
        let id = std::str::from_utf8(take(&mut at, n)?)
            .map_err(|_| bad(start))?
            .to_string();
        let m = u32::from_le_bytes(take(&mut at, 4)?.try_into().map_err(|_| bad(start))?) as usize;
        let bits = RoaringBitmap::deserialize_from(take(&mut at, m)?).map_err(|_| bad(start))?;
        *out.entry(id).or_default() |= bits;
    }
    Ok(out)
}

/// Write a tombstone file for commit `generation` under `index_dir`; returns its manifest entry.
pub fn write(index_dir: &Path, generation: u64, t: &Tombstones) -> Result<FileMeta> {
    let dir = index_dir.join(TOMBSTONE_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let name = format!("{TOMBSTONE_DIR}/{generation:08}.del");
    let bytes = encode(t);
    write_synced(&index_dir.join(&name), &bytes)?;
    crate::manifest::sync_dir(&dir)?;
    Ok(FileMeta {
        name,
        bytes: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
    })
}

/// Read and union every listed tombstone file.
pub fn load_all(index_dir: &Path, files: &[FileMeta]) -> Result<Tombstones> {
    let mut out = Tombstones::new();
    for f in files {
        let path = index_dir.join(&f.name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 != f.bytes || crc32fast::hash(&bytes) != f.crc32 {
            return Err(Error::corrupt(
                &path,
                "size or checksum differs from the manifest (truncated or overwritten?)",
            ));
        }
        for (id, bits) in decode(&path, &bytes)? {
            *out.entry(id).or_default() |= bits;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let mut t = Tombstones::new();
        t.entry("abc".into()).or_default().insert(3);
        t.entry("abc".into()).or_default().insert(70_000);
        t.entry("d".into()).or_default().insert(0);
        let bytes = encode(&t);
        assert_eq!(decode(Path::new("x"), &bytes).unwrap(), t);
        assert!(decode(Path::new("x"), &bytes[..bytes.len() - 3]).is_err());
    }
}
