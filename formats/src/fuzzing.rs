//! Fuzz entry points: each feeds arbitrary bytes to one parser and ignores the result. They must never panic;
//! the cargo-fuzz targets in `fuzz/` and the corpus replay test in `formats/tests/fuzz_corpus.rs` call them.

use std::path::Path;

/// A safetensors file image through [`SafetensorsFile::parse_header`](crate::safetensors::SafetensorsFile::parse_header).
pub fn fuzz_safetensors_header(data: &[u8]) {
    let _ = crate::safetensors::SafetensorsFile::parse_header(Path::new("fuzz.safetensors"), data);
}

/// config.json text (UTF-8 lossy) through [`ModelConfig::parse`](crate::config::ModelConfig::parse), and the
/// hashes of whatever parses.
pub fn fuzz_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(config) = crate::config::ModelConfig::parse(Path::new("config.json"), &text) {
        let _ = config.arch_hash();
        let _ = config.family_hash("fuzz");
    }
}

/// tokenizer.json text (UTF-8 lossy) through
/// [`parse_tokenizer_json`](crate::tokenizer::parse_tokenizer_json); panics when its typed fast path and its
/// `Value` reader disagree.
pub fn fuzz_tokenizer_json(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::tokenizer::parse_tokenizer_json(Path::new("tokenizer.json"), &text);
    assert!(
        crate::tokenizer::typed_readers_agree(&text),
        "the typed and Value readers of tokenizer.json disagree"
    );
}

/// README text (UTF-8 lossy) through [`parse_model_card`](crate::card::parse_model_card).
pub fn fuzz_card(data: &[u8]) {
    let _ = crate::card::parse_model_card(&String::from_utf8_lossy(data));
}

/// A GGUF file image through [`GgufFile::parse`](crate::gguf::GgufFile::parse); for whatever parses, the
/// vocabulary, the config, and reads of the first and last elements (and a run that crosses blocks) of each
/// tensor, as [`GgufFile::read_f32`](crate::gguf::GgufFile::read_f32) does them.
pub fn fuzz_gguf(data: &[u8]) {
    let path = Path::new("fuzz.gguf");
    let Ok(header) = crate::gguf::GgufFile::parse(path, data) else {
        return;
    };
    let _ = crate::gguf::vocabulary_of(path, &header);
    let _ = crate::gguf::config_of(&header);
    let mut out = [0f32; 300];
    for t in header.tensors.iter().take(64) {
        let n = t.numel();
        let run = n.min(out.len() as u64) as usize;
        let _ = crate::gguf::read_f32_in(path, data, t, 0, &mut out[..run]);
        let _ = crate::gguf::read_f32_in(path, data, t, n.saturating_sub(1), &mut out[..1]);
        let middle = (n - n / 2).min(out.len() as u64) as usize;
        let _ = crate::gguf::read_f32_in(path, data, t, n / 2, &mut out[..middle]);
    }
}

/// A tokenizer model file through every reader that takes one: the SentencePiece protobuf reader
/// ([`parse_sentencepiece_model`](crate::tokenizer::parse_sentencepiece_model)), the tiktoken ranks reader
/// ([`parse_tiktoken_ranks`](crate::tokenizer::parse_tiktoken_ranks), with its content sniff) and the tekken
/// reader ([`parse_tekken`](crate::tokenizer::parse_tekken), UTF-8 lossy).
pub fn fuzz_tokenizer_model(data: &[u8]) {
    let path = Path::new("tokenizer.model");
    let _ = crate::tokenizer::parse_sentencepiece_model(path, data);
    let _ = crate::tokenizer::looks_like_ranks(data);
    let _ = crate::tokenizer::parse_tiktoken_ranks(path, data);
    let _ =
        crate::tokenizer::parse_tekken(Path::new("tekken.json"), &String::from_utf8_lossy(data));
}
