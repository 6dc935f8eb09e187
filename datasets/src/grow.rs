//! Derivations that build a larger model out of existing weights, common on the Hub and each a linking mechanism
//! of the provenance constitution (structural modification, scaled transfer, merging):
//!
//! - [`stack_layers`]: depth up-scaling (SOLAR-10.7B stacks two copies of Mistral-7B's layers, the last 8 of the
//!   first copy and the first 8 of the second dropped) and mergekit's `passthrough` frankenmerges (layer ranges
//!   of several models concatenated). The result has more layers than any parent, some of them twice.
//! - [`upcycle_moe`]: sparse upcycling (Komatsuzaki et al.; Qwen1.5-MoE from Qwen-1.8B, mergekit-moe "clown
//!   car" merges): every dense MLP becomes the experts of a mixture-of-experts layer, each a copy of it, with a
//!   fresh router. Written in Mixtral's layout.
//!
//! Width growth (new residual channels copied from existing ones) lives with the other residual-stream edits in
//! [`crate::residual::grow_width`]. [`fuse_projections`] converts to a fused-projection layout (Phi-3), another
//! way a derivative stores its parent's weights as tensors of other names and shapes.

use crate::checkpoint::{Checkpoint, Tensor};
use crate::derive::{layer_count, set_config, split_layer, with_layer};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};

/// Build a model whose layer `i` is layer `layers[i].1` of `sources[layers[i].0]`. Every tensor outside the
/// layers (embeddings, final norm, head) and every non-weight file (config, tokenizer) come from `sources[0]`;
/// the layer count in config.json is updated. Fails on an empty layer list, a source index or a layer beyond
/// what the sources have, or sources whose non-layer tensors differ in shape from the first's.
pub fn stack_layers(sources: &[&Checkpoint], layers: &[(usize, usize)]) -> Result<Checkpoint> {
    let first = sources
        .first()
        .context("stacking needs a source checkpoint")?;
    if layers.is_empty() {
        bail!("stacking needs at least one layer");
    }
    for (i, &(s, l)) in layers.iter().enumerate() {
        let source = sources
            .get(s)
            .with_context(|| format!("layer {i}: no source checkpoint {s}"))?;
        let count = layer_count(source);
        if l >= count {
            bail!("layer {i}: source {s} has {count} layers, not layer {l}");
        }
    }
    for (s, source) in sources.iter().enumerate().skip(1) {
        for t in first
            .tensors
            .iter()
            .filter(|t| split_layer(&t.name).is_none())
        {
            if source.get(&t.name).is_some_and(|u| u.shape != t.shape) {
                bail!(
                    "{}: shape differs between source 0 and source {s}; stacked layers would not fit",
                    t.name
                );
            }
        }
    }
    let mut out = Checkpoint {
        tensors: first
            .tensors
            .iter()
            .filter(|t| split_layer(&t.name).is_none())
            .cloned()
            .collect(),
        files: first.files.clone(),
    };
    for (new, &(s, l)) in layers.iter().enumerate() {
        for t in &sources[s].tensors {
            if split_layer(&t.name).is_some_and(|(layer, _)| layer == l) {
                let mut copy = t.clone();
                copy.name = with_layer(&t.name, new);
                out.tensors.push(copy);
            }
        }
    }
    out.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    set_config(
        &mut out,
        &["num_hidden_layers", "n_layer", "num_layers"],
        layers.len().into(),
    )?;
    Ok(out)
}

/// The dense MLP of a Llama layer and the Mixtral expert tensor each becomes: `w1` gate, `w3` up, `w2` down.
const MLP_TO_EXPERT: &[(&str, &str)] = &[
    ("mlp.gate_proj.weight", "w1.weight"),
    ("mlp.up_proj.weight", "w3.weight"),
    ("mlp.down_proj.weight", "w2.weight"),
];

