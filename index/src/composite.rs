//! The composite vector: a fixed-dimension `i8` sketch of a fingerprint whose inner product tracks the identity
//! score, for approximate nearest-neighbour candidate search.
//!
//! Two blocks, each a count sketch (feature hashing with a ±1 sign) of keyed, standardised values:
//! - **positional** (WVC, NLF): every matrix sample is keyed by `(stack, layer, role, shape, position index)`,
//!   every anchor-row sample by `(anchor index, coordinate slot, hidden size)`, every norm sample like a matrix
//!   sample. Two models with the same tensor shapes put the same keys in the same buckets, so the sketches'
//!   inner product estimates the pooled covariance that WVC measures; different shapes share no keys and give
//!   ≈ 0 (± 1/√dims from collisions).
//! - **gram** (EAS): every anchor Gram cosine keyed by the anchor pair `(i, j)`, centred by the mean over the
//!   present pairs: dimension-free, so models of different widths (distillation) still meet here.
//!
//! Each block is normalised to unit length and weighted; the vector is *not* renormalised, so the inner product
//! is `w_p² · cos(positional) + w_g² · cos(gram)`, and a block that a fingerprint lacks contributes 0. Values are
//! stored as `i8` with one fixed scale ([`CompositeConfig::scale`]); see docs/index.md for the measurements
//! behind the defaults.

use crate::sampling::splitmix64;
use crate::schema::{Fingerprint, Stack, TensorSamples, GRAM_SCALE, NO_LAYER, SAMPLE_SCALE};
use serde::{Deserialize, Serialize};

/// Version of the composite definition (bump when hashing or weighting changes; vectors of different versions
/// are not comparable).
pub const COMPOSITE_VERSION: u32 = 2;

/// Parameters of the composite vector. Stored in the manifest: an index is searched with the configuration it
/// was built with. Integers only, so the manifest's checksum survives a JSON round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompositeConfig {
    /// [`COMPOSITE_VERSION`].
    pub version: u32,
    /// Total dimension.
    pub dimension: u32,
    /// Dimensions of the gram block (the positional block takes the rest).
    pub gram_dims: u32,
    /// Squared weight of the positional block, in thousandths (the gram block gets the rest).
    pub positional_share_permille: u32,
    /// Weight of a norm sample relative to a matrix sample inside the positional block, in thousandths.
    pub norm_weight_permille: u32,
    /// Hash seed.
    pub seed: u64,
}

impl Default for CompositeConfig {
    fn default() -> Self {
        CompositeConfig {
            version: COMPOSITE_VERSION,
            dimension: 512,
            gram_dims: 64,
            positional_share_permille: 800,
            norm_weight_permille: 500,
            seed: 0x636f_6d70_6f73_6974, // "composit"
        }
    }
}

impl CompositeConfig {
    /// Positional block dimensions.
    pub fn positional_dims(&self) -> usize {
        self.dimension.saturating_sub(self.gram_dims) as usize
    }

    /// Quantisation scale: a coordinate `v` is stored as `round(v · scale)`, clamped to ±127. Chosen so that six
    /// standard deviations of a unit vector's coordinate (1/√dimension) fit.
    pub fn scale(&self) -> f32 {
        127.0 * (self.dimension.max(1) as f32).sqrt() / 6.0
    }

    /// Inner product of two stored vectors, in the unquantised units (≈ the weighted block cosines).
    pub fn similarity(&self, a: &[i8], b: &[i8]) -> f32 {
        let s = self.scale();
        dot(a, b) as f32 / (s * s)
    }
}

