//! Mechanical derivations of a checkpoint: the transformations that make a related copy (dtype conversion,
//! quantize→dequantize, noise, LoRA merge, pruning, permutation, rescaling, merging) and the one that makes an
//! unrelated twin (a fresh initialisation of the same config). All are deterministic given a seed.

use crate::checkpoint::{Checkpoint, Tensor};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};

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

/// How [`task_merge`] combines the parents' task vectors (their differences from the base), as mergekit does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskMerge {
    /// TIES (Yadav et al. 2023): keep each task vector's `density` largest-magnitude entries, elect a sign per
    /// entry from their sum, and average the kept entries that agree with it.
    Ties,
    /// DARE (Yu et al. 2024), linear: drop each entry of each task vector with probability `1 − density`,
    /// rescale the rest by `1 / density`, and average.
    Dare,
}

/// Merge fine-tunes of `base` through their task vectors: `base + combine(model − base)` per tensor, with the
/// combination of `method` at `density` (the share of each task vector kept, in (0, 1]). Tensors a model lacks
/// or has in another shape contribute no task vector.
pub fn task_merge(
    base: &Checkpoint,
    models: &[&Checkpoint],
    method: TaskMerge,
    density: f32,
    seed: u64,
) -> Checkpoint {
    let mut rng = Rng::new(seed);
    let mut out = base.clone();
    for x in out.tensors.iter_mut().filter(|x| x.is_float()) {
        let mut deltas: Vec<Vec<f32>> = models
            .iter()
            .filter_map(|m| m.get(&x.name).filter(|y| y.shape == x.shape))
            .map(|y| y.data.iter().zip(&x.data).map(|(a, b)| a - b).collect())
            .collect();
        if deltas.is_empty() {
            continue;
        }
        let n = deltas.len() as f32;
        match method {
            TaskMerge::Dare => {
                for d in &mut deltas {
                    d.iter_mut().for_each(|v| {
                        *v = if (rng.uniform() as f32) < density {
                            *v / density
                        } else {
                            0.0
                        }
                    });
                }
                for (i, v) in x.data.iter_mut().enumerate() {
                    *v += deltas.iter().map(|d| d[i]).sum::<f32>() / n;
                }
            }
            TaskMerge::Ties => {
                for d in &mut deltas {
                    let keep = ((d.len() as f32) * density).ceil() as usize;
                    let mut mags: Vec<f32> = d.iter().map(|v| v.abs()).collect();
                    let len = mags.len();
                    if keep == 0 || keep >= len {
                        continue;
                    }
                    let cut = *mags.select_nth_unstable_by(len - keep, f32::total_cmp).1;
                    d.iter_mut()
                        .filter(|v| v.abs() < cut)
                        .for_each(|v| *v = 0.0);
                }
                for (i, v) in x.data.iter_mut().enumerate() {
                    let sign = deltas.iter().map(|d| d[i]).sum::<f32>().signum();
                    let agree: Vec<f32> = deltas
                        .iter()
                        .map(|d| d[i])
                        .filter(|&u| u != 0.0 && u.signum() == sign)
                        .collect();
                    if !agree.is_empty() {
                        *v += agree.iter().sum::<f32>() / agree.len() as f32;
                    }
                }
            }
        }
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

/// Where a tensor name carries its layer index: the component after `layers`, `layer` or `h`.
/// Returns the index of that component in the dot-split name and the layer number.
fn layer_component(parts: &[&str]) -> Option<(usize, usize)> {
    parts.windows(2).enumerate().find_map(|(i, w)| {
        matches!(w[0], "layers" | "layer" | "h")
            .then(|| w[1].parse::<usize>().ok().map(|l| (i + 1, l)))
            .flatten()
    })
}

/// Split a tensor name into (layer, the name after the layer index), for layer tensors.
pub(crate) fn split_layer(name: &str) -> Option<(usize, String)> {
    let parts: Vec<&str> = name.split('.').collect();
    let (pos, layer) = layer_component(&parts)?;
    Some((layer, parts[pos + 1..].join(".")))
}

/// A layer tensor's name with its layer index replaced by `layer` (other names unchanged).
pub(crate) fn with_layer(name: &str, layer: usize) -> String {
    let mut parts: Vec<String> = name.split('.').map(str::to_string).collect();
    let borrowed: Vec<&str> = name.split('.').collect();
    if let Some((pos, _)) = layer_component(&borrowed) {
        parts[pos] = layer.to_string();
    }
    parts.join(".")
}

/// Number of layers of a checkpoint (one more than the largest layer index).
pub fn layer_count(ckpt: &Checkpoint) -> usize {
    ckpt.tensors
        .iter()
        .filter_map(|t| split_layer(&t.name).map(|(l, _)| l + 1))
        .max()
        .unwrap_or(0)
}

/// Set integer or float fields of config.json that exist (`keys` are alternatives, e.g. `num_hidden_layers` and
/// `n_layer`). A checkpoint without config.json is left alone.
pub(crate) fn set_config(
    ckpt: &mut Checkpoint,
    keys: &[&str],
    value: serde_json::Value,
) -> Result<()> {
    let Some(bytes) = ckpt.files.get("config.json") else {
        return Ok(());
    };
    let mut config: serde_json::Value =
        serde_json::from_slice(bytes).context("config.json is not JSON")?;
    if let Some(obj) = config.as_object_mut() {
        for k in keys {
            if obj.contains_key(*k) {
                obj.insert((*k).to_string(), value.clone());
            }
        }
    }
    ckpt.files
        .insert("config.json".into(), serde_json::to_vec_pretty(&config)?);
    Ok(())
}

/// Remove whole layers and renumber the rest (layer dropping, as in "every other layer" students or
/// depth-pruned models); updates the layer count in config.json.
pub fn drop_layers(ckpt: &mut Checkpoint, drop: &[usize]) -> Result<()> {
    let before = layer_count(ckpt);
    if drop.iter().any(|&l| l >= before) || drop.len() >= before {
        bail!("cannot drop layers {drop:?} of a {before}-layer model");
    }
    let renumber = |l: usize| l - drop.iter().filter(|&&d| d < l).count();
    ckpt.tensors.retain(|t| match split_layer(&t.name) {
        Some((l, _)) => !drop.contains(&l),
        None => true,
    });
    for t in &mut ckpt.tensors {
        if let Some((l, _)) = split_layer(&t.name) {
            t.name = with_layer(&t.name, renumber(l));
        }
    }
    ckpt.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    set_config(
        ckpt,
        &["num_hidden_layers", "n_layer", "num_layers"],
        (before - drop.len()).into(),
    )
}

/// Which axis of a tensor indexes the MLP's hidden units.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Rows (first dimension; also the only one of a bias vector).
    Rows,
    /// Columns (last dimension).
    Cols,
}

/// MLP tensors by their name after the layer index, with the axis that runs over hidden units: Llama
/// (gate/up rows, down columns), GPT-2 Conv1D `(in, out)` (c_fc columns and bias, c_proj rows) and BERT
/// (intermediate rows and bias, output columns).
const MLP_UNITS: &[(&str, Axis)] = &[
    ("mlp.gate_proj.weight", Axis::Rows),
    ("mlp.up_proj.weight", Axis::Rows),
    ("mlp.down_proj.weight", Axis::Cols),
    ("mlp.c_fc.weight", Axis::Cols),
    ("mlp.c_fc.bias", Axis::Rows),
    ("mlp.c_proj.weight", Axis::Rows),
    ("intermediate.dense.weight", Axis::Rows),
    ("intermediate.dense.bias", Axis::Rows),
    ("output.dense.weight", Axis::Cols),
];

fn permute_axis(t: &mut Tensor, axis: Axis, perm: &[usize]) {
    let rows = t.shape.first().copied().unwrap_or(1);
    let cols = if t.shape.len() >= 2 {
        t.data.len() / rows.max(1)
    } else {
        1
    };
    let old = t.data.clone();
    for r in 0..rows {
        for c in 0..cols {
            let (sr, sc) = match axis {
                Axis::Rows => (perm[r], c),
                Axis::Cols => (r, perm[c]),
            };
            t.data[r * cols + c] = old[sr * cols + sc];
        }
    }
}

fn axis_len(t: &Tensor, axis: Axis) -> usize {
    match axis {
        Axis::Rows => t.shape.first().copied().unwrap_or(0),
        Axis::Cols => t.shape.last().copied().unwrap_or(0),
    }
}

/// Permute the hidden units of every MLP (rows of up/gate, columns of down, consistently): the network computes
/// exactly the same function, but every MLP weight moves to another position. An evasion attack on positional
/// weight signals. Returns the number of layers permuted.
pub fn permute_mlp(ckpt: &mut Checkpoint, seed: u64) -> Result<usize> {
    let mut rng = Rng::new(seed);
    let layers = layer_count(ckpt);
    let mut permuted = 0;
    for layer in 0..layers {
        let members: Vec<(usize, Axis)> = ckpt
            .tensors
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let (l, rest) = split_layer(&t.name)?;
                let axis = MLP_UNITS.iter().find(|(n, _)| *n == rest)?.1;
                (l == layer && t.is_float()).then_some((i, axis))
            })
            .collect();
        let Some(&(first, axis)) = members.first() else {
            continue;
        };
        let units = axis_len(&ckpt.tensors[first], axis);
        if let Some(&(i, _)) = members
            .iter()
            .find(|(i, a)| axis_len(&ckpt.tensors[*i], *a) != units)
        {
            bail!(
                "{}: MLP width differs from {units} in layer {layer}",
                ckpt.tensors[i].name
            );
        }
        let perm = rng.permutation(units);
        for (i, axis) in members {
            permute_axis(&mut ckpt.tensors[i], axis, &perm);
        }
        permuted += 1;
    }
    if permuted == 0 {
        bail!("no MLP tensors recognised (Llama, GPT-2 and BERT layouts are)");
    }
    Ok(permuted)
}

