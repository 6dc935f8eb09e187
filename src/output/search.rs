//! Renderers for the index commands: ranked query results (table, JSON, CSV), text-search results, index
//! stats and the ingest report.

use crate::commands::serve::QuerySummary;
use provsearch_index::reader::Stats;
use provsearch_index::schema::SourceFormat;
use provsearch_index::score::{shared_initialisation_only, Comparison};
use provsearch_index::search::{Hit, QueryResult, TextResult};
use serde_json::{json, Value};
use std::fmt::Write;

fn round(x: Option<f64>) -> Value {
    match x {
        Some(v) if v.is_finite() => json!((v * 1e4).round() / 1e4),
        _ => Value::Null,
    }
}

fn params(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => format!("{n}"),
    }
}

/// One line saying why: the strongest piece of evidence.
pub fn reason(c: &Comparison) -> String {
    let s = &c.signals;
    if c.identical_weights {
        return "byte-identical weight files".into();
    }
    match (s.wvc.similarity, s.wvc.z) {
        (Some(r), Some(z))
            if c.related != Some(true) && z >= 3.0 && shared_initialisation_only(s) =>
        {
            format!(
                "shared random start only: weights r={r:.3} (z={z:.0}), norms r={:.3}",
                s.nlf.similarity.unwrap_or(f64::NAN)
            )
        }
        (Some(r), Some(z)) if c.related == Some(true) || z.abs() >= 3.0 => {
            format!(
                "weights r={r:.3} over {} aligned samples (z={z:.0})",
                s.wvc.support
            )
        }
        (Some(r), Some(_)) => match s.eas.similarity {
            Some(e) => format!("weights r={r:.3} (≈ independent); embedding geometry r={e:.2}"),
            None => format!("weights r={r:.3} (≈ independent)"),
        },
        _ => match s.eas.similarity {
            Some(e) => format!(
                "no shared tensor shapes; embedding geometry r={e:.3} over {} anchors",
                s.eas.support
            ),
            None => "no comparable weight signals".into(),
        },
    }
}

fn signals(c: &Comparison) -> Value {
    let s = &c.signals;
    json!({
        "wvc": round(s.wvc.similarity), "eas": round(s.eas.similarity), "end": round(s.end.similarity),
        "nlf": round(s.nlf.similarity), "lep": round(s.lep.similarity), "mfi": round(s.mfi),
        "tfv": round(s.tfv), "voa": round(s.voa),
    })
}

/// Storage format and quantization scheme: `safetensors`, `gguf Q4_K`, `safetensors gptq-4bit`.
fn storage(format: Option<SourceFormat>, quantization: Option<&str>) -> String {
    let format = match format {
        Some(SourceFormat::Gguf) => "gguf",
        Some(SourceFormat::Safetensors) => "safetensors",
        None => "?",
    };
    match quantization {
        Some(q) => format!("{format} {q}"),
        None => format.to_string(),
    }
}

fn hit_json(h: &Hit) -> Value {
    let c = &h.comparison;
    json!({
        "rank": h.rank,
        "model_id": h.model_id,
        "revision": h.revision,
        "identity_score": round(c.identity_score),
        "related": c.related,
        "verdict": c.verdict,
        "signals": signals(c),
        "parameter_count": h.parameter_count,
        "model_type": h.model_type,
        "declared_base_models": h.declared_base_models,
        "format": h.format,
        "quantization": h.quantization,
        "reason": reason(c),
        "composite_similarity": round(Some(h.composite_similarity as f64)),
        "origin": h.origin,
        "evidence": c.evidence,
    })
}

