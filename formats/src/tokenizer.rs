//! Tokenizer files → one [`Vocabulary`]: `tokenizer.json` (BPE, WordPiece, Unigram, WordLevel; byte-level,
//! Metaspace and WordPiece conventions; added tokens), `vocab.json` + `merges.txt` (GPT-2), `vocab.txt`
//! (WordPiece), and when nothing else exists `tokenizer.model` (SentencePiece protobuf, or tiktoken ranks),
//! `tekken.json` (Mistral) or a `*.tiktoken` ranks file ([`tiktoken`]).
//!
//! Every parser is a pure function of the file's text or bytes (the path only names the file in errors), never
//! panics, and rejects ids outside `u32`. Token strings are kept raw: `Ġ`, `▁` and `##` markers are never
//! stripped. The SentencePiece reader is a hand-written protobuf wire decoder for the few fields used
//! (`ModelProto.pieces` and `ModelProto.trainer_spec`), so the crate needs no protobuf dependency.
//!
//! Duplicates: an identical `(token, id)` pair (a special token listed both in the model vocabulary and in
//! `added_tokens`) is kept once; two different tokens with the same id, or one token with two ids, are all kept.

mod json;
mod tiktoken;

pub use tiktoken::{looks_like_ranks, parse_ranks as parse_tiktoken_ranks, parse_tekken};

use crate::error::{Error, Result};
use crate::strings::{StringList, TokenList};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
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
    /// Every (token, id), added tokens included, sorted by id then token (one buffer for all the strings).
    pub tokens: TokenList,
    /// Added tokens (content, id, special flag).
    pub added_tokens: Vec<(String, u32, bool)>,
    /// BPE merges as `"a b"` strings, in order; empty for non-BPE. One buffer for all of them (a vocabulary
    /// has up to a few hundred thousand).
    pub merges: StringList,
    /// Whether the normalizer lower-cases input (BERT uncased): anchors are then looked up lower-cased.
    pub lowercase: bool,
    /// `tokenizer_config.json:tokenizer_class`, when present.
    pub tokenizer_class: Option<String>,
    /// Special token ids (from tokenizer_config.json / special_tokens_map.json / the model's own unk token).
    pub special: SpecialTokens,
}

impl Vocabulary {
    /// Contents of the added tokens flagged special (`<s>`, `[CLS]`, `<|endoftext|>`, SentencePiece control
    /// pieces, ...).
    pub fn special_contents(&self) -> HashSet<&str> {
        self.added_tokens
            .iter()
            .filter(|(_, _, special)| *special)
            .map(|(c, _, _)| c.as_str())
            .collect()
    }

    /// The id of a token string (the lowest id when a string has several), or `None`.
    pub fn id_of(&self, token: &str) -> Option<u32> {
        self.tokens
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, id)| *id)
            .min()
    }

    /// Sort tokens by (id, token) and added tokens by (id, content), dropping exact duplicates.
    fn normalize(&mut self) {
        self.tokens.sort_dedup();
        self.added_tokens
            .sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        self.added_tokens.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    }
}

/// Largest tokenizer file [`load_vocabulary`] reads (1 GiB); larger files are refused as unsupported.
pub const MAX_TOKENIZER_FILE_BYTES: u64 = 1 << 30;

/// The GPT-2 byte alphabet: the printable character that stands for each byte in a byte-level vocabulary.
///
/// Bytes `!`..=`~`, `¡`..=`¬` and `®`..=`ÿ` stand for themselves; the other 68 bytes (controls, space, DEL,
/// NBSP, soft hyphen, ...) map in byte order to U+0100, U+0101, ... (so space is `Ġ` U+0120, `\n` is `Ċ`).
pub fn byte_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable =
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let code = if printable {
            b as u32
        } else {
            let c = next;
            next += 1;
            c
        };
        // Every code here is below U+0144, a valid scalar value.
        *slot = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

/// The inverse of [`byte_to_unicode`]: the byte a byte-alphabet character stands for.
pub fn unicode_to_byte() -> HashMap<char, u8> {
    byte_to_unicode()
        .iter()
        .enumerate()
        .map(|(b, &c)| (c, b as u8))
        .collect()
}

