//! Sign sketches of the composite vectors, the second source of vector candidates next to the graph.
//!
//! Bit `j` of a record's sketch is set when coordinate `j` of its composite vector is negative: 512 bits
//! (64 bytes) at the default dimension. The coordinates are count-sketch sums, so the fraction of differing
//! bits estimates the angle between two vectors (`θ/π`, as for random-hyperplane hashes): relatives at a
//! composite similarity of 0.5 differ in about a third of the bits, unrelated models (0.13 ± 0.04) in
//! nearly half.
//!
//! Why a scan as well as the graph: families on the Hub are often tiny (a model and its one quantization),
//! and unrelated models are all about equally far from a query, so an HNSW search has no gradient to follow
//! towards such a family: on 200K synthetic fingerprints the graph alone missed 2–5% of relatives at
//! composite similarity 0.6–0.9 (`scale-bench`, `graph_recall_above_floor`). A Hamming scan of every
//! sketch does not depend on reaching anything; it costs one pass over `count × 64` bytes (≈ 2 ms per
//! million on one core, the speed of reading them), linear in the segment's size where the graph is logarithmic.
//!
//! ```text
//! sketch.bin: count u64 | words u32 | reserved u32 | count × words u64 (little-endian) | footer "SKCH"
//! ```

use crate::error::{Error, Result};
use crate::footer::{self, FooterWriter};
use memmap2::Mmap;
use roaring::RoaringBitmap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Sketch file name inside a segment directory.
pub const SKETCH_FILE: &str = "sketch.bin";
/// File kind tag of the sketch file.
pub const SKETCH_KIND: [u8; 4] = *b"SKCH";
const HEADER_LEN: usize = 16;

/// 64-bit words in the sketch of a vector of `dim` coordinates.
pub fn words(dim: usize) -> usize {
    dim.div_ceil(64)
}

/// The sketch of one vector, appended to `out` (`words(v.len())` words).
pub fn sketch_into(v: &[i8], out: &mut Vec<u64>) {
    for chunk in v.chunks(64) {
        let mut w = 0u64;
        for (bit, &x) in chunk.iter().enumerate() {
            w |= ((x < 0) as u64) << bit;
        }
        out.push(w);
    }
}

/// The sketch of one vector.
pub fn sketch(v: &[i8]) -> Vec<u64> {
    let mut out = Vec::with_capacity(words(v.len()));
    sketch_into(v, &mut out);
    out
}

