//! Tensor names → what the tensor is: stack, layer index and a canonical role.
//!
//! Weight signals compare like with like: layer 3's query projection of one model with layer 3's query
//! projection of another. Checkpoint families spell these differently (Llama `self_attn.q_proj`, BERT
//! `attention.self.query`, GPT-2 `attn.c_attn` fused and transposed, T5 `SelfAttention.q`, GPT-NeoX
//! `attention.query_key_value`, ...), so names are mapped to canonical roles where the naming is recognised,
//! and to the raw suffix after the layer index otherwise (which still matches within one naming scheme).

use provsearch_index::schema::{Stack, NO_LAYER};

/// What a tensor is used for by the signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Input token embedding (EAS, END).
    TokenEmbedding,
    /// Output projection onto the vocabulary.
    LmHead,
    /// A matrix (or stacked matrices) of weights: WVC and LEP.
    Matrix,
    /// A normalisation gain or bias: NLF.
    Norm,
    /// Any other vector (linear biases): sampled with the matrices.
    Vector,
    /// Not a weight (buffers such as `position_ids`, rotary caches) or scalar.
    Ignored,
}

/// The classification of one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRole {
    /// What the tensor is.
    pub kind: Kind,
    /// Stack (encoder/decoder/vision) it belongs to.
    pub stack: Stack,
    /// Layer index, or [`NO_LAYER`].
    pub layer: u16,
    /// Canonical role (`"attn_q"`, `"mlp_down"`, `"norm_attn"`, ...) or the raw lower-cased suffix.
    pub role: String,
}

const LAYER_WORDS: &[&str] = &["layers", "layer", "h", "block", "blocks", "blk"];

/// Exact names of input embeddings, most specific first (the reference's list, §8).
const EMBEDDING_NAMES: &[&str] = &[
    "model.embed_tokens.weight",
    "transformer.wte.weight",
    "embeddings.word_embeddings.weight",
    "gpt_neox.embed_in.weight",
    "transformer.word_embeddings.weight",
    "shared.weight",
    "model.shared.weight",
    "encoder.embed_tokens.weight",
    "model.encoder.embed_tokens.weight",
    "model.decoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "word_embeddings.weight",
    "wte.weight",
    "tok_embeddings.weight",
    "transformer.embd.wte.weight",
];

/// Last name components that mark an input token embedding.
const EMBEDDING_PARTS: &[&str] = &[
    "token_embd",
    "embed_tokens",
    "wte",
    "word_embeddings",
    "embed_in",
    "tok_embeddings",
    "shared",
];

/// Rank of a tensor as the model's input embedding: lower is better, `None` if it is not one.
pub fn embedding_rank(name: &str, shape: &[u64]) -> Option<usize> {
    if shape.len() != 2 {
        return None;
    }
    if let Some(i) = EMBEDDING_NAMES.iter().position(|n| *n == name) {
        return Some(i);
    }
    // Multimodal and prefixed checkpoints: `language_model.model.embed_tokens.weight`, `bert.embeddings...`.
    let lower = name.to_ascii_lowercase();
    if lower.contains("position") || lower.contains("token_type") {
        return None;
    }
    if EMBEDDING_NAMES
        .iter()
        .any(|n| lower.ends_with(&format!(".{n}")))
    {
        return Some(EMBEDDING_NAMES.len());
    }
    let parts: Vec<&str> = lower.split('.').collect();
    let owner = parts.len().checked_sub(2).and_then(|i| parts.get(i))?;
    if parts.last() == Some(&"weight") && EMBEDDING_PARTS.contains(owner) {
        let vision = parts.iter().any(|p| is_vision(p));
        if !vision {
            return Some(EMBEDDING_NAMES.len() + 1);
        }
    }
    None
}

/// Whether a tensor is an output projection onto the vocabulary.
pub fn is_lm_head(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "lm_head.weight"
        || lower.ends_with(".lm_head.weight")
        || lower == "embed_out.weight"
        || lower == "output.weight"
        || lower == "cls.predictions.decoder.weight"
}

fn is_vision(part: &str) -> bool {
    part.contains("vision") || part.contains("visual") || part == "vit" || part.contains("image")
}

fn stack_of(parts: &[&str]) -> Stack {
    if parts.iter().any(|p| is_vision(p)) {
        Stack::Vision
    } else if parts.contains(&"encoder") {
        Stack::Encoder
    } else if parts.contains(&"decoder") {
        Stack::Decoder
    } else {
        Stack::Main
    }
}