/// Find and load the vocabulary of a model directory: tokenizer.json, then vocab.json + merges.txt, then
/// vocab.txt, then a SentencePiece model, `tekken.json` or a tiktoken ranks file ([`load_model_file`]);
/// tokenizer_config.json and special_tokens_map.json supply the class and special tokens. `Ok(None)` when the
/// directory holds no tokenizer file; an error when one exists but is bad.
///
/// In tokenizer_config.json, `tokenizer_class` sets the class, `bos_token` / `eos_token` /
/// `pad_token` / `unk_token` / `mask_token` (strings or `{"content": ...}` objects) are looked up in the
/// vocabulary (an explicit `null` clears the id), `added_tokens_decoder` adds tokens, and a boolean
/// `do_lower_case` overrides `lowercase` of a WordPiece vocabulary (as transformers' BERT tokenizers do).
/// special_tokens_map.json is applied afterwards and wins, as in transformers.
pub fn load_vocabulary(dir: &Path) -> Result<Option<Vocabulary>> {
    let mut vocab = if let Some(text) = read_text_if_exists(&dir.join("tokenizer.json"))? {
        parse_tokenizer_json(&dir.join("tokenizer.json"), &text)?
    } else if let Some(text) = read_text_if_exists(&dir.join("vocab.json"))? {
        let merges = read_text_if_exists(&dir.join("merges.txt"))?.unwrap_or_default();
        parse_gpt2_vocab(&dir.join("vocab.json"), &text, &merges)?
    } else if let Some(text) = read_text_if_exists(&dir.join("vocab.txt"))? {
        parse_vocab_txt(&dir.join("vocab.txt"), &text)?
    } else {
        match load_model_file(dir)? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
    for name in ["tokenizer_config.json", "special_tokens_map.json"] {
        let path = dir.join(name);
        if let Some(text) = read_text_if_exists(&path)? {
            apply_config(&path, &text, &mut vocab)?;
        }
    }
    vocab.normalize();
    Ok(Some(vocab))
}

/// SentencePiece model files under the names transformers gives them: Llama and most others, T5/ALBERT/XLNet,
/// XLM-R/mBART/CamemBERT, DeBERTa-v2/v3.
const SENTENCEPIECE_FILES: &[&str] = &[
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "spm.model",
];

/// tiktoken ranks files under fixed names: Kimi/Moonlight, Qwen (1st generation). Any other `*.tiktoken`
/// file is taken after these.
const TIKTOKEN_FILES: &[&str] = &["tiktoken.model", "qwen.tiktoken"];

/// The vocabulary of a directory without tokenizer.json, vocab.json or vocab.txt: a SentencePiece model
/// ([`SENTENCEPIECE_FILES`]; a `tokenizer.model` that holds tiktoken ranks, as GLM-4's does, is read as
/// such), else Mistral's `tekken.json`, else a tiktoken ranks file ([`TIKTOKEN_FILES`], then the first
/// `*.tiktoken` by name).
fn load_model_file(dir: &Path) -> Result<Option<Vocabulary>> {
    for name in SENTENCEPIECE_FILES {
        let path = dir.join(name);
        if let Some(bytes) = read_bytes_if_exists(&path)? {
            return if tiktoken::looks_like_ranks(&bytes) {
                tiktoken::parse_ranks(&path, &bytes).map(Some)
            } else {
                parse_sentencepiece_model(&path, &bytes).map(Some)
            };
        }
    }
    let tekken = dir.join("tekken.json");
    if let Some(text) = read_text_if_exists(&tekken)? {
        return tiktoken::parse_tekken(&tekken, &text).map(Some);
    }
    for name in TIKTOKEN_FILES {
        let path = dir.join(name);
        if let Some(bytes) = read_bytes_if_exists(&path)? {
            return tiktoken::parse_ranks(&path, &bytes).map(Some);
        }
    }
    let mut others: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tiktoken"))
        .collect();
    others.sort();
    match others.first() {
        Some(path) => {
            let bytes = read_bytes_if_exists(path)?.unwrap_or_default();
            tiktoken::parse_ranks(path, &bytes).map(Some)
        }
        None => Ok(None),
    }
}

/// Parse a `tokenizer.json` text.
///
/// The model type comes from `model.type`, or from the shape of `model` when that is absent (a vocab list is
/// Unigram, merges mean BPE, a `continuing_subword_prefix` WordPiece, anything else WordLevel). Added tokens
/// come from `added_tokens[]`. The convention is ByteLevel when the pre-tokenizer or decoder (or a member of a
/// `Sequence`) is `ByteLevel`; Metaspace when either is `Metaspace`, or the normalizer has `Replace(" ", "▁")`
/// or `Prepend("▁")`, or the decoder `Replace("▁", " ")`; WordPiece for WordPiece models; Plain otherwise.
/// `lowercase` is set by a `BertNormalizer` whose `lowercase` is not `false`, or a `Lowercase` normalizer.
/// Only the unk id is known here (`model.unk_token`, or `model.unk_id` for Unigram).
pub fn parse_tokenizer_json(path: &Path, text: &str) -> Result<Vocabulary> {
    match parse_tokenizer_json_typed(path, text) {
        Some(vocab) => Ok(vocab),
        None => parse_tokenizer_json_value(path, text),
    }
}

/// The fast path of [`parse_tokenizer_json`]: the typed reader ([`json`]), or `None` when it gives up.
fn parse_tokenizer_json_typed(path: &Path, text: &str) -> Option<Vocabulary> {
    let (parts, components) = typed_parts(json::tokenizer_file(text)?)?;
    Some(assemble_tokenizer_json(
        path,
        parts,
        components.normalizer.as_ref(),
        components.pre_tokenizer.as_ref(),
        components.decoder.as_ref(),
    ))
}

/// Whether the two readers of [`parse_tokenizer_json`] and [`parse_gpt2_vocab`] agree on `text`: wherever the
/// typed reader answers, the `Value` reader gives the same vocabulary (a fuzzing oracle, and used by tests).
pub(crate) fn typed_readers_agree(text: &str) -> bool {
    let path = Path::new("tokenizer.json");
    let tokenizer = match parse_tokenizer_json_typed(path, text) {
        Some(fast) => parse_tokenizer_json_value(path, text).ok() == Some(fast),
        None => true,
    };
    let vocab_json = match json::vocab_map(text) {
        // Both in the canonical order (neither has a repeated token: the typed reader refuses one, the
        // `Value` reader keeps a key once), then equal as lists.
        Some(mut fast) => match parse_gpt2_vocab_value(path, text) {
            Ok(reference) => {
                let mut reference = TokenList::from(reference);
                fast.sort_dedup();
                reference.sort_dedup();
                fast == reference
            }
            Err(_) => false,
        },
        None => true,
    };
    tokenizer && vocab_json
}

/// What [`parse_tokenizer_json`] reads from a tokenizer.json, before the unk id, added tokens, convention and
/// order are settled by [`assemble_tokenizer_json`].
struct JsonParts {
    kind: TokenizerModelKind,
    /// The model vocabulary (without added tokens).
    tokens: TokenList,
    merges: StringList,
    added_tokens: Vec<(String, u32, bool)>,
    /// `model.unk_token` when it is a string (not Unigram).
    unk_token: Option<String>,
    /// `model.unk_id` when it is a u32 (Unigram).
    unk_id: Option<u32>,
}

/// The pipeline components, as read by the typed reader.
struct Components {
    normalizer: Option<Value>,
    pre_tokenizer: Option<Value>,
    decoder: Option<Value>,
}

/// The typed reader's file → parts, or `None` where the `Value` reader would fail (it then gives the error).
fn typed_parts(file: json::TokenizerFile) -> Option<(JsonParts, Components)> {
    let model = file.model;
    let kind = match &model.ty {
        Some(Value::String(t)) => match t.as_str() {
            "BPE" => TokenizerModelKind::Bpe,
            "WordPiece" => TokenizerModelKind::WordPiece,
            "WordLevel" => TokenizerModelKind::WordLevel,
            "Unigram" => TokenizerModelKind::Unigram,
            _ => return None,
        },
        None | Some(Value::Null) => match (&model.vocab, &model.merges) {
            (json::VocabField::List(_), _) => TokenizerModelKind::Unigram,
            (_, Some(_)) => TokenizerModelKind::Bpe,
            _ if model.wordpiece_keys => TokenizerModelKind::WordPiece,
            _ => TokenizerModelKind::WordLevel,
        },
        Some(_) => return None,
    };
    let tokens = match (kind, model.vocab) {
        (TokenizerModelKind::Unigram, json::VocabField::List(pieces)) => {
            u32::try_from(pieces.len()).ok()?;
            pieces.iter().zip(0u32..).collect()
        }
        (TokenizerModelKind::Unigram, json::VocabField::Map(_)) => return None,
        (_, json::VocabField::Map(tokens)) => tokens,
        (_, json::VocabField::List(_)) => return None,
    };
    let merges = match kind {
        TokenizerModelKind::Bpe => model.merges.unwrap_or_default(),
        _ => StringList::new(),
    };
    let added_tokens = file
        .added_tokens
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.content, t.id, t.special))
        .collect();
    let parts = JsonParts {
        kind,
        tokens,
        merges,
        added_tokens,
        unk_token: model
            .unk_token
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_string),
        unk_id: model.unk_id.as_ref().and_then(json_u32),
    };
    let components = Components {
        normalizer: file.normalizer,
        pre_tokenizer: file.pre_tokenizer,
        decoder: file.decoder,
    };
    Some((parts, components))
}

