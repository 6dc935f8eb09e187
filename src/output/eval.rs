//! Rendering of `provsearch eval`: the human report, the JSON document and the SVG score-distribution plot.

use crate::commands::eval::{PairResult, Report};
use anyhow::{Context, Result};
use plotters::prelude::*;
use provsearch_index::score::SignalScore;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;

fn r4(x: Option<f64>) -> Value {
    match x {
        Some(v) if v.is_finite() => json!((v * 1e4).round() / 1e4),
        _ => Value::Null,
    }
}

fn signal(s: &SignalScore) -> Value {
    json!({"similarity": r4(s.similarity), "z": r4(s.z), "evidence": r4(s.evidence), "support": s.support})
}

fn pair_json(r: &PairResult) -> Value {
    let s = &r.comparison.signals;
    json!({
        "a": r.pair.a,
        "b": r.pair.b,
        "label": if r.pair.related { "related" } else { "not-related" },
        "category": r.pair.category,
        "difficulty": r.pair.difficulty,
        "split": r.pair.split,
        "detail": r.pair.detail,
        "predicted": if r.predicted { "related" } else { "not-related" },
        "correct": r.correct(),
        "identity_score": r4(r.comparison.identity_score),
        "verdict": r.comparison.verdict,
        "signals": {
            "eas": signal(&s.eas), "end": signal(&s.end), "nlf": signal(&s.nlf),
            "lep": signal(&s.lep), "wvc": signal(&s.wvc),
            "channels": super::json::channels(s),
            "mfi": r4(s.mfi), "tfv": r4(s.tfv), "voa": r4(s.voa),
        },
        "layer_alignment": r.comparison.layer_alignment,
    })
}

/// The `eval --json` document.
pub fn json(r: &Report) -> Value {
    let m = &r.metrics;
    json!({
        "split": r.split,
        "pairs": m.pairs,
        "related_pairs": m.positives,
        "independent_pairs": m.negatives,
        "accuracy": m.accuracy,
        "precision": m.precision,
        "recall": m.recall,
        "specificity": m.specificity,
        "auc": m.auc,
        "threshold": r.config.threshold,
        "confusion": {"tp": m.true_positives, "fp": m.false_positives, "tn": m.true_negatives, "fn": m.false_negatives},
        "by_category": m.by_category,
        "config_source": r.config_source,
        "config": r.config,
        "fit": r.fit,
        "skipped_pairs": r.skipped,
        "misclassified": r.results.iter().filter(|x| !x.correct()).map(pair_json).collect::<Vec<_>>(),
        "results": r.results.iter().map(pair_json).collect::<Vec<_>>(),
    })
}

fn fmt_signal(name: &str, s: &SignalScore) -> String {
    match (s.similarity, s.z) {
        (Some(r), Some(z)) => format!("{name} r={r:.3} z={z:.1}"),
        (Some(r), None) => format!("{name} {r:.3}"),
        _ => format!("{name} -"),
    }
}

