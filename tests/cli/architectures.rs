//! Checkpoints in naming schemes other than the three synthetic families, written with the real safetensors
//! serializer and a real tokenizer: a Mamba (falcon-mamba) layout, a ChatGLM3/GLM-4 remote-code layout and
//! Mistral's native layout. The
//! token embedding must be found under its own name, buffers and init-fixed parameters that every model of the
//! architecture shares (Mamba's `A_log`, ChatGLM's `rotary_pos_emb.inv_freq`) must not count as evidence, a
//! perturbed copy must come out related and an independently initialised model must not.
//!
//! Tensor names and shapes follow transformers' models/mamba/modeling_mamba.py and THUDM's
//! modeling_chatglm.py (chatglm3-6b, glm-4-9b). Mistral's native layout follows transformers'
//! convert_mistral_weights_to_hf.py.

use super::util::{compare, num, provsearch};
use datasets::derive::add_noise;
use datasets::rng::Rng;
use datasets::synth::{build, randn, Family, Spec};
use datasets::{Checkpoint, Storage, Tensor};
use serde_json::{json, Value};
use std::path::Path;

const VOCAB: usize = 1024;
const HIDDEN: usize = 64;
const LAYERS: usize = 4;

/// Values around `centre` with a per-coordinate pattern (trained norm gains, Mamba's `D`).
fn around(rng: &mut Rng, name: &str, n: usize, centre: f32) -> Tensor {
    Tensor::new(
        name,
        vec![n],
        (0..n).map(|_| centre + 0.1 * rng.normal() as f32).collect(),
    )
}

/// A checkpoint with the Llama synthetic model's tokenizer files (1024 tokens) and the given tensors and config.
fn with_tokenizer(tensors: Vec<Tensor>, config: Value) -> Checkpoint {
    let mut files = build(&Spec::small(Family::Llama, 1)).files;
    files.insert(
        "config.json".into(),
        serde_json::to_vec_pretty(&config).expect("config serialises"),
    );
    let mut ckpt = Checkpoint { tensors, files };
    ckpt.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    ckpt
}

/// Mamba-1 (MambaForCausalLM / FalconMambaForCausalLM): `backbone.embeddings`, `backbone.layers.N.mixer.*`,
/// `backbone.norm_f`, untied `lm_head`. `A_log` is `log(1..=state)` in every row, as Mamba initialises it, plus
/// a small trained drift: the same pattern in every model of the architecture.
fn mamba(seed: u64) -> Checkpoint {
    let (inner, state, dt_rank, conv) = (2 * HIDDEN, 16, 4, 4);
    let mut rng = Rng::new(seed);
    let mut t = vec![randn(
        &mut rng,
        "backbone.embeddings.weight",
        vec![VOCAB, HIDDEN],
        0.02,
    )];
    for l in 0..LAYERS {
        let p = format!("backbone.layers.{l}");
        t.push(around(&mut rng, &format!("{p}.norm.weight"), HIDDEN, 1.0));
        let a_log = (0..inner * state)
            .map(|i| (((i % state) + 1) as f32).ln() + 0.02 * rng.normal() as f32)
            .collect();
        t.push(Tensor::new(
            format!("{p}.mixer.A_log"),
            vec![inner, state],
            a_log,
        ));
        t.push(around(&mut rng, &format!("{p}.mixer.D"), inner, 1.0));
        t.push(randn(
            &mut rng,
            &format!("{p}.mixer.conv1d.weight"),
            vec![inner, 1, conv],
            0.2,
        ));
        t.push(around(
            &mut rng,
            &format!("{p}.mixer.conv1d.bias"),
            inner,
            0.0,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.mixer.in_proj.weight"),
            vec![2 * inner, HIDDEN],
            0.02,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.mixer.x_proj.weight"),
            vec![dt_rank + 2 * state, inner],
            0.02,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.mixer.dt_proj.weight"),
            vec![inner, dt_rank],
            0.5,
        ));
        t.push(around(
            &mut rng,
            &format!("{p}.mixer.dt_proj.bias"),
            inner,
            -4.0,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.mixer.out_proj.weight"),
            vec![HIDDEN, inner],
            0.02,
        ));
    }
    t.push(around(&mut rng, "backbone.norm_f.weight", HIDDEN, 1.0));
    t.push(randn(&mut rng, "lm_head.weight", vec![VOCAB, HIDDEN], 0.02));
    with_tokenizer(
        t,
        json!({
            "architectures": ["FalconMambaForCausalLM"], "model_type": "falcon_mamba",
            "hidden_size": HIDDEN, "intermediate_size": inner, "num_hidden_layers": LAYERS,
            "state_size": state, "conv_kernel": conv, "expand": 2, "time_step_rank": dt_rank,
            "vocab_size": VOCAB, "layer_norm_epsilon": 1e-5, "tie_word_embeddings": false
        }),
    )
}

