//! Token-keyed signals from the input embedding: the anchor Gram matrix (EAS), row norms (END) and sampled
//! coordinates of the anchor rows.
//!
//! One streaming pass over the embedding computes the mean row and every row's norm (memory: one chunk of rows
//! plus one norm per row); the anchor rows are then read individually. Rows are mean-centred before any cosine
//! or sample is taken: trained embeddings share a large common direction that says nothing about lineage and
//! would otherwise inflate every cosine and correlate unrelated models.

use crate::error::{Error, Result};
use crate::signals::kernels::{Moments, BLOCK, LANES};
use crate::weights::WeightSource;
use provsearch_index::anchors::{presence_words, ANCHORS, ANCHOR_SET_VERSION};
use provsearch_index::sampling::vector_positions;
use provsearch_index::schema::{quantize_cosine, quantize_sample, EmbeddingSignals};
use rayon::prelude::*;

/// Coordinates sampled from each anchor row.
pub const SAMPLES_PER_ANCHOR_ROW: usize = 32;

/// Number of END quantiles (0/32 .. 32/32).
const QUANTILES: usize = 33;

/// Rows per streamed chunk, sized so one chunk is about 4 MiB of `f32`. Part of the definition: the column
/// sums are added up per chunk, then chunk by chunk.
fn chunk_rows(hidden: u64) -> u64 {
    ((1u64 << 20) / hidden.max(1)).max(1)
}

/// Values read at a time within a chunk (256 KiB of `f32`): an I/O size only, it changes no sum.
const BLOCK_ELEMENTS: u64 = 1 << 16;

struct Pass {
    column_sum: Vec<f64>,
    row_norms: Vec<(u64, f32)>,
}

/// What one streaming pass over the embedding learns: the mean row, every row's norm, and the centred RMS.
#[derive(Debug, Clone)]
pub struct EmbeddingPass {
    index: usize,
    rows: u64,
    hidden: u64,
    mean: Vec<f64>,
    norms: Vec<f32>,
    centred_rms: f64,
}

/// Stream the embedding tensor `index` (shape `[rows, hidden]`) once. Needs no tokenizer, so it runs while
/// the tokenizer is still being read.
pub fn embedding_pass(source: &dyn WeightSource, index: usize) -> Result<EmbeddingPass> {
    let meta = &source.tensors()[index];
    let (rows, hidden) = match meta.shape.as_slice() {
        [r, h] if *r > 0 && *h > 0 => (*r, *h),
        _ => {
            return Err(Error::no_weights(
                &meta.file,
                format!("embedding `{}` is not a 2-D matrix", meta.name),
            ))
        }
    };
    let used_rows = rows;
    let h = hidden as usize;
    // One pass: column sums and row norms, in parallel over chunks of rows.
    let step = chunk_rows(hidden);
    let chunks: Vec<u64> = (0..used_rows).step_by(step as usize).collect();
    // A chunk is read in blocks of whole rows that stay in the L2 cache from the read to the scan, into one
    // buffer per worker (a fresh buffer per chunk would cost page faults and zeroing). The sums are the same:
    // rows are added to their chunk's sums in order whatever the block size.
    let block_rows = (BLOCK_ELEMENTS / hidden).max(1);
    let passes: Vec<Pass> = chunks
        .par_iter()
        .map_init(Vec::new, |buf: &mut Vec<f32>, &first| -> Result<Pass> {
            let n = step.min(used_rows - first);
            let mut pass = Pass {
                column_sum: vec![0f64; h],
                row_norms: Vec::with_capacity(n as usize),
            };
            for block in (first..first + n).step_by(block_rows as usize) {
                let m = block_rows.min(first + n - block);
                buf.resize((m * hidden) as usize, 0.0);
                source.read_f32_streaming(index, block * hidden, buf)?;
                scan_rows(buf, h, block, &mut pass).map_err(|m| Error::NonFinite {
                    path: meta.file.clone(),
                    tensor: meta.name.clone(),
                    what: if m.has_nan { "NaN" } else { "infinite" },
                })?;
            }
            source.release(index, first * hidden, n * hidden);
            Ok(pass)
        })
        .collect::<Result<_>>()?;

    let mut mean = vec![0f64; h];
    let mut norms = vec![0f32; used_rows as usize];
    let mut total_sq = 0f64;
    for pass in &passes {
        for (m, s) in mean.iter_mut().zip(&pass.column_sum) {
            *m += s;
        }
        for &(r, n) in &pass.row_norms {
            norms[r as usize] = n;
            total_sq += n as f64 * n as f64;
        }
    }
    let t = used_rows as f64;
    mean.iter_mut().for_each(|m| *m /= t);
    let mean_sq: f64 = mean.iter().map(|m| m * m).sum();
    let centred_rms = ((total_sq - t * mean_sq).max(0.0) / (t * hidden as f64)).sqrt();

    Ok(EmbeddingPass {
        index,
        rows,
        hidden,
        mean,
        norms,
        centred_rms,
    })
}

