//! Tokenizer signals from a [`Vocabulary`]: the TFV features, a MinHash sketch and exact Jaccard for VOA, the
//! vocabulary hash, and the token id of each canonical anchor.
//!
//! Definitions (reference-signals.md §2, with the fixes of §12 items 2–3):
//!
//! - TFV features follow §2.2 (`avg_token_length` rounded to 2 dp, percentages to 4 dp), over the raw token
//!   strings including added tokens. `merge_rule_hash` / `merges_hash` are SHA-256 of the first 50 / all merges
//!   joined with `\n`, and the empty string when there are no merges (not the reference's `sha256("")`).
//! - The script distribution (§2.4) counts letters per script, but byte-level vocabularies are first decoded
//!   through the inverse GPT-2 byte alphabet and then as (lossy) UTF-8, so CJK text in a Qwen or GPT-2
//!   vocabulary counts as CJK instead of Latin-1 mojibake. See [`is_letter`] and [`script_of`].
//! - The MinHash sketch has [`MINHASH_SIZE`] slots; slot `k` is the minimum over the distinct token strings of
//!   `splitmix64(fnv1a64(token bytes) ^ seed_k)` truncated to its low 32 bits, with fixed seeds. It is identical
//!   on every run and platform. Estimator: the Jaccard of two token sets ≈ the fraction of equal slots
//!   ([`minhash_jaccard`]); its standard error is about `sqrt(J(1−J)/128)`, ≤ 0.045.
//! - Anchors are resolved by string through the vocabulary's spelling convention ([`resolve_anchors`]), so the
//!   anchors of a vocabulary extension keep their ids and no random backfill is needed.

use provsearch_formats::tokenizer::{byte_to_unicode, Convention, TokenizerModelKind, Vocabulary};
use provsearch_index::anchors::ANCHORS;
use provsearch_index::schema::{ScriptShare, TokenizerSignals, MINHASH_SIZE};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Number of leading merges covered by `merge_rule_hash`.
const MERGE_RULE_PREFIX: usize = 50;

/// Base of the fixed MinHash seeds (`seed_k = splitmix64(MINHASH_SEED_BASE + k)`). Part of the fingerprint
/// definition: changing it makes old sketches incomparable.
const MINHASH_SEED_BASE: u64 = 0x7072_6f76_7365_6172; // "provsear"

/// TFV features + MinHash sketch for the fingerprint.
pub fn tokenizer_signals(vocab: &Vocabulary) -> TokenizerSignals {
    // Independent parts, as rayon tasks so that a core left idle by the weight pass takes some of them.
    let ((counts, (merge_rule_hash, merges_hash)), (vocab_hash, (script_distribution, minhash))) =
        rayon::join(
            || rayon::join(|| token_counts(vocab), || merge_hashes(vocab)),
            || {
                rayon::join(
                    || vocab_hash(vocab),
                    || rayon::join(|| script_distribution(vocab), || minhash(vocab)),
                )
            },
        );
    let n = vocab.tokens.len();
    let frac = |count: u64| if n == 0 { 0.0 } else { count as f64 / n as f64 };
    TokenizerSignals {
        model_kind: model_kind_name(vocab.kind).to_string(),
        convention: convention_name(vocab.convention).to_string(),
        tokenizer_class: vocab.tokenizer_class.clone(),
        source_file: vocab.source_file.clone(),
        vocab_size: saturating_u32(n),
        num_added_tokens: saturating_u32(vocab.added_tokens.len()),
        num_merges: saturating_u32(vocab.merges.len()),
        merge_rule_hash,
        merges_hash,
        vocab_hash,
        bos_token_id: vocab.special.bos,
        eos_token_id: vocab.special.eos,
        pad_token_id: vocab.special.pad,
        unk_token_id: vocab.special.unk,
        mask_token_id: vocab.special.mask,
        avg_token_length: round_to(frac(counts.chars), 2) as f32,
        pct_whitespace_prefix: round_to(frac(counts.ws_prefix), 4) as f32,
        pct_byte_tokens: round_to(frac(counts.byte_tokens), 4) as f32,
        script_distribution,
        minhash,
    }
}

/// Character, whitespace-prefix and byte-fallback token counts.
struct TokenCounts {
    chars: u64,
    ws_prefix: u64,
    byte_tokens: u64,
}

fn token_counts(vocab: &Vocabulary) -> TokenCounts {
    let mut c = TokenCounts {
        chars: 0,
        ws_prefix: 0,
        byte_tokens: 0,
    };
    // The characters of all tokens at once: the bytes of the one buffer that start a character.
    let text = vocab.tokens.strings().text().as_bytes();
    c.chars = text.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64;
    for (token, _) in &vocab.tokens {
        if token.starts_with(['\u{2581}', '\u{120}', ' ']) {
            c.ws_prefix += 1;
        }
        if is_byte_fallback_token(token) {
            c.byte_tokens += 1;
        }
    }
    c
}

/// `merge_rule_hash` and `merges_hash` (empty strings without merges).
fn merge_hashes(vocab: &Vocabulary) -> (String, String) {
    if vocab.merges.is_empty() {
        return (String::new(), String::new());
    }
    (
        sha256_hex(vocab.merges.join_first(MERGE_RULE_PREFIX, "\n").as_bytes()),
        sha256_hex(vocab.merges.join("\n").as_bytes()),
    )
}

