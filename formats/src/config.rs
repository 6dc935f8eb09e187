//! `config.json`: the metadata fields of the reference's MFI (reference-signals.md §1.2–1.4), read from the raw
//! JSON with the alias table (n_embd, d_model, n_layer, ...) and the text backbone of multimodal configs.
//!
//! The reference reads attributes of transformers config objects, which resolve aliases through each class's
//! `attribute_map` and fill class defaults. [`ModelConfig::parse`] reproduces the aliases explicitly and reads
//! a few keys the reference misses (listed on each field); the two reference hashes ([`ModelConfig::arch_hash`],
//! [`ModelConfig::family_hash`]) are computed from these fields with the reference's exact serialisation.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// The config fields provsearch uses. Dimension fields come from the text backbone (`text_config`, `decoder`,
/// `llm_config` or `language_config`, when the top level has no `hidden_size`), with the defaults of a few
/// transformers config classes whose saved sub-configs are sparse ([`CLASS_DEFAULTS`]); `model_type` and
/// `architectures` from the top level.
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
    /// KV heads (`num_key_value_heads`, `num_kv_heads`, `n_kv_heads`, `multi_query` → 1, ChatGLM's
    /// `multi_query_group_num` when `multi_query_attention`). When none is given, Llama-like model types (whose
    /// transformers config classes fill it) get `num_attention_heads`; others `None`.
    pub num_key_value_heads: Option<u32>,
    /// MLP width: first > 0 of intermediate_size, d_ff, encoder_ffn_dim, decoder_ffn_dim, ffn_dim, n_inner,
    /// ffn_hidden_size; then hidden_dim if ≠ hidden_size. 0 if none.
    pub intermediate_size: u32,
    /// `vocab_size`, else `padded_vocab_size` (backbone, else top level), 0 if absent.
    pub vocab_size: u32,
    /// `max_position_embeddings` / `n_positions` / `seq_length`, 0 if absent.
    pub max_position_embeddings: u32,
    /// `hidden_act` / `hidden_activation` / `activation_function`.
    pub hidden_act: Option<String>,
    /// `head_dim` / `d_kv` / `kv_channels`.
    pub head_dim: Option<u32>,
    /// `rope_theta`, else `rope_scaling.rope_theta`, else `rope_parameters.rope_theta` (also inside
    /// `rope_parameters.full_attention`).
    pub rope_theta: Option<f64>,
    /// Whether the JSON number for rope_theta was an integer (matters for the reference family_hash).
    pub rope_theta_is_int: bool,
    /// `rope_scaling.type` or `rope_scaling.rope_type`, else `rope_parameters.rope_type` (ignoring "default").
    pub rope_scaling_type: Option<String>,
    /// `tie_word_embeddings` (backbone, else top level).
    pub tie_word_embeddings: Option<bool>,
    /// "RMSNorm" (rms_norm_eps / rms_norm_epsilon present), "LayerNorm" (layer_norm_eps / layer_norm_epsilon
    /// present), else "unknown". Key presence decides, not the value.
    pub norm_type: String,
    /// "MHA" / "GQA" / "MQA" (§1.3).
    pub attention_style: String,
    /// "RoPE" when rope_theta, rope parameters (a non-empty `rope_scaling` or `rope_parameters`) or GPT-NeoX/GPT-J
    /// rotary keys (`rotary_emb_base`, `rotary_pct`, `rotary_dim`) exist, else position_embedding_type, else
    /// "alibi" when `alibi` is true, else "absolute".
    pub pos_encoding: String,
    /// qk_layernorm / qk_norm / use_qk_norm (any of them truthy).
    pub qk_norm: bool,
    /// `attention_bias`, else `bias` (when a boolean).
    pub attention_bias: Option<bool>,
    /// `bos_token_id` (first element if a list; backbone, else top level).
    pub bos_token_id: Option<u32>,
    /// `eos_token_id` (first element if a list; backbone, else top level).
    pub eos_token_id: Option<u32>,
    /// `_name_or_path`.
    pub name_or_path: Option<String>,
    /// `is_encoder_decoder`.
    pub is_encoder_decoder: bool,
}

const HIDDEN_KEYS: &[&str] = &["hidden_size", "n_embd", "d_model", "dim", "n_embed"];
const LAYER_KEYS: &[&str] = &[
    "num_hidden_layers",
    "n_layer",
    "num_layers",
    "n_layers",
    "encoder_layers",
];
const HEAD_KEYS: &[&str] = &[
    "num_attention_heads",
    "n_head",
    "num_heads",
    "n_heads",
    "encoder_attention_heads",
];
const FFN_KEYS: &[&str] = &[
    "intermediate_size",
    "d_ff",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "ffn_dim",
    "n_inner",
    // ChatGLM2/3 and GLM-4 remote code (configuration_chatglm.py).
    "ffn_hidden_size",
];

