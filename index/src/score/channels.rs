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

use super::anchors::shared_positions;
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
        for (k, profile) in e.channel_profiles.chunks_exact(present).enumerate() {
            for (i, &p) in positions.iter().enumerate() {
                if i % 2 == 0 {
                    first[k * sf + i / 2] = profile[p];
                } else {
                    second[k * ss + i / 2] = profile[p];
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

/// (Σx, Σx²) of a run of `i8`.
fn sums(x: &[i8]) -> (i64, i64) {
    x.iter().fold((0, 0), |(s, q), &v| {
        let v = v as i64;
        (s + v, q + v * v)
    })
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
    let channels_a = ha.first.chunks_exact(sf).zip(&ha.first_sums).zip(&va);
    for (i, ((x, &(sx, _)), &vx)) in channels_a.enumerate() {
        let channels_b = hb.first.chunks_exact(sf).zip(&hb.first_sums).zip(&vb);
        for (j, ((y, &(sy, _)), &vy)) in channels_b.enumerate() {
            // r = cov / √(vx·vy) ≥ r_min, tested without a division or a root (most pairs fail it).
            let cov = (n * dot(x, y) as i64 - sx * sy) as f64;
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
