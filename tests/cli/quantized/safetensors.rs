//! Quantized safetensors checkpoints in the layouts of GPTQ, AWQ, bitsandbytes, FP8, MLX, compressed-tensors,
//! NVFP4/MXFP4 and gpt-oss (written by `datasets::quantize`): dequantized, each is related to its float source and not to an independent model;
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

const SCHEMES: [(Scheme, &str); 16] = [
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
    (Scheme::Nvfp4 { modelopt: false }, "nvfp4"),
    (Scheme::Nvfp4 { modelopt: true }, "nvfp4"),
    (Scheme::Mxfp4, "mxfp4"),
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

/// gpt-oss: a model whose MLP is stored as fused experts (`mlp.experts.gate_up_proj` `[E, hidden, 2·I]`, as
/// in the BF16 conversions of gpt-oss), against the same model with those experts in MXFP4 `_blocks` and
/// `_scales` (as openai/gpt-oss-20b ships them): related, the dequantized experts pairing tensor for tensor with
/// the float ones; an independent model is not.
#[test]
fn gpt_oss_mxfp4_experts_are_related_to_their_float_form() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, quantized, other) = (
        tmp.path().join("bf16"),
        tmp.path().join("mxfp4"),
        tmp.path().join("other"),
    );
    let fused = datasets::quantize::fuse_experts(&build(&spec(5)), 2);
    fused.write(&source, Storage::BF16, 1).unwrap();
    write_quantized(&fused, &quantized, Scheme::GptOssMxfp4).unwrap();
    datasets::quantize::fuse_experts(&build(&spec(6)), 2)
        .write(&other, Storage::BF16, 1)
        .unwrap();

    let run = provsearch([Path::new("fingerprint"), &quantized, Path::new("--json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(f["source"]["quantization"], "mxfp4");
    assert_eq!(f["source"]["tensor_count"], fused.tensors.len());
    let notes = f["weights"]["notes"].to_string();
    assert!(notes.contains("dequantized 8 mxfp4 tensors"), "{notes}");

    let c = compare(&quantized, &source);
    eprintln!(
        "gpt-oss mxfp4: identity {} wvc {} lep {}",
        c["identity_score"], c["signals"]["wvc"], c["signals"]["lep"]
    );
    assert_eq!(c["related"], true, "{c}");
    assert!(num(&c, "identity_score") >= 0.95, "{c}");
    assert!(num(&c["signals"], "wvc") > 0.9, "{c}");
    assert!(num(&c["signals"], "lep") > 0.9, "{c}");
    let c = compare(&quantized, &other);
    assert_eq!(c["related"], false, "{c}");
    assert!(num(&c, "identity_score") < 0.3, "{c}");
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
/// mlx-community conversions are): related to the original through every signal, embeddings included. In
/// ModelOpt's NVFP4 and compressed-tensors' MXFP4 layouts (layer matrices only) it is related through its
/// matrices as well.
#[test]
fn real_model_quantized_is_related_to_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = datasets::Checkpoint::read(&crate::cli::util::minilm()).unwrap();
    for (scheme, label) in [
        (Scheme::Mlx { bits: 4, group: 64 }, "mlx-4bit"),
        (Scheme::Nvfp4 { modelopt: true }, "nvfp4"),
        (Scheme::Mxfp4, "mxfp4"),
    ] {
        let dir = tmp.path().join(label);
        write_quantized(&ckpt, &dir, scheme).unwrap();
        let c = compare(&dir, &crate::cli::util::minilm());
        eprintln!(
            "minilm {label}: identity {} wvc {}",
            c["identity_score"], c["signals"]["wvc"]
        );
        assert_eq!(c["related"], true, "{c}");
        assert_eq!(c["a"]["quantization"], label, "{c}");
        for signal in ["wvc", "eas", "end"] {
            assert!(num(&c["signals"], signal) > 0.98, "{label} {signal}: {c}");
        }
    }
}

/// A checkpoint whose every matrix, embedding and head included, is in a layout this build does not read (here
/// MXFP6: F6_E2M3 weights with E8M0 `weight_scale`s) keeps only its norms and linear biases, and the norms
/// decide: the real all-MiniLM-L6-v2 packed so is related to its source. The 8-bit scales are not taken for
/// weights, and a fresh model with the same config is not called related.
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
        } else if t.shape.len() == 2 && t.name.ends_with(".weight") && t.shape[1] % 32 == 0 {
            let (out, input) = (t.shape[0], t.shape[1]);
            let prefix = t.name.trim_end_matches(".weight");
            tensors.push((
                t.name.clone(),
                safetensors::Dtype::F6_E2M3,
                vec![out, input],
                vec![0x21; out * input * 3 / 4],
            ));
            tensors.push((
                format!("{prefix}.weight_scale"),
                safetensors::Dtype::F8_E8M0,
                vec![out, input / 32],
                vec![127; out * input / 32],
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
    let run = provsearch([Path::new("fingerprint"), &packed, Path::new("--json")]);
    let notes = serde_json::from_str::<Value>(&run.stdout).unwrap()["weights"]["notes"].to_string();
    assert!(
        notes.contains("packed weight tensors carry no usable values"),
        "{notes}"
    );
    // A fresh model with the same config: its constant norm gains carry no evidence either way.
    let c = compare(&packed, &fresh);
    assert_ne!(c["related"], true, "{c}");
}
