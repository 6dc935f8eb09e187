//! `--download`: Hub ids fetched into the cache from a fake Hub on 127.0.0.1 ([`super::fake_hub`]), never from
//! the internet. The fetched model must fingerprint like its local copy, resolve offline afterwards, and be
//! fetched without pickle or code; every failure must name the repository and leave nothing outside the
//! cache.

use super::fake_hub::{sha256, FakeHub, FakeRepo};
use super::util::{assert_error, derive, minilm, output, synth, Run};
use datasets::synth::Family;
use datasets::Storage;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const COMMIT_A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const COMMIT_B: &str = "b2c3d4e5f60718293a4b5c6d7e8f9012345678a1";

/// Run `provsearch ARGS` with only the Hugging Face environment given (no token, proxy or offline switch
/// from the machine).
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provsearch"));
    cmd.args(args);
    for var in [
        "HF_HUB_CACHE",
        "HF_HOME",
        "HF_ENDPOINT",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HF_TOKEN_PATH", "/nonexistent/provsearch-test-token");
    for (k, v) in env {
        cmd.env(k, v);
    }
    output(cmd)
}

fn json(run: &Run) -> Value {
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON on stdout")
}

fn identity(compare: &Value) -> f64 {
    compare["identity_score"]
        .as_f64()
        .unwrap_or_else(|| panic!("no identity score in {compare}"))
}