/// The `query model --json` document.
pub fn query_json(query: &QuerySummary, r: &QueryResult, via_server: bool) -> Value {
    json!({
        "query": query,
        "results": r.hits.iter().map(hit_json).collect::<Vec<_>>(),
        "rescored": r.rescored,
        "searched": r.searched,
        "generation": r.generation,
        "used_graph": r.used_graph,
        "via_server": via_server,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// The `query model --csv` table.
pub fn query_csv(r: &QueryResult) -> String {
    let mut out = String::from(
        "rank,model_id,identity_score,related,verdict,wvc,eas,end,nlf,lep,parameter_count,model_type,format,quantization,declared_base_models,reason\n",
    );
    for h in &r.hits {
        let c = &h.comparison;
        let s = &c.signals;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            h.rank,
            csv_field(&h.model_id),
            opt(c.identity_score),
            c.related.map(|b| b.to_string()).unwrap_or_default(),
            csv_field(&c.verdict),
            opt(s.wvc.similarity),
            opt(s.eas.similarity),
            opt(s.end.similarity),
            opt(s.nlf.similarity),
            opt(s.lep.similarity),
            h.parameter_count,
            csv_field(&h.model_type),
            storage(Some(h.format), None),
            csv_field(h.quantization.as_deref().unwrap_or_default()),
            csv_field(&h.declared_base_models.join(";")),
            csv_field(&reason(c)),
        );
    }
    out
}

fn cell(x: Option<f64>) -> String {
    x.map_or_else(|| "    —".into(), |v| format!("{v:5.2}"))
}

/// The `query model` table.
pub fn query_human(f: &QuerySummary, r: &QueryResult, via_server: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "query  {} ({} params, {}, {})  — {} models searched, {} rescored{}",
        f.model_id,
        params(f.parameter_count),
        f.model_type,
        storage(f.format, f.quantization.as_deref()),
        r.searched,
        r.rescored,
        if via_server { ", via server" } else { "" }
    );
    if r.hits.is_empty() {
        let _ = writeln!(out, "no candidates");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>4}  {:<40} {:>8}  {:<12} {:>5} {:>5} {:>5} {:>5} {:>5}  {:>8}  {:<10} {:<21} reason",
        "rank",
        "model",
        "identity",
        "verdict",
        "wvc",
        "eas",
        "end",
        "nlf",
        "lep",
        "params",
        "type",
        "format"
    );
    for h in &r.hits {
        let c = &h.comparison;
        let s = &c.signals;
        let base = if h.declared_base_models.is_empty() {
            String::new()
        } else {
            format!(" [base: {}]", h.declared_base_models.join(", "))
        };
        let _ = writeln!(
            out,
            "{:>4}  {:<40} {:>8}  {:<12} {} {} {} {} {}  {:>8}  {:<10} {:<21} {}{}",
            h.rank,
            h.model_id,
            c.identity_score.map_or("—".into(), |v| format!("{v:.3}")),
            c.verdict,
            cell(s.wvc.similarity),
            cell(s.eas.similarity),
            cell(s.end.similarity),
            cell(s.nlf.similarity),
            cell(s.lep.similarity),
            params(h.parameter_count),
            h.model_type,
            storage(Some(h.format), h.quantization.as_deref()),
            reason(c),
            base
        );
    }
    out
}

/// `query text` as JSON.
pub fn text_json(query: &str, r: &[TextResult]) -> Value {
    json!({"query": query, "results": r})
}

/// `query text` as CSV.
pub fn text_csv(r: &[TextResult]) -> String {
    let mut out = String::from(
        "rank,model_id,score,model_type,parameter_count,declared_base_models,license\n",
    );
    for t in r {
        let _ = writeln!(
            out,
            "{},{},{:.4},{},{},{},{}",
            t.rank,
            csv_field(&t.model_id),
            t.score,
            csv_field(&t.model_type),
            t.parameter_count,
            csv_field(&t.declared_base_models.join(";")),
            csv_field(t.license.as_deref().unwrap_or(""))
        );
    }
    out
}

/// `query text` as a table.
pub fn text_human(r: &[TextResult]) -> String {
    let mut out = String::new();
    if r.is_empty() {
        return "no matches\n".into();
    }
    for t in r {
        let _ = writeln!(
            out,
            "{:>4}  {:<40} {:>7.3}  {:<10} {:>8}  {}",
            t.rank,
            t.model_id,
            t.score,
            t.model_type,
            params(t.parameter_count),
            t.declared_base_models.join(", ")
        );
    }
    out
}

/// `index stats` as a table.
pub fn index_stats(s: &Stats) -> String {
    format!(
        "index        {}\ngeneration   {}\nrecords      {} live, {} deleted (until compact)\nsegments     {} ({} with an HNSW graph)\ndisk         {:.1} MiB ({} bytes per live record)\nfailures     {}\ncomposite    {} dims (gram {}), i8, v{}\n",
        s.dir.display(),
        s.generation,
        s.live,
        s.deleted,
        s.segments,
        s.graph_segments,
        s.disk_bytes as f64 / (1 << 20) as f64,
        s.disk_bytes.checked_div(s.live).unwrap_or(0),
        s.failures,
        s.composite.dimension,
        s.composite.gram_dims,
        s.composite.version
    )
}
