//! Tokenizer parsers: every file kind, convention detection, config special tokens, errors, and no panics.

use provsearch_formats::tokenizer::{
    byte_to_unicode, load_vocabulary, parse_gpt2_vocab, parse_sentencepiece_model,
    parse_tokenizer_json, parse_vocab_txt, Convention, TokenizerModelKind, Vocabulary,
};
use provsearch_formats::Error;
use serde_json::json;
use std::path::Path;

fn p(name: &str) -> &Path {
    Path::new(name)
}

fn id(v: &Vocabulary, token: &str) -> Option<u32> {
    v.id_of(token)
}

// ---------------------------------------------------------------------------------------------------------
// tokenizer.json

fn bytelevel_json() -> serde_json::Value {
    json!({
        "version": "1.0",
        "added_tokens": [
            {"id": 5, "content": "<|endoftext|>", "special": true, "single_word": false},
            {"id": 6, "content": "<|im_start|>", "special": false}
        ],
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "x"}, "behavior": "Isolated"},
            {"type": "ByteLevel", "add_prefix_space": false}
        ]},
        "decoder": {"type": "ByteLevel"},
        "model": {
            "type": "BPE",
            "unk_token": null,
            "vocab": {"t": 0, "h": 1, "e": 2, "Ġ": 3, "Ġthe": 4, "<|endoftext|>": 5},
            "merges": ["Ġ t", ["h", "e"]]
        }
    })
}

#[test]
fn tokenizer_json_byte_level_bpe() {
    let v = parse_tokenizer_json(p("tokenizer.json"), &bytelevel_json().to_string()).unwrap();
    assert_eq!(v.source_file, "tokenizer.json");
    assert_eq!(v.kind, TokenizerModelKind::Bpe);
    assert_eq!(v.convention, Convention::ByteLevel);
    assert_eq!(v.merges, vec!["Ġ t".to_string(), "h e".to_string()]);
    assert!(!v.lowercase);
    // <|endoftext|> is in both the vocab and added_tokens with the same id: one entry.
    assert_eq!(v.tokens.len(), 7);
    assert_eq!(v.tokens.get(0), Some(("t", 0)));
    assert_eq!(v.tokens.get(6), Some(("<|im_start|>", 6)));
    assert!(v
        .tokens
        .iter()
        .zip(v.tokens.iter().skip(1))
        .all(|(a, b)| (a.1, a.0) <= (b.1, b.0)));
    assert_eq!(v.added_tokens.len(), 2);
    assert_eq!(v.added_tokens[0], ("<|endoftext|>".to_string(), 5, true));
    assert_eq!(v.added_tokens[1], ("<|im_start|>".to_string(), 6, false));
    assert_eq!(v.special.unk, None);
    assert_eq!(id(&v, "Ġthe"), Some(4));
}

#[test]
fn tokenizer_json_decoder_alone_gives_byte_level() {
    let mut j = bytelevel_json();
    j["pre_tokenizer"] = serde_json::Value::Null;
    let v = parse_tokenizer_json(p("tokenizer.json"), &j.to_string()).unwrap();
    assert_eq!(v.convention, Convention::ByteLevel);
}