/// For each anchor in provsearch_index::anchors::ANCHORS (same order, same length), the token id it resolves
/// to in this vocabulary, or None. Distinct anchors never share an id (first anchor wins).
///
/// The anchor string `s` (lower-cased when the vocabulary lower-cases its input) is looked up as the first
/// candidate that is a non-special token of the vocabulary whose id no earlier anchor took:
///
/// - ByteLevel: the byte-alphabet spelling of `" " + s` (`"Ġthe"`, `"ĠçļĦ"`), then of `s`;
/// - Metaspace: `"▁" + s`, then `s`;
/// - WordPiece: `s` (word-initial pieces are bare);
/// - Plain: `s`, `"▁" + s`, `"Ġ" + s`, `s + "</w>"`.
///
/// A token string with several ids resolves to the lowest. Special tokens are the added tokens flagged special.
pub fn resolve_anchors(vocab: &Vocabulary) -> Vec<Option<u32>> {
    let alphabet = byte_to_unicode();
    let byte_level = |s: &str| s.bytes().map(|b| alphabet[b as usize]).collect::<String>();
    let candidates: Vec<Vec<String>> = ANCHORS
        .iter()
        .map(|anchor| {
            let s = if vocab.lowercase {
                anchor.to_lowercase()
            } else {
                (*anchor).to_string()
            };
            match vocab.convention {
                Convention::ByteLevel => vec![byte_level(&format!(" {s}")), byte_level(&s)],
                Convention::Metaspace => vec![format!("\u{2581}{s}"), s],
                Convention::WordPiece => vec![s],
                Convention::Plain => vec![
                    s.clone(),
                    format!("\u{2581}{s}"),
                    format!("\u{120}{s}"),
                    format!("{s}</w>"),
                ],
            }
        })
        .collect();

    // The lowest id of each candidate string among the non-special tokens. Only candidate strings are looked
    // up, so a token whose first byte or length no candidate has is skipped unhashed.
    let special = vocab.special_contents();
    // Fx rather than SipHash: most tokens of a vocabulary are hashed, and collision resistance buys nothing here.
    let mut lookup: FxHashMap<&str, Option<u32>> = candidates
        .iter()
        .flatten()
        .map(|c| (c.as_str(), None))
        .collect();
    let mut first_bytes = [false; 256];
    let mut lengths = [false; 64];
    for c in lookup.keys() {
        if let Some(&b) = c.as_bytes().first() {
            first_bytes[b as usize] = true;
        }
        lengths[c.len().min(63)] = true;
    }
    for (token, id) in &vocab.tokens {
        let possible = token
            .as_bytes()
            .first()
            .is_some_and(|&b| first_bytes[b as usize])
            && lengths[token.len().min(63)];
        if !possible {
            continue;
        }
        if let Some(slot) = lookup.get_mut(token) {
            if !special.contains(token) {
                *slot = Some(slot.map_or(*id, |e| e.min(*id)));
            }
        }
    }

    let mut taken: HashSet<u32> = HashSet::with_capacity(ANCHORS.len());
    let mut resolved = Vec::with_capacity(ANCHORS.len());
    for candidates in &candidates {
        let id = candidates.iter().find_map(|c| {
            lookup
                .get(c.as_str())
                .copied()
                .flatten()
                .filter(|id| !taken.contains(id))
        });
        if let Some(id) = id {
            taken.insert(id);
        }
        resolved.push(id);
    }
    resolved
}

/// Exact Jaccard of the raw token-string sets (VOA), in [0,1]; 0 if both are empty.
pub fn exact_jaccard(a: &Vocabulary, b: &Vocabulary) -> f64 {
    let sa: HashSet<&str> = a.tokens.iter().map(|(t, _)| t).collect();
    let sb: HashSet<&str> = b.tokens.iter().map(|(t, _)| t).collect();
    let (small, large) = if sa.len() <= sb.len() {
        (&sa, &sb)
    } else {
        (&sb, &sa)
    };
    let intersection = small.iter().filter(|t| large.contains(*t)).count();
    let union = sa.len() + sb.len() - intersection;
    if union == 0 {
        0.0
    } else {
        intersection as f64 / union as f64
    }
}

/// SHA-256 hex of the sorted "token\tid" lines (= TokenizerSignals::vocab_hash).
///
/// Each line is `token`, a tab, the decimal id and a `\n`; lines are sorted by their bytes and exact duplicate
/// lines are hashed once.
pub fn vocab_hash(vocab: &Vocabulary) -> String {
    // All lines in one buffer.
    let mut text: Vec<u8> =
        Vec::with_capacity(vocab.tokens.strings().text().len() + 12 * vocab.tokens.len());
    let mut ends: Vec<usize> = Vec::with_capacity(vocab.tokens.len());
    for (token, id) in &vocab.tokens {
        text.extend_from_slice(token.as_bytes());
        text.push(b'\t');
        push_decimal(&mut text, *id);
        text.push(b'\n');
        ends.push(text.len());
    }
    let line = |i: u32| {
        let i = i as usize;
        let start = if i == 0 { 0 } else { ends[i - 1] };
        &text[start..ends[i]]
    };
    let order = sort_lines(ends.len(), &line);
    let mut hasher = Sha256::new();
    let mut previous: Option<&[u8]> = None;
    for &i in &order {
        let l = line(i);
        if previous != Some(l) {
            hasher.update(l);
        }
        previous = Some(l);
    }
    hex(&hasher.finalize())
}

/// The indices `0..count` of lines in the byte order of the lines.
///
/// A radix sort by each line's first 8 bytes (big-endian, zero-padded), which orders lines as their bytes do
/// wherever those keys differ, then a comparison sort of each run of equal keys by the whole lines. Several
/// times cheaper than a comparison sort of the lines: a byte-level vocabulary of 50,000 tokens leaves about
/// 14,000 lines in runs of a few.
fn sort_lines<'a>(count: usize, line: &dyn Fn(u32) -> &'a [u8]) -> Vec<u32> {
    let key = |i: u32| {
        let l = line(i);
        let mut prefix = [0u8; 8];
        let n = l.len().min(8);
        prefix[..n].copy_from_slice(&l[..n]);
        u64::from_be_bytes(prefix)
    };
    let mut keyed: Vec<(u64, u32)> = (0..count as u32).map(|i| (key(i), i)).collect();
    radix_sort_by_key(&mut keyed);
    let mut order: Vec<u32> = keyed.iter().map(|&(_, i)| i).collect();
    let mut start = 0;
    while start < keyed.len() {
        let k = keyed[start].0;
        let end = start + keyed[start..].iter().take_while(|e| e.0 == k).count();
        if end - start > 1 {
            order[start..end].sort_unstable_by(|&a, &b| line(a).cmp(line(b)));
        }
        start = end;
    }
    order
}

/// Stable LSD radix sort of `(key, index)` pairs by key, a byte at a time (the byte positions where every key
/// has the same byte are skipped).
fn radix_sort_by_key(items: &mut Vec<(u64, u32)>) {
    let mut counts = [[0usize; 256]; 8];
    for &(k, _) in items.iter() {
        for (b, c) in counts.iter_mut().enumerate() {
            c[((k >> (8 * b)) & 0xff) as usize] += 1;
        }
    }
    let mut other = vec![(0u64, 0u32); items.len()];
    for (b, c) in counts.iter().enumerate() {
        if c.contains(&items.len()) {
            continue; // one value of this byte in every key: the pass would not move anything
        }
        let mut next = [0usize; 256];
        let mut sum = 0;
        for (n, &c) in next.iter_mut().zip(c) {
            *n = sum;
            sum += c;
        }
        for &item in items.iter() {
            let d = ((item.0 >> (8 * b)) & 0xff) as usize;
            other[next[d]] = item;
            next[d] += 1;
        }
        std::mem::swap(items, &mut other);
    }
}

