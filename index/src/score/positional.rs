//! Positional weight evidence: correlation of weight samples taken at the same canonical positions (WVC over
//! matrices and anchor rows, NLF over norm gains and biases), with layer alignment, and the LEP energy profile.
//!
//! Samples are standardised, so for two models with independent weights their pooled cosine is centred on 0
//! with standard deviation `1/√n`; `z = r·√n` is then the evidence in standard deviations. Related models
//! keep a large positive correlation even after heavy fine-tuning or noise as large as the weights.

use crate::schema::{EmbeddingSignals, Stack, TensorEntry, TensorSamples, NO_LAYER};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Fewest paired samples for a positional correlation to be reported.
pub const MIN_PAIRED_SAMPLES: usize = 64;

/// Running sums of a pooled (uncentred) correlation between paired standardised samples. The samples are
/// `i8`, so the sums are exact integers (and the loop vectorises).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pool {
    dot: i64,
    aa: i64,
    bb: i64,
    /// Paired samples so far.
    pub n: usize,
}

impl Pool {
    /// Add the common prefix of two sample runs.
    pub fn add(&mut self, a: &[i8], b: &[i8]) {
        let sums = PairedSums::of(a, b);
        self.dot += sums.xy;
        self.aa += sums.xx;
        self.bb += sums.yy;
        self.n += sums.n as usize;
    }

    /// Merge another pool.
    pub fn merge(&mut self, other: &Pool) {
        self.dot += other.dot;
        self.aa += other.aa;
        self.bb += other.bb;
        self.n += other.n;
    }

    /// The pooled correlation, if there are enough non-degenerate samples.
    pub fn r(&self) -> Option<f64> {
        (self.n >= MIN_PAIRED_SAMPLES && self.aa > 0 && self.bb > 0)
            .then(|| self.dot as f64 / (self.aa as f64 * self.bb as f64).sqrt())
    }

    /// Evidence in standard deviations of the independent-weights null (`r·√n`, Fisher-transformed).
    pub fn z(&self) -> Option<f64> {
        self.r().map(|r| fisher_z(r, self.n))
    }
}

/// Evidence in standard deviations of a correlation `r` over `n` paired samples whose null is 0 ± 1/√n:
/// `atanh(r)·√n` (r clamped short of ±1, where atanh is infinite).
pub fn fisher_z(r: f64, n: usize) -> f64 {
    r.clamp(-0.999_999, 0.999_999).atanh() * (n as f64).sqrt()
}

/// Exact sums over the common prefix of two `i8` runs: count, Σx, Σy, Σx², Σy², Σxy. What every correlation
/// of stored samples is computed from (this runs for every rescored candidate of a query).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct PairedSums {
    pub n: i64,
    pub x: i64,
    pub y: i64,
    pub xx: i64,
    pub yy: i64,
    pub xy: i64,
}

impl PairedSums {
    /// The sums of `a` and `b` (vectorised: integer arithmetic, so the same on any instruction set).
    pub fn of(a: &[i8], b: &[i8]) -> PairedSums {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU supports AVX-512BW (checked just above).
            return unsafe { Self::of_avx512(a, b) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { Self::of_avx2(a, b) };
        }
        Self::of_inline(a, b)
    }

    /// [`PairedSums::of`] compiled for AVX-512BW (the crate's baseline target has SSE2 only).
    ///
    /// # Safety
    /// The CPU must support AVX-512BW.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512bw")]
    unsafe fn of_avx512(a: &[i8], b: &[i8]) -> PairedSums {
        Self::of_inline(a, b)
    }

    /// [`PairedSums::of`] compiled for AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn of_avx2(a: &[i8], b: &[i8]) -> PairedSums {
        Self::of_inline(a, b)
    }

    #[inline(always)]
    fn of_inline(a: &[i8], b: &[i8]) -> PairedSums {
        let n = a.len().min(b.len());
        let mut sums = PairedSums {
            n: n as i64,
            ..PairedSums::default()
        };
        // i32 partial sums are exact for runs of up to 2³¹ / 127² ≈ 133,000 values; longer runs are chunked.
        for (ca, cb) in a[..n].chunks(65_536).zip(b[..n].chunks(65_536)) {
            let (mut x, mut y, mut xx, mut yy, mut xy) = (0i32, 0i32, 0i32, 0i32, 0i32);
            for (&p, &q) in ca.iter().zip(cb) {
                let (p, q) = (p as i32, q as i32);
                x += p;
                y += q;
                xx += p * p;
                yy += q * q;
                xy += p * q;
            }
            sums.x += x as i64;
            sums.y += y as i64;
            sums.xx += xx as i64;
            sums.yy += yy as i64;
            sums.xy += xy as i64;
        }
        sums
    }
}

