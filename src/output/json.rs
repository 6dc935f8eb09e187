//! JSON documents: one per command.

use provsearch_index::score::{Comparison, SignalScore, Signals};
use provsearch_index::Fingerprint;
use serde_json::{json, Value};

/// The short description of a compared model.
pub fn model_summary(f: &Fingerprint) -> Value {
    json!({
        "id": f.source.id,
        "revision": f.source.revision,
        "format": f.source.format,
        "quantization": f.source.quantization,
        "parameter_count": f.source.parameter_count,
        "model_type": f.metadata.model_type,
        "declared_base_models": f.metadata.declared_base_models,
    })
}

fn round(x: Option<f64>) -> Value {
    match x {
        Some(v) if v.is_finite() => json!((v * 1e4).round() / 1e4),
        _ => Value::Null,
    }
}

fn detail(s: &SignalScore) -> Value {
    json!({"similarity": round(s.similarity), "support": s.support, "z": round(s.z), "evidence": round(s.evidence)})
}

/// The channel match behind WVC across widths: its correlation, support and z, and the channel pairs kept
/// (and how many sit at the same index in both embeddings).
pub fn channels(s: &Signals) -> Value {
    let mut v = detail(&s.channels);
    if let (Some(o), Some((pairs, same))) = (v.as_object_mut(), s.channel_pairs) {
        o.insert("pairs".into(), json!(pairs));
        o.insert("same_index".into(), json!(same));
    }
    v
}

/// The `compare --json` document.
pub fn comparison(a: &Fingerprint, b: &Fingerprint, c: &Comparison) -> Value {
    let s = &c.signals;
    json!({
        "identity_score": round(c.identity_score),
        "related": c.related,
        "verdict": c.verdict,
        "signals": {
            "eas": round(s.eas.similarity),
            "end": round(s.end.similarity),
            "nlf": round(s.nlf.similarity),
            "lep": round(s.lep.similarity),
            "wvc": round(s.wvc.similarity),
            "mfi": round(s.mfi),
            "tfv": round(s.tfv),
            "voa": round(s.voa),
        },
        "details": {
            "eas": detail(&s.eas), "end": detail(&s.end), "nlf": detail(&s.nlf),
            "lep": detail(&s.lep), "wvc": detail(&s.wvc), "mfi_tier": s.mfi_tier,
            "channels": channels(s),
        },
        "identical_weights": c.identical_weights,
        "layer_alignment": c.layer_alignment,
        "evidence": c.evidence,
        "a": model_summary(a),
        "b": model_summary(b),
    })
}
