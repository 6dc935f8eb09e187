//! The Fingerprint: the one record that ingest produces, the index stores and queries compare.
//!
//! Every field is plain data with serde (JSON output) and rkyv (zero-copy storage) derives. The layout is
//! versioned by [`FINGERPRINT_VERSION`]; anything that changes how a signal is *defined* (anchor list, sample
//! positions, scaling) must bump it, because fingerprints of different versions are not comparable.
//!
//! Size: a fingerprint is bounded (≤ 64 KiB serialised) whatever the model size. Weight signals are therefore
//! stored as fixed-position samples quantised to `i8` ([`SAMPLE_SCALE`]), never as whole vectors.

use rkyv::{Archive, Deserialize as RkyvDeserialize, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};

/// Version of the fingerprint definition. Fingerprints with different versions are never compared.
pub const FINGERPRINT_VERSION: u32 = 2;

/// Quantisation of standardised samples: `i8 = round(clamp(x / sigma, -4, 4) * SAMPLE_SCALE)`.
///
/// Clamping at four standard deviations also winsorises outliers, so one huge weight cannot dominate a
/// correlation.
pub const SAMPLE_SCALE: f32 = 31.75;

/// Scale of stored cosines in the anchor Gram matrix: `i8 = round(cos * GRAM_SCALE)`.
pub const GRAM_SCALE: f32 = 127.0;

/// Most embedding channels kept as profiles ([`EmbeddingSignals::channel_profiles`]).
pub const CHANNEL_PROFILES: usize = 32;

/// Number of MinHash slots in the vocabulary sketch.
pub const MINHASH_SIZE: usize = 128;

/// A model's fingerprint: where it came from, what its config says, its tokenizer, and its weight signals.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Archive, RkyvSerialize, RkyvDeserialize,
)]
pub struct Fingerprint {
    /// [`FINGERPRINT_VERSION`] at extraction time.
    pub version: u32,
    /// Identity of the checkpoint: id, revision, files and their digests.
    pub source: Source,
    /// Config-derived metadata (the reference's MFI fields) plus model-card facts. Reported, never decisive.
    pub metadata: Metadata,
    /// Tokenizer features (TFV) and a vocabulary sketch (approximate VOA). `None` when no tokenizer was found.
    pub tokenizer: Option<TokenizerSignals>,
    /// The weight signals that the verdict rests on.
    pub weights: WeightSignals,
}

/// The on-disk format a checkpoint was read from.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// One or more `.safetensors` files.
    Safetensors,
    /// A llama.cpp `.gguf` file.
    Gguf,
}

/// Identity of a checkpoint.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Archive, RkyvSerialize, RkyvDeserialize,
)]
pub struct Source {
    /// Model id: `org/name` for Hub/cache models, the directory or file stem otherwise.
    pub id: String,
    /// Revision (commit hash of an HF cache snapshot), when known.
    pub revision: Option<String>,
    /// Weight file format.
    pub format: SourceFormat,
    /// Quantisation scheme of the stored weights (`"gptq-4bit"`, `"q4_1"`, ...), `None` for float weights.
    pub quantization: Option<String>,
    /// Weight files, sorted by name, with size and digests (at most 64 listed; `content_digest` covers all).
    pub files: Vec<FileDigest>,
    /// Digest over the weight files' digests in name order: `sha256:<hex>` when every file's SHA-256 was known
    /// for free (HF cache snapshot), else `blake3:<hex>`. Equal means byte-identical weights. Empty when digests
    /// were skipped.
    pub content_digest: String,
    /// Total size of the weight files in bytes.
    pub total_bytes: u64,
    /// Distinct tensor dtypes as stored (`"F32"`, `"BF16"`, `"I8"`, ...), sorted.
    pub dtypes: Vec<String>,
    /// Parameter count from the real tensor shapes (logical, i.e. unpacked, element counts).
    pub parameter_count: u64,
    /// Number of tensors in the checkpoint.
    pub tensor_count: u32,
}