/// How the layers of two models were paired.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerAlignment {
    /// `(stack, layer of A) → layer of B`.
    pub map: FxHashMap<(Stack, u16), u16>,
    /// Whether any stack needed a best-match search (layer counts differ).
    pub searched: bool,
    /// Expected inflation of the pooled z under the null from that search (subtract it).
    pub z_penalty: f64,
    /// Human-readable summary.
    pub summary: String,
}

impl LayerAlignment {
    /// The layer of B that entry `e` of A is compared with: its aligned layer, or no layer for a tensor outside
    /// the layers (matched by name and shape); `None` when `e`'s layer has no counterpart.
    pub fn layer_in_b(&self, e: &TensorEntry) -> Option<u16> {
        if e.layer == NO_LAYER {
            Some(NO_LAYER)
        } else {
            self.map.get(&(e.stack, e.layer)).copied()
        }
    }
}

/// B's entries keyed by (stack, layer, role, shape), for looking up the entries of A. These are rebuilt for
/// every rescored candidate of a query, so role names are matched once per name, through a table from A's
/// role indices to ids of B's names, rather than hashed at every lookup (Fx hashing: keys we produced).
struct Entries<'a> {
    by_key: FxHashMap<(Stack, u16, u32, [u32; 2]), &'a TensorEntry>,
    /// The id of the name of A's role `r` among B's names, for `r` in `0..=a.roles.len()` (the last for every
    /// index out of range, which [`TensorSamples::role_name`] names `"?"`).
    a_roles: Vec<Option<u32>>,
}

impl<'a> Entries<'a> {
    fn new(a: &TensorSamples, b: &'a TensorSamples) -> Entries<'a> {
        let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
        let mut by_key = FxHashMap::with_capacity_and_hasher(b.entries.len(), Default::default());
        for e in &b.entries {
            let next = ids.len() as u32;
            let id = *ids.entry(b.role_name(e)).or_insert(next);
            // A repeated key keeps its last entry.
            by_key.insert((e.stack, e.layer, id, b.shape_of(e)), e);
        }
        let a_roles = (0..=a.roles.len())
            .map(|r| ids.get(a.roles.get(r).map_or("?", String::as_str)).copied())
            .collect();
        Entries { by_key, a_roles }
    }

    /// The id among B's names of the name of A's entry `e`'s role, if B has it.
    fn role_of(&self, e: &TensorEntry) -> Option<u32> {
        self.a_roles[(e.role as usize).min(self.a_roles.len() - 1)]
    }

    /// B's entry of the same role and shape as A's entry `e`, in B's `layer` of `stack`.
    fn get(
        &self,
        a: &TensorSamples,
        e: &TensorEntry,
        stack: Stack,
        layer: u16,
    ) -> Option<&'a TensorEntry> {
        let role = self.role_of(e)?;
        self.by_key
            .get(&(stack, layer, role, a.shape_of(e)))
            .copied()
    }
}

/// The layers of each stack, in order.
fn layers_by_stack(s: &TensorSamples) -> BTreeMap<Stack, Vec<u16>> {
    let mut layers: Vec<(Stack, u16)> = s
        .entries
        .iter()
        .filter(|e| e.layer != NO_LAYER)
        .map(|e| (e.stack, e.layer))
        .collect();
    layers.sort_unstable();
    layers.dedup();
    let mut out: BTreeMap<Stack, Vec<u16>> = BTreeMap::new();
    for (stack, layer) in layers {
        out.entry(stack).or_default().push(layer);
    }
    out
}

/// Pair the layers of A with those of B, from the matrices. Equal layer counts pair in order; otherwise each
/// layer of the shallower model takes its best-correlated layer of the deeper one (pruned or distilled
/// students keep a subset of their teacher's layers).
pub fn align_layers(a: &TensorSamples, b: &TensorSamples) -> LayerAlignment {
    align_with(a, b, &Entries::new(a, b))
}

/// [`align_layers`], then [`pooled`] under that alignment, with B's entries indexed once for both.
pub fn align_and_pool(a: &TensorSamples, b: &TensorSamples) -> (LayerAlignment, Pool) {
    let b_index = Entries::new(a, b);
    let alignment = align_with(a, b, &b_index);
    let pool = pool_with(a, b, &b_index, &alignment);
    (alignment, pool)
}

