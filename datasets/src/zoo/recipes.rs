//! The recipes of the generated zoo: which model is made from which, by which operations, and what the
//! provenance constitution calls the relation. Pure data; [`super::generate`] executes it and
//! [`super::pairs`] labels pairs from it.

use crate::checkpoint::Storage;
use crate::derive::TaskMerge;
use crate::synth::{Family, Spec};

/// Root-relative id of the real MiniLM snapshot (a link into the test-model cache).
pub const MINILM: &str = "real/minilm";

/// Where a generated model starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    /// A committed trained zoo model, by its zoo id (`trained/L-base`), or the real MiniLM ([`MINILM`]), or a
    /// model generated earlier (`gen/...`).
    Model(String),
    /// A merge of two models with the same tensors at interpolation factor `t` (towards the second).
    Merge {
        /// First parent.
        a: String,
        /// Second parent.
        b: String,
        /// Interpolation factor.
        t: f32,
        /// Spherical (SLERP) instead of linear.
        slerp: bool,
    },
    /// Layers stacked from one or more models (depth up-scaling, passthrough frankenmerges): the layers
    /// `start..end` of each `(model, start, end)` in turn; everything outside the layers from the first model.
    Stack(Vec<(String, usize, usize)>),
    /// Fine-tunes of `base` merged through their task vectors (TIES or DARE at `density`).
    TaskMerge {
        /// The model the others were fine-tuned from.
        base: String,
        /// The fine-tunes merged.
        models: Vec<String>,
        /// How their task vectors are combined.
        method: TaskMerge,
        /// Share of each task vector kept.
        density: f32,
    },
    /// A synthetic model, optionally carrying another model's tokenizer files (and as many embedding rows).
    Synth {
        /// Dimensions and seed.
        spec: Spec,
        /// Zoo id whose tokenizer.json (and vocab.txt) replace the synthetic ones.
        tokenizer_from: Option<String>,
        /// Vocabulary size of that tokenizer.
        vocab: usize,
    },
}

/// One operation of a recipe.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Copy the weight files byte for byte (an exact re-upload).
    CopyFiles,
    /// Per-row int8 quantize → dequantize.
    Int8,
    /// 4-bit block quantize → dequantize with this block size.
    Int4(usize),
    /// Zero this fraction of the smallest-magnitude weights.
    MagnitudePrune(f32),
    /// Remove these layers and renumber.
    DropLayers(Vec<usize>),
    /// Keep about this fraction of the vocabulary.
    PruneVocab(f64),
    /// Add this many tokens.
    ExtendVocab(usize),
    /// Merge a random LoRA update: target name parts, rank, relative size.
    Lora(&'static [&'static str], usize, f32),
    /// Permute the MLP hidden units.
    PermuteMlp,
    /// Permute the residual-stream channels of every tensor (the same function).
    PermuteResidual,
    /// Keep this many of the most important residual channels (Llama width pruning, no healing).
    PruneWidth(usize),
    /// Widen the residual stream to this many channels, new ones copied from random old ones (Llama).
    GrowWidth(usize),
    /// Replace every MLP by this many noisy copies of it as mixture-of-experts experts (Llama → Mixtral).
    UpcycleMoe(usize),
    /// Gaussian noise of this size relative to each tensor's RMS (a stand-in for the training that follows).
    Noise(f32),
    /// Fuse q/k/v and gate/up into Phi-3's `qkv_proj` and `gate_up_proj` (Llama).
    FuseProjections,
    /// Rescale between norms and the matrices that read them, per channel within [1/s, s].
    RescaleNorms(f32),
    /// Rename tensors: (from, to) substring replacements, applied in order.
    Rename(&'static [(&'static str, &'static str)]),
    /// Re-initialise every weight (an unrelated twin of the same config).
    FreshInit,
}

/// A generated model.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// Zoo id (`gen/<name>`), also its directory under the zoo root.
    pub id: String,
    /// What it starts from.
    pub base: Base,
    /// Operations, in order.
    pub ops: Vec<Op>,
    /// Storage dtype of the written weights.
    pub storage: Storage,
    /// Number of safetensors shards.
    pub shards: usize,
    /// Seed of the random operations.
    pub seed: u64,
    /// Constitution category of the relation to its parent(s) (a linking mechanism), or the exclusion that makes
    /// it independent of the model it imitates.
    pub category: &'static str,
    /// Short description of the derivation for the pairs file.
    pub detail: &'static str,
    /// easy, medium, hard or extreme.
    pub difficulty: &'static str,
}

