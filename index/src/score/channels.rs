//! Channel-matched embedding evidence: which hidden channels of one model are the channels of the other,
//! found by content rather than by position.
//!
//! Positional WVC needs tensors of the same role and shape. A model whose hidden size was pruned (Minitron,
//! Sheared-LLaMA), grown (scaled transfer), or whose channels were reordered throughout (a function-preserving
//! permutation of the residual stream) shares no such tensor with its parent, yet its embedding columns are
//! its parent's columns, in another order and number. A column's values at the anchor tokens (its *profile*,
//! stored by ingest for the most variable channels, with the directions every model trained on text shares
//! projected out) identify it whatever its index, so:
//!
//! 1. both sides' profiles are restricted to the anchors present in both, and those are split in two halves
//!    (even and odd positions);
//! 2. channels are paired one to one, greedily by their correlation on the first half, and only pairs far
//!    above chance are kept (Fisher z ≥ [`MATCH_Z`]);
//! 3. the kept pairs are correlated on the *second* half only, which the pairing never saw, so choosing the
//!    best of many candidate partners does not inflate the result.
//!
//! What remains for independent models is what a privileged basis gives them: a feature two models happen
//! to put on one channel each. In the zoo (64-wide models, where 32 profiles are half the channels) that
//! pairs at most 7 channels, at a held-out r of at most 0.29; derivatives pair 19-32 at 0.62-0.99, and a
//! MiniLM whose width was cut to a quarter, with noise as large as its weights, 17 at 0.62. Hence at least
//! [`MIN_MATCHED_CHANNELS`] pairs, and evidence scored against a baseline (`score::CHANNEL_BASELINE`) rather
//! than a null of zero. The profiles are `i8`, so every correlation is computed from exact integer sums:
//! this runs for every rescored candidate of a query.

use super::anchors::{runs_where, shared_positions};
use super::positional::PairedSums;
use crate::composite::dot;
use crate::schema::EmbeddingSignals;

/// Fewest anchors present in both models for channels to be matched (each half then has at least 24).
pub const MIN_SHARED_ANCHORS: usize = 48;

/// Fisher z (on the first half of the anchors) a channel pair needs to be kept.
pub const MATCH_Z: f64 = 4.0;

/// Fewest kept channel pairs for a correlation to be reported: a quarter of the profiled channels.
pub const MIN_MATCHED_CHANNELS: usize = 8;

/// The outcome of matching two models' channel profiles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelMatch {
    /// Pooled correlation of the paired channels on the held-out half of the anchors; `None` when fewer than
    /// [`MIN_MATCHED_CHANNELS`] pairs were kept.
    pub r: Option<f64>,
    /// Values behind `r` (kept pairs × held-out anchors).
    pub support: usize,
    /// Channel pairs kept.
    pub matched: usize,
    /// Kept pairs whose channels sit at the same index in both embeddings.
    pub same_index: usize,
}

/// One model's profiles at the shared anchors, split into the two halves: channel `k`'s first-half values
/// are `first[k * FIRST_STRIDE..]` (`nf` of them, then zeros up to the stride), its second-half values likewise,
/// with the sum and sum of squares of each channel's first half. The strides are whole multiples of 64 bytes,
/// so [`dot`] takes its AVX-512 VNNI path; the zero padding adds nothing to any sum or inner product.
struct Halves {
    first: Vec<i8>,
    second: Vec<i8>,
    first_sums: Vec<(i64, i64)>,
}

/// Row length of a half of `n` values: `n` rounded up to a multiple of 64.
fn stride(n: usize) -> usize {
    n.div_ceil(64).max(1) * 64
}

