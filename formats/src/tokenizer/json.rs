//! Typed reader of `tokenizer.json` and GPT-2 `vocab.json`: the vocabulary, merges and added tokens go straight
//! into owned token strings, without building a `serde_json::Value` tree of the whole file first.
//!
//! It is the fast path of [`super::parse_tokenizer_json`] and [`super::parse_gpt2_vocab`], and it only ever
//! answers when the `Value`-based reader would give the very same [`super::Vocabulary`]. On anything unusual (a
//! field of another type, a duplicate key, an id out of `u32` range, a syntax error) it gives up with `None`
//! and the `Value`-based reader produces the result or the precise error. So it is strict where that reader is
//! lenient or order-dependent:
//!
//! - a key repeated in an object (the `Value` reader keeps the last) gives up;
//! - an object given as an array (serde would read it positionally) gives up;
//! - fields it does not use are still parsed into a `Value` and dropped, so it accepts no text the `Value`
//!   reader rejects (serde's `IgnoredAny` would skip over a lone surrogate escape, for one).
//!
//! The unit tests in `super` check the agreement on fixtures and on damaged inputs.

use crate::strings::{StringList, TokenList};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;

/// `model.vocab`: an object of token → id (BPE, WordPiece, WordLevel) or a list of `[piece, score]` (Unigram).
pub(super) enum VocabField {
    /// `{"token": id, ...}`, in file order.
    Map(TokenList),
    /// The pieces of `[[piece, score], ...]`, in file order.
    List(Vec<String>),
}

/// The `model` object.
pub(super) struct Model {
    /// `model.type`, as written (`None` when absent).
    pub ty: Option<Value>,
    /// `model.vocab`.
    pub vocab: VocabField,
    /// `model.merges` as `"a b"` strings; `None` when absent or null.
    pub merges: Option<StringList>,
    /// `model.unk_token`, as written.
    pub unk_token: Option<Value>,
    /// `model.unk_id`, as written.
    pub unk_id: Option<Value>,
    /// Whether `continuing_subword_prefix` or `max_input_chars_per_word` is present (whatever its value).
    pub wordpiece_keys: bool,
}

/// One entry of `added_tokens`.
pub(super) struct AddedToken {
    pub content: String,
    pub id: u32,
    /// `special`, `false` unless it is the boolean `true`.
    pub special: bool,
}

/// The parts of a tokenizer.json that the vocabulary needs.
pub(super) struct TokenizerFile {
    pub model: Model,
    /// `None` when absent or null.
    pub added_tokens: Option<Vec<AddedToken>>,
    pub normalizer: Option<Value>,
    pub pre_tokenizer: Option<Value>,
    pub decoder: Option<Value>,
}

/// Read a tokenizer.json text, or `None` (see the module docs).
pub(super) fn tokenizer_file(text: &str) -> Option<TokenizerFile> {
    let mut de = serde_json::Deserializer::from_str(text);
    let file = de.deserialize_map(FileVisitor).ok()?;
    de.end().ok()?;
    Some(file)
}

/// Read a GPT-2 vocab.json text (an object of token → id), or `None` (see the module docs).
pub(super) fn vocab_map(text: &str) -> Option<TokenList> {
    let mut de = serde_json::Deserializer::from_str(text);
    let tokens = de.deserialize_map(VocabMapVisitor).ok()?;
    de.end().ok()?;
    (!has_duplicate_tokens(&tokens)).then_some(tokens)
}

/// Whether a token string occurs twice: a JSON object with a repeated key, which the `Value` reader collapses
/// to its last entry.
fn has_duplicate_tokens(tokens: &TokenList) -> bool {
    // foldhash rather than the standard SipHash: about twice as fast on short token strings (this set was a
    // quarter of a 30K-token tokenizer.json's parse), and seeded per process, so a hostile file cannot carry
    // precomputed collisions.
    let mut seen: foldhash::HashSet<&str> =
        HashSet::with_capacity_and_hasher(tokens.len(), Default::default());
    !tokens.strings().iter().all(|t| seen.insert(t))
}

/// Store `value` in `slot`, failing when the key was already seen.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::custom(format_args!("duplicate key `{key}`")));
    }
    *slot = Some(value);
    Ok(())
}

struct FileVisitor;