/// Add a chunk of rows (`h` values each, the first being row `first`) to a pass: column sums in `f64`, and
/// each row's norm from its [`Moments`]. Stops at the first row with a NaN or infinite value and returns its
/// moments.
fn scan_rows(buf: &[f32], h: usize, first: u64, pass: &mut Pass) -> Result<(), Moments> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        return unsafe { scan_rows_avx512(buf, h, first, pass) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { scan_rows_avx2(buf, h, first, pass) };
    }
    scan_rows_inline(buf, h, first, pass)
}

/// [`scan_rows`] compiled for AVX2 (the same operations in the same order).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_rows_avx2(
    buf: &[f32],
    h: usize,
    first: u64,
    pass: &mut Pass,
) -> Result<(), Moments> {
    scan_rows_inline(buf, h, first, pass)
}

/// [`scan_rows`] compiled for AVX-512 (the same operations in the same order).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scan_rows_avx512(
    buf: &[f32],
    h: usize,
    first: u64,
    pass: &mut Pass,
) -> Result<(), Moments> {
    scan_rows_inline(buf, h, first, pass)
}

#[inline(always)]
fn scan_rows_inline(buf: &[f32], h: usize, first: u64, pass: &mut Pass) -> Result<(), Moments> {
    // Four rows at a time, in one sweep over their columns: each value is loaded once for its row's sum of
    // squares and its column's sum (see `scan_four`). The same additions in the same order as row by row.
    let mut groups = buf.chunks_exact(4 * h);
    for (g, group) in (&mut groups).enumerate() {
        let (r0, rest) = group.split_at(h);
        let (r1, rest) = rest.split_at(h);
        let (r2, r3) = rest.split_at(h);
        let rows = [r0, r1, r2, r3];
        let sum_sq = scan_four(rows, h, &mut pass.column_sum);
        // A NaN or an infinity makes its row's sum of squares NaN or infinite (v·v is +inf or NaN, and
        // neither ever goes back to a finite sum); an overflow of v·v does too, so such a row is checked value
        // by value, as `Moments` checks every row.
        for (row, sq) in rows.into_iter().zip(sum_sq) {
            if !sq.is_finite() {
                let mut m = Moments::default();
                m.add_inline(row);
                if m.has_non_finite {
                    return Err(m);
                }
            }
        }
        let row = first + 4 * g as u64;
        for (k, sq) in sum_sq.into_iter().enumerate() {
            pass.row_norms.push((row + k as u64, sq.sqrt() as f32));
        }
    }
    let done = (buf.len() / (4 * h) * 4) as u64;
    for (r, row) in groups.remainder().chunks_exact(h).enumerate() {
        let mut m = Moments::default();
        m.add_inline(row);
        if m.has_non_finite {
            return Err(m);
        }
        for (c, &v) in pass.column_sum.iter_mut().zip(row) {
            *c += v as f64;
        }
        pass.row_norms
            .push((first + done + r as u64, m.sum_sq.sqrt() as f32));
    }
    Ok(())
}

