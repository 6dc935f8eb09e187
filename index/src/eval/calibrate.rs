//! Calibration of the identity score on labelled pairs: a grid search over the signal weights (a simplex in
//! steps of 0.05 where every signal keeps at least [`Grid::min_weight`], so that a pair missing some signals
//! stays decidable and no single signal decides alone), the baselines of EAS, END and LEP, and the positional z saturation, under the constraint of **zero
//! false positives** on the calibration pairs.
//!
//! For every configuration, a related pair counts as *robustly detected* when it scores at least
//! [`Grid::min_margin`] above the highest-scoring independent pair: a pair that only a razor-thin threshold
//! separates from the independent ones is not worth the risk to specificity on unseen pairs (and fitting to it
//! bends the score towards one model). The threshold is placed in the middle of the gap between the highest
//! independent score and the lowest robustly detected related score. Configurations are ranked by the number
//! of robust detections, then by that gap, then by closeness to the starting configuration. Scores are recomputed from the per-signal similarities and z values of a comparison with
//! [`identity`], which follows [`compare_with`](crate::score::compare_with) exactly.

use crate::score::{evidence_scale, weight_value_evidence, ScoreConfig, SignalScore, Signals};
use rayon::prelude::*;
use serde::Serialize;

/// What calibration needs of one compared pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The per-signal results of the comparison.
    pub signals: Signals,
    /// Byte-identical weights (scored 1 whatever the configuration).
    pub identical: bool,
    /// Ground truth.
    pub related: bool,
}

fn baseline_evidence(s: &SignalScore, baseline: f64) -> Option<f64> {
    s.similarity
        .map(|sim| ((sim - baseline) / (1.0 - baseline)).clamp(0.0, 1.0))
}

fn positional_evidence(s: &SignalScore, z_saturation: f64) -> Option<f64> {
    s.z.map(|z| (z / z_saturation).clamp(0.0, 1.0))
}

/// Evidence of the five weight signals (EAS, END, NLF, LEP, WVC) under a configuration's baselines.
fn evidence(s: &Signals, c: &ScoreConfig) -> [Option<f64>; 5] {
    [
        baseline_evidence(&s.eas, c.baselines[0]),
        baseline_evidence(&s.end, c.baselines[1]),
        positional_evidence(&s.nlf, c.z_saturation),
        baseline_evidence(&s.lep, c.baselines[2]),
        weight_value_evidence(positional_evidence(&s.wvc, c.z_saturation), &s.channels),
    ]
}

fn weighted(e: &[Option<f64>; 5], w: &[f64; 5]) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for (e, w) in e.iter().zip(w) {
        if let Some(e) = e {
            num += w * e;
            den += w;
        }
    }
    (den > 1e-12).then(|| num / den)
}

/// Whether a pair has weight-value evidence (WVC, NLF or paired embedding channels, which share WVC's slot);
/// without it the score stays below the threshold.
fn positional(e: &[Option<f64>; 5]) -> bool {
    e[2].is_some() || e[4].is_some()
}

/// The identity score of a compared pair under another configuration.
pub fn identity(s: &Signals, identical: bool, c: &ScoreConfig) -> Option<f64> {
    if identical {
        return Some(1.0);
    }
    let e = evidence(s, c);
    let scale = evidence_scale(s, positional(&e), c.threshold);
    weighted(&e, &c.weights).map(|v| scale * v)
}

/// The search space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    /// Weight step on the simplex (weights are multiples of it summing to 1).
    pub weight_step: f64,
    /// Least weight of every signal (a multiple of the step).
    pub min_weight: f64,
    /// EAS baselines tried.
    pub eas_baselines: Vec<f64>,
    /// END baselines tried.
    pub end_baselines: Vec<f64>,
    /// LEP baselines tried.
    pub lep_baselines: Vec<f64>,
    /// z saturations tried.
    pub z_saturations: Vec<f64>,
    /// Least lead over the highest independent score for a related pair to count as detected.
    pub min_margin: f64,
}

impl Default for Grid {
    fn default() -> Self {
        Grid {
            weight_step: 0.05,
            min_weight: 0.05,
            eas_baselines: vec![0.5, 0.6, 0.7, 0.8, 0.9],
            end_baselines: vec![0.6, 0.7, 0.8, 0.9, 0.95],
            lep_baselines: vec![0.8, 0.85, 0.9, 0.95],
            z_saturations: vec![6.0, 8.0, 12.0, 16.0, 24.0],
            min_margin: 0.15,
        }
    }
}

