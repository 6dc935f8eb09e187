//! Mechanical derivations of a checkpoint: the transformations that make a related copy (dtype conversion,
//! quantize→dequantize, noise, LoRA merge, pruning, permutation, rescaling, merging) and the one that makes an
//! unrelated twin (a fresh initialisation of the same config). All are deterministic given a seed.

use crate::checkpoint::{Checkpoint, Tensor};
use crate::rng::Rng;

/// Whether a tensor is a norm gain or bias vector (initialised to 1 / 0 by Hugging Face models).
fn is_norm(t: &Tensor) -> bool {
    let n = t.name.to_ascii_lowercase();
    t.shape.len() == 1 && (n.contains("norm") || n.contains(".ln_") || n.contains("ln_f"))
}

/// Round every float tensor through per-row symmetric int8 quantisation (scale = max|row| / 127).
pub fn int8_per_channel(ckpt: &mut Checkpoint) {
    for t in ckpt
        .tensors
        .iter_mut()
        .filter(|t| t.is_float() && t.shape.len() >= 2)
    {
        let cols = *t.shape.last().unwrap_or(&1);
        for row in t.data.chunks_mut(cols.max(1)) {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            if max > 0.0 {
                let scale = max / 127.0;
                row.iter_mut()
                    .for_each(|v| *v = (*v / scale).round().clamp(-127.0, 127.0) * scale);
            }
        }
    }
}

/// Round every matrix through 4-bit block quantisation (blocks of `block` values along a row, asymmetric
/// min/max, like GGUF Q4_1 or GPTQ without act-order).
pub fn int4_block(ckpt: &mut Checkpoint, block: usize) {
    for t in ckpt
        .tensors
        .iter_mut()
        .filter(|t| t.is_float() && t.shape.len() >= 2)
    {
        for chunk in t.data.chunks_mut(block.max(1)) {
            let (lo, hi) = chunk
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
            let scale = (hi - lo) / 15.0;
            if scale > 0.0 {
                chunk
                    .iter_mut()
                    .for_each(|v| *v = ((*v - lo) / scale).round().clamp(0.0, 15.0) * scale + lo);
            }
        }
    }
}

