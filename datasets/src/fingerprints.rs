//! Synthetic *fingerprints* (not checkpoints) with planted families, for the index's scale benchmark and tests.
//!
//! A corpus of `count` fingerprints is a sequence of families. Each family has a root model (an independent
//! training run of some architecture) and derivatives made the way real ones are: quantisations and light
//! fine-tunes (small noise), heavy fine-tunes (noise as large as the weights or larger), layer-pruned copies,
//! distilled students of another width (only the dimension-free embedding geometry survives), and derivatives
//! of derivatives. Architectures are shared across families, as on the Hub, so same-config unrelated models
//! are common. Fingerprints are sized like real ones (≈ 45 KiB: 16 K matrix samples, 4 K norm samples,
//! 150–214 anchors with their Gram matrix).
//!
//! Every fingerprint is a deterministic function of `(corpus seed, index)`: [`Corpus::fingerprint`] can be
//! called in any order and in parallel.

use crate::rng::Rng;
use provsearch_index::anchors::{ANCHORS, ANCHOR_SET_VERSION};
use provsearch_index::schema::{
    quantize_cosine, quantize_sample, EmbeddingSignals, Fingerprint, Metadata, Source,
    SourceFormat, Stack, TensorEntry, TensorSamples, TokenizerSignals, WeightSignals,
    CHANNEL_PROFILES, FINGERPRINT_VERSION, NO_LAYER,
};

/// One architecture of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    /// 0 llama-like, 1 gpt2-like, 2 bert-like.
    pub kind: u8,
    /// Layers.
    pub layers: u16,
    /// Hidden size.
    pub hidden: u32,
    /// MLP width.
    pub intermediate: u32,
    /// Vocabulary (tokenizer family index: which anchors are present).
    pub vocab: u8,
}

/// How a model relates to its family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    /// The family's root (an independent training run).
    Root,
    /// Noise of relative size `sigma` added to the parent's weights.
    Tuned {
        /// Noise-to-weight ratio.
        sigma: f64,
    },
    /// Every `keep`-th layer of the parent, then noise.
    Pruned {
        /// Keep every `keep`-th layer.
        keep: u16,
        /// Noise-to-weight ratio.
        sigma: f64,
    },
    /// Width pruning (Minitron, Sheared-LLaMA): three quarters of the parent's residual channels kept, in
    /// another order, then noise. No tensor keeps its shape, so only the embedding channels (and the Gram)
    /// carry the lineage; the composite vector cannot find such a relative, the channel codes can.
    WidthPruned {
        /// Noise-to-weight ratio.
        sigma: f64,
    },
    /// A student of another width: fresh matrices, the parent's embedding geometry with noise.
    Distilled {
        /// Noise on the Gram entries.
        sigma: f64,
    },
}

/// Where a fingerprint sits in the corpus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planted {
    /// Family number.
    pub family: u32,
    /// Index (in the corpus) of the parent; `None` for a root.
    pub parent: Option<u32>,
    /// Index of the family's root.
    pub root: u32,
    /// The derivation.
    pub role: Role,
}

/// A corpus plan: which index is which model.
#[derive(Debug, Clone)]
pub struct Corpus {
    seed: u64,
    archs: Vec<Arch>,
    plan: Vec<Planted>,
    family_arch: Vec<u16>,
}

const ROLES_LLAMA: [&str; 7] = [
    "attn_q", "attn_k", "attn_v", "attn_o", "mlp_gate", "mlp_up", "mlp_down",
];
const ROLES_GPT2: [&str; 4] = ["attn_qkv", "attn_o", "mlp_up", "mlp_down"];
const ROLES_BERT: [&str; 6] = ["attn_q", "attn_k", "attn_v", "attn_o", "mlp_up", "mlp_down"];
/// Anchors present per tokenizer family (the rest are unresolved in that vocabulary).
const VOCAB_PRESENT: [usize; 3] = [214, 190, 160];
const MATRIX_BUDGET: usize = 16_384;
const NORM_BUDGET: usize = 4_096;
const ROW_SAMPLES: usize = 32;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A fast approximately normal variate from a hash (sum of four uniforms, rescaled): plenty for i8 samples.
fn hnormal(h: u64) -> f64 {
    let s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48);
    (s as f64 / 65535.0 - 2.0) * 3f64.sqrt()
}

/// Latent standardised value of `(model seed, key, t)`.
fn latent(seed: u64, key: u64, t: u64) -> f64 {
    latent_at(seed, position(key, t))
}

/// The model-independent half of [`latent`]'s hash, shared by every model of a derivation chain.
fn position(key: u64, t: u64) -> u64 {
    splitmix64(key ^ t.wrapping_mul(0xA076_1D64_78BD_642F))
}

