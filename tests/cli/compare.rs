//! Verdicts on real files: copies and mechanical derivations are related, independent models are not.

use super::util::{compare, derive, minilm, num, provsearch, synth, trained};
use base64::Engine;
use datasets::derive::{add_noise, fresh_init, int8_per_channel};
use datasets::synth::Family;
use datasets::{Checkpoint, Storage};
use serde_json::Value;

const FAMILIES: [Family; 3] = [Family::Llama, Family::Gpt2, Family::Bert];

/// The committed trained zoo model L-base.
fn l_base() -> std::path::PathBuf {
    trained("L-base")
}

/// A new directory `dir` holding L-base's files of these names; a test writes the rest of the model.
fn l_base_with(dir: &std::path::Path, names: &[&str]) {
    std::fs::create_dir(dir).unwrap();
    for name in names {
        std::fs::copy(l_base().join(name), dir.join(name)).unwrap();
    }
}

#[test]
fn same_weights_in_any_dtype_sharding_or_tensor_order_are_identical_in_effect() {
    for family in FAMILIES {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        let ckpt = synth(&base, family, 1);
        let variants = [
            ("f16", Storage::F16, 1),
            ("bf16", Storage::BF16, 1),
            ("sharded", Storage::F32, 3),
        ];
        for (name, storage, shards) in variants {
            let dst = tmp.path().join(name);
            derive(&base, &dst, storage, shards, |_| {});
            let c = compare(&base, &dst);
            assert_eq!(c["related"], true, "{family:?} {name}: {c}");
            assert!(num(&c, "identity_score") >= 0.99, "{family:?} {name}: {c}");
        }
        // Tensors stored in reverse order (a writer other than the safetensors serializer).
        let reordered = tmp.path().join("reordered");
        std::fs::create_dir_all(&reordered).unwrap();
        for (name, bytes) in &ckpt.files {
            std::fs::write(reordered.join(name), bytes).unwrap();
        }
        let order: Vec<usize> = (0..ckpt.tensors.len()).rev().collect();
        ckpt.write_in_order(&reordered.join("model.safetensors"), Storage::F32, &order)
            .unwrap();
        let c = compare(&base, &reordered);
        assert!(
            num(&c, "identity_score") >= 0.99,
            "{family:?} reordered: {c}"
        );
        assert_eq!(
            c["identical_weights"], false,
            "different bytes are not byte-identical"
        );
    }
}

/// `compare` skips the content digests when the weight files differ in total size (they cannot be
/// byte-identical). The verdicts stay right: a copy with the same bytes elsewhere is still identical, a copy of
/// another size still related, and a same-size copy with other bytes is not byte-identical.
#[test]
fn digests_skipped_for_different_sizes_leave_verdicts_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    synth(&base, Family::Llama, 4);
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&base).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let c = compare(&base, &copy);
    assert_eq!(c["verdict"], "identical", "same bytes elsewhere: {c}");
    assert_eq!(c["identical_weights"], true, "{c}");

    let half = tmp.path().join("f16");
    derive(&base, &half, Storage::F16, 1, |_| {});
    let size = |dir: &std::path::Path| {
        std::fs::metadata(dir.join("model.safetensors"))
            .unwrap()
            .len()
    };
    assert_ne!(size(&base), size(&half));
    let c = compare(&base, &half);
    assert_eq!(c["verdict"], "related", "{c}");
    assert_eq!(c["identical_weights"], false, "{c}");
    assert!(num(&c, "identity_score") >= 0.99, "{c}");

    let noisy = tmp.path().join("noisy");
    derive(&base, &noisy, Storage::F32, 1, |c: &mut Checkpoint| {
        add_noise(c, 0.01, 7)
    });
    assert_eq!(size(&base), size(&noisy));
    let c = compare(&base, &noisy);
    assert_eq!(c["identical_weights"], false, "same size, other bytes: {c}");
    assert_eq!(c["related"], true, "{c}");
}

#[test]
fn independently_initialised_models_of_each_family_are_not_related() {
    for family in FAMILIES {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        synth(&a, family, 1);
        synth(&b, family, 2);
        let c = compare(&a, &b);
        assert_eq!(c["related"], false, "{family:?}: {c}");
        assert!(num(&c, "identity_score") < 0.3, "{family:?}: {c}");
        // Same config and tokenizer: the reference's metadata tier 1 ("Confirmed Match") fires, we do not.
        assert_eq!(c["details"]["mfi_tier"], 1);
        assert_eq!(c["signals"]["voa"], 1.0);
    }
}

#[test]
fn real_model_against_its_int8_quantized_copy_is_related() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("minilm-int8");
    derive(&minilm(), &dst, Storage::F32, 1, int8_per_channel);
    let c = compare(&minilm(), &dst);
    assert_eq!(c["related"], true, "{c}");
    assert!(num(&c, "identity_score") >= 0.95, "{c}");
    assert!(num(&c["signals"], "wvc") > 0.99, "{c}");
}