/// Append the decimal digits of `n`.
fn push_decimal(out: &mut Vec<u8>, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The MinHash sketch of the vocabulary's token-string set ([`MINHASH_SIZE`] slots; see the module docs).
/// An empty vocabulary gives all slots `u32::MAX`.
pub fn minhash(vocab: &Vocabulary) -> Vec<u32> {
    let mut seeds = [0u64; MINHASH_SIZE];
    for (k, seed) in seeds.iter_mut().enumerate() {
        *seed = splitmix64(MINHASH_SEED_BASE.wrapping_add(k as u64));
    }
    let hashes: Vec<u64> = vocab
        .tokens
        .iter()
        .map(|(token, _)| fnv1a64(token.as_bytes()))
        .collect();
    // Two halves of the tokens as rayon tasks, merged slot by slot (a minimum does not depend on the order).
    let sketch = |hashes: &[u64]| {
        let mut slots = [u32::MAX; MINHASH_SIZE];
        minhash_update(&mut slots, &seeds, hashes);
        slots
    };
    let (a, b) = hashes.split_at(hashes.len() / 2);
    let (a, b) = rayon::join(|| sketch(a), || sketch(b));
    a.iter().zip(&b).map(|(x, y)| *x.min(y)).collect()
}

/// `slots[k] = min(slots[k], low 32 bits of splitmix64(h ^ seeds[k]))` over every token hash `h`.
fn minhash_update(slots: &mut [u32; MINHASH_SIZE], seeds: &[u64; MINHASH_SIZE], hashes: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq") {
        // SAFETY: the CPU supports AVX-512F and AVX-512DQ (checked just above).
        return unsafe { minhash_update_avx512(slots, seeds, hashes) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { minhash_update_avx2(slots, seeds, hashes) };
    }
    minhash_update_inline(slots, seeds, hashes)
}

/// [`minhash_update`] compiled for AVX-512 (DQ has the 64-bit multiply that AVX2 lacks; integer arithmetic, so
/// the same result on any instruction set).
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512DQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn minhash_update_avx512(
    slots: &mut [u32; MINHASH_SIZE],
    seeds: &[u64; MINHASH_SIZE],
    hashes: &[u64],
) {
    minhash_update_inline(slots, seeds, hashes)
}

/// [`minhash_update`] compiled for AVX2 (integer arithmetic: the same result on any instruction set).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn minhash_update_avx2(
    slots: &mut [u32; MINHASH_SIZE],
    seeds: &[u64; MINHASH_SIZE],
    hashes: &[u64],
) {
    minhash_update_inline(slots, seeds, hashes)
}

#[inline(always)]
fn minhash_update_inline(
    slots: &mut [u32; MINHASH_SIZE],
    seeds: &[u64; MINHASH_SIZE],
    hashes: &[u64],
) {
    for &h in hashes {
        for (slot, &seed) in slots.iter_mut().zip(seeds) {
            *slot = (*slot).min(splitmix64(h ^ seed) as u32);
        }
    }
}