/// Sub-configs that may hold the text backbone of a multimodal model, in order: `text_config` (Gemma 3,
/// LLaVA, Llama 4, Qwen2.5-VL as saved by recent transformers), `decoder` (vision encoder-decoder), `llm_config`
/// (InternVL), `language_config` (DeepSeek-VL).
const BACKBONE_KEYS: &[(&str, &str)] = &[
    ("text_config", "text_config."),
    ("decoder", "decoder."),
    ("llm_config", "llm_config."),
    ("language_config", "language_config."),
];

/// Defaults of transformers config classes whose saved sub-configs leave them out. `Gemma3ForConditionalGeneration`
/// checkpoints (gemma-3-4b/12b/27b) save a sparse `text_config` (hidden_size, intermediate_size,
/// num_hidden_layers, sometimes the heads), and the reference reads the rest from `Gemma3TextConfig`'s defaults
/// (models/gemma3/configuration_gemma3.py).
const CLASS_DEFAULTS: &[(&str, &[(&str, u32)])] = &[(
    "gemma3_text",
    &[
        ("vocab_size", 262_208),
        ("hidden_size", 2304),
        ("intermediate_size", 9216),
        ("num_hidden_layers", 26),
        ("num_attention_heads", 8),
        ("num_key_value_heads", 4),
        ("head_dim", 256),
        ("max_position_embeddings", 131_072),
    ],
)];

/// The class default of `key` for config class `class_type`, if listed in [`CLASS_DEFAULTS`].
fn class_default(class_type: &str, key: &str) -> Option<u32> {
    CLASS_DEFAULTS
        .iter()
        .find(|(t, _)| *t == class_type)
        .and_then(|(_, fields)| fields.iter().find(|(k, _)| *k == key))
        .map(|(_, v)| *v)
}

/// Activation and norm defaults of the same classes (`hidden_activation`, `rms_norm_eps`).
fn class_default_act_norm(class_type: &str) -> (Option<&'static str>, Option<&'static str>) {
    match class_type {
        "gemma3_text" => (Some("gelu_pytorch_tanh"), Some("RMSNorm")),
        _ => (None, None),
    }
}

/// Model types whose transformers config class sets `num_key_value_heads = num_attention_heads` when it is
/// missing or null.
const FILLS_KV_HEADS: &[&str] = &[
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "phi",
    "phi3",
    "phimoe",
    "stablelm",
    "cohere",
    "cohere2",
    "deepseek_v2",
    "deepseek_v3",
    "olmo",
    "olmo2",
    "granite",
    "granitemoe",
    "nemotron",
    "internlm2",
    "minicpm",
];

/// One JSON object of the config with the name it is reported under in errors.
#[derive(Clone, Copy)]
struct Obj<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
    prefix: &'static str,
}

impl<'a> Obj<'a> {
    /// The value of `key`, treating JSON `null` as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn wrong(&self, key: &str, expected: &str, got: &Value) -> Error {
        let mut shown = got.to_string();
        if shown.len() > 60 {
            let cut = (0..=60)
                .rev()
                .find(|&i| shown.is_char_boundary(i))
                .unwrap_or(0);
            shown.truncate(cut);
            shown.push('…');
        }
        Error::Json {
            path: self.path.to_path_buf(),
            detail: format!(
                "field `{}{key}` must be {expected}, got {shown}",
                self.prefix
            ),
        }
    }

    /// A count. A float with no fractional part (`4096.0`, `1e3`) is that integer, as Python's `int()` and
    /// `==` take it; a fraction, a negative number or another type is an error.
    fn u32(&self, key: &str) -> Result<Option<u32>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let whole = v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < u64::MAX as f64)
                .map(|x| x as u64)
        });
        match whole.map(u32::try_from) {
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => Err(self.wrong(key, "an integer below 2^32", v)),
            None => Err(self.wrong(key, "a non-negative integer", v)),
        }
    }

    /// The first of `keys` that is present (aliases).
    fn first_u32(&self, keys: &[&str]) -> Result<Option<u32>> {
        for k in keys {
            if let Some(n) = self.u32(k)? {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong(key, "a string", v)),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "a boolean", v)),
        }
    }

    /// Python truthiness of a flag (absent → false).
    fn truthy(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(Value::Null) => false,
        }
    }

    /// A token id: an integer or a list whose first element is one. Other shapes (negative ids, strings) are
    /// treated as absent: the reference takes these ids from the tokenizer, so they only annotate.
    fn token_id(&self, key: &str) -> Option<u32> {
        let v = match self.get(key)? {
            Value::Array(a) => a.first()?,
            v => v,
        };
        v.as_u64().and_then(|n| u32::try_from(n).ok())
    }

    fn sub(&self, key: &str, prefix: &'static str) -> Option<Obj<'a>> {
        match self.get(key) {
            Some(Value::Object(map)) => Some(Obj {
                path: self.path,
                map,
                prefix,
            }),
            _ => None,
        }
    }

    /// A number (rope_theta) with whether it was written as an integer.
    fn number(&self, key: &str) -> Result<Option<(f64, bool)>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let is_int = n.is_u64() || n.is_i64();
                Ok(n.as_f64().map(|f| (f, is_int)))
            }
            Some(v) => Err(self.wrong(key, "a number", v)),
        }
    }
}

