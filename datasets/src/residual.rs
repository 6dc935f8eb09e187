//! Edits of the residual stream's channels (the hidden size) across a whole checkpoint: a permutation, which
//! keeps the function exactly (every norm is per token over all channels, so it commutes with reordering
//! them), and width pruning, which keeps some channels, as NVIDIA's Minitron and Sheared-LLaMA do before
//! they heal the model by training. Either leaves no tensor of the parent's role and shape at the same
//! positions, so only evidence that finds channels by content pairs the result with its parent.

use crate::checkpoint::{Checkpoint, Tensor};
use crate::derive::{split_layer, Axis};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};

/// Tensors with a residual-stream axis, by their name after the layer index (layer tensors) or their whole
/// name's last components (the rest), and that axis: Llama `[out, in]` linears, GPT-2 Conv1D `[in, out]`,
/// BERT. Inputs read from the stream (columns of a Linear, rows of a Conv1D), outputs write to it (rows of a
/// Linear and their bias, columns of a Conv1D and their bias), norms and embeddings run over it.
const RESIDUAL_AXES: &[(&str, Axis)] = &[
    // Llama
    ("embed_tokens.weight", Axis::Cols),
    ("lm_head.weight", Axis::Cols),
    ("model.norm.weight", Axis::Rows),
    ("input_layernorm.weight", Axis::Rows),
    ("post_attention_layernorm.weight", Axis::Rows),
    ("self_attn.q_proj.weight", Axis::Cols),
    ("self_attn.k_proj.weight", Axis::Cols),
    ("self_attn.v_proj.weight", Axis::Cols),
    ("self_attn.o_proj.weight", Axis::Rows),
    ("mlp.gate_proj.weight", Axis::Cols),
    ("mlp.up_proj.weight", Axis::Cols),
    ("mlp.down_proj.weight", Axis::Rows),
    // GPT-2
    ("wte.weight", Axis::Cols),
    ("wpe.weight", Axis::Cols),
    ("ln_f.weight", Axis::Rows),
    ("ln_f.bias", Axis::Rows),
    ("ln_1.weight", Axis::Rows),
    ("ln_1.bias", Axis::Rows),
    ("ln_2.weight", Axis::Rows),
    ("ln_2.bias", Axis::Rows),
    ("attn.c_attn.weight", Axis::Rows),
    ("attn.c_proj.weight", Axis::Cols),
    ("attn.c_proj.bias", Axis::Rows),
    ("mlp.c_fc.weight", Axis::Rows),
    ("mlp.c_proj.weight", Axis::Cols),
    ("mlp.c_proj.bias", Axis::Rows),
    // BERT
    ("word_embeddings.weight", Axis::Cols),
    ("position_embeddings.weight", Axis::Cols),
    ("token_type_embeddings.weight", Axis::Cols),
    ("embeddings.LayerNorm.weight", Axis::Rows),
    ("embeddings.LayerNorm.bias", Axis::Rows),
    ("attention.self.query.weight", Axis::Cols),
    ("attention.self.key.weight", Axis::Cols),
    ("attention.self.value.weight", Axis::Cols),
    ("attention.output.dense.weight", Axis::Rows),
    ("attention.output.dense.bias", Axis::Rows),
    ("attention.output.LayerNorm.weight", Axis::Rows),
    ("attention.output.LayerNorm.bias", Axis::Rows),
    ("intermediate.dense.weight", Axis::Cols),
    ("output.dense.weight", Axis::Rows),
    ("output.dense.bias", Axis::Rows),
    ("output.LayerNorm.weight", Axis::Rows),
    ("output.LayerNorm.bias", Axis::Rows),
    ("pooler.dense.weight", Axis::Cols),
];

/// The residual axis of a tensor, if it has one.
fn residual_axis(t: &Tensor) -> Option<Axis> {
    let key = split_layer(&t.name).map_or(t.name.clone(), |(_, rest)| rest);
    RESIDUAL_AXES
        .iter()
        .find(|(suffix, _)| key == *suffix || key.ends_with(&format!(".{suffix}")))
        .map(|&(_, axis)| axis)
}

