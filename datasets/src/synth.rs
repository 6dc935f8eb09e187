//! Synthetic checkpoints in the real layouts of three families — Llama (SentencePiece-style tokenizer),
//! GPT-2 (Conv1D weights, byte-level BPE) and BERT (WordPiece) — with Hugging Face-style random
//! initialisation, a real config.json and a real tokenizer.json. They are what the tests derive from.

use crate::checkpoint::{Checkpoint, Tensor};
use crate::rng::Rng;
use provsearch_formats::tokenizer::byte_to_unicode;
use provsearch_index::anchors::ANCHORS;
use serde_json::{json, Value};

/// Layout family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `LlamaForCausalLM`: RMSNorm, gated MLP, untied lm_head, Metaspace BPE tokenizer.
    Llama,
    /// `GPT2LMHeadModel`: Conv1D `(in, out)` weights, LayerNorm with biases, byte-level BPE.
    Gpt2,
    /// `BertModel`: post-LayerNorm encoder, WordPiece tokenizer.
    Bert,
}

/// Dimensions and seed of a synthetic model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Layout family.
    pub family: Family,
    /// Number of layers.
    pub layers: usize,
    /// Hidden size.
    pub hidden: usize,
    /// MLP width.
    pub intermediate: usize,
    /// Attention heads.
    pub heads: usize,
    /// Vocabulary size (at least the anchors plus specials).
    pub vocab: usize,
    /// Weight seed.
    pub seed: u64,
}

impl Spec {
    /// A small model of a family.
    pub fn small(family: Family, seed: u64) -> Spec {
        Spec {
            family,
            layers: 4,
            hidden: 64,
            intermediate: 128,
            heads: 4,
            vocab: 1024,
            seed,
        }
    }
}

/// A tensor of independent normal values with standard deviation `std`.
pub fn randn(rng: &mut Rng, name: &str, shape: Vec<usize>, std: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(
        name,
        shape,
        (0..n).map(|_| std * rng.normal() as f32).collect(),
    )
}

/// Trained models have non-trivial norm gains; give them a per-coordinate pattern around 1 so NLF has something
/// to see (a fresh model's all-ones gains carry none).
fn gains(rng: &mut Rng, name: &str, n: usize) -> Tensor {
    Tensor::new(
        name,
        vec![n],
        (0..n).map(|_| 1.0 + 0.1 * rng.normal() as f32).collect(),
    )
}

fn small_biases(rng: &mut Rng, name: &str, n: usize) -> Tensor {
    Tensor::new(
        name,
        vec![n],
        (0..n).map(|_| 0.02 * rng.normal() as f32).collect(),
    )
}

