//! Digests of weight files, for byte-identity. SHA-256 is what the Hugging Face Hub publishes for LFS files:
//! files in an HF cache snapshot are symlinks to blobs named by their SHA-256, so it is read from the link for
//! free. Elsewhere content is identified by BLAKE3, which hashes on every core several times faster than
//! SHA-256 (SHA-256 is computed too only on request).

use crate::error::Result;
use provsearch_formats::Error as FormatError;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The SHA-256 of an HF-cache snapshot file, from the blob its symlink points to, if it is one.
pub fn cached_sha256(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    let name = target.file_name()?.to_str()?;
    let in_blobs = target
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|p| p == "blobs");
    (in_blobs && is_sha256_hex(name)).then(|| name.to_string())
}

/// SHA-256 (lower-case hex) of a file's bytes: from the HF cache link when possible, else streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    if let Some(known) = cached_sha256(path) {
        return Ok(known);
    }
    let mut file = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 8 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| FormatError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// BLAKE3 (lower-case hex) of a file's bytes, read through a 4 MiB buffer and hashed on all cores (a memory
/// map would keep the whole file resident). Larger buffers hash no faster here; smaller ones split too finely
/// for two cores.
pub fn file_blake3(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = read_full(&mut file, &mut buf).map_err(|e| FormatError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update_rayon(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// Fill `buf` as far as the file allows; returns the bytes read (0 at the end).
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 hex of a string.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// BLAKE3 hex of a string (combines per-file digests into one content digest).
pub fn blake3_hex(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_files_and_reads_cache_links() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_sha256(&file).unwrap(), abc);
        assert_eq!(
            file_blake3(&file).unwrap(),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        // A snapshot link into blobs/ is trusted by name (HF cache layout).
        let fake = "0".repeat(64);
        std::fs::create_dir_all(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs").join(&fake), b"abc").unwrap();
        std::fs::create_dir_all(dir.path().join("snap")).unwrap();
        let link = dir.path().join("snap/model.safetensors");
        std::os::unix::fs::symlink(format!("../blobs/{fake}"), &link).unwrap();
        assert_eq!(file_sha256(&link).unwrap(), fake);
        assert_eq!(cached_sha256(&file), None);
    }
}