impl<'de> Visitor<'de> for FileVisitor {
    type Value = TokenizerFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tokenizer.json object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TokenizerFile, A::Error> {
        let (mut model, mut added, mut normalizer, mut pre_tokenizer, mut decoder) =
            (None, None, None, None, None);
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let key = key.0.as_ref();
            match key {
                "model" => {
                    let m = map.next_value_seed(ModelSeed)?;
                    once(&mut model, m, key)?
                }
                "added_tokens" => {
                    let a = map.next_value_seed(AddedTokensSeed)?;
                    once(&mut added, a, key)?
                }
                "normalizer" => once(&mut normalizer, map.next_value::<Value>()?, key)?,
                "pre_tokenizer" => once(&mut pre_tokenizer, map.next_value::<Value>()?, key)?,
                "decoder" => once(&mut decoder, map.next_value::<Value>()?, key)?,
                _ => {
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(TokenizerFile {
            model: model.ok_or_else(|| de::Error::missing_field("model"))?,
            added_tokens: added.flatten(),
            normalizer,
            pre_tokenizer,
            decoder,
        })
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct KeyStr<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr(s.into()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr(s.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr(s.into()))
            }
        }
        d.deserialize_str(V)
    }
}

/// `model`: an object (null or anything else gives up).
struct ModelSeed;

impl<'de> DeserializeSeed<'de> for ModelSeed {
    type Value = Model;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Model, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ModelSeed {
    type Value = Model;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the model object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Model, A::Error> {
        let (mut ty, mut vocab, mut merges, mut unk_token, mut unk_id) =
            (None, None, None, None, None);
        let mut wordpiece_keys = false;
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let key = key.0.as_ref();
            match key {
                "type" => once(&mut ty, map.next_value::<Value>()?, key)?,
                "vocab" => {
                    let v = map.next_value_seed(VocabSeed)?;
                    once(&mut vocab, v, key)?
                }
                "merges" => {
                    let m = map.next_value_seed(MergesSeed)?;
                    once(&mut merges, m, key)?
                }
                "unk_token" => once(&mut unk_token, map.next_value::<Value>()?, key)?,
                "unk_id" => once(&mut unk_id, map.next_value::<Value>()?, key)?,
                _ => {
                    // Keys may repeat in the `Value` reader without changing what it reads from them.
                    if key == "continuing_subword_prefix" || key == "max_input_chars_per_word" {
                        wordpiece_keys = true;
                    }
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(Model {
            ty,
            vocab: vocab.ok_or_else(|| de::Error::missing_field("vocab"))?,
            merges: merges.flatten(),
            unk_token,
            unk_id,
            wordpiece_keys,
        })
    }
}

/// `model.vocab`: an object or a list (null and anything else give up).
struct VocabSeed;

impl<'de> DeserializeSeed<'de> for VocabSeed {
    type Value = VocabField;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<VocabField, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for VocabSeed {
    type Value = VocabField;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a vocabulary object or list")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<VocabField, A::Error> {
        let tokens = VocabMapVisitor.visit_map(map)?;
        if has_duplicate_tokens(&tokens) {
            return Err(de::Error::custom("duplicate token"));
        }
        Ok(VocabField::Map(tokens))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VocabField, A::Error> {
        let mut pieces = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(piece) = seq.next_element_seed(PieceSeed)? {
            pieces.push(piece);
        }
        Ok(VocabField::List(pieces))
    }
}

/// An object of token → u32 id, in file order (duplicates kept: the caller checks). Keys without escapes are
/// borrowed from the text and copied once, into the list's single string buffer: no string per token.
struct VocabMapVisitor;

impl<'de> Visitor<'de> for VocabMapVisitor {
    type Value = TokenList;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object mapping tokens to ids")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut tokens = TokenList::new();
        while let Some((token, id)) = map.next_entry::<KeyStr<'de>, u32>()? {
            tokens.push(&token.0, id);
        }
        Ok(tokens)
    }
}

/// One Unigram entry `[piece, score, ...]`: the piece, which must be a string (the rest is read and dropped).
struct PieceSeed;

impl<'de> DeserializeSeed<'de> for PieceSeed {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PieceSeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [piece, score] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        let piece: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        while seq.next_element::<Value>()?.is_some() {}
        Ok(piece)
    }
}

/// `model.merges`: null (`None`) or a list of `"a b"` strings and `["a", "b"]` pairs.
struct MergesSeed;

impl<'de> DeserializeSeed<'de> for MergesSeed {
    type Value = Option<StringList>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MergesSeed {
    type Value = Option<StringList>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a list of merges")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut merges = StringList::with_capacity(seq.size_hint().unwrap_or(0));
        while seq.next_element_seed(MergeSeed(&mut merges))?.is_some() {}
        Ok(Some(merges))
    }
}

/// One merge, appended to the list: `"a b"` as it is, or `["a", "b"]` joined with a space.
struct MergeSeed<'a>(&'a mut StringList);

impl<'de> DeserializeSeed<'de> for MergeSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MergeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a merge string or a pair of strings")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.push(s);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let a: KeyStr<'de> = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let b: KeyStr<'de> = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        self.0.push_concat(&[a.0.as_ref(), " ", b.0.as_ref()]);
        Ok(())
    }
}

/// `added_tokens`: null (`None`) or a list of objects.
struct AddedTokensSeed;

impl<'de> DeserializeSeed<'de> for AddedTokensSeed {
    type Value = Option<Vec<AddedToken>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AddedTokensSeed {
    type Value = Option<Vec<AddedToken>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null or a list of added tokens")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tokens = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(t) = seq.next_element_seed(AddedTokenSeed)? {
            tokens.push(t);
        }
        Ok(Some(tokens))
    }
}

/// One added token: an object with a string `content` and a u32 `id`.
struct AddedTokenSeed;

impl<'de> DeserializeSeed<'de> for AddedTokenSeed {
    type Value = AddedToken;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<AddedToken, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AddedTokenSeed {
    type Value = AddedToken;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an added token object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AddedToken, A::Error> {
        let (mut content, mut id, mut special) = (None, None, None);
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let key = key.0.as_ref();
            match key {
                "content" => once(&mut content, map.next_value::<String>()?, key)?,
                "id" => once(&mut id, map.next_value::<u32>()?, key)?,
                "special" => once(&mut special, map.next_value::<Value>()?, key)?,
                _ => {
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(AddedToken {
            content: content.ok_or_else(|| de::Error::missing_field("content"))?,
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            special: special.and_then(|s| s.as_bool()).unwrap_or(false),
        })
    }
}
