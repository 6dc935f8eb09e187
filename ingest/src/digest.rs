//! Digests of weight files, for byte-identity. SHA-256 is what the Hugging Face Hub publishes for LFS files,
//! and both layouts the Hub's own tools write record it, so it is read for free:
//! - files in an HF cache snapshot are symlinks to blobs named by their SHA-256 ([`cached_sha256`]);
//! - `huggingface-cli download --local-dir DIR` writes a record per file under `DIR/.cache/huggingface/download/`
//!   with the commit and, for an LFS file, its SHA-256 ([`download_record`]).
//!
//! Elsewhere content is identified by BLAKE3, which hashes on every core several times faster than SHA-256
//! (SHA-256 is computed too only on request).

use crate::error::Result;
use provsearch_formats::Error as FormatError;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

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

/// What `huggingface-cli download --local-dir` (huggingface_hub 0.23 and later) recorded about a file it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRecord {
    /// The record itself: `DIR/.cache/huggingface/download/<name in the repo>.metadata`.
    pub path: PathBuf,
    /// The commit the file was downloaded from (40 hex digits).
    pub commit: String,
    /// The file's SHA-256 when it is an LFS file, whose etag is its SHA-256. `None` for a file kept in git
    /// itself, whose etag is a git blob SHA-1.
    pub sha256: Option<String>,
}

/// How many directories above a file its `--local-dir` root may be: a model in a subfolder of its repository
/// (`DIR/sub/model.safetensors`, recorded as `sub/model.safetensors`) is fingerprinted from `DIR/sub`.
const MAX_RECORD_DEPTH: usize = 4;

/// A record is three short lines; anything longer is not one, and is not read whole.
const MAX_RECORD_BYTES: u64 = 512;

/// The `--local-dir` download record of `path`, if one is there and still describes the file.
///
/// The record is `<commit>\n<etag>\n<unix time it was written>\n`. It is trusted as huggingface_hub itself
/// trusts it (`_local_folder.py`): only while the file was not modified after the record was written (its
/// mtime at most one second past the record's time). The nearest record found going up from the file is the
/// one; a record that is malformed or outdated gives `None`, so the file is hashed instead.
pub fn download_record(path: &Path) -> Option<DownloadRecord> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let modified = modified
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    for root in path.ancestors().skip(1).take(MAX_RECORD_DEPTH) {
        let name = path.strip_prefix(root).ok()?;
        let mut record = root
            .join(".cache/huggingface/download")
            .join(name)
            .into_os_string();
        record.push(".metadata");
        let record = PathBuf::from(record);
        let Ok(file) = std::fs::File::open(&record) else {
            continue;
        };
        let mut text = String::new();
        file.take(MAX_RECORD_BYTES).read_to_string(&mut text).ok()?;
        let (commit, etag, written) = parse_download_record(&text)?;
        return (modified - 1.0 <= written).then(|| DownloadRecord {
            path: record,
            commit: commit.to_string(),
            sha256: is_sha256_hex(etag).then(|| etag.to_string()),
        });
    }
    None
}

/// `(commit, etag, time written)` of a download record, or `None` if it is not one.
fn parse_download_record(text: &str) -> Option<(&str, &str, f64)> {
    let mut lines = text.lines().map(str::trim);
    let commit = lines.next()?;
    let etag = lines.next()?;
    let written: f64 = lines.next()?.parse().ok()?;
    let is_commit = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    (is_commit && !etag.is_empty() && written.is_finite()).then_some((commit, etag, written))
}

/// A file's SHA-256 as the Hub's tools recorded it, without reading the file: its HF cache blob name or its
/// `--local-dir` download record. The second value says where it came from, for error messages.
pub fn recorded_sha256(path: &Path) -> Option<(String, String)> {
    if let Some(known) = cached_sha256(path) {
        return Some((known, "the Hugging Face cache's blob name".to_string()));
    }
    let record = download_record(path)?;
    let sha256 = record.sha256?;
    Some((
        sha256,
        format!("the download record {}", record.path.display()),
    ))
}

/// The commit every one of `files` was downloaded from, when each has a download record and they agree.
pub fn recorded_commit(files: &[PathBuf]) -> Option<String> {
    let mut commits = files.iter().map(|f| download_record(f).map(|r| r.commit));
    let first = commits.next()??;
    commits.all(|c| c.as_ref() == Some(&first)).then_some(first)
}

/// SHA-256 (lower-case hex) of a file's bytes: from the HF cache link when possible, else streamed.
pub fn file_sha256(path: &Path) -> Result<String> {
    match cached_sha256(path) {
        Some(known) => Ok(known),
        None => hashed_sha256(path),
    }
}