/// Position of the layer index component: the first number that follows a layer word.
fn layer_position(parts: &[&str]) -> Option<(usize, u16)> {
    parts.windows(2).enumerate().find_map(|(i, w)| {
        if LAYER_WORDS.contains(&w[0]) {
            w[1].parse::<u16>()
                .ok()
                .filter(|&l| l != NO_LAYER)
                .map(|l| (i + 1, l))
        } else {
            None
        }
    })
}

fn is_norm_part(p: &str) -> bool {
    p.contains("norm") || p.starts_with("ln_") || p == "ln" || p.starts_with("ln") && p.len() <= 4
}

/// Canonical role of a layer tensor from the name parts after the layer index (weight/bias suffix removed).
fn canonical_role(parts: &[&str], is_matrix: bool) -> Option<&'static str> {
    let last = *parts.last()?;
    let has = |w: &str| parts.contains(&w);
    let cross = parts.iter().any(|p| {
        matches!(
            *p,
            "encdecattention" | "encoder_attn" | "crossattention" | "cross_attn"
        )
    });
    let in_attn = parts
        .iter()
        .any(|p| p.contains("attn") || p.contains("attention"));
    if is_norm_part(last) {
        return Some(match last {
            "q_norm" | "q_layernorm" | "query_layernorm" => "norm_q",
            "k_norm" | "k_layernorm" | "key_layernorm" => "norm_k",
            "encoder_attn_layer_norm" | "cross_attn_layer_norm" => "norm_xattn",
            "input_layernorm"
            | "ln_1"
            | "attention_norm"
            | "attn_norm"
            | "norm_1"
            | "ln_attn"
            | "self_attn_layer_norm"
            | "sa_layer_norm"
            | "norm1" => "norm_attn",
            "post_attention_layernorm"
            | "ln_2"
            | "ffn_norm"
            | "norm_2"
            | "ln_mlp"
            | "final_layer_norm"
            | "output_layer_norm"
            | "norm2" => "norm_mlp",
            // BERT: attention.output.LayerNorm is the post-attention norm, output.LayerNorm the post-MLP one.
            "layernorm" if has("attention") => "norm_attn",
            "layernorm" if has("output") => "norm_mlp",
            _ => return None,
        });
    }
    if !is_matrix {
        return None;
    }
    let attn = |r: &'static str, x: &'static str| if cross { x } else { r };
    Some(match last {
        "q_proj" | "query" | "q" | "q_lin" | "wq" => attn("attn_q", "xattn_q"),
        "k_proj" | "key" | "k" | "k_lin" | "wk" => attn("attn_k", "xattn_k"),
        "v_proj" | "value" | "v" | "v_lin" | "wv" => attn("attn_v", "xattn_v"),
        "qkv_proj" | "query_key_value" | "c_attn" | "wqkv" | "w_pack" | "qkv" => {
            attn("attn_qkv", "xattn_qkv")
        }
        "o_proj" | "out_proj" | "o" | "out_lin" | "dense" | "c_proj" | "wo" if in_attn => {
            attn("attn_o", "xattn_o")
        }
        // llama.cpp names (GGUF of architectures without a Hugging Face name map).
        "attn_q" => "attn_q",
        "attn_k" => "attn_k",
        "attn_v" => "attn_v",
        "attn_qkv" => "attn_qkv",
        "attn_output" => "attn_o",
        "ffn_gate" => "mlp_gate",
        "ffn_up" => "mlp_up",
        "ffn_down" => "mlp_down",
        "gate_proj" | "w1" | "wi_0" => "mlp_gate",
        "up_proj" | "w3" | "wi_1" | "c_fc" | "fc1" | "fc_in" | "dense_h_to_4h" | "lin1" | "wi" => {
            "mlp_up"
        }
        "down_proj" | "w2" | "wo" | "c_proj" | "fc2" | "fc_out" | "dense_4h_to_h" | "lin2" => {
            "mlp_down"
        }
        "gate_up_proj" => "mlp_gate_up",
        "dense" if has("intermediate") => "mlp_up",
        "dense" if has("output") => "mlp_down",
        _ => return None,
    })
}

