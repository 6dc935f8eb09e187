//! Token-keyed signals from the input embedding: the anchor Gram matrix (EAS), row norms (END) and sampled
//! coordinates of the anchor rows.
//!
//! One streaming pass over the embedding computes the mean row and every row's norm (memory: one chunk of rows
//! plus one norm per row); the anchor rows are then read individually. Rows are mean-centred before any cosine
//! or sample is taken: trained embeddings share a large common direction that says nothing about lineage and
//! would otherwise inflate every cosine and correlate unrelated models.

use crate::error::{Error, Result};
use crate::signals::kernels::Moments;
use crate::weights::WeightSource;
use provsearch_index::anchors::{presence_words, ANCHORS, ANCHOR_SET_VERSION};
use provsearch_index::sampling::vector_positions;
use provsearch_index::schema::{quantize_cosine, quantize_sample, EmbeddingSignals};
use rayon::prelude::*;

/// Coordinates sampled from each anchor row.
pub const SAMPLES_PER_ANCHOR_ROW: usize = 32;

/// Number of END quantiles (0/32 .. 32/32).
const QUANTILES: usize = 33;

/// Rows per streamed chunk, sized so one chunk is about 4 MiB of `f32`.
fn chunk_rows(hidden: u64) -> u64 {
    ((1u64 << 20) / hidden.max(1)).max(1)
}

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
    let passes: Vec<Pass> = chunks
        .par_iter()
        .map(|&first| -> Result<Pass> {
            let n = step.min(used_rows - first);
            let mut buf = vec![0f32; (n * hidden) as usize];
            source.read_f32(index, first * hidden, &mut buf)?;
            source.release(index, first * hidden, n * hidden);
            let mut column_sum = vec![0f64; h];
            let mut row_norms = Vec::with_capacity(n as usize);
            for (r, row) in buf.chunks_exact(h).enumerate() {
                let m = Moments::of(row);
                if m.has_non_finite {
                    return Err(Error::NonFinite {
                        path: meta.file.clone(),
                        tensor: meta.name.clone(),
                        what: if m.has_nan { "NaN" } else { "infinite" },
                    });
                }
                for (c, &v) in column_sum.iter_mut().zip(row) {
                    *c += v as f64;
                }
                row_norms.push((first + r as u64, m.sum_sq.sqrt() as f32));
            }
            Ok(Pass {
                column_sum,
                row_norms,
            })
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
    let mut sorted = norms.to_vec();
    sorted.sort_by(f32::total_cmp);
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
        source.read_f32(index, id as u64 * hidden, &mut row)?;
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
    let mut gram = Vec::with_capacity(unit.len() * unit.len().saturating_sub(1) / 2);
    for i in 0..unit.len() {
        for j in i + 1..unit.len() {
            let dot: f64 = unit[i].iter().zip(&unit[j]).map(|(a, b)| a * b).sum();
            gram.push(quantize_cosine(dot));
        }
    }

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
    })
}