/// The sums of squares of four rows of `h` values, exactly as [`Moments::add_inline`] computes `sum_sq` for
/// each (per block of [`BLOCK`] values, lane `k` of [`LANES`] adds `v·v` for the values at offsets `≡ k` in
/// order, the tail goes to lane 0, and the lane totals are added in `f64`), while `column_sum[c]` takes the
/// four rows' values at `c` in row order, in `f64`. One load of each value serves both; NaN and infinities are
/// not looked for here (see the caller).
#[inline(always)]
fn scan_four(rows: [&[f32]; 4], h: usize, column_sum: &mut [f64]) -> [f64; 4] {
    let mut sum_sq = [0f64; 4];
    let column_sum = &mut column_sum[..h];
    let rows = rows.map(|r| &r[..h]);
    let mut start = 0;
    while start < h {
        let end = (start + BLOCK).min(h);
        let full = start + (end - start) / LANES * LANES;
        let mut q = [[0f32; LANES]; 4];
        for c in (start..full).step_by(LANES) {
            let (Some(x0), Some(x1), Some(x2), Some(x3), Some(cs)) = (
                rows[0][c..].first_chunk::<LANES>(),
                rows[1][c..].first_chunk::<LANES>(),
                rows[2][c..].first_chunk::<LANES>(),
                rows[3][c..].first_chunk::<LANES>(),
                column_sum[c..].first_chunk_mut::<LANES>(),
            ) else {
                break; // unreachable: c + LANES <= full <= h
            };
            for k in 0..LANES {
                q[0][k] += x0[k] * x0[k];
                q[1][k] += x1[k] * x1[k];
                q[2][k] += x2[k] * x2[k];
                q[3][k] += x3[k] * x3[k];
                let mut sum = cs[k];
                sum += x0[k] as f64;
                sum += x1[k] as f64;
                sum += x2[k] as f64;
                sum += x3[k] as f64;
                cs[k] = sum;
            }
        }
        for c in full..end {
            let mut sum = column_sum[c];
            for (q, row) in q.iter_mut().zip(&rows) {
                let v = row[c];
                q[0] += v * v;
                sum += v as f64;
            }
            column_sum[c] = sum;
        }
        for (total, q) in sum_sq.iter_mut().zip(&q) {
            *total += q.iter().map(|&v| v as f64).sum::<f64>();
        }
        start = end;
    }
    sum_sq
}