/// Classify a tensor by name and logical shape.
pub fn classify(name: &str, shape: &[u64]) -> TensorRole {
    let lower = name.to_ascii_lowercase();
    let all: Vec<&str> = lower.split('.').collect();
    let stack = stack_of(&all);
    let numel: u64 = shape.iter().product();
    let ignored = |role: &str| TensorRole {
        kind: Kind::Ignored,
        stack,
        layer: NO_LAYER,
        role: role.to_string(),
    };

    if shape.is_empty()
        || numel < 2
        || lower.contains("position_ids")
        || lower.contains("rotary_emb")
    {
        return ignored(&lower);
    }
    // Attention-mask buffers stored by old GPT-2 checkpoints.
    if lower.ends_with(".attn.bias") && shape.len() == 4 || lower.ends_with(".masked_bias") {
        return ignored(&lower);
    }
    if embedding_rank(name, shape).is_some() {
        return TensorRole {
            kind: Kind::TokenEmbedding,
            stack,
            layer: NO_LAYER,
            role: "embedding".into(),
        };
    }
    if is_lm_head(name) {
        return TensorRole {
            kind: Kind::LmHead,
            stack,
            layer: NO_LAYER,
            role: "lm_head".into(),
        };
    }

    let (param, body) = match all.split_last() {
        Some((last, rest)) if matches!(*last, "weight" | "bias" | "gamma" | "beta" | "scale") => {
            (*last, rest)
        }
        _ => ("", &all[..]),
    };
    let is_bias = matches!(param, "bias" | "beta");
    let is_matrix = shape.len() >= 2;
    let suffix_of = |parts: &[&str]| {
        let mut s = parts.join(".");
        if !param.is_empty() {
            s.push('.');
            s.push_str(param);
        }
        s
    };

    let (layer, after) = match layer_position(body) {
        Some((pos, layer)) => (layer, &body[pos + 1..]),
        None => (NO_LAYER, body),
    };
    let is_norm = after.iter().any(|p| is_norm_part(p)) && !is_matrix;
    let kind = if is_matrix {
        Kind::Matrix
    } else if is_norm {
        Kind::Norm
    } else {
        Kind::Vector
    };

    let role = if layer == NO_LAYER {
        match after.last() {
            Some(&("norm" | "ln_f" | "final_layernorm" | "final_layer_norm" | "norm_f"))
                if is_norm =>
            {
                if is_bias {
                    "norm_final_bias".to_string()
                } else {
                    "norm_final".to_string()
                }
            }
            // Outside the layers, the last two name parts identify a tensor whatever the model prefix
            // (`bert.embeddings.position_embeddings` ~ `distilbert.embeddings.position_embeddings`).
            _ => suffix_of(&after[after.len().saturating_sub(2)..]),
        }
    } else {
        // Mixture-of-experts: the expert index joins the role, so expert 3 pairs with expert 3.
        let expert = expert_index(name);
        // Biases of projections share their matrix's role (`attn_q_bias`).
        let base = match canonical_role(after, is_matrix || is_bias) {
            Some(r) if is_bias => format!("{r}_bias"),
            Some(r) => r.to_string(),
            None => suffix_of(after),
        };
        match expert {
            Some(e) => format!("{base}.expert{e}"),
            None => base,
        }
    };
    TensorRole {
        kind,
        stack,
        layer,
        role,
    }
}

/// The expert index of a mixture-of-experts tensor (`layers.3.mlp.experts.17.w1` → 17), if any.
pub fn expert_index(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('.').collect();
    parts
        .windows(2)
        .find_map(|w| (w[0] == "experts").then(|| w[1].parse().ok()).flatten())
}

