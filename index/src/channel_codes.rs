//! Channel codes: locality-sensitive hashes of a fingerprint's embedding-channel profiles, indexed in an inverted
//! file per segment, so that a query finds models that share embedding channels with it *at any index*.
//!
//! The composite vector sketches weights at aligned positions and the anchor Gram; a width-pruned or grown
//! model, or one whose residual stream was reordered, shares no position with its parent and only the Gram's
//! weak, dimension-free evidence, which is lost among a million unrelated models (docs/index.md). Its channel
//! profiles are its parent's, though (`score::channels`). Each profiled channel is hashed by sign random
//! projection (SimHash): [`TABLES`] codes of [`BITS`] bits, each bit the sign of the channel's centred profile
//! against a ±1 pattern over the anchors (drawn from the anchor's own index, so two models with the same
//! anchors use the same patterns). Two profiles at correlation r agree on one bit with probability
//! 1 − arccos(r)/π, on a code with that to the 16th power: 1 for a reordered copy, 0.08 at r = 0.9, and 1.5·10⁻⁵
//! at r = 0 (2⁻¹⁶). Measured on the zoo (32 channels × 8 tables = 256 codes per model): unrelated pairs share at
//! most 2 codes, width-pruned, width-grown and residual-permuted derivatives 6–256.
//!
//! Each segment stores its records' codes as an inverted file ([`CHANNELS_FILE`], written by [`write`], read by
//! [`ChannelFile`]): a table of slots sized to the segment (about sixteen postings each), and per slot the
//! records whose codes hash there, each with an 8-bit check of its code. A query reads the slots of its own
//! codes, keeps the postings whose check matches, and rescores the records that share at least
//! [`MIN_SHARED_CODES`] codes, the [`MAX_CODE_CANDIDATES`] that share most. The work is the postings read:
//! 256 codes × count / 2 048 records each (a code value is shared by chance by one channel in 65 536) plus the
//! slots' other entries, ≈ 13 000 entries per 100 000 records in theory. Measured on the 100K scale corpus:
//! 24 postings per slot on average (2²⁰ slots at most), but a query's codes land in slots of 86 on average
//! (common codes are common to queries too), ≈ 22 000 entries per lookup.

use crate::anchors::ANCHOR_SET_VERSION;
use crate::composite::dot;
use crate::error::{Error, Result};
use crate::footer::{self, FooterWriter};
use crate::prefetch::prefetch_lines;
use crate::sampling::splitmix64;
use crate::schema::EmbeddingSignals;
use memmap2::Mmap;
use std::cell::RefCell;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// File name of a segment's channel codes.
pub const CHANNELS_FILE: &str = "channels.bin";
/// File kind tag of [`CHANNELS_FILE`].
pub const CHANNELS_KIND: [u8; 4] = *b"CHNL";
/// Header: record count (u64), anchor set version (u32), tables, bits and slot bits (a byte each), a zero.
const HEADER_LEN: usize = 16;

/// Codes per channel, each from its own projections.
pub const TABLES: usize = 8;

/// Bits per code.
pub const BITS: usize = 16;

/// Projections per channel.
const PROJECTIONS: usize = TABLES * BITS;

/// Fewest present anchors for codes (as for channel matching: short profiles hash too coarsely).
pub const MIN_ANCHORS: usize = 48;

/// Codes a record must share with the query to be rescored.
pub const MIN_SHARED_CODES: usize = 4;

/// Most records a segment contributes through shared codes.
pub const MAX_CODE_CANDIDATES: usize = 16;

/// Seed of the projection patterns. Changing it (or [`TABLES`], [`BITS`]) makes stored codes incomparable.
const SEED: u64 = 0x6368_616e_6e65_6c73; // "channels"

/// The ±1 patterns at one anchor: bit `t·BITS + b` set means +1 in bit `b` of table `t`.
fn pattern(anchor_set_version: u32, anchor: usize) -> u128 {
    let key = SEED ^ ((anchor_set_version as u64) << 40) ^ anchor as u64;
    let lo = splitmix64(key);
    let hi = splitmix64(lo ^ 0xA5A5_A5A5_A5A5_A5A5);
    (lo as u128) | ((hi as u128) << 64)
}

