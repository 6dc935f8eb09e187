//! Token-keyed embedding evidence over the anchors present in both models: EAS (correlation of the anchor
//! Gram matrices) and END (correlation of the anchor row norms). Both are dimension-free, so they compare
//! models of different widths (distillation, scaled transfer), and token-keyed, so they survive vocabulary
//! changes.

use super::positional::pearson;
use crate::schema::{EmbeddingSignals, GRAM_SCALE};

/// Fewest shared anchors for EAS/END to be reported.
pub const MIN_SHARED_ANCHORS: usize = 16;

/// For each model, the position (among its present anchors) of every anchor present in both.
fn shared_positions(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Vec<(usize, usize)> {
    if a.anchor_set_version != b.anchor_set_version {
        return Vec::new();
    }
    let (mut ia, mut ib) = (0usize, 0usize);
    let mut out = Vec::new();
    for i in 0..a.presence.len().max(b.presence.len()) * 64 {
        let (ha, hb) = (a.has_anchor(i), b.has_anchor(i));
        if ha && hb {
            out.push((ia, ib));
        }
        ia += ha as usize;
        ib += hb as usize;
    }
    out
}

/// Index of pair (i, j), i < j, in a strict upper triangle over `k` items.
fn tri(i: usize, j: usize, k: usize) -> usize {
    i * k - i * (i + 1) / 2 + (j - i - 1)
}

/// EAS: Pearson correlation of the Gram entries over the shared anchors. Returns (r, shared anchors).
pub fn eas(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Option<(f64, usize)> {
    let shared = shared_positions(a, b);
    if shared.len() < MIN_SHARED_ANCHORS {
        return None;
    }
    let ka = a.anchor_log_norms.len();
    let kb = b.anchor_log_norms.len();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (s, &(ai, bi)) in shared.iter().enumerate() {
        for &(aj, bj) in &shared[s + 1..] {
            let (x, y) = (a.gram.get(tri(ai, aj, ka)), b.gram.get(tri(bi, bj, kb)));
            if let (Some(&x), Some(&y)) = (x, y) {
                xs.push(x as f64 / GRAM_SCALE as f64);
                ys.push(y as f64 / GRAM_SCALE as f64);
            }
        }
    }
    pearson(&xs, &ys).map(|r| (r, shared.len()))
}

/// END: Pearson correlation of `ln(anchor row norm / median norm)` over the shared anchors.
pub fn end(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Option<(f64, usize)> {
    let shared = shared_positions(a, b);
    if shared.len() < MIN_SHARED_ANCHORS {
        return None;
    }
    let xs: Vec<f64> = shared
        .iter()
        .filter_map(|&(i, _)| a.anchor_log_norms.get(i).map(|&v| v as f64))
        .collect();
    let ys: Vec<f64> = shared
        .iter()
        .filter_map(|&(_, j)| b.anchor_log_norms.get(j).map(|&v| v as f64))
        .collect();
    if xs.len() != shared.len() || ys.len() != shared.len() {
        return None;
    }
    pearson(&xs, &ys).map(|r| (r, shared.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangle_index_is_dense() {
        let k = 5;
        let mut seen = vec![];
        for i in 0..k {
            for j in i + 1..k {
                seen.push(tri(i, j, k));
            }
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
    }
}
