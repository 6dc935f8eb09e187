//! Test helpers: small synthetic fingerprints with a known lineage (unit tests only).

use crate::anchors::{ANCHORS, ANCHOR_SET_VERSION};
use crate::sampling::splitmix64;
use crate::schema::*;

/// An approximately normal value with unit variance (a sum of four uniforms), from a hash of `key`.
pub(crate) fn normal(seed: u64, key: u64) -> f64 {
    let h = splitmix64(seed ^ splitmix64(key));
    let s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48);
    (s as f64 / 65535.0 - 2.0) * 3f64.sqrt()
}

/// `n` pseudo-random `i8` vectors of `dim` values (xorshift), record `i` at `i*dim..`.
pub fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<i8> {
    let mut x = seed;
    (0..n * dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 200) as i8
        })
        .collect()
}

/// A fingerprint of lineage `lineage` with relative noise `noise` (seeded by `own`): same lineage and small
/// noise means related.
pub fn fingerprint(id: &str, lineage: u64, noise: f64, own: u64) -> Fingerprint {
    let norm = (1.0 + noise * noise).sqrt();
    let value = |key: u64| (normal(lineage, key) + noise * normal(own ^ 0xabc, key)) / norm;
    let roles = ["attn_q", "attn_o", "mlp_up", "mlp_down"];
    let mut m = TensorSamples {
        roles: roles.iter().map(|s| s.to_string()).collect(),
        shapes: vec![[64, 64]],
        ..Default::default()
    };
    for layer in 0..8u16 {
        for role in 0..4u16 {
            let start = m.values.len() as u32;
            for t in 0..256u64 {
                let key = (layer as u64) << 40 | (role as u64) << 32 | t;
                m.values.push(quantize_sample(value(key)));
            }
            m.entries.push(TensorEntry {
                stack: Stack::Main,
                layer,
                role,
                shape: 0,
                len: 256,
                start,
                log_rms: -3.0 + 0.05 * layer as f32,
            });
        }
    }
    let k = 64usize;
    let mut presence = vec![0u64; ANCHORS.len().div_ceil(64)];
    presence[0] = u64::MAX;
    let mut gram = Vec::new();
    for i in 0..k {
        for j in i + 1..k {
            gram.push(quantize_cosine(
                0.2 * value(1 << 50 | (i * 1000 + j) as u64),
            ));
        }
    }
    let row_samples = (0..k * 16)
        .map(|t| quantize_sample(value(1 << 51 | t as u64)))
        .collect();
    Fingerprint {
        version: FINGERPRINT_VERSION,
        source: Source {
            id: id.into(),
            revision: None,
            format: SourceFormat::Safetensors,
            quantization: None,
            files: vec![],
            content_digest: format!("{:064x}", splitmix64(own ^ lineage) as u128),
            total_bytes: 0,
            dtypes: vec!["F32".into()],
            parameter_count: 1_000_000,
            tensor_count: 33,
        },
        metadata: Metadata {
            model_type: "llama".into(),
            architectures: vec!["LlamaForCausalLM".into()],
            arch_hash: "arch".into(),
            ..Default::default()
        },
        tokenizer: None,
        weights: WeightSignals {
            embedding: Some(EmbeddingSignals {
                anchor_set_version: ANCHOR_SET_VERSION,
                tensor: "embed".into(),
                rows: 1000,
                hidden: 64,
                presence,
                gram,
                row_samples,
                samples_per_row: 16,
                anchor_log_norms: (0..k).map(|i| value(1 << 52 | i as u64) as f32).collect(),
                norm_quantiles: vec![0.0; 33],
                channel_ids: Vec::new(),
                channel_profiles: Vec::new(),
            }),
            matrices: m,
            norms: TensorSamples::default(),
            notes: vec![],
        },
    }
}

/// Embedding signals with anchors `0..anchors` present and one channel profile per entry of `channels`
/// (`(channel id, standardised values at the anchors)`), nothing else: what channel matching and channel
/// codes read.
pub fn profiled_signals(anchors: usize, channels: &[(u32, Vec<f64>)]) -> EmbeddingSignals {
    let mut presence = vec![0u64; anchors.div_ceil(64)];
    for i in 0..anchors {
        presence[i / 64] |= 1 << (i % 64);
    }
    EmbeddingSignals {
        anchor_set_version: ANCHOR_SET_VERSION,
        presence,
        anchor_log_norms: vec![0.0; anchors],
        channel_ids: channels.iter().map(|(id, _)| *id).collect(),
        channel_profiles: channels
            .iter()
            .flat_map(|(_, p)| p.iter().map(|&v| quantize_sample(v)))
            .collect(),
        ..Default::default()
    }
}