impl ModelConfig {
    /// Parse config.json text. Errors name the file and the JSON problem (line/column) or the field whose type
    /// is wrong (e.g. `hidden_size` is a string).
    pub fn parse(path: &Path, text: &str) -> Result<ModelConfig> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let value: Value = crate::python_json::parse(text).map_err(|e| Error::Json {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let Value::Object(map) = &value else {
            return Err(Error::Json {
                path: path.to_path_buf(),
                detail: "top level is not a JSON object".into(),
            });
        };
        let top = Obj {
            path,
            map,
            prefix: "",
        };

        // Text backbone: the top level if it has a hidden size, else the first sub-config that does.
        let mut cfg = top;
        if top.first_u32(HIDDEN_KEYS)?.unwrap_or(0) == 0 {
            for &(key, prefix) in BACKBONE_KEYS {
                if let Some(sub) = top.sub(key, prefix) {
                    let sub_type = sub.string("model_type")?;
                    let hidden = sub
                        .first_u32(HIDDEN_KEYS)?
                        .or_else(|| class_default(sub_type.as_deref()?, "hidden_size"));
                    if hidden.unwrap_or(0) > 0 {
                        cfg = sub;
                        break;
                    }
                }
            }
        }

        let model_type = top
            .string("model_type")?
            .unwrap_or_else(|| "unknown".into());
        let architectures = match top.get("architectures") {
            None => vec!["unknown".to_string()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    top.wrong(
                        "architectures",
                        "a list of strings",
                        &Value::Array(items.clone()),
                    )
                })?,
            Some(v) => return Err(top.wrong("architectures", "a list of strings", v)),
        };

        // The class whose defaults and fill-ins apply is the backbone's own.
        let backbone_type = if std::ptr::eq(cfg.map, top.map) {
            None
        } else {
            cfg.string("model_type")?
        };
        let class_type = backbone_type.as_deref().unwrap_or(&model_type);
        let default = |key: &str| class_default(class_type, key);

        let hidden_size = cfg
            .first_u32(HIDDEN_KEYS)?
            .or_else(|| default("hidden_size"))
            .unwrap_or(0);
        let num_layers = cfg
            .first_u32(LAYER_KEYS)?
            .or_else(|| default("num_hidden_layers"))
            .unwrap_or(0);
        let num_attention_heads = cfg
            .first_u32(HEAD_KEYS)?
            .or_else(|| default("num_attention_heads"))
            .unwrap_or(0);

        let num_key_value_heads = match cfg.u32("num_key_value_heads")? {
            Some(n) => Some(n),
            // `n_kv_heads`: Meta's and Mistral's native `params.json`.
            None => match cfg.u32("num_kv_heads")?.or(cfg.u32("n_kv_heads")?) {
                Some(n) => Some(n),
                None if cfg.truthy("multi_query") && !cfg.truthy("new_decoder_architecture") => {
                    Some(1)
                }
                // ChatGLM2/3, GLM-4 remote code: grouped-query attention with `multi_query_group_num` groups,
                // used only when `multi_query_attention` is set (configuration_chatglm.py).
                None if cfg.truthy("multi_query_attention") => {
                    match cfg.u32("multi_query_group_num")? {
                        Some(n) => Some(n),
                        None => Some(1),
                    }
                }
                None if default("num_key_value_heads").is_some() => default("num_key_value_heads"),
                None if FILLS_KV_HEADS.contains(&class_type) => Some(num_attention_heads),
                None => None,
            },
        };

        let mut intermediate_size = 0;
        for k in FFN_KEYS {
            if let Some(n) = cfg.u32(k)? {
                if n > 0 {
                    intermediate_size = n;
                    break;
                }
            }
        }
        if intermediate_size == 0 {
            if let Some(n) = cfg.u32("hidden_dim")? {
                if n > 0 && n != hidden_size {
                    intermediate_size = n;
                }
            }
        }

        if intermediate_size == 0 {
            intermediate_size = default("intermediate_size").unwrap_or(0);
        }

        // ChatGLM/GLM-4 remote code: `padded_vocab_size` is the embedding's row count (its configs also carry
        // `vocab_size`, which wins when present).
        let vocab_size = match cfg.first_u32(&["vocab_size", "padded_vocab_size"])? {
            Some(n) => n,
            None => match top.first_u32(&["vocab_size", "padded_vocab_size"])? {
                Some(n) => n,
                None => default("vocab_size").unwrap_or(0),
            },
        };
        // `seq_length`: ChatGLM/GLM-4 and Qwen (v1) remote code.
        let max_position_embeddings = cfg
            .first_u32(&["max_position_embeddings", "n_positions", "seq_length"])?
            .or_else(|| default("max_position_embeddings"))
            .unwrap_or(0);
        let (default_act, default_norm) = class_default_act_norm(class_type);
        let mut hidden_act = None;
        for k in ["hidden_act", "hidden_activation", "activation_function"] {
            if let Some(s) = cfg.string(k)? {
                hidden_act = Some(s);
                break;
            }
        }
        let hidden_act = hidden_act.or_else(|| default_act.map(str::to_string));
        // `kv_channels`: ChatGLM/GLM-4 and Qwen (v1) remote code.
        let head_dim = cfg
            .first_u32(&["head_dim", "d_kv", "kv_channels"])?
            .or_else(|| default("head_dim"));

        let rope_scaling = cfg.sub("rope_scaling", "rope_scaling.");
        let rope_parameters = cfg.sub("rope_parameters", "rope_parameters.");
        let rope_parameters_full = rope_parameters
            .and_then(|p| p.sub("full_attention", "rope_parameters.full_attention."));
        let mut rope = cfg.number("rope_theta")?;
        for o in [rope_scaling, rope_parameters, rope_parameters_full]
            .into_iter()
            .flatten()
        {
            if rope.is_some() {
                break;
            }
            rope = o.number("rope_theta")?;
        }
        let (rope_theta, rope_theta_is_int) = match rope {
            Some((f, i)) => (Some(f), i),
            None => (None, false),
        };
        let rope_scaling_type = [
            rope_scaling.and_then(|o| o.get("type")),
            rope_scaling.and_then(|o| o.get("rope_type")),
            rope_parameters.and_then(|o| o.get("rope_type")),
            rope_parameters_full.and_then(|o| o.get("rope_type")),
        ]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|s| *s != "default")
        .map(str::to_string);

