//! Canonical sample positions: which entries of a tensor a fingerprint stores, and which rows define its RMS.
//!
//! The positions depend only on the tensor's logical shape, never on the model, its size or its dtype, so two
//! tensors of the same shape are always sampled at the same entries and their samples can be correlated
//! directly. The sequence is a pseudo-random permutation of all entries (a Feistel network with cycle walking),
//! so it has no duplicates and every prefix is itself a valid sample: a fingerprint that stores fewer samples of
//! a tensor (a bigger model with the same budget) still compares with one that stores more, on their common
//! prefix.

/// Seed of the position permutation. Part of the fingerprint definition: changing it needs a new
/// [`crate::schema::FINGERPRINT_VERSION`].
const POSITION_SEED: u64 = 0x7072_6f76_7365_6172; // "provsear"

/// SplitMix64's output function: the one stable 64-bit mixer behind every fixed hash of the index (sample
/// positions, composite buckets, channel-code patterns). Part of those definitions: never change it.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A bijection on `0..n`, built from a balanced Feistel network on the smallest even number of bits that
/// covers `n`, with cycle walking to stay inside `0..n`.
struct Permutation {
    n: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Permutation {
    fn new(n: u64, seed: u64) -> Self {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        let mut keys = [0u64; 4];
        let mut s = seed;
        for k in &mut keys {
            s = splitmix64(s);
            *k = s;
        }
        Permutation { n, half_bits, keys }
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let f = splitmix64(right ^ key) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }

    fn apply(&self, i: u64) -> u64 {
        // Cycle walking: the Feistel domain is at most 4n, so this loop runs a few times on average, and it
        // terminates because the Feistel map is a bijection on its domain.
        let mut x = self.feistel(i);
        while x >= self.n {
            x = self.feistel(x);
        }
        x
    }
}

/// Columns sampled per row of a matrix: samples come in runs along canonical rows, so a fingerprint touches
/// a handful of rows (a few pages) of each tensor instead of pages all over it.
pub const SAMPLES_PER_ROW: u32 = 32;

/// Canonical rows whose full values define a matrix's RMS (LEP and sample standardisation).
pub const RMS_ROWS: u32 = 8;

fn shape_seed(rows: u32, cols: u32, salt: u64) -> u64 {
    splitmix64(
        POSITION_SEED ^ salt ^ (rows as u64).wrapping_mul(0x1_0000_0001) ^ ((cols as u64) << 17),
    )
}

/// The canonical order of the rows of a `rows × cols` matrix: the first `n` of them.
pub fn canonical_rows(rows: u32, cols: u32, n: usize) -> Vec<u32> {
    let perm = Permutation::new(rows as u64, shape_seed(rows, cols, 0x726f_7773));
    (0..(n as u64).min(rows as u64))
        .map(|i| perm.apply(i) as u32)
        .collect()
}

/// The first `n` canonical positions `(row, col)` of a `rows × cols` matrix (logical row-major layout).
///
/// Positions form a grid: sample `k` is column `k % m` of canonical row `k / m`, with `m = min(cols,`
/// [`SAMPLES_PER_ROW`]`)` canonical columns. Returns `min(n, rows · m)` distinct positions.
pub fn matrix_positions(rows: u32, cols: u32, n: usize) -> Vec<(u32, u32)> {
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let m = cols.min(SAMPLES_PER_ROW) as usize;
    let count = n.min(rows as usize * m);
    let row_order = canonical_rows(rows, cols, count.div_ceil(m));
    let col_perm = Permutation::new(cols as u64, shape_seed(rows, cols, 0x636f_6c73));
    let col_order: Vec<u32> = (0..m as u64).map(|i| col_perm.apply(i) as u32).collect();
    (0..count)
        .map(|k| (row_order[k / m], col_order[k % m]))
        .collect()
}

/// The first `n` canonical positions in a vector of length `len` (a pseudo-random permutation's prefix).
pub fn vector_positions(len: u32, n: usize) -> Vec<u32> {
    if len == 0 {
        return Vec::new();
    }
    let perm = Permutation::new(len as u64, shape_seed(1, len, 0x7665_6374));
    (0..(n as u64).min(len as u64))
        .map(|i| perm.apply(i) as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn positions_are_distinct_and_in_range() {
        for &(r, c) in &[
            (1u32, 1u32),
            (1, 7),
            (3, 5),
            (384, 1536),
            (1000, 3),
            (2, 384),
        ] {
            let p = matrix_positions(r, c, 10_000);
            let m = c.min(SAMPLES_PER_ROW) as usize;
            assert_eq!(p.len(), (r as usize * m).min(10_000));
            let set: HashSet<_> = p.iter().collect();
            assert_eq!(set.len(), p.len(), "duplicates for {r}x{c}");
            assert!(p.iter().all(|&(i, j)| i < r && j < c));
        }
        let v = vector_positions(100, 1000);
        assert_eq!(v.iter().collect::<HashSet<_>>().len(), 100);
    }

    #[test]
    fn prefix_is_stable() {
        let long = matrix_positions(4096, 11008, 512);
        let short = matrix_positions(4096, 11008, 100);
        assert_eq!(&long[..100], &short[..]);
        assert_eq!(
            &vector_positions(4096, 64)[..10],
            &vector_positions(4096, 10)[..]
        );
        assert_eq!(
            &canonical_rows(4096, 64, 8)[..],
            &matrix_positions(4096, 64, 256)
                .iter()
                .step_by(32)
                .map(|p| p.0)
                .collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn shape_changes_positions() {
        assert_ne!(matrix_positions(64, 64, 16), matrix_positions(64, 65, 16));
    }

    #[test]
    fn samples_touch_few_rows() {
        let p = matrix_positions(4096, 4096, 512);
        let rows: HashSet<_> = p.iter().map(|&(r, _)| r).collect();
        assert_eq!(rows.len(), 16);
        let cols: HashSet<_> = p.iter().map(|&(_, c)| c).collect();
        assert_eq!(cols.len(), 32);
    }
}
