//! Comparing two fingerprints: per-signal similarities, the identity score, the verdict and its evidence.
//!
//! Each weight signal yields a raw similarity and an *evidence score* in [0, 1] measuring how far it stands
//! above what independent models show:
//! - positional signals (WVC, NLF) have an exact null: independent weights correlate 0 ± 1/√n, so the
//!   evidence is `z / z_saturation` with `z = atanh(r)·√n`; a weight correlation of 0.3 over 10,000 samples is
//!   thirty standard deviations and saturates, whatever noise was added on top;
//! - token-keyed signals (EAS, END) and LEP have a semantic baseline (independent models trained on language
//!   share some embedding geometry and layer-energy shape), so the evidence is the excess over that baseline,
//!   `(sim − baseline) / (1 − baseline)`;
//! - embedding channels paired by content ([`channels`]) count in WVC's slot when they are the stronger
//!   evidence, scored against a baseline too ([`CHANNEL_BASELINE`]): they find a model's weights when its
//!   channels were pruned, grown or reordered, which leaves no aligned position.
//!
//! The identity score is the NaN-aware weighted mean of the evidence scores; the verdict is "related" when it
//! reaches the threshold. Lineage needs weight-value evidence: when no tensors of matching role and shape
//! exist (different widths) and no embedding channels pair either, the score is scaled below the threshold,
//! because embedding geometry and layer profiles are shared by independent models trained on the same data. Metadata (MFI) and tokenizer signals
//! (TFV, VOA) are reported, never decisive.

pub mod anchors;
pub mod channels;
pub mod positional;
pub mod report;

use crate::schema::{Fingerprint, FINGERPRINT_VERSION};
use positional::{
    align_and_pool, anchor_row_pool, fisher_z, layer_energy_similarity, pooled, Pool,
};
use serde::{Deserialize, Serialize};

/// Without positional evidence the identity score is at most this fraction of the threshold.
pub const STRUCTURAL_ONLY_SCALE: f64 = 0.9;

/// Weight correlation (WVC r) below which the weights two models share may be no more than a random
/// initialisation they both started from (see [`shared_initialisation_only`]).
pub const SHARED_INIT_MAX_WVC: f64 = 0.4;

/// Norm-gain correlation (NLF r) below which the norms show no shared training (see
/// [`shared_initialisation_only`]).
pub const SHARED_INIT_MAX_NLF: f64 = 0.3;

/// Whether the positional evidence is what two models trained independently from the same random
/// initialisation (the same seed) leave, rather than shared training: the constitution's "same architecture in
/// independent runs, even with a shared seed" (Pythia and Pythia-deduped), which is not lineage.
///
/// Such models correlate far above the null at aligned positions (r ≈ 0.2 over thousands of samples is tens of
/// standard deviations), because their matrices still hold part of the common random start. Two things tell
/// them from derivatives. Training from a random start moves the weights much further than training from
/// trained weights does, so little of the start is left: the same-seed runs of the zoo keep WVC r 0.14–0.23
/// after 1000 steps, while a derivative trained three times as long as its parent's own training keeps 0.64,
/// and a copy with noise as large as the weights about 0.45–0.7. And norm gains start as constants, so the start
/// adds nothing to their correlation: the same-seed runs reach NLF r 0.06–0.20, the derivatives 0.34 and more.
/// Evasions that scramble the norms (NLF 0.15) keep their matrices (WVC ≥ 0.66). Both correlations must be
/// known and below [`SHARED_INIT_MAX_WVC`] and [`SHARED_INIT_MAX_NLF`]; without norm samples the rule cannot
/// tell and does not apply. Nor does it when the embedding channels match in full
/// ([`CHANNEL_SATURATION`]): a model whose residual channels were reordered keeps nothing at aligned
/// positions (WVC and NLF near 0), but its channels are its parent's, which a shared start does not give
/// (same-seed runs pair at most 3 channels at r ≤ 0.39).
pub fn shared_initialisation_only(s: &Signals) -> bool {
    let channels_match = s
        .channels
        .similarity
        .is_some_and(|r| r >= CHANNEL_SATURATION);
    !channels_match
        && matches!(
            (s.wvc.similarity, s.nlf.similarity),
            (Some(w), Some(n)) if w < SHARED_INIT_MAX_WVC && n < SHARED_INIT_MAX_NLF
        )
}