fn latent_at(seed: u64, position: u64) -> f64 {
    hnormal(splitmix64(seed ^ position))
}

impl Corpus {
    /// Plan a corpus of `count` fingerprints. Families have 1 root and on average ~4 derivatives.
    pub fn new(count: usize, seed: u64) -> Corpus {
        let mut rng = Rng::new(seed);
        let mut archs = Vec::new();
        for kind in 0..3u8 {
            for &(layers, hidden) in &[
                (4u16, 256u32),
                (6, 384),
                (12, 768),
                (16, 1024),
                (22, 2048),
                (24, 1024),
                (28, 3072),
                (32, 4096),
                (40, 5120),
                (80, 8192),
            ] {
                archs.push(Arch {
                    kind,
                    layers,
                    hidden,
                    intermediate: hidden * if kind == 0 { 8 } else { 4 }
                        / if kind == 0 { 3 } else { 1 },
                    vocab: kind,
                });
            }
        }
        let mut plan: Vec<Planted> = Vec::with_capacity(count);
        let mut family_arch = Vec::new();
        while plan.len() < count {
            let family = family_arch.len() as u32;
            // Popular architectures are reused by many independent families.
            let arch = (rng.below(archs.len()) * rng.below(archs.len())) / archs.len();
            family_arch.push(arch as u16);
            let root = plan.len() as u32;
            plan.push(Planted {
                family,
                parent: None,
                root,
                role: Role::Root,
            });
            let size = 1 + (-(rng.uniform().max(1e-9)).ln() * 4.0) as usize;
            for _ in 1..size.min(200) {
                if plan.len() >= count {
                    break;
                }
                let members = plan.len() as u32 - root;
                let parent = if rng.uniform() < 0.3 {
                    root + rng.below(members as usize) as u32
                } else {
                    root
                };
                // Distillation and pruning derive from non-distilled, unpruned members only.
                let parent_role = plan[parent as usize].role;
                let u = rng.uniform();
                let role = if matches!(
                    parent_role,
                    Role::Distilled { .. } | Role::Pruned { .. } | Role::WidthPruned { .. }
                ) || u < 0.42
                {
                    Role::Tuned {
                        sigma: 0.02 + 0.5 * rng.uniform(),
                    }
                } else if u < 0.45 {
                    Role::WidthPruned {
                        sigma: 0.05 + 0.4 * rng.uniform(),
                    }
                } else if u < 0.75 {
                    Role::Tuned {
                        sigma: 0.5 + 2.0 * rng.uniform(),
                    }
                } else if u < 0.9 {
                    Role::Pruned {
                        keep: 2,
                        sigma: 0.05 + 0.5 * rng.uniform(),
                    }
                } else {
                    Role::Distilled {
                        sigma: 0.1 + 0.3 * rng.uniform(),
                    }
                };
                plan.push(Planted {
                    family,
                    parent: Some(parent),
                    root,
                    role,
                });
            }
        }
        Corpus {
            seed,
            archs,
            plan,
            family_arch,
        }
    }

    /// Number of fingerprints.
    pub fn len(&self) -> usize {
        self.plan.len()
    }

    /// Whether the corpus is empty.
    pub fn is_empty(&self) -> bool {
        self.plan.is_empty()
    }

    /// The plan entry of fingerprint `i`.
    pub fn planted(&self, i: usize) -> Planted {
        self.plan[i]
    }

    /// The model id of fingerprint `i`.
    pub fn id(&self, i: usize) -> String {
        let p = self.plan[i];
        format!("org{}/family{}-m{}", p.family % 997, p.family, i)
    }

    /// The derivation chain from the root to `i`: (index, role) pairs, root first.
    fn chain(&self, i: usize) -> Vec<(usize, Role)> {
        let mut out = vec![(i, self.plan[i].role)];
        let mut at = i;
        while let Some(p) = self.plan[at].parent {
            at = p as usize;
            out.push((at, self.plan[at].role));
        }
        out.reverse();
        out
    }

    fn seed_of(&self, i: usize) -> u64 {
        splitmix64(self.seed ^ splitmix64(i as u64 + 1))
    }