/// Integer inner product of two `i8` vectors: the distance of the graph search and the exact scans, so it
/// takes AVX2 when the CPU has it (the x86-64 baseline has only SSE2) and the portable loop otherwise.
#[inline]
pub fn dot(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if a.len() == b.len()
            && a.len().is_multiple_of(64)
            && std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU supports these features (checked above); lengths are checked above.
            return unsafe { dot_vnni(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above); the function is safe code otherwise.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_portable(a, b)
}

/// AVX-512 VNNI: `vpdpbusd` multiplies unsigned by signed bytes, so `a` is shifted into unsigned range
/// (`a + 128`, a flip of the sign bit) and the surplus `128 · Σ b` is taken off again, computed by the same
/// instruction from a vector of 128s: exact integer arithmetic, the same value as the portable loop, in about
/// a third of the instructions of the AVX2 widening multiply (the graph search's inner loop).
/// `a.len() == b.len()`, a multiple of 64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_vnni(a: &[i8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let flip = _mm512_set1_epi8(i8::MIN);
    let (mut shifted, mut surplus) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    for (x, y) in a.chunks_exact(64).zip(b.chunks_exact(64)) {
        let x = _mm512_loadu_si512(x.as_ptr().cast());
        let y = _mm512_loadu_si512(y.as_ptr().cast());
        shifted = _mm512_dpbusd_epi32(shifted, _mm512_xor_si512(x, flip), y);
        surplus = _mm512_dpbusd_epi32(surplus, flip, y);
    }
    _mm512_reduce_add_epi32(_mm512_sub_epi32(shifted, surplus))
}

/// The portable loop, written so that the compiler vectorises it for whatever target features are enabled.
#[inline(always)]
fn dot_portable(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let chunks = a.len().min(b.len()) / 16;
    for c in 0..chunks {
        let (x, y) = (&a[c * 16..c * 16 + 16], &b[c * 16..c * 16 + 16]);
        for i in 0..16 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let mut sum: i32 = acc.iter().sum();
    for i in chunks * 16..a.len().min(b.len()) {
        sum += a[i] as i32 * b[i] as i32;
    }
    sum
}

fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    // FNV-1a folded through splitmix: stable across platforms and releases (unlike std's hasher).
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(h)
}

struct Sketch {
    buckets: Vec<f64>,
}

impl Sketch {
    fn new(dims: usize) -> Self {
        Sketch {
            buckets: vec![0.0; dims],
        }
    }