impl Halves {
    /// `None` when the model has no profiles or they do not fit its anchor count.
    fn new(e: &EmbeddingSignals, positions: impl Iterator<Item = usize>) -> Option<Halves> {
        let present = e.anchor_log_norms.len();
        let channels = e.channel_ids.len();
        if channels == 0 || present == 0 || e.channel_profiles.len() != channels * present {
            return None;
        }
        let positions: Vec<usize> = positions.collect();
        if positions.iter().any(|&p| p >= present) {
            return None;
        }
        let (nf, ns) = (positions.len().div_ceil(2), positions.len() / 2);
        let (sf, ss) = (stride(nf), stride(ns));
        let (mut first, mut second) = (vec![0i8; channels * sf], vec![0i8; channels * ss]);
        // Runs of consecutive positions (anchors go missing in groups, so runs are long): within a run the
        // halves take alternate values of one slice of each profile.
        let runs = runs_where(positions.len(), |t| positions[t] == positions[t - 1] + 1);
        let profiles = e.channel_profiles.chunks_exact(present);
        for ((profile, f), s) in profiles
            .zip(first.chunks_exact_mut(sf))
            .zip(second.chunks_exact_mut(ss))
        {
            for run in &runs {
                let (i, len) = (run.start, run.len());
                let values = &profile[positions[i]..positions[i] + len];
                // Position index i goes to half i % 2, at i / 2.
                if i % 2 == 0 {
                    split_alternate(values, &mut f[i / 2..], &mut s[i / 2..]);
                } else {
                    split_alternate(values, &mut s[i / 2..], &mut f[i / 2 + 1..]);
                }
            }
        }
        let first_sums = first.chunks_exact(sf).map(sums).collect();
        Some(Halves {
            first,
            second,
            first_sums,
        })
    }
}

/// `evens[k] = values[2k]` and `odds[k] = values[2k + 1]`, for the values there are.
fn split_alternate(values: &[i8], evens: &mut [i8], odds: &mut [i8]) {
    let pairs = values.chunks_exact(2);
    let last = pairs.remainder().first().copied();
    let n = pairs.len();
    for ((pair, e), o) in pairs.zip(&mut evens[..n]).zip(&mut odds[..n]) {
        *e = pair[0];
        *o = pair[1];
    }
    if let Some(v) = last {
        evens[n] = v;
    }
}

/// (Σx, Σx²) of a run of `i8`.
fn sums(x: &[i8]) -> (i64, i64) {
    let s = PairedSums::of(x, x);
    (s.x, s.xx)
}

/// Match the channel profiles of two embeddings (see the module docs). `None` when either has no profiles,
/// the stored profiles are malformed, or fewer than [`MIN_SHARED_ANCHORS`] anchors are shared.
pub fn match_channels(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Option<ChannelMatch> {
    let shared = shared_positions(a, b);
    if shared.len() < MIN_SHARED_ANCHORS {
        return None;
    }
    let ha = Halves::new(a, shared.iter().map(|&(p, _)| p))?;
    let hb = Halves::new(b, shared.iter().map(|&(_, p)| p))?;
    let (nf, ns) = (shared.len().div_ceil(2), shared.len() / 2);
    let (sf, ss) = (stride(nf), stride(ns));

    // Pair channels greedily by their first-half correlation, strongest first. Fisher z = atanh(r)·√(n − 3)
    // rises with r, so the z cut is an r cut, found once.
    let r_min = (MATCH_Z / ((nf as f64) - 3.0).max(1.0).sqrt()).tanh();
    let n = nf as i64;
    let variance = |(s, q): (i64, i64)| (n * q - s * s) as f64;
    let (va, vb): (Vec<f64>, Vec<f64>) = (
        ha.first_sums.iter().map(|&s| variance(s)).collect(),
        hb.first_sums.iter().map(|&s| variance(s)).collect(),
    );
    let mut candidates = Vec::new();
    let nb = hb.first_sums.len();
    let dots = all_dots(&ha.first, &hb.first, sf);
    for (i, (&(sx, _), &vx)) in ha.first_sums.iter().zip(&va).enumerate() {
        for (j, (&(sy, _), &vy)) in hb.first_sums.iter().zip(&vb).enumerate() {
            // r = cov / √(vx·vy) ≥ r_min, tested without a division or a root (most pairs fail it).
            let cov = (n * dots[i * nb + j] as i64 - sx * sy) as f64;
            let vv = vx * vy;
            if cov > 0.0 && vv > 0.0 && cov * cov >= r_min * r_min * vv {
                candidates.push((cov / vv.sqrt(), i, j));
            }
        }
    }
    candidates.sort_by(|p, q| q.0.total_cmp(&p.0).then((p.1, p.2).cmp(&(q.1, q.2))));
    let (mut used_a, mut used_b) = (
        vec![false; ha.first_sums.len()],
        vec![false; hb.first_sums.len()],
    );
    let mut pairs = Vec::new();
    for (_, i, j) in candidates {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            pairs.push((i, j));
        }
    }

    // Correlate the kept pairs on the held-out half: each channel centred on its own mean there, pooled.
    let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
    for &(i, j) in &pairs {
        let (x, y) = (
            &ha.second[i * ss..(i + 1) * ss],
            &hb.second[j * ss..(j + 1) * ss],
        );
        let (n, (sx, sxx), (sy, syy)) = (ns as f64, sums(x), sums(y));
        xy += dot(x, y) as f64 - sx as f64 * sy as f64 / n;
        xx += sxx as f64 - sx as f64 * sx as f64 / n;
        yy += syy as f64 - sy as f64 * sy as f64 / n;
    }
    let r = (pairs.len() >= MIN_MATCHED_CHANNELS && xx > 0.0 && yy > 0.0)
        .then(|| xy / (xx * yy).sqrt());
    let same_index = pairs
        .iter()
        .filter(|&&(i, j)| a.channel_ids[i] == b.channel_ids[j])
        .count();
    Some(ChannelMatch {
        r,
        support: if r.is_some() { pairs.len() * ns } else { 0 },
        matched: pairs.len(),
        same_index,
    })
}

