//! GGUF files written from safetensors checkpoints the way llama.cpp's converter lays them out (llama.cpp
//! names, Q/K rows permuted, norms in F32, matrices quantized): each is related to its source and not to an
//! independently initialised model of the same config.

use crate::cli::util::{compare, num, provsearch};
use datasets::synth::{build, Family, Spec};
use datasets::{Checkpoint, Storage};
use provsearch_formats::gguf::writer::{llama_permute, GgufWriter};
use provsearch_formats::gguf::{GgmlType, GgufValue};
use serde_json::Value;
use std::path::Path;

/// A Llama whose rows fit the 256-element K-quant blocks.
pub(super) fn spec(seed: u64) -> Spec {
    Spec {
        family: Family::Llama,
        layers: 2,
        hidden: 256,
        intermediate: 512,
        heads: 4,
        vocab: 1024,
        seed,
    }
}

/// The llama.cpp name of a Hugging Face Llama tensor.
fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "lm_head.weight" => Some("output.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let part = match part.strip_suffix(".weight")? {
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{part}.weight"))
}

/// Write a synthetic Llama checkpoint as a GGUF file with its matrices in `ty`, tokenizer in metadata.
pub(super) fn write_gguf(ckpt: &Checkpoint, path: &Path, ty: GgmlType) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    gguf_writer(ckpt, ty).write(path).unwrap();
}

/// A synthetic Llama checkpoint as llama.cpp's converter lays it out, its matrices in `ty`.
pub(super) fn gguf_writer(ckpt: &Checkpoint, ty: GgmlType) -> GgufWriter {
    let config: Value = serde_json::from_slice(&ckpt.files["config.json"]).unwrap();
    let get = |k: &str| config[k].as_u64().unwrap() as u32;
    let (heads, kv) = (get("num_attention_heads"), get("num_key_value_heads"));
    let mut w = GgufWriter::new();
    w.add_string("general.architecture", "llama")
        .add_string("general.name", "synthetic")
        .add_u32("llama.block_count", get("num_hidden_layers"))
        .add_u32("llama.embedding_length", get("hidden_size"))
        .add_u32("llama.feed_forward_length", get("intermediate_size"))
        .add_u32("llama.attention.head_count", heads)
        .add_u32("llama.attention.head_count_kv", kv)
        .add_u32("llama.context_length", get("max_position_embeddings"))
        .add_u32("llama.rope.dimension_count", get("hidden_size") / heads)
        .add_f32("llama.rope.freq_base", 10000.0)
        .add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    // The vocabulary as llama.cpp stores a SentencePiece-BPE tokenizer: pieces, scores, token types.
    let tokenizer: Value = serde_json::from_slice(&ckpt.files["tokenizer.json"]).unwrap();
    let vocab = tokenizer["model"]["vocab"].as_object().unwrap();
    let mut tokens: Vec<(&str, u64)> = vocab
        .iter()
        .map(|(t, id)| (t.as_str(), id.as_u64().unwrap()))
        .collect();
    tokens.sort_by_key(|t| t.1);
    let pieces: Vec<&str> = tokens.iter().map(|t| t.0).collect();
    let kind = |t: &str| match t {
        "<unk>" | "<s>" | "</s>" => 3,
        t if t.starts_with("<0x") => 6,
        _ => 1,
    };
    w.add_string("tokenizer.ggml.model", "llama")
        .add_strings("tokenizer.ggml.tokens", &pieces)
        .add_metadata(
            "tokenizer.ggml.scores",
            GgufValue::Array(
                tokens
                    .iter()
                    .map(|t| GgufValue::F32(-(t.1 as f32)))
                    .collect(),
            ),
        )
        .add_metadata(
            "tokenizer.ggml.token_type",
            GgufValue::Array(pieces.iter().map(|t| GgufValue::I32(kind(t))).collect()),
        )
        .add_u32("tokenizer.ggml.unknown_token_id", 0)
        .add_u32("tokenizer.ggml.bos_token_id", 1)
        .add_u32("tokenizer.ggml.eos_token_id", 2);
    for t in &ckpt.tensors {
        let name = gguf_name(&t.name).unwrap_or_else(|| panic!("no GGUF name for {}", t.name));
        let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
        // The converter permutes Q and K rows for llama.cpp's rotary layout.
        let values = match name.as_str() {
            n if n.ends_with("attn_q.weight") => {
                llama_permute(&t.data, t.shape[0], t.shape[1], heads as usize)
            }
            n if n.ends_with("attn_k.weight") => {
                llama_permute(&t.data, t.shape[0], t.shape[1], kv as usize)
            }
            _ => t.data.clone(),
        };
        let t_ty = if t.shape.len() == 1 {
            GgmlType::F32
        } else {
            ty
        };
        w.add_tensor(name, t_ty, &shape, &values).unwrap();
    }
    w
}