/// The codes of a fingerprint's channel profiles: `table << 16 | code`, sorted and without repeats. Empty when
/// there are no profiles, fewer than [`MIN_ANCHORS`] anchors, or the stored profiles do not fit the anchor
/// count. Codes are comparable between fingerprints of one anchor set version only.
pub fn channel_codes(e: &EmbeddingSignals) -> Vec<u32> {
    let present = e.present_anchors();
    let n = present.len();
    let channels = e.channel_ids.len();
    if n < MIN_ANCHORS || channels == 0 || e.channel_profiles.len() != channels * n {
        return Vec::new();
    }
    // The ±1 of every projection over the anchors, one row per projection, padded with zeros to a multiple
    // of 64 so that each projection of a profile is one `composite::dot` (AVX-512 VNNI where the CPU has it).
    let stride = n.div_ceil(64) * 64;
    let mut signs = vec![0i8; PROJECTIONS * stride];
    let mut pattern_sums = [0i64; PROJECTIONS];
    for (i, &a) in present.iter().enumerate() {
        let p = pattern(e.anchor_set_version, a);
        for (bit, sum) in pattern_sums.iter_mut().enumerate() {
            let s = if p >> bit & 1 == 1 { 1 } else { -1 };
            signs[bit * stride + i] = s;
            *sum += s as i64;
        }
    }
    let mut padded = vec![0i8; stride];
    let mut codes = Vec::with_capacity(channels * TABLES);
    for profile in e.channel_profiles.chunks_exact(n) {
        padded[..n].copy_from_slice(profile);
        let total: i64 = profile.iter().map(|&v| v as i64).sum();
        for table in 0..TABLES {
            let mut code = 0u32;
            for b in 0..BITS {
                let bit = table * BITS + b;
                let projection = dot(&padded, &signs[bit * stride..(bit + 1) * stride]) as i64;
                // The centred profile's projection, times n: Σ r·v − (Σ v)(Σ r)/n.
                if projection * n as i64 - total * pattern_sums[bit] > 0 {
                    code |= 1 << b;
                }
            }
            codes.push((table as u32) << BITS | code);
        }
    }
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// How many codes two sorted code lists share.
pub fn shared_codes(a: &[u32], b: &[u32]) -> usize {
    a.len() - multiset_difference(a, b).0.len()
}

/// Codes ahead of the one being counted whose postings are requested from memory (see [`ChannelFile::count`]).
const PREFETCH_CODES_AHEAD: usize = 6;

/// Where a code's postings go: a slot of the segment's table (the low `slot_bits` of a hash of the code) and an
/// 8-bit check (the top bits of the hash) that tells most codes sharing a slot apart.
fn slot_and_check(code: u32, slot_bits: u32) -> (usize, u32) {
    let h = splitmix64(code as u64 ^ SEED);
    ((h & ((1 << slot_bits) - 1)) as usize, (h >> 56) as u32)
}

/// Slots for `postings` postings: about sixteen per slot, between 2⁶ and 2²⁰, so that a small segment (an
/// ingest commit of 64 models) does not carry a table sized for millions. A record then shares a slot and a
/// check with one of a query's codes by chance 256 · 256 / (slots · 256) ≈ 16 / records times in all: noise
/// far below [`MIN_SHARED_CODES`] in any segment of more than a handful of records.
fn slot_bits_for(postings: usize) -> u32 {
    (postings / 16)
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(6, 20)
}

/// Most records one file can index: a posting is the record number (24 bits) and the check (8 bits).
pub const MAX_RECORDS: usize = 1 << 24;

/// Write `dir/channels.bin` for a segment whose record `d` has the codes `codes[offsets[d]..offsets[d + 1]]`
/// (codes of [`ANCHOR_SET_VERSION`] only). Postings are grouped by slot, records in increasing order within
/// a slot.
pub fn write(dir: &Path, codes: &[u32], offsets: &[u32]) -> Result<()> {
    let path = dir.join(CHANNELS_FILE);
    let io = |e: std::io::Error| Error::io(&path, e);
    let count = offsets.len().saturating_sub(1);
    let slot_bits = slot_bits_for(codes.len());
    let slots = 1usize << slot_bits;
    let mut starts = vec![0u32; slots + 1];
    for &c in codes {
        starts[slot_and_check(c, slot_bits).0 + 1] += 1;
    }
    for i in 0..slots {
        starts[i + 1] += starts[i];
    }
    if count > MAX_RECORDS {
        return Err(Error::corrupt(
            &path,
            format!("{count} records; a channel-code file indexes at most {MAX_RECORDS}"),
        ));
    }
    let mut postings = vec![0u32; codes.len()];
    let mut next = starts.clone();
    for (doc, w) in offsets.windows(2).enumerate() {
        for &c in &codes[w[0] as usize..w[1] as usize] {
            let (slot, check) = slot_and_check(c, slot_bits);
            postings[next[slot] as usize] = (doc as u32) << 8 | check;
            next[slot] += 1;
        }
    }
    let file = std::fs::File::create(&path).map_err(io)?;
    let mut w = FooterWriter::new(BufWriter::with_capacity(1 << 20, file));
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(&(count as u64).to_le_bytes());
    header[8..12].copy_from_slice(&ANCHOR_SET_VERSION.to_le_bytes());
    header[12] = TABLES as u8;
    header[13] = BITS as u8;
    header[14] = slot_bits as u8;
    w.write_all(&header).map_err(io)?;
    for x in &starts {
        w.write_all(&x.to_le_bytes()).map_err(io)?;
    }
    for x in &postings {
        w.write_all(&x.to_le_bytes()).map_err(io)?;
    }
    let (w, _) = w.finish(CHANNELS_KIND).map_err(io)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

/// A segment's channel codes, memory-mapped.
pub struct ChannelFile {
    path: PathBuf,
    map: Mmap,
    count: usize,
    slot_bits: u32,
    postings: usize,
}

impl ChannelFile {
    /// Map `dir/channels.bin` and check that it indexes `count` records with this build's code definition.
    pub fn open(dir: &Path, count: u32) -> Result<ChannelFile> {
        let path = dir.join(CHANNELS_FILE);
        let map = footer::map(&path)?;
        let (body, _) = footer::payload(&path, &map, CHANNELS_KIND)?;
        if body.len() < HEADER_LEN {
            return Err(Error::corrupt(&path, "shorter than its header"));
        }
        let file_count = u64::from_le_bytes(body[0..8].try_into().unwrap_or_default());
        let version = u32::from_le_bytes(body[8..12].try_into().unwrap_or_default());
        let (tables, bits, slot_bits) = (body[12] as usize, body[13] as usize, body[14] as u32);
        if file_count != count as u64
            || tables != TABLES
            || bits != BITS
            || !(6..=20).contains(&slot_bits)
        {
            return Err(Error::corrupt(
                &path,
                format!(
                    "{file_count} records, {tables} tables of {bits} bits, 2^{slot_bits} slots; expected \
                     {count}, {TABLES} of {BITS}"
                ),
            ));
        }
        let slots = 1usize << slot_bits;
        let table_end = HEADER_LEN + 4 * (slots + 1);
        if body.len() < table_end {
            return Err(Error::corrupt(&path, "shorter than its slot table"));
        }
        // O(1), like the other segment files: a slot's range is clamped where it is read, and `index verify`
        // checks the whole file's CRC (a pass over up to 2²⁰ slots here would cost every cold query).
        let at = HEADER_LEN + 4 * slots;
        let postings =
            u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize;
        if body.len() != table_end + 4 * postings {
            return Err(Error::corrupt(
                &path,
                "slot table does not fit the postings",
            ));
        }
        // Another anchor set: valid, but its codes cannot meet this build's queries.
        let postings = if version == ANCHOR_SET_VERSION {
            postings
        } else {
            0
        };
        Ok(ChannelFile {
            path,
            map,
            count: count as usize,
            slot_bits,
            postings,
        })
    }

    /// Records sharing at least `min_shared` of `codes` (a query's [`channel_codes`]) that `allow` accepts,
    /// with how many they share: the `limit` that share most, most first (ties by record number).
    pub fn shared(
        &self,
        codes: &[u32],
        min_shared: usize,
        limit: usize,
        allow: impl Fn(u32) -> bool,
    ) -> Vec<(u32, usize)> {
        self.count(codes, min_shared).best(limit, allow)
    }

    /// How many of `codes` every record shares, from one pass over the codes' postings; the records that
    /// reach `min_shared` are noted on the way.
    pub fn count(&self, codes: &[u32], min_shared: usize) -> SharedCounts {
        self.count_sorted(sorted(codes), min_shared.max(1))
    }

    /// [`Self::count`] of codes already sorted, with its threshold (at least 1).
    fn count_sorted(&self, codes: Vec<u32>, threshold: usize) -> SharedCounts {
        let mut counts = SharedCounts {
            codes: Vec::new(),
            threshold,
            counts: Vec::new(),
            reached: Vec::new(),
        };
        if self.postings > 0 && !codes.is_empty() {
            counts.counts = zeroed_counts(self.count);
            self.add_postings(&codes, &mut counts);
        }
        counts.codes = codes;
        counts
    }

    /// The counts for `codes` from the counts of an earlier lookup in this file: the postings of the codes
    /// only the earlier lookup had are taken away, those of the codes only `codes` has are added. The result
    /// is [`Self::count`]'s, and when the two code lists are close (a model and its quantized or lightly
    /// tuned copy share most codes) only a small part of the postings is read. `earlier` must come from this
    /// file; when it counted nothing, or its codes differ from `codes` in more codes than `codes` holds, the
    /// counts are made afresh.
    pub fn recount(&self, earlier: SharedCounts, codes: &[u32]) -> SharedCounts {
        let codes = sorted(codes);
        let (removed, added) = multiset_difference(&earlier.codes, &codes);
        if earlier.counts.len() != self.count || removed.len() + added.len() >= codes.len() {
            return self.count_sorted(codes, earlier.threshold);
        }
        let mut counts = earlier;
        counts.codes = codes;
        self.for_each_match(&removed, |doc| {
            if let Some(n) = counts.counts.get_mut(doc as usize) {
                *n = n.saturating_sub(1);
            }
        });
        self.add_postings(&added, &mut counts);
        // A record noted earlier may have fallen below the threshold, or reached it twice.
        counts.reached.sort_unstable();
        counts.reached.dedup();
        let SharedCounts {
            counts: c,
            reached,
            threshold,
            ..
        } = &mut counts;
        reached.retain(|&doc| c[doc as usize] as usize >= *threshold);
        counts
    }

    /// Add one to a record's count for each posting of `codes` that matches, noting the records that reach
    /// the threshold (once each: counts only grow here).
    fn add_postings(&self, codes: &[u32], counts: &mut SharedCounts) {
        let SharedCounts {
            counts: c,
            reached,
            threshold,
            ..
        } = counts;
        self.for_each_match(codes, |doc| {
            if let Some(n) = c.get_mut(doc as usize) {
                *n = n.saturating_add(1);
                if *n as usize == *threshold {
                    reached.push(doc);
                }
            }
        });
    }

    /// Call `f` with the record of every posting that one of `codes` selects (its slot, then its check).
    fn for_each_match(&self, codes: &[u32], mut f: impl FnMut(u32)) {
        let body = &self.map[..self.map.len().saturating_sub(footer::FOOTER_LEN)];
        let slots = 1usize << self.slot_bits;
        let postings_at = HEADER_LEN + 4 * (slots + 1);
        let le32 =
            |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        // Every code's range of postings first: independent reads of the slot table, whose cache misses the
        // processor overlaps. A slot's range is clamped to the postings, so a damaged table yields wrong
        // candidates (which rescoring discards), never a read out of bounds.
        let spans: Vec<(usize, usize, u32)> = codes
            .iter()
            .map(|&c| {
                let (slot, check) = slot_and_check(c, self.slot_bits);
                let end = (le32(HEADER_LEN + 4 * (slot + 1)) as usize).min(self.postings);
                let start = (le32(HEADER_LEN + 4 * slot) as usize).min(end);
                (start, end, check)
            })
            .collect();
        // The postings of a query's codes are scattered over the file, so each run's first cache lines are
        // requested a few codes ahead of its turn.
        for (k, &(start, end, check)) in spans.iter().enumerate() {
            if let Some(&(from, to, _)) = spans.get(k + PREFETCH_CODES_AHEAD) {
                prefetch_lines(&body[postings_at + 4 * from..postings_at + 4 * to]);
            }
            for i in start..end {
                let posting = le32(postings_at + 4 * i);
                if posting & 0xFF == check {
                    f(posting >> 8);
                }
            }
        }
    }

    /// Check the footer's checksum.
    pub fn verify(&self) -> Result<()> {
        footer::verified(&self.path, &self.map, CHANNELS_KIND).map(|_| ())
    }
}

/// Per-record counts of the codes each record of one file shares with a query ([`ChannelFile::count`]), kept
/// so that a second lookup with similar codes reads only the postings of the codes that differ
/// ([`ChannelFile::recount`]).
pub struct SharedCounts {
    /// The query's codes, sorted (repeats kept: each is counted).
    codes: Vec<u32>,
    threshold: usize,
    /// One per record; empty when nothing was counted (no postings, or no codes).
    counts: Vec<u16>,
    /// Records whose count reached `threshold`, each once.
    reached: Vec<u32>,
}

impl SharedCounts {
    /// Records sharing at least the threshold's codes that `allow` accepts, with how many they share: the
    /// `limit` that share most, most first (ties by record number).
    pub fn best(&self, limit: usize, allow: impl Fn(u32) -> bool) -> Vec<(u32, usize)> {
        let mut out: Vec<(u32, usize)> = self
            .reached
            .iter()
            .filter(|&&doc| allow(doc))
            .map(|&doc| (doc, self.counts[doc as usize] as usize))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(limit);
        out
    }
}

impl Drop for SharedCounts {
    fn drop(&mut self) {
        let counts = std::mem::take(&mut self.counts);
        if counts.capacity() > 0 {
            SPARE_COUNTS.with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.len() < MAX_SPARE_COUNTS {
                    spare.push(counts);
                }
            });
        }
    }
}