/// Finish the embedding signals from a pass: anchor rows, Gram matrix, samples and norm statistics.
///
/// `anchor_ids[i]` is the token id of anchor `i` in the model's vocabulary (from
/// [`crate::vocab::resolve_anchors`]), or `None`. `token_rows` limits the norm statistics to the rows that are
/// real tokens (padding rows past the vocabulary are excluded); `None` uses every row.
pub fn finish_embedding(
    source: &dyn WeightSource,
    pass: &EmbeddingPass,
    anchor_ids: &[Option<u32>],
    token_rows: Option<u64>,
) -> Result<EmbeddingSignals> {
    let meta = &source.tensors()[pass.index];
    let (index, rows, hidden, mean) = (pass.index, pass.rows, pass.hidden, &pass.mean);
    let used_rows = token_rows.map_or(rows, |t| t.clamp(1, rows));
    let norms = &pass.norms[..used_rows as usize];
    let centred_rms = pass.centred_rms;
    let h = hidden as usize;
    // Sorted by f32::total_cmp, through keys with the same order (values equal under total_cmp are the same
    // bits, so any sort gives the same sequence).
    let sorted = sort_total(norms);
    let median = sorted[sorted.len() / 2].max(f32::MIN_POSITIVE) as f64;
    let log_ratio = |n: f32| ((n as f64 / median).max(1e-6)).ln();
    let norm_quantiles = (0..QUANTILES)
        .map(|q| {
            let pos = (q * (sorted.len() - 1)) / (QUANTILES - 1);
            log_ratio(sorted[pos]) as f32
        })
        .collect();

    // Anchor rows, mean-centred.
    let mut presence = vec![0u64; presence_words()];
    let mut centred_rows: Vec<Vec<f64>> = Vec::new();
    let mut anchor_log_norms = Vec::new();
    let mut row = vec![0f32; h];
    for (i, id) in anchor_ids.iter().enumerate().take(ANCHORS.len()) {
        let Some(id) = *id else { continue };
        if id as u64 >= used_rows {
            continue;
        }
        // One `pread` per row (see `tensors::read_row`).
        source.read_f32_streaming(index, id as u64 * hidden, &mut row)?;
        presence[i / 64] |= 1 << (i % 64);
        centred_rows.push(row.iter().zip(mean).map(|(&v, m)| v as f64 - m).collect());
        anchor_log_norms.push(log_ratio(norms[id as usize]) as f32);
    }

    let unit: Vec<Vec<f64>> = centred_rows
        .iter()
        .map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            r.iter().map(|v| v / n).collect()
        })
        .collect();
    let gram = gram(&unit, h);

    let positions = vector_positions(hidden as u32, SAMPLES_PER_ANCHOR_ROW);
    let scale = centred_rms.max(1e-12);
    let row_samples = centred_rows
        .iter()
        .flat_map(|r| {
            positions
                .iter()
                .map(move |&p| quantize_sample(r[p as usize] / scale))
        })
        .collect();

    let (channel_ids, channel_profiles) = super::channels::channel_profiles(&centred_rows, h);

    Ok(EmbeddingSignals {
        anchor_set_version: ANCHOR_SET_VERSION,
        tensor: meta.name.clone(),
        rows: rows as u32,
        hidden: hidden as u32,
        presence,
        gram,
        row_samples,
        samples_per_row: positions.len() as u16,
        anchor_log_norms,
        norm_quantiles,
        channel_ids,
        channel_profiles,
    })
}