/// The reference reader of [`parse_tokenizer_json`], over a `serde_json::Value` tree: slower, but it names
/// the field that is wrong. It runs when the typed reader gives up, and the tests compare the two.
fn parse_tokenizer_json_value(path: &Path, text: &str) -> Result<Vocabulary> {
    let root: Value = parse_json(path, text)?;
    let obj = root
        .as_object()
        .ok_or_else(|| json_err(path, "expected an object at the top level"))?;
    let model = match obj.get("model") {
        None | Some(Value::Null) => return Err(json_err(path, "missing field `model`")),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(json_err(path, "field `model` is not an object")),
    };
    let kind = tokenizer_json_kind(path, model)?;
    let vocab_value = match model.get("vocab") {
        None | Some(Value::Null) => return Err(json_err(path, "missing field `model.vocab`")),
        Some(v) => v,
    };

    let mut tokens: Vec<(String, u32)> = Vec::new();
    if kind == TokenizerModelKind::Unigram {
        let list = vocab_value.as_array().ok_or_else(|| {
            json_err(
                path,
                "`model.vocab` of a Unigram model must be a list of [piece, score] pairs",
            )
        })?;
        tokens.reserve(list.len());
        for (i, entry) in list.iter().enumerate() {
            let piece = entry
                .as_array()
                .and_then(|pair| pair.first())
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    json_err(
                        path,
                        format!("`model.vocab[{i}]` is not a [piece, score] pair"),
                    )
                })?;
            let id = u32::try_from(i)
                .map_err(|_| json_err(path, "`model.vocab` has more than 2^32 entries"))?;
            tokens.push((piece.to_string(), id));
        }
    } else {
        let map = vocab_value.as_object().ok_or_else(|| {
            json_err(
                path,
                "`model.vocab` must be an object mapping tokens to ids",
            )
        })?;
        tokens.reserve(map.len());
        for (token, id) in map {
            let id = json_u32(id).ok_or_else(|| {
                json_err(
                    path,
                    format!(
                        "`model.vocab[{}]`: id {} is not an integer in u32 range",
                        clip(token),
                        clip_value(id)
                    ),
                )
            })?;
            tokens.push((token.clone(), id));
        }
    }

    let mut merges = StringList::new();
    if kind == TokenizerModelKind::Bpe {
        match model.get("merges") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                merges = StringList::with_capacity(list.len());
                for (i, m) in list.iter().enumerate() {
                    match m {
                        Value::String(s) => merges.push(s),
                        Value::Array(pair) => match pair.as_slice() {
                            [Value::String(a), Value::String(b)] => {
                                merges.push_concat(&[a, " ", b])
                            }
                            _ => {
                                return Err(json_err(
                                    path,
                                    format!("`model.merges[{i}]` is not a pair of strings"),
                                ))
                            }
                        },
                        _ => {
                            return Err(json_err(
                                path,
                                format!("`model.merges[{i}]` is not a string or a pair"),
                            ))
                        }
                    }
                }
            }
            Some(_) => return Err(json_err(path, "`model.merges` is not a list")),
        }
    }

    let mut added_tokens = Vec::new();
    match obj.get("added_tokens") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, t) in list.iter().enumerate() {
                let t = t.as_object().ok_or_else(|| {
                    json_err(path, format!("`added_tokens[{i}]` is not an object"))
                })?;
                let content = t.get("content").and_then(Value::as_str).ok_or_else(|| {
                    json_err(
                        path,
                        format!("`added_tokens[{i}].content` is missing or not a string"),
                    )
                })?;
                let id = t.get("id").and_then(json_u32).ok_or_else(|| {
                    json_err(
                        path,
                        format!("`added_tokens[{i}].id` is missing or not an integer in u32 range"),
                    )
                })?;
                let special = t.get("special").and_then(Value::as_bool).unwrap_or(false);
                added_tokens.push((content.to_string(), id, special));
            }
        }
        Some(_) => return Err(json_err(path, "`added_tokens` is not a list")),
    }

    let parts = JsonParts {
        kind,
        tokens: tokens.into(),
        merges,
        added_tokens,
        unk_token: model
            .get("unk_token")
            .and_then(Value::as_str)
            .map(str::to_string),
        unk_id: model.get("unk_id").and_then(json_u32),
    };
    Ok(assemble_tokenizer_json(
        path,
        parts,
        obj.get("normalizer"),
        obj.get("pre_tokenizer"),
        obj.get("decoder"),
    ))
}

