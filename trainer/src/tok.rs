//! Byte-level BPE tokenizers: training, clean vocabulary extension (new vocab
//! and merge entries, not `add_tokens`), and corpus encoding.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    Tokenizer, TokenizerBuilder,
};

/// The one special token: document separator, BOS and EOS (as in GPT-2).
pub const EOS: &str = "<|endoftext|>";

/// Train a GPT-2-style byte-level BPE tokenizer on `files`.
pub fn train_bpe(files: &[PathBuf], vocab_size: usize) -> Result<Tokenizer> {
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from(EOS, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let byte_level = ByteLevel::new(false, true, true);
    let mut tk = TokenizerBuilder::<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default())
    .with_normalizer(None)
    .with_pre_tokenizer(Some(byte_level.into()))
    .with_post_processor(Some(byte_level.into()))
    .with_decoder(Some(byte_level.into()))
    .build()
    .map_err(anyhow::Error::msg)?;
    let names = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    tk.train_from_files(&mut trainer, names)
        .map_err(anyhow::Error::msg)?;
    Ok(Tokenizer::from(tk))
}

/// Pretty `tokenizer.json` text of `tk` (what `save(path, true)` writes).
pub fn to_json(tk: &Tokenizer) -> Result<String> {
    tk.to_string(true).map_err(anyhow::Error::msg)
}

pub fn load(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path).map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))
}

pub fn eos_id(tk: &Tokenizer) -> Result<u32> {
    tk.token_to_id(EOS)
        .with_context(|| format!("tokenizer has no {EOS}"))
}

fn merges_of(model: &Value) -> Result<Vec<(String, String)>> {
    let arr = model
        .get("merges")
        .and_then(Value::as_array)
        .context("tokenizer.json: no model.merges")?;
    arr.iter()
        .map(|m| match m {
            Value::Array(p) if p.len() == 2 => Ok((
                p[0].as_str().unwrap_or("").to_string(),
                p[1].as_str().unwrap_or("").to_string(),
            )),
            Value::String(s) => {
                let (a, b) = s.split_once(' ').context("bad merge")?;
                Ok((a.to_string(), b.to_string()))
            }
            _ => bail!("bad merge entry {m}"),
        })
        .collect()
}

/// Extend `base` by `add` tokens learned from `domain_files`: a BPE is trained
/// on the domain text and its merges are appended, in rank order, whenever both
/// halves are already in the (growing) vocabulary and the result is new. The
/// old ids and merges are untouched; new ids follow the old ones.
pub fn extend(base: &Tokenizer, domain_files: &[PathBuf], add: usize) -> Result<Tokenizer> {
    let mut json: Value = serde_json::from_str(&to_json(base)?)?;
    let domain = train_bpe(domain_files, base.get_vocab_size(true) * 2 + add)?;
    let domain_json: Value = serde_json::from_str(&to_json(&domain)?)?;
    let domain_merges = merges_of(&domain_json["model"])?;

    let model = json.get_mut("model").context("tokenizer.json: no model")?;
    let mut vocab: HashMap<String, u64> = model["vocab"]
        .as_object()
        .context("model.vocab")?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect();
    let mut next_id = base.get_vocab_size(true) as u64;
    let mut added = Vec::new();
    for (a, b) in domain_merges {
        if added.len() == add {
            break;
        }
        let joined = format!("{a}{b}");
        if vocab.contains_key(&a) && vocab.contains_key(&b) && !vocab.contains_key(&joined) {
            vocab.insert(joined.clone(), next_id);
            added.push((a, b, joined, next_id));
            next_id += 1;
        }
    }
    if added.len() < add {
        bail!(
            "domain text yielded only {} new merges, wanted {add}",
            added.len()
        );
    }
    let vobj = model["vocab"].as_object_mut().unwrap();
    for (_, _, tok, id) in &added {
        vobj.insert(tok.clone(), Value::from(*id));
    }
    let marr = model["merges"].as_array_mut().unwrap();
    for (a, b, _, _) in &added {
        marr.push(Value::Array(vec![
            Value::from(a.clone()),
            Value::from(b.clone()),
        ]));
    }
    let text = serde_json::to_string(&json)?;
    let tk: Tokenizer = text
        .parse()
        .map_err(|e| anyhow::anyhow!("extended tokenizer does not load: {e}"))?;
    Ok(tk)
}

/// For every token of `ext` that `parent` lacks, the parent token ids it is
/// made of (following `ext`'s merges down to tokens the parent has). Keys are
/// `ext` ids. Fails if `ext` renumbers any token the parent has.
pub fn new_token_pieces(parent: &Tokenizer, ext: &Tokenizer) -> Result<HashMap<u32, Vec<u32>>> {
    let pv = parent.get_vocab(true);
    let ev = ext.get_vocab(true);
    for (tok, id) in &pv {
        if ev.get(tok) != Some(id) {
            bail!(
                "token {tok:?} has id {id} in the parent but {:?} in the extension",
                ev.get(tok)
            );
        }
    }
    let ext_json: Value = serde_json::from_str(&to_json(ext)?)?;
    let split: HashMap<String, (String, String)> = merges_of(&ext_json["model"])?
        .into_iter()
        .map(|(a, b)| (format!("{a}{b}"), (a, b)))
        .collect();
    fn pieces(
        t: &str,
        pv: &HashMap<String, u32>,
        split: &HashMap<String, (String, String)>,
        seen: &mut HashSet<String>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        if let Some(id) = pv.get(t) {
            out.push(*id);
            return Ok(());
        }
        // `seen` is the recursion stack: a token may occur twice in one
        // decomposition, but never inside itself.
        if !seen.insert(t.to_string()) {
            bail!("merge cycle at {t:?}");
        }
        let (a, b) = split
            .get(t)
            .with_context(|| format!("no merge makes {t:?}"))?;
        pieces(a, pv, split, seen, out)?;
        pieces(b, pv, split, seen, out)?;
        seen.remove(t);
        Ok(())
    }
    let mut res = HashMap::new();
    for (tok, id) in &ev {
        if !pv.contains_key(tok) {
            let mut out = Vec::new();
            pieces(tok, &pv, &split, &mut HashSet::new(), &mut out)?;
            res.insert(*id, out);
        }
    }
    Ok(res)
}

/// Encode a text file in newline-aligned chunks (bounded memory, same result
/// every run).
pub fn encode_text(tk: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    const CHUNK: usize = 1 << 15;
    let mut ids = Vec::with_capacity(text.len() / 3);
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(CHUNK);
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        if end < rest.len() {
            if let Some(nl) = rest[..end].rfind('\n') {
                end = nl + 1;
            }
        }
        let enc = tk
            .encode_fast(&rest[..end], false)
            .map_err(anyhow::Error::msg)?;
        ids.extend_from_slice(enc.get_ids());
        rest = &rest[end..];
    }
    Ok(ids)
}