/// The result of a fit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    /// The fitted configuration (threshold included).
    pub config: ScoreConfig,
    /// Recall on the calibration pairs at the fitted threshold (zero false positives by construction).
    pub recall: f64,
    /// Related pairs detected with at least the minimum margin.
    pub robust_detections: usize,
    /// Highest identity score of an independent calibration pair.
    pub max_independent: f64,
    /// Lowest score of a robustly detected related pair.
    pub min_detected: Option<f64>,
    /// `min_detected − max_independent`: the gap the threshold sits in the middle of.
    pub gap: f64,
    /// Configurations searched.
    pub searched: usize,
    /// Calibration pairs (related, independent).
    pub pairs: (usize, usize),
}

/// Judgement of one scoring.
struct Judged {
    robust: usize,
    gap: f64,
    threshold: f64,
    max_neg: f64,
    min_pos: Option<f64>,
}

fn judge(scores: &[(Option<f64>, bool)], min_margin: f64) -> Judged {
    let max_neg = scores
        .iter()
        .filter(|(_, r)| !r)
        .map(|(s, _)| s.unwrap_or(0.0))
        .fold(0.0, f64::max);
    let robust: Vec<f64> = scores
        .iter()
        .filter(|(_, r)| *r)
        .filter_map(|(s, _)| s.filter(|s| *s >= max_neg + min_margin))
        .collect();
    let Some(min_pos) = robust.iter().copied().reduce(f64::min) else {
        return Judged {
            robust: 0,
            gap: 0.0,
            threshold: 1.0,
            max_neg,
            min_pos: None,
        };
    };
    Judged {
        robust: robust.len(),
        gap: min_pos - max_neg,
        threshold: (max_neg + min_pos) / 2.0,
        max_neg,
        min_pos: Some(min_pos),
    }
}

fn simplex(step: f64, min_weight: f64) -> Vec<[f64; 5]> {
    let total = (1.0 / step).round() as usize;
    let floor = (min_weight / step).round() as usize;
    let Some(n) = total.checked_sub(5 * floor) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in 0..=n {
        for b in 0..=n - a {
            for c in 0..=n - a - b {
                for d in 0..=n - a - b - c {
                    let e = n - a - b - c - d;
                    out.push([a, b, c, d, e].map(|k| (k + floor) as f64 / total as f64));
                }
            }
        }
    }
    out
}

fn distance(a: &ScoreConfig, b: &ScoreConfig) -> f64 {
    let w: f64 = a
        .weights
        .iter()
        .zip(&b.weights)
        .map(|(x, y)| (x - y).abs())
        .sum();
    let base: f64 = a
        .baselines
        .iter()
        .zip(&b.baselines)
        .map(|(x, y)| (x - y).abs())
        .sum();
    w + base + (a.z_saturation - b.z_saturation).abs() / 24.0
}

/// Fit a configuration on the samples; `start` breaks ties (the closest configuration wins). `None` without
/// samples of both labels.
pub fn fit(samples: &[Sample], grid: &Grid, start: &ScoreConfig) -> Option<Fit> {
    let positives = samples.iter().filter(|s| s.related).count();
    let negatives = samples.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let weights = simplex(grid.weight_step, grid.min_weight);
    let mut bases = Vec::new();
    for &e in &grid.eas_baselines {
        for &d in &grid.end_baselines {
            for &l in &grid.lep_baselines {
                for &z in &grid.z_saturations {
                    bases.push(([e, d, l], z));
                }
            }
        }
    }
    type Key = (usize, f64, f64);
    let best = bases
        .par_iter()
        .filter_map(|&(baselines, z_saturation)| {
            let mut config = ScoreConfig {
                weights: start.weights,
                baselines,
                z_saturation,
                threshold: start.threshold,
            };
            let ev: Vec<([Option<f64>; 5], bool, bool)> = samples
                .iter()
                .map(|s| (evidence(&s.signals, &config), s.identical, s.related))
                .collect();
            let mut best: Option<(Key, ScoreConfig, f64, Option<f64>)> = None;
            let mut scores = Vec::with_capacity(ev.len());
            for w in &weights {
                scores.clear();
                // Pairs without positional evidence always score below the threshold: never a detection, never
                // a false positive.
                scores.extend(ev.iter().map(|(e, identical, related)| {
                    let score = match (*identical, positional(e)) {
                        (true, _) => Some(1.0),
                        (false, true) => weighted(e, w),
                        (false, false) => None,
                    };
                    (score, *related)
                }));
                let j = judge(&scores, grid.min_margin);
                config.weights = *w;
                config.threshold = j.threshold;
                let key = (j.robust, j.gap, -distance(&config, start));
                if best.as_ref().is_none_or(|(k, ..)| better(&key, k)) {
                    best = Some((key, config.clone(), j.max_neg, j.min_pos));
                }
            }
            best
        })
        .reduce_with(|a, b| if better(&b.0, &a.0) { b } else { a })?;
    let (key, config, max_independent, min_detected) = best;
    let detected = samples
        .iter()
        .filter(|s| s.related)
        .filter(|s| {
            identity(&s.signals, s.identical, &config).is_some_and(|v| v >= config.threshold)
        })
        .count();
    Some(Fit {
        config,
        recall: detected as f64 / positives as f64,
        robust_detections: key.0,
        max_independent,
        min_detected,
        gap: key.1,
        searched: weights.len() * bases.len(),
        pairs: (positives, negatives),
    })
}

