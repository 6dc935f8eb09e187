//! The lineage-zoo evaluation as a test: generate the zoo (cached under `target/tmp/zoo`, rebuilt only when a
//! recipe changes), run `provsearch eval` on the report split, and require 100% specificity. The other metrics
//! are printed (`cargo test --test eval -- --nocapture`) and recorded in docs/eval.md, not asserted.
//!
//! The MiniLM derivations need `scripts/fetch-test-models.sh` (which `scripts/test.sh` runs); without the
//! snapshot their pairs are skipped and the rest is still evaluated.

use datasets::zoo::{self, pairs, Sources};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The generated zoo, once per test process.
fn zoo_root() -> &'static (PathBuf, bool) {
    static ZOO: OnceLock<(PathBuf, bool)> = OnceLock::new();
    ZOO.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("zoo");
        let sources = Sources::from_checkout();
        let start = std::time::Instant::now();
        let summary = zoo::generate(&root, &sources).expect("zoo generation");
        eprintln!(
            "zoo: {} built, {} cached, {} skipped in {:.1}s",
            summary.built.len(),
            summary.cached.len(),
            summary.skipped.len(),
            start.elapsed().as_secs_f64()
        );
        (root, sources.minilm.is_some())
    })
}

fn provsearch(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provsearch"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run provsearch");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pairs_file_matches_the_recipes() {
    let labelled =
        pairs::labelled_pairs(&repo().join("datasets/zoo/trained/MANIFEST.json")).unwrap();
    let committed = std::fs::read_to_string(repo().join("datasets/pairs.csv")).unwrap();
    assert!(
        committed == pairs::to_csv(&labelled),
        "datasets/pairs.csv is out of date: cargo run -p datasets --bin zoo -- --pairs datasets/pairs.csv"
    );
}

#[test]
fn report_split_has_full_specificity() {
    let (root, with_minilm) = zoo_root();
    let root = root.to_string_lossy().into_owned();
    let mut args = vec![
        "eval",
        "datasets/pairs.csv",
        "--zoo",
        &root,
        "--split",
        "report",
        "--json",
    ];
    if !with_minilm {
        args.push("--skip-missing");
    }
    let (ok, stdout, stderr) = provsearch(&args);
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    eprintln!(
        "eval (report split): {} pairs, accuracy {:.4}, precision {:.4}, recall {:.4}, specificity {:.4}, AUC {:.4}, \
         {} skipped",
        report["pairs"], report["accuracy"].as_f64().unwrap_or(f64::NAN), report["precision"].as_f64().unwrap_or(f64::NAN),
        report["recall"].as_f64().unwrap_or(f64::NAN), report["specificity"].as_f64().unwrap_or(f64::NAN),
        report["auc"].as_f64().unwrap_or(f64::NAN), report["skipped_pairs"]
    );
    for (name, c) in report["by_category"].as_object().unwrap() {
        eprintln!("  {name:<40} {}/{}", c["correct"], c["n"]);
    }
    for m in report["misclassified"].as_array().unwrap() {
        eprintln!(
            "  missed: {} ~ {} ({}), score {}",
            m["a"], m["b"], m["category"], m["identity_score"]
        );
    }
    assert!(
        report["pairs"].as_u64().unwrap() >= 100,
        "{}",
        report["pairs"]
    );
    assert_eq!(report["specificity"].as_f64(), Some(1.0), "{stderr}");
    for (name, c) in report["by_category"].as_object().unwrap() {
        if c["related"] == false {
            assert_eq!(c["correct"], c["n"], "exclusion {name}");
        }
    }
    assert!(ok, "eval exited non-zero: {stderr}");
}

#[test]
fn specificity_floor_fails_the_run_and_configs_load() {
    let (root, _) = zoo_root();
    let root = root.to_string_lossy().into_owned();
    let dir = tempfile::tempdir().unwrap();
    // A threshold of zero calls every pair related: specificity collapses and the command must fail.
    let loose = dir.path().join("loose.json");
    std::fs::write(
        &loose,
        r#"{"weights": [0.2, 0.2, 0.2, 0.2, 0.2], "baselines": [0.8, 0.9, 0.9], "z_saturation": 12.0, "threshold": 0.0}"#,
    )
    .unwrap();
    let loose = loose.to_string_lossy().into_owned();
    let args = [
        "eval",
        "datasets/pairs.csv",
        "--zoo",
        &root,
        "--split",
        "calibration",
        "--config",
        &loose,
        "--skip-missing",
    ];
    let (ok, stdout, stderr) = provsearch(&args);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("specificity"), "{stderr}");
    // compare reads the same file.
    let a = format!("{root}/trained/L-base");
    let b = format!("{root}/trained/L-seed2");
    let (ok, stdout, stderr) = provsearch(&["compare", &a, &b, "--json", "--config", &loose]);
    assert!(ok, "{stderr}");
    let c: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(c["related"], true, "threshold 0 calls everything related");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"weights": [0, 0, 0, 0, 0], "baselines": [0.8, 0.9, 0.9], "z_saturation": 12.0, "threshold": 0.5}"#).unwrap();
    let (ok, _, stderr) = provsearch(&["compare", &a, &b, "--config", &bad.to_string_lossy()]);
    assert!(!ok && stderr.contains("weights"), "{stderr}");
}
