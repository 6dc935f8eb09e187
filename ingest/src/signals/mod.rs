//! Weight signals of a checkpoint: which tensors feed which signal, and with what sample budget.
//!
//! - Token embedding → [`embedding`]: EAS (anchor Gram), END (row norms), anchor-row samples.
//! - Layer matrices → [`tensors`] with RMS standardisation: WVC samples and LEP energies.
//! - Norm gains and other vectors (biases) → [`tensors`] with mean/std standardisation: NLF.
//!
//! Budgets are totals split evenly over the tensors, so a fingerprint stays within its size bound whatever the
//! number of layers; per-tensor counts only shorten the same canonical position sequence.

pub mod embedding;
pub mod tensors;

use crate::error::Result;
use crate::roles::{classify, embedding_rank, uses_conv1d, Kind};
use crate::weights::WeightSource;
use provsearch_index::schema::WeightSignals;
use tensors::{sample_tensors, Selected, Standardise};

/// Total matrix samples per fingerprint (WVC).
pub const MATRIX_SAMPLE_BUDGET: usize = 16_384;
/// Total norm/bias samples per fingerprint (NLF).
pub const NORM_SAMPLE_BUDGET: usize = 4_096;
/// Bounds on samples per matrix.
pub const MATRIX_SAMPLES_RANGE: (usize, usize) = (8, 512);
/// Bounds on samples per vector.
pub const VECTOR_SAMPLES_RANGE: (usize, usize) = (8, 64);

fn per_tensor(budget: usize, count: usize, (lo, hi): (usize, usize)) -> usize {
    (budget / count.max(1)).clamp(lo, hi)
}

/// Compute every weight signal. `anchor_ids` come from the tokenizer (empty without one); `token_rows` is the
/// number of real token rows (tokenizer size) when known.
pub fn weight_signals(
    source: &dyn WeightSource,
    anchor_ids: &[Option<u32>],
    token_rows: Option<u64>,
) -> Result<WeightSignals> {
    let metas = source.tensors();
    let mut notes = Vec::new();
    let named: Vec<(&str, &[u64])> = metas
        .iter()
        .map(|m| (m.name.as_str(), m.shape.as_slice()))
        .collect();
    let conv1d = uses_conv1d(&named);
    if conv1d {
        notes.push(
            "linear layers stored transposed (Conv1D); sampled in logical (out, in) order"
                .to_string(),
        );
    }

    let skipped = metas.iter().filter(|m| !m.is_weight).count();
    if skipped > 0 {
        notes.push(format!(
            "{skipped} integer/packed tensors carry no usable weight values and were skipped"
        ));
    }

    let mut matrices = Vec::new();
    let mut vectors = Vec::new();
    let mut embedding: Option<(usize, usize)> = None;
    let mut lm_head: Option<usize> = None;
    for (index, meta) in metas.iter().enumerate() {
        if !meta.is_weight {
            continue;
        }
        let role = classify(&meta.name, &meta.shape);
        match role.kind {
            Kind::TokenEmbedding => {
                let rank = embedding_rank(&meta.name, &meta.shape).unwrap_or(usize::MAX);
                if embedding.is_none_or(|(_, best)| rank < best) {
                    embedding = Some((index, rank));
                }
            }
            Kind::LmHead => lm_head = Some(index),
            Kind::Matrix => {
                let shape = &meta.shape;
                let logical = if shape.len() == 2 && conv1d {
                    [shape[1], shape[0]]
                } else {
                    let cols = *shape.last().unwrap_or(&0);
                    [shape[..shape.len() - 1].iter().product(), cols]
                };
                if logical.iter().all(|&d| d > 0 && d <= u32::MAX as u64) {
                    matrices.push(Selected {
                        index,
                        role,
                        shape: [logical[0] as u32, logical[1] as u32],
                        transposed: shape.len() == 2 && conv1d,
                    });
                }
            }
            Kind::Norm | Kind::Vector => {
                let len = meta.numel();
                if len >= 2 && len <= u32::MAX as u64 {
                    vectors.push(Selected {
                        index,
                        role,
                        shape: [1, len as u32],
                        transposed: false,
                    });
                }
            }
            Kind::Ignored => {}
        }
    }

    let embedding_index = match (embedding, lm_head) {
        (Some((i, _)), _) => Some(i),
        (None, Some(i)) => {
            notes.push(
                "no input embedding stored; token signals taken from lm_head (tied weights)"
                    .to_string(),
            );
            Some(i)
        }
        (None, None) => {
            notes.push("no token embedding found: EAS and END unavailable".to_string());
            None
        }
    };
    let embedding = match embedding_index {
        Some(i) => Some(embedding::embedding_signals(
            source, i, anchor_ids, token_rows,
        )?),
        None => None,
    };

    let matrix_samples = per_tensor(MATRIX_SAMPLE_BUDGET, matrices.len(), MATRIX_SAMPLES_RANGE);
    let vector_samples = per_tensor(NORM_SAMPLE_BUDGET, vectors.len(), VECTOR_SAMPLES_RANGE);
    let matrices = sample_tensors(source, &matrices, matrix_samples, Standardise::Rms)?;
    let norms = sample_tensors(source, &vectors, vector_samples, Standardise::MeanStd)?;
    if matrices.entries.is_empty() {
        notes.push("no weight matrices found: WVC and LEP unavailable".to_string());
    }
    Ok(WeightSignals {
        embedding,
        matrices,
        norms,
        notes,
    })
}
