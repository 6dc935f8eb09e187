//! Vocabulary pruning and extension that keep a snapshot consistent: embedding and lm_head rows, tokenizer.json
//! (vocab, merges, added tokens, post-processor ids), vocab.txt and config.json change together, so the result
//! is a checkpoint a tokenizer library would load and run.
//!
//! Byte-level BPE and WordPiece tokenizers are supported (the trained zoo's and MiniLM's).

use crate::checkpoint::Checkpoint;
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// Name parts of tensors whose rows are indexed by token id.
const VOCAB_TENSORS: &[&str] = &[
    "embed_tokens",
    "wte",
    "word_embeddings",
    "tok_embeddings",
    "lm_head",
    "embed_out",
];

/// The parsed tokenizer.json with its vocabulary in id order.
struct Tokenizer {
    json: Value,
    tokens: Vec<String>,
    wordpiece: bool,
}

fn load(ckpt: &Checkpoint) -> Result<Tokenizer> {
    let bytes = ckpt
        .files
        .get("tokenizer.json")
        .context("the snapshot has no tokenizer.json")?;
    let json: Value = serde_json::from_slice(bytes).context("tokenizer.json is not JSON")?;
    let model = json.get("model").context("tokenizer.json has no model")?;
    let wordpiece = match model.get("type").and_then(Value::as_str) {
        Some("BPE") => false,
        Some("WordPiece") => true,
        other => bail!("tokenizer model {other:?} is not supported (BPE and WordPiece are)"),
    };
    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .context("tokenizer.json model has no vocab map")?;
    let mut tokens = vec![None; vocab.len()];
    for (tok, id) in vocab {
        let id = id.as_u64().context("vocab id is not an integer")? as usize;
        let slot = tokens
            .get_mut(id)
            .with_context(|| format!("vocab id {id} out of range (ids must be dense)"))?;
        *slot = Some(tok.clone());
    }
    let tokens = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.with_context(|| format!("vocab id {i} missing (ids must be dense)")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tokenizer {
        json,
        tokens,
        wordpiece,
    })
}

/// A merge as stored: `["a", "b"]` (tokenizers ≥ 0.20) or `"a b"`.
fn merge_parts(m: &Value) -> Option<(String, String)> {
    match m {
        Value::Array(p) if p.len() == 2 => Some((p[0].as_str()?.into(), p[1].as_str()?.into())),
        Value::String(s) => s.split_once(' ').map(|(a, b)| (a.into(), b.into())),
        _ => None,
    }
}

fn special_tokens(t: &Tokenizer) -> HashSet<String> {
    let mut s: HashSet<String> = t
        .json
        .get("added_tokens")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("content").and_then(Value::as_str).map(String::from))
        .collect();
    if let Some(u) = t.json["model"].get("unk_token").and_then(Value::as_str) {
        s.insert(u.into());
    }
    s
}