/// ChatGLM3/GLM-4 remote code: `transformer.embedding.word_embeddings`, `transformer.encoder.layers.N` with a
/// fused `query_key_value` (4 heads, 1 key-value group of 16), a fused gate+up `dense_h_to_4h`,
/// `transformer.output_layer`, and the stored rotary buffer `transformer.rotary_pos_emb.inv_freq`, which is the
/// same in every model with this head size.
fn chatglm(seed: u64) -> Checkpoint {
    let (heads, head_dim, groups, ffn) = (4, 16, 1, 128);
    let qkv = heads * head_dim + 2 * groups * head_dim;
    let mut rng = Rng::new(seed);
    let mut t = vec![randn(
        &mut rng,
        "transformer.embedding.word_embeddings.weight",
        vec![VOCAB, HIDDEN],
        0.02,
    )];
    let inv_freq = (0..head_dim / 4)
        .map(|i| 1.0 / 10000f32.powf((4 * i) as f32 / (head_dim / 2) as f32))
        .collect();
    t.push(Tensor::new(
        "transformer.rotary_pos_emb.inv_freq",
        vec![head_dim / 4],
        inv_freq,
    ));
    for l in 0..LAYERS {
        let p = format!("transformer.encoder.layers.{l}");
        t.push(around(
            &mut rng,
            &format!("{p}.input_layernorm.weight"),
            HIDDEN,
            1.0,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.self_attention.query_key_value.weight"),
            vec![qkv, HIDDEN],
            0.02,
        ));
        t.push(around(
            &mut rng,
            &format!("{p}.self_attention.query_key_value.bias"),
            qkv,
            0.0,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.self_attention.dense.weight"),
            vec![HIDDEN, HIDDEN],
            0.02,
        ));
        t.push(around(
            &mut rng,
            &format!("{p}.post_attention_layernorm.weight"),
            HIDDEN,
            1.0,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.mlp.dense_h_to_4h.weight"),
            vec![2 * ffn, HIDDEN],
            0.02,
        ));
        t.push(randn(
            &mut rng,
            &format!("{p}.mlp.dense_4h_to_h.weight"),
            vec![HIDDEN, ffn],
            0.02,
        ));
    }
    t.push(around(
        &mut rng,
        "transformer.encoder.final_layernorm.weight",
        HIDDEN,
        1.0,
    ));
    t.push(randn(
        &mut rng,
        "transformer.output_layer.weight",
        vec![VOCAB, HIDDEN],
        0.02,
    ));
    with_tokenizer(
        t,
        json!({
            "architectures": ["ChatGLMModel"], "model_type": "chatglm",
            "add_bias_linear": false, "add_qkv_bias": true, "ffn_hidden_size": ffn,
            "hidden_size": HIDDEN, "kv_channels": head_dim, "layernorm_epsilon": 1e-5,
            "multi_query_attention": true, "multi_query_group_num": groups,
            "num_attention_heads": heads, "num_layers": LAYERS, "padded_vocab_size": VOCAB,
            "rmsnorm": true, "seq_length": 128, "tie_word_embeddings": false
        }),
    )
}

