//! GGUF metadata → the vocabulary (`tokenizer.ggml.*`) and the config fields (`general.architecture`, `<arch>.*`).

use super::{GgufHeader, GgufValue, StringList};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::strings::TokenList;
use crate::tokenizer::{Convention, SpecialTokens, TokenizerModelKind, Vocabulary};
use std::path::Path;

/// llama.cpp token types (`tokenizer.ggml.token_type`).
const TOKEN_NORMAL: i64 = 1;
const TOKEN_CONTROL: i64 = 3;
const TOKEN_USER_DEFINED: i64 = 4;

/// Build the vocabulary from `tokenizer.ggml.*`. `Ok(None)` when there is no token list.
pub(super) fn vocabulary(path: &Path, h: &GgufHeader) -> Result<Option<Vocabulary>> {
    let Some(list) = h.get("tokenizer.ggml.tokens") else {
        return Ok(None);
    };
    let bad = |detail: String| Error::corrupt(path, detail);
    let list =
        StrList::of(list).ok_or_else(|| bad("tokenizer.ggml.tokens is not an array".into()))?;
    let count = u32::try_from(list.len()).map_err(|_| bad("more than 2^32 tokens".into()))?;
    // The id of a token is its index. The strings as they are in the header (one buffer); a header built by
    // hand may list them as values.
    let strings =
        match list {
            StrList::Packed(a) => StringList::clone(a),
            StrList::Values(_) => {
                let mut strings = StringList::with_capacity(list.len());
                for id in 0..list.len() {
                    strings.push(list.get(id).ok_or_else(|| {
                        bad(format!("tokenizer.ggml.tokens[{id}] is not a string"))
                    })?);
                }
                strings
            }
        };
    let tokens = TokenList::from_parts(strings, (0..count).collect())
        .ok_or_else(|| bad("tokenizer.ggml.tokens: one id per token".into()))?;
    // Read in place from the header's array (not copied out: it has one value per token).
    let types: &[GgufValue] = match h.get("tokenizer.ggml.token_type") {
        None => &[],
        Some(v) => v
            .as_array()
            .ok_or_else(|| bad("tokenizer.ggml.token_type is not an array".into()))?,
    };
    // The merges as they are in the header (one buffer); a header built by hand may list them as values.
    let merges = match h.get("tokenizer.ggml.merges") {
        None => StringList::new(),
        Some(GgufValue::StringArray(a)) => StringList::clone(a),
        Some(v) => {
            let key = "tokenizer.ggml.merges";
            let a = StrList::of(v).ok_or_else(|| bad(format!("{key} is not an array")))?;
            let mut merges = StringList::with_capacity(a.len());
            for i in 0..a.len() {
                merges.push(
                    a.get(i)
                        .ok_or_else(|| bad(format!("{key}[{i}] is not a string")))?,
                );
            }
            merges
        }
    };
    let token_type = |id: usize| {
        types
            .get(id)
            .map_or(TOKEN_NORMAL, |t| t.as_i64().unwrap_or(TOKEN_NORMAL))
    };

    let model = h
        .get("tokenizer.ggml.model")
        .and_then(GgufValue::as_str)
        .unwrap_or("");
    let (kind, convention) = match model {
        "gpt2" => (TokenizerModelKind::Bpe, Convention::ByteLevel),
        "llama" => (
            sentencepiece_kind(h, &merges, &token_type),
            Convention::Metaspace,
        ),
        "t5" => (TokenizerModelKind::Unigram, Convention::Metaspace),
        "bert" => (TokenizerModelKind::WordPiece, Convention::WordPiece),
        _ if !merges.is_empty() => (TokenizerModelKind::Bpe, Convention::Plain),
        _ => (TokenizerModelKind::WordLevel, Convention::Plain),
    };

    // The types first: only control and user-defined tokens are looked up.
    let added_tokens = (0..tokens.len())
        .filter_map(|i| {
            let special = match token_type(i) {
                TOKEN_CONTROL => true,
                TOKEN_USER_DEFINED => false,
                _ => return None,
            };
            let (s, id) = tokens.get(i)?;
            Some((s.to_string(), id, special))
        })
        .collect();
    // GGUF does not record BERT's do_lower_case: an uncased vocabulary is one whose ordinary tokens have no
    // upper-case letters.
    let lowercase = kind == TokenizerModelKind::WordPiece
        && tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| token_type(*i) == TOKEN_NORMAL)
            .all(|(_, (s, _))| !s.chars().any(char::is_uppercase));
    let id = |key: &str| {
        h.get(&format!("tokenizer.ggml.{key}_token_id"))
            .and_then(GgufValue::as_u32)
            .filter(|&i| (i as usize) < tokens.len())
    };
    let special = SpecialTokens {
        bos: id("bos"),
        eos: id("eos"),
        pad: id("padding"),
        unk: id("unknown"),
        mask: id("mask"),
    };
    let source_file = path.file_name().map_or_else(
        || "model.gguf".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Some(Vocabulary {
        source_file,
        kind,
        convention,
        tokens,
        added_tokens,
        merges,
        lowercase,
        tokenizer_class: None,
        special,
    }))
}