/// The checkpoint's config.json.
fn config(ckpt: &Checkpoint) -> Result<serde_json::Value> {
    let bytes = ckpt
        .files
        .get("config.json")
        .context("no config.json to read the hidden size from")?;
    serde_json::from_slice(bytes).context("config.json is not JSON")
}

/// The hidden size a config declares.
fn hidden_size(config: &serde_json::Value) -> Result<usize> {
    ["hidden_size", "n_embd", "d_model"]
        .iter()
        .find_map(|k| config.get(*k).and_then(serde_json::Value::as_u64))
        .map(|h| h as usize)
        .context("config.json has no hidden size")
}

/// Make entry `i` of `axis` the old entry `keep[i]` (dropping, reordering or repeating entries).
fn select_axis(t: &mut Tensor, axis: Axis, keep: &[usize]) {
    let rows = t.shape.first().copied().unwrap_or(1).max(1);
    let cols = t.data.len() / rows;
    let data = match axis {
        Axis::Rows => keep
            .iter()
            .flat_map(|&r| t.data[r * cols..(r + 1) * cols].iter().copied())
            .collect(),
        Axis::Cols => (0..rows)
            .flat_map(|r| keep.iter().map(move |&c| (r, c)))
            .map(|(r, c)| t.data[r * cols + c])
            .collect(),
    };
    match axis {
        Axis::Rows => t.shape[0] = keep.len(),
        Axis::Cols => {
            if let Some(last) = t.shape.last_mut() {
                *last = keep.len();
            }
        }
    }
    t.data = data;
}

/// Apply `keep` (channel indices into the `hidden` channels, see [`select_axis`]) to every tensor with a
/// residual axis. Fails when a tensor's residual axis is not the hidden size, or when no tensor has one.
fn select_channels(ckpt: &mut Checkpoint, hidden: usize, keep: &[usize]) -> Result<()> {
    let mut edited = 0;
    for t in ckpt.tensors.iter_mut().filter(|t| t.is_float()) {
        let Some(axis) = residual_axis(t) else {
            continue;
        };
        let len = match axis {
            Axis::Rows => t.shape.first().copied(),
            Axis::Cols => t.shape.last().copied(),
        };
        if len != Some(hidden) {
            bail!(
                "{}: residual axis has {len:?} entries, the hidden size is {hidden}",
                t.name
            );
        }
        select_axis(t, axis, keep);
        edited += 1;
    }
    if edited == 0 {
        bail!("no residual-stream tensors recognised (Llama, GPT-2 and BERT layouts are)");
    }
    Ok(())
}

/// Reorder the residual-stream channels of every tensor by one random permutation: the same function,
/// every stored position moved. Returns the permutation (new channel `i` is old channel `perm[i]`).
pub fn permute_residual(ckpt: &mut Checkpoint, seed: u64) -> Result<Vec<usize>> {
    let hidden = hidden_size(&config(ckpt)?)?;
    let perm = Rng::new(seed ^ 0x5e51_d0a1).permutation(hidden);
    select_channels(ckpt, hidden, &perm)?;
    Ok(perm)
}

