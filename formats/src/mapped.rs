//! A read-only memory map of a weight file that gives its pages back in batches.
//!
//! Sampling a tensor touches a few rows, but the kernel maps whole page-cache folios (up to 2 MiB each) around
//! every access, so a pass over a multi-GB checkpoint would keep most of the file in the resident set if the
//! mappings were never dropped. Dropping them after every tensor (one `madvise(MADV_DONTNEED)` per tensor)
//! keeps the resident set small but costs a TLB shootdown of every other core per call, and splits the huge
//! page mappings it cuts through: on a 90 MB model that was about a twentieth of the CPU time of a fingerprint.
//! So readers note what they are done with ([`MappedFile::release`]), and every [`RELEASE_BATCH`] bytes so
//! noted the whole map is dropped in one call. A file smaller than that is never dropped before it is unmapped.

use crate::error::{Error, Result};
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes of tensor data released between two drops of the whole map: the most the mapped part of the
/// resident set can grow to between drops (plus the tensors in flight).
pub const RELEASE_BATCH: u64 = 64 << 20;

/// A private read-only map of a whole file (dereferences to its bytes).
pub struct MappedFile {
    map: memmap2::Mmap,
    /// Bytes noted by [`MappedFile::release`] so far.
    released: AtomicU64,
}

impl MappedFile {
    /// Map `file` (opened from `path`, which names it in errors).
    pub fn map(path: &Path, file: &std::fs::File) -> Result<Self> {
        // SAFETY: the map is read-only and private to this value; provsearch never writes model files. Every
        // access is bounds-checked, so a concurrent modification can give wrong numbers but not out-of-bounds
        // reads (truncation by another process while mapped would fault: the usual caveat of mapped reading).
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
        Ok(MappedFile {
            map,
            released: AtomicU64::new(0),
        })
    }

    /// Note that `bytes` bytes of the file will not be read again soon. Whenever the running total crosses a
    /// multiple of [`RELEASE_BATCH`], the page-table entries of the whole map are dropped; the data stays in
    /// the page cache, and any later access (also by another thread reading right now) faults it back in.
    pub fn release(&self, bytes: u64) {
        let before = self.released.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) / RELEASE_BATCH == before / RELEASE_BATCH {
            return;
        }
        // SAFETY: the map is private and read-only, so nothing in it was ever written: DONTNEED only drops our
        // page-table entries, and a later read (through any reference into the map) sees the same file bytes.
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn released_bytes_do_not_change_what_is_read() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let map = MappedFile::map(file.path(), file.as_file()).unwrap();
        let held = &map[4096..8192];
        assert_eq!(held, &data[4096..8192]);
        // Crosses a batch boundary: the whole map is dropped while `held` still points into it.
        map.release(RELEASE_BATCH);
        assert_eq!(map.released.load(Ordering::Relaxed), RELEASE_BATCH);
        assert_eq!(held, &data[4096..8192]);
        assert_eq!(&map[..], &data[..]);
    }

    /// Resident bytes of the mapping that starts at `start`, from `/proc/self/smaps`.
    #[cfg(target_os = "linux")]
    fn resident_bytes(start: *const u8) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{:x}-", start as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines.next().expect("the mapping is listed");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        let kb: u64 = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn pages_are_given_back_once_a_batch_is_released() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&vec![7u8; 64 * 4096]).unwrap();
        let map = MappedFile::map(file.path(), file.as_file()).unwrap();
        let touch = || map.iter().step_by(4096).map(|&b| b as u64).sum::<u64>();
        assert_eq!(touch(), 7 * 64);
        let mapped = resident_bytes(map.as_ptr());
        assert!(mapped >= 64 * 4096, "{mapped}");
        // Below a batch: the pages stay mapped.
        map.release(RELEASE_BATCH - 1);
        assert_eq!(resident_bytes(map.as_ptr()), mapped);
        // The running total crosses the batch: the whole map is dropped.
        map.release(1);
        assert_eq!(resident_bytes(map.as_ptr()), 0);
        assert_eq!(touch(), 7 * 64);
    }
}
