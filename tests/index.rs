//! End-to-end tests of `provsearch ingest`, `query`, `serve` and `index` on real checkpoint files: synthetic
//! Llama/GPT-2/BERT families with mechanical derivations and fresh re-initialisations, plus the real
//! all-MiniLM-L6-v2 (when `scripts/fetch-test-models.sh` has fetched it) and derivations of it; crash safety
//! under SIGKILL; damage detection.

use datasets::synth::{build, Family, Spec};
use datasets::{derive, Checkpoint, Storage};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_provsearch"));
    c.env_remove("PROVSEARCH_INDEX")
        .env_remove("PROVSEARCH_FAILPOINT");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run provsearch")
}

fn ok_json(args: &[&str]) -> Value {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// `query model MODEL --index IDX --json --no-server EXTRA...`: the result rows.
fn query_results(index: &str, model: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "query",
        "model",
        model,
        "--index",
        index,
        "--json",
        "--no-server",
    ];
    args.extend_from_slice(extra);
    let r = ok_json(&args);
    r["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{args:?}: no results array: {r}"))
        .clone()
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn minilm() -> Option<PathBuf> {
    let dir = std::env::var_os("PROVSEARCH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/test-models"))
        .join("minilm");
    dir.join("model.safetensors").is_file().then_some(dir)
}

/// Write the model zoo: returns family name → member directory names (the first is the base), and the names
/// of the fresh re-initialisations (unrelated to everything).
fn write_zoo(root: &Path, with_minilm: bool) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut families = BTreeMap::new();
    let mut fresh = Vec::new();
    let add =
        |families: &mut BTreeMap<String, Vec<String>>, fam: &str, name: &str, c: &Checkpoint| {
            c.write(&root.join(name), Storage::F32, 1).unwrap();
            families
                .entry(fam.to_string())
                .or_default()
                .push(name.to_string());
        };
    let mut bases: Vec<(String, Checkpoint)> = [
        ("llama", Family::Llama, 11),
        ("gpt2", Family::Gpt2, 12),
        ("bert", Family::Bert, 13),
    ]
    .iter()
    .map(|&(n, f, s)| (n.to_string(), build(&Spec::small(f, s))))
    .collect();
    if with_minilm {
        if let Some(dir) = minilm() {
            bases.push(("minilm".into(), Checkpoint::read(&dir).unwrap()));
        }
    }
    for (name, base) in &bases {
        add(&mut families, name, &format!("{name}-base"), base);
        let mut c = base.clone();
        derive::add_noise(&mut c, 0.3, 5);
        add(&mut families, name, &format!("{name}-tuned"), &c);
        let mut c = base.clone();
        derive::int8_per_channel(&mut c);
        add(&mut families, name, &format!("{name}-int8"), &c);
        let mut c = base.clone();
        derive::lora_merge(
            &mut c,
            &["q_proj", "v_proj", "query", "value", "c_attn"],
            4,
            0.5,
            6,
        );
        add(&mut families, name, &format!("{name}-lora"), &c);
        let mut c = base.clone();
        derive::fresh_init(&mut c, 0.02, 99);
        let fname = format!("{name}-fresh");
        c.write(&root.join(&fname), Storage::F32, 1).unwrap();
        fresh.push(fname);
    }
    (families, fresh)
}