/// Write `dir/sketch.bin` for `vectors` (`dim` coordinates each) and fsync it.
pub fn write(dir: &Path, vectors: &[i8], dim: usize) -> Result<()> {
    let path = dir.join(SKETCH_FILE);
    let io = |e: std::io::Error| Error::io(&path, e);
    let file = std::fs::File::create(&path).map_err(io)?;
    let mut w = FooterWriter::new(BufWriter::with_capacity(1 << 20, file));
    let count = vectors.len() / dim.max(1);
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(&(count as u64).to_le_bytes());
    header[8..12].copy_from_slice(&(words(dim) as u32).to_le_bytes());
    w.write_all(&header).map_err(io)?;
    let mut words_buf = Vec::with_capacity(words(dim));
    let mut bytes = Vec::with_capacity(words(dim) * 8);
    for v in vectors.chunks_exact(dim.max(1)) {
        words_buf.clear();
        bytes.clear();
        sketch_into(v, &mut words_buf);
        for w in &words_buf {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        w.write_all(&bytes).map_err(io)?;
    }
    let (w, _) = w.finish(SKETCH_KIND).map_err(io)?;
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

/// A memory-mapped sketch file.
pub struct SketchFile {
    path: PathBuf,
    map: Mmap,
    count: usize,
    words: usize,
}

impl SketchFile {
    /// Map `dir/sketch.bin` and check that it holds `count` sketches of vectors of `dim` coordinates.
    pub fn open(dir: &Path, count: u32, dim: usize) -> Result<SketchFile> {
        let path = dir.join(SKETCH_FILE);
        let map = footer::map(&path)?;
        let (body, _) = footer::payload(&path, &map, SKETCH_KIND)?;
        if body.len() < HEADER_LEN {
            return Err(Error::corrupt(&path, "no header"));
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&body[0..8]);
        let file_count = u64::from_le_bytes(c);
        let file_words = u32::from_le_bytes([body[8], body[9], body[10], body[11]]) as usize;
        let expected_len = (count as usize)
            .checked_mul(words(dim) * 8)
            .and_then(|n| n.checked_add(HEADER_LEN));
        if file_count != count as u64
            || file_words != words(dim)
            || Some(body.len()) != expected_len
        {
            return Err(Error::corrupt(
                &path,
                format!(
                    "{file_count} sketches of {file_words} words in {} bytes; expected {count} of {}",
                    body.len(),
                    words(dim)
                ),
            ));
        }
        Ok(SketchFile {
            path,
            map,
            count: count as usize,
            words: words(dim),
        })
    }

    /// The `k` records (among those `allow` holds, all when `None`) whose sketches differ least from
    /// `query` (a [`sketch`] of the same dimension), ties broken by record number; any order.
    ///
    /// A strided sample of the sketches sets a distance threshold that about twice `k` records are expected
    /// to reach; one pass then keeps only the records within it (tightening it whenever more than enough
    /// accumulate), so the pass neither stores a distance per record nor walks them again. Should the
    /// threshold let fewer than `k` allowed records through, [`Self::nearest_by_histogram`] answers instead:
    /// the result is the exact ranking either way.
    pub fn nearest(&self, query: &[u64], k: usize, allow: Option<&RoaringBitmap>) -> Vec<u32> {
        if k == 0 || query.len() != self.words {
            return Vec::new();
        }
        let allowed_count = allow.map_or(self.count, |b| b.len() as usize);
        if self.count < 4 * THRESHOLD_SAMPLE || 2 * k >= allowed_count {
            return self.nearest_by_histogram(query, k, allow);
        }
        let is_allowed = |doc: u32| allow.is_none_or(|b| b.contains(doc));
        let row_bytes = self.words * 8;
        let body = self.body();
        let Some(mut threshold) = self.sample_threshold(query, k, allowed_count, &is_allowed)
        else {
            return self.nearest_by_histogram(query, k, allow);
        };
        // (distance, record) of every record within the threshold; refused ones are dropped at each
        // tightening and at the end (they are few: a filter this broad refuses under half the records).
        let mut found: Vec<(u16, u32)> = Vec::with_capacity(4 * k);
        let cap = (8 * k).max(1 << 14);
        for (chunk_index, chunk) in body.chunks(SCAN_CHUNK_ROWS * row_bytes).enumerate() {
            let first = (chunk_index * SCAN_CHUNK_ROWS) as u32;
            within_pass(chunk, query, threshold, first, &mut found);
            if found.len() > cap {
                found.retain(|&(_, doc)| is_allowed(doc));
                if found.len() > k {
                    // Now at least k allowed records lie within the k-th smallest distance: a valid, tighter
                    // threshold (everything at or below it is still held).
                    found.select_nth_unstable(k - 1);
                    threshold = found[k - 1].0;
                    found.retain(|&(d, _)| d <= threshold);
                }
            }
        }
        found.retain(|&(_, doc)| is_allowed(doc));
        if found.len() < k {
            return self.nearest_by_histogram(query, k, allow);
        }
        found.sort_unstable();
        found.truncate(k);
        found.into_iter().map(|(_, doc)| doc).collect()
    }

    /// A distance that about `2k` of the `allowed_count` allowed records are expected to reach, read from the
    /// distances of [`THRESHOLD_SAMPLE`] records spread evenly over the file (not the first ones: records are
    /// stored in ingest order, and a family ingested together would sit together). `None` when the sample
    /// holds too few allowed records to say.
    fn sample_threshold(
        &self,
        query: &[u64],
        k: usize,
        allowed_count: usize,
        is_allowed: &dyn Fn(u32) -> bool,
    ) -> Option<u16> {
        let row_bytes = self.words * 8;
        let body = self.body();
        let mut sample: Vec<u16> = (0..THRESHOLD_SAMPLE)
            .map(|i| (i * self.count / THRESHOLD_SAMPLE) as u32)
            .filter(|&doc| is_allowed(doc))
            .map(|doc| {
                let row = &body[doc as usize * row_bytes..][..row_bytes];
                hamming_row(row, query) as u16
            })
            .collect();
        if sample.len() < THRESHOLD_SAMPLE / 4 {
            return None;
        }
        let rank = (2 * k * sample.len())
            .div_ceil(allowed_count)
            .min(sample.len() - 1);
        Some(*sample.select_nth_unstable(rank).1)
    }

    /// [`Self::nearest`] by a histogram of every record's distance: exact whatever the distribution, at the
    /// cost of storing and re-reading a distance per record.
    pub fn nearest_by_histogram(
        &self,
        query: &[u64],
        k: usize,
        allow: Option<&RoaringBitmap>,
    ) -> Vec<u32> {
        if k == 0 || query.len() != self.words {
            return Vec::new();
        }
        let body = self.body();
        // One pass: every distance (u16: at most 64 · words bits) and their histogram; then the distance
        // below which fewer than `k` records lie picks the set without sorting.
        const REFUSED: u16 = u16::MAX;
        let bits = self.words * 64;
        let mut histogram = vec![0u32; bits + 1];
        let mut distances = Vec::with_capacity(self.count);
        hamming_pass(body, query, &mut histogram, &mut distances);
        if let Some(allow) = allow {
            // Walk the refused records (the complement, computed on the compressed bitmaps) rather than
            // look every record up: with tombstones only, that is a handful.
            let mut refused = RoaringBitmap::new();
            refused.insert_range(0..self.count as u32);
            refused -= allow;
            for doc in &refused {
                if let Some(d) = distances.get_mut(doc as usize) {
                    histogram[*d as usize] -= 1;
                    *d = REFUSED;
                }
            }
        }
        let (mut cut, mut below) = (0usize, 0usize);
        while cut <= bits && below + histogram[cut] as usize <= k {
            below += histogram[cut] as usize;
            cut += 1;
        }
        // Everything below `cut`, then records at exactly `cut` (in record order) up to `k`.
        let mut at_cut = k.saturating_sub(below);
        let mut out = Vec::with_capacity(k.min(self.count));
        for (doc, &d) in distances.iter().enumerate() {
            if d == REFUSED {
                continue;
            }
            if (d as usize) < cut {
                out.push(doc as u32);
            } else if d as usize == cut && at_cut > 0 {
                out.push(doc as u32);
                at_cut -= 1;
            }
        }
        out
    }

    fn body(&self) -> &[u8] {
        &self.map[HEADER_LEN..HEADER_LEN + self.count * self.words * 8]
    }

    /// Check the payload CRC in the footer (`index verify`).
    pub fn verify(&self) -> Result<()> {
        footer::verified(&self.path, &self.map, SKETCH_KIND).map(|_| ())
    }

    /// Ask the kernel to read the whole file ahead (a server warming up); errors are ignored, it is advice.
    pub fn prefetch(&self) {
        #[cfg(unix)]
        let _ = self.map.advise(memmap2::Advice::WillNeed);
    }
}

/// Sketches per step of [`SketchFile::nearest`]'s pass: between steps it may tighten its threshold.
const SCAN_CHUNK_ROWS: usize = 1 << 16;

/// Sketches whose distances set [`SketchFile::nearest`]'s threshold. At 2 500 picks from a million (the
/// default share), the threshold is the sample's 41st smallest distance, which lets fewer than `k` through
/// only if 41 of 8 192 sample records fall among the nearest 0.25% (20 expected): a Poisson tail of about
/// 10⁻⁵, and then the histogram pass answers instead.
const THRESHOLD_SAMPLE: usize = 8192;

fn word(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// Hamming distance between one stored sketch (`row`, little-endian words) and `query`. Inlined, so that a
/// caller passing a fixed-size query (the default 8 words) gets an unrolled body.
#[inline(always)]
fn hamming_row(row: &[u8], query: &[u64]) -> u32 {
    row.chunks_exact(8)
        .zip(query)
        .map(|(w, q)| (word(w) ^ q).count_ones())
        .sum()
}

/// Push `(distance, first + i)` for every row `i` of `rows` within `threshold` of `query`. Dispatched like
/// [`hamming_pass`].
fn within_pass(
    rows: &[u8],
    query: &[u64],
    threshold: u16,
    first: u32,
    found: &mut Vec<(u16, u32)>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx512f")
        {
            // SAFETY: the CPU supports these features (checked above); the body is safe code.
            return unsafe { within_pass_avx512(rows, query, threshold, first, found) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: as above.
            return unsafe { within_pass_popcnt(rows, query, threshold, first, found) };
        }
    }
    within_pass_portable(rows, query, threshold, first, found)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
unsafe fn within_pass_avx512(
    rows: &[u8],
    query: &[u64],
    threshold: u16,
    first: u32,
    found: &mut Vec<(u16, u32)>,
) {
    use std::arch::x86_64::*;
    if query.len() != 8 {
        return within_pass_portable(rows, query, threshold, first, found);
    }
    let q = _mm512_loadu_si512(query.as_ptr().cast());
    let limit = _mm512_set1_epi64(threshold as i64);
    let mut groups = rows.chunks_exact(8 * 64);
    let mut base = first;
    for group in &mut groups {
        // Eight rows: each row's eight word popcounts, summed across lanes by a transpose-and-add tree so
        // that lane i of `d` ends as row i's distance; one compare then tests the eight rows.
        let p = |r: usize| {
            let x = _mm512_loadu_si512(group.as_ptr().add(r * 64).cast());
            _mm512_popcnt_epi64(_mm512_xor_si512(x, q))
        };
        let (p0, p1, p2, p3, p4, p5, p6, p7) = (p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7));
        // Pairs: lanes (2j, 2j+1) of a01 hold partial sums of rows 0 and 1.
        let a01 = _mm512_add_epi64(_mm512_unpacklo_epi64(p0, p1), _mm512_unpackhi_epi64(p0, p1));
        let a23 = _mm512_add_epi64(_mm512_unpacklo_epi64(p2, p3), _mm512_unpackhi_epi64(p2, p3));
        let a45 = _mm512_add_epi64(_mm512_unpacklo_epi64(p4, p5), _mm512_unpackhi_epi64(p4, p5));
        let a67 = _mm512_add_epi64(_mm512_unpacklo_epi64(p6, p7), _mm512_unpackhi_epi64(p6, p7));
        // 128-bit lanes: [r0 r1] per lane of a01; interleave lanes of a01/a23 to add halves.
        let b0 = _mm512_add_epi64(
            _mm512_shuffle_i64x2::<0b10_00_10_00>(a01, a23),
            _mm512_shuffle_i64x2::<0b11_01_11_01>(a01, a23),
        );
        let b1 = _mm512_add_epi64(
            _mm512_shuffle_i64x2::<0b10_00_10_00>(a45, a67),
            _mm512_shuffle_i64x2::<0b11_01_11_01>(a45, a67),
        );
        // b0 lanes (128-bit): [r01 of a01 half0+half1, r01 of a01 half2+half3, r23 .., r23 ..].
        let c = _mm512_add_epi64(
            _mm512_shuffle_i64x2::<0b10_00_10_00>(b0, b1),
            _mm512_shuffle_i64x2::<0b11_01_11_01>(b0, b1),
        );
        // c's 128-bit lanes hold rows (0,1), (2,3), (4,5), (6,7).
        let near = _mm512_cmple_epu64_mask(c, limit);
        if near != 0 {
            let mut d = [0u64; 8];
            _mm512_storeu_si512(d.as_mut_ptr().cast(), c);
            for (r, &dist) in d.iter().enumerate() {
                if near & (1 << r) != 0 {
                    found.push((dist as u16, base + r as u32));
                }
            }
        }
        base += 8;
    }
    within_pass_portable(groups.remainder(), query, threshold, base, found)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn within_pass_popcnt(
    rows: &[u8],
    query: &[u64],
    threshold: u16,
    first: u32,
    found: &mut Vec<(u16, u32)>,
) {
    within_pass_portable(rows, query, threshold, first, found)
}

/// The portable loop; 512-bit sketches (the default dimension) go through a fixed-size query.
#[inline(always)]
fn within_pass_portable(
    rows: &[u8],
    query: &[u64],
    threshold: u16,
    first: u32,
    found: &mut Vec<(u16, u32)>,
) {
    #[inline(always)]
    fn push_within(
        rows: &[u8],
        q: &[u64],
        threshold: u32,
        first: u32,
        found: &mut Vec<(u16, u32)>,
    ) {
        for (i, row) in rows.chunks_exact(q.len() * 8).enumerate() {
            let d = hamming_row(row, q);
            if d <= threshold {
                found.push((d as u16, first + i as u32));
            }
        }
    }
    match <[u64; 8]>::try_from(query) {
        Ok(q) => push_within(rows, &q, threshold as u32, first, found),
        Err(_) => push_within(rows, query, threshold as u32, first, found),
    }
}

/// Every row's Hamming distance to `query` (pushed to `distances`) and their histogram. The x86-64 baseline
/// has no `popcnt` instruction (`count_ones` becomes a dozen bit operations per word), so this takes
/// AVX-512's vector popcount or `popcnt` when the CPU has them, and the portable loop otherwise.
fn hamming_pass(body: &[u8], query: &[u64], histogram: &mut [u32], distances: &mut Vec<u16>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("avx512f")
        {
            // SAFETY: the CPU supports these features (checked above); the body is safe code.
            return unsafe { hamming_pass_avx512(body, query, histogram, distances) };
        }
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: as above.
            return unsafe { hamming_pass_popcnt(body, query, histogram, distances) };
        }
    }
    hamming_pass_portable(body, query, histogram, distances)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
unsafe fn hamming_pass_avx512(
    body: &[u8],
    query: &[u64],
    histogram: &mut [u32],
    distances: &mut Vec<u16>,
) {
    hamming_pass_portable(body, query, histogram, distances)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn hamming_pass_popcnt(
    body: &[u8],
    query: &[u64],
    histogram: &mut [u32],
    distances: &mut Vec<u16>,
) {
    hamming_pass_portable(body, query, histogram, distances)
}

/// The portable loop; 512-bit sketches (the default dimension) get a fixed-size body the compiler unrolls
/// and vectorises.
#[inline(always)]
fn hamming_pass_portable(
    body: &[u8],
    query: &[u64],
    histogram: &mut [u32],
    distances: &mut Vec<u16>,
) {
    let Ok(q) = <[u64; 8]>::try_from(query) else {
        for row in body.chunks_exact(query.len() * 8) {
            let d = hamming_row(row, query);
            histogram[d as usize] += 1;
            distances.push(d as u16);
        }
        return;
    };
    let distance = |row: &[u8]| hamming_row(row, &q) as usize;
    // Four histograms, one per row of each group of four: distances cluster within a few bits of each other,
    // and consecutive increments of one counter would each wait for the previous one's store (one histogram:
    // 4.4 ms per million sketches here, four: 3.4–3.9 ms).
    let bins = histogram.len();
    let mut four = vec![0u32; 4 * bins];
    let mut groups = body.chunks_exact(4 * 64);
    for group in &mut groups {
        for (lane, row) in group.chunks_exact(64).enumerate() {
            let d = distance(row);
            four[lane * bins + d] += 1;
            distances.push(d as u16);
        }
    }
    for row in groups.remainder().chunks_exact(64) {
        let d = distance(row);
        four[d] += 1;
        distances.push(d as u16);
    }
    for lane in four.chunks_exact(bins) {
        for (h, c) in histogram.iter_mut().zip(lane) {
            *h += c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::random_vectors;

    fn hamming(a: &[u64], b: &[u64]) -> u32 {
        a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
    }

    #[test]
    fn sketch_bits_are_the_negative_coordinates() {
        let mut v = vec![0i8; 130];
        v[0] = -1;
        v[63] = -128;
        v[64] = 5;
        v[129] = -3;
        assert_eq!(sketch(&v), vec![1 | 1 << 63, 0, 1 << 1]);
    }

    #[test]
    fn nearest_matches_a_brute_force_ranking_and_respects_the_filter() {
        let (n, dim) = (2000, 512);
        let mut v = random_vectors(n, dim, 5);
        // Record 1234 is a noisy copy of record 7: the nearest sketch to 7's.
        let (src, dst) = (7 * dim, 1234 * dim);
        for j in 0..dim {
            v[dst + j] = if j % 10 == 0 { -v[src + j] } else { v[src + j] };
        }
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &v, dim).unwrap();
        let s = SketchFile::open(dir.path(), n as u32, dim).unwrap();
        s.verify().unwrap();
        let q = sketch(&v[src..src + dim]);
        let got = s.nearest(&q, 2, None);
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, vec![7, 1234]);
        // The k nearest are exactly the brute-force k nearest (ties by record number).
        let mut all: Vec<(u32, u32)> = v
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, x)| (hamming(&sketch(x), &q), i as u32))
            .collect();
        all.sort();
        for k in [1, 10, 57, n, n + 5] {
            let mut got = s.nearest(&q, k, None);
            got.sort();
            let mut want: Vec<u32> = all.iter().take(k).map(|x| x.1).collect();
            want.sort();
            assert_eq!(got, want, "k = {k}");
        }
        // A filter: only allowed records come back.
        let mut allow = RoaringBitmap::new();
        allow.insert_range(1000..2000);
        let got = s.nearest(&q, 20, Some(&allow));
        assert_eq!(got.len(), 20);
        assert!(got.iter().all(|&d| (1000..2000).contains(&d)));
        assert!(got.contains(&1234));
    }

    /// The threshold pass (large segments) returns the exact ranking too: on random sketches, when its
    /// buffer overflows and it tightens (many records near the query), and when its sample misleads it
    /// (near copies planted exactly at the sampled positions) so that the histogram pass must answer.
    #[test]
    fn the_threshold_pass_returns_the_exact_ranking() {
        let (n, dim) = (4 * THRESHOLD_SAMPLE + 777, 512);
        let mut v = random_vectors(n, dim, 11);
        let query_vector = random_vectors(1, dim, 12);
        let sampled: Vec<usize> = (0..THRESHOLD_SAMPLE)
            .map(|i| i * n / THRESHOLD_SAMPLE)
            .collect();
        let near_copy = |v: &mut [i8], doc: usize, flips: usize| {
            for j in 0..dim {
                let x = query_vector[j];
                v[doc * dim + j] = if (j + doc) % 97 < flips { -x } else { x };
            }
        };
        // 20 000 near copies away from the sampled positions: more than the pass's buffer holds.
        let mut planted = 0;
        for doc in (0..n).rev() {
            if planted == 20_000 {
                break;
            }
            if sampled.binary_search(&doc).is_err() {
                near_copy(&mut v, doc, 1 + doc % 20);
                planted += 1;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &v, dim).unwrap();
        let s = SketchFile::open(dir.path(), n as u32, dim).unwrap();
        let q = sketch(&query_vector);
        let exact = |v: &[i8], k: usize, allow: Option<&RoaringBitmap>| {
            let mut all: Vec<(u32, u32)> = v
                .chunks_exact(dim)
                .enumerate()
                .filter(|(i, _)| allow.is_none_or(|a| a.contains(*i as u32)))
                .map(|(i, x)| (hamming(&sketch(x), &q), i as u32))
                .collect();
            all.sort();
            let mut want: Vec<u32> = all.iter().take(k).map(|x| x.1).collect();
            want.sort();
            want
        };
        let mut every_third_refused = RoaringBitmap::new();
        every_third_refused.extend((0..n as u32).filter(|d| d % 3 != 0));
        for allow in [None, Some(&every_third_refused)] {
            for k in [1, 100, 2500] {
                let mut got = s.nearest(&q, k, allow);
                got.sort();
                assert_eq!(
                    got,
                    exact(&v, k, allow),
                    "k = {k}, filtered: {}",
                    allow.is_some()
                );
            }
        }

        // The sample misleads: every sampled record is a near copy, so the threshold lets through only
        // them, fewer than k.
        let mut v = random_vectors(n, dim, 13);
        for &doc in &sampled {
            near_copy(&mut v, doc, 2);
        }
        write(dir.path(), &v, dim).unwrap();
        let s = SketchFile::open(dir.path(), n as u32, dim).unwrap();
        let k = THRESHOLD_SAMPLE + 1000;
        let mut got = s.nearest(&q, k, None);
        got.sort();
        assert_eq!(got, exact(&v, k, None));
    }

    #[test]
    fn damaged_sketch_files_are_refused() {
        let (n, dim) = (100, 64);
        let v = random_vectors(n, dim, 9);
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &v, dim).unwrap();
        assert!(SketchFile::open(dir.path(), n as u32 + 1, dim).is_err());
        assert!(SketchFile::open(dir.path(), n as u32, 128).is_err());
        let path = dir.path().join(SKETCH_FILE);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() - 40]).unwrap();
        let err = SketchFile::open(dir.path(), n as u32, dim).err().unwrap();
        assert!(err.to_string().contains("sketch.bin"), "{err}");
        // A flipped payload byte: opens (the CRC is not read at open) but fails verification.
        let mut bad = good;
        bad[HEADER_LEN + 3] ^= 0xFF;
        std::fs::write(&path, &bad).unwrap();
        let s = SketchFile::open(dir.path(), n as u32, dim).unwrap();
        assert!(s.verify().is_err());
    }
}
