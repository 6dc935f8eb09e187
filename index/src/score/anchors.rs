//! Token-keyed embedding evidence over the anchors present in both models: EAS (correlation of the anchor
//! Gram matrices) and END (correlation of the anchor row norms). Both are dimension-free, so they compare
//! models of different widths (distillation, scaled transfer), and token-keyed, so they survive vocabulary
//! changes.

use super::positional::{pearson, PairedSums};
use crate::schema::EmbeddingSignals;
use std::ops::Range;

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

/// `0..len` cut into maximal runs, item `t` joining the run of item `t − 1` when `follows(t)` (called for
/// `t ≥ 1` only).
pub(super) fn runs_where(len: usize, follows: impl Fn(usize) -> bool) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for t in 0..len {
        match runs.last_mut() {
            Some(run) if follows(t) => run.end = t + 1,
            _ => runs.push(t..t + 1),
        }
    }
    runs
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
    // Runs of shared anchors that follow one another in both models' present anchors: within a run, a row's
    // entries are neighbours in both triangles and are summed as two slices (vectorised) instead of pair by
    // pair. Anchors go missing in groups (a script, a kind of token), so runs are long: the same sums, several
    // times faster for the rescoring of candidates with another tokenizer.
    let runs = runs_where(shared.len(), |t| {
        shared[t] == (shared[t - 1].0 + 1, shared[t - 1].1 + 1)
    });
    let mut sums = IntegerPearson::default();
    let mut first_run = 0;
    for (s, &(ai, bi)) in shared.iter().enumerate() {
        // Row `ai` of A's strict upper triangle starts at tri(ai, ai + 1, ka): entry (ai, aj) is at
        // row_a + aj.
        let (row_a, row_b) = (
            tri(ai, ai + 1, ka) as isize - ai as isize - 1,
            tri(bi, bi + 1, kb) as isize - bi as isize - 1,
        );
        while runs[first_run].end <= s + 1 && first_run + 1 < runs.len() {
            first_run += 1;
        }
        for run in &runs[first_run..] {
            let from = run.start.max(s + 1);
            if from >= run.end {
                continue;
            }
            let (aj, bj) = shared[from];
            let len = run.end - from;
            let (xa, xb) = (
                (row_a + aj as isize) as usize,
                (row_b + bj as isize) as usize,
            );
            match (a.gram.get(xa..xa + len), b.gram.get(xb..xb + len)) {
                (Some(x), Some(y)) => sums.add_runs(x, y),
                // A triangle shorter than its anchor count says (a damaged record): the entries it has.
                _ => {
                    for &(aj, bj) in &shared[from..run.end] {
                        let (x, y) = (
                            a.gram.get((row_a + aj as isize) as usize),
                            b.gram.get((row_b + bj as isize) as usize),
                        );
                        if let (Some(&x), Some(&y)) = (x, y) {
                            sums.add(x, y);
                        }
                    }
                }
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

    /// Add two aligned runs (their common prefix).
    fn add_runs(&mut self, xs: &[i8], ys: &[i8]) {
        let s = PairedSums::of(xs, ys);
        self.n += s.n;
        self.x += s.x;
        self.y += s.y;
        self.xx += s.xx;
        self.yy += s.yy;
        self.xy += s.xy;
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

    /// The definition of EAS across tokenizers: pair by pair over the shared anchors, skipping entries a
    /// short triangle lacks.
    fn eas_pair_by_pair(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Option<(f64, usize)> {
        let shared = shared_positions(a, b);
        if shared.len() < MIN_SHARED_ANCHORS {
            return None;
        }
        let (ka, kb) = (a.anchor_log_norms.len(), b.anchor_log_norms.len());
        let mut sums = IntegerPearson::default();
        for (s, &(ai, bi)) in shared.iter().enumerate() {
            for &(aj, bj) in &shared[s + 1..] {
                let (x, y) = (a.gram.get(tri(ai, aj, ka)), b.gram.get(tri(bi, bj, kb)));
                if let (Some(&x), Some(&y)) = (x, y) {
                    sums.add(x, y);
                }
            }
        }
        sums.r().map(|r| (r, shared.len()))
    }

    /// Embedding signals with the anchors `present` (of 256) and a pseudo-random Gram triangle, cut to
    /// `keep` of its entries (a damaged record) when given.
    fn with_anchors(present: &[usize], seed: u64, keep: Option<usize>) -> EmbeddingSignals {
        let mut presence = vec![0u64; 4];
        for &i in present {
            presence[i / 64] |= 1 << (i % 64);
        }
        let k = present.len();
        let mut gram: Vec<i8> = (0..k * (k - 1) / 2)
            .map(|i| (crate::testutil::normal(seed, i as u64) * 40.0).clamp(-127.0, 127.0) as i8)
            .collect();
        if let Some(keep) = keep {
            gram.truncate(keep);
        }
        EmbeddingSignals {
            anchor_set_version: crate::anchors::ANCHOR_SET_VERSION,
            presence,
            anchor_log_norms: vec![0.0; k],
            gram,
            ..Default::default()
        }
    }

    #[test]
    fn eas_by_runs_is_eas_pair_by_pair() {
        let every =
            |step: usize, from: usize, to: usize| (from..to).step_by(step).collect::<Vec<_>>();
        // Anchors missing in groups (the common case), scattered, alternating, and none at all.
        let grouped: Vec<usize> = (0..256)
            .filter(|i| !(40..90).contains(i) && !(200..210).contains(i))
            .collect();
        let scattered: Vec<usize> = (0..256).filter(|i| (i * 7919) % 11 != 3).collect();
        let sets = [
            (0..256).collect::<Vec<_>>(),
            (0..170).collect(),
            grouped,
            scattered,
            every(2, 0, 256),
            every(3, 1, 256),
        ];
        let mut runs_were_used = false;
        for (i, pa) in sets.iter().enumerate() {
            for (j, pb) in sets.iter().enumerate() {
                let (a, b) = (
                    with_anchors(pa, i as u64, None),
                    with_anchors(pb, 100 + j as u64, None),
                );
                let expected = eas_pair_by_pair(&a, &b);
                assert_eq!(eas(&a, &b), expected, "anchor sets {i} and {j}");
                assert!(expected.is_some());
                runs_were_used |= a.presence != b.presence;
                // A damaged record whose triangle is shorter than its anchor count says.
                let short = with_anchors(pb, 7, Some(pb.len() * 10));
                assert_eq!(
                    eas(&a, &short),
                    eas_pair_by_pair(&a, &short),
                    "sets {i}, {j} cut"
                );
            }
        }
        assert!(runs_were_used);
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