/// Keep the `keep` most important residual channels of a Llama checkpoint, in their original order, and set
/// `hidden_size` (and `head_dim`, so that the heads keep their width). Importance of channel `c`: the RMS of
/// embedding column `c` times the mean |gain| of every RMSNorm at `c` (a weight-only stand-in for Minitron's
/// activation-based score). Returns the kept channels.
pub fn prune_width(ckpt: &mut Checkpoint, keep: usize) -> Result<Vec<usize>> {
    let config = config(ckpt)?;
    let hidden = hidden_size(&config)?;
    if keep == 0 || keep >= hidden {
        bail!("cannot keep {keep} of {hidden} channels");
    }
    let embedding = ckpt
        .get("model.embed_tokens.weight")
        .context("width pruning is implemented for Llama layouts (model.embed_tokens.weight)")?;
    let rows = embedding.shape[0].max(1);
    let mut importance: Vec<f64> = (0..hidden)
        .map(|c| {
            let sq: f64 = (0..rows)
                .map(|r| (embedding.data[r * hidden + c] as f64).powi(2))
                .sum();
            (sq / rows as f64).sqrt()
        })
        .collect();
    let gains: Vec<&Tensor> = ckpt
        .tensors
        .iter()
        .filter(|t| t.shape == [hidden] && t.name.ends_with("norm.weight"))
        .collect();
    if !gains.is_empty() {
        for (c, value) in importance.iter_mut().enumerate() {
            let mean =
                gains.iter().map(|g| g.data[c].abs() as f64).sum::<f64>() / gains.len() as f64;
            *value *= mean;
        }
    }
    let mut order: Vec<usize> = (0..hidden).collect();
    order.sort_by(|&a, &b| importance[b].total_cmp(&importance[a]).then(a.cmp(&b)));
    let mut kept = order[..keep].to_vec();
    kept.sort_unstable();

    set_channels(ckpt, config, hidden, &kept)?;
    Ok(kept)
}

/// Widen the residual stream of a Llama checkpoint to `width` channels, as scaled transfer into a larger model
/// does (Net2WiderNet, bert2BERT; microsoft/phi-2 was grown from phi-1.5's weights): channels `0..hidden` stay
/// where they are, and each new channel is a copy of an existing one drawn at random, in every tensor that
/// reads or writes the stream. Sets `hidden_size` and `head_dim` (the heads keep their width). Returns the
/// source channel of every new-model channel.
pub fn grow_width(ckpt: &mut Checkpoint, width: usize, seed: u64) -> Result<Vec<usize>> {
    let config = config(ckpt)?;
    let hidden = hidden_size(&config)?;
    if width <= hidden {
        bail!("cannot grow {hidden} channels to {width}");
    }
    ckpt.get("model.embed_tokens.weight")
        .context("width growth is implemented for Llama layouts (model.embed_tokens.weight)")?;
    let mut rng = Rng::new(seed ^ 0x6e07_3d1d);
    let sources: Vec<usize> = (0..hidden)
        .chain((hidden..width).map(|_| rng.below(hidden)))
        .collect();
    set_channels(ckpt, config, hidden, &sources)?;
    Ok(sources)
}