/// Sparse upcycling of a Llama checkpoint: each layer's MLP is replaced by `experts` copies of it as
/// `block_sparse_moe.experts.E.{w1,w3,w2}` (each copy with Gaussian noise of `noise` × the tensor's RMS, which
/// breaks the experts' symmetry as upcycling recipes do) and a router `block_sparse_moe.gate` drawn from
/// N(0, 0.02²). config.json becomes a Mixtral config routing each token to two experts. Returns the number of
/// layers upcycled.
pub fn upcycle_moe(ckpt: &mut Checkpoint, experts: usize, noise: f32, seed: u64) -> Result<usize> {
    if experts < 2 {
        bail!("upcycling needs at least 2 experts, not {experts}");
    }
    let mut rng = Rng::new(seed ^ 0x0e11_e4b5);
    let mut layers = 0;
    let mut kept = Vec::with_capacity(ckpt.tensors.len());
    let mut added = Vec::new();
    let mut hidden = None;
    for t in std::mem::take(&mut ckpt.tensors) {
        let dense = split_layer(&t.name).and_then(|(_, rest)| {
            MLP_TO_EXPERT
                .iter()
                .find(|(dense, _)| rest == *dense)
                .map(|&(dense, expert)| (dense, expert))
        });
        let Some((dense, expert_name)) = dense else {
            kept.push(t);
            continue;
        };
        // `model.layers.3.mlp.gate_proj.weight` → `model.layers.3.`
        let prefix = t.name[..t.name.len() - dense.len()].to_string();
        if expert_name == "w1.weight" {
            layers += 1;
            let width = *t.shape.last().context("MLP weight without shape")?;
            hidden = Some(width);
            let router = (0..experts * width)
                .map(|_| 0.02 * rng.normal() as f32)
                .collect();
            added.push(Tensor::new(
                format!("{prefix}block_sparse_moe.gate.weight"),
                vec![experts, width],
                router,
            ));
        }
        let rms = (t.data.iter().map(|v| v * v).sum::<f32>() / t.data.len().max(1) as f32).sqrt();
        for e in 0..experts {
            let mut copy = t.clone();
            copy.name = format!("{prefix}block_sparse_moe.experts.{e}.{expert_name}");
            copy.data
                .iter_mut()
                .for_each(|v| *v += noise * rms * rng.normal() as f32);
            added.push(copy);
        }
    }
    ckpt.tensors = kept;
    ckpt.tensors.extend(added);
    ckpt.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    if layers == 0 || hidden.is_none() {
        bail!("no Llama MLP (mlp.gate_proj/up_proj/down_proj) to upcycle");
    }
    retype_config(
        ckpt,
        "mixtral",
        "MixtralForCausalLM",
        &[
            ("num_local_experts", experts.into()),
            ("num_experts_per_tok", 2.into()),
        ],
    )?;
    Ok(layers)
}

/// Convert a Llama checkpoint to Phi-3's fused layout (`convert_llama_weights_to_phi3`-style, or the reverse
/// of the "llamafied" re-exports of Phi-3, InternLM2 and Baichuan): per layer, `q_proj`, `k_proj` and `v_proj`
/// stacked row-wise into `self_attn.qkv_proj`, `gate_proj` and `up_proj` into `mlp.gate_up_proj`; config.json
/// becomes a Phi-3 config. The same function, stored as other tensors of other shapes. Returns the number of
/// layers converted.
pub fn fuse_projections(ckpt: &mut Checkpoint) -> Result<usize> {
    const FUSED: &[(&[&str], &str)] = &[
        (
            &[
                "self_attn.q_proj.weight",
                "self_attn.k_proj.weight",
                "self_attn.v_proj.weight",
            ],
            "self_attn.qkv_proj.weight",
        ),
        (
            &["mlp.gate_proj.weight", "mlp.up_proj.weight"],
            "mlp.gate_up_proj.weight",
        ),
    ];
    let layers = layer_count(ckpt);
    for layer in 0..layers {
        for (parts, fused) in FUSED {
            let names: Vec<String> = parts
                .iter()
                .map(|p| format!("model.layers.{layer}.{p}"))
                .collect();
            let tensors: Vec<Tensor> = names
                .iter()
                .map(|n| {
                    ckpt.get(n)
                        .cloned()
                        .with_context(|| format!("no {n} to fuse"))
                })
                .collect::<Result<_>>()?;
            let cols = tensors[0].shape.last().copied().unwrap_or(0);
            if tensors
                .iter()
                .any(|t| t.shape.len() != 2 || t.shape[1] != cols)
            {
                bail!("model.layers.{layer}: {parts:?} differ in input width, cannot be fused");
            }
            let rows = tensors.iter().map(|t| t.shape[0]).sum();
            let data = tensors
                .iter()
                .flat_map(|t| t.data.iter().copied())
                .collect();
            ckpt.tensors.retain(|t| !names.contains(&t.name));
            ckpt.tensors.push(Tensor::new(
                format!("model.layers.{layer}.{fused}"),
                vec![rows, cols],
                data,
            ));
        }
    }
    if layers == 0 {
        bail!("no Llama layers to fuse");
    }
    ckpt.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    retype_config(ckpt, "phi3", "Phi3ForCausalLM", &[])?;
    Ok(layers)
}