/// The factor the weighted evidence is multiplied by: 1 with weight-value evidence (WVC, NLF or paired
/// embedding channels: `positional`) that is more
/// than a shared random start, else [`STRUCTURAL_ONLY_SCALE`] of the threshold, so that the score stays below
/// it. Used by [`compare_with`] and by the calibration's recomputation alike.
pub fn evidence_scale(s: &Signals, positional: bool, threshold: f64) -> f64 {
    if positional && !shared_initialisation_only(s) {
        1.0
    } else {
        STRUCTURAL_ONLY_SCALE * threshold
    }
}

/// Positional correlation (WVC, NLF) below which two fingerprints cannot come from the same weight bytes: equal
/// bytes give equal samples at equal positions, r = 1 up to floating-point rounding. Anything less means some
/// sampled value differs, as after a fine-tune or a targeted edit however small (a derivative at r = 0.9999 must
/// not pass for its parent under a borrowed digest).
pub const SAME_BYTES_CORRELATION: f64 = 1.0 - 1e-9;

/// Signal names in the order of [`ScoreConfig::weights`].
pub const SIGNALS: [&str; 5] = ["eas", "end", "nlf", "lep", "wvc"];

/// Weights, baselines and threshold of the identity score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreConfig {
    /// Weights of EAS, END, NLF, LEP, WVC in the identity mean.
    pub weights: [f64; 5],
    /// Similarity that independent models typically reach, for EAS, END and LEP.
    pub baselines: [f64; 3],
    /// z at which positional evidence (WVC, NLF) counts in full.
    pub z_saturation: f64,
    /// Identity score at or above which a pair is related.
    pub threshold: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            // Weights, z saturation and threshold: fitted on the zoo's calibration split (docs/eval.md: zero false
            // positives, every weight ≥ 0.05, a 0.15 margin), reported on its report split. Positional weight
            // evidence dominates because embeddings and layer profiles score independent reproductions nearly
            // as high as derivatives.
            weights: [0.05, 0.05, 0.05, 0.05, 0.80],
            // Baselines: the highest similarity independent reproductions reached in the trained zoo (EAS 0.94,
            // END 0.97 at most; typical 0.6 and 0.8), rounded down: more conservative than the fit's 0.5/0.6.
            baselines: [0.8, 0.9, 0.85],
            z_saturation: 24.0,
            threshold: 0.51,
        }
    }
}

/// One signal's outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SignalScore {
    /// Raw similarity (a correlation in [-1, 1]); `None` when the signal is unavailable for this pair.
    pub similarity: Option<f64>,
    /// Paired samples, shared anchors or compared layers behind it.
    pub support: usize,
    /// Evidence in standard deviations above the independent-model null (positional signals only).
    pub z: Option<f64>,
    /// Evidence score in [0, 1] that enters the identity mean.
    pub evidence: Option<f64>,
}

/// All signals of a comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// Embedding anchor geometry.
    pub eas: SignalScore,
    /// Embedding anchor norms.
    pub end: SignalScore,
    /// Norm gains and biases at aligned positions.
    pub nlf: SignalScore,
    /// Layer energy profile.
    pub lep: SignalScore,
    /// Weight values at aligned positions (matrices and anchor rows).
    pub wvc: SignalScore,
    /// Embedding channels matched by their anchor profiles ([`channels::match_channels`]): pairs models whose
    /// widths differ or whose channels were reordered. Enters the identity score in WVC's slot, which takes
    /// the stronger evidence of the two ([`weight_value_evidence`]).
    #[serde(default)]
    pub channels: SignalScore,
    /// The channel match behind [`Signals::channels`]: pairs kept, and how many at the same index.
    #[serde(default)]
    pub channel_pairs: Option<(usize, usize)>,
    /// Config similarity (reported only), and its reference tier.
    pub mfi: Option<f64>,
    /// MFI tier (1 exact architecture, 2 family, 3 soft).
    pub mfi_tier: Option<u8>,
    /// Tokenizer feature similarity (reported only).
    pub tfv: Option<f64>,
    /// Vocabulary overlap, exact when both vocabularies were at hand, else MinHash-estimated (reported only).
    pub voa: Option<f64>,
}

