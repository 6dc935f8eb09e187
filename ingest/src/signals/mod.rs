//! Weight signals of a checkpoint: which tensors feed which signal, and with what sample budget.
//!
//! - Token embedding → [`embedding`]: EAS (anchor Gram), END (row norms), anchor-row samples.
//! - Layer matrices → [`tensors`] with RMS standardisation: WVC samples and LEP energies.
//! - Norm gains and other vectors (biases) → [`tensors`] with mean/std standardisation: NLF.
//!
//! Budgets are totals split evenly over the tensors, so a fingerprint stays within its size bound whatever the
//! number of layers; per-tensor counts only shorten the same canonical position sequence.

pub mod channels;
pub mod embedding;
pub mod kernels;
pub mod tensors;

use crate::error::Result;
use crate::roles::{
    classify, embedding_rank, expert_index, is_sinusoidal_table, mtp_layers, uses_conv1d, Kind,
};
use crate::weights::{TensorMeta, WeightSource};
use provsearch_index::schema::{EmbeddingSignals, Stack, TensorSamples, WeightSignals, NO_LAYER};
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

/// Which tensors feed which signal, decided from names and shapes alone.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The token embedding (or the tied lm_head standing in for it).
    pub embedding: Option<usize>,
    /// Layer matrices for WVC and LEP.
    pub matrices: Vec<Selected>,
    /// Norm gains and other vectors for NLF.
    pub vectors: Vec<Selected>,
    /// Remarks for the fingerprint.
    pub notes: Vec<String>,
}

/// Whether a position table outside the layers holds fixed sinusoids (Marian, Pegasus) rather than learned
/// values, judged by its first rows; a table that cannot be read counts as learned (the signals' pass will
/// report the read error).
fn is_fixed_position_table(
    source: &dyn WeightSource,
    index: usize,
    meta: &TensorMeta,
    role: &crate::roles::TensorRole,
) -> bool {
    const ROWS: usize = 4;
    if role.layer != NO_LAYER || !role.role.contains("position") || meta.shape.len() != 2 {
        return false;
    }
    let (rows, cols) = (meta.shape[0] as usize, meta.shape[1] as usize);
    if rows == 0 || cols == 0 || cols > 1 << 16 {
        return false;
    }
    let mut head = vec![0f32; rows.min(ROWS) * cols];
    if source.read_f32(index, 0, &mut head).is_err() {
        return false;
    }
    let rows: Vec<&[f32]> = head.chunks_exact(cols).collect();
    is_sinusoidal_table(&rows)
}

