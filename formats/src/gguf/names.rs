//! llama.cpp tensor names → Hugging Face names, and which Q/K tensors carry llama.cpp's rotary row permutation.

/// Architectures whose GGUF tensors follow the Llama module naming of Hugging Face checkpoints
/// (`model.layers.N.self_attn.q_proj`, `mlp.gate_proj`, ...). Tensors of other architectures get no HF name.
const LLAMA_NAMED: &[&str] = &[
    "llama",
    "llama-embed",
    "mistral3",
    "granite",
    "smollm3",
    "arcee",
    "minicpm",
    "deci",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma2",
    "gemma3",
];

/// Architectures whose converter (`convert_hf_to_gguf.py`) applies `LlamaModel.permute` (or an identical copy)
/// to `q_proj`/`k_proj`, with whether it also permutes their biases. From the converter classes: LlamaModel and
/// its subclasses that keep `undo_permute = True` (granite, granitemoe, granitehybrid, arcee, smollm3,
/// llama-embed, mistral3's Ministral3), plus DeciModel, BailingMoeModel, DeepseekModel, ChameleonModel and LLaDA
/// (weights and biases), MiniCPM and OLMo (weights only). Llama 4, Apertus and Mistral-format checkpoints are
/// not permuted by the converter; Llama 4 and Apertus have their own architecture names so they never match,
/// while Mistral-format files are already in llama.cpp's order and share the "llama" name: for them, too, the
/// inverse permutation yields the Hugging Face order.
const PERMUTED: &[(&str, bool)] = &[
    ("llama", true),
    ("llama-embed", true),
    ("mistral3", true),
    ("granite", true),
    ("granitemoe", true),
    ("granitehybrid", true),
    ("arcee", true),
    ("smollm3", true),
    ("deci", true),
    ("bailingmoe", true),
    ("deepseek", true),
    ("chameleon", true),
    ("llada", true),
    ("minicpm", false),
    ("olmo", false),
];

/// Which projection a tensor is, for the rotary permutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QkRole {
    /// `blk.N.attn_q.*`.
    Query,
    /// `blk.N.attn_k.*`.
    Key,
}

/// If `name` is `blk.N.attn_q.weight` (or `.bias`, or `attn_k`) of an architecture whose converter permutes it,
/// its role and layer index.
pub(crate) fn permuted_role(arch: &str, name: &str) -> Option<(QkRole, usize)> {
    let &(_, biases) = PERMUTED.iter().find(|(a, _)| *a == arch)?;
    let (layer, rest) = split_block(name)?;
    let (role, suffix) = if let Some(s) = rest.strip_prefix("attn_q.") {
        (QkRole::Query, s)
    } else if let Some(s) = rest.strip_prefix("attn_k.") {
        (QkRole::Key, s)
    } else {
        return None;
    };
    match suffix {
        "weight" => Some((role, layer)),
        "bias" if biases => Some((role, layer)),
        _ => None,
    }
}

/// `blk.N.rest` → `(N, rest)`.
fn split_block(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("blk.")?;
    let (n, rest) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    Some((n.parse().ok()?, rest))
}

/// The Hugging Face name of a llama.cpp tensor name, for the architectures that use Llama module names;
/// `None` for anything else. The `.weight` / `.bias` suffix is kept.
pub fn hf_name(arch: &str, name: &str) -> Option<String> {
    if !LLAMA_NAMED.contains(&arch) {
        return None;
    }
    let (stem, suffix) = name.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let gemma2 = arch == "gemma2" || arch == "gemma3";
    let mapped = match stem {
        "token_embd" => "model.embed_tokens".to_string(),
        "output" => "lm_head".to_string(),
        "output_norm" => "model.norm".to_string(),
        _ => {
            let (layer, part) = split_block(name)?;
            let part = part.strip_suffix(suffix)?.strip_suffix('.')?;
            let hf = match part {
                "attn_norm" => "input_layernorm",
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "attn_q_norm" => "self_attn.q_norm",
                "attn_k_norm" => "self_attn.k_norm",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                // Gemma 2/3 have four norms per layer; llama.cpp's ffn_norm is their pre-feedforward norm.
                "ffn_norm" if gemma2 => "pre_feedforward_layernorm",
                "post_attention_norm" if gemma2 => "post_attention_layernorm",
                "post_ffw_norm" if gemma2 => "post_feedforward_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                _ => return None,
            };
            format!("model.layers.{layer}.{hf}")
        }
    };
    Some(format!("{mapped}.{suffix}"))
}

/// The stored (permuted) row that holds Hugging Face row `row` of a Q/K projection with `heads` heads of
/// `rows / heads` rows each. The converter's `permute` reshapes rows as `(heads, 2, head_dim/2)` and swaps the
/// last two axes, so HF row `h·hd + i·hd/2 + j` is stored at `h·hd + 2j + i`.
#[inline]
pub fn permuted_row(row: u64, head_dim: u64) -> u64 {
    let half = head_dim / 2;
    let (head, r) = (row / head_dim, row % head_dim);
    let (i, j) = (r / half, r % half);
    head * head_dim + 2 * j + i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_llama_names() {
        assert_eq!(
            hf_name("llama", "token_embd.weight").as_deref(),
            Some("model.embed_tokens.weight")
        );
        assert_eq!(
            hf_name("llama", "output.weight").as_deref(),
            Some("lm_head.weight")
        );
        assert_eq!(
            hf_name("llama", "blk.12.attn_q.bias").as_deref(),
            Some("model.layers.12.self_attn.q_proj.bias")
        );
        assert_eq!(
            hf_name("llama", "blk.0.ffn_norm.weight").as_deref(),
            Some("model.layers.0.post_attention_layernorm.weight")
        );
        assert_eq!(
            hf_name("gemma2", "blk.0.ffn_norm.weight").as_deref(),
            Some("model.layers.0.pre_feedforward_layernorm.weight")
        );
        assert_eq!(hf_name("llama", "blk.0.ffn_gate_exps.weight"), None);
        assert_eq!(hf_name("llama", "blk.01.attn_q.weight"), None);
        assert_eq!(hf_name("llama", "rope_freqs.weight"), None);
        assert_eq!(hf_name("gpt2", "token_embd.weight"), None);
    }

    #[test]
    fn finds_permuted_tensors() {
        assert_eq!(
            permuted_role("llama", "blk.3.attn_k.weight"),
            Some((QkRole::Key, 3))
        );
        assert_eq!(
            permuted_role("llama", "blk.3.attn_q.bias"),
            Some((QkRole::Query, 3))
        );
        assert_eq!(permuted_role("minicpm", "blk.3.attn_q.bias"), None);
        assert_eq!(permuted_role("qwen2", "blk.3.attn_q.weight"), None);
        assert_eq!(permuted_role("llama", "blk.3.attn_v.weight"), None);
    }

    #[test]
    fn permuted_row_inverts_the_converter() {
        // LlamaModel.permute on 2 heads of 6 rows stores rows [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11].
        let stored = [0u64, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11];
        for hf in 0..12 {
            assert_eq!(stored[permuted_row(hf, 6) as usize], hf);
        }
    }
}