#[test]
fn tokenizer_json_wordpiece_lowercase() {
    let j = json!({
        "added_tokens": [{"id": 0, "content": "[PAD]", "special": true}, {"id": 1, "content": "[UNK]", "special": true}],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "decoder": {"type": "WordPiece", "prefix": "##"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "vocab": {"[PAD]": 0, "[UNK]": 1, "the": 2, "##s": 3}}
    });
    let v = parse_tokenizer_json(p("tokenizer.json"), &j.to_string()).unwrap();
    assert_eq!(v.kind, TokenizerModelKind::WordPiece);
    assert_eq!(v.convention, Convention::WordPiece);
    assert!(v.lowercase);
    assert_eq!(v.special.unk, Some(1));
    assert_eq!(v.tokens.len(), 4);

    // BertNormalizer with lowercase false, and a Lowercase member of a Sequence.
    let mut j2 = j.clone();
    j2["normalizer"]["lowercase"] = json!(false);
    assert!(
        !parse_tokenizer_json(p("t"), &j2.to_string())
            .unwrap()
            .lowercase
    );
    j2["normalizer"] =
        json!({"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}]});
    assert!(
        parse_tokenizer_json(p("t"), &j2.to_string())
            .unwrap()
            .lowercase
    );
}

#[test]
fn tokenizer_json_unigram_metaspace() {
    let j = json!({
        "added_tokens": [{"id": 0, "content": "<pad>", "special": true}, {"id": 1, "content": "</s>", "special": true},
                         {"id": 2, "content": "<unk>", "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "add_prefix_space": true},
        "decoder": {"type": "Metaspace", "replacement": "▁"},
        "model": {"type": "Unigram", "unk_id": 2,
                  "vocab": [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["▁", -2.0], ["▁the", -3.5], ["s", -4.0]]}
    });
    let v = parse_tokenizer_json(p("tokenizer.json"), &j.to_string()).unwrap();
    assert_eq!(v.kind, TokenizerModelKind::Unigram);
    assert_eq!(v.convention, Convention::Metaspace);
    assert_eq!(v.special.unk, Some(2));
    assert_eq!(v.tokens.len(), 6);
    assert_eq!(id(&v, "▁the"), Some(4));
    assert!(v.merges.is_empty());
}

#[test]
fn tokenizer_json_llama_normalizer_is_metaspace() {
    let j = json!({
        "added_tokens": [{"id": 0, "content": "<unk>", "special": true}],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
        ]},
        "pre_tokenizer": null,
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
                  "vocab": {"<unk>": 0, "<0x0A>": 1, "▁t": 2, "he": 3, "▁the": 4}, "merges": ["▁t he"]}
    });
    let v = parse_tokenizer_json(p("tokenizer.json"), &j.to_string()).unwrap();
    assert_eq!(v.kind, TokenizerModelKind::Bpe);
    assert_eq!(v.convention, Convention::Metaspace);
    assert_eq!(v.special.unk, Some(0));

    // Prepend alone also counts, and so does a decoder Replace("▁", " ").
    let mut j2 = j.clone();
    j2["normalizer"] = json!({"type": "Prepend", "prepend": "▁"});
    assert_eq!(
        parse_tokenizer_json(p("t"), &j2.to_string())
            .unwrap()
            .convention,
        Convention::Metaspace
    );
    j2["normalizer"] = serde_json::Value::Null;
    j2["decoder"] = json!({"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}]});
    assert_eq!(
        parse_tokenizer_json(p("t"), &j2.to_string())
            .unwrap()
            .convention,
        Convention::Metaspace
    );
    j2["decoder"] = serde_json::Value::Null;
    assert_eq!(
        parse_tokenizer_json(p("t"), &j2.to_string())
            .unwrap()
            .convention,
        Convention::Plain
    );
}

#[test]
fn tokenizer_json_wordlevel_plain_and_inferred_type() {
    let j = json!({"model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1}, "unk_token": "a"}});
    let v = parse_tokenizer_json(p("tokenizer.json"), &j.to_string()).unwrap();
    assert_eq!(v.kind, TokenizerModelKind::WordLevel);
    assert_eq!(v.convention, Convention::Plain);
    assert_eq!(v.special.unk, Some(0));

    // No `type`: inferred from the shape.
    let j = json!({"model": {"vocab": [["a", 0.0]]}});
    assert_eq!(
        parse_tokenizer_json(p("t"), &j.to_string()).unwrap().kind,
        TokenizerModelKind::Unigram
    );
    let j = json!({"model": {"vocab": {"a": 0}, "merges": []}});
    assert_eq!(
        parse_tokenizer_json(p("t"), &j.to_string()).unwrap().kind,
        TokenizerModelKind::Bpe
    );
    let j = json!({"model": {"vocab": {"a": 0}, "continuing_subword_prefix": "##"}});
    assert_eq!(
        parse_tokenizer_json(p("t"), &j.to_string()).unwrap().kind,
        TokenizerModelKind::WordPiece
    );
}

#[test]
fn duplicate_ids_are_kept_without_crashing() {
    let j = json!({
        "added_tokens": [{"id": 1, "content": "<extra>", "special": true}, {"id": 0, "content": "a", "special": false}],
        "model": {"type": "WordLevel", "vocab": {"a": 0, "b": 1, "c": 1}}
    });
    let v = parse_tokenizer_json(p("tokenizer.json"), &j.to_string()).unwrap();
    assert_eq!(
        v.tokens,
        vec![
            ("a".to_string(), 0),
            ("<extra>".to_string(), 1),
            ("b".to_string(), 1),
            ("c".to_string(), 1)
        ]
    );
}

fn json_error(text: &str) -> String {
    match parse_tokenizer_json(p("tokenizer.json"), text) {
        Err(e @ Error::Json { .. }) => {
            assert_eq!(e.path(), p("tokenizer.json"));
            e.to_string()
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn tokenizer_json_errors() {
    let msg = json_error("{\n  \"model\": {\n    \"vocab\": {,}\n  }\n}");
    assert!(msg.contains("line 3") && msg.contains("column"), "{msg}");
    assert!(json_error("[]").contains("top level"));
    assert!(json_error("{}").contains("`model`"));
    assert!(json_error(r#"{"model": null}"#).contains("`model`"));
    assert!(json_error(r#"{"model": {"type": "BPE"}}"#).contains("model.vocab"));
    assert!(json_error(r#"{"model": {"type": "BPE", "vocab": []}}"#).contains("model.vocab"));
    assert!(
        json_error(r#"{"model": {"type": "Unigram", "vocab": {"a": 0}}}"#).contains("model.vocab")
    );
    assert!(
        json_error(r#"{"model": {"type": "Unigram", "vocab": [[1, 0.0]]}}"#)
            .contains("model.vocab[0]")
    );
    assert!(json_error(r#"{"model": {"type": "BPE", "vocab": {"a": -1}}}"#).contains("u32"));
    assert!(
        json_error(r#"{"model": {"type": "BPE", "vocab": {"a": 4294967296}}}"#).contains("u32")
    );
    assert!(json_error(r#"{"model": {"type": "BPE", "vocab": {"a": 1.5}}}"#).contains("u32"));
    assert!(
        json_error(r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}}"#)
            .contains("merges[0]")
    );
    assert!(
        json_error(r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": 3}}"#)
            .contains("merges")
    );
    assert!(
        json_error(r#"{"added_tokens": [{"content": "x"}], "model": {"vocab": {"a": 0}}}"#)
            .contains("added_tokens[0].id")
    );
    assert!(
        json_error(r#"{"added_tokens": [{"id": 1}], "model": {"vocab": {"a": 0}}}"#)
            .contains("content")
    );
    assert!(
        json_error(r#"{"added_tokens": {}, "model": {"vocab": {"a": 0}}}"#)
            .contains("added_tokens")
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    json_error(&deep);

    match parse_tokenizer_json(
        p("tokenizer.json"),
        r#"{"model": {"type": "Fancy", "vocab": {}}}"#,
    ) {
        Err(Error::Unsupported { detail, .. }) => assert!(detail.contains("Fancy")),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// vocab.txt, vocab.json + merges.txt

#[test]
fn vocab_txt() {
    let v = parse_vocab_txt(p("vocab.txt"), "[PAD]\r\n[UNK]\nthe\n\n##s\n").unwrap();
    assert_eq!(v.source_file, "vocab.txt");
    assert_eq!(v.kind, TokenizerModelKind::WordPiece);
    assert_eq!(v.convention, Convention::WordPiece);
    assert_eq!(v.special.unk, Some(1));
    assert_eq!(
        v.tokens,
        vec![("[PAD]", 0), ("[UNK]", 1), ("the", 2), ("##s", 4)]
    );
    assert!(parse_vocab_txt(p("vocab.txt"), "")
        .unwrap()
        .tokens
        .is_empty());
}

#[test]
fn gpt2_vocab_and_merges() {
    let vocab = r#"{"t": 0, "h": 1, "Ġ": 2, "Ġt": 3, "<|endoftext|>": 4}"#;
    let v = parse_gpt2_vocab(p("vocab.json"), vocab, "#version: 0.2\nĠ t\r\nh e\n\n").unwrap();
    assert_eq!(v.source_file, "vocab.json");
    assert_eq!(v.kind, TokenizerModelKind::Bpe);
    assert_eq!(v.convention, Convention::ByteLevel);
    assert_eq!(v.merges, vec!["Ġ t".to_string(), "h e".to_string()]);
    assert_eq!(v.tokens.len(), 5);

    // No merges: the convention is guessed from the tokens.
    assert_eq!(
        parse_gpt2_vocab(p("vocab.json"), vocab, "")
            .unwrap()
            .convention,
        Convention::ByteLevel
    );
    let v = parse_gpt2_vocab(p("vocab.json"), r#"{"▁a": 0}"#, "").unwrap();
    assert_eq!(v.convention, Convention::Metaspace);
    let v = parse_gpt2_vocab(p("vocab.json"), r#"{"a": 0}"#, "").unwrap();
    assert_eq!(v.convention, Convention::Plain);

    match parse_gpt2_vocab(p("m/vocab.json"), vocab, "#version: 0.2\na b c\n") {
        Err(Error::Corrupt { path, detail }) => {
            assert_eq!(path, Path::new("m/merges.txt"));
            assert!(detail.contains("line 2"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_gpt2_vocab(p("vocab.json"), "[1]", ""),
        Err(Error::Json { .. })
    ));
    assert!(matches!(
        parse_gpt2_vocab(p("vocab.json"), r#"{"a": "x"}"#, ""),
        Err(Error::Json { .. })
    ));
    assert!(matches!(
        parse_gpt2_vocab(p("vocab.json"), "{", ""),
        Err(Error::Json { .. })
    ));
}

// ---------------------------------------------------------------------------------------------------------
// SentencePiece

/// A minimal protobuf writer for building `tokenizer.model` images.
mod pb {
    pub fn varint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    pub fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
        varint(out, (field << 3) | wire);
    }
    pub fn bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
        key(out, field, 2);
        varint(out, data.len() as u64);
        out.extend_from_slice(data);
    }
    pub fn int(out: &mut Vec<u8>, field: u64, v: i64) {
        key(out, field, 0);
        varint(out, v as u64);
    }
    pub fn float(out: &mut Vec<u8>, field: u64, v: f32) {
        key(out, field, 5);
        out.extend_from_slice(&v.to_le_bytes());
    }
    pub fn piece(piece: &str, score: f32, ty: Option<i64>) -> Vec<u8> {
        let mut m = Vec::new();
        bytes(&mut m, 1, piece.as_bytes());
        float(&mut m, 2, score);
        if let Some(ty) = ty {
            int(&mut m, 3, ty);
        }
        m
    }
}

/// A Llama-like model: <unk> <s> </s>, byte pieces, normal pieces, a user-defined piece; BPE; pad_id = -1.
fn sentencepiece_image(model_type: i64) -> Vec<u8> {
    let mut model = Vec::new();
    let pieces: &[(&str, Option<i64>)] = &[
        ("<unk>", Some(2)),
        ("<s>", Some(3)),
        ("</s>", Some(3)),
        ("<0x0A>", Some(6)),
        ("▁the", None),
        ("▁of", Some(1)),
        ("<sep>", Some(4)),
        ("▁", Some(5)),
    ];
    for (i, (piece, ty)) in pieces.iter().enumerate() {
        pb::bytes(&mut model, 1, &pb::piece(piece, -(i as f32), *ty));
    }
    let mut trainer = Vec::new();
    pb::bytes(&mut trainer, 1, b"corpus.txt"); // input (repeated string): skipped
    pb::int(&mut trainer, 3, model_type);
    pb::int(&mut trainer, 4, 32000); // vocab_size: skipped
    pb::float(&mut trainer, 10, 0.9995); // character_coverage: skipped
    pb::int(&mut trainer, 40, 0);
    pb::int(&mut trainer, 41, 1);
    pb::int(&mut trainer, 42, 2);
    pb::int(&mut trainer, 43, -1);
    pb::bytes(&mut model, 2, &trainer);
    let mut normalizer = Vec::new();
    pb::bytes(&mut normalizer, 1, b"identity");
    pb::int(&mut normalizer, 3, 1);
    pb::bytes(&mut model, 3, &normalizer);
    model
}

#[test]
fn sentencepiece_model() {
    let v = parse_sentencepiece_model(p("tokenizer.model"), &sentencepiece_image(2)).unwrap();
    assert_eq!(v.source_file, "tokenizer.model");
    assert_eq!(v.kind, TokenizerModelKind::Bpe);
    assert_eq!(v.convention, Convention::Metaspace);
    assert_eq!(v.tokens.len(), 8);
    assert_eq!(v.tokens.get(4), Some(("▁the", 4)));
    assert_eq!(v.special.unk, Some(0));
    assert_eq!(v.special.bos, Some(1));
    assert_eq!(v.special.eos, Some(2));
    assert_eq!(v.special.pad, None);
    assert_eq!(
        v.added_tokens,
        vec![
            ("<unk>".to_string(), 0, true),
            ("<s>".to_string(), 1, true),
            ("</s>".to_string(), 2, true),
            ("<sep>".to_string(), 6, false)
        ]
    );
    assert!(v.merges.is_empty());

    let v = parse_sentencepiece_model(p("spiece.model"), &sentencepiece_image(1)).unwrap();
    assert_eq!(v.kind, TokenizerModelKind::Unigram);
    assert_eq!(v.source_file, "spiece.model");

    // No trainer spec: proto defaults (Unigram; unk 0, bos 1, eos 2, no pad).
    let mut bare = Vec::new();
    pb::bytes(&mut bare, 1, &pb::piece("<unk>", 0.0, Some(2)));
    pb::bytes(&mut bare, 1, &pb::piece("a", 0.0, None));
    let v = parse_sentencepiece_model(p("tokenizer.model"), &bare).unwrap();
    assert_eq!(v.kind, TokenizerModelKind::Unigram);
    assert_eq!(v.special.unk, Some(0));
    assert_eq!(v.special.bos, Some(1));
    assert_eq!(v.special.eos, None, "eos id 2 is out of range");
}

#[test]
fn sentencepiece_errors() {
    let image = sentencepiece_image(2);
    let path = p("tokenizer.model");
    assert!(matches!(
        parse_sentencepiece_model(path, &[]),
        Err(Error::Corrupt { .. })
    ));
    // Every strict prefix that cuts a field is an error or a shorter valid model; never a panic.
    for cut in 0..image.len() {
        let _ = parse_sentencepiece_model(path, &image[..cut]);
    }
    let truncated = parse_sentencepiece_model(path, &image[..image.len() - 3]).unwrap_err();
    assert!(truncated.to_string().contains("byte"), "{truncated}");
    // Groups and invalid wire types.
    assert!(parse_sentencepiece_model(path, &[0x0B]).is_err());
    assert!(parse_sentencepiece_model(path, &[0x0F]).is_err());
    // Field number 0.
    assert!(parse_sentencepiece_model(path, &[0x02, 0x00]).is_err());
    // A huge length.
    assert!(parse_sentencepiece_model(path, &[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
    // Invalid UTF-8 in a piece.
    let mut bad = Vec::new();
    pb::bytes(&mut bad, 1, &[0x0A, 0x02, 0xC3, 0x28]);
    assert!(parse_sentencepiece_model(path, &bad)
        .unwrap_err()
        .to_string()
        .contains("UTF-8"));
}

// ---------------------------------------------------------------------------------------------------------
// load_vocabulary

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn load_vocabulary_order_and_configs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(load_vocabulary(d).unwrap().is_none());
    write(d, "tokenizer_config.json", "{}");
    assert!(
        load_vocabulary(d).unwrap().is_none(),
        "a config alone is no tokenizer"
    );

    write(d, "tokenizer.model", sentencepiece_image(2));
    assert_eq!(
        load_vocabulary(d).unwrap().unwrap().source_file,
        "tokenizer.model"
    );
    write(d, "vocab.txt", "[UNK]\nthe\n");
    assert_eq!(
        load_vocabulary(d).unwrap().unwrap().source_file,
        "vocab.txt"
    );
    write(d, "vocab.json", r#"{"Ġthe": 0}"#);
    write(d, "merges.txt", "#version: 0.2\nĠ the\n");
    let v = load_vocabulary(d).unwrap().unwrap();
    assert_eq!((v.source_file.as_str(), v.merges.len()), ("vocab.json", 1));
    write(d, "tokenizer.json", bytelevel_json().to_string());
    assert_eq!(
        load_vocabulary(d).unwrap().unwrap().source_file,
        "tokenizer.json"
    );

    write(
        d,
        "tokenizer_config.json",
        json!({
            "tokenizer_class": "GPT2Tokenizer",
            "bos_token": {"content": "<|endoftext|>", "lstrip": false},
            "eos_token": "<|im_end|>",
            "pad_token": null,
            "unk_token": "Ġthe",
            "added_tokens_decoder": {
                "5": {"content": "<|endoftext|>", "special": true},
                "7": {"content": "<|im_end|>", "special": true}
            }
        })
        .to_string(),
    );
    let v = load_vocabulary(d).unwrap().unwrap();
    assert_eq!(v.tokenizer_class.as_deref(), Some("GPT2Tokenizer"));
    assert_eq!(v.special.bos, Some(5));
    assert_eq!(
        v.special.eos,
        Some(7),
        "added_tokens_decoder entries are looked up too"
    );
    assert_eq!(v.special.pad, None);
    assert_eq!(v.special.unk, Some(4));
    assert_eq!(v.tokens.len(), 8);
    assert_eq!(v.tokens.last(), Some(("<|im_end|>", 7)));
    assert_eq!(v.added_tokens.len(), 3);
    assert!(v
        .tokens
        .iter()
        .zip(v.tokens.iter().skip(1))
        .all(|(a, b)| (a.1, a.0) <= (b.1, b.0)));

    // special_tokens_map.json wins over tokenizer_config.json.
    write(
        d,
        "special_tokens_map.json",
        r#"{"eos_token": {"content": "<|endoftext|>"}, "mask_token": "t"}"#,
    );
    let v = load_vocabulary(d).unwrap().unwrap();
    assert_eq!(v.special.eos, Some(5));
    assert_eq!(v.special.mask, Some(0));
    assert_eq!(v.special.bos, Some(5));
}

#[test]
fn load_vocabulary_sentencepiece_with_config_and_lowercase_override() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "spiece.model", sentencepiece_image(1));
    write(
        d,
        "tokenizer_config.json",
        r#"{"eos_token": "▁of", "added_tokens_decoder": {"8": {"content": "<extra_id_0>", "special": true}}}"#,
    );
    let v = load_vocabulary(d).unwrap().unwrap();
    assert_eq!(v.source_file, "spiece.model");
    assert_eq!(v.special.eos, Some(5));
    assert_eq!(v.special.bos, Some(1));
    assert_eq!(v.tokens.len(), 9);
    assert!(v
        .added_tokens
        .contains(&("<extra_id_0>".to_string(), 8, true)));

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "vocab.txt", "[UNK]\nthe\n");
    write(
        d,
        "tokenizer_config.json",
        r#"{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}"#,
    );
    let v = load_vocabulary(d).unwrap().unwrap();
    assert!(v.lowercase);
    assert_eq!(v.special.unk, Some(0));
}

#[test]
fn load_vocabulary_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "vocab.txt", "a\n");
    write(d, "tokenizer_config.json", "{ not json");
    let e = load_vocabulary(d).unwrap_err();
    assert_eq!(e.path(), d.join("tokenizer_config.json"));
    write(
        d,
        "tokenizer_config.json",
        r#"{"added_tokens_decoder": {"x": {"content": "a"}}}"#,
    );
    assert!(load_vocabulary(d)
        .unwrap_err()
        .to_string()
        .contains("added_tokens_decoder"));
    write(d, "tokenizer_config.json", "{}");
    write(d, "special_tokens_map.json", "[]");
    assert_eq!(
        load_vocabulary(d).unwrap_err().path(),
        d.join("special_tokens_map.json")
    );
    std::fs::remove_file(d.join("special_tokens_map.json")).unwrap();

    write(d, "tokenizer.json", [0xFFu8, 0xFE]);
    let e = load_vocabulary(d).unwrap_err();
    assert_eq!(e.path(), d.join("tokenizer.json"));
    assert!(e.to_string().contains("UTF-8"));
    write(d, "tokenizer.json", "{}");
    assert_eq!(
        load_vocabulary(d).unwrap_err().path(),
        d.join("tokenizer.json")
    );
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();

    write(d, "tokenizer.model", b"\x0b");
    write(d, "vocab.txt", "a\n");
    assert!(
        load_vocabulary(d).is_ok(),
        "vocab.txt comes before tokenizer.model"
    );
    std::fs::remove_file(d.join("vocab.txt")).unwrap();
    assert_eq!(
        load_vocabulary(d).unwrap_err().path(),
        d.join("tokenizer.model")
    );
}

// ---------------------------------------------------------------------------------------------------------
// No panics on damaged input (a cheap stand-in for the fuzz target)

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.next() % 4 {
        if out.is_empty() {
            out.push(rng.next() as u8);
            continue;
        }
        let at = (rng.next() % out.len() as u64) as usize;
        match rng.next() % 4 {
            0 => out[at] = rng.next() as u8,
            1 => {
                out.remove(at);
            }
            2 => {
                let alphabet = b"{}[]\",:0-9e \x80";
                out.insert(at, alphabet[(rng.next() % alphabet.len() as u64) as usize])
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn damaged_inputs_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let path = p("x");
    let jsons = [
        bytelevel_json().to_string(),
        json!({"model": {"type": "Unigram", "unk_id": 9, "vocab": [["a", 0.0], ["b"]]}})
            .to_string(),
    ];
    for seed in &jsons {
        for _ in 0..3000 {
            let m = mutate(&mut rng, seed.as_bytes());
            let text = String::from_utf8_lossy(&m);
            let _ = parse_tokenizer_json(path, &text);
            let _ = parse_gpt2_vocab(path, &text, &text);
            let _ = parse_vocab_txt(path, &text);
        }
    }
    let image = sentencepiece_image(2);
    for _ in 0..5000 {
        let _ = parse_sentencepiece_model(path, &mutate(&mut rng, &image));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Real tokenizer: all-MiniLM-L6-v2

fn test_models_dir() -> std::path::PathBuf {
    match std::env::var_os("PROVSEARCH_TEST_MODELS") {
        Some(d) => d.into(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/test-models"),
    }
}

#[test]
fn real_minilm_tokenizer() {
    let dir = test_models_dir().join("minilm");
    assert!(
        dir.join("tokenizer.json").is_file(),
        "test model missing: {} has no tokenizer.json; run scripts/fetch-test-models.sh (or set PROVSEARCH_TEST_MODELS)",
        dir.display()
    );
    let v = load_vocabulary(&dir).unwrap().unwrap();
    assert_eq!(v.source_file, "tokenizer.json");
    assert_eq!(v.kind, TokenizerModelKind::WordPiece);
    assert_eq!(v.convention, Convention::WordPiece);
    assert!(v.lowercase);
    assert_eq!(v.tokens.len(), 30522);
    assert_eq!(v.tokenizer_class.as_deref(), Some("BertTokenizer"));
    assert_eq!(v.special.pad, Some(0));
    assert_eq!(v.special.unk, Some(100));
    assert_eq!(v.special.mask, Some(103));
    assert_eq!(v.added_tokens.len(), 5);
    assert_eq!(v.id_of("the"), Some(1996));

    // vocab.txt of the same model gives the same tokens.
    let txt = std::fs::read_to_string(dir.join("vocab.txt")).unwrap();
    let from_txt = parse_vocab_txt(&dir.join("vocab.txt"), &txt).unwrap();
    assert_eq!(from_txt.tokens, v.tokens);
    assert_eq!(byte_to_unicode()[b' ' as usize], 'Ġ');
}