/// Classify every tensor of the source.
pub fn plan(source: &dyn WeightSource) -> Plan {
    let metas = source.tensors();
    let mut plan = Plan::default();
    let named: Vec<(&str, &[u64])> = metas
        .iter()
        .map(|m| (m.name.as_str(), m.shape.as_slice()))
        .collect();
    let conv1d = uses_conv1d(&named);
    if conv1d {
        plan.notes.push(
            "linear layers stored transposed (Conv1D); sampled in logical (out, in) order"
                .to_string(),
        );
    }
    // DeepSeek-V3 / GLM-4.5 multi-token-prediction modules sit where one more decoder layer would; copies
    // often drop them, so counting them would misalign the layers of a model and its copy.
    let mtp = mtp_layers(&named);
    if !mtp.is_empty() {
        plan.notes.push(format!(
            "multi-token-prediction layers {mtp:?} left out of the layer signals"
        ));
    }
    let mut embedding: Option<(usize, usize)> = None;
    let mut lm_head: Option<usize> = None;
    let mut skipped = 0;
    let mut skipped_experts = 0;
    for (index, meta) in metas.iter().enumerate() {
        let role = classify(&meta.name, &meta.shape);
        if role.layer != NO_LAYER && mtp.contains(&role.layer) {
            continue;
        }
        // Mixture-of-experts models: experts 0..SAMPLED_EXPERTS stand for the rest (a fixed subset, so the
        // definition does not depend on the expert count, and the fingerprint stays within its budget).
        if expert_index(&meta.name).is_some_and(|e| e >= SAMPLED_EXPERTS) {
            skipped_experts += 1;
            continue;
        }
        if !meta.is_weight {
            skipped += (role.kind != Kind::Ignored) as usize;
            continue;
        }
        match role.kind {
            Kind::TokenEmbedding => {
                let rank = embedding_rank(&meta.name, &meta.shape).unwrap_or(usize::MAX);
                if embedding.is_none_or(|(_, best)| rank < best) {
                    embedding = Some((index, rank));
                }
            }
            Kind::LmHead => lm_head = Some(index),
            Kind::Matrix => {
                if is_fixed_position_table(source, index, meta, &role) {
                    plan.notes.push(format!(
                        "{}: a fixed sinusoidal position table, left out (the same in every model of its shape)",
                        meta.name
                    ));
                    continue;
                }
                let shape = &meta.shape;
                let transposed = shape.len() == 2 && conv1d;
                let logical = if transposed {
                    [shape[1], shape[0]]
                } else {
                    let cols = *shape.last().unwrap_or(&0);
                    [shape[..shape.len() - 1].iter().product(), cols]
                };
                if logical.iter().all(|&d| d > 0 && d <= u32::MAX as u64) {
                    let shape = [logical[0] as u32, logical[1] as u32];
                    plan.matrices.push(Selected {
                        index,
                        role,
                        shape,
                        transposed,
                    });
                }
            }
            Kind::Norm | Kind::Vector => {
                let len = meta.numel();
                if len >= 2 && len <= u32::MAX as u64 {
                    plan.vectors.push(Selected {
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
    if skipped_experts > 0 {
        plan.notes.push(format!(
            "mixture of experts: experts 0..{SAMPLED_EXPERTS} sampled, {skipped_experts} tensors of other experts skipped"
        ));
    }
    single_text_stack(&mut plan);
    if skipped > 0 {
        plan.notes.push(format!(
            "{skipped} integer/packed weight tensors carry no usable values and were skipped"
        ));
    }
    plan.embedding = match (embedding, lm_head) {
        (Some((i, _)), _) => Some(i),
        (None, Some(i)) => {
            plan.notes.push(
                "no input embedding stored; token signals taken from lm_head (tied weights)"
                    .to_string(),
            );
            Some(i)
        }
        (None, None) => {
            plan.notes
                .push("no token embedding found: EAS and END unavailable".to_string());
            None
        }
    };
    plan
}

/// Experts per layer whose tensors are sampled in a mixture-of-experts model.
pub const SAMPLED_EXPERTS: u32 = 4;

/// A model with a single text stack keeps it as [`Stack::Main`], whatever its names say: BERT's layers sit
/// under `encoder.`, DistilBERT's and Llama's do not, OPT's under `decoder.`, and a student must align with its
/// teacher. Encoder and decoder stay apart only when a model has both (T5, BART).
fn single_text_stack(plan: &mut Plan) {
    let text = |s: Stack| s != Stack::Vision;
    let mut stacks: Vec<Stack> = plan
        .matrices
        .iter()
        .chain(&plan.vectors)
        .filter(|t| t.role.layer != NO_LAYER && text(t.role.stack))
        .map(|t| t.role.stack)
        .collect();
    stacks.sort();
    stacks.dedup();
    if stacks.len() == 1 {
        for t in plan.matrices.iter_mut().chain(plan.vectors.iter_mut()) {
            if text(t.role.stack) {
                t.role.stack = Stack::Main;
            }
        }
    }
}

/// Sample the layer matrices (WVC/LEP) and vectors (NLF) of a plan.
pub fn layer_signals(
    source: &dyn WeightSource,
    plan: &Plan,
) -> Result<(TensorSamples, TensorSamples)> {
    let matrix_samples = per_tensor(
        MATRIX_SAMPLE_BUDGET,
        plan.matrices.len(),
        MATRIX_SAMPLES_RANGE,
    );
    let vector_samples = per_tensor(NORM_SAMPLE_BUDGET, plan.vectors.len(), VECTOR_SAMPLES_RANGE);
    let (matrices, norms) = rayon::join(
        || sample_tensors(source, &plan.matrices, matrix_samples, Standardise::Rms),
        || sample_tensors(source, &plan.vectors, vector_samples, Standardise::MeanStd),
    );
    Ok((matrices?, norms?))
}

/// Every weight signal, computed in one go (the fingerprint pipeline instead overlaps the steps with tokenizer
/// parsing). `anchor_ids` come from the tokenizer (empty without one); `token_rows` is the number of real
/// token rows when known.
pub fn weight_signals(
    source: &dyn WeightSource,
    anchor_ids: &[Option<u32>],
    token_rows: Option<u64>,
) -> Result<WeightSignals> {
    let plan = plan(source);
    let (matrices, norms) = layer_signals(source, &plan)?;
    let embedding = match plan.embedding {
        Some(i) => Some(embedding::finish_embedding(
            source,
            &embedding::embedding_pass(source, i)?,
            anchor_ids,
            token_rows,
        )?),
        None => None,
    };
    Ok(assemble(plan, embedding, matrices, norms))
}

/// Put the parts together, with a note when no matrices were found.
pub fn assemble(
    plan: Plan,
    embedding: Option<EmbeddingSignals>,
    matrices: TensorSamples,
    norms: TensorSamples,
) -> WeightSignals {
    let mut notes = plan.notes;
    if matrices.entries.is_empty() {
        notes.push("no weight matrices found: WVC and LEP unavailable".to_string());
    }
    WeightSignals {
        embedding,
        matrices,
        norms,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::SafetensorsSource;
    use datasets::checkpoint::{Checkpoint, Tensor};
    use datasets::rng::Rng;
    use datasets::synth::randn;

    /// Marian-style fixed sinusoids (first half sin, second half cos) are left out; a learned position table
    /// under the same kind of name stays. A DeepSeek-V3/GLM-4.5 multi-token-prediction layer after the last
    /// decoder layer is left out; the decoder layers stay.
    #[test]
    fn fixed_position_tables_and_prediction_layers_are_left_out() {
        let (positions, dim) = (16, 8);
        let mut sinusoids = vec![0f32; positions * dim];
        for p in 0..positions {
            for j in 0..dim / 2 {
                let angle = p as f32 / 10_000f32.powf(2.0 * j as f32 / dim as f32);
                sinusoids[p * dim + j] = angle.sin();
                sinusoids[p * dim + dim / 2 + j] = angle.cos();
            }
        }
        let mut tensors = vec![Tensor::new(
            "model.encoder.embed_positions.weight",
            vec![positions, dim],
            sinusoids,
        )];
        let mut rng = Rng::new(1);
        let mut add =
            |name: &str, shape: Vec<usize>| tensors.push(randn(&mut rng, name, shape, 0.3));
        add("model.decoder.embed_positions.weight", vec![positions, dim]);
        add("model.embed_tokens.weight", vec![32, dim]);
        for layer in 0..3 {
            add(
                &format!("model.layers.{layer}.self_attn.q_proj.weight"),
                vec![dim, dim],
            );
            add(
                &format!("model.layers.{layer}.input_layernorm.weight"),
                vec![dim],
            );
        }
        add("model.layers.2.eh_proj.weight", vec![dim, 2 * dim]);
        add("model.layers.2.enorm.weight", vec![dim]);
        let mut ckpt = Checkpoint {
            tensors,
            ..Checkpoint::default()
        };
        ckpt.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let dir = tempfile::tempdir().unwrap();
        ckpt.write(dir.path(), datasets::Storage::F32, 1).unwrap();
        let source = SafetensorsSource::open(&[dir.path().join("model.safetensors")]).unwrap();
        let plan = plan(&source);
        let names = |selected: &[Selected]| -> Vec<String> {
            selected
                .iter()
                .map(|s| source.tensors()[s.index].name.clone())
                .collect()
        };
        let matrices = names(&plan.matrices);
        assert!(
            !matrices
                .iter()
                .any(|n| n.contains("encoder.embed_positions")),
            "{matrices:?}"
        );
        assert!(
            matrices
                .iter()
                .any(|n| n.contains("decoder.embed_positions")),
            "{matrices:?}"
        );
        assert!(
            !matrices.iter().any(|n| n.contains("layers.2.")),
            "{matrices:?}"
        );
        assert!(
            matrices.iter().any(|n| n.contains("layers.1.self_attn")),
            "{matrices:?}"
        );
        let vectors = names(&plan.vectors);
        assert!(
            !vectors.iter().any(|n| n.contains("layers.2.")),
            "{vectors:?}"
        );
        assert_eq!(vectors.len(), 2, "{vectors:?}");
        assert!(
            plan.notes.iter().any(|n| n.contains("sinusoidal")),
            "{:?}",
            plan.notes
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("multi-token")),
            "{:?}",
            plan.notes
        );
    }
}