fn align_with(a: &TensorSamples, b: &TensorSamples, b_index: &Entries<'_>) -> LayerAlignment {
    let (la, lb) = (layers_by_stack(a), layers_by_stack(b));
    let mut alignment = LayerAlignment::default();
    let mut notes = Vec::new();
    for (stack, a_layers) in &la {
        let Some(b_layers) = lb.get(stack) else {
            continue;
        };
        if a_layers.len() == b_layers.len() {
            for (x, y) in a_layers.iter().zip(b_layers) {
                alignment.map.insert((*stack, *x), *y);
            }
            continue;
        }
        alignment.searched = true;
        let (small, big) = if a_layers.len() < b_layers.len() {
            (a_layers, b_layers)
        } else {
            (b_layers, a_layers)
        };
        // Expected maximum of `big` standard normals, per chosen layer, summed in z over √(chosen layers).
        let per_layer_max = (2.0 * (big.len() as f64).ln()).sqrt();
        alignment.z_penalty += per_layer_max * (small.len() as f64).sqrt();
        for (x, y) in best_matches(a, b, b_index, *stack, a_layers, b_layers) {
            alignment.map.insert((*stack, x), y);
        }
        notes.push(format!(
            "{:?}: {} vs {} layers, best-match alignment",
            stack,
            a_layers.len(),
            b_layers.len()
        ));
    }
    alignment.summary = notes.join("; ");
    alignment
}

/// For each layer `x` of A in `stack` (`a_layers`), the layer of B (`b_layers`) whose pool with it has the
/// highest z, if any pool has one. Every layer of A is pooled against every layer of B, entries matched by
/// role and shape. B's entries of the stack go into a table first, a row per layer and a column per (role,
/// shape) that A's layers use, so the La × Lb pools index it instead of looking up every tensor in a hash map.
fn best_matches(
    a: &TensorSamples,
    b: &TensorSamples,
    b_index: &Entries<'_>,
    stack: Stack,
    a_layers: &[u16],
    b_layers: &[u16],
) -> Vec<(u16, u16)> {
    // A's entries of each layer with their column (those whose role B has).
    let mut keys: FxHashMap<(u32, [u32; 2]), usize> = FxHashMap::default();
    let mut a_items: Vec<Vec<(usize, &TensorEntry)>> = vec![Vec::new(); a_layers.len()];
    for e in a.entries.iter().filter(|e| e.stack == stack) {
        let (Ok(row), Some(role)) = (a_layers.binary_search(&e.layer), b_index.role_of(e)) else {
            continue;
        };
        let next = keys.len();
        let column = *keys.entry((role, a.shape_of(e))).or_insert(next);
        a_items[row].push((column, e));
    }
    let columns = keys.len();
    let mut table: Vec<Option<&TensorEntry>> = vec![None; b_layers.len() * columns];
    for (&(s, layer, role, shape), &f) in &b_index.by_key {
        if s != stack {
            continue;
        }
        if let (Ok(row), Some(&column)) = (b_layers.binary_search(&layer), keys.get(&(role, shape)))
        {
            table[row * columns + column] = Some(f);
        }
    }
    a_layers
        .iter()
        .zip(&a_items)
        .filter_map(|(&x, items)| {
            b_layers
                .iter()
                .zip(table.chunks_exact(columns.max(1)))
                .filter_map(|(&y, row)| {
                    let mut pool = Pool::default();
                    for &(column, e) in items {
                        if let Some(f) = row[column] {
                            pool.add(a.samples(e), b.samples(f));
                        }
                    }
                    pool.z().map(|z| (y, z))
                })
                .max_by(|p, q| p.1.total_cmp(&q.1))
                .map(|(y, _)| (x, y))
        })
        .collect()
}

/// Pool every matched entry of A and B under a layer alignment (non-layer tensors match by name and shape).
pub fn pooled(a: &TensorSamples, b: &TensorSamples, alignment: &LayerAlignment) -> Pool {
    pool_with(a, b, &Entries::new(a, b), alignment)
}

fn pool_with(
    a: &TensorSamples,
    b: &TensorSamples,
    b_index: &Entries<'_>,
    alignment: &LayerAlignment,
) -> Pool {
    let mut pool = Pool::default();
    for e in &a.entries {
        let Some(lb) = alignment.layer_in_b(e) else {
            continue;
        };
        if let Some(f) = b_index.get(a, e, e.stack, lb) {
            pool.add(a.samples(e), b.samples(f));
        }
    }
    pool
}