/// Name, size and digest of one file.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Archive, RkyvSerialize, RkyvDeserialize,
)]
pub struct FileDigest {
    /// File name relative to the model root.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lower-case hex BLAKE3 of the file's bytes (empty when digests were skipped).
    pub blake3: String,
    /// Lower-case hex SHA-256 of the file's bytes, when known without extra work (a Hugging Face cache blob is
    /// named by it) or when asked for (`--sha256`); empty otherwise.
    pub sha256: String,
}

/// Config-derived metadata (reference MFI fields, §1 of reference-signals.md) and model-card facts.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Serialize,
    Deserialize,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
pub struct Metadata {
    /// Top-level `model_type`, or `"unknown"`.
    pub model_type: String,
    /// Top-level `architectures`.
    pub architectures: Vec<String>,
    /// Text-backbone hidden size (aliases resolved), 0 if unknown.
    pub hidden_size: u32,
    /// Number of layers, 0 if unknown.
    pub num_layers: u32,
    /// Attention heads, 0 if unknown.
    pub num_attention_heads: u32,
    /// Key/value heads, when stated.
    pub num_key_value_heads: Option<u32>,
    /// MLP width, 0 if unknown.
    pub intermediate_size: u32,
    /// Config vocabulary size (embedding rows), 0 if unknown.
    pub vocab_size: u32,
    /// Maximum positions, 0 if unknown.
    pub max_position_embeddings: u32,
    /// Activation function name.
    pub hidden_act: Option<String>,
    /// Attention head dimension, when stated.
    pub head_dim: Option<u32>,
    /// RoPE base, read from the top level or from `rope_scaling`/`rope_parameters`.
    pub rope_theta: Option<f64>,
    /// RoPE scaling type (`type` or `rope_type`), when scaled.
    pub rope_scaling_type: Option<String>,
    /// Whether input and output embeddings are tied.
    pub tie_word_embeddings: Option<bool>,
    /// `"RMSNorm"`, `"LayerNorm"` or `"unknown"`.
    pub norm_type: String,
    /// `"MHA"`, `"GQA"` or `"MQA"`.
    pub attention_style: String,
    /// `"RoPE"`, `"absolute"`, `"alibi"`, `"relative"`, ...
    pub pos_encoding: String,
    /// Whether the model has query/key norms.
    pub qk_norm: bool,
    /// Attention bias flag, when stated.
    pub attention_bias: Option<bool>,
    /// Beginning-of-sequence token id (tokenizer first, config second).
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id (tokenizer first, config second).
    pub eos_token_id: Option<u32>,
    /// SHA-256 of the architecture tuple (reference-compatible definition, §1.4).
    pub arch_hash: String,
    /// SHA-256 of the family tuple (§1.4), with our own tokenizer hash.
    pub family_hash: String,
    /// Declared parents: README front matter `base_model:` entries.
    pub declared_base_models: Vec<String>,
    /// Config `_name_or_path`, when present.
    pub name_or_path: Option<String>,
    /// License from the README front matter.
    pub license: Option<String>,
    /// Tags from the README front matter.
    pub tags: Vec<String>,
}

/// Tokenizer features (the reference's TFV) and a MinHash sketch of the vocabulary.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Serialize,
    Deserialize,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