fn better(a: &(usize, f64, f64), b: &(usize, f64, f64)) -> bool {
    (a.0, a.1, a.2)
        .partial_cmp(&(b.0, b.1, b.2))
        .is_some_and(|o| o == std::cmp::Ordering::Greater)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(eas: f64, wvc_z: f64, related: bool) -> Sample {
        let mut signals = Signals::default();
        signals.eas.similarity = Some(eas);
        signals.wvc.z = Some(wvc_z);
        Sample {
            signals,
            identical: false,
            related,
        }
    }

    #[test]
    fn identity_matches_compare_with_under_any_configuration() {
        use crate::score::compare_with;
        use crate::testutil::fingerprint;
        let base = fingerprint("a", 1, 0.0, 1);
        let others = [
            fingerprint("b", 1, 0.5, 2),
            fingerprint("c", 1, 3.0, 3),
            fingerprint("d", 2, 0.0, 4),
        ];
        let configs = [
            ScoreConfig::default(),
            ScoreConfig {
                weights: [0.1, 0.3, 0.2, 0.3, 0.1],
                baselines: [0.5, 0.7, 0.8],
                z_saturation: 6.0,
                threshold: 0.3,
            },
        ];
        for other in &others {
            let signals = compare_with(&base, other, None, &ScoreConfig::default()).signals;
            for c in &configs {
                let want = compare_with(&base, other, None, c).identity_score.unwrap();
                let got = identity(&signals, false, c).unwrap();
                assert!((want - got).abs() < 1e-12, "{want} vs {got}");
            }
        }
        // Without positional evidence the score stays below the threshold.
        let c = ScoreConfig::default();
        let mut only_eas = Signals::default();
        only_eas.eas.similarity = Some(1.0);
        assert!(identity(&only_eas, false, &c).unwrap() < c.threshold);
        assert_eq!(identity(&Signals::default(), false, &c), None);
        assert_eq!(identity(&Signals::default(), true, &c), Some(1.0));
    }

    #[test]
    fn fit_ignores_razor_thin_detections() {
        // The third related pair leads the independent one by less than the margin: it does not steer the fit.
        let samples = vec![
            sample(0.5, 30.0, true),
            sample(0.6, 20.0, true),
            sample(0.62, 0.0, true),
            sample(0.6, 0.5, false),
        ];
        let f = fit(&samples, &Grid::default(), &ScoreConfig::default()).unwrap();
        assert_eq!(f.robust_detections, 2);
        assert!(f.gap >= Grid::default().min_margin);
        assert!(f.config.threshold > f.max_independent);
    }

    #[test]
    fn fit_separates_when_one_signal_does() {
        // EAS is noise (independent pairs score higher); WVC z separates perfectly.
        let samples = vec![
            sample(0.5, 30.0, true),
            sample(0.6, 9.0, true),
            sample(0.9, 1.0, false),
            sample(0.95, -1.0, false),
        ];
        let f = fit(&samples, &Grid::default(), &ScoreConfig::default()).unwrap();
        assert_eq!(f.recall, 1.0);
        assert!(f.config.weights[4] > f.config.weights[0], "{:?}", f.config);
        assert!(f.config.weights.iter().all(|w| *w >= 0.05 - 1e-9));
        assert!((f.config.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        for s in &samples {
            let score = identity(&s.signals, s.identical, &f.config).unwrap();
            assert_eq!(score >= f.config.threshold, s.related);
        }
        assert!(f.gap > 0.0 && f.max_independent < f.config.threshold);
        assert!(fit(&samples[..2], &Grid::default(), &ScoreConfig::default()).is_none());
    }
}
