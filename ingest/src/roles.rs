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
    // CLIP/SigLIP text towers: `text_model.embeddings.token_embedding.weight` (modeling_clip.py).
    "token_embedding",
];

/// Module names that hold nothing but the token embedding, so their own `.weight` is it: Mamba's
/// `backbone.embeddings.weight` (modeling_mamba.py, falcon-mamba too) and the original state-spaces checkpoints'
/// `backbone.embedding.weight`. Ranked after every other rule, since a model with a more specific name wins.
const BARE_EMBEDDING_PARTS: &[&str] = &["embeddings", "embedding"];

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
    if parts.last() != Some(&"weight") || parts.iter().any(|p| is_non_text(p)) {
        return None;
    }
    if EMBEDDING_PARTS.contains(owner) {
        return Some(EMBEDDING_NAMES.len() + 1);
    }
    // A bare `embeddings.weight` directly under the model root or its backbone (`backbone.`, `model.`, also
    // inside a multimodal wrapper: `language_model.backbone.embeddings.weight`), never inside a layer (where it
    // would be some other table).
    let parent = parts.len().checked_sub(3).and_then(|i| parts.get(i));
    let at_root =
        parent.is_none_or(|p| matches!(*p, "backbone" | "model" | "transformer" | "rwkv"));
    if BARE_EMBEDDING_PARTS.contains(owner) && layer_position(&parts).is_none() && at_root {
        return Some(EMBEDDING_NAMES.len() + 2);
    }
    None
}

/// Last two name components (module, parameter) of output projections onto the vocabulary, outside the layers:
/// `lm_head.weight`; GPT-NeoX `embed_out`; llama.cpp `output`; ChatGLM/GLM-4 remote code
/// `transformer.output_layer.weight` (modeling_chatglm.py); the masked-LM decoders of BERT and ALBERT
/// (`cls.predictions.decoder`, `predictions.decoder`), RoBERTa/XLM-R (`lm_head.decoder`), DistilBERT
/// (`vocab_projector`), ELECTRA (`generator_lm_head`); the Phi-1/Phi-2 remote-code head `lm_head.linear`.
const LM_HEAD_MODULES: &[&str] = &[
    "lm_head",
    "embed_out",
    "output",
    "output_layer",
    "vocab_projector",
    "generator_lm_head",
];

/// Whether a tensor is an output projection onto the vocabulary.
pub fn is_lm_head(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('.').collect();
    let Some((&"weight", rest)) = parts.split_last() else {
        return false;
    };
    let Some((&module, path)) = rest.split_last() else {
        return false;
    };
    if layer_position(rest).is_some() || rest.iter().any(|p| is_non_text(p)) {
        return false;
    }
    match module {
        // `output.weight` is llama.cpp's head only at the top level (BERT's `...output.dense` never ends so).
        "output" => path.is_empty(),
        "lm_head" => true,
        m if LM_HEAD_MODULES.contains(&m) => true,
        "decoder" => path
            .last()
            .is_some_and(|p| *p == "predictions" || *p == "lm_head"),
        "linear" => path.last() == Some(&"lm_head"),
        _ => false,
    }
}

/// A name component of a non-text tower (vision, audio), kept out of the text stack: Gemma 3 `vision_tower`,
/// Qwen2.5-VL `visual`, LLaVA `vision_tower`, Mllama `vision_model`, Qwen2-Audio `audio_tower`, Whisper-style
/// `speech_encoder`.
fn is_non_text(part: &str) -> bool {
    part.contains("vision")
        || part.contains("visual")
        || part == "vit"
        || part.contains("image")
        || part.contains("audio")
        || part.contains("speech")
}