/// An array of strings in either form: packed (as parsed) or as separate values (a header built by hand).
enum StrList<'a> {
    Packed(&'a StringList),
    Values(&'a [GgufValue]),
}

impl<'a> StrList<'a> {
    fn of(v: &'a GgufValue) -> Option<StrList<'a>> {
        match v {
            GgufValue::StringArray(a) => Some(StrList::Packed(a)),
            GgufValue::Array(a) => Some(StrList::Values(a)),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            StrList::Packed(a) => a.len(),
            StrList::Values(a) => a.len(),
        }
    }

    /// Element `i`, if it is a string.
    fn get(&self, i: usize) -> Option<&'a str> {
        match *self {
            StrList::Packed(a) => a.get(i),
            StrList::Values(a) => a.get(i)?.as_str(),
        }
    }
}

/// A "llama" (SentencePiece) vocabulary is BPE when it has merges, or when the scores of its ordinary pieces
/// are all whole numbers (a SentencePiece BPE model scores a piece with minus its merge rank, as Llama 2's
/// does); fractional scores are Unigram log-probabilities, and no scores at all also means Unigram.
fn sentencepiece_kind(
    h: &GgufHeader,
    merges: &StringList,
    token_type: &dyn Fn(usize) -> i64,
) -> TokenizerModelKind {
    if !merges.is_empty() {
        return TokenizerModelKind::Bpe;
    }
    let Some(scores) = h.get("tokenizer.ggml.scores").and_then(GgufValue::as_array) else {
        return TokenizerModelKind::Unigram;
    };
    let mut normal = scores
        .iter()
        .enumerate()
        .filter(|(i, _)| token_type(*i) == TOKEN_NORMAL)
        .peekable();
    if normal.peek().is_none() {
        return TokenizerModelKind::Unigram;
    }
    if normal.all(|(_, s)| s.as_f64().is_some_and(|s| s.fract() == 0.0)) {
        TokenizerModelKind::Bpe
    } else {
        TokenizerModelKind::Unigram
    }
}

/// Hugging Face `model_type`, `architectures[0]` and `hidden_act` of a GGUF architecture, where they are known.
fn hf_identity(
    arch: &str,
    experts: bool,
) -> Option<(&'static str, &'static str, Option<&'static str>)> {
    Some(match arch {
        "llama" if experts => ("mixtral", "MixtralForCausalLM", Some("silu")),
        "llama" => ("llama", "LlamaForCausalLM", Some("silu")),
        "qwen2" => ("qwen2", "Qwen2ForCausalLM", Some("silu")),
        "qwen2moe" => ("qwen2_moe", "Qwen2MoeForCausalLM", Some("silu")),
        "qwen3" => ("qwen3", "Qwen3ForCausalLM", Some("silu")),
        "qwen3moe" => ("qwen3_moe", "Qwen3MoeForCausalLM", Some("silu")),
        "gemma" => ("gemma", "GemmaForCausalLM", None),
        "gemma2" => ("gemma2", "Gemma2ForCausalLM", Some("gelu_pytorch_tanh")),
        "gemma3" => ("gemma3", "Gemma3ForCausalLM", Some("gelu_pytorch_tanh")),
        "phi3" => ("phi3", "Phi3ForCausalLM", Some("silu")),
        "granite" => ("granite", "GraniteForCausalLM", Some("silu")),
        "smollm3" => ("smollm3", "SmolLM3ForCausalLM", Some("silu")),
        "stablelm" => ("stablelm", "StableLmForCausalLM", Some("silu")),
        "starcoder2" => (
            "starcoder2",
            "Starcoder2ForCausalLM",
            Some("gelu_pytorch_tanh"),
        ),
        "olmo2" => ("olmo2", "Olmo2ForCausalLM", Some("silu")),
        "gpt2" => ("gpt2", "GPT2LMHeadModel", None),
        "bert" => ("bert", "BertModel", Some("gelu")),
        "t5" => ("t5", "T5ForConditionalGeneration", None),
        _ => return None,
    })
}

/// Architectures whose transformers config class fills `num_key_value_heads` with the head count when absent.
const KV_DEFAULTS_TO_HEADS: &[&str] = &[
    "llama", "mistral3", "qwen2", "qwen2moe", "qwen3", "qwen3moe", "gemma", "gemma2", "gemma3",
    "granite", "smollm3",
];

/// Build the config fields from metadata, mirroring what the matching config.json would give (reference
/// semantics, reference-signals.md §1.2–1.3).
pub(super) fn config(h: &GgufHeader) -> ModelConfig {
    let arch = h.architecture().unwrap_or("");
    let get = |suffix: &str| h.get(&format!("{arch}.{suffix}"));
    // Per-layer arrays (Deci, OpenELM) give their largest value.
    let num = |suffix: &str| -> Option<u64> {
        match get(suffix)? {
            GgufValue::Array(a) => a.iter().filter_map(GgufValue::as_u64).max(),
            v => v.as_u64(),
        }
    };
    let u32_of = |suffix: &str| num(suffix).and_then(|v| u32::try_from(v).ok());
    let has_tensor = |name: &str| h.tensors.iter().any(|t| t.name == name);
    let experts = num("expert_count").is_some_and(|n| n > 0);
    let identity = hf_identity(arch, experts);

    let heads = u32_of("attention.head_count").unwrap_or(0);
    let kv = u32_of("attention.head_count_kv")
        .or_else(|| (heads > 0 && KV_DEFAULTS_TO_HEADS.contains(&arch)).then_some(heads));
    let attention_style = match kv {
        None => "MHA",
        Some(k) if k == heads => "MHA",
        Some(1) => "MQA",
        Some(_) => "GQA",
    };
    let vocab_size = u32_of("vocab_size")
        .or_else(|| {
            let n = h.get("tokenizer.ggml.tokens")?.array_len()?;
            u32::try_from(n).ok()
        })
        .unwrap_or(0);
    let rope_theta = get("rope.freq_base").and_then(GgufValue::as_f64);
    let rope = rope_theta.is_some() || get("rope.dimension_count").is_some();
    let norm_type = if get("attention.layer_norm_rms_epsilon").is_some() {
        "RMSNorm"
    } else if get("attention.layer_norm_epsilon").is_some() {
        "LayerNorm"
    } else {
        "unknown"
    };
    let token_id = |key: &str| {
        h.get(&format!("tokenizer.ggml.{key}_token_id"))
            .and_then(GgufValue::as_u32)
    };
    ModelConfig {
        model_type: identity.map_or_else(
            || if arch.is_empty() { "unknown" } else { arch }.to_string(),
            |i| i.0.into(),
        ),
        architectures: vec![identity.map_or("unknown", |i| i.1).to_string()],
        hidden_size: u32_of("embedding_length").unwrap_or(0),
        num_layers: u32_of("block_count").unwrap_or(0),
        num_attention_heads: heads,
        num_key_value_heads: kv,
        intermediate_size: u32_of("feed_forward_length").unwrap_or(0),
        vocab_size,
        max_position_embeddings: u32_of("context_length").unwrap_or(0),
        hidden_act: identity.and_then(|i| i.2).map(str::to_string),
        head_dim: u32_of("attention.key_length"),
        rope_theta,
        // GGUF stores a float; a whole number most often came from an integer in config.json.
        rope_theta_is_int: rope_theta.is_some_and(|t| t.fract() == 0.0),
        rope_scaling_type: get("rope.scaling.type")
            .and_then(GgufValue::as_str)
            .filter(|t| !t.is_empty() && *t != "none")
            .map(str::to_string),
        tie_word_embeddings: has_tensor("token_embd.weight").then(|| !has_tensor("output.weight")),
        norm_type: norm_type.into(),
        attention_style: attention_style.into(),
        pos_encoding: if rope { "RoPE" } else { "absolute" }.into(),
        // As the reference reads config.json: only Gemma 2/3 (query_pre_attn_scalar) come out true, whatever
        // q_norm tensors exist.
        qk_norm: matches!(arch, "gemma2" | "gemma3"),
        attention_bias: h
            .tensors
            .iter()
            .any(|t| t.name.ends_with(".attn_q.weight"))
            .then(|| h.tensors.iter().any(|t| t.name.ends_with(".attn_q.bias"))),
        bos_token_id: token_id("bos"),
        eos_token_id: token_id("eos"),
        name_or_path: None,
        is_encoder_decoder: arch == "t5",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`GgufHeader`]'s fields are public: a header built by hand may hold its token list and merges as
    /// separate string values instead of the packed arrays that parsing gives. Both read the same.
    #[test]
    fn string_values_and_packed_arrays_give_the_same_vocabulary() {
        let header = |tokens: GgufValue, merges: GgufValue| GgufHeader {
            version: 3,
            metadata: vec![
                (
                    "tokenizer.ggml.model".into(),
                    GgufValue::String("gpt2".into()),
                ),
                ("tokenizer.ggml.tokens".into(), tokens),
                ("tokenizer.ggml.merges".into(), merges),
            ],
            tensors: Vec::new(),
            alignment: 32,
            data_offset: 0,
        };
        let values = |l: &[&str]| {
            GgufValue::Array(l.iter().map(|s| GgufValue::String(s.to_string())).collect())
        };
        let packed = |l: &[&str]| GgufValue::StringArray(Box::new(l.iter().collect()));
        let path = Path::new("v.gguf");
        let (tokens, merges) = (["a", "b", "ab"], ["a b"]);
        let a = vocabulary(path, &header(packed(&tokens), packed(&merges)))
            .unwrap()
            .unwrap();
        let b = vocabulary(path, &header(values(&tokens), values(&merges)))
            .unwrap()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.merges, merges);
        assert_eq!(a.tokens.len(), 3);
        let bad = GgufValue::Array(vec![GgufValue::String("a".into()), GgufValue::U8(1)]);
        let err = vocabulary(path, &header(packed(&tokens), bad.clone())).unwrap_err();
        assert!(
            err.to_string().contains("tokenizer.ggml.merges[1]"),
            "{err}"
        );
        let err = vocabulary(path, &header(bad, packed(&merges))).unwrap_err();
        assert!(
            err.to_string().contains("tokenizer.ggml.tokens[1]"),
            "{err}"
        );
    }
}