#[test]
fn ingest_then_every_derivative_finds_its_relative() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let (families, fresh) = write_zoo(&models, true);
    // One broken model: recorded as failed, never stops the others.
    std::fs::create_dir_all(models.join("broken")).unwrap();
    std::fs::write(models.join("broken/config.json"), b"{}").unwrap();
    std::fs::write(
        models.join("broken/model.safetensors"),
        b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage",
    )
    .unwrap();
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    let total: usize = families.values().map(Vec::len).sum::<usize>() + fresh.len();

    let o = run(&[
        "ingest",
        models.to_str().unwrap(),
        "--index",
        idx_s,
        "--json",
        "--commit-every",
        "5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = json_lines(&o.stdout);
    let summary = lines
        .iter()
        .find(|l| l["event"] == "summary")
        .expect("summary line");
    assert_eq!(summary["added"], total, "{summary}");
    assert_eq!(summary["failed"], 1, "{summary}");
    let failed = lines.iter().find(|l| l["status"] == "failed").unwrap();
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("model.safetensors"),
        "{failed}"
    );

    for (fam, members) in &families {
        for m in members.iter().skip(1) {
            let r = ok_json(&[
                "query",
                "model",
                m,
                "--index",
                idx_s,
                "--json",
                "--no-server",
            ]);
            let results = r["results"].as_array().unwrap();
            assert!(
                results.iter().all(|h| h["model_id"] != *m),
                "{m}: query model not excluded"
            );
            let top = &results[0];
            assert_eq!(top["related"], true, "{m}: {top}");
            let id = top["model_id"].as_str().unwrap();
            assert!(
                members.iter().any(|x| x == id),
                "{m} ({fam}): top result {id}"
            );
            assert!(top["signals"]["wvc"].is_number());
            for h in results {
                let id = h["model_id"].as_str().unwrap();
                if fresh.iter().any(|f| f == id) {
                    assert_ne!(h["related"], true, "{m}: fresh {id} reported related");
                }
            }
        }
    }
    for f in &fresh {
        for h in &query_results(idx_s, f, &["--top-k", "50"]) {
            assert_ne!(h["related"], true, "fresh {f} related to {}", h["model_id"]);
        }
    }

    // A model given as a path (not in the index) finds its family; the exhaustive mode agrees.
    let extra = tmp.path().join("llama-extra");
    let mut c = build(&Spec::small(Family::Llama, 11));
    derive::add_noise(&mut c, 0.5, 77);
    c.write(&extra, Storage::BF16, 2).unwrap();
    for exact in [false, true] {
        let mut args = vec![
            "query",
            "model",
            extra.to_str().unwrap(),
            "--index",
            idx_s,
            "--json",
            "--no-server",
        ];
        if exact {
            args.push("--exact");
        }
        let r = ok_json(&args);
        let top = r["results"][0]["model_id"].as_str().unwrap().to_string();
        assert!(top.starts_with("llama-") && !top.contains("fresh"), "{top}");
    }
    // CSV and the human table.
    let o = run(&[
        "query",
        "model",
        "gpt2-tuned",
        "--index",
        idx_s,
        "--csv",
        "--no-server",
    ]);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(csv.starts_with("rank,model_id,identity_score"), "{csv}");
    let o = run(&[
        "query",
        "model",
        "gpt2-tuned",
        "--index",
        idx_s,
        "--no-server",
    ]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("gpt2-"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Filters restrict results.
    let r = query_results(
        idx_s,
        "llama-tuned",
        &["--filter", "model_type:bert", "--top-k", "50"],
    );
    assert!(
        !r.is_empty() && r.iter().all(|h| h["model_type"] == "bert"),
        "{r:?}"
    );
    // `--sketch-share` is a fraction; this index is too small for a graph, so every share scans all vectors
    // and ranks the same models.
    let ranked = |share: &str| {
        query_results(idx_s, "llama-tuned", &["--sketch-share", share])
            .iter()
            .map(|h| h["model_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all = ranked("1");
    assert!(!all.is_empty());
    assert_eq!(ranked("0"), all);
    for bad in ["1.5", "-0.1", "half"] {
        let flag = format!("--sketch-share={bad}");
        let o = run(&["query", "model", "llama-tuned", "--index", idx_s, &flag]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("--sketch-share") && err.contains(bad),
            "{bad}: {err}"
        );
    }
    // Text search.
    let r = ok_json(&["query", "text", "gpt2", "--index", idx_s, "--json"]);
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["model_id"] == "gpt2-base"),
        "{r}"
    );

    // Resumable: a rerun finds everything committed.
    let o = run(&[
        "ingest",
        models.to_str().unwrap(),
        "--index",
        idx_s,
        "--json",
    ]);
    let summary = json_lines(&o.stdout)
        .into_iter()
        .find(|l| l["event"] == "summary")
        .unwrap();
    assert_eq!(
        (summary["added"].as_u64(), summary["unchanged"].as_u64()),
        (Some(0), Some(total as u64)),
        "{summary}"
    );

    let stats = ok_json(&["index", "stats", "--index", idx_s, "--json"]);
    assert_eq!(stats["live"], total);
    assert_eq!(stats["failures"], 1);
    assert_eq!(
        ok_json(&["index", "verify", "--index", idx_s, "--json"])["ok"],
        true
    );
}

/// The committed trained zoo: a model trained from L-base's seed (the same random start) on other text finds
/// no relative, and its hits say why the correlated weights do not count; a heavy fine-tune of L-base still
/// finds its family.
#[test]
fn a_same_seed_run_finds_no_relative_and_says_why() {
    let zoo = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/zoo/trained");
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let idx = idx.to_str().unwrap();
    let o = run(&["ingest", zoo.to_str().unwrap(), "--index", idx]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let same_seed = zoo.join("L-sameinit");
    let results = query_results(idx, same_seed.to_str().unwrap(), &["--top-k", "20"]);
    assert!(!results.is_empty());
    for h in &results {
        assert_ne!(h["related"], true, "{h}");
    }
    let base = results
        .iter()
        .find(|h| h["model_id"] == "L-base")
        .expect("L-base among the candidates");
    assert!(base["signals"]["wvc"].as_f64().unwrap() > 0.1, "{base}");
    assert!(
        base["reason"]
            .as_str()
            .unwrap()
            .starts_with("shared random start only"),
        "{base}"
    );

    let heavy = zoo.join("L-ft-heavy");
    let results = query_results(idx, heavy.to_str().unwrap(), &[]);
    assert_eq!(results[0]["related"], true, "{}", results[0]);
    assert!(
        results[0]["model_id"].as_str().unwrap().starts_with("L-"),
        "{}",
        results[0]
    );
}

#[test]
fn hf_cache_layout_and_revisions() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("hub/models--acme--tiny");
    let rev1 = "a".repeat(40);
    let c = build(&Spec::small(Family::Gpt2, 3));
    c.write(&repo.join("snapshots").join(&rev1), Storage::F32, 1)
        .unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), &rev1).unwrap();
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    let o = run(&[
        "ingest",
        tmp.path().join("hub").to_str().unwrap(),
        "--index",
        idx_s,
        "--json",
    ]);
    let lines = json_lines(&o.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l["id"] == "acme/tiny" && l["status"] == "added"),
        "{lines:?}"
    );

    // A new revision replaces the old one.
    let rev2 = "b".repeat(40);
    let mut c2 = c.clone();
    derive::add_noise(&mut c2, 0.1, 4);
    c2.write(&repo.join("snapshots").join(&rev2), Storage::F32, 1)
        .unwrap();
    std::fs::write(repo.join("refs/main"), &rev2).unwrap();
    let o = run(&[
        "ingest",
        "--hf-cache",
        tmp.path().join("hub").to_str().unwrap(),
        "--index",
        idx_s,
        "--json",
    ]);
    let lines = json_lines(&o.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l["id"] == "acme/tiny" && l["status"] == "replaced"),
        "{lines:?}"
    );
    let stats = ok_json(&["index", "stats", "--index", idx_s, "--json"]);
    assert_eq!(
        (stats["live"].as_u64(), stats["deleted"].as_u64()),
        (Some(1), Some(1))
    );
    let o = run(&["index", "compact", "--index", idx_s]);
    assert!(o.status.success());
    let stats = ok_json(&["index", "stats", "--index", idx_s, "--json"]);
    assert_eq!(
        (stats["live"].as_u64(), stats["deleted"].as_u64()),
        (Some(1), Some(0))
    );

    // Shards partition the models; merge joins them.
    let models = tmp.path().join("models");
    let (families, fresh) = write_zoo(&models, false);
    let total = families.values().map(Vec::len).sum::<usize>() + fresh.len();
    let mut shard_dirs = Vec::new();
    let mut added = 0;
    for i in 0..2 {
        let d = tmp.path().join(format!("shard{i}"));
        let o = run(&[
            "ingest",
            models.to_str().unwrap(),
            "--index",
            d.to_str().unwrap(),
            "--shard",
            &format!("{i}/2"),
            "--json",
        ]);
        let s = json_lines(&o.stdout)
            .into_iter()
            .find(|l| l["event"] == "summary")
            .unwrap();
        added += s["added"].as_u64().unwrap();
        shard_dirs.push(d);
    }
    assert_eq!(added, total as u64);
    let merged = tmp.path().join("merged");
    let mut args = vec!["index", "merge", merged.to_str().unwrap()];
    args.extend(shard_dirs.iter().map(|d| d.to_str().unwrap()));
    assert!(run(&args).status.success());
    let stats = ok_json(&[
        "index",
        "stats",
        "--index",
        merged.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(stats["live"], total);
}

/// Models for the crash tests: small and quick to fingerprint.
fn crash_zoo(root: &Path) -> usize {
    let mut n = 0;
    for (f, seed) in [(Family::Llama, 1), (Family::Gpt2, 2), (Family::Bert, 3)] {
        let base = build(&Spec::small(f, seed));
        for k in 0..4u64 {
            let mut c = base.clone();
            derive::add_noise(&mut c, 0.2, 10 + k);
            c.write(&root.join(format!("m{seed}-{k}")), Storage::F32, 1)
                .unwrap();
            n += 1;
        }
    }
    n
}

fn committed_ids(stdout: &[u8]) -> HashSet<String> {
    json_lines(stdout)
        .iter()
        .filter(|l| l["event"] == "commit")
        .flat_map(|l| l["models"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

fn check_index(idx: &Path, must_have: &HashSet<String>) {
    if !idx.join("manifest.json").exists() {
        assert!(must_have.is_empty(), "commits reported but no manifest");
        return;
    }
    let r = provsearch_index::IndexReader::open(idx).expect("index opens after a crash");
    r.verify().expect("index verifies after a crash");
    for id in must_have {
        assert_eq!(
            r.find_id(id).unwrap().len(),
            1,
            "committed model {id} missing after a crash"
        );
    }
}

#[test]
fn sigkill_during_ingest_loses_nothing_committed() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let total = crash_zoo(&models);
    let m = models.to_str().unwrap();
    // How long a full ingest takes, to spread the kills over it.
    let t = Instant::now();
    let full = tmp.path().join("full");
    assert!(
        run(&["ingest", m, "--index", full.to_str().unwrap(), "-j", "1"])
            .status
            .success()
    );
    let span = t.elapsed().as_millis().max(50) as u64;

    let mut state = 0x2545_f491_4f6c_dd1du64;
    for trial in 0..24 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = state % (span + span / 4);
        let idx = tmp.path().join(format!("idx{trial}"));
        let idx_s = idx.to_str().unwrap();
        let mut child = bin()
            .args([
                "ingest",
                m,
                "--index",
                idx_s,
                "--json",
                "--commit-every",
                "2",
                "-j",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                all.extend_from_slice(line.as_bytes());
                all.push(b'\n');
            }
            all
        });
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let out = reader.join().unwrap();
        let committed = committed_ids(&out);
        check_index(&idx, &committed);
        // A rerun completes the rest.
        let o = run(&["ingest", m, "--index", idx_s, "--json"]);
        assert!(
            o.status.success(),
            "trial {trial}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r = provsearch_index::IndexReader::open(&idx).unwrap();
        assert_eq!(r.live_count(), total as u64, "trial {trial}");
        r.verify().unwrap();
    }

    // A crash between writing a segment and replacing the manifest leaves the previous state, and the orphan
    // segment is collected by the next writer.
    let idx = tmp.path().join("failpoint");
    let o = bin()
        .args([
            "ingest",
            m,
            "--index",
            idx.to_str().unwrap(),
            "--commit-every",
            "4",
            "--json",
        ])
        .env("PROVSEARCH_FAILPOINT", "commit-before-manifest")
        .output()
        .unwrap();
    assert!(!o.status.success());
    check_index(&idx, &HashSet::new());
    let r = provsearch_index::IndexReader::open(&idx).unwrap();
    assert_eq!(r.live_count(), 0);
    assert!(run(&["ingest", m, "--index", idx.to_str().unwrap()])
        .status
        .success());
    let r = provsearch_index::IndexReader::open(&idx).unwrap();
    assert_eq!(r.live_count(), total as u64);
    assert_eq!(
        std::fs::read_dir(idx.join("segments")).unwrap().count(),
        r.segments().len()
    );
}

#[test]
fn readers_during_ingest_see_committed_states() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let total = crash_zoo(&models);
    let idx = tmp.path().join("idx");
    let mut child = bin()
        .args([
            "ingest",
            models.to_str().unwrap(),
            "--index",
            idx.to_str().unwrap(),
            "--commit-every",
            "1",
            "-j",
            "1",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = HashSet::new();
    loop {
        let done = child.try_wait().unwrap().is_some();
        if idx.join("manifest.json").exists() {
            let r = provsearch_index::IndexReader::open(&idx).expect("open during ingest");
            r.verify().expect("a committed state verifies");
            assert_eq!(r.live_count(), r.manifest().record_count());
            seen.insert(r.live_count());
            let o = run(&[
                "query",
                "text",
                "m1",
                "--index",
                idx.to_str().unwrap(),
                "--json",
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = provsearch_index::IndexReader::open(&idx).unwrap();
    assert_eq!(r.live_count(), total as u64);
    assert!(seen.len() > 1, "saw only {seen:?}");
}

#[test]
fn serve_answers_queries_and_picks_up_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    crash_zoo(&models);
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    assert!(run(&["ingest", models.to_str().unwrap(), "--index", idx_s])
        .status
        .success());
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = KillOnDrop(
        bin()
            .args(["serve", "--index", idx_s, "--listen", "127.0.0.1:0"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !idx.join("serve.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = ok_json(&["query", "model", "m1-0", "--index", idx_s, "--json"]);
    assert_eq!(r["via_server"], true, "{r}");
    assert!(
        r["results"][0]["model_id"]
            .as_str()
            .unwrap()
            .starts_with("m1-"),
        "{r}"
    );
    let cold = ok_json(&[
        "query",
        "model",
        "m1-0",
        "--index",
        idx_s,
        "--json",
        "--no-server",
    ]);
    assert_eq!(cold["results"][0]["model_id"], r["results"][0]["model_id"]);

    // A commit made while serving is picked up.
    let more = tmp.path().join("more");
    let mut c = build(&Spec::small(Family::Llama, 1));
    derive::add_noise(&mut c, 0.2, 500);
    c.write(&more.join("late-model"), Storage::F32, 1).unwrap();
    assert!(run(&["ingest", more.to_str().unwrap(), "--index", idx_s])
        .status
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = ok_json(&["query", "model", "late-model", "--index", idx_s, "--json"]);
        if r["via_server"] == true && r["query"]["model_id"] == "late-model" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not pick up the commit: {r}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn damage_is_reported_with_the_file_name_and_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    crash_zoo(&models);
    let idx = tmp.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    assert!(run(&[
        "ingest",
        models.to_str().unwrap(),
        "--index",
        idx_s,
        "--commit-every",
        "100"
    ])
    .status
    .success());
    let seg = std::fs::read_dir(idx.join("segments"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let check = |args: &[&str], needle: &str| {
        let o = run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: `{needle}` not in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    };

    let records = seg.join("fingerprints.rkyv");
    let original = std::fs::read(&records).unwrap();
    let mut bad = original.clone();
    bad[original.len() / 3] ^= 0xff;
    std::fs::write(&records, &bad).unwrap();
    check(&["index", "verify", "--index", idx_s], "fingerprints.rkyv");
    std::fs::write(&records, &original[..original.len() / 2]).unwrap();
    check(
        &["query", "model", "m1-1", "--index", idx_s, "--no-server"],
        "fingerprints.rkyv",
    );
    std::fs::write(&records, &original).unwrap();

    let vectors = seg.join("vectors.bin");
    let v = std::fs::read(&vectors).unwrap();
    std::fs::write(&vectors, &v[..v.len() - 7]).unwrap();
    check(
        &["query", "model", "m1-1", "--index", idx_s, "--no-server"],
        "vectors.bin",
    );
    check(&["index", "verify", "--index", idx_s], "vectors.bin");
    std::fs::write(&vectors, &v).unwrap();

    let channels = seg.join("channels.bin");
    let c = std::fs::read(&channels).unwrap();
    std::fs::write(&channels, &c[..c.len() - 5]).unwrap();
    check(
        &["query", "model", "m1-1", "--index", idx_s, "--no-server"],
        "channels.bin",
    );
    let mut bad = c.clone();
    bad[c.len() / 2] ^= 0x10;
    std::fs::write(&channels, &bad).unwrap();
    check(&["index", "verify", "--index", idx_s], "channels.bin");
    std::fs::write(&channels, &c).unwrap();

    let manifest = idx.join("manifest.json");
    let text = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    check(&["index", "stats", "--index", idx_s], "manifest.json");
    check(
        &["query", "model", "m1-1", "--index", idx_s, "--no-server"],
        "manifest.json",
    );
    std::fs::write(&manifest, &text).unwrap();
    assert!(run(&["index", "verify", "--index", idx_s]).status.success());

    check(
        &[
            "query",
            "model",
            "no-such-model",
            "--index",
            idx_s,
            "--no-server",
        ],
        "no-such-model",
    );
    check(
        &[
            "query",
            "model",
            "m1-1",
            "--index",
            tmp.path().join("nothing").to_str().unwrap(),
        ],
        "no provsearch index",
    );
}