/// Rewrite every id-bearing part of the snapshot for the new token list. `source[i]` gives, for new id `i`,
/// the old ids whose rows are averaged into its row (one id for a kept token, the parts of a new one).
fn apply(
    ckpt: &mut Checkpoint,
    mut tok: Tokenizer,
    new_tokens: Vec<String>,
    source: &[Vec<usize>],
    merges: Option<Vec<Value>>,
) -> Result<()> {
    let old_len = tok.tokens.len();
    let new_id: HashMap<&str, usize> = new_tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let vocab: Map<String, Value> = new_tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), Value::from(i)))
        .collect();
    tok.json["model"]["vocab"] = Value::Object(vocab);
    if let Some(m) = merges {
        tok.json["model"]["merges"] = Value::Array(m);
    }
    if let Some(added) = tok
        .json
        .get_mut("added_tokens")
        .and_then(Value::as_array_mut)
    {
        for a in added {
            let content = a.get("content").and_then(Value::as_str).unwrap_or("");
            let id = *new_id
                .get(content)
                .with_context(|| format!("special token {content:?} was dropped"))?;
            a["id"] = id.into();
        }
    }
    if let Some(specials) = tok
        .json
        .get_mut("post_processor")
        .and_then(|p| p.get_mut("special_tokens"))
        .and_then(Value::as_object_mut)
    {
        for entry in specials.values_mut() {
            let ids: Vec<Value> = entry
                .get("tokens")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().and_then(|t| new_id.get(t)).map(|&i| i.into()))
                .collect();
            entry["ids"] = Value::Array(ids);
        }
    }
    ckpt.files.insert(
        "tokenizer.json".into(),
        serde_json::to_vec_pretty(&tok.json)?,
    );
    if ckpt.files.contains_key("vocab.txt") {
        let mut txt = new_tokens.join("\n");
        txt.push('\n');
        ckpt.files.insert("vocab.txt".into(), txt.into_bytes());
    }

    // config.json: vocab size and the special-token ids it names.
    if let Some(bytes) = ckpt.files.get("config.json") {
        let mut config: Value = serde_json::from_slice(bytes).context("config.json is not JSON")?;
        if let Some(obj) = config.as_object_mut() {
            obj.insert("vocab_size".into(), new_tokens.len().into());
            for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
                if let Some(old) = obj.get(key).and_then(Value::as_u64) {
                    let mapped = tok
                        .tokens
                        .get(old as usize)
                        .and_then(|t| new_id.get(t.as_str()))
                        .with_context(|| format!("config {key} {old} was dropped"))?;
                    obj.insert(key.into(), (*mapped).into());
                }
            }
        }
        ckpt.files
            .insert("config.json".into(), serde_json::to_vec_pretty(&config)?);
    }

    let mut rows_changed = 0;
    for t in ckpt.tensors.iter_mut().filter(|t| t.is_float()) {
        let is_vocab = VOCAB_TENSORS
            .iter()
            .any(|k| t.name.split('.').any(|p| p == *k));
        if !is_vocab || t.shape.len() != 2 || t.shape[0] != old_len {
            continue;
        }
        let cols = t.shape[1];
        let mut data = Vec::with_capacity(source.len() * cols);
        for parts in source {
            let mut row = vec![0f32; cols];
            for &p in parts {
                for (r, v) in row.iter_mut().zip(&t.data[p * cols..(p + 1) * cols]) {
                    *r += v / parts.len() as f32;
                }
            }
            data.extend(row);
        }
        t.data = data;
        t.shape[0] = source.len();
        rows_changed += 1;
    }
    if rows_changed == 0 {
        bail!("no embedding of {old_len} rows found");
    }
    Ok(())
}

