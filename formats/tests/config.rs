//! config.json reading: malformed input, the alias table, text backbones, and the reference hashes
//! cross-checked against Python `json.dumps` + SHA-256.

use provsearch_formats::config::ModelConfig;
use provsearch_formats::Error;
use std::path::Path;

mod common;

fn parse(text: &str) -> Result<ModelConfig, Error> {
    ModelConfig::parse(Path::new("models/x/config.json"), text)
}

fn json_err(text: &str) -> String {
    let e = parse(text).expect_err("must be refused");
    assert!(matches!(e, Error::Json { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("models/x/config.json"),
        "message does not name the file: {msg}"
    );
    msg
}

#[test]
fn malformed_json_reports_line_and_column() {
    let msg = json_err("{\n  \"hidden_size\": 4096,\n  \"model_type\": llama\n}");
    assert!(msg.contains("line 3 column"), "{msg}");
    assert!(json_err("").contains("line 1 column 0"));
    assert!(json_err("[1, 2]").contains("not a JSON object"));
}

/// Python's `json` writes non-finite floats as bare words; Mamba-2 and Nemotron-H configs carry them.
#[test]
fn python_non_finite_floats_are_read_as_null() {
    let text = r#"{"model_type": "mamba2", "hidden_size": 768, "num_hidden_layers": 24,
        "time_step_limit": [0.0, Infinity], "time_step_floor": NaN, "x": -Infinity, "name": "NaN"}"#;
    let c = parse(text).unwrap();
    assert_eq!((c.hidden_size, c.num_layers), (768, 24));
    assert_eq!(c.model_type, "mamba2");
    // Anything else wrong is still reported where the file has it.
    let msg = json_err("{\"time_step_limit\": [0.0, Infinity],\n \"a\": Inf}");
    assert!(msg.contains("line 2 column"), "{msg}");
}

#[test]
fn wrong_field_types_name_the_field() {
    assert!(json_err(r#"{"hidden_size": "big"}"#).contains("`hidden_size`"));
    assert!(json_err(r#"{"n_embd": -3}"#).contains("`n_embd`"));
    assert!(json_err(r#"{"vocab_size": 1000.5}"#).contains("`vocab_size`"));
    assert!(json_err(r#"{"vocab_size": -1.0}"#).contains("`vocab_size`"));
    assert!(json_err(r#"{"vocab_size": 1e10}"#).contains("below 2^32"));
    assert!(json_err(r#"{"num_hidden_layers": 99999999999}"#).contains("below 2^32"));
    assert!(json_err(r#"{"model_type": 7}"#).contains("`model_type`"));
    assert!(json_err(r#"{"architectures": "LlamaForCausalLM"}"#).contains("`architectures`"));
    assert!(json_err(r#"{"architectures": ["A", 1]}"#).contains("`architectures`"));
    assert!(json_err(r#"{"rope_theta": "1e4"}"#).contains("`rope_theta`"));
    assert!(
        json_err(r#"{"text_config": {"hidden_size": [1]}}"#).contains("`text_config.hidden_size`")
    );
    // A float with no fractional part is that integer (Python's `int()` and `==` agree).
    let c = parse(r#"{"hidden_size": 4096.0, "vocab_size": 3.2e4}"#).unwrap();
    assert_eq!((c.hidden_size, c.vocab_size), (4096, 32000));
    // Unknown extra fields and nulls are fine.
    let c = parse(
        r#"{"hidden_size": null, "whatever": {"deep": [1, "x"]}, "num_key_value_heads": null}"#,
    )
    .unwrap();
    assert_eq!(c.hidden_size, 0);
    assert_eq!(c.model_type, "unknown");
    assert_eq!(c.architectures, vec!["unknown"]);
}

#[test]
fn gpt2_aliases() {
    let c = parse(
        r#"{"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "bos_token_id": 50256,
            "eos_token_id": 50256, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768,
            "n_head": 12, "n_inner": null, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}"#,
    )
    .unwrap();
    assert_eq!(
        (c.hidden_size, c.num_layers, c.num_attention_heads),
        (768, 12, 12)
    );
    assert_eq!(
        (c.intermediate_size, c.vocab_size, c.max_position_embeddings),
        (0, 50257, 1024)
    );
    assert_eq!(c.num_key_value_heads, None);
    assert_eq!(c.attention_style, "MHA");
    assert_eq!(c.norm_type, "LayerNorm");
    assert_eq!(c.pos_encoding, "absolute");
    assert_eq!(c.hidden_act.as_deref(), Some("gelu_new"));
    assert_eq!((c.bos_token_id, c.eos_token_id), (Some(50256), Some(50256)));
    assert_eq!(
        c.arch_text(),
        r#"["gpt2", ["GPT2LMHeadModel"], 768, 12, 12, null, 0, 50257, 1024]"#
    );
    // hashlib.sha256(json.dumps(["gpt2", ["GPT2LMHeadModel"], 768, 12, 12, None, 0, 50257, 1024]).encode())
    assert_eq!(
        c.arch_hash(),
        "912dae4ea0797958c503a679d1dec973b6194fb80110be7e370d92c36f07bc10"
    );
}

#[test]
fn t5_aliases() {
    let c = parse(
        r#"{"architectures": ["T5ForConditionalGeneration"], "d_ff": 2048, "d_kv": 64, "d_model": 512,
            "eos_token_id": 1, "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06, "model_type": "t5",
            "num_decoder_layers": 6, "num_heads": 8, "num_layers": 6, "vocab_size": 32128,
            "feed_forward_proj": "relu"}"#,
    )
    .unwrap();
    assert_eq!(
        (c.hidden_size, c.num_layers, c.num_attention_heads),
        (512, 6, 8)
    );
    assert_eq!(
        (c.intermediate_size, c.head_dim, c.max_position_embeddings),
        (2048, Some(64), 0)
    );
    assert!(c.is_encoder_decoder);
    assert_eq!(c.norm_type, "LayerNorm"); // the reference's (wrong but faithful) answer for T5
    assert_eq!(c.hidden_act, None);
}

#[test]
fn other_aliases_and_fallbacks() {
    // DistilBERT: dim / n_layers / n_heads, hidden_dim as the MLP width.
    let c = parse(r#"{"model_type": "distilbert", "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072}"#)
        .unwrap();
    assert_eq!(
        (
            c.hidden_size,
            c.num_layers,
            c.num_attention_heads,
            c.intermediate_size
        ),
        (768, 6, 12, 3072)
    );
    // hidden_dim equal to hidden_size is not an MLP width.
    assert_eq!(
        parse(r#"{"hidden_size": 64, "hidden_dim": 64}"#)
            .unwrap()
            .intermediate_size,
        0
    );
    // BART: d_model, encoder_layers, encoder_attention_heads, zero intermediate skipped for encoder_ffn_dim.
    let c = parse(
        r#"{"model_type": "bart", "d_model": 1024, "encoder_layers": 12, "encoder_attention_heads": 16,
            "intermediate_size": 0, "encoder_ffn_dim": 4096, "activation_function": "gelu"}"#,
    )
    .unwrap();
    assert_eq!(
        (
            c.hidden_size,
            c.num_layers,
            c.num_attention_heads,
            c.intermediate_size
        ),
        (1024, 12, 16, 4096)
    );
    // Bloom/Falcon spelling.
    assert_eq!(parse(r#"{"n_embed": 4544}"#).unwrap().hidden_size, 4544);
}

#[test]
fn kv_heads_fill_and_falcon() {
    let llama = parse(r#"{"model_type": "llama", "num_attention_heads": 32}"#).unwrap();
    assert_eq!(llama.num_key_value_heads, Some(32));
    let gqa =
        parse(r#"{"model_type": "mistral", "num_attention_heads": 32, "num_key_value_heads": 8}"#)
            .unwrap();
    assert_eq!(
        (gqa.num_key_value_heads, gqa.attention_style.as_str()),
        (Some(8), "GQA")
    );
    let bert = parse(r#"{"model_type": "bert", "num_attention_heads": 12}"#).unwrap();
    assert_eq!(bert.num_key_value_heads, None);
    let falcon7 = parse(r#"{"model_type": "falcon", "n_head": 71, "multi_query": true}"#).unwrap();
    assert_eq!(
        (
            falcon7.num_key_value_heads,
            falcon7.attention_style.as_str()
        ),
        (Some(1), "MQA")
    );
    let falcon40 = parse(
        r#"{"model_type": "falcon", "num_attention_heads": 128, "num_kv_heads": 8, "multi_query": true,
            "new_decoder_architecture": true, "alibi": false, "bias": false}"#,
    )
    .unwrap();
    assert_eq!(falcon40.num_key_value_heads, Some(8));
    assert_eq!(falcon40.attention_bias, Some(false));
    assert_eq!(falcon40.pos_encoding, "absolute");
    let bloom = parse(r#"{"model_type": "bloom", "alibi": true}"#).unwrap();
    assert_eq!(bloom.pos_encoding, "alibi");
}

#[test]
fn multimodal_text_config_backbone() {
    let c = parse(
        r#"{"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
            "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24},
            "text_config": {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
                            "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
                            "vocab_size": 32064, "rms_norm_eps": 1e-5, "max_position_embeddings": 8192,
                            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "rope_theta": 500000.0}},
            "tie_word_embeddings": false, "eos_token_id": [2, 32007]}"#,
    )
    .unwrap();
    assert_eq!(c.model_type, "llava");
    assert_eq!(c.architectures, vec!["LlavaForConditionalGeneration"]);
    assert_eq!(
        (c.hidden_size, c.num_layers, c.num_attention_heads),
        (4096, 32, 32)
    );
    assert_eq!(
        (c.intermediate_size, c.vocab_size, c.max_position_embeddings),
        (14336, 32064, 8192)
    );
    assert_eq!(c.attention_style, "GQA");
    assert_eq!(c.norm_type, "RMSNorm");
    assert_eq!((c.rope_theta, c.rope_theta_is_int), (Some(500000.0), false));
    assert_eq!(c.rope_scaling_type.as_deref(), Some("llama3"));
    assert_eq!(c.pos_encoding, "RoPE");
    assert_eq!(c.tie_word_embeddings, Some(false));
    assert_eq!(c.eos_token_id, Some(2));
    assert_eq!(
        c.family_text("tok\u{e9}"),
        r#"["llava", "GQA", null, "RMSNorm", "tok\u00e9", "500000.0", "llama3"]"#
    );
    // hashlib.sha256(json.dumps(["llava", "GQA", None, "RMSNorm", "tok\xe9", "500000.0", "llama3"]).encode())
    assert_eq!(
        c.family_hash("tok\u{e9}"),
        "58d78d523d3a9cce92363f2153c59a28944a80f1434cb9c0e2895ecc943bd5b5"
    );
}

#[test]
fn backbone_resolution_order() {
    // text_config without a hidden size: fall through to decoder.
    let c = parse(
        r#"{"model_type": "vision-encoder-decoder", "text_config": {"hidden_size": 0},
            "decoder": {"d_model": 1024, "decoder_layers": 12, "num_hidden_layers": 12, "vocab_size": 50265}}"#,
    )
    .unwrap();
    assert_eq!(
        (c.hidden_size, c.num_layers, c.vocab_size),
        (1024, 12, 50265)
    );
    // A top level with its own hidden size ignores text_config.
    let c = parse(
        r#"{"hidden_size": 8, "text_config": {"hidden_size": 4096, "num_hidden_layers": 3}}"#,
    )
    .unwrap();
    assert_eq!((c.hidden_size, c.num_layers), (8, 0));
    // Nothing anywhere: zeros from the top level.
    assert_eq!(
        parse(r#"{"text_config": null, "decoder": 3}"#)
            .unwrap()
            .hidden_size,
        0
    );
}

#[test]
fn rope_variants() {
    let c =
        parse(r#"{"rope_theta": 10000.0, "rope_scaling": {"type": "linear", "rope_type": "x"}}"#)
            .unwrap();
    assert_eq!(
        (
            c.rope_theta_bucket().as_str(),
            c.rope_scaling_type.as_deref()
        ),
        ("10000.0", Some("linear"))
    );
    let c = parse(r#"{"rope_scaling": {"rope_type": "default", "rope_theta": 10000}}"#).unwrap();
    assert_eq!(
        (
            c.rope_theta_bucket().as_str(),
            c.rope_scaling_type.as_deref()
        ),
        ("10000", None)
    );
    // transformers-5 style, per attention type (Gemma 3).
    let c = parse(
        r#"{"rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
                                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
            "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-6}"#,
    )
    .unwrap();
    assert_eq!(c.rope_theta, Some(1_000_000.0));
    assert_eq!(c.rope_scaling_type.as_deref(), Some("linear"));
    assert_eq!(c.hidden_act.as_deref(), Some("gelu_pytorch_tanh"));
    assert!(!c.qk_norm, "query_pre_attn_scalar is not a qk norm");
    assert!(parse(r#"{"qk_norm": true}"#).unwrap().qk_norm);
    assert!(parse(r#"{"use_qk_norm": 1}"#).unwrap().qk_norm);
    // GPT-NeoX rotary keys mean RoPE even without rope_theta.
    assert_eq!(
        parse(r#"{"rotary_pct": 0.25, "rotary_emb_base": 10000}"#)
            .unwrap()
            .pos_encoding,
        "RoPE"
    );
    assert_eq!(
        parse(r#"{"position_embedding_type": "relative_key"}"#)
            .unwrap()
            .pos_encoding,
        "relative_key"
    );
}

#[test]
fn non_ascii_text_hashes_like_python() {
    let c = parse(r#"{"model_type": "café😀\n", "architectures": ["A\"B\\"], "rope_theta": -150}"#)
        .unwrap();
    assert_eq!(
        c.arch_text(),
        r#"["caf\u00e9\ud83d\ude00\n", ["A\"B\\"], 0, 0, 0, null, 0, 0, 0]"#
    );
    assert_eq!(
        c.arch_hash(),
        "a5dcff9bc1f8b3a1c1622ac7ab84c409fbe4b81e73396556db8840a8c86b43c2"
    );
    // Python round(-150, -2) == -200 (ties to even).
    assert_eq!(
        c.family_hash("t"),
        "d86308167ef3dc18ab4a03750e914de7e5bf8d007bc65dc1e0d06d6c16a21d73"
    );
}

#[test]
fn codellama_fixture() {
    let text = include_str!("data/codellama-7b-config.json");
    let c = parse(text).unwrap();
    assert_eq!(
        c.arch_hash(),
        "256121b730850fa4bd975506d80b3146f8d421c3fb61060340b1d04a1def14a1"
    );
    assert_eq!(
        (c.rope_theta, c.rope_theta_is_int),
        (Some(1_000_000.0), true)
    );
    assert_eq!(c.tie_word_embeddings, Some(false));
    assert_eq!(c.name_or_path.as_deref(), Some("codellama/CodeLlama-7b-hf"));
}

#[test]
fn real_minilm_config() {
    let path = common::test_models().join("minilm/config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = ModelConfig::parse(&path, &text).unwrap();
    assert_eq!(c.model_type, "bert");
    assert_eq!(c.architectures, vec!["BertModel"]);
    assert_eq!(
        (c.hidden_size, c.num_layers, c.num_attention_heads),
        (384, 6, 12)
    );
    assert_eq!(
        (c.intermediate_size, c.vocab_size, c.max_position_embeddings),
        (1536, 30522, 512)
    );
    assert_eq!(c.hidden_act.as_deref(), Some("gelu"));
    assert_eq!(
        (
            c.norm_type.as_str(),
            c.attention_style.as_str(),
            c.pos_encoding.as_str()
        ),
        ("LayerNorm", "MHA", "absolute")
    );
    assert_eq!(c.num_key_value_heads, None);
    assert_eq!(
        c.arch_text(),
        r#"["bert", ["BertModel"], 384, 6, 12, null, 1536, 30522, 512]"#
    );
    assert_eq!(
        c.arch_hash(),
        "a6bff1b43a43601a9fd07564542cef36a72fbca2041b03c31d14c49323c853d4"
    );
}