thread_local! {
    /// Count buffers of finished lookups, for the next lookups on this thread. A query keeps one per segment
    /// until its expansion is done (two bytes per record: 2 MB at a million), and allocating them afresh each
    /// time cost a page fault per 4 KiB once the allocator handed the memory back to the system: 1.5–2.5 ms
    /// a query at a million records, measured (`scale-bench`, all cores, 14× the page faults).
    static SPARE_COUNTS: RefCell<Vec<Vec<u16>>> = const { RefCell::new(Vec::new()) };
}

/// Most spare count buffers a thread keeps (one per segment of a query; an index has a few dozen at most
/// after compaction).
const MAX_SPARE_COUNTS: usize = 64;

/// `len` zeroed counts, in this thread's smallest spare buffer that is large enough (so that an index of
/// segments of mixed sizes keeps a fitting spare for each), if any.
fn zeroed_counts(len: usize) -> Vec<u16> {
    let spare = SPARE_COUNTS.with(|spare| {
        let mut spare = spare.borrow_mut();
        let (fits, _) = spare
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= len)
            .min_by_key(|(_, v)| v.capacity())?;
        Some(spare.swap_remove(fits))
    });
    match spare {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0);
            v
        }
        None => vec![0; len],
    }
}

fn sorted(codes: &[u32]) -> Vec<u32> {
    let mut v = codes.to_vec();
    v.sort_unstable();
    v
}

