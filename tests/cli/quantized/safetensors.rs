//! Quantized safetensors checkpoints in the layouts of GPTQ, AWQ, bitsandbytes, FP8, MLX and compressed-tensors (written by
//! `datasets::quantize`): dequantized, each is related to its float source and not to an independent model;
//! an unsupported variant is fingerprinted from its full-precision tensors only, and says so.

use crate::cli::util::{compare, num, provsearch};
use datasets::quantize::{write_quantized, Scheme};
use datasets::synth::{build, Family, Spec};
use datasets::Storage;
use serde_json::Value;
use std::path::Path;

fn spec(seed: u64) -> Spec {
    Spec {
        family: Family::Llama,
        layers: 4,
        hidden: 128,
        intermediate: 256,
        heads: 4,
        vocab: 1024,
        seed,
    }
}

const SCHEMES: [(Scheme, &str); 13] = [
    (
        Scheme::Gptq {
            bits: 4,
            group: 128,
            act_order: false,
            g_idx: true,
        },
        "gptq-4bit",
    ),
    (
        Scheme::Gptq {
            bits: 4,
            group: 32,
            act_order: true,
            g_idx: true,
        },
        "gptq-4bit",
    ),
    (
        Scheme::Gptq {
            bits: 3,
            group: 32,
            act_order: false,
            g_idx: true,
        },
        "gptq-3bit",
    ),
    (Scheme::Awq { group: 128 }, "awq-4bit"),
    (Scheme::Bnb8, "bnb-int8"),
    (
        Scheme::Bnb4 {
            fp4: false,
            blocksize: 64,
            nested: true,
        },
        "bnb-nf4",
    ),
    (
        Scheme::Bnb4 {
            fp4: true,
            blocksize: 64,
            nested: false,
        },
        "bnb-fp4",
    ),
    (Scheme::Fp8Block { block: 128 }, "fp8-e4m3"),
    (Scheme::Mlx { bits: 4, group: 64 }, "mlx-4bit"),
    (Scheme::Mlx { bits: 3, group: 32 }, "mlx-3bit"),
    (
        Scheme::CtPacked {
            bits: 4,
            group: 32,
            symmetric: true,
        },
        "compressed-tensors-4bit",
    ),
    (
        Scheme::CtPacked {
            bits: 4,
            group: 64,
            symmetric: false,
        },
        "compressed-tensors-4bit",
    ),
    (Scheme::CtInt8, "compressed-tensors-8bit"),
];

#[test]
fn quantized_safetensors_are_related_to_their_source_and_not_to_an_independent_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, other) = (tmp.path().join("source"), tmp.path().join("other"));
    let ckpt = build(&spec(5));
    ckpt.write(&source, Storage::F16, 1).unwrap();
    build(&spec(6)).write(&other, Storage::F16, 1).unwrap();
    let mut schemes = SCHEMES.to_vec();
    schemes.push((Scheme::Fp8Tensor, "fp8-e4m3"));
    for (i, (scheme, label)) in schemes.into_iter().enumerate() {
        let dir = tmp.path().join(format!("q{i}"));
        write_quantized(&ckpt, &dir, scheme).unwrap();
        let c = compare(&dir, &source);
        eprintln!(
            "{label}: identity {} wvc {}",
            c["identity_score"], c["signals"]["wvc"]
        );
        assert_eq!(c["related"], true, "{scheme:?}: {c}");
        assert!(num(&c, "identity_score") >= 0.95, "{scheme:?}: {c}");
        assert!(num(&c["signals"], "wvc") > 0.9, "{scheme:?}: {c}");
        assert_eq!(c["a"]["quantization"], label, "{scheme:?}: {c}");
        assert_eq!(c["a"]["format"], "safetensors");

        let c = compare(&dir, &other);
        eprintln!("{label} vs independent: identity {}", c["identity_score"]);
        assert_eq!(c["related"], false, "{scheme:?} vs independent: {c}");
        assert!(
            num(&c, "identity_score") < 0.3,
            "{scheme:?} vs independent: {c}"
        );
    }
}

#[test]
fn fingerprint_and_compare_show_the_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, dir) = (tmp.path().join("source"), tmp.path().join("gptq"));
    let ckpt = build(&spec(5));
    ckpt.write(&source, Storage::F16, 1).unwrap();
    write_quantized(&ckpt, &dir, SCHEMES[0].0).unwrap();
    let run = provsearch([Path::new("fingerprint"), &dir]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("format       Safetensors gptq-4bit"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("dequantized 28 gptq-4bit tensors"),
        "{}",
        run.stdout
    );
    let run = provsearch([Path::new("compare"), &dir, &source]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("(Safetensors gptq-4bit,"),
        "{}",
        run.stdout
    );

    // The fingerprint lists the logical weights, not the packed parts.
    let run = provsearch([Path::new("fingerprint"), &dir, Path::new("--json")]);
    let f: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(f["source"]["tensor_count"], ckpt.tensors.len());
    assert_eq!(
        f["source"]["dtypes"],
        serde_json::json!(["F16", "gptq-4bit"])
    );
    let params: usize = ckpt.tensors.iter().map(|t| t.data.len()).sum();
    assert_eq!(f["source"]["parameter_count"], params);
}