    #[inline]
    fn add(&mut self, key: u64, index: u64, value: f64) {
        if self.buckets.is_empty() {
            return;
        }
        let h = splitmix64(key ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        // Multiply-shift onto the buckets (the high 32 bits; a division per sample was most of the cost).
        let bucket = (((h >> 32) * self.buckets.len() as u64) >> 32) as usize;
        let sign = if h & 1 == 1 { 1.0 } else { -1.0 };
        self.buckets[bucket] += sign * value;
    }

    /// The block scaled to length `weight` (all zeros when empty).
    fn normalised(self, weight: f64) -> Vec<f64> {
        let norm = self.buckets.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm <= 1e-12 || !norm.is_finite() {
            return vec![0.0; self.buckets.len()];
        }
        self.buckets.iter().map(|v| v * weight / norm).collect()
    }
}

fn stack_tag(s: Stack) -> u8 {
    match s {
        Stack::Main => 0,
        Stack::Encoder => 1,
        Stack::Decoder => 2,
        Stack::Vision => 3,
    }
}

fn add_samples(sketch: &mut Sketch, seed: u64, tag: u8, samples: &TensorSamples, weight: f64) {
    for e in &samples.entries {
        let role = samples.role_name(e);
        let [rows, cols] = samples.shape_of(e);
        let mut key = Vec::with_capacity(role.len() + 16);
        key.push(tag);
        key.push(stack_tag(e.stack));
        // The layer *number* stays out of the key: all layers of a role sum into the same buckets, so a pruned
        // copy (layers dropped and renumbered) still meets its parent, at cos ≈ √(kept / total).
        key.push((e.layer == NO_LAYER) as u8);
        key.extend_from_slice(&rows.to_le_bytes());
        key.extend_from_slice(&cols.to_le_bytes());
        key.extend_from_slice(role.as_bytes());
        let k = hash_bytes(seed, &key);
        for (t, &q) in samples.samples(e).iter().enumerate() {
            sketch.add(k, t as u64, weight * q as f64 / SAMPLE_SCALE as f64);
        }
    }
}

/// The composite vector of a fingerprint.
pub fn composite(f: &Fingerprint, config: &CompositeConfig) -> Vec<i8> {
    let (dp, dg) = (config.positional_dims(), config.gram_dims as usize);
    let mut positional = Sketch::new(dp);
    let mut gram = Sketch::new(dg);
    let w = &f.weights;
    add_samples(&mut positional, config.seed, 1, &w.matrices, 1.0);
    add_samples(
        &mut positional,
        config.seed,
        2,
        &w.norms,
        config.norm_weight_permille as f64 / 1000.0,
    );
    if let Some(e) = &w.embedding {
        let present = e.present_anchors();
        let per_row = e.samples_per_row as usize;
        for (slot, &anchor) in present.iter().enumerate() {
            let mut key = [0u8; 13];
            key[0] = 3;
            key[1..5].copy_from_slice(&e.anchor_set_version.to_le_bytes());
            key[5..9].copy_from_slice(&(anchor as u32).to_le_bytes());
            key[9..13].copy_from_slice(&e.hidden.to_le_bytes());
            let k = hash_bytes(config.seed, &key);
            let row = e
                .row_samples
                .get(slot * per_row..(slot + 1) * per_row)
                .unwrap_or(&[]);
            for (t, &q) in row.iter().enumerate() {
                positional.add(k, t as u64, q as f64 / SAMPLE_SCALE as f64);
            }
        }
        // Gram entries, strict upper triangle over the present anchors, centred by their mean.
        let n = present.len();
        let count = n * n.saturating_sub(1) / 2;
        if count > 0 && e.gram.len() == count {
            let key = hash_bytes(config.seed, &e.anchor_set_version.to_le_bytes());
            let mean = e.gram.iter().map(|&g| g as f64).sum::<f64>() / count as f64;
            let mut idx = 0;
            for i in 0..n {
                for j in i + 1..n {
                    let pair = ((present[i] as u64) << 32) | present[j] as u64;
                    let v = (e.gram[idx] as f64 - mean) / GRAM_SCALE as f64;
                    gram.add(key, pair, v);
                    idx += 1;
                }
            }
        }
    }
    let share = (config.positional_share_permille.min(1000) as f64 / 1000.0).sqrt();
    let rest = (1.0 - share * share).max(0.0).sqrt();
    let scale = config.scale() as f64;
    positional
        .normalised(share)
        .into_iter()
        .chain(gram.normalised(rest))
        .map(|v| (v * scale).round().clamp(-127.0, 127.0) as i8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<i8> = (0..37).map(|i| (i * 7 % 255) as i8).collect();
        let b: Vec<i8> = (0..37).map(|i| (i * 13 % 251) as i8).collect();
        let naive: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
        assert_eq!(dot(&a, &b), naive);
        assert_eq!(dot_portable(&a, &b), naive);
        // The composite's length (the VNNI path where the CPU has it), with the extremes of i8.
        let mut a: Vec<i8> = (0..512).map(|i| (i * 37 % 256) as u8 as i8).collect();
        let mut b: Vec<i8> = (0..512).map(|i| (i * 101 % 256) as u8 as i8).collect();
        a[..64].fill(i8::MIN);
        b[..32].fill(i8::MIN);
        b[32..64].fill(i8::MAX);
        let naive: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
        assert_eq!(dot(&a, &b), naive);
        assert_eq!(dot_portable(&a, &b), naive);
    }

    #[test]
    fn empty_fingerprint_gives_zero_vector() {
        let f: Fingerprint = crate::testutil::fingerprint("m", 1, 0.0, 1);
        let mut empty = f.clone();
        empty.weights = Default::default();
        let c = CompositeConfig::default();
        let v = composite(&empty, &c);
        assert_eq!(v.len(), 512);
        assert!(v.iter().all(|&x| x == 0));
        let u = composite(&f, &c);
        assert!(c.similarity(&u, &u) > 0.95, "{}", c.similarity(&u, &u));
    }

    #[test]
    fn related_beat_unrelated() {
        let c = CompositeConfig::default();
        let base = crate::testutil::fingerprint("a", 7, 0.0, 1);
        let child = crate::testutil::fingerprint("b", 7, 1.0, 2);
        let other = crate::testutil::fingerprint("c", 8, 0.0, 3);
        let (vb, vc, vo) = (
            composite(&base, &c),
            composite(&child, &c),
            composite(&other, &c),
        );
        let related = c.similarity(&vb, &vc);
        let unrelated = c.similarity(&vb, &vo);
        assert!(related > 0.4, "related {related}");
        assert!(unrelated.abs() < 0.3, "unrelated {unrelated}");
    }
}
