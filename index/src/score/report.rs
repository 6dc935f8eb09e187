//! Reported-only signals: MFI (config metadata), TFV (tokenizer features) and VOA (vocabulary overlap).
//!
//! These explain a comparison ("same architecture hash", "tokenizers identical") but never decide the verdict:
//! configs are copied and tokenizers shared by independent models all the time.

use crate::schema::{Metadata, TokenizerSignals};

fn ratio(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m <= 0.0 {
        0.0
    } else {
        1.0 - (a - b).abs() / m
    }
}

/// MFI similarity with the reference's three tiers (§1.5): 1.0 for equal architecture hashes, 0.9 for equal
/// family hashes with equal width and depth, else the weighted soft match. Returns (score, tier).
pub fn mfi(a: &Metadata, b: &Metadata) -> (f64, u8) {
    if !a.arch_hash.is_empty() && a.arch_hash == b.arch_hash {
        return (1.0, 1);
    }
    if !a.family_hash.is_empty()
        && a.family_hash == b.family_hash
        && a.hidden_size == b.hidden_size
        && a.num_layers == b.num_layers
    {
        return (0.9, 2);
    }
    let mut score = 0.0;
    let mut total = 0.0;
    let mut feature = |w: f64, counted: bool, value: f64| {
        if counted {
            total += w;
            score += w * value;
        }
    };
    let eq = |x: bool| if x { 1.0 } else { 0.0 };
    feature(
        2.0,
        true,
        (eq(a.bos_token_id == b.bos_token_id) + eq(a.eos_token_id == b.eos_token_id)) / 2.0,
    );
    let close = |x: u32, y: u32| eq(ratio(x as f64, y as f64) >= 0.9);
    feature(
        1.8,
        a.hidden_size > 0 && b.hidden_size > 0,
        close(a.hidden_size, b.hidden_size),
    );
    feature(1.5, true, eq(a.qk_norm == b.qk_norm));
    feature(
        1.5,
        a.num_layers > 0 && b.num_layers > 0,
        close(a.num_layers, b.num_layers),
    );
    feature(
        1.5,
        a.vocab_size > 0 && b.vocab_size > 0,
        ratio(a.vocab_size as f64, b.vocab_size as f64),
    );
    feature(1.5, true, eq(a.attention_style == b.attention_style));
    let rope = match (a.rope_theta, b.rope_theta) {
        (Some(x), Some(y)) if x > 0.0 && y > 0.0 => ratio(x, y),
        (None, None) => 1.0,
        _ => 0.0,
    };
    feature(1.2, true, rope);
    feature(0.5, true, eq(a.norm_type == b.norm_type));
    feature(0.4, true, eq(a.pos_encoding == b.pos_encoding));
    feature(0.4, true, eq(a.attention_bias == b.attention_bias));
    feature(0.1, true, eq(a.model_type == b.model_type));
    (if total > 0.0 { score / total } else { 0.0 }, 3)
}

fn script_cosine(a: &TokenizerSignals, b: &TokenizerSignals) -> f64 {
    let get = |t: &TokenizerSignals, s: &str| {
        t.script_distribution
            .iter()
            .find(|x| x.script == s)
            .map_or(0.0, |x| x.share as f64)
    };
    let mut names: Vec<&str> = a
        .script_distribution
        .iter()
        .chain(&b.script_distribution)
        .map(|s| s.script.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for n in names {
        let (x, y) = (get(a, n), get(b, n));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na * nb <= 1e-16 {
        0.0
    } else {
        dot / (na * nb).sqrt()
    }
}

/// TFV: the reference's 11-component tokenizer feature similarity (§2.3), on our features. Two tokenizers
/// without merges score the merge components as "not comparable" (0.5) rather than as equal hashes.
pub fn tfv(a: &TokenizerSignals, b: &TokenizerSignals) -> f64 {
    let eq = |x: bool| if x { 1.0 } else { 0.0 };
    let mut s = 0.0;
    s += 0.10 * eq(a.tokenizer_class.is_some() && a.tokenizer_class == b.tokenizer_class);
    s += 0.10 * ratio(a.vocab_size as f64, b.vocab_size as f64);
    s += 0.08 * (eq(a.bos_token_id == b.bos_token_id) + eq(a.eos_token_id == b.eos_token_id)) / 2.0;
    s += 0.07 * ratio(a.avg_token_length as f64, b.avg_token_length as f64).max(0.0);
    s += 0.05 * (1.0 - (a.pct_whitespace_prefix - b.pct_whitespace_prefix).abs() as f64).max(0.0);
    s += 0.10 * script_cosine(a, b);
    s += 0.05 * eq((a.pct_byte_tokens > 0.0) == (b.pct_byte_tokens > 0.0));
    s += 0.05
        * match (a.num_merges, b.num_merges) {
            (0, 0) => 1.0,
            (0, _) | (_, 0) => 0.0,
            (x, y) => ratio(x as f64, y as f64),
        };
    // Two tokenizers without merges (WordPiece, Unigram) are "not comparable" on the merge components (0.5),
    // unless their vocabularies are identical, where nothing differs.
    let same_vocab = !a.vocab_hash.is_empty() && a.vocab_hash == b.vocab_hash;
    let merges_eq = |x: &str, y: &str| match (x.is_empty(), y.is_empty()) {
        (true, true) if same_vocab => 1.0,
        (true, true) => 0.5,
        (false, false) => eq(x == y),
        _ => 0.0,
    };
    s += 0.15 * merges_eq(&a.merge_rule_hash, &b.merge_rule_hash);
    let (mut counted, mut matched) = (0, 0);
    for (x, y) in [
        (a.pad_token_id, b.pad_token_id),
        (a.unk_token_id, b.unk_token_id),
        (a.mask_token_id, b.mask_token_id),
    ] {
        match (x, y) {
            (Some(x), Some(y)) => {
                counted += 1;
                matched += (x == y) as usize;
            }
            (None, None) => {
                counted += 1;
                matched += 1;
            }
            _ => {}
        }
    }
    s += 0.10
        * if counted == 0 {
            0.5
        } else {
            matched as f64 / counted as f64
        };
    s += 0.15 * merges_eq(&a.merges_hash, &b.merges_hash);
    s
}

/// VOA estimated from the MinHash sketches: the fraction of equal slots.
pub fn voa_estimate(a: &TokenizerSignals, b: &TokenizerSignals) -> Option<f64> {
    if a.minhash.is_empty() || a.minhash.len() != b.minhash.len() {
        return None;
    }
    if !a.vocab_hash.is_empty() && a.vocab_hash == b.vocab_hash {
        return Some(1.0);
    }
    let equal = a
        .minhash
        .iter()
        .zip(&b.minhash)
        .filter(|(x, y)| x == y)
        .count();
    Some(equal as f64 / a.minhash.len() as f64)
}
