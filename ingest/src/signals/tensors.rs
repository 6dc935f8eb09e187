//! Fixed-position samples of layer tensors: matrices for WVC (and their energies for LEP), norm gains and biases
//! for NLF.
//!
//! Each tensor is streamed once in chunks to get its mean and root-mean-square (and to reject NaN/Inf), then
//! its canonical sample positions are read individually. Matrices are divided by their RMS, which makes the
//! samples independent of dtype and of any uniform rescaling; vectors (norm gains, biases) are also centred,
//! because every norm gain sits near 1.0 and that shared baseline carries no information.

use crate::error::{Error, Result};
use crate::roles::TensorRole;
use crate::signals::kernels::Moments;
use crate::weights::WeightSource;
use provsearch_index::sampling::matrix_positions;
use provsearch_index::schema::{quantize_sample, TensorEntry, TensorSamples};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Elements per streamed chunk (4 MiB of `f32`).
const CHUNK: u64 = 1 << 20;

/// A tensor selected for sampling.
#[derive(Debug, Clone)]
pub struct Selected {
    /// Index into the source's tensor list.
    pub index: usize,
    /// Its classification.
    pub role: TensorRole,
    /// Logical `[rows, cols]`.
    pub shape: [u32; 2],
    /// Stored as `(cols, rows)` (GPT-2 Conv1D): logical `(r, c)` lives at flat `c * rows + r`.
    pub transposed: bool,
}

/// How samples are standardised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standardise {
    /// Divide by the RMS (weight matrices: zero-mean by construction).
    Rms,
    /// Subtract the mean, divide by the standard deviation (norm gains and biases).
    MeanStd,
}

/// Stream a tensor once: moments of all its values, NaN/Inf rejected, mapped pages released behind.
pub fn stream_moments(source: &dyn WeightSource, index: usize) -> Result<Moments> {
    let meta = &source.tensors()[index];
    let total = meta.numel();
    let mut buf = vec![0f32; CHUNK.min(total) as usize];
    let mut m = Moments::default();
    let mut start = 0u64;
    while start < total {
        let n = CHUNK.min(total - start) as usize;
        source.read_f32(index, start, &mut buf[..n])?;
        source.release(index, start, n as u64);
        m.add(&buf[..n]);
        if m.has_non_finite {
            return Err(Error::NonFinite {
                path: meta.file.clone(),
                tensor: meta.name.clone(),
                what: if m.has_nan { "NaN" } else { "infinite" },
            });
        }
        start += n as u64;
    }
    Ok(m)
}

struct Sampled {
    values: Vec<i8>,
    log_rms: f32,
}

fn sample_one(
    source: &dyn WeightSource,
    t: &Selected,
    count: usize,
    how: Standardise,
) -> Result<Option<Sampled>> {
    let m = stream_moments(source, t.index)?;
    let (centre, scale) = match how {
        Standardise::Rms => (0.0, m.rms()),
        Standardise::MeanStd => (m.mean(), m.std()),
    };
    // A constant tensor (all-ones gains of a fresh model, zero biases) has no pattern to compare.
    if scale <= 1e-7 * m.rms().max(1e-30) || scale == 0.0 {
        return Ok(None);
    }
    let [rows, cols] = t.shape;
    let mut one = [0f32; 1];
    let mut values = Vec::with_capacity(count);
    for (r, c) in matrix_positions(rows, cols, count) {
        let flat = if t.transposed {
            c as u64 * rows as u64 + r as u64
        } else {
            r as u64 * cols as u64 + c as u64
        };
        source.read_f32(t.index, flat, &mut one)?;
        values.push(quantize_sample((one[0] as f64 - centre) / scale));
    }
    Ok(Some(Sampled {
        values,
        log_rms: m.rms().max(1e-30).ln() as f32,
    }))
}

/// Sample every selected tensor with `per_tensor` samples each, in parallel, into one [`TensorSamples`].
/// Tensors that turn out constant are left out.
pub fn sample_tensors(
    source: &dyn WeightSource,
    selected: &[Selected],
    per_tensor: usize,
    how: Standardise,
) -> Result<TensorSamples> {
    let results: Vec<Option<Sampled>> = selected
        .par_iter()
        .map(|t| sample_one(source, t, per_tensor, how))
        .collect::<Result<_>>()?;

    let mut order: Vec<(&Selected, Sampled)> = selected
        .iter()
        .zip(results)
        .filter_map(|(t, s)| s.map(|s| (t, s)))
        .collect();
    order.sort_by(|a, b| {
        (a.0.role.stack, a.0.role.layer, &a.0.role.role).cmp(&(
            b.0.role.stack,
            b.0.role.layer,
            &b.0.role.role,
        ))
    });

    let mut roles: BTreeMap<String, u16> = BTreeMap::new();
    let mut shapes: Vec<[u32; 2]> = Vec::new();
    let mut out = TensorSamples::default();
    for (t, s) in order {
        let next_role = roles.len() as u16;
        let role = *roles.entry(t.role.role.clone()).or_insert(next_role);
        let shape = match shapes.iter().position(|s| *s == t.shape) {
            Some(i) => i,
            None => {
                shapes.push(t.shape);
                shapes.len() - 1
            }
        } as u16;
        out.entries.push(TensorEntry {
            stack: t.role.stack,
            layer: t.role.layer,
            role,
            shape,
            len: s.values.len() as u16,
            start: out.values.len() as u32,
            log_rms: s.log_rms,
        });
        out.values.extend_from_slice(&s.values);
    }
    let mut role_names = vec![String::new(); roles.len()];
    for (name, i) in roles {
        role_names[i as usize] = name;
    }
    out.roles = role_names;
    out.shapes = shapes;
    Ok(out)
}