/// Rewrite config.json as another architecture's: `model_type`, `architectures` and the `extra` fields.
fn retype_config(
    ckpt: &mut Checkpoint,
    model_type: &str,
    architecture: &str,
    extra: &[(&str, serde_json::Value)],
) -> Result<()> {
    let bytes = ckpt
        .files
        .get("config.json")
        .with_context(|| format!("a {model_type} layout needs config.json, and there is none"))?;
    let mut config: serde_json::Value =
        serde_json::from_slice(bytes).context("config.json is not JSON")?;
    let obj = config
        .as_object_mut()
        .context("config.json is not an object")?;
    obj.insert("model_type".into(), model_type.into());
    obj.insert("architectures".into(), serde_json::json!([architecture]));
    for (key, value) in extra {
        obj.insert((*key).to_string(), value.clone());
    }
    ckpt.files
        .insert("config.json".into(), serde_json::to_vec_pretty(&config)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{build, Family, Spec};

    fn config(c: &Checkpoint) -> serde_json::Value {
        serde_json::from_slice(&c.files["config.json"]).unwrap()
    }

    #[test]
    fn stacking_copies_each_layer_from_its_source_and_renumbers() {
        let a = build(&Spec::small(Family::Llama, 1));
        let b = build(&Spec::small(Family::Llama, 2));
        let n = layer_count(&a);
        assert!(n >= 3);
        let layers = [(0, 0), (0, 1), (1, 1), (1, n - 1)];
        let out = stack_layers(&[&a, &b], &layers).unwrap();
        assert_eq!(layer_count(&out), 4);
        assert_eq!(config(&out)["num_hidden_layers"], 4);
        for (new, &(s, l)) in layers.iter().enumerate() {
            let source = [&a, &b][s];
            let from: Vec<&Tensor> = source
                .tensors
                .iter()
                .filter(|t| split_layer(&t.name).is_some_and(|(x, _)| x == l))
                .collect();
            assert!(!from.is_empty());
            for t in from {
                let copy = out.get(&with_layer(&t.name, new)).unwrap();
                assert_eq!((&copy.shape, &copy.data), (&t.shape, &t.data), "{}", t.name);
            }
        }
        // Everything outside the layers is the first source's.
        for t in a.tensors.iter().filter(|t| split_layer(&t.name).is_none()) {
            assert_eq!(out.get(&t.name).unwrap().data, t.data);
        }
    }

    #[test]
    fn stacking_refuses_what_does_not_exist_or_fit() {
        let a = build(&Spec::small(Family::Llama, 1));
        let n = layer_count(&a);
        assert!(stack_layers(&[&a], &[]).is_err());
        assert!(stack_layers(&[&a], &[(1, 0)]).is_err());
        let e = stack_layers(&[&a], &[(0, n)]).unwrap_err().to_string();
        assert!(e.contains(&format!("{n} layers")), "{e}");
        let wide = build(&Spec {
            hidden: 2 * Spec::small(Family::Llama, 2).hidden,
            ..Spec::small(Family::Llama, 2)
        });
        let e = stack_layers(&[&a, &wide], &[(0, 0), (1, 0)]).unwrap_err();
        assert!(e.to_string().contains("shape differs"), "{e}");
    }

    #[test]
    fn upcycling_turns_each_mlp_into_noisy_expert_copies() {
        let dense = build(&Spec::small(Family::Llama, 4));
        let mut moe = dense.clone();
        let layers = upcycle_moe(&mut moe, 4, 0.01, 7).unwrap();
        assert_eq!(layers, layer_count(&dense));
        assert_eq!(config(&moe)["model_type"], "mixtral");
        assert_eq!(config(&moe)["num_local_experts"], 4);
        assert!(moe.tensors.iter().all(|t| !t.name.contains("mlp.")));
        let gate = dense.get("model.layers.1.mlp.gate_proj.weight").unwrap();
        for e in 0..4 {
            let w1 = moe
                .get(&format!(
                    "model.layers.1.block_sparse_moe.experts.{e}.w1.weight"
                ))
                .unwrap();
            assert_eq!(w1.shape, gate.shape);
            let diff: f32 = w1
                .data
                .iter()
                .zip(&gate.data)
                .map(|(x, y)| (x - y).abs())
                .sum();
            let size: f32 = gate.data.iter().map(|x| x.abs()).sum();
            assert!(
                diff > 0.0 && diff < 0.05 * size,
                "expert {e}: {diff} of {size}"
            );
        }
        let router = moe
            .get("model.layers.1.block_sparse_moe.gate.weight")
            .unwrap();
        assert_eq!(router.shape, vec![4, *gate.shape.last().unwrap()]);
        assert!(upcycle_moe(&mut build(&Spec::small(Family::Gpt2, 1)), 4, 0.01, 7).is_err());
        assert!(upcycle_moe(&mut dense.clone(), 1, 0.01, 7).is_err());
    }

    #[test]
    fn fusing_stacks_q_k_v_and_gate_up_row_wise() {
        let split = build(&Spec::small(Family::Llama, 5));
        let mut fused = split.clone();
        assert_eq!(fuse_projections(&mut fused).unwrap(), layer_count(&split));
        assert_eq!(config(&fused)["model_type"], "phi3");
        let p = "model.layers.2";
        let qkv = fused
            .get(&format!("{p}.self_attn.qkv_proj.weight"))
            .unwrap();
        let parts: Vec<&Tensor> = ["q_proj", "k_proj", "v_proj"]
            .iter()
            .map(|n| split.get(&format!("{p}.self_attn.{n}.weight")).unwrap())
            .collect();
        assert_eq!(
            qkv.shape[0],
            parts.iter().map(|t| t.shape[0]).sum::<usize>()
        );
        let joined: Vec<f32> = parts.iter().flat_map(|t| t.data.clone()).collect();
        assert_eq!(qkv.data, joined);
        assert!(fused.get(&format!("{p}.mlp.gate_up_proj.weight")).is_some());
        assert!(fused.get(&format!("{p}.mlp.gate_proj.weight")).is_none());
        assert!(
            fuse_projections(&mut fused.clone()).is_err(),
            "already fused"
        );
        assert!(fuse_projections(&mut build(&Spec::small(Family::Gpt2, 1))).is_err());
    }
}