        let tie_word_embeddings = match cfg.bool("tie_word_embeddings")? {
            Some(b) => Some(b),
            None => top.bool("tie_word_embeddings")?,
        };

        let norm_type = if cfg.has("rms_norm_eps") || cfg.has("rms_norm_epsilon") {
            "RMSNorm"
        } else if cfg.has("layer_norm_eps") || cfg.has("layer_norm_epsilon") {
            "LayerNorm"
        } else {
            default_norm.unwrap_or("unknown")
        }
        .to_string();

        let attention_style = attention_style(num_attention_heads, num_key_value_heads).to_string();

        let has_rope_params = rope_scaling.is_some_and(|o| !o.map.is_empty())
            || rope_parameters.is_some_and(|o| !o.map.is_empty())
            || ["rotary_emb_base", "rotary_pct", "rotary_dim"]
                .iter()
                .any(|k| cfg.get(k).is_some());
        let pos_encoding = if rope_theta.is_some() || has_rope_params {
            "RoPE".to_string()
        } else if let Some(Value::String(s)) = cfg.get("position_embedding_type") {
            s.clone()
        } else if cfg.truthy("alibi") {
            "alibi".to_string()
        } else {
            "absolute".to_string()
        };

        let qk_norm = ["qk_layernorm", "qk_norm", "use_qk_norm"]
            .iter()
            .any(|k| cfg.truthy(k));
        let attention_bias = match cfg.bool("attention_bias")? {
            Some(b) => Some(b),
            None => cfg.get("bias").and_then(Value::as_bool),
        };
        let bos_token_id = cfg
            .token_id("bos_token_id")
            .or_else(|| top.token_id("bos_token_id"));
        let eos_token_id = cfg
            .token_id("eos_token_id")
            .or_else(|| top.token_id("eos_token_id"));
        let name_or_path = top
            .get("_name_or_path")
            .and_then(Value::as_str)
            .map(str::to_string);
        let is_encoder_decoder = top.bool("is_encoder_decoder")?.unwrap_or(false);