/// The outcome of comparing two fingerprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Weighted mean of the evidence scores in [0, 1]; `None` when no weight signal is available.
    pub identity_score: Option<f64>,
    /// Whether the models share weight lineage; `None` when undecidable.
    pub related: Option<bool>,
    /// Short label: "identical", "related", "not related", "undecidable".
    pub verdict: String,
    /// Per-signal results.
    pub signals: Signals,
    /// Whether the weight files are byte-identical (same content digest).
    pub identical_weights: bool,
    /// How layers were paired, when the layer counts differ.
    pub layer_alignment: Option<String>,
    /// Human-readable evidence lines.
    pub evidence: Vec<String>,
}

fn positional_score(pool: &Pool, penalty: f64, config: &ScoreConfig) -> SignalScore {
    let z = pool.z().map(|z| z - penalty);
    SignalScore {
        similarity: pool.r(),
        support: pool.n,
        z,
        evidence: z.map(|z| (z / config.z_saturation).clamp(0.0, 1.0)),
    }
}

/// Held-out correlation of matched channels that independent models stay below: the zoo's independent pairs
/// reach 0.29 (and match at most 7 of 32 channels), all-MiniLM-L6-v2 against all-mpnet-base-v2 matches none.
pub const CHANNEL_BASELINE: f64 = 0.35;

/// Held-out correlation of matched channels at which the evidence is full: derivatives in the zoo keep
/// 0.62-0.99, a width-pruned MiniLM with noise as large as its weights 0.62-0.68.
pub const CHANNEL_SATURATION: f64 = 0.65;

/// The channel match's score. Unlike positional samples, channel profiles have no exact null: models trained
/// on similar text can share a feature on a channel (a privileged basis), so independent models' matched
/// channels correlate somewhat (r up to 0.29 in the zoo, tens of "standard deviations" over hundreds of
/// values). The evidence is therefore the excess over that baseline, as for EAS and END; `z` is reported only.
fn channel_score(m: &channels::ChannelMatch) -> SignalScore {
    let z = m.r.map(|r| fisher_z(r, m.support));
    SignalScore {
        similarity: m.r,
        support: m.support,
        z,
        evidence: m.r.map(|r| {
            ((r - CHANNEL_BASELINE) / (CHANNEL_SATURATION - CHANNEL_BASELINE)).clamp(0.0, 1.0)
        }),
    }
}

/// Evidence of the weight values (the WVC slot of the identity score): the stronger of the aligned positions
/// (`positional`, WVC's own evidence) and the matched embedding channels. A model whose channels were pruned,
/// grown or reordered keeps no aligned position with its parent but keeps its parent's channels.
pub fn weight_value_evidence(positional: Option<f64>, channels: &SignalScore) -> Option<f64> {
    match (positional, channels.evidence) {
        (Some(p), Some(c)) => Some(p.max(c)),
        (p, c) => p.or(c),
    }
}

fn baseline_score(result: Option<(f64, usize)>, baseline: f64) -> SignalScore {
    match result {
        Some((sim, support)) => SignalScore {
            similarity: Some(sim),
            support,
            z: None,
            evidence: Some(((sim - baseline) / (1.0 - baseline)).clamp(0.0, 1.0)),
        },
        None => SignalScore::default(),
    }
}

/// Compare two fingerprints with the default configuration and the MinHash VOA estimate.
pub fn compare(a: &Fingerprint, b: &Fingerprint) -> Comparison {
    compare_with(a, b, None, &ScoreConfig::default())
}

