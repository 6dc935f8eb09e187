//! `provsearch eval`: score labelled model pairs (the lineage zoo), report accuracy, precision, recall,
//! specificity and ROC AUC overall and per constitution category, list the misclassified pairs with their
//! signals, plot the score distributions, and optionally calibrate the score configuration on the
//! calibration split.
//!
//! Every model is fingerprinted once (in parallel); pairs are then compared from the in-memory fingerprints.

use crate::flags::{EvalArgs, SplitArg};
use crate::output;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use provsearch_index::eval::calibrate::{self, Grid, Sample};
use provsearch_index::eval::metrics::{metrics, Metrics, Scored};
use provsearch_index::eval::{read_pairs, LabelledPair, Split};
use provsearch_index::score::{compare_with, Comparison, ScoreConfig};
use provsearch_ingest::vocab::exact_jaccard;
use provsearch_ingest::{fingerprint, Extracted, FingerprintOptions};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Load a score configuration written by `eval --calibrate` (its extra `fit` member is ignored), or the
/// default one.
pub fn load_config(path: Option<&Path>) -> Result<ScoreConfig> {
    let Some(path) = path else {
        return Ok(ScoreConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let c: ScoreConfig = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a score configuration (weights, baselines, z_saturation, threshold)",
            path.display()
        )
    })?;
    let valid = c.weights.iter().all(|w| w.is_finite() && *w >= 0.0)
        && c.weights.iter().sum::<f64>() > 0.0
        && c.baselines.iter().all(|b| (0.0..1.0).contains(b))
        && c.z_saturation.is_finite()
        && c.z_saturation > 0.0
        && c.threshold.is_finite();
    if !valid {
        bail!(
            "{}: weights must be non-negative and not all zero, baselines in [0, 1), z_saturation positive",
            path.display()
        );
    }
    Ok(c)
}

/// One evaluated pair.
#[derive(Debug, Clone, Serialize)]
pub struct PairResult {
    /// The labelled pair.
    #[serde(flatten)]
    pub pair: LabelledPair,
    /// The verdict said related.
    pub predicted: bool,
    /// The comparison.
    pub comparison: Comparison,
}

impl PairResult {
    /// Whether the verdict matches the label.
    pub fn correct(&self) -> bool {
        self.pair.related == self.predicted
    }
}

/// The evaluation of one split under one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Which pairs.
    pub split: &'static str,
    /// Where the configuration came from.
    pub config_source: String,
    /// The configuration in force.
    pub config: ScoreConfig,
    /// The metrics.
    pub metrics: Metrics,
    /// Every pair.
    pub results: Vec<PairResult>,
    /// The calibration fit, when one was made.
    pub fit: Option<calibrate::Fit>,
    /// Pairs left out because a model was missing (with --skip-missing).
    pub skipped: usize,
}

fn split_of(arg: SplitArg) -> (Split, &'static str) {
    match arg {
        SplitArg::Report => (Split::Report, "report"),
        SplitArg::Calibration => (Split::Calibration, "calibration"),
        SplitArg::All => (Split::All, "all"),
    }
}