/// The vocabulary from the parts of a tokenizer.json: the unk id, added tokens joined to the tokens, the
/// convention and `lowercase` from the pipeline components, and the canonical order.
fn assemble_tokenizer_json(
    path: &Path,
    parts: JsonParts,
    normalizer: Option<&Value>,
    pre_tokenizer: Option<&Value>,
    decoder: Option<&Value>,
) -> Vocabulary {
    let JsonParts {
        kind,
        mut tokens,
        merges,
        added_tokens,
        unk_token,
        unk_id,
    } = parts;
    // The model's own unk token.
    let unk = if kind == TokenizerModelKind::Unigram {
        unk_id.filter(|&id| (id as usize) < tokens.len())
    } else {
        unk_token.as_deref().and_then(|unk| {
            tokens
                .iter()
                .filter(|(t, _)| *t == unk)
                .map(|(_, id)| *id)
                .min()
                .or_else(|| {
                    added_tokens
                        .iter()
                        .find(|(c, _, _)| c == unk)
                        .map(|(_, id, _)| *id)
                })
        })
    };

    for (content, id, _) in &added_tokens {
        tokens.push(content, *id);
    }

    let convention = if any_component(pre_tokenizer, 0, &|c| is_type(c, "ByteLevel"))
        || any_component(decoder, 0, &|c| is_type(c, "ByteLevel"))
    {
        Convention::ByteLevel
    } else if any_component(pre_tokenizer, 0, &|c| is_type(c, "Metaspace"))
        || any_component(decoder, 0, &|c| {
            is_type(c, "Metaspace") || is_replace(c, "\u{2581}", " ")
        })
        || any_component(normalizer, 0, &|c| {
            is_replace(c, " ", "\u{2581}")
                || (is_type(c, "Prepend")
                    && c.get("prepend").and_then(Value::as_str) == Some("\u{2581}"))
        })
    {
        Convention::Metaspace
    } else if kind == TokenizerModelKind::WordPiece {
        Convention::WordPiece
    } else {
        Convention::Plain
    };
    let lowercase = any_component(normalizer, 0, &|c| {
        is_type(c, "Lowercase")
            || (is_type(c, "BertNormalizer")
                && c.get("lowercase").and_then(Value::as_bool) != Some(false))
    });

    let mut vocab = Vocabulary {
        source_file: file_name(path, "tokenizer.json"),
        kind,
        convention,
        tokens,
        added_tokens,
        merges,
        lowercase,
        tokenizer_class: None,
        special: SpecialTokens {
            unk,
            ..SpecialTokens::default()
        },
    };
    vocab.normalize();
    vocab
}

/// Parse a WordPiece `vocab.txt` (one token per line, id = line number).
///
/// Lines end with `\n` or `\r\n`; an empty line uses up its id but adds no token. `unk` is `[UNK]` when present.
pub fn parse_vocab_txt(path: &Path, text: &str) -> Result<Vocabulary> {
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let id = u32::try_from(i).map_err(|_| Error::corrupt(path, "more than 2^32 lines"))?;
        if !line.is_empty() {
            tokens.push((line.to_string(), id));
        }
    }
    let unk = tokens.iter().find(|(t, _)| t == "[UNK]").map(|(_, id)| *id);
    let mut vocab = Vocabulary {
        source_file: file_name(path, "vocab.txt"),
        kind: TokenizerModelKind::WordPiece,
        convention: Convention::WordPiece,
        tokens: tokens.into(),
        added_tokens: Vec::new(),
        merges: StringList::new(),
        lowercase: false,
        tokenizer_class: None,
        special: SpecialTokens {
            unk,
            ..SpecialTokens::default()
        },
    };
    vocab.normalize();
    Ok(vocab)
}

/// Parse GPT-2 style `vocab.json` + `merges.txt` (merges may be absent: empty text).
///
/// merges.txt may start with a `#version` line; empty lines are skipped; every other line must be two
/// space-separated symbols. With merges the convention is ByteLevel. Without them the convention is guessed
/// from the tokens: ByteLevel if any starts with `Ġ`, else Metaspace if any starts with `▁`, else Plain.
pub fn parse_gpt2_vocab(path: &Path, vocab_json: &str, merges_txt: &str) -> Result<Vocabulary> {
    let tokens = match json::vocab_map(vocab_json) {
        Some(tokens) => tokens,
        None => parse_gpt2_vocab_value(path, vocab_json)?.into(),
    };

    let merges_path = path.with_file_name("merges.txt");
    let mut merges = StringList::new();
    for (i, line) in merges_txt.lines().enumerate() {
        if (i == 0 && line.starts_with("#version")) || line.is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => merges.push(line),
            _ => {
                return Err(Error::corrupt(
                    &merges_path,
                    format!(
                        "line {}: expected two space-separated symbols, got `{}`",
                        i + 1,
                        clip(line)
                    ),
                ))
            }
        }
    }

    let convention = if !merges.is_empty() || tokens.iter().any(|(t, _)| t.starts_with('\u{120}')) {
        Convention::ByteLevel
    } else if tokens.iter().any(|(t, _)| t.starts_with('\u{2581}')) {
        Convention::Metaspace
    } else {
        Convention::Plain
    };
    let mut vocab = Vocabulary {
        source_file: file_name(path, "vocab.json"),
        kind: TokenizerModelKind::Bpe,
        convention,
        tokens,
        added_tokens: Vec::new(),
        merges,
        lowercase: false,
        tokenizer_class: None,
        special: SpecialTokens::default(),
    };
    vocab.normalize();
    Ok(vocab)
}