pub struct TokenizerSignals {
    /// Model type of the tokenizer: `"BPE"`, `"WordPiece"`, `"Unigram"` or `"WordLevel"`.
    pub model_kind: String,
    /// How word-initial tokens are spelled: `"byte_level"` (Ġ), `"metaspace"` (▁), `"wordpiece"` (##
    /// continuation), or `"plain"`.
    pub convention: String,
    /// `tokenizer_config.json:tokenizer_class`, when present.
    pub tokenizer_class: Option<String>,
    /// Which file the vocabulary came from (`"tokenizer.json"`, `"vocab.txt"`, ...).
    pub source_file: String,
    /// Number of vocabulary entries, added tokens included.
    pub vocab_size: u32,
    /// Number of added tokens.
    pub num_added_tokens: u32,
    /// Number of BPE merges (0 for non-BPE).
    pub num_merges: u32,
    /// SHA-256 of the first 50 merges joined with `\n` (empty string when there are no merges).
    pub merge_rule_hash: String,
    /// SHA-256 of all merges joined with `\n` (empty string when there are no merges).
    pub merges_hash: String,
    /// SHA-256 of the sorted `token\tid` lines: equal means identical vocabularies.
    pub vocab_hash: String,
    /// Special token ids.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id.
    pub eos_token_id: Option<u32>,
    /// Padding id.
    pub pad_token_id: Option<u32>,
    /// Unknown-token id.
    pub unk_token_id: Option<u32>,
    /// Mask id.
    pub mask_token_id: Option<u32>,
    /// Mean token length in code points.
    pub avg_token_length: f32,
    /// Fraction of tokens starting with `▁`, `Ġ` or a space.
    pub pct_whitespace_prefix: f32,
    /// Fraction of `<0xNN>` byte-fallback tokens.
    pub pct_byte_tokens: f32,
    /// Share of letters per script, over the decoded token text (byte-level tokens are decoded to bytes first,
    /// so CJK in a GPT-2-style vocabulary counts as CJK). Sorted by script name.
    pub script_distribution: Vec<ScriptShare>,
    /// MinHash sketch ([`MINHASH_SIZE`] slots) of the raw token-string set, for approximate Jaccard (VOA).
    pub minhash: Vec<u32>,
}

/// One script's share of the letters in a vocabulary.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Archive, RkyvSerialize, RkyvDeserialize,
)]
pub struct ScriptShare {
    /// `"Latin"`, `"CJK"`, `"Cyrillic"`, `"Arabic"`, `"Devanagari"`, `"Other"`.
    pub script: String,
    /// Fraction of counted letters.
    pub share: f32,
}

/// The weight signals. Everything the verdict uses lives here.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Serialize,
    Deserialize,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
pub struct WeightSignals {
    /// Token-keyed signals from the input embedding (EAS, END and sampled anchor rows).
    pub embedding: Option<EmbeddingSignals>,
    /// Sampled, standardised entries of every layer matrix (WVC) and their energies (LEP).
    pub matrices: TensorSamples,
    /// Sampled, standardised norm gains and biases (NLF).
    pub norms: TensorSamples,
    /// Human-readable remarks from extraction (e.g. "embedding taken from tied lm_head").
    pub notes: Vec<String>,
}

/// Signals from the token embedding, keyed by the canonical anchor list ([`crate::anchors::ANCHORS`]).
///
/// Anchors are token *strings*: each is resolved in the model's own vocabulary, so fingerprints of models with
/// different tokenizers are comparable over the anchors present in both.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Serialize,
    Deserialize,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
pub struct EmbeddingSignals {
    /// [`crate::anchors::ANCHOR_SET_VERSION`] at extraction time.
    pub anchor_set_version: u32,
    /// Name of the tensor the embedding was read from.
    pub tensor: String,
    /// Embedding rows (may exceed the tokenizer's vocabulary: padding rows).
    pub rows: u32,
    /// Embedding width.
    pub hidden: u32,
    /// Bit `i` (word `i / 64`, bit `i % 64`) is set when anchor `i` was resolved in this vocabulary.
    pub presence: Vec<u64>,
    /// EAS: cosines between mean-centred anchor rows, strict upper triangle over the *present* anchors in
    /// anchor order (`(0,1), (0,2), ..., (1,2), ...`), scaled by [`GRAM_SCALE`].
    pub gram: Vec<i8>,
    /// Sampled coordinates of the mean-centred anchor rows: `samples_per_row` values per present anchor, at the
    /// positions [`crate::sampling::vector_positions`]`(hidden, samples_per_row)`, standardised by the
    /// embedding's centred RMS and scaled by [`SAMPLE_SCALE`].
    pub row_samples: Vec<i8>,
    /// Coordinates sampled per anchor row.
    pub samples_per_row: u16,
    /// END (token-keyed): `ln(‖row‖ / median row norm)` for every present anchor, in anchor order.
    pub anchor_log_norms: Vec<f32>,
    /// END (distribution): quantiles 0/32, 1/32, ..., 32/32 of `ln(‖row‖ / median)` over the token rows.
    pub norm_quantiles: Vec<f32>,
    /// Channel profiles: the embedding columns (hidden channels) of largest variance over the present
    /// anchors, most variable first, at most [`CHANNEL_PROFILES`]. Their indices in the embedding.
    pub channel_ids: Vec<u32>,
    /// Channel profiles, channel-major: channel `k`'s mean-centred values at the present anchors (in anchor
    /// order), standardised over them and scaled by [`SAMPLE_SCALE`]. Keyed by token and found by content
    /// rather than position, so they pair the channels of models whose widths differ (width pruning, scaled
    /// transfer) or whose channels were reordered (see `score::channels`).
    pub channel_profiles: Vec<i8>,
}

