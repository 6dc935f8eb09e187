//! Token-keyed embedding evidence over the anchors present in both models: EAS (correlation of the anchor
//! Gram matrices) and END (correlation of the anchor row norms). Both are dimension-free, so they compare
//! models of different widths (distillation, scaled transfer), and token-keyed, so they survive vocabulary
//! changes.

use super::positional::pearson;
use crate::schema::EmbeddingSignals;

/// Fewest shared anchors for EAS/END to be reported.
pub const MIN_SHARED_ANCHORS: usize = 16;

/// For each model, the position (among its present anchors) of every anchor present in both.
pub(super) fn shared_positions(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Vec<(usize, usize)> {
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
///
/// The Gram entries are `i8`, so the correlation's sums are accumulated exactly in integers in one pass
/// without collecting the (up to ~21,000) pairs: this runs once per rescored candidate of every query.
pub fn eas(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Option<(f64, usize)> {
    if a.anchor_set_version == b.anchor_set_version
        && a.presence == b.presence
        && a.gram.len() == b.gram.len()
    {
        // Same anchors present (same tokenizer family, the common case): the triangles line up entry by entry.
        let shared = a.anchor_log_norms.len();
        if shared < MIN_SHARED_ANCHORS {
            return None;
        }
        let mut sums = IntegerPearson::default();
        sums.add_runs(&a.gram, &b.gram);
        return sums.r().map(|r| (r, shared));
    }
    let shared = shared_positions(a, b);
    if shared.len() < MIN_SHARED_ANCHORS {
        return None;
    }
    let ka = a.anchor_log_norms.len();
    let kb = b.anchor_log_norms.len();
    let mut sums = IntegerPearson::default();
    for (s, &(ai, bi)) in shared.iter().enumerate() {
        // Row `ai` of A's strict upper triangle starts at tri(ai, ai + 1, ka).
        let (row_a, row_b) = (
            tri(ai, ai + 1, ka) as isize - ai as isize - 1,
            tri(bi, bi + 1, kb) as isize - bi as isize - 1,
        );
        for &(aj, bj) in &shared[s + 1..] {
            let (x, y) = (
                a.gram.get((row_a + aj as isize) as usize),
                b.gram.get((row_b + bj as isize) as usize),
            );
            if let (Some(&x), Some(&y)) = (x, y) {
                sums.add(x, y);
            }
        }
    }
    sums.r().map(|r| (r, shared.len()))
}

/// Exact one-pass sums of a Pearson correlation between `i8` series.
#[derive(Debug, Default)]
struct IntegerPearson {
    n: i64,
    x: i64,
    y: i64,
    xx: i64,
    yy: i64,
    xy: i64,
}

impl IntegerPearson {
    #[inline]
    fn add(&mut self, x: i8, y: i8) {
        let (x, y) = (x as i64, y as i64);
        self.n += 1;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.yy += y * y;
        self.xy += x * y;
    }

    /// Add two aligned runs (vectorised: i32 partial sums, exact for runs below 2³¹ / 127² entries).
    fn add_runs(&mut self, xs: &[i8], ys: &[i8]) {
        for (cx, cy) in xs.chunks(65_536).zip(ys.chunks(65_536)) {
            let (mut x, mut y, mut xx, mut yy, mut xy) = (0i32, 0i32, 0i32, 0i32, 0i32);
            for (&a, &b) in cx.iter().zip(cy) {
                let (a, b) = (a as i32, b as i32);
                x += a;
                y += b;
                xx += a * a;
                yy += b * b;
                xy += a * b;
            }
            self.n += cx.len().min(cy.len()) as i64;
            self.x += x as i64;
            self.y += y as i64;
            self.xx += xx as i64;
            self.yy += yy as i64;
            self.xy += xy as i64;
        }
    }

    /// The correlation; `None` for fewer than 3 points or a constant side (like [`pearson`]).
    fn r(&self) -> Option<f64> {
        if self.n < 3 {
            return None;
        }
        // n·Σxy − Σx·Σy and the variances' counterparts, exact in i64 (|terms| < 2⁴⁵ for n < 2²⁰).
        let cov = (self.n * self.xy - self.x * self.y) as f64;
        let vx = (self.n * self.xx - self.x * self.x) as f64;
        let vy = (self.n * self.yy - self.y * self.y) as f64;
        (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
    }
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
    fn integer_pearson_matches_float_pearson() {
        let xs: Vec<i8> = (0..500).map(|i| ((i * 37) % 255 - 127) as i8).collect();
        let ys: Vec<i8> = (0..500).map(|i| ((i * 91 + 7) % 251 - 125) as i8).collect();
        let mut sums = IntegerPearson::default();
        for (&x, &y) in xs.iter().zip(&ys) {
            sums.add(x, y);
        }
        let mut runs = IntegerPearson::default();
        runs.add_runs(&xs, &ys);
        assert_eq!(runs.r(), sums.r());
        let f = |v: &[i8]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let expected = pearson(&f(&xs), &f(&ys)).unwrap();
        assert!((sums.r().unwrap() - expected).abs() < 1e-12);
        let mut constant = IntegerPearson::default();
        for &y in &ys {
            constant.add(3, y);
        }
        assert_eq!(constant.r(), None);
    }

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
