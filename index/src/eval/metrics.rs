//! Classification metrics over scored pairs: confusion counts, accuracy, precision, recall, specificity, ROC AUC
//! (Mann–Whitney, ties counted half) and per-category tallies.

use serde::Serialize;
use std::collections::BTreeMap;

/// One evaluated pair, reduced to what the metrics need.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Ground truth.
    pub related: bool,
    /// The verdict (undecidable counts as not related).
    pub predicted: bool,
    /// Identity score (`None` when undecidable; ranked below every score).
    pub score: Option<f64>,
    /// Constitution category.
    pub category: String,
}

/// Tally of one category.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CategoryStats {
    /// Pairs.
    pub n: usize,
    /// Pairs classified correctly.
    pub correct: usize,
    /// Whether the category is a linking mechanism (its pairs are related).
    pub related: bool,
    /// Lowest and highest identity score in the category.
    pub min_score: Option<f64>,
    /// Highest identity score.
    pub max_score: Option<f64>,
}

/// Metrics of a set of pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Pairs evaluated.
    pub pairs: usize,
    /// Related pairs.
    pub positives: usize,
    /// Independent pairs.
    pub negatives: usize,
    /// Related pairs called related.
    pub true_positives: usize,
    /// Independent pairs called related.
    pub false_positives: usize,
    /// Independent pairs called not related.
    pub true_negatives: usize,
    /// Related pairs called not related.
    pub false_negatives: usize,
    /// (TP + TN) / pairs.
    pub accuracy: f64,
    /// TP / (TP + FP); 1 when nothing was called related.
    pub precision: f64,
    /// TP / positives (sensitivity); 1 without positives.
    pub recall: f64,
    /// TN / negatives; 1 without negatives.
    pub specificity: f64,
    /// Area under the ROC curve of the identity score.
    pub auc: f64,
    /// Per category.
    pub by_category: BTreeMap<String, CategoryStats>,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

/// ROC AUC: the probability that a random related pair scores above a random independent one (ties ½).
/// Undecidable pairs rank below every score. 1 (or NaN-free 0.5) conventions: 1.0 without both classes.
pub fn auc(scored: &[Scored]) -> f64 {
    let key = |s: &Scored| s.score.unwrap_or(f64::NEG_INFINITY);
    let pos: Vec<f64> = scored.iter().filter(|s| s.related).map(key).collect();
    let neg: Vec<f64> = scored.iter().filter(|s| !s.related).map(key).collect();
    if pos.is_empty() || neg.is_empty() {
        return 1.0;
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// Compute all metrics.
pub fn metrics(scored: &[Scored]) -> Metrics {
    let count = |f: &dyn Fn(&Scored) -> bool| scored.iter().filter(|s| f(s)).count();
    let tp = count(&|s| s.related && s.predicted);
    let fp = count(&|s| !s.related && s.predicted);
    let tn = count(&|s| !s.related && !s.predicted);
    let fn_ = count(&|s| s.related && !s.predicted);
    let mut by_category: BTreeMap<String, CategoryStats> = BTreeMap::new();
    for s in scored {
        let c = by_category.entry(s.category.clone()).or_default();
        c.n += 1;
        c.correct += usize::from(s.related == s.predicted);
        c.related = s.related;
        if let Some(v) = s.score {
            c.min_score = Some(c.min_score.map_or(v, |m| m.min(v)));
            c.max_score = Some(c.max_score.map_or(v, |m| m.max(v)));
        }
    }
    Metrics {
        pairs: scored.len(),
        positives: tp + fn_,
        negatives: tn + fp,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fn_,
        accuracy: ratio(tp + tn, scored.len()),
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        specificity: ratio(tn, tn + fp),
        auc: auc(scored),
        by_category,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(related: bool, score: f64, t: f64, category: &str) -> Scored {
        Scored {
            related,
            predicted: score >= t,
            score: Some(score),
            category: category.into(),
        }
    }

    #[test]
    fn confusion_rates_and_auc() {
        let v = vec![
            s(true, 0.9, 0.5, "m"),
            s(true, 0.4, 0.5, "m"),
            s(false, 0.6, 0.5, "x"),
            s(false, 0.1, 0.5, "x"),
            s(false, 0.4, 0.5, "y"),
        ];
        let m = metrics(&v);
        assert_eq!(
            (
                m.true_positives,
                m.false_negatives,
                m.false_positives,
                m.true_negatives
            ),
            (1, 1, 1, 2)
        );
        assert!((m.recall - 0.5).abs() < 1e-12 && (m.specificity - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.precision - 0.5).abs() < 1e-12 && (m.accuracy - 0.6).abs() < 1e-12);
        // 0.9 beats all three; 0.4 beats 0.1, ties 0.4, loses to 0.6: (3 + 1.5) / 6.
        assert!((m.auc - 0.75).abs() < 1e-12);
        assert_eq!(m.by_category["x"].n, 2);
        assert_eq!(m.by_category["x"].correct, 1);
        assert_eq!(m.by_category["m"].min_score, Some(0.4));
    }

    #[test]
    fn undecidable_ranks_lowest() {
        let mut v = vec![s(false, 0.0, 0.5, "x")];
        v.push(Scored {
            related: true,
            predicted: false,
            score: None,
            category: "m".into(),
        });
        assert_eq!(auc(&v), 0.0);
        assert_eq!(metrics(&v).recall, 0.0);
    }
}