/// Whether a model stores its linear layers transposed (GPT-2's Conv1D: `(in, out)`), detected from the fused
/// attention projection `c_attn` whose stored shape is `(hidden, 3 × hidden)`.
pub fn uses_conv1d(tensors: &[(&str, &[u64])]) -> bool {
    tensors.iter().any(|(name, shape)| {
        name.ends_with("attn.c_attn.weight") && shape.len() == 2 && shape[1] == 3 * shape[0]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, shape: &[u64]) -> (Kind, Stack, u16, String) {
        let r = classify(name, shape);
        (r.kind, r.stack, r.layer, r.role)
    }

    #[test]
    fn llama_names() {
        assert_eq!(
            role("model.layers.3.self_attn.q_proj.weight", &[64, 64]),
            (Kind::Matrix, Stack::Main, 3, "attn_q".into())
        );
        assert_eq!(
            role("model.layers.0.mlp.down_proj.weight", &[64, 128]).3,
            "mlp_down"
        );
        assert_eq!(
            role("model.layers.0.input_layernorm.weight", &[64]),
            (Kind::Norm, Stack::Main, 0, "norm_attn".into())
        );
        assert_eq!(
            role("model.norm.weight", &[64]),
            (Kind::Norm, Stack::Main, NO_LAYER, "norm_final".into())
        );
        assert_eq!(
            role("model.embed_tokens.weight", &[100, 64]).0,
            Kind::TokenEmbedding
        );
        assert_eq!(role("lm_head.weight", &[100, 64]).0, Kind::LmHead);
        assert_eq!(
            role("model.layers.1.self_attn.q_proj.bias", &[64]),
            (Kind::Vector, Stack::Main, 1, "attn_q_bias".into())
        );
    }

    #[test]
    fn llama_cpp_names() {
        assert_eq!(role("token_embd.weight", &[100, 8]).0, Kind::TokenEmbedding);
        assert_eq!(role("blk.3.attn_output.weight", &[8, 8]).3, "attn_o");
        assert_eq!(role("blk.3.ffn_down.weight", &[8, 32]).3, "mlp_down");
        assert_eq!(role("blk.3.attn_norm.weight", &[8]).3, "norm_attn");
        assert_eq!(role("blk.3.ffn_norm.weight", &[8]).3, "norm_mlp");
    }

    #[test]
    fn experts_and_prefixes() {
        let a = role("model.layers.2.mlp.experts.3.gate_proj.weight", &[8, 4]);
        assert_eq!((a.2, a.3.as_str()), (2, "mlp_gate.expert3"));
        assert_eq!(
            expert_index("model.layers.2.mlp.experts.3.gate_proj.weight"),
            Some(3)
        );
        assert_eq!(expert_index("model.layers.2.mlp.gate_proj.weight"), None);
        let bert = role("bert.embeddings.position_embeddings.weight", &[16, 8]).3;
        let distil = role("distilbert.embeddings.position_embeddings.weight", &[16, 8]).3;
        assert_eq!(bert, distil);
    }

    #[test]
    fn bert_names() {
        assert_eq!(
            role("encoder.layer.2.attention.self.query.weight", &[8, 8]).3,
            "attn_q"
        );
        assert_eq!(
            role("encoder.layer.2.attention.output.dense.weight", &[8, 8]).3,
            "attn_o"
        );
        assert_eq!(
            role("encoder.layer.2.intermediate.dense.weight", &[32, 8]).3,
            "mlp_up"
        );
        assert_eq!(
            role("encoder.layer.2.output.dense.weight", &[8, 32]).3,
            "mlp_down"
        );
        assert_eq!(
            role("encoder.layer.2.attention.output.LayerNorm.weight", &[8]).3,
            "norm_attn"
        );
        assert_eq!(
            role("encoder.layer.2.output.LayerNorm.bias", &[8]).3,
            "norm_mlp_bias"
        );
        assert_eq!(
            role("embeddings.word_embeddings.weight", &[30, 8]).0,
            Kind::TokenEmbedding
        );
        assert_eq!(
            role("embeddings.position_embeddings.weight", &[30, 8]).0,
            Kind::Matrix
        );
        assert_eq!(role("embeddings.position_ids", &[1, 512]).0, Kind::Ignored);
    }

    #[test]
    fn gpt2_neox_t5_names() {
        assert_eq!(role("h.0.attn.c_attn.weight", &[8, 24]).3, "attn_qkv");
        assert_eq!(
            role("transformer.h.0.attn.c_proj.weight", &[8, 8]).3,
            "attn_o"
        );
        assert_eq!(
            role("transformer.h.0.mlp.c_proj.weight", &[32, 8]).3,
            "mlp_down"
        );
        assert_eq!(role("transformer.h.0.ln_1.weight", &[8]).3, "norm_attn");
        assert_eq!(
            role(
                "gpt_neox.layers.1.attention.query_key_value.weight",
                &[24, 8]
            )
            .3,
            "attn_qkv"
        );
        assert_eq!(
            role("gpt_neox.layers.1.attention.dense.weight", &[8, 8]).3,
            "attn_o"
        );
        let t5 = role("decoder.block.4.layer.1.EncDecAttention.q.weight", &[8, 8]);
        assert_eq!((t5.1, t5.2, t5.3.as_str()), (Stack::Decoder, 4, "xattn_q"));
        assert_eq!(
            role("encoder.block.0.layer.1.DenseReluDense.wo.weight", &[8, 32]).3,
            "mlp_down"
        );
        assert_eq!(role("shared.weight", &[100, 8]).0, Kind::TokenEmbedding);
        assert!(uses_conv1d(&[("h.0.attn.c_attn.weight", &[8, 24])]));
        assert!(!uses_conv1d(&[(
            "transformer.h.0.attn.c_attn.weight",
            &[24, 8]
        )]));
    }
}
