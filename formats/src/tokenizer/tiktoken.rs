//! tiktoken-style vocabularies: BPE ranks over raw bytes, as OpenAI's tiktoken stores them.
//!
//! Two layouts are read:
//! - a plain ranks file: one `<base64 token bytes> <rank>` per line. GLM-4 ships it as `tokenizer.model`,
//!   Qwen (1st generation) as `qwen.tiktoken`, Kimi/Moonlight as `tiktoken.model`, Meta as Llama 3's
//!   `original/tokenizer.model`;
//! - Mistral's `tekken.json`: `{"config": {...}, "vocab": [{"rank", "token_bytes", ...}], "special_tokens": [...]}`,
//!   whose token ids are the special tokens first (`0..default_num_special_tokens`), then each rank shifted by
//!   that count, cut at `default_vocab_size` (as mistral-common's `Tekkenizer` reads it).
//!
//! Token bytes are spelled in the GPT-2 byte alphabet ([`byte_to_unicode`]), which is how Hugging Face's
//! conversions of these tokenizers spell them in `tokenizer.json`: the same tokenizer gives the same
//! vocabulary whichever file it came from, and anchors are looked up by the byte-level convention.

use super::{byte_to_unicode, Convention, SpecialTokens, TokenizerModelKind, Vocabulary};
use crate::error::{Error, Result};
use crate::strings::{StringList, TokenList};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use std::path::Path;

/// The longest first line [`looks_like_ranks`] inspects.
const SNIFF_BYTES: usize = 4096;