/// Compare two fingerprints. `exact_voa` replaces the MinHash estimate when both vocabularies are at hand.
pub fn compare_with(
    a: &Fingerprint,
    b: &Fingerprint,
    exact_voa: Option<f64>,
    config: &ScoreConfig,
) -> Comparison {
    let mut evidence = Vec::new();
    let mut signals = Signals::default();
    if a.version != FINGERPRINT_VERSION || b.version != FINGERPRINT_VERSION {
        return Comparison {
            identity_score: None,
            related: None,
            verdict: "undecidable".into(),
            signals,
            identical_weights: false,
            layer_alignment: None,
            evidence: vec![format!(
                "fingerprint versions {} and {} differ from {FINGERPRINT_VERSION}: re-fingerprint both",
                a.version, b.version
            )],
        };
    }

    let (wa, wb) = (&a.weights, &b.weights);
    let (alignment, mut wvc_pool) = align_and_pool(&wa.matrices, &wb.matrices);
    if let (Some(ea), Some(eb)) = (&wa.embedding, &wb.embedding) {
        wvc_pool.merge(&anchor_row_pool(ea, eb));
        signals.eas = baseline_score(anchors::eas(ea, eb), config.baselines[0]);
        signals.end = baseline_score(anchors::end(ea, eb), config.baselines[1]);
        if let Some(m) = channels::match_channels(ea, eb) {
            signals.channels = channel_score(&m);
            signals.channel_pairs = Some((m.matched, m.same_index));
        }
    }
    signals.wvc = positional_score(&wvc_pool, alignment.z_penalty, config);
    signals.nlf = positional_score(
        &pooled(&wa.norms, &wb.norms, &alignment),
        alignment.z_penalty,
        config,
    );
    signals.lep = baseline_score(
        layer_energy_similarity(&wa.matrices, &wb.matrices),
        config.baselines[2],
    );

    let (mfi, tier) = report::mfi(&a.metadata, &b.metadata);
    signals.mfi = Some(mfi);
    signals.mfi_tier = Some(tier);
    if let (Some(ta), Some(tb)) = (&a.tokenizer, &b.tokenizer) {
        signals.tfv = Some(report::tfv(ta, tb));
        signals.voa = exact_voa.or_else(|| report::voa_estimate(ta, tb));
    }

    let parts = [
        signals.eas.evidence,
        signals.end.evidence,
        signals.nlf.evidence,
        signals.lep.evidence,
        weight_value_evidence(signals.wvc.evidence, &signals.channels),
    ];
    let (mut num, mut den) = (0.0, 0.0);
    for (e, w) in parts.iter().zip(config.weights) {
        if let Some(e) = e {
            num += w * e;
            den += w;
        }
    }
    // Token-keyed and profile signals (EAS, END, LEP) are high for independent models trained on the same data
    // with the same tokenizer (an independent reproduction in the trained zoo reaches EAS 0.94 and END 0.97,
    // above a true distillation), so they never establish lineage alone: without positional weight evidence
    // (no tensors of matching role and shape), or with only what a shared random initialisation leaves, the
    // score is scaled below the threshold.
    let positional = parts[2].is_some() || parts[4].is_some();
    let wvc_from_channels = signals.channels.evidence.is_some()
        && signals.channels.evidence >= signals.wvc.evidence.or(Some(0.0));
    let shared_init = shared_initialisation_only(&signals);
    let scale = evidence_scale(&signals, positional, config.threshold);
    let identity_score = (den > 1e-12).then(|| scale * num / den);
    // Equal content digests mean byte-identical weights only if the weights agree. A digest is not always
    // computed from the bytes at hand: an HF-cache snapshot's comes from its blob names and a saved
    // fingerprint's from its JSON, and either can be wrong or forged. Byte-identical files give the same
    // samples at the same positions (correlation 1 exactly), so a digest contradicted by the positional
    // signals is reported and ignored, and the weights decide.
    let same_digest =
        !a.source.content_digest.is_empty() && a.source.content_digest == b.source.content_digest;
    let contradicted = [&signals.wvc, &signals.nlf]
        .into_iter()
        .find(|s| s.similarity.is_some_and(|r| r < SAME_BYTES_CORRELATION));
    let identical_weights = same_digest && contradicted.is_none();
    if let Some(s) = contradicted.filter(|_| same_digest) {
        evidence.push(format!(
            "content digests are equal but the weights are not (r={:.3} over {} aligned samples): the digest \
             was not computed from these bytes (an HF-cache blob name or a saved fingerprint), so it is ignored",
            s.similarity.unwrap_or(f64::NAN),
            s.support
        ));
    }

    let (related, verdict) = if identical_weights {
        (Some(true), "identical")
    } else {
        match identity_score {
            Some(s) if s >= config.threshold => (Some(true), "related"),
            Some(_) => (Some(false), "not related"),
            None => (None, "undecidable"),
        }
    };
    let identity_score = if identical_weights {
        Some(1.0)
    } else {
        identity_score
    };

    explain(
        &signals,
        identical_weights,
        wvc_from_channels,
        a,
        b,
        &mut evidence,
    );
    if shared_init && !identical_weights && signals.wvc.z.is_some_and(|z| z >= 3.0) {
        evidence.push(format!(
            "the weights share a component (r={:.3}) but the norm gains barely do (r={:.3}): what two models \
             trained independently from the same random initialisation (the same seed) keep of it, not a \
             derivation (a derivative keeps weight r ≥ {SHARED_INIT_MAX_WVC} or norm r ≥ \
             {SHARED_INIT_MAX_NLF}), so this pair is at most 'not related'",
            signals.wvc.similarity.unwrap_or(f64::NAN),
            signals.nlf.similarity.unwrap_or(f64::NAN),
        ));
    }
    Comparison {
        identity_score,
        related,
        verdict: verdict.into(),
        signals,
        identical_weights,
        layer_alignment: alignment.searched.then(|| alignment.summary.clone()),
        evidence,
    }
}