/// What `a` holds that `b` lacks, and what `b` holds that `a` lacks, for two sorted lists taken as multisets.
fn multiset_difference(a: &[u32], b: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                only_a.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                only_b.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    only_a.extend(&a[i..]);
    only_b.extend(&b[j..]);
    (only_a, only_b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(key: u64) -> f64 {
        crate::testutil::normal(0xC0DE, key)
    }

    /// Signals with `anchors` present anchors and the given profiles (one per channel).
    fn signals(anchors: usize, profiles: &[Vec<f64>]) -> EmbeddingSignals {
        let channels: Vec<(u32, Vec<f64>)> = profiles
            .iter()
            .enumerate()
            .map(|(k, p)| (k as u32, p.clone()))
            .collect();
        crate::testutil::profiled_signals(anchors, &channels)
    }

    fn profiles(seed: u64, channels: usize, anchors: usize) -> Vec<Vec<f64>> {
        (0..channels)
            .map(|c| {
                (0..anchors)
                    .map(|a| normal(seed << 32 | (c * 1000 + a) as u64))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn reordered_channels_share_every_code_and_independent_ones_almost_none() {
        let parent = profiles(1, 32, 160);
        let codes = channel_codes(&signals(160, &parent));
        assert_eq!(codes.len(), 32 * TABLES);
        let mut reordered = parent.clone();
        reordered.reverse();
        assert_eq!(channel_codes(&signals(160, &reordered)), codes);
        // A subset of the channels (width pruning) with noise of a third of the values: r ≈ 0.95.
        let pruned: Vec<Vec<f64>> = parent[8..]
            .iter()
            .enumerate()
            .map(|(c, p)| {
                p.iter()
                    .enumerate()
                    .map(|(a, v)| v + 0.33 * normal(7 << 32 | (c * 1000 + a) as u64))
                    .collect()
            })
            .collect();
        let shared = shared_codes(&codes, &channel_codes(&signals(160, &pruned)));
        assert!(shared >= 3 * MIN_SHARED_CODES, "{shared}");
        for seed in 2..6 {
            let other = channel_codes(&signals(160, &profiles(seed, 32, 160)));
            assert!(
                shared_codes(&codes, &other) < MIN_SHARED_CODES,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn a_shifted_profile_keeps_its_codes_and_short_or_malformed_ones_have_none() {
        let parent = profiles(3, 4, 100);
        let shifted: Vec<Vec<f64>> = parent
            .iter()
            .map(|p| p.iter().map(|v| v + 0.5).collect())
            .collect();
        // Centring makes the codes blind to a channel's offset (up to rounding of the stored i8).
        let (a, b) = (
            channel_codes(&signals(100, &parent)),
            channel_codes(&signals(100, &shifted)),
        );
        assert!(
            shared_codes(&a, &b) >= a.len() * 3 / 4,
            "{}",
            shared_codes(&a, &b)
        );
        assert!(
            channel_codes(&signals(MIN_ANCHORS - 1, &profiles(3, 4, MIN_ANCHORS - 1))).is_empty()
        );
        let mut broken = signals(100, &parent);
        broken.channel_profiles.pop();
        assert!(channel_codes(&broken).is_empty());
    }

    #[test]
    fn the_file_finds_records_by_shared_codes_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let models: Vec<Vec<u32>> = (1..=6)
            .map(|seed| channel_codes(&signals(120, &profiles(seed, 32, 120))))
            .collect();
        // Record 6 is a reordered copy of model 2; record 7 has no codes (no embedding).
        let mut all = models.clone();
        all.push(models[1].clone());
        all.push(Vec::new());
        let (mut codes, mut offsets) = (Vec::new(), vec![0u32]);
        for c in &all {
            codes.extend(c);
            offsets.push(codes.len() as u32);
        }
        write(dir.path(), &codes, &offsets).unwrap();
        let file = ChannelFile::open(dir.path(), all.len() as u32).unwrap();
        file.verify().unwrap();
        let found = file.shared(&models[1], MIN_SHARED_CODES, 10, |_| true);
        assert_eq!(found, vec![(1, models[1].len()), (6, models[1].len())]);
        assert_eq!(
            file.shared(&models[1], MIN_SHARED_CODES, 1, |_| true).len(),
            1
        );
        assert_eq!(
            file.shared(&models[1], MIN_SHARED_CODES, 10, |d| d != 1),
            vec![(6, models[1].len())]
        );
        // A record is found from exactly `min_shared` shared codes on, with its count.
        for k in [MIN_SHARED_CODES - 1, MIN_SHARED_CODES, MIN_SHARED_CODES + 3] {
            let some = &models[2][..k];
            let expected = if k >= MIN_SHARED_CODES {
                vec![(2, k)]
            } else {
                Vec::new()
            };
            assert_eq!(
                file.shared(some, MIN_SHARED_CODES, 10, |_| true),
                expected,
                "{k} codes"
            );
        }
        // More shared codes rank first, whatever the record order.
        let mixed: Vec<u32> = {
            let mut m = models[4][..MIN_SHARED_CODES + 5].to_vec();
            m.extend(&models[3][..MIN_SHARED_CODES + 1]);
            m.sort_unstable();
            m
        };
        assert_eq!(
            file.shared(&mixed, MIN_SHARED_CODES, 10, |_| true),
            vec![(4, MIN_SHARED_CODES + 5), (3, MIN_SHARED_CODES + 1)]
        );
        let stranger = channel_codes(&signals(120, &profiles(9, 32, 120)));
        assert!(file
            .shared(&stranger, MIN_SHARED_CODES, 10, |_| true)
            .is_empty());

        // Another record count, a truncated file and a flipped byte are reported with the file's name.
        let e = ChannelFile::open(dir.path(), 3).err().unwrap().to_string();
        assert!(e.contains(CHANNELS_FILE) && e.contains("expected 3"), "{e}");
        let path = dir.path().join(CHANNELS_FILE);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 9]).unwrap();
        let e = ChannelFile::open(dir.path(), all.len() as u32)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(CHANNELS_FILE), "{e}");
        let mut flipped = bytes.clone();
        flipped[HEADER_LEN + 100] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let reopened = ChannelFile::open(dir.path(), all.len() as u32);
        assert!(reopened.is_err() || reopened.unwrap().verify().is_err());
    }

    /// The definition [`ChannelFile::shared`] counts by: for each record, the postings of its codes that a
    /// query code's slot and check select (every pair of a query code and a record's code with the same slot
    /// and check).
    fn counts_by_definition(records: &[Vec<u32>], query: &[u32], slot_bits: u32) -> Vec<usize> {
        let mut selected = std::collections::HashMap::new();
        for &q in query {
            *selected
                .entry(slot_and_check(q, slot_bits))
                .or_insert(0usize) += 1;
        }
        records
            .iter()
            .map(|codes| {
                codes
                    .iter()
                    .map(|&c| {
                        selected
                            .get(&slot_and_check(c, slot_bits))
                            .copied()
                            .unwrap_or(0)
                    })
                    .sum()
            })
            .collect()
    }

    /// What [`ChannelFile::shared`] returns, from [`counts_by_definition`].
    fn ranked(
        counts: &[usize],
        min_shared: usize,
        allow: impl Fn(u32) -> bool,
    ) -> Vec<(u32, usize)> {
        let mut out: Vec<(u32, usize)> = counts
            .iter()
            .enumerate()
            .map(|(doc, &n)| (doc as u32, n))
            .filter(|&(doc, n)| n >= min_shared.max(1) && allow(doc))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// A large segment (132 306 records) whose codes are widely shared: every record is counted exactly as the
    /// definition says, chance collisions of slot and check included, and relatives anywhere are found.
    #[test]
    fn a_large_segment_counts_shared_codes_by_the_definition() {
        const BLOCK: usize = 1 << 16;
        let count = 2 * BLOCK + 1234;
        // Every record draws 6 codes from a small space, so that codes are widely shared; a query's relatives
        // carry many of its codes, at both ends of the segment and in between.
        let query: Vec<u32> = (0..40u32).map(|i| 0x5000_0000 + 7919 * i).collect();
        let relatives: Vec<(usize, usize)> = vec![
            (0, 40),
            (5, 12),
            (BLOCK - 1, 9),
            (BLOCK, 33),
            (BLOCK + 1, 4),
            (2 * BLOCK - 1, 3),
            (2 * BLOCK, 17),
            (count - 1, 25),
        ];
        let records: Vec<Vec<u32>> = (0..count)
            .map(|doc| {
                let mut codes: Vec<u32> = (0..6u64)
                    .map(|k| (splitmix64(doc as u64 * 8 + k) % 3000) as u32)
                    .collect();
                if let Some(&(_, n)) = relatives.iter().find(|&&(d, _)| d == doc) {
                    codes.extend(&query[..n]);
                }
                codes.sort_unstable();
                codes.dedup();
                codes
            })
            .collect();
        let (mut codes, mut offsets) = (Vec::new(), vec![0u32]);
        for c in &records {
            codes.extend(c);
            offsets.push(codes.len() as u32);
        }
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &codes, &offsets).unwrap();
        let file = ChannelFile::open(dir.path(), count as u32).unwrap();
        // A query of common codes too, so that chance matches fill every block.
        let mut common = query.clone();
        common.extend(0..120u32);
        common.sort_unstable();
        let odd = |d: u32| d % 2 == 1;
        for q in [&query, &common] {
            let counts = counts_by_definition(&records, q, file.slot_bits);
            for min_shared in [1, MIN_SHARED_CODES, 10] {
                let want = ranked(&counts, min_shared, |_| true);
                assert!(want.len() >= 5, "{}", want.len());
                assert_eq!(file.shared(q, min_shared, usize::MAX, |_| true), want);
                assert_eq!(file.shared(q, min_shared, 5, |_| true), want[..5]);
                assert_eq!(
                    file.shared(q, min_shared, usize::MAX, odd),
                    ranked(&counts, min_shared, odd)
                );
            }
        }
        // Counts carried from one query to another are the fresh counts: from the query to a near copy (four
        // codes swapped, and one repeated), to its common-code superset (both read only the difference), and
        // back (counted afresh: more differs than the short list holds).
        let mut near = query[..36].to_vec();
        near.extend([3, 17, 0x5000_0000 + 7919 * 50, 0x5000_0000 + 7919 * 51, 17]);
        near.sort_unstable();
        // Relatives that drop below the threshold: eight of the query's codes among common ones, then none.
        let mut partial: Vec<u32> = (0..120u32).chain(query[..8].iter().copied()).collect();
        partial.sort_unstable();
        let mut none_of_them: Vec<u32> = (0..120u32)
            .chain((60..64).map(|i| 0x5000_0000 + 7919 * i))
            .collect();
        none_of_them.sort_unstable();
        for (from, to) in [
            (&query, &near),
            (&query, &common),
            (&common, &query),
            (&near, &common),
            (&partial, &none_of_them),
        ] {
            let (removed, added) = multiset_difference(from, to);
            let by_difference = removed.len() + added.len() < to.len();
            assert_eq!(by_difference, !std::ptr::eq(to, &query));
            let counts = counts_by_definition(&records, to, file.slot_bits);
            let carried = file.recount(file.count(from, MIN_SHARED_CODES), to);
            assert_eq!(
                carried.best(usize::MAX, |_| true),
                ranked(&counts, MIN_SHARED_CODES, |_| true)
            );
            assert_eq!(
                carried.best(usize::MAX, odd),
                ranked(&counts, MIN_SHARED_CODES, odd)
            );
            // And carried on once more, back to where it started.
            let back = file.recount(carried, from);
            let counts = counts_by_definition(&records, from, file.slot_bits);
            assert_eq!(
                back.best(usize::MAX, |_| true),
                ranked(&counts, MIN_SHARED_CODES, |_| true)
            );
        }

        let found = file.shared(&query, MIN_SHARED_CODES, usize::MAX, |_| true);
        for &(doc, n) in relatives.iter().filter(|&&(_, n)| n >= MIN_SHARED_CODES) {
            assert!(
                found.iter().any(|&(d, m)| d as usize == doc && m >= n),
                "record {doc}"
            );
        }
    }
}
