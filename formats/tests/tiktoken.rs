//! tiktoken-style vocabularies (a ranks file as `tokenizer.model` / `*.tiktoken`, Mistral's `tekken.json`):
//! the same tokenizer gives the same vocabulary as its `tokenizer.json`, file kinds are told apart by content,
//! and bad files are refused with the file and the place named.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use provsearch_formats::tokenizer::{
    load_vocabulary, looks_like_ranks, parse_tekken, parse_tiktoken_ranks, parse_tokenizer_json,
    unicode_to_byte, Convention, TokenizerModelKind, Vocabulary,
};
use serde_json::json;
use std::path::Path;

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), contents).unwrap();
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The committed zoo tokenizer: byte-level BPE, `<|endoftext|>` at id 0 (an added special token), then 2047
/// byte-level tokens at ids 1..2047.
fn zoo_tokenizer() -> Vocabulary {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/zoo/trained/L-base/tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    parse_tokenizer_json(&path, &text).unwrap()
}

/// The raw bytes of each non-special token of a byte-level vocabulary, by id.
fn raw_tokens(v: &Vocabulary) -> Vec<(Vec<u8>, u32)> {
    let bytes_of = unicode_to_byte();
    v.tokens
        .iter()
        .filter(|(t, _)| !v.special_contents().contains(t))
        .map(|(t, id)| (t.chars().map(|c| bytes_of[&c]).collect(), *id))
        .collect()
}

#[test]
fn ranks_are_spelled_in_the_byte_alphabet() {
    let text = format!(
        "{} 0\n{} 1\r\n\n{} 7\n{} 3\n",
        b64(b" the"),
        b64("的".as_bytes()),
        b64(b"\n"),
        b64(&[0xe7]) // half a character: still a token
    );
    let v = parse_tiktoken_ranks(Path::new("x/qwen.tiktoken"), text.as_bytes()).unwrap();
    assert_eq!(v.source_file, "qwen.tiktoken");
    assert_eq!(v.kind, TokenizerModelKind::Bpe);
    assert_eq!(v.convention, Convention::ByteLevel);
    assert_eq!(
        v.tokens,
        [("Ġthe", 0), ("çļĦ", 1), ("ç", 3), ("Ċ", 7)],
        "ids are the ranks, sorted"
    );
    assert!(v.added_tokens.is_empty() && v.merges.is_empty());
}

#[test]
fn a_ranks_file_and_a_tekken_file_give_the_tokenizer_json_vocabulary() {
    let reference = zoo_tokenizer();
    let raw = raw_tokens(&reference);
    assert_eq!(raw.len(), 2047);
    let added = r#"{"added_tokens_decoder": {"0": {"content": "<|endoftext|>", "special": true}}}"#;

    // GLM-4 style: the ranks in `tokenizer.model`, the special token in tokenizer_config.json.
    let dir = tempfile::tempdir().unwrap();
    let ranks: String = raw
        .iter()
        .map(|(bytes, id)| format!("{} {id}\n", b64(bytes)))
        .collect();
    write(dir.path(), "tokenizer.model", &ranks);
    write(dir.path(), "tokenizer_config.json", added);
    let v = load_vocabulary(dir.path()).unwrap().unwrap();
    assert_eq!(v.source_file, "tokenizer.model");
    assert_eq!(v.convention, Convention::ByteLevel);
    assert_eq!(v.tokens, reference.tokens);
    assert_eq!(v.added_tokens, reference.added_tokens);

    // Mistral style: one special token first, vocabulary entry i at id i + 1; entries past
    // default_vocab_size are not tokens.
    let mut vocab: Vec<_> = raw
        .iter()
        .map(|(bytes, id)| json!({"rank": id - 1, "token_bytes": b64(bytes), "token_str": null}))
        .collect();
    vocab.push(json!({"rank": 2047, "token_bytes": b64(b"unused"), "token_str": "unused"}));
    let tekken = json!({
        "config": {"pattern": ".", "num_vocab_tokens": 2048, "default_vocab_size": 2048,
                   "default_num_special_tokens": 1, "version": "v7"},
        "vocab": vocab,
        "special_tokens": [{"rank": 0, "token_str": "<|endoftext|>", "is_control": true}],
    });
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tekken.json", tekken.to_string());
    let v = load_vocabulary(dir.path()).unwrap().unwrap();
    assert_eq!(v.source_file, "tekken.json");
    assert_eq!(v.tokens, reference.tokens);
    assert_eq!(v.added_tokens, reference.added_tokens);
}

#[test]
fn tekken_special_tokens_fill_their_ids() {
    let vocab = json!([
        {"rank": 0, "token_bytes": b64(b"a"), "token_str": "a"},
        {"rank": 1, "token_bytes": b64(b" b"), "token_str": " b"},
    ]);
    let config = json!({"default_vocab_size": 6, "default_num_special_tokens": 4});
    // Listed specials at their rank; the ids nobody names are `<SPECIAL_{id}>`.
    let listed = json!({"config": config, "vocab": vocab, "special_tokens": [
        {"rank": 0, "token_str": "<unk>", "is_control": true},
        {"rank": 2, "token_str": "</s>", "is_control": true},
    ]});
    let v = parse_tekken(Path::new("tekken.json"), &listed.to_string()).unwrap();
    assert_eq!(
        v.tokens,
        [
            ("<unk>", 0),
            ("<SPECIAL_1>", 1),
            ("</s>", 2),
            ("<SPECIAL_3>", 3),
            ("a", 4),
            ("Ġb", 5)
        ]
    );
    assert_eq!(
        (v.special.unk, v.special.eos, v.special.bos),
        (Some(0), Some(2), None)
    );
    assert!(v
        .added_tokens
        .iter()
        .all(|(_, id, special)| *id < 4 && *special));

    // No list (tokenizer versions up to v7): mistral-common's fixed list, `<s>` at 1.
    let config = json!({"default_vocab_size": 22, "default_num_special_tokens": 20});
    let unlisted = json!({"config": config, "vocab": vocab});
    let v = parse_tekken(Path::new("tekken.json"), &unlisted.to_string()).unwrap();
    assert_eq!(
        (v.special.unk, v.special.bos, v.special.eos, v.special.pad),
        (Some(0), Some(1), Some(2), Some(11))
    );
    assert_eq!(v.id_of("[TOOL_CONTENT]"), Some(19));
    assert_eq!(v.id_of("Ġb"), Some(21));
}

