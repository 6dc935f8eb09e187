//! Helpers: run the binary, locate the real test models, write synthetic and derived snapshots.

use datasets::synth::{build, Family, Spec};
use datasets::{Checkpoint, Storage};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Output of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `provsearch ARGS`.
pub fn provsearch<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    provsearch_env(args, &[])
}

/// Run `provsearch ARGS` with extra environment variables.
pub fn provsearch_env<I, S>(args: I, env: &[(&str, &Path)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provsearch"));
    cmd.args(args)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(cmd)
}

/// Run a prepared `provsearch` command and capture its outcome (a panic fails the test).
pub fn output(mut cmd: Command) -> Run {
    let out = cmd.output().expect("run provsearch");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "provsearch panicked:\n{}",
        run.stderr
    );
    run
}

/// The `summary` event of an `ingest --json` run (added, unchanged, failed, ...); fails the test without one.
pub fn ingest_summary(run: &Run) -> Value {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {} {}", run.stdout, run.stderr))
}

/// `provsearch compare A B --json`, parsed; fails the test on a non-zero exit.
pub fn compare(a: &Path, b: &Path) -> Value {
    let run = provsearch([Path::new("compare"), a, b, Path::new("--json")]);
    assert_eq!(run.code, 0, "compare failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("compare --json prints JSON")
}

/// A committed trained zoo model (`datasets/zoo/trained/NAME`: tiny Llama and GPT-2 models trained on text).
pub fn trained(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("datasets/zoo/trained")
        .join(name)
}

/// The real all-MiniLM-L6-v2 snapshot fetched by scripts/fetch-test-models.sh.
pub fn minilm() -> PathBuf {
    let root = std::env::var_os("PROVSEARCH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/test-models"));
    let dir = root.join("minilm");
    assert!(
        dir.join("model.safetensors").exists(),
        "the real test model is missing at {}: run scripts/fetch-test-models.sh",
        dir.display()
    );
    dir
}

/// Write a synthetic model snapshot.
pub fn synth(dir: &Path, family: Family, seed: u64) -> Checkpoint {
    let ckpt = build(&Spec::small(family, seed));
    ckpt.write(dir, Storage::F32, 1)
        .expect("write synthetic snapshot");
    ckpt
}

/// Write a derived copy of the snapshot at `src` after applying `f`.
pub fn derive(
    src: &Path,
    dst: &Path,
    storage: Storage,
    shards: usize,
    f: impl FnOnce(&mut Checkpoint),
) {
    let mut ckpt = Checkpoint::read(src).expect("read snapshot");
    f(&mut ckpt);
    ckpt.write(dst, storage, shards)
        .expect("write derived snapshot");
}

pub fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// `provsearch fingerprint PATH`.
pub fn fingerprint(path: &Path) -> Run {
    provsearch([Path::new("fingerprint"), path])
}

/// Fails unless the run exited 1 and stderr names `file` and contains every one of `words`.
pub fn assert_error(run: &Run, file: &str, words: &[&str]) {
    assert_eq!(
        run.code, 1,
        "expected exit 1, got {}: {}",
        run.code, run.stderr
    );
    assert!(
        run.stderr.contains(file),
        "error does not name {file}: {}",
        run.stderr
    );
    for w in words {
        assert!(
            run.stderr.to_lowercase().contains(&w.to_lowercase()),
            "error lacks {w:?}: {}",
            run.stderr
        );
    }
}