#[test]
fn unsupported_variant_is_fingerprinted_from_full_precision_tensors_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, dir) = (
        tmp.path().join("source"),
        tmp.path().join("act-order-no-g_idx"),
    );
    let ckpt = build(&spec(5));
    ckpt.write(&source, Storage::F16, 1).unwrap();
    // Act-order GPTQ without g_idx: the group of each input cannot be known.
    let scheme = Scheme::Gptq {
        bits: 4,
        group: 32,
        act_order: true,
        g_idx: false,
    };
    write_quantized(&ckpt, &dir, scheme).unwrap();
    let run = provsearch([Path::new("fingerprint"), &dir, Path::new("--json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        f["source"]["quantization"],
        "gptq-4bit (unsupported: act-order (desc_act) without g_idx)"
    );
    let notes = f["weights"]["notes"].to_string();
    assert!(
        notes.contains("28 gptq-4bit tensors not dequantized"),
        "{notes}"
    );
    // No layer matrix was sampled (packed codes and their scales are not weights); norms and the embedding were.
    assert_eq!(f["weights"]["matrices"]["entries"], serde_json::json!([]));
    assert!(!f["weights"]["norms"]["entries"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(f["weights"]["embedding"].is_object());
    // Compared with its source, the evidence comes from the shared full-precision tensors (embedding, norms):
    // no layer energy profile exists on the quantized side.
    let c = compare(&dir, &source);
    assert_eq!(c["details"]["lep"]["support"], 0, "{c}");
    assert_eq!(c["related"], true, "{c}");
    assert_eq!(c["a"]["quantization"], f["source"]["quantization"]);
}

/// The real all-MiniLM-L6-v2 in mlx-lm's layout, 4-bit in groups of 64 with its embeddings quantized too (as
/// mlx-community conversions are): related to the original through every signal, embeddings included.
#[test]
fn real_model_in_mlx_4bit_is_related_to_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("minilm-mlx");
    let ckpt = datasets::Checkpoint::read(&crate::cli::util::minilm()).unwrap();
    write_quantized(&ckpt, &dir, Scheme::Mlx { bits: 4, group: 64 }).unwrap();
    let c = compare(&dir, &crate::cli::util::minilm());
    assert_eq!(c["related"], true, "{c}");
    assert_eq!(c["a"]["quantization"], "mlx-4bit", "{c}");
    for signal in ["wvc", "eas", "end"] {
        assert!(num(&c["signals"], signal) > 0.98, "{signal}: {c}");
    }
}

/// A checkpoint whose every matrix, embedding and head included, is in a layout this build does not read (here
/// compressed-tensors NVFP4: uint8 pairs of FP4 codes with FP8 `weight_scale`s) keeps only its norms and linear
/// biases, and the norms decide: the real all-MiniLM-L6-v2 packed so is related to its source. The FP8 scales
/// are not taken for FP8 weights (they were, before session 8), and a fresh model with the same config is not
/// called related.
#[test]
fn with_every_matrix_unread_the_norms_decide() {
    let tmp = tempfile::tempdir().unwrap();
    let (packed, fresh) = (tmp.path().join("nvfp4"), tmp.path().join("fresh"));
    let minilm = crate::cli::util::minilm();
    let ckpt = datasets::Checkpoint::read(&minilm).unwrap();
    let mut independent = ckpt.clone();
    datasets::derive::fresh_init(&mut independent, 0.02, 7);
    independent.write(&fresh, Storage::F16, 1).unwrap();

    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for t in &ckpt.tensors {
        if let Some(ints) = &t.int64 {
            let bytes = ints.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((
                t.name.clone(),
                safetensors::Dtype::I64,
                t.shape.clone(),
                bytes,
            ));
        } else if t.shape.len() == 2 && t.name.ends_with(".weight") && t.shape[1] % 16 == 0 {
            let (out, input) = (t.shape[0], t.shape[1]);
            let prefix = t.name.trim_end_matches(".weight");
            tensors.push((
                format!("{prefix}.weight_packed"),
                safetensors::Dtype::U8,
                vec![out, input / 2],
                vec![0x21; out * input / 2],
            ));
            tensors.push((
                format!("{prefix}.weight_scale"),
                safetensors::Dtype::F8_E4M3,
                vec![out, input / 16],
                vec![0x38; out * input / 16],
            ));
        } else {
            let bytes = t
                .data
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect();
            tensors.push((
                t.name.clone(),
                safetensors::Dtype::F16,
                t.shape.clone(),
                bytes,
            ));
        }
    }
    std::fs::create_dir(&packed).unwrap();
    for (name, bytes) in &ckpt.files {
        std::fs::write(packed.join(name), bytes).unwrap();
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &packed.join("model.safetensors")).unwrap();

    let c = compare(&packed, &minilm);
    assert!(c["signals"]["wvc"].is_null(), "no matrix is read: {c}");
    assert!(c["signals"]["eas"].is_null(), "nor the embedding: {c}");
    assert!(num(&c["signals"], "nlf") > 0.99, "{c}");
    assert_eq!(c["related"], true, "{c}");
    let scheme = c["a"]["quantization"].as_str().unwrap();
    assert!(scheme.contains("unsupported"), "{c}");
    assert!(
        !scheme.contains("fp8"),
        "FP8 scales read as FP8 weights: {c}"
    );
    // A fresh model with the same config: its constant norm gains carry no evidence either way.
    let c = compare(&packed, &fresh);
    assert_ne!(c["related"], true, "{c}");
}