        Ok(ModelConfig {
            model_type,
            architectures,
            hidden_size,
            num_layers,
            num_attention_heads,
            num_key_value_heads,
            intermediate_size,
            vocab_size,
            max_position_embeddings,
            hidden_act,
            head_dim,
            rope_theta,
            rope_theta_is_int,
            rope_scaling_type,
            tie_word_embeddings,
            norm_type,
            attention_style,
            pos_encoding,
            qk_norm,
            attention_bias,
            bos_token_id,
            eos_token_id,
            name_or_path,
            is_encoder_decoder,
        })
    }

    /// The text that [`arch_hash`](Self::arch_hash) hashes: Python `json.dumps` of
    /// `[model_type, architectures, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
    /// intermediate_size, vocab_size, max_position_embeddings]`.
    pub fn arch_text(&self) -> String {
        let mut s = String::from("[");
        py_json_str(&mut s, &self.model_type);
        s.push_str(", [");
        for (i, a) in self.architectures.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            py_json_str(&mut s, a);
        }
        s.push(']');
        let kv = self
            .num_key_value_heads
            .map_or_else(|| "null".to_string(), |n| n.to_string());
        let _ = write!(
            s,
            ", {}, {}, {}, {kv}, {}, {}, {}]",
            self.hidden_size,
            self.num_layers,
            self.num_attention_heads,
            self.intermediate_size,
            self.vocab_size,
            self.max_position_embeddings
        );
        s
    }

    /// SHA-256 hex of the reference's architecture tuple (§1.4), serialised like Python `json.dumps`.
    ///
    /// Computed from this struct's fields, so it equals the reference's value whenever the fields do; it can
    /// differ where provsearch reads keys the reference ignores (`num_kv_heads`, `multi_query`, `n_inner`).
    pub fn arch_hash(&self) -> String {
        sha256_hex(&self.arch_text())
    }

    /// The rope-theta bucket of the family tuple: `"none"`, else Python `str(round(rope_theta, -2))`, which
    /// prints an integer for an integer JSON number and a float (`"10000.0"`) for a float one.
    pub fn rope_theta_bucket(&self) -> String {
        match self.rope_theta {
            None => "none".to_string(),
            Some(t) if self.rope_theta_is_int && t.is_finite() && t.abs() < 9.0e15 => {
                round_hundreds_i64(t as i64).to_string()
            }
            Some(t) => py_float_repr(round_hundreds_f64(t)),
        }
    }

    /// The text that [`family_hash`](Self::family_hash) hashes: Python `json.dumps` of `[model_type,
    /// attention_style, hidden_act, norm_type, tokenizer_hash, rope_theta_bucket, rope_scaling_type]`.
    pub fn family_text(&self, tokenizer_hash: &str) -> String {
        let mut s = String::from("[");
        py_json_str(&mut s, &self.model_type);
        s.push_str(", ");
        py_json_str(&mut s, &self.attention_style);
        s.push_str(", ");
        match &self.hidden_act {
            Some(a) => py_json_str(&mut s, a),
            None => s.push_str("null"),
        }
        s.push_str(", ");
        py_json_str(&mut s, &self.norm_type);
        s.push_str(", ");
        py_json_str(&mut s, tokenizer_hash);
        s.push_str(", ");
        py_json_str(&mut s, &self.rope_theta_bucket());
        s.push_str(", ");
        py_json_str(&mut s, self.rope_scaling_type.as_deref().unwrap_or("none"));
        s.push(']');
        s
    }

    /// SHA-256 hex of the reference's family tuple (§1.4) with the given tokenizer hash.
    ///
    /// Computed from this struct's fields. It differs from the reference's stored value where transformers 5
    /// hides rope_theta (§1.7: the reference then writes "none") or where the scaling type sits under
    /// `rope_type` (the reference reads only `type`).
    pub fn family_hash(&self, tokenizer_hash: &str) -> String {
        sha256_hex(&self.family_text(tokenizer_hash))
    }
}

/// §1.3: "MHA" if nkv is None or equals the heads (0 heads count as 1), "MQA" if nkv is 1, else "GQA".
fn attention_style(heads: u32, kv: Option<u32>) -> &'static str {
    let nah = if heads == 0 { 1 } else { heads };
    match kv {
        None => "MHA",
        Some(k) if k == nah => "MHA",
        Some(1) => "MQA",
        Some(_) => "GQA",
    }
}

fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Append `text` as Python's `json.dumps` writes it with `ensure_ascii=True`: short escapes for `"` `\` and
/// `\b \f \n \r \t`, `\u00XX` for other characters outside 0x20..=0x7e, and UTF-16 surrogate pairs above the BMP.
fn py_json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python `round(n, -2)` for an int: nearest multiple of 100, ties to the even multiple.
fn round_hundreds_i64(n: i64) -> i64 {
    let (q, r) = (n.div_euclid(100), n.rem_euclid(100));
    let q = if r > 50 || (r == 50 && q % 2 != 0) {
        q + 1
    } else {
        q
    };
    q.saturating_mul(100)
}

/// Python `round(x, -2)` for a float (exact for integral values, which is what rope_theta always is).
fn round_hundreds_f64(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        let r = round_hundreds_i64(x as i64) as f64;
        // Keep the sign of a negative value that rounds to zero, as Python does (-0.0).
        return if r == 0.0 && x.is_sign_negative() {
            -0.0
        } else {
            r
        };
    }
    let r = (x / 100.0).round_ties_even() * 100.0;
    if r == 0.0 && x.is_sign_negative() {
        -0.0
    } else {
        r
    }
}

/// Python `repr(float)`: shortest round-trip digits, fixed notation for 1e-4 ≤ |x| < 1e16, else scientific
/// with a signed, at least two-digit exponent.
fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = x.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        let mut s = format!("{x}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        return s;
    }
    let s = format!("{x:e}");
    match s.split_once('e') {
        Some((mant, exp)) => {
            let e: i32 = exp.parse().unwrap_or(0);
            format!("{mant}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelConfig> {
        ModelConfig::parse(Path::new("config.json"), text)
    }

    #[test]
    fn python_json_strings() {
        let mut s = String::new();
        py_json_str(&mut s, "a\"b\\c\n\u{7f}é😀\u{1}");
        assert_eq!(s, r#""a\"b\\c\n\u007f\u00e9\ud83d\ude00\u0001""#);
    }

    #[test]
    fn python_rounding_and_repr() {
        assert_eq!(round_hundreds_i64(150), 200);
        assert_eq!(round_hundreds_i64(250), 200);
        assert_eq!(round_hundreds_i64(-150), -200);
        assert_eq!(round_hundreds_i64(10049), 10000);
        assert_eq!(py_float_repr(10000.0), "10000.0");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(py_float_repr(-0.0), "-0.0");
        assert_eq!(py_float_repr(round_hundreds_f64(500050.0)), "500000.0");
        assert_eq!(py_float_repr(round_hundreds_f64(12345.6)), "12300.0");
    }

    #[test]
    fn rope_theta_bucket_keeps_int_float_distinction() {
        let int = parse(r#"{"rope_theta": 1000000}"#).unwrap();
        let float = parse(r#"{"rope_theta": 1000000.0}"#).unwrap();
        assert_eq!(int.rope_theta_bucket(), "1000000");
        assert_eq!(float.rope_theta_bucket(), "1000000.0");
        assert_ne!(int.family_hash("t"), float.family_hash("t"));
        assert_eq!(parse("{}").unwrap().rope_theta_bucket(), "none");
    }

    #[test]
    fn attention_styles() {
        assert_eq!(attention_style(32, None), "MHA");
        assert_eq!(attention_style(32, Some(32)), "MHA");
        assert_eq!(attention_style(32, Some(8)), "GQA");
        assert_eq!(attention_style(32, Some(1)), "MQA");
        assert_eq!(attention_style(32, Some(0)), "GQA");
        assert_eq!(attention_style(0, Some(1)), "MHA");
    }

    #[test]
    fn codellama_arch_hash_matches_reference() {
        let c = parse(include_str!("../tests/data/codellama-7b-config.json")).unwrap();
        assert_eq!(
            c.arch_text(),
            r#"["llama", ["LlamaForCausalLM"], 4096, 32, 32, 32, 11008, 32016, 16384]"#
        );
        assert_eq!(
            c.arch_hash(),
            "256121b730850fa4bd975506d80b3146f8d421c3fb61060340b1d04a1def14a1"
        );
        // Without num_key_value_heads a Llama config is filled with the head count: same hash.
        let text = include_str!("../tests/data/codellama-7b-config.json")
            .replace("\"num_key_value_heads\": 32,", "");
        assert_eq!(parse(&text).unwrap().arch_hash(), c.arch_hash());
    }

    #[test]
    fn codellama_family_text() {
        let mut c = parse(include_str!("../tests/data/codellama-7b-config.json")).unwrap();
        assert_eq!(c.attention_style, "MHA");
        assert_eq!(c.norm_type, "RMSNorm");
        assert_eq!(c.pos_encoding, "RoPE");
        assert_eq!(c.rope_theta_bucket(), "1000000");
        // The reference DB was made under transformers 5, which hides rope_theta: reproduce its tuple.
        c.rope_theta = None;
        assert_eq!(
            c.family_text("afc2"),
            r#"["llama", "MHA", "silu", "RMSNorm", "afc2", "none", "none"]"#
        );
        assert_eq!(c.family_hash("afc2"), sha256_hex(&c.family_text("afc2")));
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// THUDM/chatglm3-6b config.json (remote code, configuration_chatglm.py): `num_layers`, `ffn_hidden_size`,
    /// `multi_query_group_num`, `padded_vocab_size`, `seq_length`, `kv_channels`.
    #[test]
    fn chatglm3_aliases() {
        let c = parse(
            r#"{"_name_or_path": "THUDM/chatglm3-6b", "add_bias_linear": false, "add_qkv_bias": true,
            "architectures": ["ChatGLMModel"], "ffn_hidden_size": 13696, "hidden_size": 4096,
            "kv_channels": 128, "layernorm_epsilon": 1e-05, "model_type": "chatglm",
            "multi_query_attention": true, "multi_query_group_num": 2, "num_attention_heads": 32,
            "num_layers": 28, "original_rope": true, "padded_vocab_size": 65024, "post_layer_norm": true,
            "rmsnorm": true, "seq_length": 8192, "tie_word_embeddings": false, "torch_dtype": "float16"}"#,
        )
        .unwrap();
        assert_eq!(
            (c.hidden_size, c.num_layers, c.num_attention_heads),
            (4096, 28, 32)
        );
        assert_eq!(c.num_key_value_heads, Some(2));
        assert_eq!(c.attention_style, "GQA");
        assert_eq!(c.intermediate_size, 13696);
        assert_eq!(c.vocab_size, 65024);
        assert_eq!(c.max_position_embeddings, 8192);
        assert_eq!(c.head_dim, Some(128));
        // Without multi_query_attention the group count is not used (multi-head attention).
        let mha = parse(r#"{"num_attention_heads": 32, "multi_query_group_num": 2}"#).unwrap();
        assert_eq!(mha.num_key_value_heads, None);
    }

    /// google/gemma-3-12b-it config.json: the text_config is sparse; the rest comes from Gemma3TextConfig's
    /// defaults (transformers models/gemma3/configuration_gemma3.py), as the reference reads it.
    #[test]
    fn gemma3_multimodal_sparse_text_config() {
        let c = parse(
            r#"{"architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999,
            "eoi_token_index": 256000, "eos_token_id": [1, 106], "image_token_index": 262144,
            "initializer_range": 0.02, "mm_tokens_per_image": 256, "model_type": "gemma3",
            "text_config": {"hidden_size": 3840, "intermediate_size": 15360, "model_type": "gemma3_text",
              "num_attention_heads": 16, "num_hidden_layers": 48, "num_key_value_heads": 8,
              "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
            "torch_dtype": "bfloat16",
            "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
              "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
              "patch_size": 14, "vision_use_head": false}}"#,
        )
        .unwrap();
        assert_eq!(c.model_type, "gemma3");
        assert_eq!(
            (
                c.hidden_size,
                c.num_layers,
                c.num_attention_heads,
                c.num_key_value_heads
            ),
            (3840, 48, 16, Some(8))
        );
        assert_eq!(c.intermediate_size, 15360);
        assert_eq!(c.vocab_size, 262_208);
        assert_eq!(c.head_dim, Some(256));
        assert_eq!(c.max_position_embeddings, 131_072);
        assert_eq!(c.hidden_act.as_deref(), Some("gelu_pytorch_tanh"));
        assert_eq!(c.norm_type, "RMSNorm");
        assert_eq!(c.rope_scaling_type.as_deref(), Some("linear"));
        // gemma-3-4b-it leaves out the heads as well.
        let c4 = parse(
            r#"{"model_type": "gemma3", "text_config": {"hidden_size": 2560, "intermediate_size": 10240,
            "model_type": "gemma3_text", "num_hidden_layers": 34}, "vision_config": {"hidden_size": 1152}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                c4.hidden_size,
                c4.num_layers,
                c4.num_attention_heads,
                c4.num_key_value_heads
            ),
            (2560, 34, 8, Some(4))
        );
        assert_eq!(c4.attention_style, "GQA");
    }

    /// Aliases of other families, with the keys their Hub config.json files use (values abridged): T5 (`d_model`, `num_layers`, `num_heads`,
    /// `d_ff`, `d_kv`), BLOOM (`n_embed`, `n_layer`, `n_head`), falcon-mamba-7b (MambaConfig: no heads,
    /// `state_size`), Falcon-7B (`multi_query`), StarCoder (gpt_bigcode `n_inner`, `multi_query`), DistilBERT
    /// (`dim`, `n_layers`, `n_heads`, `hidden_dim`), Marian (`d_model`, `encoder_layers`, `encoder_ffn_dim`).
    #[test]
    fn family_aliases() {
        let t5 = parse(
            r#"{"architectures": ["T5ForConditionalGeneration"], "d_ff": 2048, "d_kv": 64, "d_model": 768,
            "model_type": "t5", "num_decoder_layers": 12, "num_heads": 12, "num_layers": 12,
            "vocab_size": 32128, "layer_norm_epsilon": 1e-06, "is_encoder_decoder": true}"#,
        )
        .unwrap();
        assert_eq!(
            (
                t5.hidden_size,
                t5.num_layers,
                t5.num_attention_heads,
                t5.intermediate_size
            ),
            (768, 12, 12, 2048)
        );
        assert_eq!((t5.head_dim, t5.vocab_size), (Some(64), 32128));
        let bloom = parse(
            r#"{"architectures": ["BloomForCausalLM"], "model_type": "bloom", "n_embed": 1024,
            "n_layer": 24, "n_head": 16, "vocab_size": 250880, "layer_norm_epsilon": 1e-05}"#,
        )
        .unwrap();
        assert_eq!(
            (
                bloom.hidden_size,
                bloom.num_layers,
                bloom.num_attention_heads
            ),
            (1024, 24, 16)
        );
        let mamba = parse(
            r#"{"architectures": ["FalconMambaForCausalLM"], "model_type": "falcon_mamba",
            "hidden_size": 4096, "intermediate_size": 8192, "num_hidden_layers": 64, "state_size": 16,
            "conv_kernel": 4, "expand": 2, "vocab_size": 65024, "layer_norm_epsilon": 1e-05}"#,
        )
        .unwrap();
        assert_eq!(
            (
                mamba.hidden_size,
                mamba.num_layers,
                mamba.intermediate_size,
                mamba.vocab_size
            ),
            (4096, 64, 8192, 65024)
        );
        assert_eq!(
            (mamba.num_attention_heads, mamba.num_key_value_heads),
            (0, None)
        );
        let falcon = parse(
            r#"{"model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71,
            "num_hidden_layers": 32, "multi_query": true, "new_decoder_architecture": false,
            "vocab_size": 65024}"#,
        )
        .unwrap();
        assert_eq!(falcon.num_key_value_heads, Some(1));
        let starcoder = parse(
            r#"{"model_type": "gpt_bigcode", "n_embd": 6144, "n_head": 48, "n_inner": 24576,
            "n_layer": 40, "n_positions": 8192, "multi_query": true, "vocab_size": 49152}"#,
        )
        .unwrap();
        assert_eq!(
            (starcoder.intermediate_size, starcoder.num_key_value_heads),
            (24576, Some(1))
        );
        assert_eq!(starcoder.max_position_embeddings, 8192);
        let distil = parse(
            r#"{"model_type": "distilbert", "dim": 768, "hidden_dim": 3072, "n_heads": 12,
            "n_layers": 6, "vocab_size": 30522, "max_position_embeddings": 512}"#,
        )
        .unwrap();
        assert_eq!(
            (
                distil.hidden_size,
                distil.num_layers,
                distil.num_attention_heads,
                distil.intermediate_size
            ),
            (768, 6, 12, 3072)
        );
        let marian = parse(
            r#"{"model_type": "marian", "d_model": 512, "encoder_layers": 6, "decoder_layers": 6,
            "encoder_attention_heads": 8, "encoder_ffn_dim": 2048, "vocab_size": 58101,
            "max_position_embeddings": 512, "is_encoder_decoder": true}"#,
        )
        .unwrap();
        assert_eq!(
            (
                marian.hidden_size,
                marian.num_layers,
                marian.num_attention_heads,
                marian.intermediate_size
            ),
            (512, 6, 8, 2048)
        );
        // InternVL-style `llm_config` holds the backbone when the top level has none.
        let internvl = parse(
            r#"{"model_type": "internvl_chat", "llm_config": {"model_type": "qwen2", "hidden_size": 896,
            "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
            "vocab_size": 151674}, "vision_config": {"hidden_size": 1024}}"#,
        )
        .unwrap();
        assert_eq!((internvl.hidden_size, internvl.vocab_size), (896, 151_674));
    }
}
