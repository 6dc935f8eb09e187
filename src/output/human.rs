//! Human-readable tables.

use provsearch_index::score::{Comparison, SignalScore};
use provsearch_index::Fingerprint;
use std::fmt::Write;

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_string(), |v| format!("{v:.4}"))
}

fn params(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n => format!("{n}"),
    }
}

/// Storage format and quantization scheme: `Safetensors`, `Gguf Q4_1`, `Safetensors gptq-4bit`.
fn storage(f: &Fingerprint) -> String {
    match &f.source.quantization {
        Some(q) => format!("{:?} {q}", f.source.format),
        None => format!("{:?}", f.source.format),
    }
}

/// Summary of one fingerprint.
pub fn fingerprint(f: &Fingerprint, bytes: usize) -> String {
    let mut out = String::new();
    let m = &f.metadata;
    let w = &f.weights;
    let _ = writeln!(
        out,
        "model        {}{}",
        f.source.id,
        f.source
            .revision
            .as_ref()
            .map(|r| format!(" @ {r}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "format       {}  ({} tensors, {} params, {})",
        storage(f),
        f.source.tensor_count,
        params(f.source.parameter_count),
        f.source.dtypes.join("/")
    );
    let _ = writeln!(
        out,
        "config       {} {:?}  hidden {}  layers {}  heads {}  vocab {}",
        m.model_type,
        m.architectures,
        m.hidden_size,
        m.num_layers,
        m.num_attention_heads,
        m.vocab_size
    );
    if let Some(t) = &f.tokenizer {
        let _ = writeln!(
            out,
            "tokenizer    {} {} ({}), {} tokens, {} merges",
            t.model_kind, t.convention, t.source_file, t.vocab_size, t.num_merges
        );
    } else {
        let _ = writeln!(out, "tokenizer    none found");
    }
    match &w.embedding {
        Some(e) => {
            let anchors = e.present_anchors().len();
            let _ = writeln!(
                out,
                "embedding    {} [{} x {}], {} anchors resolved",
                e.tensor, e.rows, e.hidden, anchors
            );
        }
        None => {
            let _ = writeln!(out, "embedding    none");
        }
    }
    let _ = writeln!(
        out,
        "samples      {} matrices ({} values), {} norm/bias vectors ({} values)",
        w.matrices.entries.len(),
        w.matrices.values.len(),
        w.norms.entries.len(),
        w.norms.values.len()
    );
    if !m.declared_base_models.is_empty() {
        let _ = writeln!(
            out,
            "declares     base_model {}",
            m.declared_base_models.join(", ")
        );
    }
    if !f.source.content_digest.is_empty() {
        let _ = writeln!(out, "content      {}", f.source.content_digest);
    }
    let _ = writeln!(out, "fingerprint  {bytes} bytes");
    for note in &w.notes {
        let _ = writeln!(out, "note         {note}");
    }
    out
}

fn row(out: &mut String, name: &str, s: &SignalScore, what: &str) {
    let z = s.z.map(|z| format!("z={z:.1}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "  {name:<4} {:>8}  {:>8}  {:>9}  {:>6} {what}",
        num(s.similarity),
        num(s.evidence),
        z,
        s.support
    );
}

/// The compare table.
pub fn comparison(a: &Fingerprint, b: &Fingerprint, c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A  {}  ({}, {} params, {})",
        a.source.id,
        storage(a),
        params(a.source.parameter_count),
        a.metadata.model_type
    );
    let _ = writeln!(
        out,
        "B  {}  ({}, {} params, {})",
        b.source.id,
        storage(b),
        params(b.source.parameter_count),
        b.metadata.model_type
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "verdict         {}", c.verdict.to_uppercase());
    let _ = writeln!(out, "identity score  {}", num(c.identity_score));
    let _ = writeln!(out);
    let _ = writeln!(out, "  sig  similarity  evidence  z          support");
    let s = &c.signals;
    row(
        &mut out,
        "wvc",
        &s.wvc,
        "samples: weight values at aligned positions",
    );
    row(&mut out, "nlf", &s.nlf, "samples: norm gains and biases");
    row(&mut out, "eas", &s.eas, "anchors: embedding geometry");
    row(&mut out, "end", &s.end, "anchors: embedding norms");
    row(&mut out, "lep", &s.lep, "layers: energy profile");
    let _ = writeln!(
        out,
        "  reported only: mfi {} (tier {})  tfv {}  voa {}",
        num(s.mfi),
        s.mfi_tier.map_or("—".into(), |t| t.to_string()),
        num(s.tfv),
        num(s.voa)
    );
    if let Some(al) = &c.layer_alignment {
        let _ = writeln!(out, "  layers: {al}");
    }
    let _ = writeln!(out);
    for line in &c.evidence {
        let _ = writeln!(out, "- {line}");
    }
    out
}