/// Which stack of an encoder-decoder or multimodal model a tensor belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
#[serde(rename_all = "lowercase")]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub enum Stack {
    /// The only stack of a decoder-only or encoder-only model.
    Main,
    /// Encoder of an encoder-decoder model.
    Encoder,
    /// Decoder of an encoder-decoder model.
    Decoder,
    /// Vision tower or other non-text stack.
    Vision,
}

/// Fixed-position samples from a set of tensors, stored compactly: one table of entries, one pool of values.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Serialize,
    Deserialize,
    Archive,
    RkyvSerialize,
    RkyvDeserialize,
)]
pub struct TensorSamples {
    /// Role names; [`TensorEntry::role`] indexes this table. Canonical roles (`"attn_q"`, `"mlp_down"`, ...)
    /// where the naming is recognised, the name's suffix after the layer index otherwise.
    pub roles: Vec<String>,
    /// Logical shapes `[rows, cols]`; [`TensorEntry::shape`] indexes this table. Vectors are `[1, len]`.
    pub shapes: Vec<[u32; 2]>,
    /// One entry per sampled tensor, sorted by (stack, layer, role name).
    pub entries: Vec<TensorEntry>,
    /// All samples, each entry's at `values[start .. start + len]`, quantised with [`SAMPLE_SCALE`].
    pub values: Vec<i8>,
}

/// Layer value of a tensor outside the layer stack (final norm, position embeddings, ...).
pub const NO_LAYER: u16 = u16::MAX;

/// One sampled tensor (20 bytes archived: deep models have a thousand of these within the size budget).
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, Archive, RkyvSerialize, RkyvDeserialize,
)]
pub struct TensorEntry {
    /// Which stack the tensor belongs to.
    pub stack: Stack,
    /// Layer index within the stack; [`NO_LAYER`] for tensors outside the layers.
    pub layer: u16,
    /// Index into [`TensorSamples::roles`].
    pub role: u16,
    /// Index into [`TensorSamples::shapes`]: the logical shape (output features, input features), after undoing
    /// transposed storage (GPT-2 Conv1D).
    pub shape: u16,
    /// Number of samples. Samples are the prefix of [`crate::sampling::matrix_positions`] for this shape, so two
    /// tensors of the same shape compare on their common prefix.
    pub len: u16,
    /// First sample in [`TensorSamples::values`].
    pub start: u32,
    /// `ln` of the tensor's root-mean-square value over all its entries (LEP uses it); for norm vectors the
    /// `ln` of the mean absolute gain.
    pub log_rms: f32,
}

/// Size bound of an archived fingerprint.
pub const MAX_FINGERPRINT_BYTES: usize = 64 * 1024;

/// Fewest samples per tensor that budget fitting keeps before it thins out layers instead.
const MIN_SAMPLES_PER_TENSOR: usize = 4;

impl Fingerprint {
    /// Serialised size in bytes of the rkyv archive.
    pub fn archived_size(&self) -> usize {
        rkyv::to_bytes::<rkyv::rancor::Error>(self)
            .map(|b| b.len())
            .unwrap_or(usize::MAX)
    }