impl Base {
    /// Zoo ids whose files generating this base reads, each once, in order of first use.
    pub fn sources(&self) -> Vec<String> {
        let mut ids: Vec<String> = match self {
            Base::Model(m) => vec![m.clone()],
            Base::Merge { a, b, .. } => vec![a.clone(), b.clone()],
            Base::Stack(slices) => slices.iter().map(|(m, _, _)| m.clone()).collect(),
            Base::TaskMerge { base, models, .. } => {
                std::iter::once(base).chain(models).cloned().collect()
            }
            Base::Synth { tokenizer_from, .. } => tokenizer_from.iter().cloned().collect(),
        };
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        ids
    }
}

impl Recipe {
    /// Zoo ids this model descends from directly (empty for fresh and synthetic models).
    pub fn parents(&self) -> Vec<String> {
        if self.ops.contains(&Op::FreshInit) || matches!(self.base, Base::Synth { .. }) {
            return Vec::new();
        }
        self.base.sources()
    }

    /// The model this one imitates without descending from it (fresh twins, synthetic look-alikes).
    pub fn imitates(&self) -> Option<String> {
        match &self.base {
            Base::Model(m) if self.ops.contains(&Op::FreshInit) => Some(m.clone()),
            Base::Synth { tokenizer_from, .. } => tokenizer_from.clone(),
            _ => None,
        }
    }

    /// Whether generating it needs the real MiniLM snapshot.
    pub fn needs_minilm(&self, all: &[Recipe]) -> bool {
        self.base.sources().iter().any(|d| {
            d == MINILM
                || all
                    .iter()
                    .find(|r| &r.id == d)
                    .is_some_and(|r| r.needs_minilm(all))
        })
    }
}

const LLAMA_ATTN: &[&str] = &["q_proj", "v_proj"];
const LLAMA_ALL: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];
const GPT2_ATTN: &[&str] = &["c_attn"];
const GPT2_ALL: &[&str] = &["c_attn", "c_proj", "c_fc"];
const BERT_ALL: &[&str] = &["query", "key", "value", "dense"];

/// Meta's original Llama names (consolidated.pth) for the HF ones.
const META_NAMES: &[(&str, &str)] = &[
    ("model.embed_tokens", "tok_embeddings"),
    ("lm_head", "output"),
    ("model.norm", "norm"),
    ("model.layers", "layers"),
    ("self_attn.q_proj", "attention.wq"),
    ("self_attn.k_proj", "attention.wk"),
    ("self_attn.v_proj", "attention.wv"),
    ("self_attn.o_proj", "attention.wo"),
    ("mlp.gate_proj", "feed_forward.w1"),
    ("mlp.down_proj", "feed_forward.w2"),
    ("mlp.up_proj", "feed_forward.w3"),
    ("input_layernorm", "attention_norm"),
    ("post_attention_layernorm", "ffn_norm"),
];
/// A bare `GPT2Model` export (no `transformer.` prefix).
const GPT2_BARE: &[(&str, &str)] = &[("transformer.", "")];
/// `BertForMaskedLM`-style prefix.
const BERT_PREFIX: &[(&str, &str)] = &[
    ("embeddings.", "bert.embeddings."),
    ("encoder.", "bert.encoder."),
    ("pooler.", "bert.pooler."),
];

struct Make<'a> {
    out: &'a mut Vec<Recipe>,
}

impl Make<'_> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        id: String,
        base: Base,
        ops: Vec<Op>,
        storage: Storage,
        category: &'static str,
        detail: &'static str,
        difficulty: &'static str,
    ) {
        let seed = 1000 + self.out.len() as u64;
        self.out.push(Recipe {
            id,
            base,
            ops,
            storage,
            shards: 1,
            seed,
            category,
            detail,
            difficulty,
        });
    }

    fn from(
        &mut self,
        src: &str,
        suffix: &str,
        ops: Vec<Op>,
        storage: Storage,
        what: (&'static str, &'static str, &'static str),
    ) {
        let short = src.rsplit('/').next().unwrap_or(src);
        self.add(
            format!("gen/{short}--{suffix}"),
            Base::Model(src.into()),
            ops,
            storage,
            what.0,
            what.1,
            what.2,
        );
    }
}