/// Build the checkpoint (weights, config.json, tokenizer files).
pub fn build(spec: &Spec) -> Checkpoint {
    let mut rng = Rng::new(spec.seed);
    let (h, f, v) = (spec.hidden, spec.intermediate, spec.vocab);
    let mut t = Vec::new();
    match spec.family {
        Family::Llama => {
            t.push(randn(
                &mut rng,
                "model.embed_tokens.weight",
                vec![v, h],
                0.02,
            ));
            for l in 0..spec.layers {
                let p = format!("model.layers.{l}");
                for m in ["q_proj", "k_proj", "v_proj", "o_proj"] {
                    t.push(randn(
                        &mut rng,
                        &format!("{p}.self_attn.{m}.weight"),
                        vec![h, h],
                        0.02,
                    ));
                }
                t.push(randn(
                    &mut rng,
                    &format!("{p}.mlp.gate_proj.weight"),
                    vec![f, h],
                    0.02,
                ));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.mlp.up_proj.weight"),
                    vec![f, h],
                    0.02,
                ));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.mlp.down_proj.weight"),
                    vec![h, f],
                    0.02,
                ));
                t.push(gains(&mut rng, &format!("{p}.input_layernorm.weight"), h));
                t.push(gains(
                    &mut rng,
                    &format!("{p}.post_attention_layernorm.weight"),
                    h,
                ));
            }
            t.push(gains(&mut rng, "model.norm.weight", h));
            t.push(randn(&mut rng, "lm_head.weight", vec![v, h], 0.02));
        }
        Family::Gpt2 => {
            t.push(randn(&mut rng, "transformer.wte.weight", vec![v, h], 0.02));
            t.push(randn(
                &mut rng,
                "transformer.wpe.weight",
                vec![128, h],
                0.01,
            ));
            for l in 0..spec.layers {
                let p = format!("transformer.h.{l}");
                t.push(gains(&mut rng, &format!("{p}.ln_1.weight"), h));
                t.push(small_biases(&mut rng, &format!("{p}.ln_1.bias"), h));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.attn.c_attn.weight"),
                    vec![h, 3 * h],
                    0.02,
                ));
                t.push(small_biases(
                    &mut rng,
                    &format!("{p}.attn.c_attn.bias"),
                    3 * h,
                ));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.attn.c_proj.weight"),
                    vec![h, h],
                    0.02,
                ));
                t.push(small_biases(&mut rng, &format!("{p}.attn.c_proj.bias"), h));
                t.push(gains(&mut rng, &format!("{p}.ln_2.weight"), h));
                t.push(small_biases(&mut rng, &format!("{p}.ln_2.bias"), h));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.mlp.c_fc.weight"),
                    vec![h, f],
                    0.02,
                ));
                t.push(small_biases(&mut rng, &format!("{p}.mlp.c_fc.bias"), f));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.mlp.c_proj.weight"),
                    vec![f, h],
                    0.02,
                ));
                t.push(small_biases(&mut rng, &format!("{p}.mlp.c_proj.bias"), h));
            }
            t.push(gains(&mut rng, "transformer.ln_f.weight", h));
            t.push(small_biases(&mut rng, "transformer.ln_f.bias", h));
        }
        Family::Bert => {
            t.push(randn(
                &mut rng,
                "embeddings.word_embeddings.weight",
                vec![v, h],
                0.02,
            ));
            t.push(randn(
                &mut rng,
                "embeddings.position_embeddings.weight",
                vec![128, h],
                0.02,
            ));
            t.push(randn(
                &mut rng,
                "embeddings.token_type_embeddings.weight",
                vec![2, h],
                0.02,
            ));
            t.push(gains(&mut rng, "embeddings.LayerNorm.weight", h));
            t.push(small_biases(&mut rng, "embeddings.LayerNorm.bias", h));
            for l in 0..spec.layers {
                let p = format!("encoder.layer.{l}");
                for m in [
                    "attention.self.query",
                    "attention.self.key",
                    "attention.self.value",
                    "attention.output.dense",
                ] {
                    t.push(randn(
                        &mut rng,
                        &format!("{p}.{m}.weight"),
                        vec![h, h],
                        0.02,
                    ));
                    t.push(small_biases(&mut rng, &format!("{p}.{m}.bias"), h));
                }
                t.push(gains(
                    &mut rng,
                    &format!("{p}.attention.output.LayerNorm.weight"),
                    h,
                ));
                t.push(small_biases(
                    &mut rng,
                    &format!("{p}.attention.output.LayerNorm.bias"),
                    h,
                ));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.intermediate.dense.weight"),
                    vec![f, h],
                    0.02,
                ));
                t.push(small_biases(
                    &mut rng,
                    &format!("{p}.intermediate.dense.bias"),
                    f,
                ));
                t.push(randn(
                    &mut rng,
                    &format!("{p}.output.dense.weight"),
                    vec![h, f],
                    0.02,
                ));
                t.push(small_biases(&mut rng, &format!("{p}.output.dense.bias"), h));
                t.push(gains(&mut rng, &format!("{p}.output.LayerNorm.weight"), h));
                t.push(small_biases(
                    &mut rng,
                    &format!("{p}.output.LayerNorm.bias"),
                    h,
                ));
            }
            let ids: Vec<i64> = (0..128).collect();
            t.push(Tensor {
                name: "embeddings.position_ids".into(),
                shape: vec![1, 128],
                data: vec![],
                int64: Some(ids),
            });
        }
    }
    t.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ckpt = Checkpoint {
        tensors: t,
        ..Default::default()
    };
    ckpt.files
        .insert("config.json".into(), pretty(&config(spec)));
    let (tokenizer, extra) = tokenizer(spec);
    ckpt.files
        .insert("tokenizer.json".into(), pretty(&tokenizer));
    if let Some((name, bytes)) = extra {
        ckpt.files.insert(name, bytes);
    }
    ckpt
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