    /// Shrink the weight samples until the archive fits `limit` bytes: first halve the samples per tensor (down
    /// to a few), then keep every other layer. Both only drop data, so the remaining samples keep their
    /// definition. Returns whether anything was dropped.
    pub fn fit_budget(&mut self, limit: usize) -> bool {
        let mut changed = false;
        let mut stride = 1u16;
        while self.archived_size() > limit {
            let w = &mut self.weights;
            let longest = w.matrices.max_len().max(w.norms.max_len());
            if longest > MIN_SAMPLES_PER_TENSOR {
                let cap = (longest / 2).max(MIN_SAMPLES_PER_TENSOR);
                w.matrices.retain(cap, |_| true);
                w.norms.retain(cap, |_| true);
            } else if stride < 64 {
                stride *= 2;
                let thin = |e: &TensorEntry| e.layer == NO_LAYER || e.layer.is_multiple_of(stride);
                w.matrices.retain(usize::MAX, thin);
                w.norms.retain(usize::MAX, thin);
                w.notes.push(format!(
                    "size budget: kept every {stride}th layer's samples"
                ));
            } else {
                break;
            }
            changed = true;
        }
        changed
    }
}

impl TensorSamples {
    /// Keep only the entries `keep` accepts, and at most `max_len` samples of each (a prefix, which is itself a
    /// canonical sample: see [`crate::sampling`]). Rebuilds the value pool; roles and shapes tables are kept.
    pub fn retain(&mut self, max_len: usize, mut keep: impl FnMut(&TensorEntry) -> bool) {
        let mut values = Vec::with_capacity(self.values.len());
        let mut entries = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            if !keep(e) {
                continue;
            }
            let samples = self.samples(e);
            let len = samples.len().min(max_len);
            entries.push(TensorEntry {
                start: values.len() as u32,
                len: len as u16,
                ..e.clone()
            });
            values.extend_from_slice(&samples[..len]);
        }
        self.entries = entries;
        self.values = values;
    }

    /// The largest number of samples any entry holds.
    pub fn max_len(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.len as usize)
            .max()
            .unwrap_or(0)
    }

    /// The role name of an entry.
    pub fn role_name(&self, entry: &TensorEntry) -> &str {
        self.roles
            .get(entry.role as usize)
            .map(String::as_str)
            .unwrap_or("?")
    }

    /// The logical shape `[rows, cols]` of an entry (`[0, 0]` if the index is out of range).
    pub fn shape_of(&self, entry: &TensorEntry) -> [u32; 2] {
        self.shapes
            .get(entry.shape as usize)
            .copied()
            .unwrap_or([0, 0])
    }

    /// The stored samples of an entry (empty if the entry points outside the pool).
    pub fn samples(&self, entry: &TensorEntry) -> &[i8] {
        let start = entry.start as usize;
        let end = start.saturating_add(entry.len as usize);
        self.values.get(start..end).unwrap_or(&[])
    }
}

impl EmbeddingSignals {
    /// Whether anchor `i` is present.
    pub fn has_anchor(&self, i: usize) -> bool {
        self.presence
            .get(i / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    /// Indices (into the anchor list) of the present anchors, in order.
    pub fn present_anchors(&self) -> Vec<usize> {
        (0..self.presence.len() * 64)
            .filter(|&i| self.has_anchor(i))
            .collect()
    }
}

/// Quantise a standardised value to the stored `i8` form.
#[inline]
pub fn quantize_sample(z: f64) -> i8 {
    let z = if z.is_finite() {
        z.clamp(-4.0, 4.0)
    } else {
        0.0
    };
    round_half_away(z * SAMPLE_SCALE as f64) as i8
}

/// Quantise a cosine to the stored `i8` Gram form.
#[inline]
pub fn quantize_cosine(c: f64) -> i8 {
    let c = if c.is_finite() {
        c.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    round_half_away(c * GRAM_SCALE as f64) as i8
}

/// `x.round()` (half away from zero) for finite `|x| < 2⁵²`, without a libm call: on the x86-64 baseline
/// `f64::round` is a function call, and quantisation runs once per stored sample.
#[inline]
pub fn round_half_away(x: f64) -> i64 {
    let t = x as i64; // truncates toward zero
    let frac = x - t as f64; // exact for |x| < 2⁵²
    t + (frac >= 0.5) as i64 - (frac <= -0.5) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_away_matches_std_round() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999999999999994,
            -0.49999999999999994,
            126.5,
            -127.5,
            4.0 * 31.75,
            1e15 + 0.5,
        ];
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push((x as f64 / u64::MAX as f64 - 0.5) * 300.0);
        }
        for v in values {
            assert_eq!(round_half_away(v), v.round() as i64, "{v}");
        }
    }
}
