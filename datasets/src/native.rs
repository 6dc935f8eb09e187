//! A Llama-layout checkpoint rewritten in Mistral's native layout, as `mistral-inference` and Meta's reference
//! code store it: `consolidated.safetensors` names (`layers.N.attention.wq.weight`, `feed_forward.w1`,
//! `tok_embeddings`, `output`), `params.json` instead of config.json, and Q/K rows with each head's rotary
//! dimensions interleaved (the inverse of the permutation Hugging Face's conversion scripts apply).

use crate::checkpoint::{Checkpoint, Tensor};
use anyhow::{Context, Result};
use provsearch_formats::gguf::names::permuted_row;
use serde_json::{json, Value};

/// The native name of a Hugging Face Llama tensor, if it has one.
fn native_name(name: &str) -> Option<String> {
    let fixed = match name {
        "model.embed_tokens.weight" => Some("tok_embeddings.weight"),
        "model.norm.weight" => Some("norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = name.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let native = match part {
        "self_attn.q_proj.weight" => "attention.wq.weight",
        "self_attn.k_proj.weight" => "attention.wk.weight",
        "self_attn.v_proj.weight" => "attention.wv.weight",
        "self_attn.o_proj.weight" => "attention.wo.weight",
        "mlp.gate_proj.weight" => "feed_forward.w1.weight",
        "mlp.down_proj.weight" => "feed_forward.w2.weight",
        "mlp.up_proj.weight" => "feed_forward.w3.weight",
        "input_layernorm.weight" => "attention_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        _ => return None,
    };
    Some(format!("layers.{layer}.{native}"))
}

/// Each head's two rotary halves interleaved: HF row `r` goes to the row llama.cpp's converter (and Meta's and
/// Mistral's code) stores it in, [`permuted_row`].
fn interleave_heads(t: &Tensor, heads: usize) -> Vec<f32> {
    let (rows, cols) = (t.shape[0], t.shape.get(1).copied().unwrap_or(1));
    let head_dim = (rows / heads) as u64;
    let mut out = vec![0f32; t.data.len()];
    for (r, row) in t.data.chunks_exact(cols).enumerate() {
        let native = permuted_row(r as u64, head_dim) as usize;
        out[native * cols..(native + 1) * cols].copy_from_slice(row);
    }
    out
}

/// `ckpt` (a Llama-layout checkpoint with config.json) in the native layout. Tensors without a native name are
/// left out, as the conversion leaves them out.
pub fn mistral_native(ckpt: &Checkpoint) -> Result<Checkpoint> {
    let config: Value = serde_json::from_slice(
        ckpt.files
            .get("config.json")
            .context("the checkpoint has no config.json")?,
    )?;
    let int = |k: &str| {
        config[k]
            .as_u64()
            .with_context(|| format!("config.json has no {k}"))
    };
    let heads = int("num_attention_heads")? as usize;
    let kv_heads = config["num_key_value_heads"]
        .as_u64()
        .map_or(heads, |n| n as usize);
    let mut native = ckpt.clone();
    native.tensors = Vec::new();
    for t in &ckpt.tensors {
        let Some(name) = native_name(&t.name) else {
            continue;
        };
        let data = if name.ends_with("attention.wq.weight") {
            interleave_heads(t, heads)
        } else if name.ends_with("attention.wk.weight") {
            interleave_heads(t, kv_heads)
        } else {
            t.data.clone()
        };
        native
            .tensors
            .push(Tensor::new(name, t.shape.clone(), data));
    }
    let params = json!({
        "dim": int("hidden_size")?, "n_layers": int("num_hidden_layers")?, "n_heads": heads,
        "n_kv_heads": kv_heads, "hidden_dim": int("intermediate_size")?, "vocab_size": int("vocab_size")?,
        "head_dim": int("hidden_size")? as usize / heads, "norm_eps": 1e-5, "rope_theta": 10000.0
    });
    native.files.remove("config.json");
    native
        .files
        .insert("params.json".into(), serde_json::to_vec_pretty(&params)?);
    Ok(native)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_is_the_inverse_of_the_hf_permutation() {
        // One head of 6 rows: HF rows [a0 a1 a2 | b0 b1 b2] are stored natively as a0 b0 a1 b1 a2 b2.
        let t = Tensor::new("q", vec![6, 1], (0..6).map(|v| v as f32).collect());
        assert_eq!(interleave_heads(&t, 1), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