const IDENTITY: &str = "identity-reformatting";
const QUANT: &str = "quantization-compression";
const STRUCT: &str = "structural-modification";
const VOCAB: &str = "vocabulary-modification";
const ADAPTER: &str = "adapter-merge";
const MERGE: &str = "merging";

/// The full mechanical zoo, in dependency order (a recipe only uses models listed before it).
pub fn recipes() -> Vec<Recipe> {
    let mut out = Vec::new();
    let mut m = Make { out: &mut out };
    use Storage::{BF16, F16, F32};

    for (base, llama) in [("trained/L-base", true), ("trained/G-base", false)] {
        let (attn, all) = if llama {
            (LLAMA_ATTN, LLAMA_ALL)
        } else {
            (GPT2_ATTN, GPT2_ALL)
        };
        m.from(
            base,
            "bf16",
            vec![],
            BF16,
            (IDENTITY, "f16 → bf16 conversion", "easy"),
        );
        m.from(
            base,
            "f32-renamed-sharded",
            vec![Op::Rename(if llama { META_NAMES } else { GPT2_BARE })],
            F32,
            (IDENTITY, "f32, tensors renamed, 3 shards", "easy"),
        );
        if let Some(r) = m.out.last_mut() {
            r.shards = 3;
        }
        m.from(
            base,
            "int8",
            vec![Op::Int8],
            F16,
            (QUANT, "int8 per-channel round trip", "easy"),
        );
        m.from(
            base,
            "int4",
            vec![Op::Int4(32)],
            F16,
            (QUANT, "4-bit block-32 round trip", "medium"),
        );
        m.from(
            base,
            "prune50",
            vec![Op::MagnitudePrune(0.5)],
            F16,
            (STRUCT, "50% magnitude pruning", "medium"),
        );
        m.from(
            base,
            "drop-layer",
            vec![Op::DropLayers(vec![2])],
            F16,
            (STRUCT, "layer 2 of 4 removed", "medium"),
        );
        m.from(
            base,
            "vocab-prune",
            vec![Op::PruneVocab(0.7)],
            F16,
            (VOCAB, "vocabulary pruned to 70%", "medium"),
        );
        m.from(
            base,
            "vocab-extend",
            vec![Op::ExtendVocab(200)],
            F16,
            (VOCAB, "200 tokens added", "easy"),
        );
        m.from(
            base,
            "lora-attn",
            vec![Op::Lora(attn, 8, 0.1)],
            F16,
            (ADAPTER, "LoRA r8 on attention, |ΔW| = 0.1|W|", "easy"),
        );
        m.from(
            base,
            "lora-all",
            vec![Op::Lora(all, 16, 0.5)],
            F16,
            (ADAPTER, "LoRA r16 on all linears, |ΔW| = 0.5|W|", "hard"),
        );
        m.from(
            base,
            "permute",
            vec![Op::PermuteMlp],
            F16,
            (STRUCT, "MLP hidden units permuted (evasion)", "hard"),
        );
        m.from(
            base,
            "rescale",
            vec![Op::RescaleNorms(2.0)],
            F16,
            (STRUCT, "norm/matrix rescaling ×[0.5, 2] (evasion)", "hard"),
        );
        m.from(
            base,
            "evade",
            vec![Op::PermuteMlp, Op::RescaleNorms(2.0), Op::Int4(32)],
            F16,
            (
                STRUCT,
                "permutation + rescaling + 4-bit (evasion chain)",
                "extreme",
            ),
        );
        m.from(
            base,
            "fresh",
            vec![Op::FreshInit],
            F16,
            (
                "same-architecture-independent-runs",
                "fresh init of the same config",
                "easy",
            ),
        );
    }
    m.from(
        "trained/L-base",
        "copy",
        vec![Op::CopyFiles],
        F16,
        (IDENTITY, "byte-identical copy", "easy"),
    );

    // Mechanical derivations of trained derivatives (chains) and of the traps.
    m.from(
        "trained/L-ft-shakespeare",
        "int4",
        vec![Op::Int4(32)],
        F16,
        (QUANT, "4-bit block-32 round trip", "medium"),
    );
    m.from(
        "trained/L-cpt",
        "lora-all",
        vec![Op::Lora(LLAMA_ALL, 16, 0.5)],
        F16,
        (ADAPTER, "LoRA r16 on all linears", "hard"),
    );
    m.from(
        "trained/L-vocab-jargon",
        "int8",
        vec![Op::Int8],
        F16,
        (QUANT, "int8 per-channel round trip", "easy"),
    );
    m.from(
        "trained/L-distill",
        "int8",
        vec![Op::Int8],
        F16,
        (QUANT, "int8 per-channel round trip", "easy"),
    );
    m.from(
        "trained/L-pruned",
        "bf16",
        vec![],
        BF16,
        (IDENTITY, "f16 → bf16 conversion", "easy"),
    );
    m.from(
        "trained/G-ft-jargon",
        "int4",
        vec![Op::Int4(32)],
        F16,
        (QUANT, "4-bit block-32 round trip", "medium"),
    );
    m.from(
        "trained/G-cpt",
        "permute",
        vec![Op::PermuteMlp],
        F16,
        (STRUCT, "MLP hidden units permuted (evasion)", "hard"),
    );
    m.from(
        "trained/L-seed2",
        "int4",
        vec![Op::Int4(32)],
        F16,
        (QUANT, "4-bit block-32 round trip", "medium"),
    );
    m.from(
        "trained/L-seed2",
        "permute",
        vec![Op::PermuteMlp],
        F16,
        (STRUCT, "MLP hidden units permuted (evasion)", "hard"),
    );
    m.from(
        "trained/L-otherdata",
        "lora-all",
        vec![Op::Lora(LLAMA_ALL, 16, 0.5)],
        F16,
        (ADAPTER, "LoRA r16 on all linears", "hard"),
    );
    m.from(
        "trained/G-seed2",
        "int8",
        vec![Op::Int8],
        F16,
        (QUANT, "int8 per-channel round trip", "easy"),
    );

    // Merges: of two derivatives, and of two independent models (related to both parents).
    let merge = |a: &str, b: &str, t: f32, slerp: bool| Base::Merge {
        a: a.into(),
        b: b.into(),
        t,
        slerp,
    };
    m.add(
        "gen/L-merge-linear".into(),
        merge("trained/L-ft-shakespeare", "trained/L-cpt", 0.5, false),
        vec![],
        F16,
        MERGE,
        "linear merge t=0.5",
        "medium",
    );
    m.add(
        "gen/L-merge-slerp".into(),
        merge(
            "trained/L-cpt-ft-jargon",
            "trained/L-ft-shakespeare",
            0.4,
            true,
        ),
        vec![],
        F16,
        MERGE,
        "SLERP merge t=0.4",
        "medium",
    );
    m.add(
        "gen/L-merge-seeds".into(),
        merge("trained/L-base", "trained/L-seed2", 0.5, false),
        vec![],
        F16,
        MERGE,
        "linear merge of two independent models t=0.5",
        "hard",
    );
    m.add(
        "gen/G-merge-linear".into(),
        merge("trained/G-ft-jargon", "trained/G-cpt", 0.5, false),
        vec![],
        F16,
        MERGE,
        "linear merge t=0.5",
        "medium",
    );
    m.add(
        "gen/G-merge-slerp-seeds".into(),
        merge("trained/G-base", "trained/G-seed2", 0.5, true),
        vec![],
        F16,
        MERGE,
        "SLERP merge of two independent models t=0.5",
        "hard",
    );

    // Synthetic independents.
    let llama_dims = Spec {
        family: Family::Llama,
        layers: 4,
        hidden: 64,
        intermediate: 176,
        heads: 4,
        vocab: 2048,
        seed: 77,
    };
    m.add(
        "gen/synth-llama-Ldims".into(),
        Base::Synth {
            spec: llama_dims,
            tokenizer_from: None,
            vocab: 2048,
        },
        vec![],
        F16,
        "architectural-convergence",
        "synthetic Llama with L-base's dimensions",
        "easy",
    );
    let gpt2 = Spec {
        family: Family::Gpt2,
        layers: 3,
        hidden: 48,
        intermediate: 192,
        heads: 4,
        vocab: 2048,
        seed: 78,
    };
    m.add(
        "gen/synth-gpt2-Ltok".into(),
        Base::Synth {
            spec: gpt2,
            tokenizer_from: Some("trained/L-base".into()),
            vocab: 2048,
        },
        vec![],
        F16,
        "shared-vocabulary-only",
        "synthetic GPT-2 with L-base's tokenizer",
        "easy",
    );

    // The real MiniLM: a few derivations (it is 90 MB; everything is written in 16 bits).
    let minilm = MINILM;
    m.from(
        minilm,
        "f16",
        vec![],
        F16,
        (IDENTITY, "f32 → f16 conversion", "easy"),
    );
    m.from(
        minilm,
        "bf16-renamed-sharded",
        vec![Op::Rename(BERT_PREFIX)],
        BF16,
        (IDENTITY, "bf16, `bert.` prefix, 3 shards", "easy"),
    );
    if let Some(r) = m.out.last_mut() {
        r.shards = 3;
    }
    m.from(
        minilm,
        "int8",
        vec![Op::Int8],
        F16,
        (QUANT, "int8 per-channel round trip", "easy"),
    );
    m.from(
        minilm,
        "int4",
        vec![Op::Int4(32)],
        F16,
        (QUANT, "4-bit block-32 round trip", "medium"),
    );
    m.from(
        minilm,
        "drop-layers",
        vec![Op::DropLayers(vec![1, 3, 5])],
        F16,
        (STRUCT, "every other layer removed (6 → 3)", "medium"),
    );
    m.from(
        minilm,
        "vocab-prune",
        vec![Op::PruneVocab(0.5)],
        F16,
        (VOCAB, "[unused] and half the words removed", "medium"),
    );
    m.from(
        minilm,
        "lora-all",
        vec![Op::Lora(BERT_ALL, 16, 0.3)],
        F16,
        (ADAPTER, "LoRA r16 on all linears, |ΔW| = 0.3|W|", "medium"),
    );
    m.from(
        minilm,
        "permute",
        vec![Op::PermuteMlp],
        F16,
        (STRUCT, "MLP hidden units permuted (evasion)", "hard"),
    );
    m.add(
        "gen/minilm-merge-slerp".into(),
        merge("gen/minilm--lora-all", "gen/minilm--int4", 0.5, true),
        vec![],
        F16,
        MERGE,
        "SLERP merge of two derivatives t=0.5",
        "easy",
    );
    m.from(
        minilm,
        "fresh",
        vec![Op::FreshInit],
        F16,
        (
            "same-architecture-independent-runs",
            "fresh init of the same config",
            "easy",
        ),
    );
    let bert = Spec {
        family: Family::Bert,
        layers: 4,
        hidden: 64,
        intermediate: 256,
        heads: 4,
        vocab: 1024,
        seed: 79,
    };
    m.add(
        "gen/synth-bert-minilm-tok".into(),
        Base::Synth {
            spec: bert,
            tokenizer_from: Some(minilm.into()),
            vocab: 30522,
        },
        vec![],
        F16,
        "shared-vocabulary-only",
        "synthetic BERT with MiniLM's tokenizer",
        "easy",
    );
    // Added in session 10, last so that every earlier recipe keeps its seed (seeds follow the list order).
    for base in ["trained/L-base", "trained/G-base"] {
        m.from(
            base,
            "permute-residual",
            vec![Op::PermuteResidual],
            F16,
            (
                STRUCT,
                "residual-stream channels permuted in every tensor (evasion)",
                "hard",
            ),
        );
    }
    m.from(
        minilm,
        "permute-residual",
        vec![Op::PermuteResidual, Op::Int8],
        F16,
        (
            STRUCT,
            "residual-stream channels permuted in every tensor → int8 round trip (evasion)",
            "hard",
        ),
    );
    m.from(
        "trained/L-base",
        "prune-width",
        vec![Op::PruneWidth(48)],
        F16,
        (
            STRUCT,
            "width pruning: 48 of 64 residual channels kept by importance, not healed",
            "hard",
        ),
    );
    m.from(
        "trained/L-cpt",
        "prune-width-int4",
        vec![Op::PruneWidth(40), Op::Int4(32)],
        F16,
        (
            STRUCT,
            "width pruning: 40 of 64 residual channels kept → 4-bit block-32 round trip",
            "hard",
        ),
    );
    // Added in session 11, last for the same reason: models built from more or larger weights than a parent's.
    m.add(
        "gen/L-base--upscale-depth".into(),
        Base::Stack(vec![
            ("trained/L-base".into(), 0, 3),
            ("trained/L-base".into(), 1, 4),
        ]),
        vec![],
        F16,
        STRUCT,
        "depth up-scaling (SOLAR): layers 0-2 and 1-3 stacked, 4 → 6 layers",
        "medium",
    );
    m.add(
        "gen/G-base--upscale-depth".into(),
        Base::Stack(vec![
            ("trained/G-base".into(), 0, 2),
            ("trained/G-base".into(), 1, 3),
        ]),
        vec![Op::Int8],
        F16,
        STRUCT,
        "depth up-scaling: layers 0-1 and 1-2 stacked, 3 → 4 layers → int8 round trip",
        "medium",
    );
    m.add(
        "gen/L-frankenmerge".into(),
        Base::Stack(vec![
            ("trained/L-ft-shakespeare".into(), 0, 3),
            ("trained/L-cpt-ft-jargon".into(), 1, 4),
        ]),
        vec![],
        F16,
        MERGE,
        "passthrough frankenmerge: layers 0-2 of one fine-tune, 1-3 of another",
        "hard",
    );
    m.add(
        "gen/L-frankenmerge-seeds".into(),
        Base::Stack(vec![
            ("trained/L-seed2".into(), 0, 2),
            ("trained/L-otherdata".into(), 2, 4),
        ]),
        vec![],
        F16,
        MERGE,
        "passthrough frankenmerge of two independent models: layers 0-1 of one, 2-3 of the other",
        "hard",
    );
    m.from(
        "trained/L-base",
        "grow-width",
        vec![Op::GrowWidth(96), Op::Noise(0.5)],
        F16,
        (
            STRUCT,
            "scaled transfer: residual stream widened 64 → 96 by channel copies, then noise of half the weights",
            "hard",
        ),
    );
    m.from(
        "trained/L-base",
        "upcycle-moe",
        vec![Op::UpcycleMoe(4)],
        F16,
        (
            STRUCT,
            "sparse upcycling: every MLP copied into 4 experts (Mixtral layout)",
            "medium",
        ),
    );
    m.from(
        "trained/L-ft-heavy",
        "upcycle-moe-int4",
        vec![Op::UpcycleMoe(8), Op::Int4(32)],
        F16,
        (
            STRUCT,
            "sparse upcycling into 8 experts → 4-bit block-32 round trip",
            "hard",
        ),
    );
    m.add(
        "gen/L-ties".into(),
        Base::TaskMerge {
            base: "trained/L-base".into(),
            models: vec![
                "trained/L-ft-shakespeare".into(),
                "trained/L-cpt".into(),
                "trained/L-ft-heavy".into(),
            ],
            method: TaskMerge::Ties,
            density: 0.3,
        },
        vec![],
        F16,
        MERGE,
        "TIES merge of three fine-tunes, density 0.3",
        "medium",
    );
    m.add(
        "gen/L-dare".into(),
        Base::TaskMerge {
            base: "trained/L-base".into(),
            models: vec![
                "trained/L-ft-shakespeare".into(),
                "trained/L-cpt-ft-jargon".into(),
            ],
            method: TaskMerge::Dare,
            density: 0.1,
        },
        vec![],
        F16,
        MERGE,
        "DARE merge of two fine-tunes, density 0.1 (90% of each task vector dropped, the rest ×10)",
        "medium",
    );
    m.from(
        "trained/L-cpt",
        "fused-int8",
        vec![Op::FuseProjections, Op::Int8],
        F16,
        (
            IDENTITY,
            "converted to Phi-3's fused qkv_proj/gate_up_proj layout → int8 round trip",
            "medium",
        ),
    );
    out
}