/// Estimated Jaccard of two token sets from their MinHash sketches: the fraction of equal slots. 0 when the
/// sketches differ in length, are empty, or either comes from an empty vocabulary (all slots `u32::MAX`).
pub fn minhash_jaccard(a: &[u32], b: &[u32]) -> f64 {
    let empty = |s: &[u32]| s.iter().all(|&v| v == u32::MAX);
    if a.len() != b.len() || a.is_empty() || empty(a) || empty(b) {
        return 0.0;
    }
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// Share of letters per script over the token text, sorted by script name, shares rounded to 4 dp.
///
/// Byte-level vocabularies: every token that is not an added token is mapped back to bytes through the inverse
/// GPT-2 byte alphabet (characters outside the alphabet keep their own UTF-8 bytes) and decoded as lossy
/// UTF-8, so a token holding part of a multi-byte character contributes only U+FFFD, which is not a letter.
pub fn script_distribution(vocab: &Vocabulary) -> Vec<ScriptShare> {
    let mut counts = [0u64; SCRIPTS.len()];
    if vocab.convention == Convention::ByteLevel {
        let mut added: Vec<&str> = vocab
            .added_tokens
            .iter()
            .map(|(c, _, _)| c.as_str())
            .collect();
        added.sort_unstable();
        let mut added_first = [false; 256];
        for a in &added {
            added_first[a.as_bytes().first().map_or(0, |&b| b as usize)] = true;
        }
        let is_added = |t: &str| {
            added_first[t.as_bytes().first().map_or(0, |&b| b as usize)]
                && added.binary_search(&t).is_ok()
        };
        let mut inverse = [None::<u8>; 0x144];
        for (b, c) in byte_to_unicode().iter().enumerate() {
            if let Some(slot) = inverse.get_mut(*c as usize) {
                *slot = Some(b as u8);
            }
        }
        let mut bytes = Vec::new();
        for (token, _) in &vocab.tokens {
            if is_added(token) {
                count_letters(token, &mut counts);
                continue;
            }
            // Fast path: ASCII characters map back to their own bytes and `Ġ` to a space, so a token of only
            // those decodes to ASCII whose letters are its ASCII letters.
            let mut letters = 0;
            for c in token.chars() {
                if c.is_ascii() {
                    letters += c.is_ascii_alphabetic() as u64;
                } else if c != '\u{120}' {
                    letters = u64::MAX;
                    break;
                }
            }
            if letters != u64::MAX {
                counts[LATIN] += letters;
                continue;
            }
            bytes.clear();
            for c in token.chars() {
                match inverse.get(c as usize).copied().flatten() {
                    Some(b) => bytes.push(b),
                    None => {
                        let mut buf = [0u8; 4];
                        bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            if bytes.is_ascii() {
                counts[LATIN] += bytes.iter().filter(|b| b.is_ascii_alphabetic()).count() as u64;
            } else {
                count_letters(&String::from_utf8_lossy(&bytes), &mut counts);
            }
        }
    } else {
        for (token, _) in &vocab.tokens {
            count_letters(token, &mut counts);
        }
    }
    let total: u64 = counts.iter().sum();
    SCRIPTS
        .iter()
        .zip(counts)
        .filter(|(_, count)| *count > 0)
        .map(|(script, count)| ScriptShare {
            script: script.to_string(),
            share: round_to(count as f64 / total as f64, 4) as f32,
        })
        .collect()
}

/// The scripts of [`script_of`], in name order (the order of [`script_distribution`]).
const SCRIPTS: [&str; 6] = ["Arabic", "CJK", "Cyrillic", "Devanagari", "Latin", "Other"];
const LATIN: usize = 4;

/// Add the letters of `text` to the per-script counts (indexed like [`SCRIPTS`]).
fn count_letters(text: &str, counts: &mut [u64; SCRIPTS.len()]) {
    if text.is_ascii() {
        counts[LATIN] += text.bytes().filter(u8::is_ascii_alphabetic).count() as u64;
        return;
    }
    for c in text.chars() {
        if c.is_ascii() {
            counts[LATIN] += c.is_ascii_alphabetic() as u64;
        } else if let Some(script) = script_of(c) {
            if let Some(i) = SCRIPTS.iter().position(|s| *s == script) {
                counts[i] += 1;
            }
        }
    }
}

/// Whether `c` is counted as a letter: Python's `str.isalpha()` (General Category L*), approximated without
/// Unicode tables. ASCII: `A–Z`, `a–z`. Otherwise `char::is_alphabetic()` minus the combining marks it
/// includes for the scripts we classify (U+0300–036F, the Devanagari signs U+0900–0903, 093A–094F, 0951–0957,
/// 0962–0963, the Arabic harakat U+064B–065F, the kana voicing marks U+3099–309A) and the letter-like numbers
/// (Nl) U+16EE–16F0, U+2160–2188, U+3007, U+3021–3029, U+3038–303A. Marks of other scripts still count (as
/// "Other"); good enough for a coarse distribution.
pub fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    let u = c as u32;
    let excluded = matches!(
        u,
        0x0300..=0x036F
            | 0x0900..=0x0903
            | 0x093A..=0x094F
            | 0x0951..=0x0957
            | 0x0962..=0x0963
            | 0x064B..=0x065F
            | 0x3099..=0x309A
            | 0x16EE..=0x16F0
            | 0x2160..=0x2188
            | 0x3007
            | 0x3021..=0x3029
            | 0x3038..=0x303A
    );
    !excluded && c.is_alphabetic()
}

/// The script of a letter (`None` for non-letters, see [`is_letter`]), by the code-point ranges of
/// reference-signals.md §2.4: `"Latin"`, `"CJK"` (Han, kana, Hangul, Bopomofo), `"Cyrillic"`, `"Arabic"`,
/// `"Devanagari"`, else `"Other"`. Latin also takes Latin Extended-C/D/E, whose character names say LATIN.
pub fn script_of(c: char) -> Option<&'static str> {
    if !is_letter(c) {
        return None;
    }
    let u = c as u32;
    Some(match u {
        0x00..=0x7F
        | 0x00C0..=0x024F
        | 0x0250..=0x02AF
        | 0x1E00..=0x1EFF
        | 0x2C60..=0x2C7F
        | 0xA720..=0xA7FF
        | 0xAB30..=0xAB6F
        | 0xFF21..=0xFF3A
        | 0xFF41..=0xFF5A => "Latin",
        0x1100..=0x11FF
        | 0x3040..=0x30FF
        | 0x3100..=0x312F
        | 0x3130..=0x318F
        | 0x31A0..=0x31BF
        | 0x31F0..=0x31FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA960..=0xA97F
        | 0xAC00..=0xD7AF
        | 0xD7B0..=0xD7FF
        | 0xF900..=0xFAFF
        | 0xFF66..=0xFF9F
        | 0xFFA0..=0xFFDC
        | 0x1B000..=0x1B16F
        | 0x20000..=0x323AF => "CJK",
        0x0400..=0x052F | 0x1C80..=0x1C8F | 0xA640..=0xA69F => "Cyrillic",
        0x0600..=0x06FF | 0x0750..=0x077F | 0x0870..=0x08FF | 0xFB50..=0xFDFF | 0xFE70..=0xFEFF => {
            "Arabic"
        }
        0x0900..=0x097F | 0xA8E0..=0xA8FF => "Devanagari",
        _ => "Other",
    })
}

fn model_kind_name(kind: TokenizerModelKind) -> &'static str {
    match kind {
        TokenizerModelKind::Bpe => "BPE",
        TokenizerModelKind::WordPiece => "WordPiece",
        TokenizerModelKind::Unigram => "Unigram",
        TokenizerModelKind::WordLevel => "WordLevel",
    }
}

fn convention_name(convention: Convention) -> &'static str {
    match convention {
        Convention::ByteLevel => "byte_level",
        Convention::Metaspace => "metaspace",
        Convention::WordPiece => "wordpiece",
        Convention::Plain => "plain",
    }
}

