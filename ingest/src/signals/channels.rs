//! Channel profiles: the embedding channels (columns) that identify a model by content rather than position.
//!
//! A channel's values at the anchor tokens are its *profile*. A derivative whose hidden size was pruned or whose
//! channels were reordered keeps its parent's profiles at other indices, so `score::channels` pairs them by
//! content. Profiles are stored for the [`CHANNEL_PROFILES`] most variable channels over the anchors, after
//! the [`DEFLATED_DIRECTIONS`] strongest directions over the anchors are projected out of them: models trained
//! on similar text share those directions (token frequency, broad word classes) in any basis, so they would
//! make independent models' channels look alike. Doing this here, once per model, keeps `compare` to integer
//! correlations of stored bytes.

use provsearch_index::schema::{quantize_sample, CHANNEL_PROFILES};

/// Strongest directions over the anchors removed from the profiles. The zoo's independent pairs (64-wide
/// models trained on the same text) pair at most 13 of 32 channels at a held-out r of 0.42 with 2 removed, 7
/// at 0.29 with 4, 8 at 0.18 with 6, while the least related pair (a heavy fine-tune) keeps 0.70 / 0.62 / 0.56
/// (docs/eval.md, "Channel-matched evidence").
pub const DEFLATED_DIRECTIONS: usize = 4;

/// Iterations of the block power method that finds the deflated directions. Fixed, so that a profile is a
/// deterministic function of the anchor rows.
const POWER_ITERATIONS: usize = 64;

/// The channels of the mean-centred anchor rows (`rows[a][c]`, `h` channels) with the largest variance over
/// the anchors, most variable first (ties by index), and their deflated, standardised and quantised values at
/// every anchor: (channel indices, channel-major profiles of `rows.len()` values each).
///
/// Variance over the anchors chooses the channels because it is a property of a channel's content, not of
/// its index: a model whose channels were pruned (the high-variance ones carry the most and are the last to
/// go) or reordered picks the same channels again, wherever they now sit. Constant channels are never chosen.
pub fn channel_profiles(rows: &[Vec<f64>], h: usize) -> (Vec<u32>, Vec<i8>) {
    let n = rows.len();
    if n < 2 {
        return (Vec::new(), Vec::new());
    }
    let mean: Vec<f64> = (0..h)
        .map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n as f64)
        .collect();
    let variance: Vec<f64> = (0..h)
        .map(|c| rows.iter().map(|r| (r[c] - mean[c]).powi(2)).sum::<f64>() / n as f64)
        .collect();
    let mut order: Vec<usize> = (0..h).filter(|&c| variance[c] > 0.0).collect();
    order.sort_by(|&x, &y| variance[y].total_cmp(&variance[x]).then(x.cmp(&y)));
    order.truncate(CHANNEL_PROFILES);
    let mut columns: Vec<Vec<f64>> = order
        .iter()
        .map(|&c| rows.iter().map(|r| r[c]).collect())
        .collect();
    columns.iter_mut().for_each(|c| standardise(c));
    deflate(&mut columns, DEFLATED_DIRECTIONS);
    columns.iter_mut().for_each(|c| standardise(c));
    let profiles = columns
        .iter()
        .flat_map(|c| c.iter().map(|&v| quantize_sample(v)))
        .collect();
    (order.into_iter().map(|c| c as u32).collect(), profiles)
}