/// The tokens of a vocab.json through a `serde_json::Value` tree: the reference reader, which names the entry
/// that is wrong. It runs when the typed reader gives up.
fn parse_gpt2_vocab_value(path: &Path, vocab_json: &str) -> Result<Vec<(String, u32)>> {
    let root: Value = parse_json(path, vocab_json)?;
    let map = root
        .as_object()
        .ok_or_else(|| json_err(path, "expected an object mapping tokens to ids"))?;
    let mut tokens = Vec::with_capacity(map.len());
    for (token, id) in map {
        let id = json_u32(id).ok_or_else(|| {
            json_err(
                path,
                format!(
                    "`{}`: id {} is not an integer in u32 range",
                    clip(token),
                    clip_value(id)
                ),
            )
        })?;
        tokens.push((token.clone(), id));
    }
    Ok(tokens)
}

/// Parse a SentencePiece `tokenizer.model` (protobuf `ModelProto`: pieces with type; trainer model type).
///
/// Fields read (sentencepiece_model.proto): `ModelProto.pieces = 1` (`piece = 1`, `score = 2`, `type = 3`:
/// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) and `ModelProto.trainer_spec = 2`
/// (`model_type = 3`: 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR; `unk_id = 40`, `bos_id = 41`, `eos_id = 42`,
/// `pad_id = 43`, with the proto defaults 0, 1, 2, -1). Everything else is skipped.
///
/// The id of a piece is its index. Unknown and control pieces become special added tokens, user-defined
/// pieces non-special added tokens (as transformers' converters do). The kind is Bpe for BPE models, WordLevel
/// for WORD and CHAR models, Unigram otherwise; merges are not stored in the file, so they stay empty. The
/// convention is Metaspace.
pub fn parse_sentencepiece_model(path: &Path, bytes: &[u8]) -> Result<Vocabulary> {
    let mut tokens = Vec::new();
    let mut added_tokens = Vec::new();
    let mut n_pieces: u32 = 0;
    let mut first_unknown_piece = None;
    let mut trainer = TrainerSpec::default();

    let mut reader = PbReader::new(path, bytes, 0);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, PbValue::Bytes(msg, offset)) => {
                let piece = parse_piece(path, msg, offset)?;
                let id = n_pieces;
                n_pieces = n_pieces
                    .checked_add(1)
                    .ok_or_else(|| Error::corrupt(path, "more than 2^32 pieces"))?;
                match piece.kind {
                    2 => {
                        first_unknown_piece.get_or_insert(id);
                        added_tokens.push((piece.text.clone(), id, true));
                    }
                    3 => added_tokens.push((piece.text.clone(), id, true)),
                    4 => added_tokens.push((piece.text.clone(), id, false)),
                    _ => {}
                }
                if !piece.text.is_empty() {
                    tokens.push((piece.text, id));
                }
            }
            (1, _) => {
                return Err(Error::corrupt(
                    path,
                    "ModelProto.pieces (field 1) is not length-delimited",
                ))
            }
            (2, PbValue::Bytes(msg, offset)) => {
                parse_trainer_spec(path, msg, offset, &mut trainer)?
            }
            _ => {}
        }
    }
    if n_pieces == 0 {
        return Err(Error::corrupt(
            path,
            "no SentencePiece pieces (not a SentencePiece model?)",
        ));
    }

    let in_range = |id: i32| u32::try_from(id).ok().filter(|&id| id < n_pieces);
    let kind = match trainer.model_type {
        2 => TokenizerModelKind::Bpe,
        3 | 4 => TokenizerModelKind::WordLevel,
        _ => TokenizerModelKind::Unigram,
    };
    let mut vocab = Vocabulary {
        source_file: file_name(path, "tokenizer.model"),
        kind,
        convention: Convention::Metaspace,
        tokens: tokens.into(),
        added_tokens,
        merges: StringList::new(),
        lowercase: false,
        tokenizer_class: None,
        special: SpecialTokens {
            bos: in_range(trainer.bos_id),
            eos: in_range(trainer.eos_id),
            pad: in_range(trainer.pad_id),
            unk: in_range(trainer.unk_id).or(first_unknown_piece),
            mask: None,
        },
    };
    vocab.normalize();
    Ok(vocab)
}

// ---------------------------------------------------------------------------------------------------------
// tokenizer_config.json / special_tokens_map.json

/// Apply tokenizer_config.json or special_tokens_map.json (same handling; keys absent from a file are ignored).
fn apply_config(path: &Path, text: &str, vocab: &mut Vocabulary) -> Result<()> {
    let root: Value = parse_json(path, text)?;
    let obj = root
        .as_object()
        .ok_or_else(|| json_err(path, "expected an object at the top level"))?;

    if let Some(class) = obj.get("tokenizer_class").and_then(Value::as_str) {
        vocab.tokenizer_class = Some(class.to_string());
    }
    if let Some(lower) = obj.get("do_lower_case").and_then(Value::as_bool) {
        if vocab.kind == TokenizerModelKind::WordPiece {
            vocab.lowercase = lower;
        }
    }

    match obj.get("added_tokens_decoder") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            let known = KnownTokens::new(&vocab.tokens);
            let known_added: HashSet<(&str, u32)> = vocab
                .added_tokens
                .iter()
                .map(|(t, id, _)| (t.as_str(), *id))
                .collect();
            let mut new_tokens = Vec::new();
            let mut new_added = Vec::new();
            for (key, entry) in map {
                let id: u32 = key.parse().map_err(|_| {
                    json_err(
                        path,
                        format!(
                            "`added_tokens_decoder`: key `{}` is not a u32 token id",
                            clip(key)
                        ),
                    )
                })?;
                let content = entry
                    .get("content")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        json_err(
                            path,
                            format!(
                                "`added_tokens_decoder[{id}].content` is missing or not a string"
                            ),
                        )
                    })?;
                let special = entry
                    .get("special")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if !known.contains(&(content, id)) {
                    new_tokens.push((content.to_string(), id));
                }
                if !known_added.contains(&(content, id)) {
                    new_added.push((content.to_string(), id, special));
                }
            }
            vocab.tokens.extend(new_tokens);
            vocab.added_tokens.extend(new_added);
        }
        Some(_) => return Err(json_err(path, "`added_tokens_decoder` is not an object")),
    }

    let keys = [
        "bos_token",
        "eos_token",
        "pad_token",
        "unk_token",
        "mask_token",
    ];
    if keys.iter().any(|k| obj.contains_key(*k)) {
        let lookup = TokenLookup::new(vocab);
        let mut resolved = [None; 5];
        for (slot, key) in resolved.iter_mut().zip(keys) {
            *slot = match obj.get(key) {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::String(s)) => lookup.get(s).map(Some),
                Some(Value::Object(o)) => o
                    .get("content")
                    .and_then(Value::as_str)
                    .and_then(|s| lookup.get(s))
                    .map(Some),
                Some(_) => None,
            };
        }
        let special = &mut vocab.special;
        let fields = [
            &mut special.bos,
            &mut special.eos,
            &mut special.pad,
            &mut special.unk,
            &mut special.mask,
        ];
        for (field, value) in fields.into_iter().zip(resolved) {
            if let Some(value) = value {
                *field = value;
            }
        }
    }
    Ok(())
}