/// Pool of the sampled anchor-row coordinates over the anchors present in both (same hidden size only).
pub fn anchor_row_pool(a: &EmbeddingSignals, b: &EmbeddingSignals) -> Pool {
    let mut pool = Pool::default();
    if a.hidden != b.hidden || a.anchor_set_version != b.anchor_set_version {
        return pool;
    }
    let m = a.samples_per_row.min(b.samples_per_row) as usize;
    let (pa, pb) = (a.samples_per_row as usize, b.samples_per_row as usize);
    let (mut ia, mut ib) = (0usize, 0usize);
    for i in 0..a.presence.len().max(b.presence.len()) * 64 {
        let (ha, hb) = (a.has_anchor(i), b.has_anchor(i));
        if ha && hb {
            if let (Some(x), Some(y)) = (
                a.row_samples.get(ia * pa..ia * pa + m),
                b.row_samples.get(ib * pb..ib * pb + m),
            ) {
                pool.add(x, y);
            }
        }
        ia += ha as usize;
        ib += hb as usize;
    }
    pool
}

/// LEP: the per-layer energy profile (mean `ln RMS` of a layer's matrices) of each stack, compared by Pearson
/// correlation after resampling to the shorter length. Returns (correlation, layers compared).
pub fn layer_energy_similarity(a: &TensorSamples, b: &TensorSamples) -> Option<(f64, usize)> {
    let pa = energy_profile(a);
    let pb = energy_profile(b);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (stack, x) in &pa {
        let Some(y) = pb.get(stack) else { continue };
        let m = x.len().min(y.len());
        if m < 3 {
            continue;
        }
        xs.extend(resample(x, m));
        ys.extend(resample(y, m));
    }
    pearson(&xs, &ys).map(|r| (r, xs.len()))
}

/// Each stack's mean `ln RMS` per layer, layers in order; stacks in a fixed order, so that LEP's sums are
/// added up in the same order every time.
fn energy_profile(s: &TensorSamples) -> BTreeMap<Stack, Vec<f64>> {
    let mut sums: BTreeMap<(Stack, u16), (f64, usize)> = BTreeMap::new();
    for e in s
        .entries
        .iter()
        .filter(|e| e.layer != NO_LAYER && s.shape_of(e)[0] > 1)
    {
        let slot = sums.entry((e.stack, e.layer)).or_default();
        slot.0 += e.log_rms as f64;
        slot.1 += 1;
    }
    let mut out: BTreeMap<Stack, Vec<f64>> = BTreeMap::new();
    for ((stack, _), (sum, n)) in sums {
        out.entry(stack).or_default().push(sum / n as f64);
    }
    out
}

/// Linear-interpolation resampling of a profile to `m` points (positions linspace(0, 1)).
pub fn resample(x: &[f64], m: usize) -> Vec<f64> {
    if x.len() == m || x.len() < 2 {
        return x.to_vec();
    }
    (0..m)
        .map(|i| {
            let t = if m == 1 {
                0.0
            } else {
                i as f64 * (x.len() - 1) as f64 / (m - 1) as f64
            };
            let lo = t.floor() as usize;
            let hi = (lo + 1).min(x.len() - 1);
            x[lo] + (x[hi] - x[lo]) * (t - lo as f64)
        })
        .collect()
}

