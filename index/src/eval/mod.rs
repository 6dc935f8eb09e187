//! Evaluation against labelled model pairs: the pairs file, metrics (accuracy, precision, recall, specificity,
//! ROC AUC, per category) and calibration of [`ScoreConfig`](crate::score::ScoreConfig) on one split.
//!
//! The pairs file is CSV with `#` comment lines and the header `a,b,label,category,difficulty,split,detail`:
//! model paths relative to a zoo root, `related` / `not-related`, the provenance-constitution category, a
//! difficulty, `calibration` / `report`, and a free-text detail (no commas). `datasets/pairs.csv` is the one
//! the lineage zoo generator writes.

pub mod calibrate;
pub mod metrics;

use std::path::{Path, PathBuf};

/// Why a pairs file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The pairs file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{}:{line}: {detail}", path.display())]
    Syntax {
        /// The pairs file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

/// Which pairs to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Pairs reserved for fitting the score configuration.
    Calibration,
    /// Pairs the results are reported on.
    Report,
    /// Every pair.
    All,
}

impl Split {
    /// Whether a pair's split name belongs to this selection.
    pub fn contains(self, split: &str) -> bool {
        match self {
            Split::All => true,
            Split::Calibration => split == "calibration",
            Split::Report => split == "report",
        }
    }
}

/// One labelled pair.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LabelledPair {
    /// First model, relative to the zoo root.
    pub a: String,
    /// Second model.
    pub b: String,
    /// Ground truth: provenance-linked or not.
    pub related: bool,
    /// Constitution category (linking mechanism or exclusion).
    pub category: String,
    /// easy, medium, hard or extreme.
    pub difficulty: String,
    /// `calibration` or `report`.
    pub split: String,
    /// What the pair is.
    pub detail: String,
}

const COLUMNS: [&str; 7] = [
    "a",
    "b",
    "label",
    "category",
    "difficulty",
    "split",
    "detail",
];

/// Parse a pairs file's text (`path` names it in errors).
pub fn parse_pairs(path: &Path, text: &str) -> Result<Vec<LabelledPair>, EvalError> {
    let syntax = |line: usize, detail: String| EvalError::Syntax {
        path: path.to_path_buf(),
        line,
        detail,
    };
    let mut header = false;
    let mut pairs = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(COLUMNS.len(), ',').map(str::trim).collect();
        if !header {
            if fields != COLUMNS {
                return Err(syntax(
                    i + 1,
                    format!("expected the header `{}`", COLUMNS.join(",")),
                ));
            }
            header = true;
            continue;
        }
        if fields.len() < COLUMNS.len() - 1 {
            return Err(syntax(
                i + 1,
                format!("{} fields, expected {}", fields.len(), COLUMNS.len()),
            ));
        }
        let related = match fields[2] {
            "related" => true,
            "not-related" => false,
            other => {
                return Err(syntax(
                    i + 1,
                    format!("label {other:?} is neither `related` nor `not-related`"),
                ))
            }
        };
        if !matches!(fields[5], "calibration" | "report") {
            return Err(syntax(
                i + 1,
                format!(
                    "split {:?} is neither `calibration` nor `report`",
                    fields[5]
                ),
            ));
        }
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(syntax(i + 1, "empty model path".into()));
        }
        pairs.push(LabelledPair {
            a: fields[0].into(),
            b: fields[1].into(),
            related,
            category: fields[3].into(),
            difficulty: fields[4].into(),
            split: fields[5].into(),
            detail: fields.get(6).copied().unwrap_or("").into(),
        });
    }
    if !header {
        return Err(syntax(0, "no header line".into()));
    }
    Ok(pairs)
}

/// Read and parse a pairs file.
pub fn read_pairs(path: &Path) -> Result<Vec<LabelledPair>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_pairs(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let p = Path::new("p.csv");
        let ok = "# c\na,b,label,category,difficulty,split,detail\nx,y,related,merging,easy,report,a b\n\
                  u,v,not-related,same-objective-only,hard,calibration,\n";
        let pairs = parse_pairs(p, ok).unwrap();
        assert_eq!(pairs.len(), 2);
        assert!(pairs[0].related && !pairs[1].related);
        assert_eq!(pairs[1].split, "calibration");
        assert!(
            Split::Report.contains(&pairs[0].split) && !Split::Report.contains(&pairs[1].split)
        );
        let bad_label = "a,b,label,category,difficulty,split,detail\nx,y,maybe,m,e,report,\n";
        assert!(matches!(
            parse_pairs(p, bad_label),
            Err(EvalError::Syntax { line: 2, .. })
        ));
        assert!(parse_pairs(p, "x,y,related,m,e,report,\n").is_err());
        let bad_split = "a,b,label,category,difficulty,split,detail\nx,y,related,m,e,train,\n";
        assert!(parse_pairs(p, bad_split).is_err());
    }
}
