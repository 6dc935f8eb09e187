//! The 24-byte little-endian footer that ends every file the index writes itself: what the file is, its
//! format version, the payload length and a CRC-32 of the payload.
//!
//! ```text
//! payload (len bytes) | kind [u8; 4] | version u32 | len u64 | crc32 u32 | magic "PSFT"
//! ```
//! Opening a file checks the footer's structure (magic, kind, version, length) in O(1); the CRC over the payload
//! is checked when the file is written, by `index verify`, and when a small file is read whole.

use crate::error::{Error, Result};
use memmap2::Mmap;
use std::io::Write;
use std::path::Path;

/// Memory-map a segment file (read-only), the one way every segment file is opened.
pub fn map(path: &Path) -> Result<Mmap> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: segment files are immutable once listed in a manifest (never rewritten in place); every byte
    // read through the map is bounds-checked by its reader, and records are validated before use.
    unsafe { Mmap::map(&f) }.map_err(|e| Error::io(path, e))
}

/// Footer size in bytes.
pub const FOOTER_LEN: usize = 24;
/// Last four bytes of every footer.
pub const FOOTER_MAGIC: [u8; 4] = *b"PSFT";
/// Version of the footer-wrapped file formats written by this build.
pub const FILE_VERSION: u32 = 1;

/// A writer that counts and checksums what passes through it, then appends the footer.
pub struct FooterWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> FooterWriter<W> {
    /// Wrap a writer positioned at the start of a new file.
    pub fn new(inner: W) -> Self {
        FooterWriter {
            inner,
            hasher: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    /// Bytes of payload written so far.
    pub fn position(&self) -> u64 {
        self.len
    }

    /// Append the footer and return the inner writer (flushed) and the payload CRC.
    pub fn finish(mut self, kind: [u8; 4]) -> std::io::Result<(W, u32)> {
        let crc = self.hasher.clone().finalize();
        let footer = encode(kind, self.len, crc);
        self.inner.write_all(&footer)?;
        self.inner.flush()?;
        Ok((self.inner, crc))
    }
}

impl<W: Write> Write for FooterWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The footer bytes for a payload.
pub fn encode(kind: [u8; 4], len: u64, crc: u32) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[0..4].copy_from_slice(&kind);
    f[4..8].copy_from_slice(&FILE_VERSION.to_le_bytes());
    f[8..16].copy_from_slice(&len.to_le_bytes());
    f[16..20].copy_from_slice(&crc.to_le_bytes());
    f[20..24].copy_from_slice(&FOOTER_MAGIC);
    f
}

/// A decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// File kind.
    pub kind: [u8; 4],
    /// Format version.
    pub version: u32,
    /// Payload length.
    pub len: u64,
    /// CRC-32 of the payload.
    pub crc: u32,
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Check the footer of a whole file's bytes (without the CRC) and return the payload.
pub fn payload<'a>(path: &Path, bytes: &'a [u8], kind: [u8; 4]) -> Result<(&'a [u8], Footer)> {
    if bytes.len() < FOOTER_LEN {
        return Err(Error::corrupt(
            path,
            format!(
                "{} bytes: too short for the {FOOTER_LEN}-byte footer (truncated?)",
                bytes.len()
            ),
        ));
    }
    let at = bytes.len() - FOOTER_LEN;
    let f = &bytes[at..];
    if f[20..24] != FOOTER_MAGIC {
        return Err(Error::corrupt(
            path,
            format!(
                "no footer magic at byte {} (truncated or overwritten)",
                at + 20
            ),
        ));
    }
    let footer = Footer {
        kind: [f[0], f[1], f[2], f[3]],
        version: le_u32(&f[4..8]),
        len: le_u64(&f[8..16]),
        crc: le_u32(&f[16..20]),
    };
    if footer.kind != kind {
        return Err(Error::corrupt(
            path,
            format!(
                "file kind {:?}, expected {:?}",
                String::from_utf8_lossy(&footer.kind),
                String::from_utf8_lossy(&kind)
            ),
        ));
    }
    if footer.version != FILE_VERSION {
        return Err(Error::corrupt(
            path,
            format!(
                "file format version {} (this build reads {FILE_VERSION})",
                footer.version
            ),
        ));
    }
    if footer.len != at as u64 {
        return Err(Error::corrupt(
            path,
            format!(
                "footer says {} payload bytes, file has {at} (truncated?)",
                footer.len
            ),
        ));
    }
    Ok((&bytes[..at], footer))
}

/// Check the footer and the CRC; return the payload.
pub fn verified<'a>(path: &Path, bytes: &'a [u8], kind: [u8; 4]) -> Result<&'a [u8]> {
    let (body, footer) = payload(path, bytes, kind)?;
    let crc = crc32fast::hash(body);
    if crc != footer.crc {
        return Err(Error::corrupt(
            path,
            format!(
                "checksum mismatch: crc32 {crc:08x}, footer says {:08x}",
                footer.crc
            ),
        ));
    }
    Ok(body)
}

/// Wrap a payload held in memory with its footer.
pub fn wrap(kind: [u8; 4], mut payload: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&payload);
    let footer = encode(kind, payload.len() as u64, crc);
    payload.extend_from_slice(&footer);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage() {
        let p = Path::new("x");
        let file = wrap(*b"TEST", b"hello world".to_vec());
        assert_eq!(verified(p, &file, *b"TEST").unwrap(), b"hello world");
        assert!(verified(p, &file, *b"OTHR").is_err());
        let mut flipped = file.clone();
        flipped[3] ^= 1;
        let e = verified(p, &flipped, *b"TEST").unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        assert!(verified(p, &file[..file.len() - 1], *b"TEST").is_err());
        assert!(verified(p, &file[1..], *b"TEST").is_err());
        assert!(verified(p, &[], *b"TEST").is_err());
    }

    #[test]
    fn streaming_writer_matches_wrap() {
        let mut w = FooterWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (bytes, _) = w.finish(*b"TEST").unwrap();
        assert_eq!(bytes, wrap(*b"TEST", b"hello world".to_vec()));
    }
}
