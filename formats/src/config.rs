//! `config.json`: the metadata fields of the reference's MFI (reference-signals.md §1.2–1.4), read from the raw
//! JSON with the alias table (n_embd, d_model, n_layer, ...) and the text backbone of multimodal configs.
//!
//! CONTRACT (implementation pending).

use crate::error::Result;
use std::path::Path;

/// The config fields provsearch uses. Dimension fields come from the text backbone (`text_config`, then
/// `decoder`, when the top level has no `hidden_size`); `model_type` and `architectures` from the top level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelConfig {
    /// Top-level `model_type`, `"unknown"` when absent.
    pub model_type: String,
    /// Top-level `architectures`, `["unknown"]` when absent.
    pub architectures: Vec<String>,
    /// Hidden size (aliases: n_embd, d_model, dim, n_embed), 0 if absent.
    pub hidden_size: u32,
    /// Layers (aliases: n_layer, num_layers, n_layers, encoder_layers), 0 if absent.
    pub num_layers: u32,
    /// Heads (aliases: n_head, num_heads, n_heads, encoder_attention_heads), 0 if absent.
    pub num_attention_heads: u32,
    /// KV heads (`num_key_value_heads`, `num_kv_heads`, `multi_query` → 1).
    pub num_key_value_heads: Option<u32>,
    /// MLP width: first > 0 of intermediate_size, d_ff, encoder_ffn_dim, decoder_ffn_dim, ffn_dim, n_inner;
    /// then hidden_dim if ≠ hidden_size. 0 if none.
    pub intermediate_size: u32,
    /// `vocab_size`, 0 if absent.
    pub vocab_size: u32,
    /// `max_position_embeddings` / `n_positions`, 0 if absent.
    pub max_position_embeddings: u32,
    /// `hidden_act` / `hidden_activation` / `activation_function`.
    pub hidden_act: Option<String>,
    /// `head_dim` / `d_kv`.
    pub head_dim: Option<u32>,
    /// `rope_theta`, else `rope_scaling.rope_theta`, else `rope_parameters.rope_theta`.
    pub rope_theta: Option<f64>,
    /// Whether the JSON number for rope_theta was an integer (matters for the reference family_hash).
    pub rope_theta_is_int: bool,
    /// `rope_scaling.type` or `rope_scaling.rope_type` (ignoring "default").
    pub rope_scaling_type: Option<String>,
    /// `tie_word_embeddings`.
    pub tie_word_embeddings: Option<bool>,
    /// "RMSNorm" (rms_norm_eps / rms_norm_epsilon present), "LayerNorm" (layer_norm_eps / layer_norm_epsilon /
    /// layer_norm_epsilon), else "unknown".
    pub norm_type: String,
    /// "MHA" / "GQA" / "MQA" (§1.3).
    pub attention_style: String,
    /// "RoPE" when rope_theta or rope parameters exist, else position_embedding_type, else "alibi" when
    /// `alibi` is true, else "absolute".
    pub pos_encoding: String,
    /// qk_layernorm / qk_norm / use_qk_norm.
    pub qk_norm: bool,
    /// `attention_bias`, else `bias`.
    pub attention_bias: Option<bool>,
    /// `bos_token_id` (first element if a list).
    pub bos_token_id: Option<u32>,
    /// `eos_token_id` (first element if a list).
    pub eos_token_id: Option<u32>,
    /// `_name_or_path`.
    pub name_or_path: Option<String>,
    /// `is_encoder_decoder`.
    pub is_encoder_decoder: bool,
}

impl ModelConfig {
    /// Parse config.json text. Errors name the file and the JSON problem (line/column) or the field whose type
    /// is wrong (e.g. `hidden_size` is a string).
    pub fn parse(path: &Path, text: &str) -> Result<ModelConfig> {
        let _ = (path, text);
        todo!()
    }

    /// SHA-256 hex of the reference's architecture tuple (§1.4), serialised like Python `json.dumps`.
    pub fn arch_hash(&self) -> String {
        todo!()
    }

    /// SHA-256 hex of the reference's family tuple (§1.4) with the given tokenizer hash.
    pub fn family_hash(&self, tokenizer_hash: &str) -> String {
        let _ = tokenizer_hash;
        todo!()
    }
}