/// The human report.
pub fn human(r: &Report) -> String {
    let m = &r.metrics;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "provsearch eval: {} {} pairs ({} related, {} independent){}; config: {}, threshold {:.3}",
        m.pairs,
        r.split,
        m.positives,
        m.negatives,
        if r.skipped > 0 {
            format!(", {} skipped (models missing)", r.skipped)
        } else {
            String::new()
        },
        r.config_source,
        r.config.threshold
    );
    if let Some(f) = &r.fit {
        let _ = writeln!(
            s,
            "calibration ({} related, {} independent pairs, {} configurations): weights eas/end/nlf/lep/wvc {:?}, \
             baselines eas/end/lep {:?}, z saturation {}: recall {:.3} with no false positive, {} related pairs \
             clear the highest independent score ({:.3}) by the margin, gap {:.3}",
            f.pairs.0, f.pairs.1, f.searched, f.config.weights, f.config.baselines, f.config.z_saturation, f.recall,
            f.robust_detections, f.max_independent, f.gap
        );
    }
    let _ = writeln!(
        s,
        "accuracy {:.4}  precision {:.4}  recall {:.4}  specificity {:.4}  ROC AUC {:.4}  (TP {} FP {} TN {} FN {})\n",
        m.accuracy, m.precision, m.recall, m.specificity, m.auc,
        m.true_positives, m.false_positives, m.true_negatives, m.false_negatives
    );
    let _ = writeln!(
        s,
        "{:<40} {:<11} {:>4} {:>8} {:>7} {:>7} {:>7}",
        "category", "kind", "n", "correct", "rate", "min", "max"
    );
    let mut cats: Vec<_> = m.by_category.iter().collect();
    cats.sort_by_key(|(name, c)| (!c.related, name.to_string()));
    for (name, c) in cats {
        let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.3}"));
        let _ = writeln!(
            s,
            "{:<40} {:<11} {:>4} {:>8} {:>7.3} {:>7} {:>7}",
            name,
            if c.related { "mechanism" } else { "exclusion" },
            c.n,
            c.correct,
            c.correct as f64 / c.n.max(1) as f64,
            f(c.min_score),
            f(c.max_score)
        );
    }
    let wrong: Vec<&PairResult> = r.results.iter().filter(|x| !x.correct()).collect();
    let _ = writeln!(s, "\nmisclassified: {}", wrong.len());
    for w in wrong {
        let sig = &w.comparison.signals;
        let _ = writeln!(
            s,
            "  {} ~ {}  [{} {}, {}] labelled {}, score {}: {}\n      {}",
            w.pair.a,
            w.pair.b,
            w.pair.category,
            w.pair.difficulty,
            w.pair.split,
            if w.pair.related {
                "related"
            } else {
                "not-related"
            },
            w.comparison
                .identity_score
                .map_or("-".into(), |v| format!("{v:.3}")),
            w.pair.detail,
            [
                fmt_signal("eas", &sig.eas),
                fmt_signal("end", &sig.end),
                fmt_signal("nlf", &sig.nlf),
                fmt_signal("lep", &sig.lep),
                fmt_signal("wvc", &sig.wvc),
            ]
            .join("  ")
        );
    }
    s
}

/// Draw the score distributions (related above the axis, independent below) with the threshold as SVG.
pub fn plot(r: &Report, path: &Path) -> Result<()> {
    const BINS: usize = 50;
    let mut related = [0u32; BINS];
    let mut independent = [0u32; BINS];
    for x in &r.results {
        let v = x.comparison.identity_score.unwrap_or(0.0).clamp(0.0, 1.0);
        let bin = ((v * BINS as f64) as usize).min(BINS - 1);
        if x.pair.related {
            related[bin] += 1;
        } else {
            independent[bin] += 1;
        }
    }
    let top = related
        .iter()
        .chain(&independent)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 480)).into_drawing_area();
        let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("plotting: {e:?}");
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let title = format!(
            "identity score, {} split: {} related (up) vs {} independent (down)",
            r.split, r.metrics.positives, r.metrics.negatives
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..1f64, -top..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("identity score")
            .y_desc("pairs (independent below 0)")
            .y_label_formatter(&|v| format!("{:.0}", v.abs()))
            .draw()
            .map_err(|e| err(&e))?;
        let w = 1.0 / BINS as f64;
        let green = RGBColor(46, 139, 87);
        let red = RGBColor(200, 60, 50);
        chart
            .draw_series(
                related
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, c)| {
                        Rectangle::new(
                            [(i as f64 * w, 0.0), ((i + 1) as f64 * w, *c as f64)],
                            green.filled(),
                        )
                    }),
            )
            .map_err(|e| err(&e))?
            .label("related")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], green.filled()));
        chart
            .draw_series(
                independent
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, c)| {
                        Rectangle::new(
                            [(i as f64 * w, -(*c as f64)), ((i + 1) as f64 * w, 0.0)],
                            red.filled(),
                        )
                    }),
            )
            .map_err(|e| err(&e))?
            .label("independent")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], red.filled()));
        let t = r.config.threshold;
        chart
            .draw_series(LineSeries::new(
                vec![(t, -top), (t, top)],
                BLACK.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(format!("threshold {t:.3}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    std::fs::write(path, svg).with_context(|| format!("{}: cannot write", path.display()))
}