/// `values` sorted by [`f32::total_cmp`]: an LSD radix sort (three passes of 11 bits) of keys that order as
/// `total_cmp` does (sign-magnitude bits turned into an unsigned order).
fn sort_total(values: &[f32]) -> Vec<f32> {
    let key = |v: f32| {
        let b = v.to_bits();
        if b >> 31 == 1 {
            !b
        } else {
            b | 0x8000_0000
        }
    };
    let unkey = |k: u32| f32::from_bits(if k >> 31 == 1 { k & 0x7fff_ffff } else { !k });
    let mut keys: Vec<u32> = values.iter().map(|&v| key(v)).collect();
    let mut other = vec![0u32; keys.len()];
    for shift in [0, 11, 22] {
        let digit = |k: u32| ((k >> shift) & 0x7ff) as usize;
        let mut counts = vec![0usize; 2049];
        for &k in &keys {
            counts[digit(k) + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        for &k in &keys {
            let d = digit(k);
            other[counts[d]] = k;
            counts[d] += 1;
        }
        std::mem::swap(&mut keys, &mut other);
    }
    keys.into_iter().map(unkey).collect()
}

/// The upper triangle of the cosine matrix of unit rows (row-major: (0,1), (0,2), ..., (1,2), ...), quantised.
///
/// Each cosine is `Σ_k a[k]·b[k]`, summed in `k` order from the neutral element of `f64: Sum`, exactly as
/// `a.iter().zip(b).map(|(x, y)| x * y).sum()` would. The rows are transposed first so that one row's cosines
/// with all later rows advance together, in independent lanes (vectorised, and no reordering of any sum).
fn gram(unit: &[Vec<f64>], h: usize) -> Vec<i8> {
    let n = unit.len();
    // Rows of `n` values padded with GRAM_LANES zeros, so that the last block of cosines loads whole blocks too.
    let stride = n + GRAM_LANES;
    let mut columns = vec![0f64; h * stride];
    // Eight rows at a time, so that each `k` writes eight neighbouring values (one cache line) instead of one
    // value per line across the whole buffer.
    for (b, rows) in unit.chunks(8).enumerate() {
        for (k, column) in columns.chunks_exact_mut(stride).enumerate() {
            for (c, row) in column[b * 8..].iter_mut().zip(rows) {
                if let Some(&v) = row.get(k) {
                    *c = v;
                }
            }
        }
    }
    // Rows in groups of GRAM_ROWS that share every load of a block of columns (the columns are read from L2 a
    // quarter as often); the rows left over one by one.
    let groups = n / GRAM_ROWS;
    let rows: Vec<Vec<i8>> = (0..groups + n % GRAM_ROWS)
        .into_par_iter()
        .map(|g| {
            let zero = std::iter::empty::<f64>().sum::<f64>();
            if g < groups {
                let i = g * GRAM_ROWS;
                let a: [&[f64]; GRAM_ROWS] = std::array::from_fn(|r| unit[i + r].as_slice());
                let mut dots: [Vec<f64>; GRAM_ROWS] =
                    std::array::from_fn(|_| vec![zero; n - i - 1]);
                gram_rows(a, &columns, stride, i + 1, &mut dots);
                // Row i + r wants the cosines with rows i + r + 1 and later.
                dots.iter()
                    .enumerate()
                    .flat_map(|(r, d)| d[r..].iter().copied().map(quantize_cosine))
                    .collect()
            } else {
                let i = groups * GRAM_ROWS + (g - groups);
                let mut dots = vec![zero; n - i - 1];
                gram_row(&unit[i], &columns, stride, i + 1, &mut dots);
                dots.into_iter().map(quantize_cosine).collect()
            }
        })
        .collect();
    rows.concat()
}

/// Rows of the Gram matrix computed together by [`gram_rows`].
const GRAM_ROWS: usize = 4;

/// [`gram_row`] for GRAM_ROWS rows at once, all against the columns `from..from + dots[r].len()` (every
/// `dots[r]` has the same length): `dots[r][j - from] += Σ_k a[r][k]·columns[k·stride + j]` in `k` order. Each
/// block of GRAM_LANES columns is loaded once per `k` for all the rows.
fn gram_rows(
    a: [&[f64]; GRAM_ROWS],
    columns: &[f64],
    stride: usize,
    from: usize,
    dots: &mut [Vec<f64>; GRAM_ROWS],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        return unsafe { gram_rows_avx512(a, columns, stride, from, dots) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { gram_rows_avx2(a, columns, stride, from, dots) };
    }
    gram_rows_inline(a, columns, stride, from, dots)
}

/// [`gram_rows`] compiled for AVX2 (the same operations in the same order).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gram_rows_avx2(
    a: [&[f64]; GRAM_ROWS],
    columns: &[f64],
    stride: usize,
    from: usize,
    dots: &mut [Vec<f64>; GRAM_ROWS],
) {
    gram_rows_inline(a, columns, stride, from, dots)
}

/// [`gram_rows`] compiled for AVX-512 (the same operations in the same order).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gram_rows_avx512(
    a: [&[f64]; GRAM_ROWS],
    columns: &[f64],
    stride: usize,
    from: usize,
    dots: &mut [Vec<f64>; GRAM_ROWS],
) {
    gram_rows_inline(a, columns, stride, from, dots)
}