/// Token string → id: the first added token with that content, else the lowest id of the model vocabulary.
///
/// A config names at most five special tokens, so each is looked up by a scan instead of hashing the whole
/// vocabulary.
struct TokenLookup<'a> {
    vocab: &'a Vocabulary,
}

impl<'a> TokenLookup<'a> {
    fn new(vocab: &'a Vocabulary) -> Self {
        TokenLookup { vocab }
    }

    fn get(&self, token: &str) -> Option<u32> {
        if let Some((_, id, _)) = self.vocab.added_tokens.iter().find(|(t, _, _)| t == token) {
            return Some(*id);
        }
        self.vocab
            .tokens
            .iter()
            .filter(|(t, _)| *t == token)
            .map(|(_, id)| *id)
            .min()
    }
}

/// Membership of `(token, id)` pairs in the tokens: a binary search when they are in the canonical order of
/// [`Vocabulary::normalize`] (as every parser leaves them), else a hash set.
enum KnownTokens<'a> {
    Sorted(&'a TokenList),
    Hashed(HashSet<(&'a str, u32)>),
}

impl<'a> KnownTokens<'a> {
    fn new(tokens: &'a TokenList) -> Self {
        let pairs = || tokens.iter().map(|(t, id)| (*id, t));
        if pairs().zip(pairs().skip(1)).all(|(a, b)| a <= b) {
            KnownTokens::Sorted(tokens)
        } else {
            KnownTokens::Hashed(tokens.iter().map(|(t, id)| (t, *id)).collect())
        }
    }

    fn contains(&self, &(token, id): &(&str, u32)) -> bool {
        match self {
            KnownTokens::Sorted(tokens) => {
                // The first pair not below (id, token), as `binary_search` over a slice of pairs would find.
                let (mut lo, mut hi) = (0, tokens.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    match tokens.get(mid) {
                        Some((t, i)) if (i, t) < (id, token) => lo = mid + 1,
                        _ => hi = mid,
                    }
                }
                tokens.get(lo) == Some((token, id))
            }
            KnownTokens::Hashed(set) => set.contains(&(token, id)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// tokenizer.json helpers

fn tokenizer_json_kind(path: &Path, model: &Map<String, Value>) -> Result<TokenizerModelKind> {
    match model.get("type") {
        Some(Value::String(t)) => match t.as_str() {
            "BPE" => Ok(TokenizerModelKind::Bpe),
            "WordPiece" => Ok(TokenizerModelKind::WordPiece),
            "WordLevel" => Ok(TokenizerModelKind::WordLevel),
            "Unigram" => Ok(TokenizerModelKind::Unigram),
            other => Err(Error::Unsupported {
                path: path.to_path_buf(),
                detail: format!("tokenizer model type `{}`", clip(other)),
            }),
        },
        None | Some(Value::Null) => Ok(if model.get("vocab").is_some_and(Value::is_array) {
            TokenizerModelKind::Unigram
        } else if model.get("merges").is_some_and(|m| !m.is_null()) {
            TokenizerModelKind::Bpe
        } else if model.contains_key("continuing_subword_prefix")
            || model.contains_key("max_input_chars_per_word")
        {
            TokenizerModelKind::WordPiece
        } else {
            TokenizerModelKind::WordLevel
        }),
        Some(_) => Err(json_err(path, "`model.type` is not a string")),
    }
}

/// Whether `component` (a normalizer, pre-tokenizer or decoder), or any member of it when it is a `Sequence`,
/// satisfies `pred`. Depth is bounded (serde_json already limits nesting; this is belt and braces).
fn any_component(
    component: Option<&Value>,
    depth: usize,
    pred: &dyn Fn(&Map<String, Value>) -> bool,
) -> bool {
    let Some(Value::Object(obj)) = component else {
        return false;
    };
    if depth > 32 {
        return false;
    }
    if pred(obj) {
        return true;
    }
    if is_type(obj, "Sequence") {
        for key in ["normalizers", "pretokenizers", "pre_tokenizers", "decoders"] {
            if let Some(Value::Array(members)) = obj.get(key) {
                if members
                    .iter()
                    .any(|m| any_component(Some(m), depth + 1, pred))
                {
                    return true;
                }
            }
        }
    }
    false
}

fn is_type(obj: &Map<String, Value>, ty: &str) -> bool {
    obj.get("type").and_then(Value::as_str) == Some(ty)
}

/// A `Replace` component replacing the literal `from` with `to`.
fn is_replace(obj: &Map<String, Value>, from: &str, to: &str) -> bool {
    is_type(obj, "Replace")
        && obj.get("content").and_then(Value::as_str) == Some(to)
        && obj
            .get("pattern")
            .and_then(|p| p.get("String"))
            .and_then(Value::as_str)
            == Some(from)
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

fn json_err(path: &Path, detail: impl Into<String>) -> Error {
    Error::Json {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn parse_json(path: &Path, text: &str) -> Result<Value> {
    // serde_json's message carries the line and column; its recursion limit bounds nesting.
    crate::python_json::parse(text).map_err(|e| json_err(path, e.to_string()))
}

fn json_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// A string cut to 40 characters for an error message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    format!("{out:?}")
}

fn clip_value(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn file_name(path: &Path, default: &str) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(default)
        .to_string()
}

fn read_bytes_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if meta.len() > MAX_TOKENIZER_FILE_BYTES {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            detail: format!(
                "{} bytes is larger than the {} byte limit for tokenizer files",
                meta.len(),
                MAX_TOKENIZER_FILE_BYTES
            ),
        });
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|e| Error::io(path, e))
}

fn read_text_if_exists(path: &Path) -> Result<Option<String>> {
    match read_bytes_if_exists(path)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            Error::corrupt(
                path,
                format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
            )
        }),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Protobuf wire decoding (just enough for sentencepiece_model.proto)

/// One decoded field value. `Bytes` carries the absolute offset of its payload for error messages.
enum PbValue<'a> {
    Varint(u64),
    Fixed64,
    Fixed32,
    Bytes(&'a [u8], usize),
}

struct PbReader<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the file.
    base: usize,
}

impl<'a> PbReader<'a> {
    fn new(path: &'a Path, buf: &'a [u8], base: usize) -> Self {
        PbReader {
            path,
            buf,
            pos: 0,
            base,
        }
    }

    fn err(&self, what: &str) -> Error {
        Error::corrupt(
            self.path,
            format!("protobuf: {what} at byte {}", self.base + self.pos),
        )
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.err("truncated varint"));
            };
            self.pos += 1;
            if shift == 63 && byte > 1 {
                return Err(self.err("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.err("truncated field"))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("truncated field"))?;
        self.pos = end;
        Ok(bytes)
    }

    /// The next (field number, value), or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, PbValue<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let field = tag >> 3;
        if field == 0 {
            return Err(self.err("field number 0"));
        }
        let value = match tag & 7 {
            0 => PbValue::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                PbValue::Fixed64
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| self.err("length out of range"))?;
                let offset = self.base + self.pos;
                PbValue::Bytes(self.take(len)?, offset)
            }
            5 => {
                self.take(4)?;
                PbValue::Fixed32
            }
            3 | 4 => return Err(self.err("protobuf groups are not supported")),
            _ => return Err(self.err("invalid wire type")),
        };
        Ok(Some((field, value)))
    }
}

struct Piece {
    text: String,
    /// `ModelProto.SentencePiece.Type`; 1 (NORMAL) when absent.
    kind: u64,
}

fn parse_piece(path: &Path, msg: &[u8], offset: usize) -> Result<Piece> {
    let mut text = String::new();
    let mut kind = 1;
    let mut reader = PbReader::new(path, msg, offset);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, PbValue::Bytes(b, at)) => {
                text = std::str::from_utf8(b)
                    .map_err(|_| {
                        Error::corrupt(
                            path,
                            format!("SentencePiece piece at byte {at} is not valid UTF-8"),
                        )
                    })?
                    .to_string();
            }
            (1, _) => {
                return Err(reader.err("SentencePiece.piece (field 1) is not length-delimited"))
            }
            (2, PbValue::Fixed32) => {} // score: not used
            (3, PbValue::Varint(v)) => kind = v,
            _ => {}
        }
    }
    Ok(Piece { text, kind })
}

