//! Fixed-position samples of layer tensors: matrices for WVC (and their energies for LEP), norm gains and biases
//! for NLF.
//!
//! A matrix is read only at its canonical rows ([`canonical_rows`]): the first [`RMS_ROWS`] define its RMS
//! (LEP energy and the standardisation scale), and the sample grid lies on them, so a fingerprint touches a few
//! pages per tensor whatever the model size. Samples are divided by the RMS, which makes them independent of
//! dtype and of any uniform rescaling. Vectors (norm gains, biases) are small and read whole; they are also
//! centred, because every norm gain sits near 1.0 and that shared baseline carries no information. Every value
//! read is checked for NaN/Inf.

use crate::error::{Error, Result};
use crate::roles::TensorRole;
use crate::signals::kernels::Moments;
use crate::weights::WeightSource;
use provsearch_index::sampling::{
    canonical_rows, matrix_positions, vector_positions, RMS_ROWS, SAMPLES_PER_ROW,
};
use provsearch_index::schema::{quantize_sample, TensorEntry, TensorSamples};
use rayon::prelude::*;
use std::collections::BTreeMap;

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

struct Sampled {
    values: Vec<i8>,
    log_rms: f32,
}

fn non_finite(source: &dyn WeightSource, index: usize, m: &Moments) -> Error {
    let meta = &source.tensors()[index];
    Error::NonFinite {
        path: meta.file.clone(),
        tensor: meta.name.clone(),
        what: if m.has_nan { "NaN" } else { "infinite" },
    }
}

/// Read logical row `r` of a `rows × cols` matrix (strided element reads when stored transposed).
fn read_row(source: &dyn WeightSource, t: &Selected, r: u32, out: &mut [f32]) -> Result<()> {
    let [rows, cols] = t.shape;
    if t.transposed {
        for (c, v) in out.iter_mut().enumerate().take(cols as usize) {
            source.read_f32(
                t.index,
                c as u64 * rows as u64 + r as u64,
                std::slice::from_mut(v),
            )?;
        }
        Ok(())
    } else {
        // One `pread` per row where the source can: mapping the row instead would map the whole page-cache
        // folio around it (up to 2 MiB), which costs more to fault in and tear down than the copy.
        source.read_f32_streaming(t.index, r as u64 * cols as u64, &mut out[..cols as usize])
    }
}

/// Where the samples of a tensor of one shape lie: they depend only on the shape and the sample count, so they
/// are computed once per shape (a model has a handful of shapes over hundreds of tensors).
enum Layout {
    /// A matrix: the sample positions and the canonical rows to read (at least the [`RMS_ROWS`] that define
    /// the RMS).
    Matrix {
        positions: Vec<(u32, u32)>,
        row_ids: Vec<u32>,
    },
    /// A vector: the sampled positions.
    Vector(Vec<u32>),
}

impl Layout {
    fn new(shape: [u32; 2], count: usize, how: Standardise) -> Layout {
        let [rows, cols] = shape;
        match how {
            Standardise::Rms => {
                let positions = matrix_positions(rows, cols, count);
                let per_row = cols.min(SAMPLES_PER_ROW) as usize;
                let needed = positions
                    .len()
                    .div_ceil(per_row)
                    .max(RMS_ROWS.min(rows) as usize);
                Layout::Matrix {
                    positions,
                    row_ids: canonical_rows(rows, cols, needed),
                }
            }
            Standardise::MeanStd => Layout::Vector(vector_positions(cols, count)),
        }
    }
}

/// Matrices: read the canonical rows the samples need (at least the [`RMS_ROWS`] that define the RMS), so only a
/// few pages of each tensor are touched.
fn sample_matrix(
    source: &dyn WeightSource,
    t: &Selected,
    positions: &[(u32, u32)],
    row_ids: &[u32],
) -> Result<Option<Sampled>> {
    let [_, cols] = t.shape;
    let per_row = cols.min(SAMPLES_PER_ROW) as usize;
    let mut values = vec![0f32; row_ids.len() * cols as usize];
    let mut rms_moments = Moments::default();
    for (i, (&r, buf)) in row_ids
        .iter()
        .zip(values.chunks_exact_mut(cols as usize))
        .enumerate()
    {
        read_row(source, t, r, buf)?;
        let m = Moments::of(buf);
        if m.has_non_finite {
            return Err(non_finite(source, t.index, &m));
        }
        if i < RMS_ROWS as usize {
            rms_moments.add(buf);
        }
    }
    // Rows read through a memory map (stored transposed, or decoded from a packed quantized layout) left whole
    // page-cache folios mapped around them: they count towards giving the map's pages back.
    source.release(t.index, 0, source.tensors()[t.index].numel());
    let rms = rms_moments.rms();
    if rms <= 0.0 {
        return Ok(None);
    }
    let samples = positions
        .iter()
        .enumerate()
        .map(|(k, &(_, c))| {
            quantize_sample(values[(k / per_row) * cols as usize + c as usize] as f64 / rms)
        })
        .collect();
    Ok(Some(Sampled {
        values: samples,
        log_rms: rms.ln() as f32,
    }))
}

/// Vectors (norm gains, biases): small, read whole, centred and scaled by their standard deviation.
fn sample_vector(
    source: &dyn WeightSource,
    t: &Selected,
    positions: &[u32],
) -> Result<Option<Sampled>> {
    let len = t.shape[1];
    let mut values = vec![0f32; len as usize];
    source.read_f32_streaming(t.index, 0, &mut values)?;
    let m = Moments::of(&values);
    if m.has_non_finite {
        return Err(non_finite(source, t.index, &m));
    }
    let (mean, std) = (m.mean(), m.std());
    // A constant vector (all-ones gains of a fresh model, zero biases) has no pattern to compare.
    if std <= 1e-7 * m.rms().max(1e-30) {
        return Ok(None);
    }
    let samples = positions
        .iter()
        .map(|&p| quantize_sample((values[p as usize] as f64 - mean) / std))
        .collect();
    Ok(Some(Sampled {
        values: samples,
        log_rms: m.rms().max(1e-30).ln() as f32,
    }))
}

fn sample_one(source: &dyn WeightSource, t: &Selected, layout: &Layout) -> Result<Option<Sampled>> {
    match layout {
        Layout::Matrix { positions, row_ids } => sample_matrix(source, t, positions, row_ids),
        Layout::Vector(positions) => sample_vector(source, t, positions),
    }
}

/// Sample every selected tensor with `per_tensor` samples each, in parallel, into one [`TensorSamples`].
/// Tensors that turn out constant are left out.
pub fn sample_tensors(
    source: &dyn WeightSource,
    selected: &[Selected],
    per_tensor: usize,
    how: Standardise,
) -> Result<TensorSamples> {
    // The layout of each distinct shape, then the tensors, each with its shape's layout.
    let mut distinct: Vec<[u32; 2]> = selected.iter().map(|t| t.shape).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let layouts: Vec<Layout> = distinct
        .par_iter()
        .map(|&shape| Layout::new(shape, per_tensor, how))
        .collect();
    let results: Vec<Option<Sampled>> = selected
        .par_iter()
        .map(|t| {
            let layout = distinct
                .binary_search(&t.shape)
                .ok()
                .and_then(|i| layouts.get(i));
            match layout {
                Some(layout) => sample_one(source, t, layout),
                None => sample_one(source, t, &Layout::new(t.shape, per_tensor, how)), // unreachable
            }
        })
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