fn explain(
    s: &Signals,
    identical: bool,
    wvc_from_channels: bool,
    a: &Fingerprint,
    b: &Fingerprint,
    out: &mut Vec<String>,
) {
    if identical {
        out.push("weight files are byte-identical (same content digest)".into());
    }
    match (s.wvc.similarity, s.wvc.z) {
        (Some(r), Some(z)) => out.push(format!(
            "weights: {} aligned samples correlate r={r:.3} (z={z:.1}; independent weights give 0 ± {:.3})",
            s.wvc.support,
            1.0 / (s.wvc.support as f64).sqrt()
        )),
        _ => out.push("weights: no tensors of matching role and shape to compare".into()),
    }
    if let (Some(r), Some((pairs, same))) = (s.channels.similarity, s.channel_pairs) {
        let role = if wvc_from_channels {
            "the weight evidence"
        } else {
            "beside the aligned weights"
        };
        out.push(format!(
            "embedding channels: {pairs} paired by their anchor profiles ({same} at the same index) correlate \
             r={r:.3} on held-out anchors ({role}; independent models stay below {CHANNEL_BASELINE})"
        ));
    }
    if let (Some(r), Some(z)) = (s.nlf.similarity, s.nlf.z) {
        out.push(format!(
            "norms: {} aligned gains/biases correlate r={r:.3} (z={z:.1})",
            s.nlf.support
        ));
    }
    if let Some(r) = s.eas.similarity {
        out.push(format!(
            "embedding geometry over {} shared anchors: r={r:.3}",
            s.eas.support
        ));
    }
    if s.wvc.evidence.is_none() && s.nlf.evidence.is_none() && s.channels.evidence.is_none() {
        out.push(
            "lineage needs weight evidence: embeddings and layer profiles alone cannot tell a derivative from an \
             independent model trained on the same data, so this pair is at most 'not related'"
                .into(),
        );
    }
    match (&a.tokenizer, &b.tokenizer) {
        (Some(ta), Some(tb)) if !ta.vocab_hash.is_empty() && ta.vocab_hash == tb.vocab_hash => out
            .push("tokenizers: identical vocabularies (not evidence of lineage by itself)".into()),
        (Some(_), Some(_)) => {
            if let Some(v) = s.voa {
                out.push(format!("tokenizers: vocabulary overlap {:.0}%", v * 100.0));
            }
        }
        _ => out.push("tokenizers: not available on both sides".into()),
    }
    if s.mfi_tier == Some(1) {
        out.push("config: same architecture hash (not evidence of lineage by itself)".into());
    }
}

#[cfg(test)]
mod tests;