/// `^<0x[0-9A-Fa-f]{2}>$`: a SentencePiece byte-fallback token.
fn is_byte_fallback_token(token: &str) -> bool {
    matches!(token.as_bytes(), [b'<', b'0', b'x', hi, lo, b'>'] if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit())
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// SplitMix64 finaliser (Steele, Lea, Flood 2014).
#[inline(always)]
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use provsearch_formats::tokenizer::{load_vocabulary, SpecialTokens};
    use serde_json::{json, Value};
    use std::path::{Path, PathBuf};

    /// Write `tokenizer.json` (and optional extra files) into a fresh directory and load it.
    fn load(tokenizer: &Value, extra: &[(&str, &str)]) -> Vocabulary {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
        for (name, text) in extra {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        load_vocabulary(dir.path()).unwrap().expect("a tokenizer")
    }

    fn anchor(vocab_anchors: &[Option<u32>], s: &str) -> Option<u32> {
        let i = ANCHORS
            .iter()
            .position(|a| *a == s)
            .unwrap_or_else(|| panic!("{s:?} is not an anchor"));
        vocab_anchors[i]
    }

    fn assert_distinct(resolved: &[Option<u32>]) {
        let ids: Vec<u32> = resolved.iter().flatten().copied().collect();
        let set: HashSet<u32> = ids.iter().copied().collect();
        assert_eq!(ids.len(), set.len(), "two anchors share an id");
    }

    /// The byte-level spelling of a string.
    fn bl(s: &str) -> String {
        let alphabet = byte_to_unicode();
        s.bytes().map(|b| alphabet[b as usize]).collect()
    }

    fn vocab_of(tokens: &[&str], convention: Convention) -> Vocabulary {
        Vocabulary {
            source_file: "test".into(),
            kind: TokenizerModelKind::Bpe,
            convention,
            tokens: tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.to_string(), i as u32))
                .collect(),
            added_tokens: Vec::new(),
            merges: Default::default(),
            lowercase: false,
            tokenizer_class: None,
            special: SpecialTokens::default(),
        }
    }

    /// GPT-2 style: the 256 byte-alphabet characters at ids 0..=255 (id = byte), then merged tokens.
    fn gpt2_json() -> Value {
        let mut vocab = serde_json::Map::new();
        for (b, c) in byte_to_unicode().iter().enumerate() {
            vocab.insert(c.to_string(), json!(b));
        }
        for (i, t) in ["Ġthe", "Ġof", "the", "çļĦ", &bl("中国"), &bl(" 人"), "Ġ,"]
            .iter()
            .enumerate()
        {
            vocab.insert(t.to_string(), json!(256 + i));
        }
        vocab.insert("<|endoftext|>".into(), json!(263));
        json!({
            "added_tokens": [{"id": 263, "content": "<|endoftext|>", "special": true}],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "vocab": vocab, "merges": ["Ġ t", "h e", "Ġt he"]}
        })
    }

    #[test]
    fn byte_level_anchors() {
        assert_eq!(bl("的"), "çļĦ");
        let v = load(&gpt2_json(), &[]);
        assert_eq!(v.convention, Convention::ByteLevel);
        let r = resolve_anchors(&v);
        assert_eq!(r.len(), ANCHORS.len());
        assert_distinct(&r);
        assert_eq!(anchor(&r, "the"), Some(256), "Ġthe before the");
        assert_eq!(anchor(&r, "of"), Some(257));
        assert_eq!(anchor(&r, "的"), Some(259), "的 through the byte alphabet");
        assert_eq!(
            anchor(&r, "人"),
            Some(261),
            "Ġ人 spelled in the byte alphabet"
        );
        assert_eq!(anchor(&r, ","), Some(262), "Ġ, before ,");
        assert_eq!(anchor(&r, "."), Some(u32::from(b'.')));
        assert_eq!(anchor(&r, "0"), Some(u32::from(b'0')));
        assert_eq!(anchor(&r, "I"), Some(u32::from(b'I')));
        assert_eq!(anchor(&r, "a"), Some(u32::from(b'a')));
        assert_eq!(
            anchor(&r, "中"),
            None,
            "中国 is one token; 中 alone is not in this vocabulary"
        );
        assert_eq!(anchor(&r, "water"), None);

        let s = tokenizer_signals(&v);
        assert_eq!(
            (s.model_kind.as_str(), s.convention.as_str()),
            ("BPE", "byte_level")
        );
        assert_eq!(
            (s.vocab_size, s.num_added_tokens, s.num_merges),
            (264, 1, 3)
        );
        assert_eq!(s.merge_rule_hash, sha256_hex("Ġ t\nh e\nĠt he".as_bytes()));
        assert_eq!(s.merges_hash, s.merge_rule_hash);
        assert_eq!(s.minhash.len(), MINHASH_SIZE);
        assert_eq!(s.vocab_hash, vocab_hash(&v));
        let cjk = s
            .script_distribution
            .iter()
            .find(|x| x.script == "CJK")
            .map(|x| x.share);
        assert!(
            cjk.unwrap_or(0.0) > 0.0,
            "CJK counted after byte decoding: {:?}",
            s.script_distribution
        );
    }

    #[test]
    fn byte_level_script_distribution_decodes_bytes() {
        let tokens = ["Ġthe", &bl("的"), &bl("中国"), &bl("я"), &bl(" ")];
        let v = vocab_of(&tokens, Convention::ByteLevel);
        let shares: Vec<(String, f32)> = script_distribution(&v)
            .into_iter()
            .map(|s| (s.script, s.share))
            .collect();
        assert_eq!(
            shares,
            vec![
                ("CJK".into(), 0.4286),
                ("Cyrillic".into(), 0.1429),
                ("Latin".into(), 0.4286)
            ],
            "sorted by script name"
        );
        // The same strings read raw are Latin-1 mojibake: all Latin (the reference's flaw).
        let raw = script_distribution(&vocab_of(&tokens, Convention::Plain));
        assert_eq!(
            raw.iter().map(|s| s.script.as_str()).collect::<Vec<_>>(),
            vec!["Latin"]
        );

        // A partial UTF-8 sequence decodes to U+FFFD and counts nothing; added tokens are read raw.
        let mut v = vocab_of(&["ä", "Ġx"], Convention::ByteLevel);
        v.added_tokens.push(("ä".into(), 0, false));
        assert_eq!(
            script_distribution(&v),
            vec![ScriptShare {
                script: "Latin".into(),
                share: 1.0
            }]
        );
        let v = vocab_of(&["ä"], Convention::ByteLevel);
        assert!(script_distribution(&v).is_empty());
    }

    /// The ASCII-and-`Ġ` fast path of the byte-level script counts gives what decoding every token gives.
    #[test]
    fn byte_level_fast_path_counts_like_decoding() {
        let tokens = [
            "Ġthe",
            "ĠĠ",
            "a\tb",
            "Ġ\u{7f}x",
            "A Z",
            "Ġ",
            "",
            "x1_",
            "Ġ\n",
            "Ġ中",
            "Ċa",
            "ĠÄ",
        ];
        let alphabet = byte_to_unicode();
        let decoded_letters = |t: &str| {
            let bytes: Vec<u8> = t
                .chars()
                .flat_map(|c| match alphabet.iter().position(|&a| a == c) {
                    Some(b) => vec![b as u8],
                    None => c.to_string().into_bytes(),
                })
                .collect();
            let mut counts = [0u64; SCRIPTS.len()];
            count_letters(&String::from_utf8_lossy(&bytes), &mut counts);
            counts
        };
        for t in tokens {
            let mut want = [0u64; SCRIPTS.len()];
            let mut got = [0u64; SCRIPTS.len()];
            for (slot, c) in want.iter_mut().zip(decoded_letters(t)) {
                *slot += c;
            }
            let shares = script_distribution(&vocab_of(&[t], Convention::ByteLevel));
            let total: u64 = want.iter().sum();
            for share in shares {
                let i = SCRIPTS.iter().position(|s| *s == share.script).unwrap();
                got[i] = (share.share as f64 * total as f64).round() as u64;
            }
            assert_eq!(got, want, "{t:?}");
        }
    }

    #[test]
    fn script_classification() {
        let cases = [
            ('a', Some("Latin")),
            ('é', Some("Latin")),
            ('ª', Some("Other")),
            ('µ', Some("Other")),
            ('的', Some("CJK")),
            ('の', Some("CJK")),
            ('ー', Some("CJK")),
            ('한', Some("CJK")),
            ('々', Some("Other")),
            ('я', Some("Cyrillic")),
            ('ب', Some("Arabic")),
            ('क', Some("Devanagari")),
            ('α', Some("Other")),
            ('\u{0947}', None), // Devanagari vowel sign E: a mark
            ('\u{064E}', None), // Arabic fatha
            ('\u{0301}', None),
            ('Ⅳ', None), // Nl
            ('〇', None),
            ('1', None),
            ('▁', None),
            ('×', None),
        ];
        for (c, want) in cases {
            assert_eq!(script_of(c), want, "{c:?} U+{:04X}", c as u32);
        }
    }

    /// Llama style: <unk> <s> </s>, 256 byte-fallback tokens, then pieces.
    fn llama_json(extra: &[&str], extra_added: &[&str]) -> Value {
        let mut vocab = serde_json::Map::new();
        for (i, t) in ["<unk>", "<s>", "</s>"].iter().enumerate() {
            vocab.insert(t.to_string(), json!(i));
        }
        for b in 0..256 {
            vocab.insert(format!("<0x{b:02X}>"), json!(3 + b));
        }
        let mut pieces: Vec<String> = ["▁▁", "▁t", "▁the", "▁"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        pieces.extend((0..10).map(|d| d.to_string()));
        pieces.extend(
            [",", "▁,", "的", "▁of", "s", "I", "▁I"]
                .iter()
                .map(|s| s.to_string()),
        );
        pieces.extend(extra.iter().map(|s| s.to_string()));
        for (i, t) in pieces.iter().enumerate() {
            vocab.insert(t.clone(), json!(259 + i));
        }
        let mut added = vec![
            json!({"id": 0, "content": "<unk>", "special": true}),
            json!({"id": 1, "content": "<s>", "special": true}),
            json!({"id": 2, "content": "</s>", "special": true}),
        ];
        for (i, t) in extra_added.iter().enumerate() {
            added.push(json!({"id": 259 + pieces.len() + i, "content": t, "special": true}));
        }
        json!({
            "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}
            ]},
            "pre_tokenizer": null,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}
            ]},
            "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true, "vocab": vocab,
                      "merges": ["▁ t", "h e", "▁t he"]}
        })
    }

    const LLAMA_CONFIG: &str = r#"{"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": {"content": "<unk>", "special": true}, "pad_token": null}"#;

    #[test]
    fn metaspace_anchors_and_signals() {
        let v = load(
            &llama_json(&[], &[]),
            &[("tokenizer_config.json", LLAMA_CONFIG)],
        );
        assert_eq!(v.convention, Convention::Metaspace);
        let r = resolve_anchors(&v);
        assert_distinct(&r);
        assert_eq!(anchor(&r, "the"), Some(261));
        for d in 0..10u32 {
            // The reference collapses every digit onto "▁"; here each digit keeps its own piece.
            assert_eq!(anchor(&r, &d.to_string()), Some(263 + d));
        }
        assert_eq!(anchor(&r, ","), Some(274), "▁, before ,");
        assert_eq!(anchor(&r, "的"), Some(275));
        assert_eq!(anchor(&r, "of"), Some(276));
        assert_eq!(anchor(&r, "I"), Some(279), "▁I before I");
        assert_eq!(anchor(&r, "a"), None);

        let s = tokenizer_signals(&v);
        assert_eq!(
            (s.model_kind.as_str(), s.convention.as_str()),
            ("BPE", "metaspace")
        );
        assert_eq!(s.tokenizer_class.as_deref(), Some("LlamaTokenizer"));
        assert_eq!(
            (
                s.bos_token_id,
                s.eos_token_id,
                s.unk_token_id,
                s.pad_token_id
            ),
            (Some(1), Some(2), Some(0), None)
        );
        assert_eq!(s.vocab_size, 280);
        assert_eq!(s.pct_byte_tokens, round_to(256.0 / 280.0, 4) as f32);
        assert!(s.pct_whitespace_prefix > 0.0);
        // Letters: <unk> <s> </s> (5), "x" and A–F in the byte tokens (256 + 6·16·2 = 448), the pieces (t, the,
        // of, s, I, I: 9) are Latin; 的 is the one CJK letter.
        let share = |name: &str| {
            s.script_distribution
                .iter()
                .find(|x| x.script == name)
                .map(|x| x.share)
        };
        assert_eq!(share("CJK"), Some(round_to(1.0 / 463.0, 4) as f32));
        assert_eq!(share("Latin"), Some(round_to(462.0 / 463.0, 4) as f32));
    }

    #[test]
    fn vocabulary_extension_keeps_shared_anchor_ids() {
        let base = load(
            &llama_json(&[], &[]),
            &[("tokenizer_config.json", LLAMA_CONFIG)],
        );
        let ext = load(
            &llama_json(&["▁water", "▁foo", "▁bar"], &["<FILL_ME>", "▁<PRE>"]),
            &[("tokenizer_config.json", LLAMA_CONFIG)],
        );
        assert_eq!(ext.tokens.len(), base.tokens.len() + 5);
        let (rb, re) = (resolve_anchors(&base), resolve_anchors(&ext));
        let mut shared = 0;
        for (i, (b, e)) in rb.iter().zip(&re).enumerate() {
            if let (Some(b), Some(e)) = (b, e) {
                assert_eq!(b, e, "anchor {:?} moved", ANCHORS[i]);
                shared += 1;
            }
        }
        assert_eq!(
            shared,
            rb.iter().flatten().count(),
            "every base anchor is still resolved"
        );
        assert_eq!(anchor(&re, "water"), Some(280));
        assert_eq!(re.iter().flatten().count(), shared + 1);
        let j = exact_jaccard(&base, &ext);
        assert!((j - 280.0 / 285.0).abs() < 1e-12, "{j}");
    }

    #[test]
    fn wordpiece_lowercase_anchors() {
        let vocab: serde_json::Map<String, Value> = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "i", "##s", ".", "0", "的", "you",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
        let added: Vec<Value> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"id": i, "content": t, "special": true}))
            .collect();
        let j = json!({
            "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab}
        });
        let config = r#"{"tokenizer_class": "BertTokenizer", "do_lower_case": true, "pad_token": "[PAD]",
            "mask_token": "[MASK]", "unk_token": "[UNK]"}"#;
        let v = load(&j, &[("tokenizer_config.json", config)]);
        assert_eq!(
            (v.kind, v.convention, v.lowercase),
            (TokenizerModelKind::WordPiece, Convention::WordPiece, true)
        );
        let r = resolve_anchors(&v);
        assert_distinct(&r);
        assert_eq!(anchor(&r, "the"), Some(5));
        assert_eq!(anchor(&r, "I"), Some(6), "I is looked up lower-cased");
        assert_eq!(anchor(&r, "."), Some(8));
        assert_eq!(anchor(&r, "0"), Some(9));
        assert_eq!(anchor(&r, "的"), Some(10));
        assert_eq!(anchor(&r, "you"), Some(11));
        assert_eq!(v.id_of("##s"), Some(7));
        let s = tokenizer_signals(&v);
        assert_eq!(
            (s.model_kind.as_str(), s.convention.as_str()),
            ("WordPiece", "wordpiece")
        );
        assert_eq!(
            (
                s.merge_rule_hash.as_str(),
                s.merges_hash.as_str(),
                s.num_merges
            ),
            ("", "", 0)
        );
        assert_eq!(
            (s.pad_token_id, s.unk_token_id, s.mask_token_id),
            (Some(0), Some(1), Some(4))
        );
    }

    #[test]
    fn unigram_t5_anchors() {
        let pieces = [
            "<pad>", "</s>", "<unk>", "▁", ".", "▁the", ",", "s", "▁I", "▁a", "a", "的",
        ];
        let vocab: Vec<Value> = pieces
            .iter()
            .enumerate()
            .map(|(i, p)| json!([p, -(i as f64)]))
            .collect();
        let j = json!({
            "added_tokens": [{"id": 0, "content": "<pad>", "special": true}, {"id": 1, "content": "</s>", "special": true},
                             {"id": 2, "content": "<unk>", "special": true}],
            "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}]},
            "decoder": {"type": "Metaspace", "replacement": "▁"},
            "model": {"type": "Unigram", "unk_id": 2, "vocab": vocab, "byte_fallback": false}
        });
        let v = load(
            &j,
            &[(
                "special_tokens_map.json",
                r#"{"eos_token": "</s>", "pad_token": "<pad>"}"#,
            )],
        );
        assert_eq!(
            (v.kind, v.convention),
            (TokenizerModelKind::Unigram, Convention::Metaspace)
        );
        let r = resolve_anchors(&v);
        assert_distinct(&r);
        assert_eq!(anchor(&r, "."), Some(4), "▁. absent, then .");
        assert_eq!(anchor(&r, "the"), Some(5));
        assert_eq!(anchor(&r, ","), Some(6));
        assert_eq!(anchor(&r, "I"), Some(8));
        assert_eq!(anchor(&r, "a"), Some(9), "▁a before a");
        assert_eq!(anchor(&r, "的"), Some(11));
        let s = tokenizer_signals(&v);
        assert_eq!(
            (s.model_kind.as_str(), s.convention.as_str()),
            ("Unigram", "metaspace")
        );
        assert_eq!(
            (
                s.unk_token_id,
                s.eos_token_id,
                s.pad_token_id,
                s.bos_token_id
            ),
            (Some(2), Some(1), Some(0), None)
        );
        assert_eq!(
            (s.merge_rule_hash.as_str(), s.merges_hash.as_str()),
            ("", "")
        );
    }

    #[test]
    fn plain_candidates_specials_and_taken_ids() {
        let mut v = vocab_of(&["the", "▁the", "Ġof", "and</w>", "0"], Convention::Plain);
        v.added_tokens.push(("the".into(), 0, true));
        v.tokens.push("1", 4); // a second string on id 4
        let r = resolve_anchors(&v);
        assert_eq!(anchor(&r, "the"), Some(1), "the is special: ▁the instead");
        assert_eq!(anchor(&r, "of"), Some(2));
        assert_eq!(anchor(&r, "and"), Some(3));
        assert_eq!(anchor(&r, "0"), Some(4));
        assert_eq!(
            anchor(&r, "1"),
            None,
            "id 4 is taken by the earlier anchor 0"
        );
        assert_distinct(&r);
    }

    #[test]
    fn jaccard_exact() {
        let a = vocab_of(&["a", "b", "c"], Convention::Plain);
        let b = vocab_of(&["b", "c", "d"], Convention::Plain);
        let d = vocab_of(&["x", "y"], Convention::Plain);
        let empty = vocab_of(&[], Convention::Plain);
        assert_eq!(exact_jaccard(&a, &a), 1.0);
        assert_eq!(exact_jaccard(&a, &b), 0.5);
        assert_eq!(exact_jaccard(&a, &d), 0.0);
        assert_eq!(exact_jaccard(&empty, &empty), 0.0);
        assert_eq!(exact_jaccard(&a, &empty), 0.0);
        // Ids do not matter, only strings.
        let shifted = vocab_of(&["c", "b", "a"], Convention::Plain);
        assert_eq!(exact_jaccard(&a, &shifted), 1.0);
    }

    #[test]
    fn minhash_is_pinned_and_estimates_jaccard() {
        // Values computed independently (Python) from the definition in the module docs.
        let one = minhash(&vocab_of(&["a"], Convention::Plain));
        assert_eq!(&one[..3], &[634150342, 2384507715, 255786841]);
        let three = minhash(&vocab_of(&["a", "the", "▁x"], Convention::Plain));
        assert_eq!(three[127], 3671150978);

        let toks = |r: std::ops::Range<usize>| r.map(|i| format!("tok{i}")).collect::<Vec<_>>();
        let a_tokens = toks(0..5000);
        let b_tokens = toks(1667..6667);
        let a = vocab_of(
            &a_tokens.iter().map(String::as_str).collect::<Vec<_>>(),
            Convention::Plain,
        );
        let b = vocab_of(
            &b_tokens.iter().map(String::as_str).collect::<Vec<_>>(),
            Convention::Plain,
        );
        let exact = exact_jaccard(&a, &b);
        assert!((exact - 0.5).abs() < 0.001, "{exact}");
        let (ma, mb) = (minhash(&a), minhash(&b));
        let est = minhash_jaccard(&ma, &mb);
        assert!((est - exact).abs() < 0.1, "estimate {est} vs exact {exact}");
        assert_eq!(minhash_jaccard(&ma, &ma), 1.0);
        assert_eq!(ma, minhash(&a), "deterministic");

        let empty = minhash(&vocab_of(&[], Convention::Plain));
        assert!(empty.iter().all(|&x| x == u32::MAX));
        assert_eq!(minhash_jaccard(&empty, &empty), 0.0);
        assert_eq!(minhash_jaccard(&ma, &ma[..10]), 0.0);
    }

    #[test]
    fn fast_paths_match_their_definitions() {
        // Tokens that stress the byte order of the vocab-hash lines: shared prefixes longer than 8 bytes, tabs,
        // NULs, digits after the tab, non-ASCII, duplicates.
        let mut tokens: Vec<String> = [
            "a",
            "a\t",
            "a\t1",
            "a\u{0}",
            "",
            "abcdefgh",
            "abcdefghi",
            "abcdefgh\u{0}",
            "\u{0}",
            "é",
            "的",
            "Ġthe",
            "▁the",
            "the",
            "the",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        tokens.extend((0..3000).map(|i| format!("tok{}", (i * 7919) % 3001)));
        let mut v = vocab_of(
            &tokens.iter().map(String::as_str).collect::<Vec<_>>(),
            Convention::Plain,
        );
        v.tokens.push("a", 4_000_000_000);
        v.tokens.push("the", 13);
        let mut lines: Vec<String> = v
            .tokens
            .iter()
            .map(|(t, id)| format!("{t}\t{id}\n"))
            .collect();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(vocab_hash(&v), sha256_hex(lines.concat().as_bytes()));

        // MinHash: the AVX-512, AVX2 and baseline builds of the update give the same slots.
        let hashes: Vec<u64> = v
            .tokens
            .iter()
            .map(|(t, _)| fnv1a64(t.as_bytes()))
            .collect();
        let mut seeds = [0u64; MINHASH_SIZE];
        for (k, seed) in seeds.iter_mut().enumerate() {
            *seed = splitmix64(MINHASH_SEED_BASE.wrapping_add(k as u64));
        }
        let (mut a, mut b) = ([u32::MAX; MINHASH_SIZE], [u32::MAX; MINHASH_SIZE]);
        minhash_update(&mut a, &seeds, &hashes);
        minhash_update_inline(&mut b, &seeds, &hashes);
        assert_eq!(a, b);
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            let mut c = [u32::MAX; MINHASH_SIZE];
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { minhash_update_avx2(&mut c, &seeds, &hashes) };
            assert_eq!(c, b);
        }
        assert_eq!(minhash(&v), a.to_vec());
    }

    #[test]
    fn vocab_hash_definition() {
        let mut v = vocab_of(&["a", "b"], Convention::Plain);
        assert_eq!(
            vocab_hash(&v),
            "27a5556067d793ae78d892a88957ab5fe58af20e6ebabc27ea66b2aa1aa210f9"
        );
        v.tokens = [("b", 1), ("a", 0)].into_iter().collect();
        assert_eq!(
            vocab_hash(&v),
            "27a5556067d793ae78d892a88957ab5fe58af20e6ebabc27ea66b2aa1aa210f9"
        );
        v.tokens = [("b", 2), ("a", 0)].into_iter().collect();
        assert_ne!(
            vocab_hash(&v),
            "27a5556067d793ae78d892a88957ab5fe58af20e6ebabc27ea66b2aa1aa210f9"
        );
    }

    #[test]
    fn tfv_features() {
        let mut v = vocab_of(
            &["▁ab", "Ġc", " d", "<0x0A>", "<0xG0>", "xyz"],
            Convention::Plain,
        );
        v.merges = (0..60).map(|i| format!("m{i} n")).collect();
        let s = tokenizer_signals(&v);
        assert_eq!(s.avg_token_length, round_to(22.0 / 6.0, 2) as f32);
        assert_eq!(s.pct_whitespace_prefix, 0.5);
        assert_eq!(s.pct_byte_tokens, round_to(1.0 / 6.0, 4) as f32);
        assert_eq!(s.num_merges, 60);
        assert_eq!(
            s.merge_rule_hash,
            sha256_hex(
                v.merges
                    .iter()
                    .take(50)
                    .collect::<Vec<_>>()
                    .join("\n")
                    .as_bytes()
            )
        );
        assert_eq!(s.merges_hash, sha256_hex(v.merges.join("\n").as_bytes()));
        assert_ne!(s.merge_rule_hash, s.merges_hash);

        let empty = tokenizer_signals(&vocab_of(&[], Convention::Plain));
        assert_eq!(
            (
                empty.vocab_size,
                empty.avg_token_length,
                empty.pct_byte_tokens
            ),
            (0, 0.0, 0.0)
        );
        assert!(empty.script_distribution.is_empty());
    }

    fn test_models_dir() -> PathBuf {
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
            "test model missing: {} has no tokenizer.json; run scripts/fetch-test-models.sh (or set \
             PROVSEARCH_TEST_MODELS)",
            dir.display()
        );
        let v = load_vocabulary(&dir)
            .unwrap()
            .expect("minilm has a tokenizer");
        assert_eq!(
            (v.kind, v.convention, v.lowercase),
            (TokenizerModelKind::WordPiece, Convention::WordPiece, true)
        );
        assert_eq!(v.tokens.len(), 30522);
        let r = resolve_anchors(&v);
        assert_distinct(&r);
        let found = r.iter().flatten().count();
        assert!(
            found >= 100,
            "only {found} of {} anchors resolved",
            ANCHORS.len()
        );
        assert_eq!(anchor(&r, "the"), Some(1996));
        let s = tokenizer_signals(&v);
        assert_eq!(
            (s.vocab_size, s.num_added_tokens, s.num_merges),
            (30522, 5, 0)
        );
        assert_eq!(
            s.script_distribution
                .iter()
                .map(|x| x.share)
                .sum::<f32>()
                .round(),
            1.0
        );
        assert_eq!(exact_jaccard(&v, &v), 1.0);
    }
}