#[test]
fn file_kinds_are_told_apart_by_content() {
    // A SentencePiece protobuf (one piece, "a") starts with a field tag, 0x0a: never a ranks line.
    let protobuf = b"\x0a\x03\x0a\x01a";
    assert!(!looks_like_ranks(protobuf));
    assert!(looks_like_ranks(b"IQ== 0\n"));
    assert!(looks_like_ranks(b"IQ== 12"));
    assert!(!looks_like_ranks(b"IQ==  0\n"));
    assert!(!looks_like_ranks(b"IQ== x0\n"));
    assert!(!looks_like_ranks(b""));

    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.model", protobuf);
    let v = load_vocabulary(dir.path()).unwrap().unwrap();
    assert_eq!(v.convention, Convention::Metaspace, "read as SentencePiece");

    // DeBERTa-v2/v3 name their SentencePiece model `spm.model`.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "spm.model", protobuf);
    assert_eq!(
        load_vocabulary(dir.path()).unwrap().unwrap().source_file,
        "spm.model"
    );

    // Any `*.tiktoken` file, when no other tokenizer file exists.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "o200k_base.tiktoken", "IQ== 0\n");
    let v = load_vocabulary(dir.path()).unwrap().unwrap();
    assert_eq!(
        (v.source_file.as_str(), v.tokens.get(0)),
        ("o200k_base.tiktoken", Some(("!", 0)))
    );
    // A tokenizer.json still comes first.
    write(
        dir.path(),
        "tokenizer.json",
        json!({"model": {"type": "WordLevel", "vocab": {"x": 0}}}).to_string(),
    );
    assert_eq!(
        load_vocabulary(dir.path()).unwrap().unwrap().source_file,
        "tokenizer.json"
    );
}

fn ranks_error(text: &str) -> String {
    parse_tiktoken_ranks(Path::new("m/tokenizer.model"), text.as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_ranks_files_name_the_file_and_line() {
    for (text, expected) in [
        ("IQ== 0\nIQ==\n", "line 2: expected `<base64 token> <rank>`"),
        ("IQ== 0 1\n", "line 1: expected"),
        (
            "IQ== 4294967296\n",
            "line 1: rank `4294967296` is not an integer below 2^32",
        ),
        ("IQ== -1\n", "rank `-1`"),
        ("\n\nI*== 0\n", "line 3: token bytes are not base64"),
        ("\n\n", "no tokens"),
    ] {
        let e = ranks_error(text);
        assert!(e.starts_with("m/tokenizer.model"), "{e}");
        assert!(e.contains(expected), "{text:?}: {e}");
    }
    let e = parse_tiktoken_ranks(Path::new("t.tiktoken"), b"IQ== \xff\n").unwrap_err();
    assert!(e.to_string().contains("line 1: expected"), "{e}");
}

#[test]
fn bad_tekken_files_say_what_is_wrong() {
    let entry = |rank: u64| json!({"rank": rank, "token_bytes": b64(b"a")});
    let file = |size: u64, specials: u64, vocab: serde_json::Value, listed: serde_json::Value| {
        json!({"config": {"default_vocab_size": size, "default_num_special_tokens": specials},
               "vocab": vocab, "special_tokens": listed})
        .to_string()
    };
    let cases = [
        ("{".to_string(), "not a tekken tokenizer file (line 1"),
        (json!({"vocab": []}).to_string(), "missing field `config`"),
        (
            file(1, 2, json!([]), json!([])),
            "default_vocab_size 1 is below default_num_special_tokens 2",
        ),
        (
            file(3, 1, json!([entry(0)]), json!([])),
            "vocab has 1 entries, fewer than the 2",
        ),
        (
            file(3, 1, json!([entry(0), entry(5)]), json!([])),
            "vocab[1] has rank 5, expected 1",
        ),
        (
            file(
                2,
                1,
                json!([entry(0)]),
                json!([{"rank": 1, "token_str": "<s>"}]),
            ),
            "special token `<s>` has rank 1, not below default_num_special_tokens 1",
        ),
        (
            file(2, 1, json!([{"rank": 0, "token_bytes": "**"}]), json!([])),
            "vocab[0]: token bytes are not base64",
        ),
        (file(1 << 33, 1, json!([]), json!([])), "beyond 2^32"),
        (
            file(4_000_000_000, 4_000_000_000, json!([]), json!([])),
            "default_num_special_tokens 4000000000 is more than the 1048576 supported",
        ),
    ];
    for (text, expected) in cases {
        let e = parse_tekken(Path::new("m/tekken.json"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("m/tekken.json"), "{e}");
        assert!(e.contains(expected), "expected `{expected}` in: {e}");
    }
}