/// The inner products of every row of `a` with every row of `b` (rows of `stride` values, a multiple of 64):
/// `out[i · rows of b + j] = a_i · b_j`. Exact integer sums, so the same on any instruction set.
fn all_dots(a: &[i8], b: &[i8], stride: usize) -> Vec<i32> {
    #[cfg(target_arch = "x86_64")]
    if stride.is_multiple_of(64)
        && std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        // SAFETY: the CPU supports these features (checked just above); the stride is a multiple of 4.
        return unsafe { all_dots_vnni(a, b, stride) };
    }
    a.chunks_exact(stride)
        .flat_map(|x| b.chunks_exact(stride).map(move |y| dot(x, y)))
        .collect()
}

/// [`all_dots`] with AVX-512 VNNI, sixteen rows of `b` at a time in the sixteen lanes of a register, so that
/// no sum is ever reduced across lanes (pair by pair, the reduction cost more than the products). `b` is
/// interleaved first: lane `j` of block `g` holds values `4g..4g + 4` of row `j`; each `vpdpbusd` adds, in
/// every lane, four products of `a_i`'s values `4g..4g + 4` (shifted into unsigned range, `+ 128`) with that
/// lane's row. The shift's surplus, `128 · Σ b_j`, is taken off at the end.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512 VNNI, and `stride` must be a multiple of 4.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn all_dots_vnni(a: &[i8], b: &[i8], stride: usize) -> Vec<i32> {
    use std::arch::x86_64::*;
    const LANES: usize = 16;
    let (na, nb) = (a.len() / stride, b.len() / stride);
    let (groups, blocks) = (stride / 4, nb.div_ceil(LANES));
    let mut interleaved = vec![0i8; blocks * groups * 4 * LANES];
    let mut surplus = vec![0i32; blocks * LANES];
    for (j, row) in b.chunks_exact(stride).enumerate() {
        let (block, lane) = (j / LANES, j % LANES);
        for (g, values) in row.chunks_exact(4).enumerate() {
            let at = ((block * groups + g) * LANES + lane) * 4;
            interleaved[at..at + 4].copy_from_slice(values);
        }
        surplus[j] = 128 * row.iter().map(|&v| v as i32).sum::<i32>();
    }
    let mut out = vec![0i32; na * nb];
    let mut lanes = [0i32; LANES];
    for (i, x) in a.chunks_exact(stride).enumerate() {
        for block in 0..blocks {
            let rows = &interleaved[block * groups * 4 * LANES..(block + 1) * groups * 4 * LANES];
            let mut acc = _mm512_setzero_si512();
            for (values, y) in x.chunks_exact(4).zip(rows.chunks_exact(4 * LANES)) {
                let shifted = u32::from_le_bytes([
                    values[0] as u8,
                    values[1] as u8,
                    values[2] as u8,
                    values[3] as u8,
                ]) ^ 0x8080_8080;
                acc = _mm512_dpbusd_epi32(
                    acc,
                    _mm512_set1_epi32(shifted as i32),
                    _mm512_loadu_si512(y.as_ptr().cast()),
                );
            }
            let surplus = _mm512_loadu_si512(surplus[block * LANES..].as_ptr().cast());
            _mm512_storeu_si512(lanes.as_mut_ptr().cast(), _mm512_sub_epi32(acc, surplus));
            let first = block * LANES;
            let take = LANES.min(nb - first);
            out[i * nb + first..i * nb + first + take].copy_from_slice(&lanes[..take]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit-variance value from a hash of `key`.
    fn normal(key: u64) -> f64 {
        crate::testutil::normal(0xC4A7, key)
    }

    fn signals(anchors: usize, channels: &[(u32, Vec<f64>)]) -> EmbeddingSignals {
        crate::testutil::profiled_signals(anchors, channels)
    }

    /// A profile over `anchors` anchors: `shared` times a few directions common to every channel, plus the
    /// channel's own values from `seed`.
    fn profile(anchors: usize, seed: u64, shared: f64) -> Vec<f64> {
        (0..anchors)
            .map(|a| {
                let semantic: f64 = (0..3)
                    .map(|d| normal(1 << 40 | d << 20 | a as u64) * normal(seed << 8 | d))
                    .sum();
                shared * semantic + normal(seed << 20 | a as u64)
            })
            .collect()
    }

    #[test]
    fn halves_split_the_shared_positions_alternately() {
        let anchors = 90;
        let channels: Vec<(u32, Vec<f64>)> = (0..5)
            .map(|k| {
                (
                    k,
                    (0..anchors)
                        .map(|a| normal(k as u64 * 1000 + a as u64))
                        .collect(),
                )
            })
            .collect();
        let e = signals(anchors, &channels);
        let sets: Vec<Vec<usize>> = vec![
            (0..anchors).collect(),
            (3..40).chain(41..42).chain(50..89).collect(), // runs at odd and even indices, a singleton
            (0..anchors).step_by(2).collect(),             // no run longer than one
            vec![7],
            (0..anchors).filter(|p| p % 7 != 3).collect(),
        ];
        for positions in sets {
            let h = Halves::new(&e, positions.iter().copied()).unwrap();
            let (sf, ss) = (
                stride(positions.len().div_ceil(2)),
                stride(positions.len() / 2),
            );
            for (k, profile) in e.channel_profiles.chunks_exact(anchors).enumerate() {
                let (mut f, mut s) = (vec![0i8; sf], vec![0i8; ss]);
                for (i, &p) in positions.iter().enumerate() {
                    if i % 2 == 0 {
                        f[i / 2] = profile[p];
                    } else {
                        s[i / 2] = profile[p];
                    }
                }
                assert_eq!(&h.first[k * sf..(k + 1) * sf], &f[..], "{positions:?}");
                assert_eq!(&h.second[k * ss..(k + 1) * ss], &s[..], "{positions:?}");
            }
        }
    }

    #[test]
    fn all_dots_are_the_pairwise_dots() {
        for (na, nb, stride) in [
            (1, 1, 64),
            (32, 32, 128),
            (15, 17, 64),
            (33, 16, 192),
            (7, 40, 256),
        ] {
            let row = |seed: u64, n: usize| -> Vec<i8> {
                (0..n * stride)
                    .map(|k| match k % 97 {
                        0 => i8::MIN,
                        1 => i8::MAX,
                        _ => (normal(seed ^ k as u64) * 50.0).clamp(-128.0, 127.0) as i8,
                    })
                    .collect()
            };
            let (a, b) = (row(na as u64, na), row(1000 + nb as u64, nb));
            let expected: Vec<i32> = a
                .chunks_exact(stride)
                .flat_map(|x| {
                    b.chunks_exact(stride)
                        .map(move |y| x.iter().zip(y).map(|(&p, &q)| p as i32 * q as i32).sum())
                })
                .collect();
            assert_eq!(
                all_dots(&a, &b, stride),
                expected,
                "{na} × {nb} rows of {stride}"
            );
        }
    }

    #[test]
    fn reordered_channels_pair_with_their_originals() {
        let parent: Vec<(u32, Vec<f64>)> =
            (0..32).map(|k| (k, profile(150, k as u64, 0.3))).collect();
        let mut child = parent.clone();
        child.reverse();
        for (k, (id, _)) in child.iter_mut().enumerate() {
            *id = 100 + k as u32;
        }
        let m = match_channels(&signals(150, &parent), &signals(150, &child)).unwrap();
        assert_eq!(m.matched, 32);
        assert_eq!(m.same_index, 0);
        assert!(m.r.unwrap() > 0.99, "{m:?}");
        assert_eq!(m.support, 32 * 75);
    }

    #[test]
    fn a_noisy_subset_of_channels_still_pairs() {
        let parent: Vec<(u32, Vec<f64>)> =
            (0..32).map(|k| (k, profile(160, k as u64, 0.3))).collect();
        // Half the channels kept (every other one), noise as large as the values, plus new channels.
        let child: Vec<(u32, Vec<f64>)> = (0..32)
            .map(|k| {
                if k % 2 == 0 {
                    let p = &parent[k as usize].1;
                    let noisy = p
                        .iter()
                        .enumerate()
                        .map(|(a, v)| v + normal(7 << 32 | (k << 16) as u64 | a as u64));
                    (k / 2, noisy.collect())
                } else {
                    (k, profile(160, 1000 + k as u64, 0.3))
                }
            })
            .collect();
        let m = match_channels(&signals(160, &parent), &signals(160, &child)).unwrap();
        assert!(
            m.matched >= MIN_MATCHED_CHANNELS && m.matched <= 20,
            "{m:?}"
        );
        assert!((0.5..0.9).contains(&m.r.unwrap()), "{m:?}");
    }

    #[test]
    fn independent_channels_do_not_pair() {
        // Profiles as ingest stores them: the directions every model shares already projected out.
        let a: Vec<(u32, Vec<f64>)> = (0..32).map(|k| (k, profile(200, k as u64, 0.0))).collect();
        let b: Vec<(u32, Vec<f64>)> = (0..32)
            .map(|k| (k, profile(200, 500 + k as u64, 0.0)))
            .collect();
        let m = match_channels(&signals(200, &a), &signals(200, &b)).unwrap();
        assert_eq!(m.r, None, "{m:?}");
        assert!(m.matched < MIN_MATCHED_CHANNELS, "{m:?}");
        assert_eq!(m.support, 0);
    }

    #[test]
    fn missing_malformed_or_too_few_profiles_are_not_compared() {
        let full: Vec<(u32, Vec<f64>)> =
            (0..32).map(|k| (k, profile(100, k as u64, 1.0))).collect();
        let good = signals(100, &full);
        assert!(match_channels(&good, &good).is_some());
        // No profiles (an older or embedding-less fingerprint).
        assert_eq!(match_channels(&good, &signals(100, &[])), None);
        // Profiles that do not fit the anchor count (a corrupt or hostile fingerprint): no panic, no match.
        let mut bad = good.clone();
        bad.channel_profiles.pop();
        assert_eq!(match_channels(&good, &bad), None);
        // Too few shared anchors.
        let few: Vec<(u32, Vec<f64>)> = (0..32).map(|k| (k, profile(40, k as u64, 1.0))).collect();
        assert_eq!(match_channels(&signals(40, &few), &signals(40, &few)), None);
    }
}