/// `provsearch fingerprint --json PATH`, parsed.
fn fingerprint_json(path: &Path) -> Value {
    let run = provsearch([Path::new("fingerprint"), path, Path::new("--json")]);
    assert_eq!(run.code, 0, "fingerprint failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("fingerprint --json prints JSON")
}

fn roles(fp: &Value, which: &str) -> Vec<String> {
    fp["weights"][which]["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("no weights.{which}.roles in {fp}"))
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect()
}

/// Write `build(seed)`, a copy with noise of 0.3× each tensor's RMS, and an independent model (another seed),
/// and check the fingerprint of the first and the verdicts. Returns the first's fingerprint.
fn check_layout(build: fn(u64) -> Checkpoint, embedding: &str, shared: &[&str]) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let (base, noisy, fresh) = (
        tmp.path().join("base"),
        tmp.path().join("noisy"),
        tmp.path().join("fresh"),
    );
    let ckpt = build(7);
    ckpt.write(&base, Storage::BF16, 1).unwrap();
    let mut copy = ckpt.clone();
    add_noise(&mut copy, 0.3, 99);
    copy.write(&noisy, Storage::BF16, 2).unwrap();
    build(8).write(&fresh, Storage::BF16, 1).unwrap();

    let fp = fingerprint_json(&base);
    assert_eq!(
        fp["weights"]["embedding"]["tensor"], embedding,
        "embedding not found: {}",
        fp["weights"]["notes"]
    );
    assert_eq!(fp["weights"]["embedding"]["rows"], VOCAB as u64);
    let all: Vec<String> = roles(&fp, "matrices")
        .into_iter()
        .chain(roles(&fp, "norms"))
        .collect();
    assert!(
        all.iter()
            .any(|r| r.starts_with("mixer.") || r == "attn_qkv"),
        "no layer tensors sampled: {all:?}"
    );
    for s in shared {
        assert!(
            !all.iter().any(|r| r.to_lowercase().contains(s)),
            "{s} was sampled: {all:?}"
        );
    }

    let related = compare(&base, &noisy);
    assert_eq!(related["related"], true, "noisy copy: {related}");
    assert!(
        num(&related, "identity_score") > 0.5,
        "noisy copy: {related}"
    );
    let unrelated = compare(&base, &fresh);
    assert_eq!(
        unrelated["related"], false,
        "independent model: {unrelated}"
    );
    fp
}

#[test]
fn mamba_layout_embedding_found_and_verdicts_right() {
    let fp = check_layout(mamba, "backbone.embeddings.weight", &["a_log"]);
    let m = &fp["metadata"];
    assert_eq!(
        (&m["hidden_size"], &m["num_layers"], &m["vocab_size"]),
        (&json!(HIDDEN), &json!(LAYERS), &json!(VOCAB))
    );
}

#[test]
fn chatglm_layout_embedding_found_and_verdicts_right() {
    let fp = check_layout(
        chatglm,
        "transformer.embedding.word_embeddings.weight",
        &["inv_freq", "output_layer"],
    );
    let m = &fp["metadata"];
    assert_eq!(m["num_key_value_heads"], 1, "{m}");
    assert_eq!(m["intermediate_size"], 128, "{m}");
    assert_eq!(m["vocab_size"], VOCAB as u64, "{m}");
    assert_eq!(m["num_layers"], LAYERS as u64, "{m}");
    assert_eq!(m["head_dim"], 16, "{m}");
    let roles = roles(&fp, "matrices");
    for r in ["attn_qkv", "attn_o", "mlp_up", "mlp_down"] {
        assert!(roles.iter().any(|x| x == r), "{r} missing: {roles:?}");
    }
}

/// Mistral's native layout (`consolidated.safetensors` with `params.json`, no config.json; Pixtral,
/// mamba-codestral and other Mistral releases ship only this): the same weights as the HF Llama checkpoint,
/// renamed and with Q/K rows interleaved per head. Read in HF's row order, every tensor pairs with the HF
/// copy's (WVC ≈ 1; 0.83 when read as stored). Beside HF shards without an index, the consolidated file is left out rather than read
/// twice. An independent model in the native layout is not related.
#[test]
fn mistral_native_layout_pairs_with_its_hf_conversion() {
    let tmp = tempfile::tempdir().unwrap();
    let (hf, native, other) = (
        tmp.path().join("hf"),
        tmp.path().join("native"),
        tmp.path().join("other"),
    );
    let spec = Spec::small(Family::Llama, 11);
    let ckpt = build(&spec);
    ckpt.write(&hf, Storage::BF16, 1).unwrap();
    let write_native = |ckpt: &Checkpoint, dir: &Path| {
        datasets::native::mistral_native(ckpt)
            .unwrap()
            .write(dir, Storage::BF16, 1)
            .unwrap();
        std::fs::rename(
            dir.join("model.safetensors"),
            dir.join("consolidated.safetensors"),
        )
        .unwrap();
    };
    write_native(&ckpt, &native);
    write_native(&build(&Spec::small(Family::Llama, 12)), &other);
    assert!(!native.join("config.json").exists());

    let run = provsearch([Path::new("fingerprint"), &native, Path::new("--json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f: Value = serde_json::from_str(&run.stdout).unwrap();
    let notes = f["weights"]["notes"].to_string();
    assert!(
        notes.contains("read in Hugging Face's rotary row order"),
        "{notes}"
    );

    let c = compare(&native, &hf);
    assert_eq!(c["related"], true, "{c}");
    assert!(num(&c, "identity_score") >= 0.99, "{c}");
    assert!(num(&c["signals"], "wvc") > 0.999, "Q/K rows aligned: {c}");
    let c = compare(&native, &other);
    assert_eq!(c["related"], false, "{c}");

    // HF weights and the consolidated copy side by side, no index: the HF file alone is read.
    std::fs::copy(
        native.join("consolidated.safetensors"),
        hf.join("consolidated.safetensors"),
    )
    .unwrap();
    let run = provsearch([Path::new("fingerprint"), &hf, Path::new("--json")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        f["source"]["tensor_count"],
        ckpt.tensors.len(),
        "{}",
        f["source"]
    );

    // Native names beside a config.json are as likely a renamed HF checkpoint (the zoo's
    // `L-base--f32-renamed-sharded`): read as stored.
    std::fs::copy(hf.join("config.json"), native.join("config.json")).unwrap();
    let run = provsearch([Path::new("fingerprint"), &native, Path::new("--json")]);
    let f: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        !f["weights"]["notes"].to_string().contains("rotary"),
        "{}",
        f["weights"]["notes"]
    );
    std::fs::remove_file(native.join("config.json")).unwrap();

    // Without params.json the native directory is an error that names what is missing.
    std::fs::remove_file(native.join("params.json")).unwrap();
    let run = provsearch([Path::new("fingerprint"), &native]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("params.json"), "{}", run.stderr);
}