/// SHA-256 (lower-case hex) of a file's bytes, always read and hashed (a cache link's name is not trusted).
pub fn hashed_sha256(path: &Path) -> Result<String> {
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

/// BLAKE3 (lower-case hex) of a file's bytes: the standard BLAKE3 hash, computed as its tree of
/// [`DIGEST_LEAF`]-byte subtrees hashed in parallel (see [`blake3_of_file`]).
pub fn file_blake3(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| FormatError::io(path, e))?;
    let len = file.metadata().map_err(|e| FormatError::io(path, e))?.len();
    let hash = blake3_of_file(&file, len, DIGEST_LEAF).map_err(|e| FormatError::io(path, e))?;
    Ok(hash.to_hex().to_string())
}

/// Bytes per leaf of the parallel file digest: each rayon task reads one leaf with `pread` into a buffer of
/// its thread and hashes it there. A power of two (leaves must be whole BLAKE3 subtrees) small enough that the
/// buffer stays in a core's L2 cache between the copy and the hash.
pub const DIGEST_LEAF: usize = 256 << 10;

/// BLAKE3 of the first `len` bytes of `file`, the same value as `blake3::hash` of those bytes.
///
/// The input is split along BLAKE3's own tree (left subtrees are the largest power of two below the length,
/// [`left_subtree_len`]) down to subtrees of at most `leaf` bytes. Each leaf is a rayon task that reads its
/// bytes with `pread` into a per-thread buffer and hashes them while they are in cache; the chaining values
/// are merged back up the tree. So both cores read and hash (a single reader with a parallel hash leaves one
/// core idle while it copies), nothing is memory-mapped (mapping page-cache pages costs about as much as
/// copying them here, and would count towards our RSS), and memory stays at one leaf per thread.
///
/// `leaf` must be a power of two of at least [`blake3::CHUNK_LEN`] bytes. A file shorter than `len` is an
/// `UnexpectedEof` error.
#[cfg(unix)]
pub fn blake3_of_file(
    file: &std::fs::File,
    len: u64,
    leaf: usize,
) -> std::io::Result<blake3::Hash> {
    use blake3::hazmat::{left_subtree_len, merge_subtrees_root, Mode};
    if !leaf.is_power_of_two() || leaf < blake3::CHUNK_LEN {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("digest leaf of {leaf} bytes: not a power of two of at least one BLAKE3 chunk"),
        ));
    }
    if len <= leaf as u64 {
        return with_leaf_buffer(leaf, |buf| {
            let bytes = &mut buf[..len as usize];
            read_exact_at(file, bytes, 0)?;
            Ok(blake3::hash(bytes))
        });
    }
    let left = left_subtree_len(len);
    let (a, b) = rayon::join(
        || subtree_cv(file, 0, left, leaf),
        || subtree_cv(file, left, len - left, leaf),
    );
    Ok(merge_subtrees_root(&a?, &b?, Mode::Hash))
}

/// Chaining value of the BLAKE3 subtree of `len` bytes at `offset` (a multiple of `leaf`, or of a larger power
/// of two, because every split is at a power of two not below `leaf`).
#[cfg(unix)]
fn subtree_cv(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    leaf: usize,
) -> std::io::Result<blake3::hazmat::ChainingValue> {
    use blake3::hazmat::{left_subtree_len, merge_subtrees_non_root, HasherExt, Mode};
    if len <= leaf as u64 {
        return with_leaf_buffer(leaf, |buf| {
            let bytes = &mut buf[..len as usize];
            read_exact_at(file, bytes, offset)?;
            Ok(blake3::Hasher::new()
                .set_input_offset(offset)
                .update(bytes)
                .finalize_non_root())
        });
    }
    let left = left_subtree_len(len);
    let (a, b) = rayon::join(
        || subtree_cv(file, offset, left, leaf),
        || subtree_cv(file, offset + left, len - left, leaf),
    );
    Ok(merge_subtrees_non_root(&a?, &b?, Mode::Hash))
}