/// A norm and the matrices that read its output, by name after the layer index (pre-norm layouts only:
/// in post-norm BERT a norm's output also feeds the residual stream, so rescaling it changes the function).
/// Tensors (by name after the layer index) that read a norm's output, and the axis of their inputs.
type Readers = &'static [(&'static str, Axis)];

const NORM_READERS: &[(&[&str], Readers)] = &[
    (
        &["input_layernorm.weight"],
        &[
            ("self_attn.q_proj.weight", Axis::Cols),
            ("self_attn.k_proj.weight", Axis::Cols),
            ("self_attn.v_proj.weight", Axis::Cols),
        ],
    ),
    (
        &["post_attention_layernorm.weight"],
        &[
            ("mlp.gate_proj.weight", Axis::Cols),
            ("mlp.up_proj.weight", Axis::Cols),
        ],
    ),
    (
        &["ln_1.weight", "ln_1.bias"],
        &[("attn.c_attn.weight", Axis::Rows)],
    ),
    (
        &["ln_2.weight", "ln_2.bias"],
        &[("mlp.c_fc.weight", Axis::Rows)],
    ),
];

fn scale_axis(t: &mut Tensor, axis: Axis, factor: &[f32], divide: bool) {
    let rows = t.shape.first().copied().unwrap_or(1).max(1);
    let cols = t.data.len() / rows;
    for r in 0..rows {
        for c in 0..cols {
            let f = match axis {
                Axis::Rows => factor[r],
                Axis::Cols => factor[c],
            };
            let v = &mut t.data[r * cols + c];
            *v = if divide { *v / f } else { *v * f };
        }
    }
}