#[test]
fn real_model_against_a_fresh_init_with_identical_config_and_tokenizer_is_not_related() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("minilm-fresh");
    derive(&minilm(), &dst, Storage::F32, 1, |c| fresh_init(c, 0.02, 7));
    let c = compare(&minilm(), &dst);
    assert_eq!(c["related"], false, "{c}");
    assert_eq!(c["verdict"], "not related");
    assert!(num(&c, "identity_score") < 0.2, "{c}");
    assert!(num(&c["signals"], "wvc").abs() < 0.05, "{c}");
    assert_eq!(c["details"]["mfi_tier"], 1, "identical config");
    assert_eq!(c["signals"]["voa"], 1.0, "identical tokenizer");
}

#[test]
fn noise_as_large_as_the_weights_still_leaves_the_copy_related() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("minilm-noisy");
    derive(&minilm(), &dst, Storage::F32, 1, |c| add_noise(c, 1.0, 3));
    let c = compare(&minilm(), &dst);
    assert_eq!(c["related"], true, "{c}");
    let wvc = num(&c["signals"], "wvc");
    assert!(
        (0.6..0.8).contains(&wvc),
        "noise = signal gives r ≈ 0.71, got {wvc}"
    );
}

#[test]
fn models_with_different_tokenizers_compare_over_shared_anchors() {
    let tmp = tempfile::tempdir().unwrap();
    let (llama, bert) = (tmp.path().join("llama"), tmp.path().join("bert"));
    synth(&llama, Family::Llama, 1);
    synth(&bert, Family::Bert, 1);
    let c = compare(&llama, &bert);
    assert!(
        c["details"]["eas"]["support"].as_u64().unwrap() >= 100,
        "anchors shared: {c}"
    );
    assert!(c["signals"]["eas"].is_number());
    assert_eq!(c["related"], false, "{c}");
    // And the real WordPiece model against a synthetic byte-level one.
    let gpt2 = tmp.path().join("gpt2");
    synth(&gpt2, Family::Gpt2, 5);
    let c = compare(&minilm(), &gpt2);
    assert!(
        c["details"]["eas"]["support"].as_u64().unwrap() >= 16,
        "{c}"
    );
    assert_eq!(c["related"], false, "{c}");
}

#[test]
fn compare_json_has_the_documented_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    synth(&a, Family::Llama, 1);
    let c = compare(&a, &a);
    assert!(c["identity_score"].is_number());
    assert_eq!(c["related"], true);
    assert_eq!(c["verdict"], "identical", "same files: byte-identical");
    for key in ["eas", "end", "nlf", "lep", "wvc", "mfi", "tfv", "voa"] {
        assert!(
            c["signals"][key].is_number() || c["signals"][key].is_null(),
            "signals.{key}: {c}"
        );
    }
    for side in ["a", "b"] {
        assert!(c[side]["id"].is_string() && c[side]["format"] == "safetensors");
        assert!(c[side]["parameter_count"].as_u64().unwrap() > 0);
    }
    // The human table names the verdict.
    let run = provsearch([std::path::Path::new("compare"), &a, &a]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("IDENTICAL"), "{}", run.stdout);
}

#[test]
fn embedding_stored_only_as_lm_head_still_fingerprints_and_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    synth(&base, Family::Llama, 3);
    let head_only = tmp.path().join("head-only");
    derive(&base, &head_only, Storage::F32, 1, |c: &mut Checkpoint| {
        let emb = c.get("model.embed_tokens.weight").unwrap().data.clone();
        c.tensors.retain(|t| t.name != "model.embed_tokens.weight");
        c.get_mut("lm_head.weight").unwrap().data = emb;
    });
    let run = provsearch([std::path::Path::new("fingerprint"), &head_only]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("lm_head"), "{}", run.stdout);
    let c = compare(&base, &head_only);
    assert_eq!(c["related"], true, "{c}");
    assert!(num(&c["signals"], "eas") > 0.99, "{c}");
}