/// Prune the vocabulary to about `keep` of its tokens, as a language- or domain-specific copy does: BPE keeps
/// its base alphabet and the first merges (the frequent ones) and drops the tokens the later merges make;
/// WordPiece drops `[unusedN]` tokens and a seeded random share of the multi-character tokens. Special tokens
/// are always kept. Returns the new vocabulary size.
pub fn prune_vocab(ckpt: &mut Checkpoint, keep: f64, seed: u64) -> Result<usize> {
    let tok = load(ckpt)?;
    let specials = special_tokens(&tok);
    let mut rng = Rng::new(seed);
    let mut kept: HashSet<String> = HashSet::new();
    let mut merges = None;
    if tok.wordpiece {
        for t in &tok.tokens {
            let chars = t.trim_start_matches("##").chars().count();
            let keep_it = specials.contains(t)
                || chars <= 1
                || (!t.starts_with("[unused") && rng.uniform() < keep);
            if keep_it {
                kept.insert(t.clone());
            }
        }
    } else {
        let all: Vec<(String, String)> = tok.json["model"]["merges"]
            .as_array()
            .context("BPE tokenizer has no merges list")?
            .iter()
            .map(|m| merge_parts(m).context("unreadable merge"))
            .collect::<Result<_>>()?;
        let made: HashSet<String> = all.iter().map(|(a, b)| format!("{a}{b}")).collect();
        kept.extend(tok.tokens.iter().filter(|t| !made.contains(*t)).cloned());
        kept.extend(specials.iter().cloned());
        let budget = (tok.tokens.len() as f64 * keep) as usize;
        let mut out = Vec::new();
        for (m, (a, b)) in tok.json["model"]["merges"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(&all)
        {
            if kept.len() >= budget {
                break;
            }
            if kept.contains(a) && kept.contains(b) {
                kept.insert(format!("{a}{b}"));
                out.push(m.clone());
            }
        }
        merges = Some(out);
    }
    let ids: Vec<usize> = (0..tok.tokens.len())
        .filter(|&i| kept.contains(&tok.tokens[i]))
        .collect();
    let new_tokens: Vec<String> = ids.iter().map(|&i| tok.tokens[i].clone()).collect();
    let source: Vec<Vec<usize>> = ids.iter().map(|&i| vec![i]).collect();
    let n = new_tokens.len();
    apply(ckpt, tok, new_tokens, &source, merges)?;
    Ok(n)
}

/// Extend the vocabulary by `count` new tokens, each the concatenation of two existing ones (a new BPE merge,
/// or a new WordPiece word), appended at the end; each new embedding and lm_head row is the mean of its parts'
/// rows (the usual initialisation). Returns the new vocabulary size.
pub fn extend_vocab(ckpt: &mut Checkpoint, count: usize, seed: u64) -> Result<usize> {
    let tok = load(ckpt)?;
    let specials = special_tokens(&tok);
    let mut rng = Rng::new(seed);
    let existing: HashSet<&str> = tok.tokens.iter().map(String::as_str).collect();
    // Word-initial pieces and continuation pieces to combine.
    let (starts, conts): (Vec<usize>, Vec<usize>) = if tok.wordpiece {
        let words: Vec<usize> = (0..tok.tokens.len())
            .filter(|&i| {
                let t = &tok.tokens[i];
                !specials.contains(t)
                    && !t.starts_with("##")
                    && !t.starts_with("[unused")
                    && t.chars().count() >= 3
                    && t.chars().all(char::is_alphabetic)
            })
            .collect();
        (words.clone(), words)
    } else {
        let pieces = |initial: bool| -> Vec<usize> {
            (0..tok.tokens.len())
                .filter(|&i| {
                    let t = &tok.tokens[i];
                    !specials.contains(t)
                        && t.chars().count() >= 2
                        && t.starts_with(['\u{120}', '\u{2581}']) == initial
                        && t.chars()
                            .skip(usize::from(initial))
                            .all(char::is_alphabetic)
                })
                .collect()
        };
        let starts = pieces(true);
        let conts = pieces(false);
        // Without continuation pieces, combine whole words (multi-word tokens).
        let conts = if conts.is_empty() {
            starts.clone()
        } else {
            conts
        };
        (starts, conts)
    };
    if starts.is_empty() || conts.is_empty() {
        bail!("no tokens to combine into new ones");
    }
    let mut new_tokens = tok.tokens.clone();
    let mut source: Vec<Vec<usize>> = (0..tok.tokens.len()).map(|i| vec![i]).collect();
    let mut merges: Vec<Value> = tok.json["model"]
        .get("merges")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let string_merges = merges.first().is_some_and(Value::is_string);
    let mut added: HashSet<String> = HashSet::new();
    let mut attempts = 0;
    while added.len() < count {
        attempts += 1;
        if attempts > count * 1000 {
            bail!("could not find {count} new token combinations");
        }
        let (a, b) = (
            starts[rng.below(starts.len())],
            conts[rng.below(conts.len())],
        );
        let (ta, tb) = (&tok.tokens[a], &tok.tokens[b]);
        let joined = format!("{ta}{tb}");
        if existing.contains(joined.as_str()) || !added.insert(joined.clone()) {
            continue;
        }
        if !tok.wordpiece {
            merges.push(if string_merges {
                Value::from(format!("{ta} {tb}"))
            } else {
                Value::from(vec![ta.clone(), tb.clone()])
            });
        }
        new_tokens.push(joined);
        source.push(vec![a, b]);
    }
    let merges = (!tok.wordpiece).then_some(merges);
    let n = new_tokens.len();
    apply(ckpt, tok, new_tokens, &source, merges)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{build, Family, Spec};

    fn vocab_of(ckpt: &Checkpoint) -> Map<String, Value> {
        let t: Value = serde_json::from_slice(&ckpt.files["tokenizer.json"]).unwrap();
        t["model"]["vocab"].as_object().unwrap().clone()
    }

    #[test]
    fn pruning_wordpiece_keeps_rows_with_their_tokens() {
        let mut ckpt = build(&Spec::small(Family::Bert, 3));
        let before = ckpt.clone();
        let old = vocab_of(&before);
        let n = prune_vocab(&mut ckpt, 0.5, 1).unwrap();
        let new = vocab_of(&ckpt);
        assert_eq!(new.len(), n);
        assert!(n < old.len() && n > old.len() / 4, "{n} of {}", old.len());
        let emb = "embeddings.word_embeddings.weight";
        let (e0, e1) = (before.get(emb).unwrap(), ckpt.get(emb).unwrap());
        assert_eq!(e1.shape, vec![n, 64]);
        for (tok, id) in &new {
            let (i, j) = (
                old[tok].as_u64().unwrap() as usize,
                id.as_u64().unwrap() as usize,
            );
            assert_eq!(
                e0.data[i * 64..(i + 1) * 64],
                e1.data[j * 64..(j + 1) * 64],
                "{tok}"
            );
        }
        let txt = String::from_utf8(ckpt.files["vocab.txt"].clone()).unwrap();
        assert_eq!(txt.lines().count(), n);
        let config: Value = serde_json::from_slice(&ckpt.files["config.json"]).unwrap();
        assert_eq!(config["vocab_size"], n);
    }

    #[test]
    fn pruning_bpe_keeps_merges_closed() {
        let mut ckpt = build(&Spec::small(Family::Gpt2, 3));
        // Give the synthetic tokenizer a chain of merges to prune.
        let mut t: Value = serde_json::from_slice(&ckpt.files["tokenizer.json"]).unwrap();
        let vocab = t["model"]["vocab"].as_object().unwrap();
        let mut merges = Vec::new();
        for (tok, _) in vocab {
            let chars: Vec<char> = tok.chars().collect();
            let parts = [chars.first(), chars.last()].map(|c| c.map(|c| c.to_string()));
            if let (2, [Some(x), Some(y)]) = (chars.len(), &parts) {
                if vocab.contains_key(x) && vocab.contains_key(y) {
                    merges.push(Value::from(vec![x.clone(), y.clone()]));
                }
            }
        }
        assert!(merges.len() > 4);
        t["model"]["merges"] = Value::Array(merges);
        ckpt.files
            .insert("tokenizer.json".into(), serde_json::to_vec(&t).unwrap());
        let n = prune_vocab(&mut ckpt, 0.95, 1).unwrap();
        let t: Value = serde_json::from_slice(&ckpt.files["tokenizer.json"]).unwrap();
        let vocab = t["model"]["vocab"].as_object().unwrap();
        assert_eq!(vocab.len(), n);
        for m in t["model"]["merges"].as_array().unwrap() {
            let (a, b) = merge_parts(m).unwrap();
            for part in [a.clone(), b.clone(), format!("{a}{b}")] {
                assert!(vocab.contains_key(&part), "{part} missing");
            }
        }
        assert_eq!(ckpt.get("transformer.wte.weight").unwrap().shape[0], n);
    }

    #[test]
    fn extension_appends_mean_rows_and_merges() {
        let mut ckpt = build(&Spec::small(Family::Llama, 5));
        let before = ckpt.clone();
        let n0 = vocab_of(&before).len();
        // SentencePiece-style "▁" word starts are combined too.
        assert_eq!(extend_vocab(&mut ckpt, 10, 1).unwrap(), n0 + 10);
        assert_eq!(ckpt.get("lm_head.weight").unwrap().shape[0], n0 + 10);
        let mut g = build(&Spec::small(Family::Gpt2, 5));
        let g0 = g.clone();
        let n = extend_vocab(&mut g, 10, 1).unwrap();
        assert_eq!(n, vocab_of(&g0).len() + 10);
        let t: Value = serde_json::from_slice(&g.files["tokenizer.json"]).unwrap();
        let vocab = t["model"]["vocab"].as_object().unwrap();
        let merges = t["model"]["merges"].as_array().unwrap();
        let last = merge_parts(merges.last().unwrap()).unwrap();
        let joined = format!("{}{}", last.0, last.1);
        assert_eq!(vocab[&joined], n - 1);
        let (e0, e1) = (
            g0.get("transformer.wte.weight").unwrap(),
            g.get("transformer.wte.weight").unwrap(),
        );
        let old = vocab_of(&g0);
        let (a, b) = (
            old[&last.0].as_u64().unwrap() as usize,
            old[&last.1].as_u64().unwrap() as usize,
        );
        for c in 0..64 {
            let mean = (e0.data[a * 64 + c] + e0.data[b * 64 + c]) / 2.0;
            assert!((e1.data[(n - 1) * 64 + c] - mean).abs() < 1e-6);
        }
    }
}