#[inline(always)]
fn gram_rows_inline(
    a: [&[f64]; GRAM_ROWS],
    columns: &[f64],
    stride: usize,
    from: usize,
    dots: &mut [Vec<f64>; GRAM_ROWS],
) {
    let width = dots[0].len();
    if dots.iter().any(|d| d.len() != width)
        || from + width.div_ceil(GRAM_LANES) * GRAM_LANES > stride
    {
        // Not the padded layout `gram` builds: row by row.
        for (a, d) in a.iter().zip(dots.iter_mut()) {
            gram_row_inline(a, columns, stride, from, d);
        }
        return;
    }
    let h = a.iter().map(|r| r.len()).min().unwrap_or(0);
    for b in 0..width.div_ceil(GRAM_LANES) {
        let first = from + b * GRAM_LANES;
        let lanes = GRAM_LANES.min(width - b * GRAM_LANES);
        let mut acc = [[0f64; GRAM_LANES]; GRAM_ROWS];
        for (acc, d) in acc.iter_mut().zip(dots.iter()) {
            acc[..lanes].copy_from_slice(&d[b * GRAM_LANES..b * GRAM_LANES + lanes]);
        }
        for (k, column) in columns.chunks_exact(stride).take(h).enumerate() {
            let Some(c) = column
                .get(first..)
                .and_then(|c| c.first_chunk::<GRAM_LANES>())
            else {
                break; // unreachable: first + GRAM_LANES <= stride (checked above)
            };
            for (acc, a) in acc.iter_mut().zip(&a) {
                let ak = a[k];
                for l in 0..GRAM_LANES {
                    acc[l] += ak * c[l];
                }
            }
        }
        for (acc, d) in acc.iter().zip(dots.iter_mut()) {
            d[b * GRAM_LANES..b * GRAM_LANES + lanes].copy_from_slice(&acc[..lanes]);
        }
    }
}

/// Cosines computed at a time by [`gram_row`], kept in registers.
const GRAM_LANES: usize = 32;

/// `dots[j - from] += Σ_k a[k]·columns[k·stride + j]` for `j` in `from..from + dots.len()`, in `k` order
/// (`columns` holds one row of `stride` values per `k`).
fn gram_row(a: &[f64], columns: &[f64], stride: usize, from: usize, dots: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        return unsafe { gram_row_avx512(a, columns, stride, from, dots) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { gram_row_avx2(a, columns, stride, from, dots) };
    }
    gram_row_inline(a, columns, stride, from, dots)
}

/// [`gram_row`] compiled for AVX2 (the same operations in the same order).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gram_row_avx2(a: &[f64], columns: &[f64], stride: usize, from: usize, dots: &mut [f64]) {
    gram_row_inline(a, columns, stride, from, dots)
}

/// [`gram_row`] compiled for AVX-512 (the same operations in the same order).
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gram_row_avx512(
    a: &[f64],
    columns: &[f64],
    stride: usize,
    from: usize,
    dots: &mut [f64],
) {
    gram_row_inline(a, columns, stride, from, dots)
}