    /// Build fingerprint `i`.
    pub fn fingerprint(&self, i: usize) -> Fingerprint {
        let p = self.plan[i];
        let chain = self.chain(i);
        let family_arch = self.archs[self.family_arch[p.family as usize] as usize];
        // Architecture as seen by this model: distillation halves the width, pruning halves the depth.
        let mut arch = family_arch;
        let mut layer_map: Vec<u16> = (0..arch.layers).collect();
        let mut matrices_from = chain[0].0; // whose weights this model's matrices descend from
                                            // Which lineage channel each profiled channel is (width pruning keeps some, reordered).
        let mut channel_source: Vec<u64> = (0..CHANNEL_PROFILES as u64).collect();
        let mut matrix_chain: Vec<(usize, f64)> = Vec::new();
        let mut gram_chain: Vec<(usize, f64)> = Vec::new();
        for &(idx, role) in &chain[1..] {
            match role {
                Role::Root => {}
                Role::Tuned { sigma } => {
                    matrix_chain.push((idx, sigma));
                    gram_chain.push((idx, sigma));
                }
                Role::Pruned { keep, sigma } => {
                    layer_map = layer_map.iter().step_by(keep as usize).copied().collect();
                    arch.layers = layer_map.len() as u16;
                    matrix_chain.push((idx, sigma));
                    gram_chain.push((idx, sigma));
                }
                Role::WidthPruned { sigma } => {
                    arch.hidden = arch.hidden * 3 / 4;
                    // The most variable channels of the child: three in four are the parent's (in another
                    // order), the rest channels the parent did not profile.
                    let seed = self.seed_of(idx);
                    let mut kept: Vec<u64> = channel_source
                        .iter()
                        .enumerate()
                        .filter(|&(c, _)| !splitmix64(seed ^ c as u64).is_multiple_of(4))
                        .map(|(_, &s)| s)
                        .collect();
                    kept.sort_by_key(|&s| splitmix64(seed ^ 0x9e1 ^ s));
                    let fresh = (0..).map(|c: u64| 1 << 20 | (idx as u64) << 8 | c);
                    channel_source = kept
                        .into_iter()
                        .chain(fresh)
                        .take(CHANNEL_PROFILES)
                        .collect();
                    matrix_chain.push((idx, sigma));
                    gram_chain.push((idx, sigma));
                }
                Role::Distilled { sigma } => {
                    arch.hidden /= 2;
                    arch.intermediate /= 2;
                    arch.layers = (arch.layers / 2).max(2);
                    layer_map = (0..arch.layers).collect();
                    matrices_from = idx;
                    matrix_chain.clear();
                    gram_chain.push((idx, sigma));
                }
            }
        }
        let root_seed = self.seed_of(chain[0].0);
        let mat_seed = self.seed_of(matrices_from);
        // Each derivation step mixes in its own noise: (seed, relative size, normaliser), computed once.
        let steps_of = |chain: &[(usize, f64)]| -> Vec<(u64, f64, f64)> {
            chain
                .iter()
                .map(|&(idx, sigma)| (self.seed_of(idx), sigma, (1.0 + sigma * sigma).sqrt()))
                .collect()
        };
        let (matrix_chain, gram_chain) = (steps_of(&matrix_chain), steps_of(&gram_chain));
        let value = |seed0: u64, steps: &[(u64, f64, f64)], key: u64, t: u64| -> f64 {
            let at = position(key, t);
            let mut x = latent_at(seed0, at);
            for &(seed, sigma, norm) in steps {
                x = (x + sigma * latent_at(seed, at)) / norm;
            }
            x
        };

        let roles: &[&str] = match arch.kind {
            0 => &ROLES_LLAMA,
            1 => &ROLES_GPT2,
            _ => &ROLES_BERT,
        };
        let (h, m) = (arch.hidden, arch.intermediate);
        let shape_of = |role: &str| -> [u32; 2] {
            match role {
                "attn_qkv" => [3 * h, h],
                "mlp_gate" | "mlp_up" => [m, h],
                "mlp_down" => [h, m],
                _ => [h, h],
            }
        };
        let mut matrices = TensorSamples {
            roles: roles.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let mut norms = TensorSamples {
            roles: vec!["norm_attn".into(), "norm_mlp".into()],
            ..Default::default()
        };
        let n_mat = arch.layers as usize * roles.len();
        let per_matrix = (MATRIX_BUDGET / n_mat.max(1)).clamp(8, 512);
        let n_norm = arch.layers as usize * 2 + 1;
        let per_norm = (NORM_BUDGET / n_norm).clamp(8, 64);
        let mut shapes: Vec<[u32; 2]> = Vec::new();
        let shape_index = |s: [u32; 2], shapes: &mut Vec<[u32; 2]>| -> u16 {
            match shapes.iter().position(|x| *x == s) {
                Some(i) => i as u16,
                None => {
                    shapes.push(s);
                    (shapes.len() - 1) as u16
                }
            }
        };
        let profile_seed = splitmix64(mat_seed ^ 0x1e9);
        for (new_layer, &orig_layer) in layer_map.iter().enumerate() {
            for (r, role) in roles.iter().enumerate() {
                let shape = shape_of(role);
                let si = shape_index(shape, &mut shapes);
                let key =
                    splitmix64(((orig_layer as u64) << 8 | r as u64) ^ ((shape[0] as u64) << 40));
                let start = matrices.values.len() as u32;
                for t in 0..per_matrix as u64 {
                    matrices
                        .values
                        .push(quantize_sample(value(mat_seed, &matrix_chain, key, t)));
                }
                let depth = orig_layer as f64 / family_arch.layers.max(1) as f64;
                let log_rms = -3.0
                    + 0.4 * depth
                    + 0.05 * r as f64
                    + 0.05 * hnormal(splitmix64(profile_seed ^ key));
                matrices.entries.push(TensorEntry {
                    stack: Stack::Main,
                    layer: new_layer as u16,
                    role: r as u16,
                    shape: si,
                    len: per_matrix as u16,
                    start,
                    log_rms: log_rms as f32,
                });
            }
        }
        matrices.shapes = shapes;
        let norm_shape = [1, h];
        norms.shapes = vec![norm_shape];
        let mut norm_entries: Vec<(u16, u16, u64)> = Vec::new();
        for (new_layer, &orig_layer) in layer_map.iter().enumerate() {
            for r in 0..2u16 {
                norm_entries.push((
                    new_layer as u16,
                    r,
                    (orig_layer as u64) << 8 | r as u64 | 1 << 60,
                ));
            }
        }
        norm_entries.push((NO_LAYER, 0, 1 << 61));
        for (layer, r, key) in norm_entries {
            let start = norms.values.len() as u32;
            for t in 0..per_norm as u64 {
                norms
                    .values
                    .push(quantize_sample(value(mat_seed, &matrix_chain, key, t)));
            }
            norms.entries.push(TensorEntry {
                stack: Stack::Main,
                layer,
                role: r,
                shape: 0,
                len: per_norm as u16,
                start,
                log_rms: 0.0,
            });
        }

        // Embedding: anchors present in this vocabulary, Gram cosines = shared "language" geometry + lineage.
        let present_count = VOCAB_PRESENT[arch.vocab as usize % 3].min(ANCHORS.len());
        let present: Vec<usize> = (0..present_count).collect();
        let mut presence = vec![0u64; ANCHORS.len().div_ceil(64)];
        for &a in &present {
            presence[a / 64] |= 1 << (a % 64);
        }
        let k = present.len();
        let mut gram = Vec::with_capacity(k * (k - 1) / 2);
        // Independent language models share a semantic geometry (EAS baseline ≈ 0.6).
        let semantic = 0.77;
        for i in 0..k {
            for j in i + 1..k {
                let key = (present[i] as u64) << 32 | present[j] as u64 | 1 << 62;
                let shared = latent(0x5e3a_471c, key, 0);
                let own = value(root_seed, &gram_chain, key, 0);
                let g = 0.12 * (semantic * shared + (1.0f64 - semantic * semantic).sqrt() * own);
                gram.push(quantize_cosine(g + 0.05));
            }
        }
        let mut row_samples = Vec::with_capacity(k * ROW_SAMPLES);
        for &a in &present {
            for t in 0..ROW_SAMPLES as u64 {
                let key = (a as u64) | 1 << 63 | (h as u64) << 20;
                row_samples.push(quantize_sample(value(mat_seed, &matrix_chain, key, t)));
            }
        }
        // Channel profiles: lineage-correlated like the weight samples, so relatives pair their channels.
        let channels = (h as usize).min(CHANNEL_PROFILES);
        let channel_profiles = channel_source[..channels]
            .iter()
            .flat_map(|&c| present.iter().map(move |&a| (c, a)))
            .map(|(c, a)| {
                let key = (a as u64) | c << 40 | 5 << 58;
                quantize_sample(value(mat_seed, &matrix_chain, key, 0))
            })
            .collect();
        let anchor_log_norms = present
            .iter()
            .map(|&a| {
                let key = a as u64 | 3 << 58;
                let shared = latent(0x5e3a_471c, key, 1);
                let own = value(root_seed, &gram_chain, key, 1);
                (0.2 * (semantic * shared + 0.6 * own)) as f32
            })
            .collect();
        let embedding = EmbeddingSignals {
            anchor_set_version: ANCHOR_SET_VERSION,
            tensor: "model.embed_tokens.weight".into(),
            rows: 32_000,
            hidden: h,
            presence,
            gram,
            row_samples,
            samples_per_row: ROW_SAMPLES as u16,
            anchor_log_norms,
            norm_quantiles: (0..33).map(|q| (q as f32 - 16.0) / 40.0).collect(),
            channel_ids: (0..channels as u32).collect(),
            channel_profiles,
        };

        let model_type = ["llama", "gpt2", "bert"][arch.kind as usize % 3];
        let arch_hash = format!(
            "{:016x}",
            splitmix64((arch.kind as u64) << 48 | (arch.layers as u64) << 32 | arch.hidden as u64)
        );
        let parameter_count = arch.layers as u64
            * (4 * h as u64 * h as u64 + 3 * h as u64 * m as u64)
            + 32_000 * h as u64;
        let declared = match p.parent {
            Some(parent) if splitmix64(self.seed_of(i) ^ 7) % 10 < 4 => {
                vec![self.id(parent as usize)]
            }
            _ => vec![],
        };
        let content = format!(
            "{:016x}{:016x}",
            self.seed_of(i),
            splitmix64(self.seed_of(i))
        );
        Fingerprint {
            version: FINGERPRINT_VERSION,
            source: Source {
                id: self.id(i),
                revision: Some(format!("{:040x}", self.seed_of(i) as u128 * 31)),
                format: SourceFormat::Safetensors,
                quantization: None,
                files: vec![],
                content_digest: content.repeat(2),
                total_bytes: parameter_count * 2,
                dtypes: vec!["BF16".into()],
                parameter_count,
                tensor_count: (n_mat + n_norm + 1) as u32,
            },
            metadata: Metadata {
                model_type: model_type.into(),
                architectures: vec![format!("{}ForCausalLM", model_type)],
                hidden_size: h,
                num_layers: arch.layers as u32,
                intermediate_size: m,
                vocab_size: 32_000,
                arch_hash,
                family_hash: format!("{:016x}", arch.kind),
                declared_base_models: declared,
                license: Some(["apache-2.0", "mit", "llama2"][p.family as usize % 3].into()),
                tags: vec!["text-generation".into()],
                norm_type: "RMSNorm".into(),
                attention_style: "MHA".into(),
                pos_encoding: "RoPE".into(),
                ..Default::default()
            },
            tokenizer: Some(TokenizerSignals {
                model_kind: "BPE".into(),
                convention: "metaspace".into(),
                vocab_size: 32_000,
                vocab_hash: format!("vocab{}", arch.vocab),
                ..Default::default()
            }),
            weights: WeightSignals {
                embedding: Some(embedding),
                matrices,
                norms,
                notes: vec![],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provsearch_index::score::compare;

    #[test]
    fn deterministic_and_sized_like_real_fingerprints() {
        let c = Corpus::new(50, 1);
        assert_eq!(c.len(), 50);
        let a = c.fingerprint(3);
        assert_eq!(a, c.fingerprint(3));
        let size = a.archived_size();
        assert!((20_000..64 * 1024).contains(&size), "{size}");
    }

    #[test]
    fn planted_relatives_are_related_and_roots_are_not() {
        let c = Corpus::new(200, 2);
        let mut checked = 0;
        for i in 0..c.len() {
            let p = c.planted(i);
            if let (Some(parent), Role::Tuned { sigma }) = (p.parent, p.role) {
                if sigma < 1.0 {
                    let r = compare(&c.fingerprint(i), &c.fingerprint(parent as usize));
                    assert_eq!(r.related, Some(true), "{i} vs {parent}: {:?}", r.evidence);
                    checked += 1;
                }
            }
        }
        assert!(checked > 10);
        // Width-pruned members keep no shape of their parent; their channels still make them related.
        let c = Corpus::new(2000, 3);
        let mut pruned = 0;
        for i in 0..c.len() {
            let p = c.planted(i);
            if let (Some(parent), Role::WidthPruned { .. }) = (p.parent, p.role) {
                let r = compare(&c.fingerprint(i), &c.fingerprint(parent as usize));
                assert_eq!(r.signals.wvc.similarity, None, "{i}: no shape in common");
                assert_eq!(r.related, Some(true), "{i} vs {parent}: {:?}", r.evidence);
                pruned += 1;
            }
        }
        assert!(pruned >= 5, "{pruned}");
        let roots: Vec<usize> = (0..c.len())
            .filter(|&i| c.planted(i).parent.is_none())
            .collect();
        for w in roots.windows(2).take(20) {
            let r = compare(&c.fingerprint(w[0]), &c.fingerprint(w[1]));
            assert_eq!(r.related, Some(false), "{w:?}: {:?}", r.evidence);
        }
    }
}