fn stack_of(parts: &[&str]) -> Stack {
    if parts.iter().any(|p| is_non_text(p)) {
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

/// Tensors that are not learned weights but computed buffers some checkpoints store, or parameters whose values
/// are fixed by the architecture's initialisation. They are identical in independently trained models of the same
/// shape, so as signals they would read as shared lineage.
///
/// - rotary tables: `rotary_emb.inv_freq` (old Llama/GPT-NeoX), ChatGLM's `transformer.rotary_pos_emb.inv_freq`
///   (modeling_chatglm.py), any `inv_freq`, `cos_cached`/`sin_cached`;
/// - `position_ids` and fairseq's `_float_tensor`;
/// - causal-mask buffers: GPT-2/GPT-J `attn.bias` and GPT-Neo `attn.attention.bias` (shape `(1, 1, n, n)`),
///   GPT-NeoX `attention.bias`, CodeGen `attn.causal_mask`, `masked_bias` (a real bias is never 3-D or more);
/// - fairseq-style sinusoidal position tables stored as `embed_positions.weights` (M2M100/NLLB,
///   modeling_m2m_100.py `M2M100SinusoidalPositionalEmbedding.weights`);
/// - Mamba's `mixer.A_log` (modeling_mamba.py): initialised to `log(1..=state_size)` in every row, a pattern
///   training keeps, so two unrelated Mamba models correlate on it (llama.cpp stores it as `ssm_a`);
/// - llama.cpp's config-derived rotary tables `rope_freqs`, `rope_factors_long`, `rope_factors_short`.
fn is_buffer(parts: &[&str], shape: &[u64]) -> bool {
    let last = parts.last().copied().unwrap_or("");
    let ends = |module: &str, param: &str| {
        last == param && parts.len() >= 2 && parts[parts.len() - 2] == module
    };
    parts.iter().any(|p| {
        matches!(
            *p,
            "position_ids"
                | "rotary_emb"
                | "rotary_pos_emb"
                | "inv_freq"
                | "cos_cached"
                | "sin_cached"
                | "causal_mask"
                | "masked_bias"
                | "_float_tensor"
                // llama.cpp: rotary scaling tables computed from the config (Llama 3.1 `rope_freqs`, Phi-3
                // `rope_factors_long/short`) and Mamba's `ssm_a` = -exp(A_log).
                | "rope_freqs"
                | "rope_factors_long"
                | "rope_factors_short"
                | "ssm_a"
        )
    }) || (last == "bias" && shape.len() >= 3)
        || ends("embed_positions", "weights")
        || last == "a_log"
}

/// Whether rows of a position table are a fixed sinusoidal table rather than learned weights: every pair of
/// columns `(j, d/2 + j)` holds `(sin θ, cos θ)`, so `sin² + cos² = 1` (all-zero padding rows are skipped).
/// Marian and Pegasus store such tables as ordinary `embed_positions.weight` parameters
/// (modeling_marian.py `MarianSinusoidalPositionalEmbedding`), under the same name as BART's and OPT's learned
/// tables, so only the values tell them apart; they are identical in every model of the same shape and must not
/// count as evidence. Meant for the first few rows of a tensor whose role names positions.
pub fn is_sinusoidal_table(rows: &[&[f32]]) -> bool {
    let mut checked = 0;
    for row in rows {
        if row.iter().all(|v| *v == 0.0) {
            continue;
        }
        if row.len() < 2 || row.len() % 2 != 0 {
            return false;
        }
        let (sin, cos) = row.split_at(row.len() / 2);
        // bf16 storage keeps about 3 significant digits; a NaN fails the comparison.
        if sin
            .iter()
            .zip(cos)
            .any(|(s, c)| !(s * s + c * c - 1.0).abs().lt(&0.02))
        {
            return false;
        }
        checked += 1;
    }
    checked > 0
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
            "q_norm" | "q_layernorm" | "query_layernorm" | "attn_q_norm" => "norm_q",
            "k_norm" | "k_layernorm" | "key_layernorm" | "attn_k_norm" => "norm_k",
            // DeepSeek MLA's norms of the compressed query and key-value (llama.cpp: attn_q_a_norm, ...).
            "q_a_layernorm" | "attn_q_a_norm" => "norm_q_a",
            "kv_a_layernorm" | "attn_kv_a_norm" => "norm_kv_a",
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
        // DeBERTa-v2/v3 (modeling_deberta_v2.py): `attention.self.query_proj`, `key_proj`, `value_proj`.
        "q_proj" | "query" | "q" | "q_lin" | "wq" | "query_proj" => attn("attn_q", "xattn_q"),
        "k_proj" | "key" | "k" | "k_lin" | "wk" | "key_proj" => attn("attn_k", "xattn_k"),
        "v_proj" | "value" | "v" | "v_lin" | "wv" | "value_proj" => attn("attn_v", "xattn_v"),
        // DeepSeek-V2/V3 multi-head latent attention (modeling_deepseek_v2.py), named like llama.cpp's
        // `attn_q_a`, `attn_q_b`, `attn_kv_a_mqa`, `attn_kv_b` so both spellings meet.
        "q_a_proj" | "attn_q_a" => "attn_q_a",
        "q_b_proj" | "attn_q_b" => "attn_q_b",
        "kv_a_proj_with_mqa" | "attn_kv_a_mqa" => "attn_kv_a_mqa",
        "kv_b_proj" | "attn_kv_b" => "attn_kv_b",
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

    if shape.is_empty() || numel < 2 || is_buffer(&all, shape) {
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
        // Mixture-of-experts: the expert index joins the role, so expert 3 pairs with expert 3. Shared experts
        // (Qwen2-MoE `mlp.shared_expert`, DeepSeek/GLM-4.5 `mlp.shared_experts`) and experts stored fused in one
        // tensor (`mlp.experts.gate_up_proj`, shape (experts, 2·ffn, hidden)) keep their own roles, apart from
        // a dense MLP's and from a routed expert's.
        let expert = expert_index(name);
        let shared = after.iter().any(|p| p.starts_with("shared_expert"));
        let fused_experts = expert.is_none() && after.contains(&"experts");
        // Biases of projections share their matrix's role (`attn_q_bias`).
        let base = match canonical_role(after, is_matrix || is_bias) {
            Some(r) if is_bias => format!("{r}_bias"),
            Some(r) => r.to_string(),
            None => suffix_of(after),
        };
        match expert {
            Some(e) => format!("{base}.expert{e}"),
            None if shared && !base.contains("shared_expert") => format!("{base}.shared"),
            None if fused_experts && !base.contains("experts") => format!("{base}.experts"),
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

/// Layers that are multi-token-prediction modules rather than decoder layers: DeepSeek-V3 and GLM-4.5
/// (models/glm4_moe, `num_nextn_predict_layers`) store them after the last decoder layer as
/// `model.layers.{num_hidden_layers}.{eh_proj, enorm, hnorm, shared_head.*}` beside ordinary attention and MLP
/// tensors. Many fine-tuned or quantized copies drop them, which changes the layer count and sends the layer
/// alignment into its best-match search; a caller can leave these layers out (or give them their own stack).
pub fn mtp_layers(tensors: &[(&str, &[u64])]) -> Vec<u16> {
    let mut layers: Vec<u16> = tensors
        .iter()
        .filter_map(|(name, _)| {
            let lower = name.to_ascii_lowercase();
            let parts: Vec<&str> = lower.split('.').collect();
            let (pos, layer) = layer_position(&parts)?;
            matches!(
                parts.get(pos + 1).copied(),
                Some("eh_proj" | "enorm" | "hnorm" | "shared_head")
            )
            .then_some(layer)
        })
        .collect();
    layers.sort_unstable();
    layers.dedup();
    layers
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

    /// Classify a whole checkpoint's names and fail on any two tensors that land on one (stack, layer, role)
    /// key, with the stacks merged as `signals::plan` merges them (one text stack unless a model has both an
    /// encoder and a decoder). Returns the roles by name.
    fn checkpoint(names: &[(&str, &[u64])]) -> Vec<(String, TensorRole)> {
        let roles: Vec<(String, TensorRole)> = names
            .iter()
            .map(|(n, s)| (n.to_string(), classify(n, s)))
            .collect();
        let text_stacks: std::collections::BTreeSet<Stack> = roles
            .iter()
            .filter(|(_, r)| r.layer != NO_LAYER && r.stack != Stack::Vision)
            .map(|(_, r)| r.stack)
            .collect();
        let mut seen = std::collections::HashMap::new();
        for (name, r) in &roles {
            if matches!(r.kind, Kind::Ignored | Kind::TokenEmbedding | Kind::LmHead) {
                continue;
            }
            let stack = if r.stack != Stack::Vision && text_stacks.len() <= 1 {
                Stack::Main
            } else {
                r.stack
            };
            if let Some(other) = seen.insert((stack, r.layer, r.role.clone()), name.clone()) {
                panic!(
                    "{other} and {name} collide on {:?}",
                    (stack, r.layer, &r.role)
                );
            }
        }
        roles
    }

    fn get<'a>(roles: &'a [(String, TensorRole)], name: &str) -> (Kind, Stack, u16, &'a str) {
        let r = &roles
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not in the list"))
            .1;
        (r.kind, r.stack, r.layer, r.role.as_str())
    }

    /// The embedding `signals::plan` would pick: the best-ranked token embedding.
    fn embedding_of(names: &[(&str, &[u64])]) -> Option<String> {
        names
            .iter()
            .filter_map(|(n, s)| embedding_rank(n, s).map(|r| (r, n.to_string())))
            .min()
            .map(|(_, n)| n)
    }

    const M: &[u64] = &[16, 16];
    const V: &[u64] = &[16];
    const E: &[u64] = &[100, 16];

    /// Mamba / falcon-mamba-7b, names from transformers models/mamba/modeling_mamba.py (MambaModel:
    /// `embeddings`, `layers.N.{norm, mixer.{A_log, D, conv1d, in_proj, x_proj, dt_proj, out_proj}}`, `norm_f`).
    #[test]
    fn mamba_names() {
        let names: &[(&str, &[u64])] = &[
            ("backbone.embeddings.weight", E),
            ("backbone.layers.0.norm.weight", V),
            ("backbone.layers.0.mixer.A_log", &[32, 16]),
            ("backbone.layers.0.mixer.D", &[32]),
            ("backbone.layers.0.mixer.conv1d.weight", &[32, 1, 4]),
            ("backbone.layers.0.mixer.conv1d.bias", &[32]),
            ("backbone.layers.0.mixer.in_proj.weight", &[64, 16]),
            ("backbone.layers.0.mixer.x_proj.weight", &[33, 32]),
            ("backbone.layers.0.mixer.dt_proj.weight", &[32, 1]),
            ("backbone.layers.0.mixer.dt_proj.bias", &[32]),
            ("backbone.layers.0.mixer.out_proj.weight", &[16, 32]),
            ("backbone.norm_f.weight", V),
            ("lm_head.weight", E),
        ];
        let roles = checkpoint(names);
        assert_eq!(
            embedding_of(names).as_deref(),
            Some("backbone.embeddings.weight")
        );
        assert_eq!(
            get(&roles, "backbone.embeddings.weight").0,
            Kind::TokenEmbedding
        );
        assert_eq!(get(&roles, "lm_head.weight").0, Kind::LmHead);
        // A_log is log(1..=state) in every row at initialisation: not evidence.
        assert_eq!(
            get(&roles, "backbone.layers.0.mixer.A_log").0,
            Kind::Ignored
        );
        assert_eq!(
            get(&roles, "backbone.layers.0.mixer.in_proj.weight"),
            (Kind::Matrix, Stack::Main, 0, "mixer.in_proj.weight")
        );
        // Not an attention output: Mamba has no attention.
        assert_eq!(
            get(&roles, "backbone.layers.0.mixer.out_proj.weight").3,
            "mixer.out_proj.weight"
        );
        assert_eq!(
            get(&roles, "backbone.layers.0.norm.weight"),
            (Kind::Norm, Stack::Main, 0, "norm.weight")
        );
        assert_eq!(get(&roles, "backbone.norm_f.weight").3, "norm_final");
        // The original state-spaces checkpoints (mamba_ssm) call it `backbone.embedding.weight`.
        assert!(embedding_rank("backbone.embedding.weight", E).is_some());
        // Nemotron-H-style multimodal wrappers keep the Mamba backbone under `language_model.`.
        assert!(embedding_rank("language_model.backbone.embeddings.weight", E).is_some());
        assert!(embedding_rank("model.decoder.embeddings.weight", E).is_none());
        // A bare `embeddings.weight` inside a layer or a vision tower is not the token embedding.
        assert!(embedding_rank("model.layers.3.embeddings.weight", E).is_none());
        assert!(embedding_rank("vision_model.embeddings.weight", E).is_none());
    }

    /// ChatGLM2/3 and GLM-4 remote code (THUDM modeling_chatglm.py: `transformer.embedding.word_embeddings`,
    /// `transformer.encoder.layers.N.self_attention.query_key_value`, `transformer.output_layer`,
    /// `transformer.rotary_pos_emb.inv_freq`).
    #[test]
    fn chatglm_names() {
        let names: &[(&str, &[u64])] = &[
            ("transformer.embedding.word_embeddings.weight", E),
            ("transformer.rotary_pos_emb.inv_freq", &[32]),
            ("transformer.encoder.layers.0.input_layernorm.weight", V),
            (
                "transformer.encoder.layers.0.self_attention.query_key_value.weight",
                &[24, 16],
            ),
            (
                "transformer.encoder.layers.0.self_attention.query_key_value.bias",
                &[24],
            ),
            (
                "transformer.encoder.layers.0.self_attention.dense.weight",
                M,
            ),
            (
                "transformer.encoder.layers.0.post_attention_layernorm.weight",
                V,
            ),
            (
                "transformer.encoder.layers.0.mlp.dense_h_to_4h.weight",
                &[64, 16],
            ),
            (
                "transformer.encoder.layers.0.mlp.dense_4h_to_h.weight",
                &[16, 32],
            ),
            ("transformer.encoder.final_layernorm.weight", V),
            ("transformer.output_layer.weight", E),
        ];
        let roles = checkpoint(names);
        assert_eq!(
            embedding_of(names).as_deref(),
            Some("transformer.embedding.word_embeddings.weight")
        );
        assert_eq!(
            get(&roles, "transformer.output_layer.weight").0,
            Kind::LmHead
        );
        assert_eq!(
            get(&roles, "transformer.rotary_pos_emb.inv_freq").0,
            Kind::Ignored
        );
        let l = "transformer.encoder.layers.0";
        assert_eq!(
            get(
                &roles,
                &format!("{l}.self_attention.query_key_value.weight")
            )
            .3,
            "attn_qkv"
        );
        assert_eq!(
            get(&roles, &format!("{l}.self_attention.query_key_value.bias")).3,
            "attn_qkv_bias"
        );
        assert_eq!(
            get(&roles, &format!("{l}.self_attention.dense.weight")).3,
            "attn_o"
        );
        assert_eq!(
            get(&roles, &format!("{l}.mlp.dense_h_to_4h.weight")).3,
            "mlp_up"
        );
        assert_eq!(
            get(&roles, &format!("{l}.mlp.dense_4h_to_h.weight")).3,
            "mlp_down"
        );
        assert_eq!(
            get(&roles, &format!("{l}.input_layernorm.weight")).3,
            "norm_attn"
        );
        assert_eq!(
            get(&roles, &format!("{l}.post_attention_layernorm.weight")).3,
            "norm_mlp"
        );
        assert_eq!(
            get(&roles, "transformer.encoder.final_layernorm.weight").3,
            "norm_final"
        );
    }

    /// Gemma 3 multimodal (models/gemma3/modeling_gemma3.py): Hub checkpoints store `language_model.model.*`,
    /// `vision_tower.vision_model.*` and `multi_modal_projector.*`; transformers >= 4.52 names the same modules
    /// `model.language_model.*` and `model.vision_tower.*`. Both must give the same roles, and the SigLIP tower
    /// (modeling_siglip.py) must stay out of the text stack and never be taken for the token embedding.
    #[test]
    fn gemma3_multimodal_names() {
        for (text, vision) in [
            ("language_model.model", "vision_tower.vision_model"),
            ("model.language_model", "model.vision_tower.vision_model"),
        ] {
            let n = |s: &str| format!("{text}.{s}");
            let v = |s: &str| format!("{vision}.{s}");
            let owned: Vec<(String, Vec<u64>)> = vec![
                (v("embeddings.patch_embedding.weight"), vec![16, 3, 14, 14]),
                (v("embeddings.patch_embedding.bias"), vec![16]),
                (v("embeddings.position_embedding.weight"), vec![64, 16]),
                (v("encoder.layers.0.self_attn.q_proj.weight"), M.to_vec()),
                (v("encoder.layers.0.self_attn.out_proj.weight"), M.to_vec()),
                (v("encoder.layers.0.layer_norm1.weight"), V.to_vec()),
                (v("encoder.layers.0.mlp.fc1.weight"), vec![32, 16]),
                (v("post_layernorm.weight"), V.to_vec()),
                (
                    "multi_modal_projector.mm_input_projection_weight".into(),
                    vec![16, 16],
                ),
                (
                    "multi_modal_projector.mm_soft_emb_norm.weight".into(),
                    V.to_vec(),
                ),
                (n("embed_tokens.weight"), E.to_vec()),
                (n("layers.0.self_attn.q_proj.weight"), M.to_vec()),
                (n("layers.0.self_attn.o_proj.weight"), M.to_vec()),
                (n("layers.0.self_attn.q_norm.weight"), vec![8]),
                (n("layers.0.self_attn.k_norm.weight"), vec![8]),
                (n("layers.0.input_layernorm.weight"), V.to_vec()),
                (n("layers.0.post_attention_layernorm.weight"), V.to_vec()),
                (n("layers.0.pre_feedforward_layernorm.weight"), V.to_vec()),
                (n("layers.0.post_feedforward_layernorm.weight"), V.to_vec()),
                (n("layers.0.mlp.gate_proj.weight"), vec![32, 16]),
                (n("layers.0.mlp.down_proj.weight"), vec![16, 32]),
                (n("norm.weight"), V.to_vec()),
            ];
            let names: Vec<(&str, &[u64])> = owned
                .iter()
                .map(|(n, s)| (n.as_str(), s.as_slice()))
                .collect();
            let roles = checkpoint(&names);
            assert_eq!(embedding_of(&names), Some(n("embed_tokens.weight")));
            assert_eq!(
                get(&roles, &n("layers.0.self_attn.q_proj.weight")),
                (Kind::Matrix, Stack::Main, 0, "attn_q")
            );
            assert_eq!(
                get(&roles, &n("layers.0.self_attn.q_norm.weight")).3,
                "norm_q"
            );
            assert_eq!(get(&roles, &n("norm.weight")).3, "norm_final");
            let q = get(&roles, &v("encoder.layers.0.self_attn.q_proj.weight"));
            assert_eq!((q.1, q.2, q.3), (Stack::Vision, 0, "attn_q"));
            assert_eq!(
                get(&roles, &v("encoder.layers.0.self_attn.out_proj.weight")).3,
                "attn_o"
            );
            assert_eq!(
                get(&roles, &v("embeddings.position_embedding.weight")).1,
                Stack::Vision
            );
        }
        assert!(is_lm_head("language_model.lm_head.weight"));
    }

    /// Qwen2.5-VL (models/qwen2_5_vl/modeling_qwen2_5_vl.py): Hub checkpoints `model.layers.*` and `visual.*`;
    /// newer saves `model.language_model.*` and `model.visual.*`.
    #[test]
    fn qwen2_5_vl_names() {
        let names: &[(&str, &[u64])] = &[
            ("visual.patch_embed.proj.weight", &[16, 3, 2, 14, 14]),
            ("visual.blocks.0.norm1.weight", V),
            ("visual.blocks.0.attn.qkv.weight", &[48, 16]),
            ("visual.blocks.0.attn.proj.weight", M),
            ("visual.blocks.0.mlp.gate_proj.weight", &[32, 16]),
            ("visual.merger.ln_q.weight", V),
            ("visual.merger.mlp.0.weight", &[64, 64]),
            ("model.embed_tokens.weight", E),
            ("model.layers.0.self_attn.q_proj.weight", M),
            ("model.layers.0.self_attn.q_proj.bias", V),
            ("model.layers.0.mlp.gate_proj.weight", &[32, 16]),
            ("model.norm.weight", V),
            ("lm_head.weight", E),
            ("model.visual.blocks.1.attn.qkv.weight", &[48, 16]),
            ("model.language_model.layers.1.self_attn.q_proj.weight", M),
            (
                "model.language_model.layers.1.mlp.gate_proj.weight",
                &[32, 16],
            ),
        ];
        let roles = checkpoint(names);
        assert_eq!(
            embedding_of(names).as_deref(),
            Some("model.embed_tokens.weight")
        );
        let qkv = get(&roles, "visual.blocks.0.attn.qkv.weight");
        assert_eq!((qkv.1, qkv.2, qkv.3), (Stack::Vision, 0, "attn_qkv"));
        assert_eq!(
            get(&roles, "visual.blocks.0.mlp.gate_proj.weight").1,
            Stack::Vision
        );
        assert_eq!(
            get(&roles, "model.visual.blocks.1.attn.qkv.weight").1,
            Stack::Vision
        );
        assert_eq!(
            get(
                &roles,
                "model.language_model.layers.1.self_attn.q_proj.weight"
            ),
            (Kind::Matrix, Stack::Main, 1, "attn_q")
        );
        assert!(embedding_rank("model.language_model.embed_tokens.weight", E).is_some());
    }

    /// Mixture-of-experts: Qwen2-MoE (`mlp.shared_expert`, `mlp.shared_expert_gate`), Qwen3-MoE /
    /// Qwen3-Coder-30B-A3B (`mlp.gate`, `mlp.experts.N`), DeepSeek-V2 and GLM-4.5 (`mlp.shared_experts`,
    /// `mlp.gate.e_score_correction_bias`), Mixtral/PhiMoE (`block_sparse_moe.experts.N.w1`); from
    /// models/{qwen2_moe,qwen3_moe,deepseek_v2,glm4_moe,mixtral}/modeling_*.py.
    #[test]
    fn moe_names() {
        let names: &[(&str, &[u64])] = &[
            ("model.layers.0.mlp.gate_proj.weight", &[64, 16]),
            ("model.layers.0.mlp.down_proj.weight", &[16, 64]),
            ("model.layers.1.mlp.gate.weight", &[8, 16]),
            ("model.layers.1.mlp.gate.e_score_correction_bias", &[8]),
            ("model.layers.1.mlp.experts.0.gate_proj.weight", &[8, 16]),
            ("model.layers.1.mlp.experts.0.up_proj.weight", &[8, 16]),
            ("model.layers.1.mlp.experts.0.down_proj.weight", &[16, 8]),
            ("model.layers.1.mlp.experts.1.gate_proj.weight", &[8, 16]),
            (
                "model.layers.1.mlp.shared_experts.gate_proj.weight",
                &[8, 16],
            ),
            (
                "model.layers.1.mlp.shared_experts.down_proj.weight",
                &[16, 8],
            ),
            (
                "model.layers.2.mlp.shared_expert.gate_proj.weight",
                &[8, 16],
            ),
            ("model.layers.2.mlp.shared_expert_gate.weight", &[1, 16]),
            ("model.layers.2.mlp.experts.gate_up_proj", &[4, 16, 16]),
            ("model.layers.2.mlp.experts.down_proj", &[4, 16, 8]),
            ("model.layers.3.block_sparse_moe.gate.weight", &[8, 16]),
            (
                "model.layers.3.block_sparse_moe.experts.2.w1.weight",
                &[8, 16],
            ),
            (
                "model.layers.3.block_sparse_moe.experts.2.w2.weight",
                &[16, 8],
            ),
            (
                "model.layers.3.block_sparse_moe.experts.2.w3.weight",
                &[8, 16],
            ),
        ];
        let roles = checkpoint(names);
        assert_eq!(
            get(&roles, "model.layers.0.mlp.gate_proj.weight").3,
            "mlp_gate"
        );
        assert_eq!(
            get(&roles, "model.layers.1.mlp.experts.0.gate_proj.weight").3,
            "mlp_gate.expert0"
        );
        assert_eq!(
            get(&roles, "model.layers.1.mlp.experts.1.gate_proj.weight").3,
            "mlp_gate.expert1"
        );
        assert_eq!(
            get(&roles, "model.layers.1.mlp.shared_experts.gate_proj.weight").3,
            "mlp_gate.shared"
        );
        assert_eq!(
            get(&roles, "model.layers.2.mlp.shared_expert.gate_proj.weight").3,
            "mlp_gate.shared"
        );
        assert_eq!(
            get(&roles, "model.layers.2.mlp.shared_expert_gate.weight").3,
            "mlp.shared_expert_gate.weight"
        );
        // transformers 5 keeps the experts of a layer fused in one parameter.
        assert_eq!(
            get(&roles, "model.layers.2.mlp.experts.gate_up_proj").3,
            "mlp_gate_up.experts"
        );
        assert_eq!(
            get(&roles, "model.layers.2.mlp.experts.down_proj").3,
            "mlp_down.experts"
        );
        assert_eq!(
            get(&roles, "model.layers.1.mlp.gate.weight").3,
            "mlp.gate.weight"
        );
        assert_eq!(
            get(
                &roles,
                "model.layers.3.block_sparse_moe.experts.2.w1.weight"
            )
            .3,
            "mlp_gate.expert2"
        );
        assert_eq!(
            get(
                &roles,
                "model.layers.3.block_sparse_moe.experts.2.w2.weight"
            )
            .3,
            "mlp_down.expert2"
        );
        assert_eq!(
            get(
                &roles,
                "model.layers.3.block_sparse_moe.experts.2.w3.weight"
            )
            .3,
            "mlp_up.expert2"
        );
    }

    /// DeepSeek-V2 multi-head latent attention (models/deepseek_v2/modeling_deepseek_v2.py), and the llama.cpp
    /// names of the same tensors (`blk.N.attn_q_a`, `attn_kv_a_mqa`, ... in gguf-py's constants.py).
    #[test]
    fn deepseek_mla_names() {
        let names: &[(&str, &[u64])] = &[
            ("model.layers.0.self_attn.q_a_proj.weight", &[8, 16]),
            ("model.layers.0.self_attn.q_a_layernorm.weight", &[8]),
            ("model.layers.0.self_attn.q_b_proj.weight", &[24, 8]),
            (
                "model.layers.0.self_attn.kv_a_proj_with_mqa.weight",
                &[12, 16],
            ),
            ("model.layers.0.self_attn.kv_a_layernorm.weight", &[8]),
            ("model.layers.0.self_attn.kv_b_proj.weight", &[32, 8]),
            ("model.layers.0.self_attn.o_proj.weight", M),
            // DeepSeek-V2-Lite has no query compression: a plain q_proj.
            ("model.layers.1.self_attn.q_proj.weight", &[24, 16]),
        ];
        let roles = checkpoint(names);
        let l = "model.layers.0.self_attn";
        assert_eq!(get(&roles, &format!("{l}.q_a_proj.weight")).3, "attn_q_a");
        assert_eq!(get(&roles, &format!("{l}.q_b_proj.weight")).3, "attn_q_b");
        assert_eq!(
            get(&roles, &format!("{l}.kv_a_proj_with_mqa.weight")).3,
            "attn_kv_a_mqa"
        );
        assert_eq!(get(&roles, &format!("{l}.kv_b_proj.weight")).3, "attn_kv_b");
        assert_eq!(
            get(&roles, &format!("{l}.q_a_layernorm.weight")).3,
            "norm_q_a"
        );
        assert_eq!(
            get(&roles, &format!("{l}.kv_a_layernorm.weight")).3,
            "norm_kv_a"
        );
        assert_eq!(
            get(&roles, "model.layers.1.self_attn.q_proj.weight").3,
            "attn_q"
        );
        assert_eq!(role("blk.0.attn_q_a.weight", &[8, 16]).3, "attn_q_a");
        assert_eq!(
            role("blk.0.attn_kv_a_mqa.weight", &[12, 16]).3,
            "attn_kv_a_mqa"
        );
        assert_eq!(role("blk.0.attn_kv_a_norm.weight", &[8]).3, "norm_kv_a");
    }

    /// Causal-mask and rotary buffers that old checkpoints store: GPT-2 (`attn.bias`, `attn.masked_bias`),
    /// GPT-Neo (`attn.attention.bias`), GPT-NeoX/Pythia/RedPajama/StableLM-alpha (`attention.bias`,
    /// `attention.masked_bias`, `attention.rotary_emb.inv_freq`), GPT-J (`attn.bias`), CodeGen
    /// (`attn.causal_mask`), M2M100/NLLB (`embed_positions.weights`, `_float_tensor`).
    #[test]
    fn buffers_are_ignored() {
        for (name, shape) in [
            ("h.0.attn.bias", &[1u64, 1, 32, 32][..]),
            ("h.0.attn.masked_bias", &[][..]),
            ("transformer.h.0.attn.attention.bias", &[1, 1, 32, 32][..]),
            ("transformer.h.0.attn.attention.masked_bias", &[][..]),
            ("gpt_neox.layers.0.attention.bias", &[1, 1, 32, 32][..]),
            ("gpt_neox.layers.0.attention.rotary_emb.inv_freq", &[8][..]),
            ("transformer.h.0.attn.causal_mask", &[1, 1, 32, 32][..]),
            ("model.layers.0.self_attn.rotary_emb.inv_freq", &[8][..]),
            ("model.encoder.embed_positions.weights", &[34, 16][..]),
            ("model.encoder.embed_positions._float_tensor", &[1][..]),
            ("embeddings.position_ids", &[1, 512][..]),
            ("rope_freqs.weight", &[32][..]),
            ("blk.0.ssm_a", &[32, 16][..]),
        ] {
            assert_eq!(classify(name, shape).kind, Kind::Ignored, "{name}");
        }
        // Real biases and learned position tables are kept.
        assert_eq!(
            role("transformer.h.0.attn.attention.out_proj.bias", V).0,
            Kind::Vector
        );
        assert_eq!(
            role("model.encoder.embed_positions.weight", &[34, 16]).0,
            Kind::Matrix
        );
    }

    /// GPT-Neo (modeling_gpt_neo.py: `attn.attention.{q,k,v,out}_proj`), GPT-J (modeling_gptj.py:
    /// `attn.{q,k,v,out}_proj`, `mlp.fc_in/fc_out`), CodeGen (modeling_codegen.py: fused `attn.qkv_proj`),
    /// BLOOM (modeling_bloom.py: `h.N.self_attention.query_key_value`, `word_embeddings_layernorm`), Falcon
    /// (modeling_falcon.py), StarCoder (modeling_gpt_bigcode.py: `c_attn` is an nn.Linear, not GPT-2's Conv1D).
    #[test]
    fn gpt_family_names() {
        let neo = checkpoint(&[
            ("transformer.wte.weight", E),
            ("transformer.wpe.weight", &[32, 16]),
            ("transformer.h.0.ln_1.weight", V),
            ("transformer.h.0.attn.attention.q_proj.weight", M),
            ("transformer.h.0.attn.attention.k_proj.weight", M),
            ("transformer.h.0.attn.attention.v_proj.weight", M),
            ("transformer.h.0.attn.attention.out_proj.weight", M),
            ("transformer.h.0.attn.attention.out_proj.bias", V),
            ("transformer.h.0.ln_2.weight", V),
            ("transformer.h.0.mlp.c_fc.weight", &[64, 16]),
            ("transformer.h.0.mlp.c_proj.weight", &[16, 64]),
            ("transformer.ln_f.weight", V),
        ]);
        assert_eq!(
            get(&neo, "transformer.h.0.attn.attention.q_proj.weight").3,
            "attn_q"
        );
        assert_eq!(
            get(&neo, "transformer.h.0.attn.attention.out_proj.weight").3,
            "attn_o"
        );
        assert_eq!(
            get(&neo, "transformer.h.0.attn.attention.out_proj.bias").3,
            "attn_o_bias"
        );
        assert_eq!(get(&neo, "transformer.h.0.mlp.c_proj.weight").3, "mlp_down");
        let gptj_codegen = checkpoint(&[
            ("transformer.h.0.attn.q_proj.weight", M),
            ("transformer.h.0.attn.out_proj.weight", M),
            ("transformer.h.0.mlp.fc_in.weight", &[64, 16]),
            ("transformer.h.0.mlp.fc_out.weight", &[16, 64]),
            ("transformer.h.1.attn.qkv_proj.weight", &[48, 16]),
            ("lm_head.weight", E),
            ("lm_head.bias", &[100]),
        ]);
        assert_eq!(
            get(&gptj_codegen, "transformer.h.0.mlp.fc_in.weight").3,
            "mlp_up"
        );
        assert_eq!(
            get(&gptj_codegen, "transformer.h.0.mlp.fc_out.weight").3,
            "mlp_down"
        );
        assert_eq!(
            get(&gptj_codegen, "transformer.h.1.attn.qkv_proj.weight").3,
            "attn_qkv"
        );
        let bloom = checkpoint(&[
            ("word_embeddings.weight", E),
            ("word_embeddings_layernorm.weight", V),
            ("h.0.input_layernorm.weight", V),
            ("h.0.self_attention.query_key_value.weight", &[48, 16]),
            ("h.0.self_attention.dense.weight", M),
            ("h.0.post_attention_layernorm.weight", V),
            ("h.0.mlp.dense_h_to_4h.weight", &[64, 16]),
            ("h.0.mlp.dense_4h_to_h.weight", &[16, 64]),
            ("ln_f.weight", V),
        ]);
        assert_eq!(
            get(&bloom, "word_embeddings.weight").0,
            Kind::TokenEmbedding
        );
        assert_eq!(
            get(&bloom, "word_embeddings_layernorm.weight").0,
            Kind::Norm
        );
        assert_eq!(
            get(&bloom, "h.0.self_attention.query_key_value.weight").3,
            "attn_qkv"
        );
        assert_eq!(get(&bloom, "h.0.self_attention.dense.weight").3, "attn_o");
        assert_eq!(get(&bloom, "ln_f.weight").3, "norm_final");
        let falcon = checkpoint(&[
            ("transformer.word_embeddings.weight", E),
            ("transformer.h.0.input_layernorm.weight", V),
            (
                "transformer.h.0.self_attention.query_key_value.weight",
                &[20, 16],
            ),
            ("transformer.h.0.self_attention.dense.weight", M),
            ("transformer.h.0.mlp.dense_h_to_4h.weight", &[64, 16]),
            ("transformer.h.1.ln_attn.weight", V),
            ("transformer.h.1.ln_mlp.weight", V),
        ]);
        assert_eq!(
            get(&falcon, "transformer.h.1.ln_attn.weight").3,
            "norm_attn"
        );
        assert_eq!(get(&falcon, "transformer.h.1.ln_mlp.weight").3, "norm_mlp");
        // StarCoder (multi-query): c_attn is (hidden + 2·head_dim, hidden), stored as nn.Linear (out, in).
        let starcoder: &[(&str, &[u64])] = &[
            ("transformer.h.0.attn.c_attn.weight", &[20, 16]),
            ("transformer.h.0.attn.c_proj.weight", M),
            ("transformer.h.0.mlp.c_fc.weight", &[64, 16]),
        ];
        assert!(!uses_conv1d(starcoder));
        // Multi-head gpt_bigcode: (3·hidden, hidden), still not transposed.
        assert!(!uses_conv1d(&[(
            "transformer.h.0.attn.c_attn.weight",
            &[48, 16]
        )]));
        assert!(uses_conv1d(&[(
            "transformer.h.0.attn.c_attn.weight",
            &[16, 48]
        )]));
        let sc = checkpoint(starcoder);
        assert_eq!(get(&sc, "transformer.h.0.attn.c_attn.weight").3, "attn_qkv");
        assert_eq!(get(&sc, "transformer.h.0.attn.c_proj.weight").3, "attn_o");
    }

    /// Phi-1.5/Phi-2 (models/phi/modeling_phi.py: `self_attn.dense`, `mlp.fc1/fc2`, `final_layernorm`), the
    /// older remote-code Phi-2 layout (`transformer.embd.wte`, `h.N.mixer.Wqkv`, `lm_head.linear`), Phi-3/3.5/4
    /// (models/phi3/modeling_phi3.py: fused `qkv_proj`, `gate_up_proj`).
    #[test]
    fn phi_names() {
        let phi = checkpoint(&[
            ("model.embed_tokens.weight", E),
            ("model.layers.0.self_attn.q_proj.weight", M),
            ("model.layers.0.self_attn.dense.weight", M),
            ("model.layers.0.mlp.fc1.weight", &[64, 16]),
            ("model.layers.0.mlp.fc2.weight", &[16, 64]),
            ("model.layers.0.input_layernorm.weight", V),
            ("model.final_layernorm.weight", V),
            ("lm_head.weight", E),
        ]);
        assert_eq!(
            get(&phi, "model.layers.0.self_attn.dense.weight").3,
            "attn_o"
        );
        assert_eq!(get(&phi, "model.layers.0.mlp.fc1.weight").3, "mlp_up");
        assert_eq!(get(&phi, "model.final_layernorm.weight").3, "norm_final");
        let old = checkpoint(&[
            ("transformer.embd.wte.weight", E),
            ("transformer.h.0.ln.weight", V),
            ("transformer.h.0.mixer.Wqkv.weight", &[48, 16]),
            ("transformer.h.0.mixer.out_proj.weight", M),
            ("transformer.h.0.mlp.fc1.weight", &[64, 16]),
            ("lm_head.ln.weight", V),
            ("lm_head.linear.weight", E),
        ]);
        assert_eq!(
            get(&old, "transformer.embd.wte.weight").0,
            Kind::TokenEmbedding
        );
        assert_eq!(get(&old, "transformer.h.0.mixer.Wqkv.weight").3, "attn_qkv");
        assert_eq!(get(&old, "lm_head.linear.weight").0, Kind::LmHead);
        let phi3 = checkpoint(&[
            ("model.layers.0.self_attn.qkv_proj.weight", &[48, 16]),
            ("model.layers.0.self_attn.o_proj.weight", M),
            ("model.layers.0.mlp.gate_up_proj.weight", &[64, 16]),
            ("model.layers.0.mlp.down_proj.weight", &[16, 32]),
        ]);
        assert_eq!(
            get(&phi3, "model.layers.0.self_attn.qkv_proj.weight").3,
            "attn_qkv"
        );
        assert_eq!(
            get(&phi3, "model.layers.0.mlp.gate_up_proj.weight").3,
            "mlp_gate_up"
        );
    }

    /// Encoders: DeBERTa-v3 (models/deberta_v2/modeling_deberta_v2.py: `query_proj`, `rel_embeddings`), ALBERT
    /// (models/albert/modeling_albert.py: one shared layer under `albert_layer_groups.0.albert_layers.0`),
    /// DistilBERT (`transformer.layer.N.attention.q_lin`, `vocab_projector`), RoBERTa/XLM-R (`lm_head.decoder`),
    /// TinyBERT (BERT plus `fit_denses.N`).
    #[test]
    fn encoder_names() {
        let deberta = checkpoint(&[
            ("deberta.embeddings.word_embeddings.weight", E),
            ("deberta.embeddings.LayerNorm.weight", V),
            (
                "deberta.encoder.layer.0.attention.self.query_proj.weight",
                M,
            ),
            ("deberta.encoder.layer.0.attention.self.key_proj.weight", M),
            (
                "deberta.encoder.layer.0.attention.self.value_proj.weight",
                M,
            ),
            ("deberta.encoder.layer.0.attention.output.dense.weight", M),
            (
                "deberta.encoder.layer.0.attention.output.LayerNorm.weight",
                V,
            ),
            (
                "deberta.encoder.layer.0.intermediate.dense.weight",
                &[64, 16],
            ),
            ("deberta.encoder.layer.0.output.dense.weight", &[16, 64]),
            ("deberta.encoder.layer.0.output.LayerNorm.weight", V),
            ("deberta.encoder.rel_embeddings.weight", &[512, 16]),
            ("deberta.encoder.LayerNorm.weight", V),
            ("lm_predictions.lm_head.dense.weight", M),
        ]);
        let l = "deberta.encoder.layer.0";
        assert_eq!(
            get(&deberta, &format!("{l}.attention.self.query_proj.weight")).3,
            "attn_q"
        );
        assert_eq!(
            get(&deberta, &format!("{l}.attention.self.key_proj.weight")).3,
            "attn_k"
        );
        assert_eq!(
            get(&deberta, &format!("{l}.attention.self.value_proj.weight")).3,
            "attn_v"
        );
        assert_eq!(
            get(&deberta, "deberta.encoder.rel_embeddings.weight").0,
            Kind::Matrix
        );
        assert_eq!(
            embedding_of(&[
                ("deberta.embeddings.word_embeddings.weight", E),
                ("deberta.encoder.rel_embeddings.weight", &[512, 16])
            ])
            .as_deref(),
            Some("deberta.embeddings.word_embeddings.weight")
        );
        let albert = checkpoint(&[
            ("albert.embeddings.word_embeddings.weight", &[100, 8]),
            (
                "albert.encoder.embedding_hidden_mapping_in.weight",
                &[16, 8],
            ),
            (
                "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.query.weight",
                M,
            ),
            (
                "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.key.weight",
                M,
            ),
            (
                "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.dense.weight",
                M,
            ),
            (
                "albert.encoder.albert_layer_groups.0.albert_layers.0.attention.LayerNorm.weight",
                V,
            ),
            (
                "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight",
                &[64, 16],
            ),
            (
                "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn_output.weight",
                &[16, 64],
            ),
            (
                "albert.encoder.albert_layer_groups.0.albert_layers.0.full_layer_layer_norm.weight",
                V,
            ),
            ("predictions.decoder.weight", &[100, 8]),
        ]);
        assert_eq!(get(&albert, "predictions.decoder.weight").0, Kind::LmHead);
        assert_eq!(
            get(&albert, "albert.embeddings.word_embeddings.weight").0,
            Kind::TokenEmbedding
        );
        let distil = checkpoint(&[
            ("distilbert.embeddings.word_embeddings.weight", E),
            ("distilbert.transformer.layer.0.attention.q_lin.weight", M),
            ("distilbert.transformer.layer.0.attention.out_lin.weight", M),
            ("distilbert.transformer.layer.0.sa_layer_norm.weight", V),
            ("distilbert.transformer.layer.0.ffn.lin1.weight", &[64, 16]),
            ("distilbert.transformer.layer.0.ffn.lin2.weight", &[16, 64]),
            ("distilbert.transformer.layer.0.output_layer_norm.weight", V),
            ("vocab_transform.weight", M),
            ("vocab_layer_norm.weight", V),
            ("vocab_projector.weight", E),
        ]);
        assert_eq!(
            get(
                &distil,
                "distilbert.transformer.layer.0.attention.out_lin.weight"
            )
            .3,
            "attn_o"
        );
        assert_eq!(
            get(
                &distil,
                "distilbert.transformer.layer.0.output_layer_norm.weight"
            )
            .3,
            "norm_mlp"
        );
        assert_eq!(get(&distil, "vocab_projector.weight").0, Kind::LmHead);
        let roberta = checkpoint(&[
            ("roberta.embeddings.word_embeddings.weight", E),
            ("roberta.encoder.layer.0.attention.self.query.weight", M),
            ("lm_head.dense.weight", M),
            ("lm_head.layer_norm.weight", V),
            ("lm_head.decoder.weight", E),
            ("fit_denses.0.weight", M),
        ]);
        assert_eq!(get(&roberta, "lm_head.decoder.weight").0, Kind::LmHead);
        assert_eq!(get(&roberta, "lm_head.dense.weight").0, Kind::Matrix);
        assert!(!is_lm_head("bert.encoder.layer.0.output.dense.weight"));
        assert!(!is_lm_head("model.decoder.layers.0.output.weight"));
    }

    /// Encoder-decoders: T5/mT5/Flan-T5 (modeling_t5.py), BART/mBART/Marian/NLLB (modeling_bart.py,
    /// modeling_marian.py, modeling_m2m_100.py): encoder and decoder stay apart, cross-attention has its own roles.
    #[test]
    fn encoder_decoder_names() {
        let t5 = checkpoint(&[
            ("shared.weight", E),
            ("encoder.embed_tokens.weight", E),
            ("encoder.block.0.layer.0.SelfAttention.q.weight", M),
            ("encoder.block.0.layer.0.SelfAttention.o.weight", M),
            (
                "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                &[32, 4],
            ),
            ("encoder.block.0.layer.0.layer_norm.weight", V),
            (
                "encoder.block.0.layer.1.DenseReluDense.wi_0.weight",
                &[64, 16],
            ),
            (
                "encoder.block.0.layer.1.DenseReluDense.wi_1.weight",
                &[64, 16],
            ),
            (
                "encoder.block.0.layer.1.DenseReluDense.wo.weight",
                &[16, 64],
            ),
            ("encoder.block.0.layer.1.layer_norm.weight", V),
            ("encoder.final_layer_norm.weight", V),
            ("decoder.block.0.layer.0.SelfAttention.q.weight", M),
            ("decoder.block.0.layer.1.EncDecAttention.q.weight", M),
            ("decoder.block.0.layer.1.EncDecAttention.o.weight", M),
            (
                "decoder.block.0.layer.2.DenseReluDense.wo.weight",
                &[16, 64],
            ),
            ("decoder.block.0.layer.0.layer_norm.weight", V),
            ("decoder.block.0.layer.1.layer_norm.weight", V),
            ("decoder.block.0.layer.2.layer_norm.weight", V),
            ("decoder.final_layer_norm.weight", V),
            ("lm_head.weight", E),
        ]);
        assert_eq!(
            embedding_of(&[("encoder.embed_tokens.weight", E), ("shared.weight", E)]).as_deref(),
            Some("shared.weight")
        );
        assert_eq!(
            get(&t5, "encoder.block.0.layer.0.SelfAttention.o.weight").3,
            "attn_o"
        );
        assert_eq!(
            get(&t5, "encoder.block.0.layer.1.DenseReluDense.wi_0.weight").3,
            "mlp_gate"
        );
        assert_eq!(
            get(&t5, "encoder.block.0.layer.1.DenseReluDense.wi_1.weight").3,
            "mlp_up"
        );
        assert_eq!(
            get(&t5, "encoder.block.0.layer.1.DenseReluDense.wo.weight").3,
            "mlp_down"
        );
        let x = get(&t5, "decoder.block.0.layer.1.EncDecAttention.o.weight");
        assert_eq!((x.1, x.3), (Stack::Decoder, "xattn_o"));
        assert_eq!(
            get(&t5, "encoder.final_layer_norm.weight").1,
            Stack::Encoder
        );
        let bart = checkpoint(&[
            ("model.shared.weight", E),
            ("model.encoder.embed_positions.weight", &[34, 16]),
            ("model.encoder.layernorm_embedding.weight", V),
            ("model.encoder.layers.0.self_attn.q_proj.weight", M),
            ("model.encoder.layers.0.self_attn.out_proj.weight", M),
            ("model.encoder.layers.0.self_attn_layer_norm.weight", V),
            ("model.encoder.layers.0.fc1.weight", &[64, 16]),
            ("model.encoder.layers.0.fc2.weight", &[16, 64]),
            ("model.encoder.layers.0.final_layer_norm.weight", V),
            ("model.decoder.embed_positions.weight", &[34, 16]),
            ("model.decoder.layers.0.self_attn.q_proj.weight", M),
            ("model.decoder.layers.0.encoder_attn.q_proj.weight", M),
            ("model.decoder.layers.0.encoder_attn.out_proj.weight", M),
            ("model.decoder.layers.0.encoder_attn_layer_norm.weight", V),
            ("model.decoder.layers.0.final_layer_norm.weight", V),
            ("final_logits_bias", &[1, 100]),
        ]);
        assert_eq!(
            get(&bart, "model.decoder.layers.0.encoder_attn.q_proj.weight").3,
            "xattn_q"
        );
        assert_eq!(
            get(&bart, "model.decoder.layers.0.encoder_attn.out_proj.weight").3,
            "xattn_o"
        );
        assert_eq!(
            get(
                &bart,
                "model.decoder.layers.0.encoder_attn_layer_norm.weight"
            )
            .3,
            "norm_xattn"
        );
        assert_eq!(
            get(&bart, "model.encoder.layers.0.final_layer_norm.weight").3,
            "norm_mlp"
        );
        assert_eq!(
            get(&bart, "model.encoder.embed_positions.weight").1,
            Stack::Encoder
        );
    }

    /// Llama-family (Llama 2/3, Mistral, Qwen2/3, Yi, StableLM 2, GLM-4-hf, Gemma), GPT-NeoX/Pythia and OPT names
    /// give no collisions, including Qwen3's q_norm/k_norm and StableLM-2's per-head norms
    /// (models/stablelm/modeling_stablelm.py `q_layernorm.norms.H`).
    #[test]
    fn decoder_only_names_do_not_collide() {
        checkpoint(&[
            ("model.embed_tokens.weight", E),
            ("model.layers.0.self_attn.q_proj.weight", M),
            ("model.layers.0.self_attn.k_proj.weight", M),
            ("model.layers.0.self_attn.v_proj.weight", M),
            ("model.layers.0.self_attn.o_proj.weight", M),
            ("model.layers.0.self_attn.q_norm.weight", &[8]),
            ("model.layers.0.self_attn.k_norm.weight", &[8]),
            ("model.layers.0.self_attn.q_layernorm.norms.0.weight", &[8]),
            ("model.layers.0.self_attn.q_layernorm.norms.1.weight", &[8]),
            ("model.layers.0.mlp.gate_proj.weight", &[64, 16]),
            ("model.layers.0.mlp.up_proj.weight", &[64, 16]),
            ("model.layers.0.mlp.down_proj.weight", &[16, 64]),
            ("model.layers.0.input_layernorm.weight", V),
            ("model.layers.0.input_layernorm.bias", V),
            ("model.layers.0.post_attention_layernorm.weight", V),
            ("model.layers.0.post_self_attn_layernorm.weight", V),
            ("model.layers.0.post_mlp_layernorm.weight", V),
            ("model.norm.weight", V),
            ("lm_head.weight", E),
        ]);
        let neox = checkpoint(&[
            ("gpt_neox.embed_in.weight", E),
            ("gpt_neox.layers.0.input_layernorm.weight", V),
            ("gpt_neox.layers.0.post_attention_layernorm.weight", V),
            (
                "gpt_neox.layers.0.attention.query_key_value.weight",
                &[48, 16],
            ),
            ("gpt_neox.layers.0.attention.dense.weight", M),
            ("gpt_neox.layers.0.attention.bias", &[1, 1, 32, 32]),
            ("gpt_neox.layers.0.mlp.dense_h_to_4h.weight", &[64, 16]),
            ("gpt_neox.layers.0.mlp.dense_4h_to_h.weight", &[16, 64]),
            ("gpt_neox.final_layer_norm.weight", V),
            ("embed_out.weight", E),
        ]);
        assert_eq!(get(&neox, "embed_out.weight").0, Kind::LmHead);
        assert_eq!(
            get(&neox, "gpt_neox.final_layer_norm.weight").3,
            "norm_final"
        );
        let opt = checkpoint(&[
            ("model.decoder.embed_tokens.weight", E),
            ("model.decoder.embed_positions.weight", &[34, 16]),
            ("model.decoder.project_in.weight", M),
            ("model.decoder.layers.0.self_attn.out_proj.weight", M),
            ("model.decoder.layers.0.self_attn_layer_norm.weight", V),
            ("model.decoder.layers.0.fc1.weight", &[64, 16]),
            ("model.decoder.layers.0.final_layer_norm.weight", V),
            ("model.decoder.final_layer_norm.weight", V),
        ]);
        assert_eq!(
            get(&opt, "model.decoder.final_layer_norm.weight").3,
            "norm_final"
        );
        assert_eq!(
            get(&opt, "model.decoder.layers.0.final_layer_norm.weight").3,
            "norm_mlp"
        );
    }

    /// CLIP-style text towers name the token table `token_embedding`; an audio tower is not text.
    #[test]
    fn clip_text_and_audio_towers() {
        assert!(embedding_rank("text_model.embeddings.token_embedding.weight", E).is_some());
        assert!(embedding_rank("text_model.embeddings.position_embedding.weight", E).is_none());
        assert_eq!(
            role("audio_tower.layers.0.self_attn.q_proj.weight", M).1,
            Stack::Vision
        );
        assert!(embedding_rank("audio_tower.embed_tokens.weight", E).is_none());
    }

    /// Marian's table (modeling_marian.py `_init_weight`: sin of `pos / 10000^(2j/d)` in the first half, cos in
    /// the second) and fairseq's (modeling_m2m_100.py `get_embedding`, zero padding row) are recognised; a
    /// learned table is not.
    #[test]
    fn sinusoidal_position_tables() {
        let d = 16;
        let marian: Vec<Vec<f32>> = (0..4)
            .map(|pos| {
                let mut row = vec![0f32; d];
                for j in 0..d / 2 {
                    let angle = pos as f64 / 10000f64.powf(2.0 * j as f64 / d as f64);
                    row[j] = angle.sin() as f32;
                    row[d / 2 + j] = angle.cos() as f32;
                }
                row
            })
            .collect();
        let rows: Vec<&[f32]> = marian.iter().map(Vec::as_slice).collect();
        assert!(is_sinusoidal_table(&rows));
        let mut fairseq = marian.clone();
        fairseq[1] = vec![0.0; d];
        let rows: Vec<&[f32]> = fairseq.iter().map(Vec::as_slice).collect();
        assert!(is_sinusoidal_table(&rows));
        let learned: Vec<Vec<f32>> = (0..4)
            .map(|r| {
                (0..d)
                    .map(|c| ((r * 31 + c * 17) % 13) as f32 * 0.01 - 0.06)
                    .collect()
            })
            .collect();
        let rows: Vec<&[f32]> = learned.iter().map(Vec::as_slice).collect();
        assert!(!is_sinusoidal_table(&rows));
        assert!(!is_sinusoidal_table(&[&[0.0; 8]]));
        assert!(!is_sinusoidal_table(&[]));
    }

    /// GLM-4.5-Air's multi-token-prediction layer 46 (46 decoder layers), as in its model.safetensors.index.json.
    #[test]
    fn mtp_layers_found() {
        let names: &[(&str, &[u64])] = &[
            ("model.layers.45.self_attn.q_proj.weight", M),
            ("model.layers.45.mlp.gate.weight", &[8, 16]),
            ("model.layers.46.self_attn.q_proj.weight", M),
            ("model.layers.46.eh_proj.weight", &[16, 32]),
            ("model.layers.46.enorm.weight", V),
            ("model.layers.46.hnorm.weight", V),
            ("model.layers.46.shared_head.norm.weight", V),
        ];
        assert_eq!(mtp_layers(names), vec![46]);
        checkpoint(names);
        assert!(mtp_layers(&[("model.layers.0.mlp.gate_proj.weight", M)]).is_empty());
    }
}