/// Run `f` on this thread's leaf buffer (at least `leaf` bytes, reused across leaves and files).
#[cfg(unix)]
fn with_leaf_buffer<T>(
    leaf: usize,
    f: impl FnOnce(&mut [u8]) -> std::io::Result<T>,
) -> std::io::Result<T> {
    thread_local! {
        static LEAF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LEAF.with(|buf| {
        let mut buf = buf.borrow_mut();
        if buf.len() < leaf {
            buf.resize(leaf, 0);
        }
        f(&mut buf[..leaf])
    })
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, bytes: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
}

/// Elsewhere: one sequential reader, hashed on all cores a buffer at a time (same value).
#[cfg(not(unix))]
pub fn blake3_of_file(
    file: &std::fs::File,
    len: u64,
    leaf: usize,
) -> std::io::Result<blake3::Hash> {
    let mut reader = std::io::Read::take(file, len);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; leaf.max(4 << 20)];
    let mut total = 0u64;
    loop {
        let n = read_full(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update_rayon(&buf[..n]);
    }
    if total < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(hasher.finalize())
}

/// Fill `buf` as far as the reader allows; returns the bytes read (0 at the end).
#[cfg(not(unix))]
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
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

    fn write_record(dir: &Path, name: &str, commit: &str, etag: &str, written: f64) {
        datasets::local_dir::write_record(dir, name, commit, etag, written).unwrap();
    }

    /// A `--local-dir` record gives the commit, and the SHA-256 of an LFS file, while the file is unchanged.
    #[test]
    fn local_dir_download_records_are_read_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let sha = "ab".repeat(32);
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        let weights = dir.path().join("sub/model.safetensors");
        let config = dir.path().join("sub/config.json");
        std::fs::write(&weights, b"weights").unwrap();
        std::fs::write(&config, b"{}").unwrap();
        let now = datasets::local_dir::unix_now();
        // Recorded by the repository name (`sub/...`) at the download root, two levels up from the file.
        write_record(dir.path(), "sub/model.safetensors", commit, &sha, now);
        write_record(dir.path(), "sub/config.json", commit, &"c".repeat(40), now);
        let record = download_record(&weights).unwrap();
        assert_eq!(record.commit, commit);
        assert_eq!(record.sha256.as_deref(), Some(sha.as_str()));
        assert!(record
            .path
            .ends_with("download/sub/model.safetensors.metadata"));
        // A file kept in git has a SHA-1 etag: the commit, but no SHA-256.
        assert_eq!(download_record(&config).unwrap().sha256, None);
        assert_eq!(recorded_sha256(&config), None);
        let (known, claimed_by) = recorded_sha256(&weights).unwrap();
        assert_eq!(known, sha);
        assert!(
            claimed_by.contains("model.safetensors.metadata"),
            "{claimed_by}"
        );
        assert_eq!(
            recorded_commit(&[weights.clone(), config.clone()]).as_deref(),
            Some(commit)
        );

        // Files from two commits have no one revision; a file without a record has none either.
        write_record(
            dir.path(),
            "sub/config.json",
            &"d".repeat(40),
            &"c".repeat(40),
            now,
        );
        assert_eq!(recorded_commit(&[weights.clone(), config.clone()]), None);
        let loose = dir.path().join("sub/loose.safetensors");
        std::fs::write(&loose, b"x").unwrap();
        assert_eq!(download_record(&loose), None);
        assert_eq!(recorded_commit(&[weights.clone(), loose]), None);

        // Modified after the record was written (beyond huggingface_hub's one-second slack): not trusted.
        let later = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(now + 5.0);
        let file = std::fs::File::options().write(true).open(&weights).unwrap();
        file.set_modified(later).unwrap();
        assert_eq!(download_record(&weights), None);
        assert_eq!(recorded_sha256(&weights), None);
        file.set_modified(later - std::time::Duration::from_secs(4))
            .unwrap();
        assert!(download_record(&weights).is_some(), "within the slack");

        // Malformed records are not records: short commit, missing lines, a time that is not a number.
        for text in [
            format!("abc\n{sha}\n{now}\n"),
            format!("{commit}\n"),
            format!("{commit}\n{sha}\nyesterday\n"),
            format!("{commit}\n\n{now}\n"),
            format!("{commit}\n{sha}\nNaN\n"),
        ] {
            let record = dir
                .path()
                .join(datasets::local_dir::RECORDS_DIR)
                .join("sub/model.safetensors.metadata");
            std::fs::write(&record, &text).unwrap();
            assert_eq!(download_record(&weights), None, "{text:?}");
        }
    }

    /// The parallel tree digest is the standard BLAKE3 of the bytes at every length around chunk, leaf and
    /// subtree boundaries, for small leaves (deep trees) and the production one.
    #[test]
    fn parallel_file_digest_is_standard_blake3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        let mut data = vec![0u8; 3 * DIGEST_LEAF + 5000];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mut lengths = vec![
            0usize, 1, 1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097,
        ];
        lengths.extend([5 * 1024 + 17, 8192, 8193, 65536, 65537, 100_000]);
        for leaf in [1024usize, 2048, 4096, DIGEST_LEAF] {
            let mut lens = lengths.clone();
            for k in [1usize, 2, 3, 4, 7] {
                lens.extend([k * leaf - 1, k * leaf, k * leaf + 1]);
            }
            for len in lens.into_iter().filter(|&l| l <= data.len()) {
                let got = blake3_of_file(&file, len as u64, leaf).unwrap();
                assert_eq!(got, blake3::hash(&data[..len]), "len {len}, leaf {leaf}");
            }
        }
        assert_eq!(
            file_blake3(&path).unwrap(),
            blake3::hash(&data).to_hex().to_string()
        );
        // Asking for more bytes than the file has is an error, not a short digest.
        let err = blake3_of_file(&file, data.len() as u64 + 1, 4096).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(blake3_of_file(&file, 10, 1000).is_err());
        assert!(blake3_of_file(&file, 10, 512).is_err());
    }
}