/// Make new-model channel `i` the old channel `channels[i]` in every residual-stream tensor, and write the new
/// width into config.json as `hidden_size`, with the old head width as `head_dim` (so q/k/v keep their rows).
fn set_channels(
    ckpt: &mut Checkpoint,
    mut config: serde_json::Value,
    hidden: usize,
    channels: &[usize],
) -> Result<()> {
    let heads = config
        .get("num_attention_heads")
        .and_then(serde_json::Value::as_u64)
        .context("config.json has no num_attention_heads")? as usize;
    let head_dim = config
        .get("head_dim")
        .and_then(serde_json::Value::as_u64)
        .map_or(hidden / heads.max(1), |d| d as usize);
    select_channels(ckpt, hidden, channels)?;
    if let Some(obj) = config.as_object_mut() {
        obj.insert("hidden_size".into(), channels.len().into());
        obj.insert("head_dim".into(), head_dim.into());
    }
    ckpt.files
        .insert("config.json".into(), serde_json::to_vec_pretty(&config)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{build, Family, Spec};

    fn embedding(c: &Checkpoint) -> &Tensor {
        c.tensors
            .iter()
            .find(|t| {
                [
                    "embed_tokens.weight",
                    "wte.weight",
                    "word_embeddings.weight",
                ]
                .iter()
                .any(|n| t.name.ends_with(n))
            })
            .unwrap()
    }

    #[test]
    fn residual_permutation_moves_every_channel_of_every_family() {
        for family in [Family::Llama, Family::Gpt2, Family::Bert] {
            let parent = build(&Spec::small(family, 3));
            let mut child = parent.clone();
            let perm = permute_residual(&mut child, 9).unwrap();
            assert_ne!(perm, (0..perm.len()).collect::<Vec<_>>());
            let (p, c) = (embedding(&parent), embedding(&child));
            let h = perm.len();
            for r in [0, 1, p.shape[0] - 1] {
                for (i, &from) in perm.iter().enumerate() {
                    assert_eq!(c.data[r * h + i], p.data[r * h + from], "{family:?}");
                }
            }
            // Every tensor with a residual axis was reordered, the others are untouched.
            for (a, b) in parent.tensors.iter().zip(&child.tensors) {
                assert_eq!(a.shape, b.shape, "{}", a.name);
                let mut sorted_a = a.data.clone();
                let mut sorted_b = b.data.clone();
                sorted_a.sort_by(f32::total_cmp);
                sorted_b.sort_by(f32::total_cmp);
                assert_eq!(sorted_a, sorted_b, "{}: same values", a.name);
                if residual_axis(a).is_none() {
                    assert_eq!(a.data, b.data, "{} has no residual axis", a.name);
                }
            }
        }
    }

    #[test]
    fn width_pruning_keeps_whole_parent_channels_and_updates_the_config() {
        let parent = build(&Spec::small(Family::Llama, 5));
        let hidden = hidden_size(&config(&parent).unwrap()).unwrap();
        let mut child = parent.clone();
        let kept = prune_width(&mut child, hidden * 3 / 4).unwrap();
        assert_eq!(kept.len(), hidden * 3 / 4);
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            hidden_size(&config(&child).unwrap()).unwrap(),
            hidden * 3 / 4
        );
        let (p, c) = (embedding(&parent), embedding(&child));
        let k = kept.len();
        for r in 0..p.shape[0] {
            for (i, &from) in kept.iter().enumerate() {
                assert_eq!(c.data[r * k + i], p.data[r * hidden + from]);
            }
        }
        let o = child
            .tensors
            .iter()
            .find(|t| t.name.ends_with("o_proj.weight"))
            .unwrap();
        assert_eq!(o.shape[0], k, "o_proj writes the pruned stream");
        assert!(prune_width(&mut child.clone(), 0).is_err());
        assert!(prune_width(&mut build(&Spec::small(Family::Gpt2, 5)), 8).is_err());
    }

    #[test]
    fn width_growth_keeps_the_parent_channels_and_copies_new_ones() {
        let parent = build(&Spec::small(Family::Llama, 6));
        let hidden = hidden_size(&config(&parent).unwrap()).unwrap();
        let mut child = parent.clone();
        let sources = grow_width(&mut child, hidden + hidden / 2, 3).unwrap();
        let width = sources.len();
        assert_eq!(width, hidden + hidden / 2);
        assert_eq!(sources[..hidden], (0..hidden).collect::<Vec<_>>()[..]);
        assert!(sources[hidden..].iter().all(|&s| s < hidden));
        let child_config = config(&child).unwrap();
        assert_eq!(hidden_size(&child_config).unwrap(), width);
        assert_eq!(
            child_config["head_dim"],
            hidden / 4,
            "heads keep their width"
        );
        let (p, c) = (embedding(&parent), embedding(&child));
        for r in 0..p.shape[0] {
            for (i, &from) in sources.iter().enumerate() {
                assert_eq!(c.data[r * width + i], p.data[r * hidden + from]);
            }
        }
        for t in &child.tensors {
            let old = parent.get(&t.name).unwrap();
            match residual_axis(t) {
                Some(Axis::Rows) => assert_eq!(t.shape[0], width, "{}", t.name),
                Some(Axis::Cols) => assert_eq!(t.shape.last(), Some(&width), "{}", t.name),
                None => assert_eq!(t.data, old.data, "{}", t.name),
            }
        }
        assert!(grow_width(&mut child.clone(), width, 3).is_err());
        assert!(grow_width(&mut build(&Spec::small(Family::Gpt2, 5)), 99, 3).is_err());
    }
}