/// Pearson correlation; `None` for fewer than 3 points or a constant side.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 3 {
        return None;
    }
    let (mx, my) = (
        x[..n].iter().sum::<f64>() / n as f64,
        y[..n].iter().sum::<f64>() / n as f64,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 1e-18 && syy > 1e-18).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_of_identical_and_opposite_runs() {
        let a: Vec<i8> = (0..200).map(|i| ((i * 37) % 101 - 50) as i8).collect();
        let mut p = Pool::default();
        p.add(&a, &a);
        assert!((p.r().unwrap() - 1.0).abs() < 1e-12);
        let neg: Vec<i8> = a.iter().map(|v| -v).collect();
        let mut q = Pool::default();
        q.add(&a, &neg);
        assert!((q.r().unwrap() + 1.0).abs() < 1e-12);
        let mut few = Pool::default();
        few.add(&a[..10], &a[..10]);
        assert_eq!(few.r(), None);
    }

    /// Samples with the given role table and entries `(stack, layer, role index, shape index)`, 80 values each.
    fn samples(roles: &[&str], entries: &[(Stack, u16, u16, u16)], seed: u64) -> TensorSamples {
        let mut values = Vec::new();
        let entries = entries
            .iter()
            .map(|&(stack, layer, role, shape)| {
                let start = values.len() as u32;
                values.extend(
                    (0..80).map(|k| (crate::testutil::normal(seed, start as u64 + k) * 30.0) as i8),
                );
                TensorEntry {
                    stack,
                    layer,
                    role,
                    shape,
                    len: 80,
                    start,
                    log_rms: 0.0,
                }
            })
            .collect();
        TensorSamples {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            shapes: vec![[8, 8], [8, 16]],
            entries,
            values,
        }
    }

    /// The lookup's definition: B's entries by (stack, layer, role name, shape), a repeated key keeping its last
    /// entry, and A's entries looked up by their role's name (`"?"` out of range).
    fn pooled_by_names(a: &TensorSamples, b: &TensorSamples, alignment: &LayerAlignment) -> Pool {
        let index: std::collections::HashMap<_, _> = b
            .entries
            .iter()
            .map(|e| ((e.stack, e.layer, b.role_name(e), b.shape_of(e)), e))
            .collect();
        let mut pool = Pool::default();
        for e in &a.entries {
            let Some(lb) = alignment.layer_in_b(e) else {
                continue;
            };
            if let Some(f) = index.get(&(e.stack, lb, a.role_name(e), a.shape_of(e))) {
                pool.add(a.samples(e), b.samples(f));
            }
        }
        pool
    }

    #[test]
    fn entries_are_matched_by_role_name_and_shape() {
        use Stack::{Decoder, Encoder, Main};
        let a = samples(
            &["attn_q", "mlp_up", "norm"],
            &[
                (Main, 0, 0, 0),
                (Main, 0, 1, 1),
                (Main, 1, 0, 0),
                (Main, 1, 2, 1), // no such role in B
                (Main, 1, 9, 0), // a role index out of range: named "?"
                (Encoder, 0, 1, 1),
                (Decoder, 0, 0, 0),
                (Main, NO_LAYER, 1, 0),
            ],
            1,
        );
        // B names the roles in another order, twice for one of them, and has a "?" role.
        let b = samples(
            &["mlp_up", "attn_q", "?", "attn_q"],
            &[
                (Main, 0, 1, 0),
                (Main, 0, 0, 1),
                (Main, 1, 3, 0),
                (Main, 1, 1, 0), // the same key again: the last entry wins
                (Main, 1, 2, 0),
                (Main, 1, 0, 0), // right role, other shape than A's
                (Encoder, 0, 0, 1),
                (Decoder, 0, 3, 1), // right role, other shape
                (Main, NO_LAYER, 0, 0),
            ],
            2,
        );
        for (x, y) in [(&a, &b), (&b, &a), (&a, &a)] {
            let alignment = align_layers(x, y);
            let pool = pooled(x, y, &alignment);
            assert_eq!(pool, pooled_by_names(x, y, &alignment));
        }
        let alignment = align_layers(&a, &b);
        // Main 0: attn_q and mlp_up; Main 1: attn_q (B's last entry) and "?"; Encoder 0: mlp_up; no layer: mlp_up.
        assert_eq!(pooled(&a, &b, &alignment).n, 6 * 80);
    }

    /// The layer search's definition: each layer of A takes the layer of B whose pool (entries matched by
    /// role name and shape) has the highest z.
    fn best_layers_by_names(a: &TensorSamples, b: &TensorSamples, stack: Stack) -> Vec<(u16, u16)> {
        let layers = |t: &TensorSamples| layers_by_stack(t).remove(&stack).unwrap_or_default();
        let pool = |x: u16, y: u16| {
            let mut pool = Pool::default();
            for e in a
                .entries
                .iter()
                .filter(|e| e.stack == stack && e.layer == x)
            {
                let f = b.entries.iter().rev().find(|f| {
                    f.stack == stack
                        && f.layer == y
                        && b.role_name(f) == a.role_name(e)
                        && b.shape_of(f) == a.shape_of(e)
                });
                if let Some(f) = f {
                    pool.add(a.samples(e), b.samples(f));
                }
            }
            pool
        };
        let (la, lb) = (layers(a), layers(b));
        la.iter()
            .filter_map(|&x| {
                lb.iter()
                    .filter_map(|&y| pool(x, y).z().map(|z| (y, z)))
                    .max_by(|p, q| p.1.total_cmp(&q.1))
                    .map(|(y, _)| (x, y))
            })
            .collect()
    }

    #[test]
    fn layer_search_pairs_each_layer_with_its_best_match() {
        use Stack::Main;
        // B: six layers of three roles. A: three layers, copies of B's layers 1, 3 and 5, naming the roles in
        // another order and adding one B lacks.
        let b = samples(
            &["attn_q", "mlp_up", "norm"],
            &(0..6u16)
                .flat_map(|l| [(Main, l, 0, 0), (Main, l, 1, 1), (Main, l, 2, 0)])
                .collect::<Vec<_>>(),
            5,
        );
        let mut a = samples(
            &["mlp_up", "extra", "attn_q", "norm"],
            &(0..3u16)
                .flat_map(|l| {
                    [
                        (Main, l, 2, 0),
                        (Main, l, 0, 1),
                        (Main, l, 1, 0),
                        (Main, l, 3, 0),
                    ]
                })
                .collect::<Vec<_>>(),
            6,
        );
        let role_of_b = |name: &str| b.roles.iter().position(|r| r == name).unwrap() as u16;
        for x in 0..3u16 {
            let y = 2 * x + 1;
            for i in 0..a.entries.len() {
                let e = a.entries[i].clone();
                if e.layer != x || a.role_name(&e) == "extra" {
                    continue;
                }
                let f = b
                    .entries
                    .iter()
                    .find(|f| f.layer == y && f.role == role_of_b(a.role_name(&e)))
                    .unwrap();
                let copy = b.samples(f).to_vec();
                a.values[e.start as usize..e.start as usize + copy.len()].copy_from_slice(&copy);
            }
        }
        let alignment = align_layers(&a, &b);
        assert!(alignment.searched);
        let mut map: Vec<(u16, u16)> = alignment.map.iter().map(|(&(_, x), &y)| (x, y)).collect();
        map.sort();
        assert_eq!(map, vec![(0, 1), (1, 3), (2, 5)]);
        assert_eq!(map, best_layers_by_names(&a, &b, Main));
        // Independent samples the other way round: whatever the best matches are, they are the definition's.
        let c = samples(
            &["norm", "attn_q"],
            &(0..4u16)
                .flat_map(|l| [(Main, l, 0, 0), (Main, l, 1, 0)])
                .collect::<Vec<_>>(),
            8,
        );
        for (x, y) in [(&b, &c), (&c, &b), (&a, &c)] {
            let mut map: Vec<(u16, u16)> = align_layers(x, y)
                .map
                .iter()
                .map(|(&(_, l), &m)| (l, m))
                .collect();
            map.sort();
            assert_eq!(map, best_layers_by_names(x, y, Main));
        }
    }

    #[test]
    fn lep_adds_stacks_in_a_fixed_order() {
        use Stack::{Decoder, Encoder};
        // Two stacks of six layers, one matrix each, with their own `ln RMS`.
        let stacks = |seed: u64| {
            let entries: Vec<_> = [Encoder, Decoder]
                .into_iter()
                .flat_map(|s| (0..6u16).map(move |l| (s, l, 0u16, 0u16)))
                .collect();
            let mut t = samples(&["attn_q"], &entries, seed);
            // Encoder values far larger than the decoder's: floating-point sums of them depend on the order.
            for (k, e) in t.entries.iter_mut().enumerate() {
                let scale = if e.stack == Encoder { 3.0e7 } else { 0.1 };
                e.log_rms = (scale * (1.0 + crate::testutil::normal(seed, 1000 + k as u64))) as f32;
            }
            t
        };
        let (a, b) = (stacks(3), stacks(4));
        let profile = |t: &TensorSamples| -> Vec<f64> {
            t.entries.iter().map(|e| e.log_rms as f64).collect()
        };
        // Encoder before decoder: the order of `Stack`.
        let expected = pearson(&profile(&a), &profile(&b)).map(|r| (r, 12));
        for _ in 0..16 {
            // Bit for bit, every time (with a HashMap per call, its random order could change the sums).
            assert_eq!(layer_energy_similarity(&a, &b), expected);
        }
    }

    #[test]
    fn resample_and_pearson() {
        assert_eq!(resample(&[0.0, 1.0, 2.0], 5), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]).unwrap() - 0.9986).abs() < 1e-3);
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }
}