/// Rescale between every norm and the layer that reads it: multiply the norm's gain (and bias) by a per-channel
/// factor in `[1/spread, spread]` and divide the reading matrices' input columns by it. The function is unchanged;
/// norm gains and matrix values are not. Llama-style (RMSNorm before attention and MLP, final norm before an
/// untied lm_head) and GPT-2 layouts. Returns the number of norms rescaled.
pub fn rescale_norms(ckpt: &mut Checkpoint, spread: f32, seed: u64) -> Result<usize> {
    let mut rng = Rng::new(seed);
    let log = spread.max(1.0).ln() as f64;
    let index: std::collections::HashMap<String, usize> = ckpt
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    // (norm tensors, reading tensors with their input axis)
    type Group = (Vec<usize>, Vec<(usize, Axis)>);
    let mut groups: Vec<Group> = Vec::new();
    for layer in 0..layer_count(ckpt) {
        let find = |rest: &str| {
            ckpt.tensors
                .iter()
                .position(|t| split_layer(&t.name).is_some_and(|(l, r)| l == layer && r == rest))
        };
        for (norms, readers) in NORM_READERS {
            let n: Vec<usize> = norms.iter().filter_map(|r| find(r)).collect();
            let m: Vec<(usize, Axis)> = readers
                .iter()
                .filter_map(|(r, a)| find(r).map(|i| (i, *a)))
                .collect();
            if !n.is_empty() && m.len() == readers.len() {
                groups.push((n, m));
            }
        }
    }
    if let (Some(&n), Some(&m)) = (index.get("model.norm.weight"), index.get("lm_head.weight")) {
        groups.push((vec![n], vec![(m, Axis::Cols)]));
    }
    if groups.is_empty() {
        bail!("no pre-norm → matrix pairs recognised (Llama and GPT-2 layouts are)");
    }
    for (norms, readers) in &groups {
        let width = ckpt.tensors[norms[0]].data.len();
        let factor: Vec<f32> = (0..width)
            .map(|_| ((rng.uniform() * 2.0 - 1.0) * log).exp() as f32)
            .collect();
        for &i in norms {
            if ckpt.tensors[i].data.len() != width {
                bail!("{}: norm width differs", ckpt.tensors[i].name);
            }
            scale_axis(&mut ckpt.tensors[i], Axis::Rows, &factor, false);
        }
        for &(i, axis) in readers {
            if axis_len(&ckpt.tensors[i], axis) != width {
                bail!(
                    "{}: input width differs from its norm's",
                    ckpt.tensors[i].name
                );
            }
            scale_axis(&mut ckpt.tensors[i], axis, &factor, true);
        }
    }
    Ok(groups.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{build, Family, Spec};

    fn matvec(t: &Tensor, x: &[f32], transposed: bool) -> Vec<f32> {
        let (rows, cols) = (t.shape[0], t.shape[1]);
        if transposed {
            (0..cols)
                .map(|c| (0..rows).map(|r| t.data[r * cols + c] * x[r]).sum())
                .collect()
        } else {
            (0..rows)
                .map(|r| (0..cols).map(|c| t.data[r * cols + c] * x[c]).sum())
                .collect()
        }
    }

    fn silu(v: f32) -> f32 {
        v / (1.0 + (-v).exp())
    }

    /// Llama block 0 without attention mixing: RMSNorm → q, and RMSNorm → gated MLP → down.
    fn llama_block(c: &Checkpoint, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let rms = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let norm = |name: &str| -> Vec<f32> {
            let g = &c.get(name).unwrap().data;
            x.iter().zip(g).map(|(v, g)| v / rms * g).collect()
        };
        let p = "model.layers.0";
        let q = matvec(
            c.get(&format!("{p}.self_attn.q_proj.weight")).unwrap(),
            &norm(&format!("{p}.input_layernorm.weight")),
            false,
        );
        let h = norm(&format!("{p}.post_attention_layernorm.weight"));
        let gate = matvec(
            c.get(&format!("{p}.mlp.gate_proj.weight")).unwrap(),
            &h,
            false,
        );
        let up = matvec(
            c.get(&format!("{p}.mlp.up_proj.weight")).unwrap(),
            &h,
            false,
        );
        let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| silu(*g) * u).collect();
        (
            q,
            matvec(
                c.get(&format!("{p}.mlp.down_proj.weight")).unwrap(),
                &act,
                false,
            ),
        )
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max).max(1e-6);
        a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale)
    }

    fn input(n: usize) -> Vec<f32> {
        let mut rng = Rng::new(99);
        (0..n).map(|_| rng.normal() as f32).collect()
    }

    #[test]
    fn ties_trims_elects_a_sign_and_averages_the_agreeing_entries() {
        let tensor = |data: Vec<f32>| Checkpoint {
            tensors: vec![Tensor::new("w", vec![2, 2], data)],
            files: Default::default(),
        };
        let base = tensor(vec![10.0; 4]);
        let m1 = tensor(vec![11.0, 8.0, 13.0, 6.0]); // task vector 1, -2, 3, -4
        let m2 = tensor(vec![14.0, 11.0, 8.0, 7.0]); // task vector 4, 1, -2, -3
        let merged = task_merge(&base, &[&m1, &m2], TaskMerge::Ties, 0.5, 1);
        // Trimmed to the two largest of each: (0, 0, 3, -4) and (4, 0, 0, -3); entry 3 elects "−".
        assert_eq!(merged.tensors[0].data, vec![14.0, 10.0, 13.0, 6.5]);
        let mean = task_merge(&base, &[&m1, &m2], TaskMerge::Dare, 1.0, 1);
        assert_eq!(mean.tensors[0].data, vec![12.5, 9.5, 10.5, 6.5]);
    }

    #[test]
    fn dare_drops_about_one_minus_density_and_rescales_the_rest() {
        let n = 10_000;
        let base = Checkpoint {
            tensors: vec![Tensor::new("w", vec![n], vec![0.0; n])],
            files: Default::default(),
        };
        let mut tuned = base.clone();
        tuned.tensors[0].data.iter_mut().for_each(|v| *v = 1.0);
        let merged = task_merge(&base, &[&tuned], TaskMerge::Dare, 0.25, 9);
        let kept: Vec<f32> = merged.tensors[0]
            .data
            .iter()
            .copied()
            .filter(|&v| v != 0.0)
            .collect();
        assert!(kept.iter().all(|&v| v == 4.0));
        assert!((2300..2700).contains(&kept.len()), "{}", kept.len());
    }

    #[test]
    fn permutation_and_rescaling_keep_the_function_but_move_the_weights() {
        let base = build(&Spec::small(Family::Llama, 7));
        let x = input(64);
        let (q0, y0) = llama_block(&base, &x);
        let mut p = base.clone();
        assert_eq!(permute_mlp(&mut p, 3).unwrap(), 4);
        let mut s = base.clone();
        assert_eq!(rescale_norms(&mut s, 2.0, 3).unwrap(), 9);
        for derived in [&p, &s] {
            let (q1, y1) = llama_block(derived, &x);
            assert!(close(&q0, &q1) && close(&y0, &y1));
        }
        let name = "model.layers.0.mlp.up_proj.weight";
        assert_ne!(base.get(name).unwrap().data, p.get(name).unwrap().data);
        let gain = "model.layers.0.input_layernorm.weight";
        assert_ne!(base.get(gain).unwrap().data, s.get(gain).unwrap().data);
    }

    #[test]
    fn gpt2_permutation_keeps_the_mlp() {
        let base = build(&Spec::small(Family::Gpt2, 7));
        let mut p = base.clone();
        permute_mlp(&mut p, 5).unwrap();
        let x = input(64);
        let mlp = |c: &Checkpoint| {
            let w = c.get("transformer.h.1.mlp.c_fc.weight").unwrap();
            let b = &c.get("transformer.h.1.mlp.c_fc.bias").unwrap().data;
            let h: Vec<f32> = matvec(w, &x, true)
                .iter()
                .zip(b)
                .map(|(v, b)| (v + b).max(0.0))
                .collect();
            matvec(
                c.get("transformer.h.1.mlp.c_proj.weight").unwrap(),
                &h,
                true,
            )
        };
        assert!(close(&mlp(&base), &mlp(&p)));
        let mut s = base.clone();
        assert_eq!(rescale_norms(&mut s, 2.0, 1).unwrap(), 8);
        assert!(rescale_norms(&mut build(&Spec::small(Family::Bert, 1)), 2.0, 1).is_err());
    }

    #[test]
    fn dropping_layers_renumbers_and_updates_the_config() {
        let base = build(&Spec::small(Family::Llama, 7));
        let mut d = base.clone();
        drop_layers(&mut d, &[1, 2]).unwrap();
        assert_eq!(layer_count(&d), 2);
        let name = "model.layers.1.mlp.up_proj.weight";
        assert_eq!(
            d.get(name).unwrap().data,
            base.get("model.layers.3.mlp.up_proj.weight").unwrap().data
        );
        let config: serde_json::Value = serde_json::from_slice(&d.files["config.json"]).unwrap();
        assert_eq!(config["num_hidden_layers"], 2);
        assert!(drop_layers(&mut d, &[0, 1]).is_err());
    }
}