/// Fingerprint every model once, in parallel.
fn fingerprint_all(zoo: &Path, models: &BTreeSet<&str>) -> Result<HashMap<String, Extracted>> {
    let bar = ProgressBar::new(models.len() as u64).with_style(
        ProgressStyle::with_template("fingerprinting {pos}/{len} {wide_bar} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let options = FingerprintOptions::default();
    let out: Result<HashMap<String, Extracted>> = models
        .par_iter()
        .map(|m| {
            let path = zoo.join(m);
            let e = fingerprint(&path.to_string_lossy(), &options)
                .with_context(|| format!("cannot fingerprint {}", path.display()));
            bar.inc(1);
            e.map(|e| (m.to_string(), e))
        })
        .collect();
    bar.finish_and_clear();
    out
}

fn compare_pair(
    fps: &HashMap<String, Extracted>,
    p: &LabelledPair,
    config: &ScoreConfig,
) -> Result<Comparison> {
    let get = |m: &str| {
        fps.get(m)
            .with_context(|| format!("{m} was not fingerprinted"))
    };
    let (a, b) = (get(&p.a)?, get(&p.b)?);
    let voa = match (&a.vocabulary, &b.vocabulary) {
        (Some(x), Some(y)) => Some(exact_jaccard(x, y)),
        _ => None,
    };
    Ok(compare_with(&a.fingerprint, &b.fingerprint, voa, config))
}

fn evaluate(
    fps: &HashMap<String, Extracted>,
    pairs: &[&LabelledPair],
    config: &ScoreConfig,
) -> Result<Vec<PairResult>> {
    pairs
        .par_iter()
        .map(|p| {
            let comparison = compare_pair(fps, p, config)?;
            Ok(PairResult {
                pair: (*p).clone(),
                predicted: comparison.related == Some(true),
                comparison,
            })
        })
        .collect()
}

/// Run the command.
pub fn run(args: &EvalArgs) -> Result<()> {
    let start = Instant::now();
    let all = read_pairs(&args.pairs)?;
    let (split, split_name) = split_of(args.split);
    let (mut config, mut config_source) = match &args.config {
        Some(p) => (load_config(Some(p))?, p.display().to_string()),
        None => (ScoreConfig::default(), "built-in default".to_string()),
    };

    let wanted = |p: &&LabelledPair| {
        split.contains(&p.split) || (args.calibrate.is_some() && p.split == "calibration")
    };
    let mut needed: Vec<&LabelledPair> = all.iter().filter(wanted).collect();
    let missing: BTreeSet<&str> = needed
        .iter()
        .flat_map(|p| [p.a.as_str(), p.b.as_str()])
        .filter(|m| !args.zoo.join(m).exists())
        .collect();
    let before = needed.len();
    if !missing.is_empty() {
        if !args.skip_missing {
            bail!(
                "{} models are missing from the zoo {} (first: {}); generate it with \
                 `cargo run --release -p datasets --bin zoo -- --out {}`, or pass --skip-missing",
                missing.len(),
                args.zoo.display(),
                missing.iter().next().copied().unwrap_or_default(),
                args.zoo.display()
            );
        }
        needed.retain(|p| !missing.contains(p.a.as_str()) && !missing.contains(p.b.as_str()));
    }
    let models: BTreeSet<&str> = needed
        .iter()
        .flat_map(|p| [p.a.as_str(), p.b.as_str()])
        .collect();
    let fps = fingerprint_all(&args.zoo, &models)?;
    let fingerprinted = start.elapsed();

    let mut fit = None;
    if let Some(out) = &args.calibrate {
        let calib: Vec<&LabelledPair> = needed
            .iter()
            .copied()
            .filter(|p| p.split == "calibration")
            .collect();
        let compared = evaluate(&fps, &calib, &config)?;
        let samples: Vec<Sample> = compared
            .iter()
            .map(|r| Sample {
                signals: r.comparison.signals.clone(),
                identical: r.comparison.identical_weights,
                related: r.pair.related,
            })
            .collect();
        let grid = Grid::default();
        let f = calibrate::fit(&samples, &grid, &config)
            .context("calibration needs related and independent pairs in the calibration split")?;
        let doc = serde_json::json!({
            "weights": f.config.weights,
            "baselines": f.config.baselines,
            "z_saturation": f.config.z_saturation,
            "threshold": f.config.threshold,
            "fit": {
                "pairs_file": args.pairs.display().to_string(),
                "split": "calibration",
                "related_pairs": f.pairs.0,
                "independent_pairs": f.pairs.1,
                "recall": f.recall,
                "robust_detections": f.robust_detections,
                "max_independent_score": f.max_independent,
                "min_detected_score": f.min_detected,
                "gap": f.gap,
                "configurations_searched": f.searched,
                "grid": grid,
                "signals": ["eas", "end", "nlf", "lep", "wvc"],
            }
        });
        std::fs::write(out, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("{}: cannot write", out.display()))?;
        config = f.config.clone();
        config_source = format!("calibrated → {}", out.display());
        fit = Some(f);
    }

    let selected: Vec<&LabelledPair> = needed
        .iter()
        .copied()
        .filter(|p| split.contains(&p.split))
        .collect();
    let results = evaluate(&fps, &selected, &config)?;
    let scored: Vec<Scored> = results
        .iter()
        .map(|r| Scored {
            related: r.pair.related,
            predicted: r.predicted,
            score: r.comparison.identity_score,
            category: r.pair.category.clone(),
        })
        .collect();
    let report = Report {
        split: split_name,
        config_source,
        config,
        metrics: metrics(&scored),
        results,
        fit,
        skipped: before - needed.len(),
    };

    if let Some(path) = &args.plot {
        output::eval::plot(&report, path)?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &output::eval::json(&report))?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{}", output::eval::human(&report))?;
        writeln!(
            stdout,
            "{} models fingerprinted in {:.1}s, {} pairs compared in {:.1}s",
            models.len(),
            fingerprinted.as_secs_f64(),
            report.results.len(),
            (start.elapsed() - fingerprinted).as_secs_f64()
        )?;
    }
    stdout.flush()?;
    let spec = report.metrics.specificity;
    if spec < args.min_specificity {
        bail!(
            "specificity {spec:.4} on the {split_name} split is below --min-specificity {} ({} independent pairs called related)",
            args.min_specificity,
            report.metrics.false_positives
        );
    }
    Ok(())
}