/// Whether a file's bytes look like a tiktoken ranks file: a first line of base64, one space, and a decimal
/// rank. A SentencePiece protobuf cannot pass: its first byte is a field tag (`0x0a`), a line break here.
pub fn looks_like_ranks(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.iter().position(|&b| b == b' ') {
        Some(space) => {
            let (token, rank) = (&line[..space], &line[space + 1..]);
            !token.is_empty()
                && token.iter().all(|&b| is_base64_byte(b))
                && !rank.is_empty()
                && rank.iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Spell raw token bytes in the GPT-2 byte alphabet.
fn spell(table: &[char; 256], bytes: &[u8]) -> String {
    bytes.iter().map(|&b| table[b as usize]).collect()
}

/// The bytes of a base64 token; `what` names its place in the file (built only for an error).
fn decode(path: &Path, what: impl FnOnce() -> String, text: &str) -> Result<Vec<u8>> {
    STANDARD.decode(text).map_err(|e| {
        Error::corrupt(
            path,
            format!("{}: token bytes are not base64 ({e})", what()),
        )
    })
}

fn byte_level_vocabulary(path: &Path, tokens: TokenList) -> Vocabulary {
    Vocabulary {
        source_file: path.file_name().map_or_else(
            || "tokenizer.model".into(),
            |n| n.to_string_lossy().into_owned(),
        ),
        kind: TokenizerModelKind::Bpe,
        convention: Convention::ByteLevel,
        tokens,
        added_tokens: Vec::new(),
        merges: StringList::new(),
        lowercase: false,
        tokenizer_class: None,
        special: SpecialTokens::default(),
    }
}

/// Parse a tiktoken ranks file (`<base64> <rank>` per line; empty lines are skipped). The rank is the token id.
pub fn parse_ranks(path: &Path, bytes: &[u8]) -> Result<Vocabulary> {
    let table = byte_to_unicode();
    let mut tokens = TokenList::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let line_no = i + 1;
        let fields = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split_once(' '))
            .filter(|(token, rank)| !token.is_empty() && !rank.contains(' '));
        let Some((token, rank)) = fields else {
            return Err(Error::corrupt(
                path,
                format!("line {line_no}: expected `<base64 token> <rank>`"),
            ));
        };
        let rank: u32 = rank.parse().map_err(|_| {
            Error::corrupt(
                path,
                format!(
                    "line {line_no}: rank `{}` is not an integer below 2^32",
                    clip(rank)
                ),
            )
        })?;
        let bytes = decode(path, || format!("line {line_no}"), token)?;
        tokens.push(&spell(&table, &bytes), rank);
    }
    if tokens.is_empty() {
        return Err(Error::corrupt(path, "no tokens (an empty tiktoken file)"));
    }
    let mut vocab = byte_level_vocabulary(path, tokens);
    vocab.normalize();
    Ok(vocab)
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[derive(Deserialize)]
struct TekkenFile {
    config: TekkenConfig,
    vocab: Vec<TekkenToken>,
    special_tokens: Option<Vec<TekkenSpecial>>,
}

#[derive(Deserialize)]
struct TekkenConfig {
    default_vocab_size: u64,
    default_num_special_tokens: u64,
}

#[derive(Deserialize)]
struct TekkenToken {
    rank: u64,
    token_bytes: String,
}

#[derive(Deserialize)]
struct TekkenSpecial {
    rank: u64,
    token_str: String,
}

/// Most special tokens a tekken file may declare (`default_num_special_tokens`).
const MAX_TEKKEN_SPECIALS: u64 = 1 << 20;

/// Special tokens of tekken files that list none (tokenizer versions up to v7), ids 0.. in this order
/// (mistral-common's `Tekkenizer.DEPRECATED_SPECIAL_TOKENS`).
const TEKKEN_DEFAULT_SPECIALS: &[&str] = &[
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "<pad>",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
];

/// Parse Mistral's `tekken.json`. Ids `0..default_num_special_tokens` are the special tokens (listed ones at
/// their rank, the rest `<SPECIAL_{id}>`); vocabulary entry `i` (whose rank must be `i`) gets id
/// `i + default_num_special_tokens`, up to `default_vocab_size` ids in all.
pub fn parse_tekken(path: &Path, text: &str) -> Result<Vocabulary> {
    let file: TekkenFile = serde_json::from_str(text).map_err(|e| {
        Error::corrupt(
            path,
            format!(
                "not a tekken tokenizer file (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let specials = file.config.default_num_special_tokens;
    let size = file.config.default_vocab_size;
    let inner = size.checked_sub(specials).ok_or_else(|| {
        Error::corrupt(
            path,
            format!(
                "config: default_vocab_size {size} is below default_num_special_tokens {specials}"
            ),
        )
    })?;
    // Every special id becomes a token whatever the file's size: a cap keeps a few hostile bytes from asking
    // for billions (mistral-common's files have 1000).
    if specials > MAX_TEKKEN_SPECIALS {
        return Err(Error::corrupt(
            path,
            format!(
                "config: default_num_special_tokens {specials} is more than the {MAX_TEKKEN_SPECIALS} \
                 supported"
            ),
        ));
    }
    if size > u64::from(u32::MAX) {
        return Err(Error::corrupt(
            path,
            format!("config: default_vocab_size {size} is beyond 2^32"),
        ));
    }
    if (file.vocab.len() as u64) < inner {
        return Err(Error::corrupt(
            path,
            format!(
                "vocab has {} entries, fewer than the {inner} that default_vocab_size {size} minus \
                 {specials} special tokens needs",
                file.vocab.len()
            ),
        ));
    }

    let mut named: Vec<Option<String>> = vec![None; specials as usize];
    let listed: Vec<(u64, String)> = match file.special_tokens {
        Some(list) => list.into_iter().map(|s| (s.rank, s.token_str)).collect(),
        None => (0..)
            .zip(TEKKEN_DEFAULT_SPECIALS.iter().map(|s| s.to_string()))
            .collect(),
    };
    for (rank, content) in listed {
        match named.get_mut(rank as usize) {
            Some(slot) => *slot = Some(content),
            None => {
                return Err(Error::corrupt(
                    path,
                    format!(
                        "special token `{}` has rank {rank}, not below default_num_special_tokens \
                         {specials}",
                        clip(&content)
                    ),
                ))
            }
        }
    }

    let table = byte_to_unicode();
    let mut tokens = TokenList::new();
    let mut added_tokens = Vec::with_capacity(named.len());
    for (id, content) in (0u32..).zip(named) {
        let content = content.unwrap_or_else(|| format!("<SPECIAL_{id}>"));
        tokens.push(&content, id);
        added_tokens.push((content, id, true));
    }
    for (i, entry) in file.vocab.iter().take(inner as usize).enumerate() {
        if entry.rank != i as u64 {
            return Err(Error::corrupt(
                path,
                format!(
                    "vocab[{i}] has rank {}, expected {i} (ranks run 0, 1, 2, ...)",
                    entry.rank
                ),
            ));
        }
        let bytes = decode(path, || format!("vocab[{i}]"), &entry.token_bytes)?;
        // `size` fits in u32 (checked above), so every id below it does.
        tokens.push(&spell(&table, &bytes), (i as u64 + specials) as u32);
    }
    let id_of = |content: &str| {
        added_tokens
            .iter()
            .find(|(c, _, _)| c == content)
            .map(|(_, id, _)| *id)
    };
    let special = SpecialTokens {
        bos: id_of("<s>"),
        eos: id_of("</s>"),
        pad: id_of("<pad>"),
        unk: id_of("<unk>"),
        mask: None,
    };
    let mut vocab = byte_level_vocabulary(path, tokens);
    vocab.added_tokens = added_tokens;
    vocab.special = special;
    vocab.normalize();
    Ok(vocab)
}
