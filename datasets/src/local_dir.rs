//! The layout `huggingface-cli download ORG/NAME --local-dir DIR` leaves (huggingface_hub 0.23 and later,
//! `_local_folder.py`): the repository's files in `DIR`, and per file a download record in
//! `DIR/.cache/huggingface/download/<name in the repo>.metadata` of three lines: the commit, the etag (an LFS
//! file's SHA-256, a git-stored file's blob SHA-1) and the Unix time the record was written.

use std::path::Path;

/// Where the records live, relative to the download directory.
pub const RECORDS_DIR: &str = ".cache/huggingface/download";

/// Write the record of the file `name` (a repository path, `/`-separated) in the download directory `dir`.
pub fn write_record(
    dir: &Path,
    name: &str,
    commit: &str,
    etag: &str,
    written: f64,
) -> std::io::Result<()> {
    let record = dir.join(RECORDS_DIR).join(format!("{name}.metadata"));
    if let Some(parent) = record.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(record, format!("{commit}\n{etag}\n{written}\n"))
}

/// Seconds since the Unix epoch, as huggingface_hub writes them (`time.time()`).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