/// (name, sha256) of every weight file of a fingerprint.
fn file_digests(f: &Value) -> Vec<(String, String)> {
    f["source"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().to_string(),
                d["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every path below `dir` whose file name is `name`.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == name) {
                found.push(path.clone());
            }
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    found
}

#[test]
fn download_fetches_only_what_the_fingerprint_reads_and_then_resolves_offline() {
    let local = minilm();
    let local_arg = local.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let repo = FakeRepo::from_dir("acme/minilm", COMMIT_A, &local)
        .with_file("pytorch_model.bin", b"\x80\x02}q\x00.".to_vec())
        .with_file("model.pt", b"\x80\x02}q\x00.".to_vec())
        .with_file("modeling_minilm.py", "import os\nos.system('false')\n");
    let hub = FakeHub::start(vec![repo]);
    let url = hub.url().to_string();
    let env = [
        ("HF_ENDPOINT", url.as_str()),
        ("HF_HUB_CACHE", cache.to_str().unwrap()),
    ];

    // Without --download the network is not used, and the error says how to fetch the model.
    let missing = run(&["fingerprint", "acme/minilm"], &env);
    assert_error(
        &missing,
        "acme/minilm",
        &["not in the Hugging Face cache", "--download"],
    );
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());

    let first = run(
        &["fingerprint", "--json", "--download", "acme/minilm"],
        &env,
    );
    let fetched = json(&first);
    assert!(
        first.stderr.contains("downloaded acme/minilm"),
        "{}",
        first.stderr
    );
    assert_eq!(fetched["source"]["id"], "acme/minilm");
    assert_eq!(fetched["source"]["revision"], COMMIT_A);

    // The same fingerprint as the local directory: every signal, and the files' SHA-256 (read for free from
    // the cache's blob names, so they are the verified content hashes).
    let local_fp = json(&run(&["fingerprint", "--json", "--sha256", local_arg], &[]));
    for key in ["metadata", "tokenizer", "weights"] {
        assert_eq!(fetched[key], local_fp[key], "{key} differs");
    }
    assert_eq!(file_digests(&fetched), file_digests(&local_fp));
    assert!(fetched["source"]["content_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    // Only what the fingerprint reads was requested: never pickle, code, or files it does not read.
    for file in [
        "config.json",
        "README.md",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "model.safetensors",
    ] {
        assert!(hub.file_requests(file) > 0, "{file} was not fetched");
    }
    // hf-hub asks for the first byte (metadata), then for everything from the first byte on.
    let ranges: Vec<Option<String>> = hub
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/model.safetensors"))
        .map(|r| r.range)
        .collect();
    assert!(ranges.contains(&Some("bytes=0-0".into())), "{ranges:?}");
    assert!(ranges.contains(&Some("bytes=0-".into())), "{ranges:?}");
    for r in hub.requests() {
        for refused in [".bin", ".pt", ".py", "modules.json", "1_Pooling"] {
            assert!(!r.path.contains(refused), "requested {}", r.path);
        }
        assert_eq!(r.authorization, None, "no token was configured");
    }

    // The cache holds the standard layout: refs/main, and snapshot links to blobs named by SHA-256.
    let repo_dir = cache.join("models--acme--minilm");
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        COMMIT_A
    );
    assert!(!repo_dir.join("refs").join(COMMIT_A).exists());
    let link = std::fs::read_link(
        repo_dir
            .join("snapshots")
            .join(COMMIT_A)
            .join("model.safetensors"),
    )
    .unwrap();
    let local_sha = sha256(&std::fs::read(local.join("model.safetensors")).unwrap());
    assert_eq!(link, Path::new("../../blobs").join(&local_sha));

    // compare --download finds the model complete in the cache: no request, and identity with the local copy.
    let before = hub.requests().len();
    let c = json(&run(
        &["compare", "--json", "--download", "acme/minilm", local_arg],
        &env,
    ));
    assert!(identity(&c) >= 0.9999, "{c}");
    assert_eq!(
        hub.requests().len(),
        before,
        "a complete model was fetched again"
    );

    // With the Hub gone, the id resolves from the cache, with --download or without.
    drop(hub);
    for args in [
        &["fingerprint", "--json", "--download", "acme/minilm"][..],
        &["fingerprint", "--json", "acme/minilm"][..],
    ] {
        let again = run(args, &env);
        assert_eq!(again.code, 0, "{}", again.stderr);
        assert_eq!(again.stdout, first.stdout);
    }
}

#[test]
fn sharded_repos_download_and_interrupted_downloads_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    synth(&src, Family::Llama, 7);
    let sharded = tmp.path().join("sharded");
    derive(&src, &sharded, Storage::F32, 3, |_| {});
    let index: Value = serde_json::from_slice(
        &std::fs::read(sharded.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    let mut shards: Vec<String> = index["weight_map"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    shards.sort();
    shards.dedup();
    assert_eq!(shards.len(), 3, "{shards:?}");

    let cache = tmp.path().join("hub");
    let repo = FakeRepo::from_dir("acme/sharded", COMMIT_B, &sharded).with_file(
        "pytorch_model-00001-of-00003.bin",
        b"\x80\x02}q\x00.".to_vec(),
    );
    let hub = FakeHub::start(vec![repo]);
    let env = [
        ("HF_ENDPOINT", hub.url()),
        ("HF_HUB_CACHE", cache.to_str().unwrap()),
        ("HF_TOKEN", "hf_test_token"),
    ];

    // query model --download fetches an id that is not in the index, and finds its source there.
    let idx = tmp.path().join("idx");
    let idx_arg = idx.to_str().unwrap();
    let ingest = run(&["ingest", src.to_str().unwrap(), "--index", idx_arg], &[]);
    assert_eq!(ingest.code, 0, "{}", ingest.stderr);
    let q = json(&run(
        &[
            "query",
            "model",
            "acme/sharded",
            "--download",
            "--index",
            idx_arg,
            "--json",
            "--no-server",
        ],
        &env,
    ));
    let top = &q["results"][0];
    assert_eq!(top["model_id"], "src", "{q}");
    assert_eq!(top["related"], true, "{q}");
    for shard in &shards {
        assert!(hub.file_requests(shard) > 0, "{shard} was not fetched");
    }

    // compare --download finds it complete, and identical in substance to its local copy.
    let before = hub.requests().len();
    let sharded_arg = sharded.to_str().unwrap();
    let c = json(&run(
        &[
            "compare",
            "--json",
            "--download",
            "acme/sharded",
            sharded_arg,
        ],
        &env,
    ));
    assert!(identity(&c) >= 0.9999, "{c}");
    assert_eq!(hub.requests().len(), before);
    assert_eq!(hub.file_requests("pytorch_model-00001-of-00003.bin"), 0);
    // The token goes with every request (all to the Hub's own host here).
    assert!(hub
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer hf_test_token")));

    // A shard missing from the snapshot (an interrupted download) is an error without --download, and with
    // it only that shard is fetched again.
    let snapshot = cache.join("models--acme--sharded/snapshots").join(COMMIT_B);
    std::fs::remove_file(snapshot.join(&shards[1])).unwrap();
    let broken = run(&["fingerprint", "acme/sharded"], &env);
    assert_error(&broken, &shards[1], &[]);
    let counts: Vec<usize> = shards.iter().map(|s| hub.file_requests(s)).collect();
    let fixed = json(&run(
        &["fingerprint", "--json", "--download", "acme/sharded"],
        &env,
    ));
    assert_eq!(hub.file_requests(&shards[0]), counts[0]);
    assert!(hub.file_requests(&shards[1]) > counts[1]);
    assert_eq!(hub.file_requests(&shards[2]), counts[2]);
    let local_fp = json(&run(&["fingerprint", "--json", sharded_arg], &[]));
    assert_eq!(fixed["weights"], local_fp["weights"]);
    assert_eq!(fixed["source"]["files"].as_array().unwrap().len(), 3);
}

#[test]
fn download_failures_are_clear_and_stay_in_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    synth(&src, Family::Llama, 3);
    let config = std::fs::read(src.join("config.json")).unwrap();
    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    let escape_index = r#"{"metadata": {}, "weight_map": {"model.embed_tokens.weight": "../../../escape.safetensors"}}"#;
    let repos = vec![
        FakeRepo::from_dir("acme/tiny", COMMIT_A, &src),
        FakeRepo::new("evil/escape", COMMIT_A)
            .with_file("config.json", config.clone())
            .with_file("model.safetensors.index.json", escape_index)
            .with_file("../../../escape.safetensors", weights.clone()),
        FakeRepo::new("evil/pickle", COMMIT_A)
            .with_file("config.json", config.clone())
            .with_file("pytorch_model.bin", b"\x80\x02}q\x00.".to_vec()),
        FakeRepo::new("evil/etag", COMMIT_A)
            .with_file("config.json", config.clone())
            .with_file("model.safetensors", weights.clone())
            .with_etag("model.safetensors", "../../../../pwned"),
        FakeRepo::new("evil/corrupt", COMMIT_A)
            .with_file("config.json", config.clone())
            .with_file("model.safetensors", weights.clone())
            .with_etag("model.safetensors", &sha256(b"other bytes")),
    ];
    let hub = FakeHub::start(repos);
    let cache = tmp.path().join("hub");
    let cache_arg = cache.to_str().unwrap();
    let env = [("HF_ENDPOINT", hub.url()), ("HF_HUB_CACHE", cache_arg)];
    let download = |spec: &str| {
        let r = run(&["fingerprint", "--download", spec], &env);
        eprintln!("{spec}: {}", r.stderr.trim());
        r
    };

    // The sane repository works (and its revision can be named).
    let ok = download(&format!("acme/tiny@{COMMIT_A}"));
    assert_eq!(ok.code, 0, "{}", ok.stderr);

    assert_error(
        &download("acme/absent"),
        "acme/absent",
        &["no model repository", "404"],
    );
    assert_error(
        &download("acme/tiny@v9"),
        "acme/tiny",
        &["no revision `v9`"],
    );
    assert_error(
        &download("evil/escape"),
        "evil/escape",
        &["model.safetensors.index.json", "`..`"],
    );
    assert_error(
        &download("evil/pickle"),
        "evil/pickle",
        &["pytorch_model.bin", "pickle"],
    );
    assert_error(
        &download("evil/etag"),
        "evil/etag",
        &["model.safetensors", "etag"],
    );
    let corrupt = download("evil/corrupt");
    assert_error(
        &corrupt,
        "evil/corrupt",
        &["model.safetensors", "SHA-256", "removed"],
    );
    let corrupt_dir = cache.join("models--evil--corrupt");
    assert!(!corrupt_dir.join("refs/main").exists());
    assert!(!corrupt_dir
        .join("blobs")
        .join(sha256(b"other bytes"))
        .exists());
    assert_error(&download("acme/tiny@../../x"), "acme/tiny", &["revision"]);

    // Nothing was written outside the cache, and nothing refused was requested.
    assert!(find_named(tmp.path(), "escape.safetensors").is_empty());
    assert!(find_named(tmp.path(), "pwned").is_empty());
    for r in hub.requests() {
        assert!(
            !r.path.contains("escape.safetensors") && !r.path.ends_with(".bin"),
            "requested {}",
            r.path
        );
    }

    // An unreachable Hub and HF_HUB_OFFLINE are errors that name the repository.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = run(
        &["fingerprint", "--download", "acme/other"],
        &[("HF_ENDPOINT", &url), ("HF_HUB_CACHE", cache_arg)],
    );
    assert_error(&unreachable, "acme/other", &["cannot reach"]);
    let offline = run(
        &["fingerprint", "--download", "acme/other"],
        &[
            ("HF_HUB_OFFLINE", "1"),
            ("HF_ENDPOINT", hub.url()),
            ("HF_HUB_CACHE", cache_arg),
        ],
    );
    assert_error(&offline, "acme/other", &["HF_HUB_OFFLINE"]);
}