/// Add Gaussian noise to every float tensor, with standard deviation `relative` × the tensor's own RMS.
/// Norm gains get noise relative to their spread around 1, so they stay gains.
pub fn add_noise(ckpt: &mut Checkpoint, relative: f32, seed: u64) {
    let mut rng = Rng::new(seed);
    for t in ckpt.tensors.iter_mut().filter(|t| t.is_float()) {
        let n = t.data.len().max(1) as f32;
        let mean = t.data.iter().sum::<f32>() / n;
        let spread = if is_norm(t) {
            (t.data.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt()
        } else {
            (t.data.iter().map(|v| v * v).sum::<f32>() / n).sqrt()
        };
        let sigma = relative * spread;
        t.data
            .iter_mut()
            .for_each(|v| *v += sigma * rng.normal() as f32);
    }
}

/// Replace every float tensor by a fresh Hugging Face-style initialisation: N(0, `std`) for matrices and
/// embeddings, 1 for norm gains, 0 for biases. Same names, shapes and config: an independent model.
pub fn fresh_init(ckpt: &mut Checkpoint, std: f32, seed: u64) {
    let mut rng = Rng::new(seed);
    for t in ckpt.tensors.iter_mut().filter(|t| t.is_float()) {
        let bias = t.name.ends_with(".bias") || t.name.ends_with(".beta");
        if t.shape.len() == 1 && bias {
            t.data.iter_mut().for_each(|v| *v = 0.0);
        } else if t.shape.len() == 1 && is_norm(t) {
            t.data.iter_mut().for_each(|v| *v = 1.0);
        } else {
            t.data
                .iter_mut()
                .for_each(|v| *v = std * rng.normal() as f32);
        }
    }
}

/// Merge a random low-rank update `W += B·A` (rank `rank`, scaled so ‖BA‖ ≈ `relative`·‖W‖) into every
/// matrix whose name contains one of `targets` (LoRA merge).
pub fn lora_merge(ckpt: &mut Checkpoint, targets: &[&str], rank: usize, relative: f32, seed: u64) {
    let mut rng = Rng::new(seed);
    for t in ckpt
        .tensors
        .iter_mut()
        .filter(|t| t.is_float() && t.shape.len() == 2)
    {
        if !targets.iter().any(|k| t.name.contains(k)) {
            continue;
        }
        let (rows, cols) = (t.shape[0], t.shape[1]);
        let b: Vec<f32> = (0..rows * rank).map(|_| rng.normal() as f32).collect();
        let a: Vec<f32> = (0..rank * cols).map(|_| rng.normal() as f32).collect();
        let rms = (t.data.iter().map(|v| v * v).sum::<f32>() / t.data.len().max(1) as f32).sqrt();
        // Entries of B·A have standard deviation √rank.
        let scale = relative * rms / (rank as f32).sqrt();
        for r in 0..rows {
            for c in 0..cols {
                let delta: f32 = (0..rank).map(|k| b[r * rank + k] * a[k * cols + c]).sum();
                t.data[r * cols + c] += scale * delta;
            }
        }
    }
}

/// Linear interpolation of two checkpoints with the same tensors: `(1 − t)·a + t·b`.
pub fn linear_merge(a: &Checkpoint, b: &Checkpoint, t: f32) -> Checkpoint {
    let mut out = a.clone();
    for x in out.tensors.iter_mut().filter(|x| x.is_float()) {
        if let Some(y) = b.get(&x.name).filter(|y| y.data.len() == x.data.len()) {
            x.data
                .iter_mut()
                .zip(&y.data)
                .for_each(|(u, v)| *u = (1.0 - t) * *u + t * v);
        }
    }
    out
}

/// Spherical interpolation per tensor (SLERP merge, as mergekit does it).
pub fn slerp_merge(a: &Checkpoint, b: &Checkpoint, t: f32) -> Checkpoint {
    let mut out = a.clone();
    for x in out.tensors.iter_mut().filter(|x| x.is_float()) {
        let Some(y) = b.get(&x.name).filter(|y| y.data.len() == x.data.len()) else {
            continue;
        };
        let (na, nb) = (norm(&x.data), norm(&y.data));
        let dot: f64 = x
            .data
            .iter()
            .zip(&y.data)
            .map(|(u, v)| (*u as f64 / na) * (*v as f64 / nb))
            .sum();
        let omega = dot.clamp(-1.0, 1.0).acos();
        let (wa, wb) = if omega.abs() < 1e-4 {
            (1.0 - t as f64, t as f64)
        } else {
            (
                ((1.0 - t as f64) * omega).sin() / omega.sin(),
                (t as f64 * omega).sin() / omega.sin(),
            )
        };
        x.data
            .iter_mut()
            .zip(&y.data)
            .for_each(|(u, v)| *u = (wa * *u as f64 + wb * *v as f64) as f32);
    }
    out
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|x| (*x as f64).powi(2))
        .sum::<f64>()
        .sqrt()
        .max(1e-30)
}

/// Zero the `fraction` of smallest-magnitude entries of every matrix (unstructured magnitude pruning).
pub fn magnitude_prune(ckpt: &mut Checkpoint, fraction: f32) {
    for t in ckpt
        .tensors
        .iter_mut()
        .filter(|t| t.is_float() && t.shape.len() >= 2)
    {
        let mut mags: Vec<f32> = t.data.iter().map(|v| v.abs()).collect();
        let k = ((mags.len() as f32) * fraction) as usize;
        if k == 0 {
            continue;
        }
        mags.select_nth_unstable_by(k - 1, f32::total_cmp);
        let cut = mags[k - 1];
        t.data
            .iter_mut()
            .filter(|v| v.abs() <= cut)
            .for_each(|v| *v = 0.0);
    }
}

/// Rename tensors with `from → to` substring replacements (e.g. a re-export under other module names).
pub fn rename(ckpt: &mut Checkpoint, from: &str, to: &str) {
    for t in &mut ckpt.tensors {
        t.name = t.name.replace(from, to);
    }
    ckpt.tensors.sort_by(|a, b| a.name.cmp(&b.name));
}