fn config(s: &Spec) -> Value {
    match s.family {
        Family::Llama => json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": s.hidden,
            "intermediate_size": s.intermediate, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
            "num_key_value_heads": s.heads, "vocab_size": s.vocab, "max_position_embeddings": 128,
            "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false,
            "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"
        }),
        Family::Gpt2 => json!({
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": s.hidden, "n_layer": s.layers,
            "n_head": s.heads, "n_inner": s.intermediate, "vocab_size": s.vocab, "n_positions": 128,
            "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "bos_token_id": 0, "eos_token_id": 0
        }),
        Family::Bert => json!({
            "architectures": ["BertModel"], "model_type": "bert", "hidden_size": s.hidden,
            "intermediate_size": s.intermediate, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
            "vocab_size": s.vocab, "max_position_embeddings": 128, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
            "type_vocab_size": 2, "pad_token_id": 0
        }),
    }
}

/// `model.vocab` of a tokenizer.json: token → id by position.
fn vocab_map(tokens: &[String]) -> serde_json::Map<String, Value> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect()
}

/// One `added_tokens` entry for a special token.
fn special(id: usize, content: &str, normalized: bool) -> Value {
    json!({"id": id, "content": content, "special": true, "single_word": false, "lstrip": false,
           "rstrip": false, "normalized": normalized})
}

/// Vocabulary entries: specials, then the anchors (in the family's spelling), then filler pieces.
fn tokenizer(s: &Spec) -> (Value, Option<(String, Vec<u8>)>) {
    let mut tokens: Vec<String> = Vec::new();
    let push = |tok: String, tokens: &mut Vec<String>| {
        if !tokens.contains(&tok) && tokens.len() < s.vocab {
            tokens.push(tok);
        }
    };
    match s.family {
        Family::Llama => {
            for sp in ["<unk>", "<s>", "</s>"] {
                push(sp.into(), &mut tokens);
            }
            for b in 0..=255u8 {
                push(format!("<0x{b:02X}>"), &mut tokens);
            }
            for a in ANCHORS {
                push(format!("\u{2581}{a}"), &mut tokens);
            }
            for i in 0.. {
                if tokens.len() >= s.vocab {
                    break;
                }
                push(format!("\u{2581}w{i}"), &mut tokens);
            }
            let vocab = vocab_map(&tokens);
            let tok = json!({
                "version": "1.0",
                "added_tokens": [
                    special(0, "<unk>", false),
                    special(1, "<s>", false),
                    special(2, "</s>", false)
                ],
                "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u{2581}"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}]},
                "pre_tokenizer": null,
                "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}, {"type": "ByteFallback"}]},
                "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true, "vocab": vocab, "merges": []}
            });
            (tok, None)
        }
        Family::Gpt2 => {
            let alphabet = byte_to_unicode();
            let encode = |text: &str| {
                text.bytes()
                    .map(|b| alphabet[b as usize])
                    .collect::<String>()
            };
            for c in alphabet {
                push(c.to_string(), &mut tokens);
            }
            for a in ANCHORS {
                push(encode(&format!(" {a}")), &mut tokens);
                push(encode(a), &mut tokens);
            }
            for i in 0.. {
                if tokens.len() >= s.vocab - 1 {
                    break;
                }
                push(encode(&format!(" w{i}")), &mut tokens);
            }
            push("<|endoftext|>".into(), &mut tokens);
            let eot = tokens.len() - 1;
            let vocab = vocab_map(&tokens);
            let tok = json!({
                "version": "1.0",
                "added_tokens": [special(eot, "<|endoftext|>", true)],
                "normalizer": null,
                "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
                "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
                "model": {"type": "BPE", "vocab": vocab, "merges": ["\u{0120} t", "\u{0120}t h"]}
            });
            (tok, None)
        }
        Family::Bert => {
            for sp in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
                push(sp.into(), &mut tokens);
            }
            for a in ANCHORS {
                push(a.to_lowercase(), &mut tokens);
                push(format!("##{}", a.to_lowercase()), &mut tokens);
            }
            for i in 0.. {
                if tokens.len() >= s.vocab {
                    break;
                }
                push(format!("w{i}"), &mut tokens);
            }
            let vocab = vocab_map(&tokens);
            let tok = json!({
                "version": "1.0",
                "added_tokens": [
                    special(0, "[PAD]", false),
                    special(1, "[UNK]", false),
                    special(4, "[MASK]", false)
                ],
                "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
                "pre_tokenizer": {"type": "BertPreTokenizer"},
                "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
                "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
            });
            let txt = tokens.join("\n").into_bytes();
            (tok, Some(("vocab.txt".into(), txt)))
        }
    }
}