#[inline(always)]
fn gram_row_inline(a: &[f64], columns: &[f64], stride: usize, from: usize, dots: &mut [f64]) {
    // Blocks of GRAM_LANES cosines: each block's sums stay in registers over every k (still in k order) and
    // are stored once, instead of loading and storing every cosine at every k. A last block narrower than
    // GRAM_LANES computes its lanes the same way when the rows are padded (the lanes past it are dropped).
    for (b, block) in dots.chunks_mut(GRAM_LANES).enumerate() {
        let first = from + b * GRAM_LANES;
        if first + GRAM_LANES <= stride {
            let mut acc = [0f64; GRAM_LANES];
            acc[..block.len()].copy_from_slice(block);
            for (&ak, column) in a.iter().zip(columns.chunks_exact(stride)) {
                let Some(c) = column
                    .get(first..)
                    .and_then(|c| c.first_chunk::<GRAM_LANES>())
                else {
                    break; // unreachable: first + GRAM_LANES <= stride
                };
                for l in 0..GRAM_LANES {
                    acc[l] += ak * c[l];
                }
            }
            let width = block.len();
            block.copy_from_slice(&acc[..width]);
        } else {
            for (&ak, column) in a.iter().zip(columns.chunks_exact(stride)) {
                for (d, &b) in block.iter_mut().zip(&column[first..]) {
                    *d += ak * b;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four-row scan as it was before `scan_four` (each row's full `Moments`, then the column sums).
    fn scan_rows_reference(
        buf: &[f32],
        h: usize,
        first: u64,
        pass: &mut Pass,
    ) -> Result<(), Moments> {
        // Four rows at a time: their moments, then each column sum takes the four values in row order while it
        // stays in a register (the same additions in the same order as row by row, a quarter of the loads and
        // stores of the sums).
        let mut groups = buf.chunks_exact(4 * h);
        for (g, group) in (&mut groups).enumerate() {
            let mut rows = group.chunks_exact(h);
            let (Some(r0), Some(r1), Some(r2), Some(r3)) =
                (rows.next(), rows.next(), rows.next(), rows.next())
            else {
                break; // unreachable: a group holds four rows
            };
            let mut norms = [0f32; 4];
            for (norm, row) in norms.iter_mut().zip([r0, r1, r2, r3]) {
                let mut m = Moments::default();
                m.add_inline(row);
                if m.has_non_finite {
                    return Err(m);
                }
                *norm = m.sum_sq.sqrt() as f32;
            }
            for ((((c, &a), &b), &d), &e) in
                pass.column_sum.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3)
            {
                let mut sum = *c;
                sum += a as f64;
                sum += b as f64;
                sum += d as f64;
                sum += e as f64;
                *c = sum;
            }
            let row = first + 4 * g as u64;
            for (k, norm) in norms.into_iter().enumerate() {
                pass.row_norms.push((row + k as u64, norm));
            }
        }
        let done = (buf.len() / (4 * h) * 4) as u64;
        for (r, row) in groups.remainder().chunks_exact(h).enumerate() {
            let mut m = Moments::default();
            m.add_inline(row);
            if m.has_non_finite {
                return Err(m);
            }
            for (c, &v) in pass.column_sum.iter_mut().zip(row) {
                *c += v as f64;
            }
            pass.row_norms
                .push((first + done + r as u64, m.sum_sq.sqrt() as f32));
        }
        Ok(())
    }

    /// Rows scanned four at a time give the column sums and norms of rows scanned one by one, bit for bit.
    #[test]
    fn scanning_rows_in_fours_matches_row_by_row() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let norm_bits = |p: &Pass| {
            p.row_norms
                .iter()
                .map(|&(r, n)| (r, n.to_bits()))
                .collect::<Vec<_>>()
        };
        for (rows, h) in [
            (1, 5),
            (3, 16),
            (4, 16),
            (4, 17),
            (7, 33),
            (13, 576),
            (64, 64),
            (9, 4096),
            (6, 4096 + 40),
            (5, 8192 + 7),
        ] {
            let buf: Vec<f32> = (0..rows * h).map(|_| next()).collect();
            // Rows whose squares overflow f32 (finite values, infinite norms) go through the checked path.
            let mut big = buf.clone();
            big[h / 2] = 3e20;
            big[rows * h - 1] = -2e30;
            for buf in [buf, big] {
                let mut want = Pass {
                    column_sum: (0..h).map(|c| c as f64 * 0.25).collect(),
                    row_norms: Vec::new(),
                };
                for (r, row) in buf.chunks_exact(h).enumerate() {
                    let m = Moments::of(row);
                    for (c, &v) in want.column_sum.iter_mut().zip(row) {
                        *c += v as f64;
                    }
                    want.row_norms.push((10 + r as u64, m.sum_sq.sqrt() as f32));
                }
                let fresh = || Pass {
                    column_sum: (0..h).map(|c| c as f64 * 0.25).collect(),
                    row_norms: Vec::new(),
                };
                let (mut got, mut baseline, mut before) = (fresh(), fresh(), fresh());
                scan_rows(&buf, h, 10, &mut got).unwrap();
                scan_rows_inline(&buf, h, 10, &mut baseline).unwrap();
                scan_rows_reference(&buf, h, 10, &mut before).unwrap();
                for p in [&got, &baseline, &before] {
                    assert_eq!(bits(&p.column_sum), bits(&want.column_sum), "{rows}x{h}");
                    assert_eq!(norm_bits(p), norm_bits(&want), "{rows}x{h}");
                }
                // A NaN or an infinity anywhere is reported, with the moments of the first row holding one.
                for (at, bad) in [
                    (0, f32::NAN),
                    (rows * h - 1, f32::INFINITY),
                    (rows * h / 2, f32::NAN),
                    (h.min(rows * h - 1), f32::NEG_INFINITY),
                ] {
                    let mut b = buf.clone();
                    b[at] = bad;
                    let m = scan_rows(&b, h, 0, &mut fresh()).unwrap_err();
                    let r = scan_rows_reference(&b, h, 0, &mut fresh()).unwrap_err();
                    assert_eq!(m.has_nan, bad.is_nan(), "{rows}x{h} at {at}");
                    assert_eq!(
                        (m.has_nan, m.has_non_finite, m.count, m.sum_sq.to_bits()),
                        (r.has_nan, r.has_non_finite, r.count, r.sum_sq.to_bits()),
                        "{rows}x{h} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn radix_sort_orders_as_total_cmp() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut values: Vec<f32> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                f32::from_bits((x >> 32) as u32)
            })
            .collect();
        values.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MIN_POSITIVE,
            1.5,
            1.5,
        ]);
        values.extend((0..2000).map(|i| (i % 37) as f32 * 0.25));
        let mut want = values.clone();
        want.sort_unstable_by(f32::total_cmp);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&sort_total(&values)), bits(&want));
        assert!(sort_total(&[]).is_empty());
    }

    #[test]
    fn gram_is_bit_identical_to_plain_dot_products() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for (n, h) in [
            (0, 8),
            (1, 8),
            (2, 3),
            (7, 33),
            (40, 64),
            (75, 20),
            (170, 9),
        ] {
            let unit: Vec<Vec<f64>> = (0..n)
                .map(|_| {
                    let r: Vec<f64> = (0..h).map(|_| next()).collect();
                    let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                    r.iter().map(|v| v / norm).collect()
                })
                .collect();
            let mut want = Vec::new();
            for i in 0..n {
                for j in i + 1..n {
                    let dot: f64 = unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum();
                    want.push(quantize_cosine(dot));
                }
            }
            assert_eq!(gram(&unit, h), want, "n {n}, h {h}");
            // The unquantised sums too, on the baseline instruction set and through the dispatch.
            for (i, stride) in (0..n).flat_map(|i| [(i, n), (i, n + GRAM_LANES)]) {
                let mut columns = vec![0f64; h * stride];
                for (j, row) in unit.iter().enumerate() {
                    for (k, &v) in row.iter().enumerate() {
                        columns[k * stride + j] = v;
                    }
                }
                let zero = std::iter::empty::<f64>().sum::<f64>();
                // Four rows at a time from row i (the columns of row i onwards), dispatched and baseline.
                if i + GRAM_ROWS <= n {
                    let a: [&[f64]; GRAM_ROWS] = std::array::from_fn(|r| unit[i + r].as_slice());
                    for dispatched in [true, false] {
                        let mut d: [Vec<f64>; GRAM_ROWS] =
                            std::array::from_fn(|_| vec![zero; n - i - 1]);
                        if dispatched {
                            gram_rows(a, &columns, stride, i + 1, &mut d);
                        } else {
                            gram_rows_inline(a, &columns, stride, i + 1, &mut d);
                        }
                        for (r, d) in d.iter().enumerate() {
                            for (j, got) in d.iter().enumerate() {
                                let dot: f64 = unit[i + r]
                                    .iter()
                                    .zip(&unit[i + 1 + j])
                                    .map(|(x, y)| x * y)
                                    .sum();
                                assert_eq!(got.to_bits(), dot.to_bits(), "n {n} h {h} i {i} r {r}");
                            }
                        }
                    }
                }
                let (mut a, mut b) = (vec![zero; n - i - 1], vec![zero; n - i - 1]);
                gram_row(&unit[i], &columns, stride, i + 1, &mut a);
                gram_row_inline(&unit[i], &columns, stride, i + 1, &mut b);
                for (j, (a, b)) in a.iter().zip(&b).enumerate() {
                    let dot: f64 = unit[i]
                        .iter()
                        .zip(&unit[i + 1 + j])
                        .map(|(x, y)| x * y)
                        .sum();
                    assert_eq!((a.to_bits(), b.to_bits()), (dot.to_bits(), dot.to_bits()));
                }
            }
        }
    }
}