/// Centre a column and scale it to unit variance (a constant column becomes zeros).
fn standardise(c: &mut [f64]) {
    let n = c.len().max(1) as f64;
    let mean = c.iter().sum::<f64>() / n;
    let sd = (c.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    for v in c.iter_mut() {
        *v = if sd > 1e-12 { (*v - mean) / sd } else { 0.0 };
    }
}

/// Remove from the columns `x` (each one value per anchor) their `d` strongest common directions over the
/// anchors: `X ← X (I − V Vᵀ)` with `V` the top `d` right singular vectors of `X`, which is the same as
/// projecting the top `d` left singular vectors (directions over the anchors) out of every column. `V` comes
/// from block power iterations on the channel Gram matrix `XᵀX`, from its own first columns.
fn deflate(x: &mut [Vec<f64>], d: usize) {
    let k = x.len();
    let d = d.min(k);
    if d == 0 {
        return;
    }
    let gram: Vec<Vec<f64>> = x
        .iter()
        .map(|p| x.iter().map(|q| dot(p, q)).collect())
        .collect();
    let mut basis: Vec<Vec<f64>> = gram.iter().take(d).cloned().collect();
    orthonormalise(&mut basis);
    for _ in 0..POWER_ITERATIONS {
        let mut next: Vec<Vec<f64>> = basis
            .iter()
            .map(|v| gram.iter().map(|row| dot(row, v)).collect())
            .collect();
        orthonormalise(&mut next);
        if next.is_empty() {
            return;
        }
        basis = next;
    }
    let anchors = x.first().map_or(0, Vec::len);
    for v in &basis {
        // u = X v (one value per anchor); X ← X − u vᵀ.
        let u: Vec<f64> = (0..anchors)
            .map(|a| x.iter().zip(v).map(|(c, w)| c[a] * w).sum())
            .collect();
        for (c, w) in x.iter_mut().zip(v) {
            for (value, ua) in c.iter_mut().zip(&u) {
                *value -= ua * w;
            }
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Gram-Schmidt; vectors that vanish (a rank-deficient set) are dropped.
fn orthonormalise(vs: &mut Vec<Vec<f64>>) {
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(vs.len());
    for mut v in vs.drain(..) {
        for q in &out {
            let p = dot(&v, q);
            v.iter_mut().zip(q).for_each(|(a, b)| *a -= p * b);
        }
        let n = dot(&v, &v).sqrt();
        if n > 1e-9 {
            v.iter_mut().for_each(|a| *a /= n);
            out.push(v);
        }
    }
    *vs = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 anchor rows of 48 channels: channel c has spread 2^(c % 12), channel 5 is constant.
    fn rows() -> Vec<Vec<f64>> {
        (0..40)
            .map(|a| {
                (0..48)
                    .map(|c| {
                        let wave = (((a * 7919 + c * 104_729) % 1009) as f64 * 0.37).sin();
                        if c == 5 {
                            3.0
                        } else {
                            (1u32 << (c % 12)) as f64 * wave
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn profiles_follow_content_not_position() {
        let (rows, h) = (rows(), 48);
        let (ids, profiles) = channel_profiles(&rows, h);
        assert_eq!(ids.len(), CHANNEL_PROFILES);
        assert_eq!(profiles.len(), CHANNEL_PROFILES * rows.len());
        assert!(!ids.contains(&5), "a constant channel has no profile");
        // Most variable first: the spread-2^11 channels (11, 23, 35, 47) lead.
        let mut lead = ids[..4].to_vec();
        lead.sort_unstable();
        assert_eq!(lead, [11, 23, 35, 47]);
        // Each profile is standardised over the anchors (up to the i8 rounding).
        for p in profiles.chunks_exact(rows.len()) {
            let z: Vec<f64> = p.iter().map(|&v| v as f64 / 31.75).collect();
            let mean = z.iter().sum::<f64>() / z.len() as f64;
            let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / z.len() as f64;
            assert!(
                mean.abs() < 0.02 && (var - 1.0).abs() < 0.05,
                "{mean} {var}"
            );
        }
        // The channels in reverse order: the same profiles, at the mirrored indices.
        let reversed: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| r.iter().rev().copied().collect())
            .collect();
        let (rids, rprofiles) = channel_profiles(&reversed, h);
        let by_id = |ids: &[u32], p: &[i8], mirror: bool| -> Vec<(u32, Vec<i8>)> {
            let mut v: Vec<(u32, Vec<i8>)> = ids
                .iter()
                .map(|&c| if mirror { h as u32 - 1 - c } else { c })
                .zip(p.chunks_exact(rows.len()).map(<[i8]>::to_vec))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            by_id(&rids, &rprofiles, true),
            by_id(&ids, &profiles, false)
        );
        // Fewer than two anchors: no profiles.
        assert_eq!(channel_profiles(&rows[..1], h), (vec![], vec![]));
    }

    #[test]
    fn deflation_removes_a_direction_every_channel_shares() {
        // 32 channels over 60 anchors: each its own pattern plus a large multiple of one shared pattern.
        let shared: Vec<f64> = (0..60).map(|a| ((a * a) as f64 * 0.37).sin()).collect();
        let rows: Vec<Vec<f64>> = (0..60)
            .map(|a| {
                (0..32)
                    .map(|c| {
                        5.0 * shared[a] * (1.0 + c as f64 / 32.0) + ((a * 31 + c * 17) as f64).cos()
                    })
                    .collect()
            })
            .collect();
        let (_, profiles) = channel_profiles(&rows, 32);
        // Before deflation every channel correlates ~0.99 with the shared pattern; after, none does.
        let mut shared = shared;
        standardise(&mut shared);
        for p in profiles.chunks_exact(60) {
            let r = p
                .iter()
                .zip(&shared)
                .map(|(&v, s)| v as f64 / 31.75 * s)
                .sum::<f64>()
                / 60.0;
            assert!(r.abs() < 0.1, "{r}");
        }
    }
}