#[test]
fn fingerprints_stay_within_64_kib_for_deep_models_and_round_trip_through_files() {
    use datasets::synth::{build, Spec};
    let tmp = tempfile::tempdir().unwrap();
    let deep = tmp.path().join("deep");
    let spec = Spec {
        family: Family::Llama,
        layers: 160,
        hidden: 32,
        intermediate: 64,
        heads: 2,
        vocab: 600,
        seed: 1,
    };
    build(&spec).write(&deep, Storage::F16, 4).unwrap();
    let saved = tmp.path().join("deep.rkyv");
    let run = provsearch([
        std::path::Path::new("fingerprint"),
        &deep,
        std::path::Path::new("-o"),
        &saved,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let size = std::fs::metadata(&saved).unwrap().len();
    assert!(
        size <= 64 * 1024,
        "fingerprint of a 160-layer model is {size} bytes"
    );
    // A saved fingerprint compares like the model itself.
    let json = tmp.path().join("deep.json");
    let run = provsearch([
        std::path::Path::new("fingerprint"),
        &deep,
        std::path::Path::new("-o"),
        &json,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = compare(&saved, &json);
    assert_eq!(c["verdict"], "identical", "{c}");
    let c = compare(&saved, &deep);
    assert_eq!(c["related"], true, "{c}");
}

/// DistilBERT is initialised from every other layer of BERT and stored under other names
/// (`distilbert.transformer.layer.N.attention.q_lin` for `encoder.layer.2N.attention.self.query`), without the
/// `encoder` stack: the student must still align with its teacher, and an unrelated BERT must not.
#[test]
fn distilbert_style_student_aligns_with_its_bert_teacher_across_naming() {
    use datasets::synth::{build, Spec};
    let tmp = tempfile::tempdir().unwrap();
    let spec = Spec {
        family: Family::Bert,
        layers: 6,
        hidden: 64,
        intermediate: 128,
        heads: 4,
        vocab: 1024,
        seed: 11,
    };
    let teacher = build(&spec);
    let teacher_dir = tmp.path().join("bert");
    teacher.write(&teacher_dir, Storage::F32, 1).unwrap();

    let rename = |name: &str| -> Option<String> {
        let map = [
            ("attention.self.query", "attention.q_lin"),
            ("attention.self.key", "attention.k_lin"),
            ("attention.self.value", "attention.v_lin"),
            ("attention.output.dense", "attention.out_lin"),
            ("attention.output.LayerNorm", "sa_layer_norm"),
            ("intermediate.dense", "ffn.lin1"),
            ("output.dense", "ffn.lin2"),
            ("output.LayerNorm", "output_layer_norm"),
        ];
        if let Some(rest) = name.strip_prefix("encoder.layer.") {
            let (layer, tail) = rest.split_once('.')?;
            let layer: usize = layer.parse().ok()?;
            if layer % 2 == 1 {
                return None;
            }
            let (module, param) = tail.rsplit_once('.')?;
            let (_, new) = map.iter().find(|(old, _)| *old == module)?;
            return Some(format!(
                "distilbert.transformer.layer.{}.{new}.{param}",
                layer / 2
            ));
        }
        (!name.contains("token_type") && !name.contains("position_ids"))
            .then(|| format!("distilbert.{name}"))
    };
    let mut student = datasets::Checkpoint {
        files: teacher.files.clone(),
        ..Default::default()
    };
    for t in &teacher.tensors {
        if let Some(name) = rename(&t.name) {
            student
                .tensors
                .push(datasets::Tensor::new(name, t.shape.clone(), t.data.clone()));
        }
    }
    datasets::derive::add_noise(&mut student, 0.7, 5); // distillation training moves the weights
    let config = serde_json::json!({"architectures": ["DistilBertModel"], "model_type": "distilbert", "dim": 64,
        "n_layers": 3, "n_heads": 4, "hidden_dim": 128, "vocab_size": 1024, "max_position_embeddings": 128});
    student
        .files
        .insert("config.json".into(), config.to_string().into_bytes());
    let student_dir = tmp.path().join("distil");
    student.write(&student_dir, Storage::F32, 1).unwrap();

    let c = compare(&student_dir, &teacher_dir);
    assert_eq!(c["related"], true, "{c}");
    assert!(
        c["layer_alignment"].is_string(),
        "3 vs 6 layers are aligned by search: {c}"
    );
    let unrelated = tmp.path().join("bert-other");
    synth(&unrelated, Family::Bert, 12);
    let c = compare(&student_dir, &unrelated);
    assert_eq!(c["related"], false, "{c}");
}

/// GLM-4 and Meta's original Llama 3 files hold a tiktoken ranks file as `tokenizer.model`: the committed
/// zoo model with its byte-level tokenizer.json rewritten that way (ranks = ids, the special token in
/// tokenizer_config.json) fingerprints to the same vocabulary and anchors.
#[test]
fn a_tiktoken_ranks_file_reads_as_the_same_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let zoo = l_base();
    let (json_dir, ranks_dir) = (tmp.path().join("json"), tmp.path().join("ranks"));
    l_base_with(
        &json_dir,
        &["config.json", "model.safetensors", "tokenizer.json"],
    );
    l_base_with(&ranks_dir, &["config.json", "model.safetensors"]);

    let tokenizer: Value =
        serde_json::from_str(&std::fs::read_to_string(zoo.join("tokenizer.json")).unwrap())
            .unwrap();
    let added = tokenizer["added_tokens"].as_array().unwrap();
    let is_added = |t: &str| added.iter().any(|a| a["content"] == t);
    let byte_of = provsearch_formats::tokenizer::unicode_to_byte();
    let mut ranks = String::new();
    for (token, id) in tokenizer["model"]["vocab"].as_object().unwrap() {
        if !is_added(token) {
            let bytes: Vec<u8> = token.chars().map(|c| byte_of[&c]).collect();
            ranks += &format!(
                "{} {id}\n",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            );
        }
    }
    std::fs::write(ranks_dir.join("tokenizer.model"), ranks).unwrap();
    let decoder: serde_json::Map<String, Value> = added
        .iter()
        .map(|a| {
            (
                a["id"].to_string(),
                serde_json::json!({"content": a["content"], "special": true}),
            )
        })
        .collect();
    std::fs::write(
        ranks_dir.join("tokenizer_config.json"),
        serde_json::json!({ "added_tokens_decoder": decoder }).to_string(),
    )
    .unwrap();

    let itself = compare(&json_dir, &json_dir);
    let c = compare(&json_dir, &ranks_dir);
    assert_eq!(c["related"], true, "{c}");
    assert_eq!(c["signals"]["voa"], 1.0, "{c}");
    assert_eq!(
        c["details"]["eas"]["support"], itself["details"]["eas"]["support"],
        "same anchors found"
    );
    assert_eq!(c["signals"]["eas"], 1.0, "{c}");
    let evidence = c["evidence"].to_string();
    assert!(
        evidence.contains("tokenizers: identical vocabularies"),
        "{evidence}"
    );
}

/// Tensors in the OCP microscaling dtypes (FP4 blocks with E8M0 scales, as MXFP4 experts are stored) and a
/// complex rotary buffer, beside ordinary weights: the model fingerprints, lists those dtypes, skips their
/// tensors with a note, and matches its plain self on the rest.
#[test]
fn microscaling_and_complex_tensors_are_listed_and_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let zoo = l_base();
    let mx = tmp.path().join("mx");
    l_base_with(&mx, &["config.json", "tokenizer.json"]);
    let bytes = std::fs::read(zoo.join("model.safetensors")).unwrap();
    let plain = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (blocks, scales, freqs) = (vec![0x21u8; 512], vec![127u8; 128], vec![0u8; 64]);
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> = plain.tensors();
    for (name, dtype, shape, data) in [
        (
            "model.layers.0.mlp.experts.gate_up_proj_blocks",
            safetensors::Dtype::F4,
            vec![64, 16],
            &blocks,
        ),
        (
            "model.layers.0.mlp.experts.gate_up_proj_scales",
            safetensors::Dtype::F8_E8M0,
            vec![64, 2],
            &scales,
        ),
        (
            "model.freqs_cis",
            safetensors::Dtype::C64,
            vec![4, 2],
            &freqs,
        ),
    ] {
        let view = safetensors::tensor::TensorView::new(dtype, shape, data).unwrap();
        tensors.push((name.to_string(), view));
    }
    safetensors::serialize_to_file(tensors, None, &mx.join("model.safetensors")).unwrap();

    let run = provsearch([
        std::path::Path::new("fingerprint"),
        &mx,
        std::path::Path::new("--json"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fp: Value = serde_json::from_str(&run.stdout).unwrap();
    let dtypes = fp["source"]["dtypes"].to_string();
    for dtype in ["F4", "F8_E8M0", "C64"] {
        assert!(dtypes.contains(&format!("\"{dtype}\"")), "{dtypes}");
    }
    assert!(
        fp["weights"]["notes"]
            .to_string()
            .contains("3 integer/packed"),
        "{}",
        fp["weights"]
    );
    let c = compare(&mx, &zoo);
    assert_eq!(c["related"], true, "{c}");
    assert_eq!(c["signals"]["wvc"], 1.0, "{c}");
}

/// Mamba-2 and Nemotron-H configs hold `"time_step_limit": [0.0, Infinity]`, as Python's `json` writes it:
/// every reader of config.json takes it (the model config and the quantization declaration both read it).
#[test]
fn a_config_with_python_infinity_fingerprints() {
    let tmp = tempfile::tempdir().unwrap();
    let zoo = l_base();
    let dir = tmp.path().join("inf");
    l_base_with(&dir, &["model.safetensors", "tokenizer.json"]);
    let config = std::fs::read_to_string(zoo.join("config.json")).unwrap();
    let body = config.trim_end().strip_suffix('}').unwrap();
    let config = format!(
        "{body},\n  \"time_step_limit\": [0.0, Infinity],\n  \"time_step_floor\": NaN\n}}\n"
    );
    std::fs::write(dir.join("config.json"), config).unwrap();
    let c = compare(&dir, &zoo);
    assert_eq!(c["related"], true, "{c}");
    assert_eq!(
        c["signals"]["mfi"], 1.0,
        "the same architecture fields: {c}"
    );
}
