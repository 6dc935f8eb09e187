//! Tokenizer files → one [`Vocabulary`]: `tokenizer.json` (BPE, WordPiece, Unigram, WordLevel; byte-level,
//! Metaspace and WordPiece conventions; added tokens), `vocab.json` + `merges.txt` (GPT-2), `vocab.txt`
//! (WordPiece), and `tokenizer.model` (SentencePiece protobuf) when nothing else exists.
//!
//! CONTRACT (implementation pending).

use crate::error::Result;
use std::path::Path;

/// The tokenizer's model type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerModelKind {
    /// Byte-pair encoding.
    Bpe,
    /// WordPiece (BERT).
    WordPiece,
    /// Unigram (SentencePiece, T5).
    Unigram,
    /// Word-level.
    WordLevel,
}

/// How word-initial tokens are spelled, which decides how an anchor string is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// GPT-2 byte alphabet; a leading space is `Ġ` (U+0120). Detected from a `ByteLevel` pre-tokenizer or
    /// decoder, or from vocab.json + merges.txt.
    ByteLevel,
    /// SentencePiece: a leading space is `▁` (U+2581). Detected from a `Metaspace` pre-tokenizer/decoder, a
    /// `Replace(" ", "▁")` normalizer, or tokenizer.model.
    Metaspace,
    /// WordPiece: word-initial pieces are bare, continuations start with `##`.
    WordPiece,
    /// None of the above: tokens are looked up as they are.
    Plain,
}

/// Special token ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
    /// Unknown token.
    pub unk: Option<u32>,
    /// Mask.
    pub mask: Option<u32>,
}

/// A model's vocabulary as read from its tokenizer files.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    /// File the vocabulary came from (`"tokenizer.json"`, `"vocab.json"`, `"vocab.txt"`, `"tokenizer.model"`).
    pub source_file: String,
    /// Model type.
    pub kind: TokenizerModelKind,
    /// Spelling convention.
    pub convention: Convention,
    /// Every (token, id), added tokens included, sorted by id then token.
    pub tokens: Vec<(String, u32)>,
    /// Added tokens (content, id, special flag).
    pub added_tokens: Vec<(String, u32, bool)>,
    /// BPE merges as `"a b"` strings, in order; empty for non-BPE.
    pub merges: Vec<String>,
    /// Whether the normalizer lower-cases input (BERT uncased): anchors are then looked up lower-cased.
    pub lowercase: bool,
    /// `tokenizer_config.json:tokenizer_class`, when present.
    pub tokenizer_class: Option<String>,
    /// Special token ids (from tokenizer_config.json / special_tokens_map.json / the model's own unk token).
    pub special: SpecialTokens,
}

/// The GPT-2 byte alphabet: the printable character that stands for each byte in a byte-level vocabulary.
pub fn byte_to_unicode() -> [char; 256] {
    todo!()
}

/// Find and load the vocabulary of a model directory: tokenizer.json, then vocab.json + merges.txt, then
/// vocab.txt, then tokenizer.model; tokenizer_config.json and special_tokens_map.json supply the class and
/// special tokens. `Ok(None)` when the directory holds no tokenizer file; an error when one exists but is bad.
pub fn load_vocabulary(dir: &Path) -> Result<Option<Vocabulary>> {
    let _ = dir;
    todo!()
}

/// Parse a `tokenizer.json` text.
pub fn parse_tokenizer_json(path: &Path, text: &str) -> Result<Vocabulary> {
    let _ = (path, text);
    todo!()
}

/// Parse a WordPiece `vocab.txt` (one token per line, id = line number).
pub fn parse_vocab_txt(path: &Path, text: &str) -> Result<Vocabulary> {
    let _ = (path, text);
    todo!()
}

/// Parse GPT-2 style `vocab.json` + `merges.txt` (merges may be absent: empty text).
pub fn parse_gpt2_vocab(path: &Path, vocab_json: &str, merges_txt: &str) -> Result<Vocabulary> {
    let _ = (path, vocab_json, merges_txt);
    todo!()
}

/// Parse a SentencePiece `tokenizer.model` (protobuf `ModelProto`: pieces with type; trainer model type).
pub fn parse_sentencepiece_model(path: &Path, bytes: &[u8]) -> Result<Vocabulary> {
    let _ = (path, bytes);
    todo!()
}