/// The TrainerSpec fields used, with the proto defaults.
struct TrainerSpec {
    model_type: u64,
    unk_id: i32,
    bos_id: i32,
    eos_id: i32,
    pad_id: i32,
}

impl Default for TrainerSpec {
    fn default() -> Self {
        TrainerSpec {
            model_type: 1,
            unk_id: 0,
            bos_id: 1,
            eos_id: 2,
            pad_id: -1,
        }
    }
}

fn parse_trainer_spec(
    path: &Path,
    msg: &[u8],
    offset: usize,
    spec: &mut TrainerSpec,
) -> Result<()> {
    let mut reader = PbReader::new(path, msg, offset);
    while let Some((field, value)) = reader.next_field()? {
        if let PbValue::Varint(v) = value {
            // int32 fields are sign-extended to 64 bits on the wire: the low 32 bits are the value.
            let as_i32 = v as u32 as i32;
            match field {
                3 => spec.model_type = v,
                40 => spec.unk_id = as_i32,
                41 => spec.bos_id = as_i32,
                42 => spec.eos_id = as_i32,
                43 => spec.pad_id = as_i32,
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tokenizer.json texts that take every branch of the typed reader, and its give-up cases.
    fn typed_reader_fixtures() -> Vec<String> {
        let mut texts: Vec<String> = [
            // Byte-level BPE with both merge forms, added tokens (one also in the vocab), escapes in keys.
            r#"{"version": "1.0", "added_tokens": [{"id": 5, "content": "<|e\u006edoftext|>", "special": true},
                {"id": 6, "content": "<x>", "special": "yes", "lstrip": false}, {"id": 7, "content": "<y>"}],
                "normalizer": null, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}]},
                "post_processor": {"type": "TemplateProcessing", "single": [{"A": 1}]}, "decoder": {"type": "ByteLevel"},
                "model": {"type": "BPE", "dropout": null, "unk_token": "\u0120", "vocab": {"t": 0, "\u0120": 3,
                "\u0120the": 4, "<|endoftext|>": 5, "a\"b": 8}, "merges": ["\u0120 t", ["h", "e"]]}}"#,
            // WordPiece, lower-cased, shape-detected (no type), unk among the added tokens only.
            r###"{"added_tokens": [{"id": 0, "content": "[UNK]", "special": true}], "normalizer":
                {"type": "BertNormalizer", "lowercase": true}, "model": {"unk_token": "[UNK]",
                "continuing_subword_prefix": null, "vocab": {"the": 1, "##s": 2}}}"###,
            // Unigram, shape-detected, extra entries after the score, Metaspace normalizer.
            r#"{"model": {"unk_id": 1, "vocab": [["<unk>", 0.0], ["\u2581the", -1.5, "x"], ["a", -2]]},
                "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}]}}"#,
            r#"{"model": {"type": "Unigram", "unk_id": 99, "vocab": [["a", 0]]}, "added_tokens": null}"#,
            // BPE by shape (merges), WordLevel by shape, null merges.
            r#"{"model": {"vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}"#,
            r#"{"model": {"vocab": {"a": 0, "b": 1}}}"#,
            r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": null}}"#,
            r#"{"model": {"type": null, "vocab": {"a": 0}, "merges": null, "max_input_chars_per_word": 100}}"#,
            // Merges of a non-BPE model are not read.
            r#"{"model": {"type": "WordLevel", "vocab": {"a": 0}, "merges": [1, 2]}}"#,
            // Give-ups: repeated keys (the Value reader keeps the last), objects as arrays, bad types.
            r#"{"model": {"type": "BPE", "vocab": {"a": 0, "a": 1}}}"#,
            r#"{"model": {"type": "BPE", "vocab": {"a": 0}}, "model": {"type": "BPE", "vocab": {"b": 0}}}"#,
            r#"{"model": {"type": "BPE", "type": "WordPiece", "vocab": {"a": 0}}}"#,
            r#"{"added_tokens": [{"id": 1, "id": 2, "content": "x"}], "model": {"vocab": {"a": 0}}}"#,
            r#"{"added_tokens": [[1, "x"]], "model": {"vocab": {"a": 0}}}"#,
            r#"[{"type": "BPE", "vocab": {"a": 0}}]"#,
            r#"{"model": ["BPE", {"a": 0}]}"#,
            r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b", "c"]]}}"#,
            r#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": "a b"}}"#,
            r#"{"model": {"type": 3, "vocab": {"a": 0}}}"#,
            r#"{"model": {"type": "Fancy", "vocab": {"a": 0}}}"#,
            r#"{"model": {"type": "BPE", "vocab": {"a": 1.0}}}"#,
            r#"{"model": {"type": "BPE", "vocab": {"a": 4294967296}}}"#,
            r#"{"model": {"type": "Unigram", "vocab": {"a": 0}}}"#,
            r#"{"model": {"type": "BPE", "vocab": [["a", 0]]}}"#,
            r#"{"model": {"type": "Unigram", "vocab": [[]]}}"#,
            r#"{"model": {"vocab": null}}"#,
            r#"{"model": null}"#,
            // Text the Value reader rejects inside a field neither reader uses: both must fail.
            r#"{"post_processor": "\ud800", "model": {"type": "BPE", "vocab": {"a": 0}}}"#,
            r#"{"model": {"type": "BPE", "vocab": {"a": 0}}} x"#,
            // vocab.json shapes.
            r#"{"a": 0, "\u0120b": 1}"#,
            r#"{"a": 0, "a": 1}"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/tokenizer_json");
        if let Ok(entries) = std::fs::read_dir(corpus) {
            for e in entries.flatten() {
                if let Ok(bytes) = std::fs::read(e.path()) {
                    texts.push(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
        texts
    }

    #[test]
    fn typed_reader_agrees_with_the_value_reader() {
        let path = Path::new("tokenizer.json");
        let texts = typed_reader_fixtures();
        let mut answered = 0;
        for text in &texts {
            assert!(typed_readers_agree(text), "readers disagree on {text}");
            answered += parse_tokenizer_json_typed(path, text).is_some() as usize;
        }
        assert!(
            answered >= 9,
            "the typed reader answered only {answered} fixtures"
        );
        // The typed reader answers the well-formed fixtures, and gives up on the repeated keys.
        assert!(parse_tokenizer_json_typed(path, &texts[0]).is_some());
        assert!(parse_tokenizer_json_typed(path, &texts[9]).is_none());
        assert_eq!(
            parse_tokenizer_json(path, &texts[9]).unwrap().tokens,
            [("a".to_string(), 1)],
            "the last of a repeated key wins, as before"
        );
        // Damaged copies: random byte edits and insertions of JSON punctuation.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut typed_answers = 0;
        for text in &texts {
            for _ in 0..400 {
                let mut bytes = text.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let at = (next() % (bytes.len() as u64 + 1)) as usize;
                    let alphabet = b"{}[]\",:01-e n\\u";
                    let c = alphabet[(next() % alphabet.len() as u64) as usize];
                    match next() % 3 {
                        0 if at < bytes.len() => bytes[at] = c,
                        1 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => bytes.insert(at, c),
                    }
                }
                let damaged = String::from_utf8_lossy(&bytes);
                assert!(
                    typed_readers_agree(&damaged),
                    "readers disagree on {damaged}"
                );
                typed_answers += parse_tokenizer_json_typed(path, &damaged).is_some() as usize;
            }
        }
        assert!(
            typed_answers > 500,
            "only {typed_answers} damaged texts still parse"
        );
    }

    #[test]
    fn byte_alphabet_is_a_bijection_with_known_points() {
        let t = byte_to_unicode();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'A' as usize], 'A');
        assert_eq!(t[0], '\u{100}');
        assert_eq!(t[0xAD], '\u{143}');
        assert_eq!(t[0xFF], 'ÿ');
        let set: HashSet<char> = t.iter().copied().collect();
        assert_eq!(set.len(), 256);
        let inv = unicode_to_byte();
        for (b, c) in t.iter().enumerate() {
            assert_eq!(inv[c] as usize, b);
        }
    }

    #[test]
    fn varint_edge_cases() {
        let p = Path::new("x");
        // 10-byte varint of -1.
        let mut r = PbReader::new(
            p,
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            0,
        );
        assert_eq!(r.varint().unwrap(), u64::MAX);
        let mut r = PbReader::new(
            p,
            &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02],
            0,
        );
        assert!(r.varint().is_err());
        let mut r = PbReader::new(p, &[0x80; 11], 0);
        assert!(r.varint().is_err());
        let mut r = PbReader::new(p, &[0x80], 0);
        assert!(r.varint().is_err());
    }
}