const TYPES: [GgmlType; 7] = [
    GgmlType::F16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_1,
    GgmlType::Q4K,
    GgmlType::Q6K,
];

#[test]
fn gguf_quantizations_are_related_to_their_safetensors_source_and_not_to_an_independent_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, other) = (tmp.path().join("source"), tmp.path().join("other"));
    let ckpt = build(&spec(11));
    ckpt.write(&source, Storage::BF16, 1).unwrap();
    build(&spec(12)).write(&other, Storage::BF16, 1).unwrap();
    for ty in TYPES {
        let file = tmp.path().join(format!("gguf-{ty}")).join("model.gguf");
        write_gguf(&ckpt, &file, ty);
        let c = compare(&file, &source);
        eprintln!(
            "{ty}: identity {} wvc {}",
            c["identity_score"], c["signals"]["wvc"]
        );
        assert_eq!(c["related"], true, "{ty}: {c}");
        assert!(num(&c, "identity_score") >= 0.95, "{ty}: {c}");
        assert!(num(&c["signals"], "wvc") > 0.9, "{ty}: {c}");
        assert_eq!(c["a"]["format"], "gguf", "{ty}: {c}");
        let quant = if ty == GgmlType::F16 {
            Value::Null
        } else {
            ty.name().into()
        };
        assert_eq!(c["a"]["quantization"], quant, "{ty}: {c}");
        assert_eq!(c["b"]["quantization"], Value::Null);

        let c = compare(&file, &other);
        eprintln!("{ty} vs independent: identity {}", c["identity_score"]);
        assert_eq!(c["related"], false, "{ty} vs independent: {c}");
        assert!(num(&c, "identity_score") < 0.3, "{ty} vs independent: {c}");
    }
}

#[test]
fn gguf_metadata_gives_the_config_and_tokenizer_of_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, file) = (tmp.path().join("source"), tmp.path().join("q4k/model.gguf"));
    let ckpt = build(&spec(21));
    ckpt.write(&source, Storage::F32, 1).unwrap();
    write_gguf(&ckpt, &file, GgmlType::Q4K);
    let fp = |p: &Path| -> Value {
        let run = provsearch([Path::new("fingerprint"), p, Path::new("--json")]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let (g, s) = (fp(&file), fp(&source));
    for key in [
        "model_type",
        "hidden_size",
        "num_layers",
        "num_attention_heads",
        "vocab_size",
    ] {
        assert_eq!(g["metadata"][key], s["metadata"][key], "{key}");
    }
    assert_eq!(g["tokenizer"]["vocab_size"], 1024);
    assert_eq!(g["tokenizer"]["source_file"], "model.gguf");
    assert_eq!(g["source"]["dtypes"], serde_json::json!(["F32", "Q4_K"]));
    // Anchors resolve to the same tokens in both vocabularies.
    assert_eq!(
        g["weights"]["embedding"]["presence"], s["weights"]["embedding"]["presence"],
        "anchor presence differs"
    );
    // The human summary names the format and scheme.
    let run = provsearch([Path::new("fingerprint"), &file]);
    assert!(
        run.stdout.contains("format       Gguf Q4_K"),
        "{}",
        run.stdout
    );

    // A tokenizer.json beside the file wins over the metadata.
    std::fs::write(
        file.with_file_name("tokenizer.json"),
        &ckpt.files["tokenizer.json"],
    )
    .unwrap();
    assert_eq!(fp(&file)["tokenizer"]["source_file"], "tokenizer.json");
}
