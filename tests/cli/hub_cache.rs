//! Hub ids resolved in a Hugging Face cache layout built on disk, and the `--local-dir` download layout (the
//! Hub itself is never contacted).

use super::util::{ingest_summary, provsearch, provsearch_env, synth};
use datasets::synth::Family;
use std::path::{Path, PathBuf};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// An empty cache repo `hub/models--<name>` with `refs/main` at [`COMMIT`]: (repo, snapshot) directories.
fn empty_repo(hub: &Path, name: &str) -> (PathBuf, PathBuf) {
    let repo = hub.join(format!("models--{name}"));
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    (repo, snapshot)
}

/// Build `models--acme--tiny` with blobs named by their SHA-256, a snapshot of symlinks, and refs/main.
fn cache() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    synth(&src, Family::Llama, 4);
    let (repo, snapshot) = empty_repo(&tmp.path().join("hub"), "acme--tiny");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let sha = provsearch_ingest::digest::file_sha256(&path).unwrap();
        std::fs::copy(&path, repo.join("blobs").join(&sha)).unwrap();
        std::os::unix::fs::symlink(
            format!("../../blobs/{sha}"),
            snapshot.join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    (tmp, repo.parent().unwrap().to_path_buf())
}

fn fingerprint_json(args: &[&str], env: &[(&str, &Path)]) -> serde_json::Value {
    let mut all = vec!["fingerprint", "--json"];
    all.extend_from_slice(args);
    let run = provsearch_env(all, env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn hub_id_resolves_through_refs_and_blobs() {
    let (_tmp, hub) = cache();
    let hub_arg = hub.display().to_string();
    let f = fingerprint_json(&["acme/tiny", "--hf-cache", &hub_arg], &[]);
    assert_eq!(f["source"]["id"], "acme/tiny");
    assert_eq!(f["source"]["revision"], COMMIT);
    // SHA-256 comes from the blob names; nothing needs hashing, so the content digest is SHA-256-based.
    let file = &f["source"]["files"][0];
    let blob = std::fs::read_link(
        hub.join("models--acme--tiny/snapshots")
            .join(COMMIT)
            .join("model.safetensors"),
    )
    .unwrap();
    assert_eq!(
        file["sha256"].as_str().unwrap(),
        blob.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(file["blake3"], "", "no file was read to hash it");
    assert!(f["source"]["content_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    // The same files outside a cache are identified by BLAKE3.
    let local = fingerprint_json(&[hub.parent().unwrap().join("src").to_str().unwrap()], &[]);
    assert!(local["source"]["content_digest"]
        .as_str()
        .unwrap()
        .starts_with("blake3:"));
    assert_eq!(
        local["source"]["files"][0]["blake3"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // $HF_HUB_CACHE and $HF_HOME/hub are honoured; an explicit revision works.
    let f = fingerprint_json(&["acme/tiny"], &[("HF_HUB_CACHE", &hub)]);
    assert_eq!(f["source"]["id"], "acme/tiny");
    let home = hub.parent().unwrap().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::symlink(&hub, home.join("hub")).unwrap();
    let spec = format!("acme/tiny@{COMMIT}");
    let f = fingerprint_json(&[&spec], &[("HF_HOME", &home)]);
    assert_eq!(f["source"]["revision"], COMMIT);
}

#[test]
fn missing_models_and_revisions_are_clear_errors() {
    let (_tmp, hub) = cache();
    let hub_arg = hub.display().to_string();
    let run = provsearch(["fingerprint", "acme/absent", "--hf-cache", &hub_arg]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("acme/absent") && run.stderr.contains("not in the Hugging Face cache"),
        "{}",
        run.stderr
    );
    let run = provsearch(["fingerprint", "acme/tiny@v9", "--hf-cache", &hub_arg]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no revision `v9`"), "{}", run.stderr);
}

#[test]
fn snapshot_directories_inside_the_cache_keep_their_hub_id() {
    let (_tmp, hub) = cache();
    let snapshot = hub.join("models--acme--tiny/snapshots").join(COMMIT);
    let f = fingerprint_json(&[snapshot.to_str().unwrap()], &[]);
    assert_eq!(f["source"]["id"], "acme/tiny");
    let repo = hub.join("models--acme--tiny");
    let f = fingerprint_json(&[repo.to_str().unwrap()], &[]);
    assert_eq!(f["source"]["revision"], COMMIT);
}

/// Blob names are trusted for SHA-256 (nothing is read to hash them), so a cache can claim byte-identity it does
/// not have: another model's weights stored under `acme/tiny`'s blob name. `compare` must not call the pair
/// identical on the digest alone: the weights decide, and the evidence says the digest was ignored.
#[test]
fn a_blob_name_the_weights_contradict_does_not_make_models_identical() {
    let (tmp, hub) = cache();
    let genuine = hub.join("models--acme--tiny/snapshots").join(COMMIT);
    let claimed = std::fs::read_link(genuine.join("model.safetensors")).unwrap();
    let sha = claimed.file_name().unwrap().to_str().unwrap().to_string();
    // `mallory/tiny`: the same config and tokenizer, an independently initialised model's weights, and the
    // genuine model's blob name.
    let other = tmp.path().join("other");
    synth(&other, Family::Llama, 5);
    let (repo, snapshot) = empty_repo(&hub, "mallory--tiny");
    for entry in std::fs::read_dir(&genuine).unwrap() {
        let link = entry.unwrap().path();
        let name = link.file_name().unwrap().to_owned();
        let blob = if name == "model.safetensors" {
            std::fs::copy(other.join(&name), repo.join("blobs").join(&sha)).unwrap();
            sha.clone()
        } else {
            let target = std::fs::read_link(&link).unwrap();
            let blob = target.file_name().unwrap().to_str().unwrap().to_string();
            std::fs::copy(&link, repo.join("blobs").join(&blob)).unwrap();
            blob
        };
        std::os::unix::fs::symlink(format!("../../blobs/{blob}"), snapshot.join(name)).unwrap();
    }
    let hub_arg = hub.display().to_string();
    let run = provsearch([
        "compare",
        "acme/tiny",
        "mallory/tiny",
        "--hf-cache",
        &hub_arg,
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(c["related"], false, "{c}");
    assert_eq!(c["verdict"], "not related", "{c}");
    assert_eq!(c["identical_weights"], false, "{c}");
    assert!(
        c["evidence"].as_array().unwrap().iter().any(|e| e
            .as_str()
            .unwrap()
            .contains("digests are equal but the weights are not")),
        "{c}"
    );

    // `--verify-digests` hashes the blobs: the lying one is an error naming the file and both digests, the
    // genuine one gives the same fingerprint as without checking.
    let run = provsearch([
        "fingerprint",
        "mallory/tiny",
        "--hf-cache",
        &hub_arg,
        "--verify-digests",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("model.safetensors")
            && run.stderr.contains(&sha)
            && run.stderr.contains("its bytes hash to"),
        "{}",
        run.stderr
    );
    let plain = fingerprint_json(&["acme/tiny", "--hf-cache", &hub_arg], &[]);
    let verified = fingerprint_json(
        &["acme/tiny", "--hf-cache", &hub_arg, "--verify-digests"],
        &[],
    );
    assert_eq!(plain["source"], verified["source"]);
    // Ingest records the lying snapshot as failed and keeps the genuine one.
    let index = tmp.path().join("index");
    let run = provsearch([
        "ingest",
        "--hf-cache",
        &hub_arg,
        "--index",
        index.to_str().unwrap(),
        "--verify-digests",
        "--json",
    ]);
    let summary = ingest_summary(&run);
    assert_eq!(
        (summary["added"].as_u64(), summary["failed"].as_u64()),
        (Some(1), Some(1)),
        "{summary}"
    );
}

/// `huggingface-cli download acme/tiny --local-dir DIR`: the files themselves, and per file a record in
/// `DIR/.cache/huggingface/download/` (commit, etag, time written; huggingface_hub's `_local_folder.py`). The
/// etag of an LFS file (`*.safetensors`) is its SHA-256, that of a file kept in git a SHA-1.
fn local_dir(dir: &Path) {
    synth(dir, Family::Llama, 4);
    let written = datasets::local_dir::unix_now();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap();
        let etag = if name.ends_with(".safetensors") {
            provsearch_ingest::digest::hashed_sha256(&path).unwrap()
        } else {
            "5".repeat(40)
        };
        datasets::local_dir::write_record(dir, name, COMMIT, &etag, written).unwrap();
    }
}

/// A `--local-dir` download is identified as its cache snapshot is: revision and SHA-256 from the Hub's own
/// records, nothing hashed, the same content digest. A lying record is caught by `--verify-digests`, and a file
/// changed after its download is hashed again.
#[test]
fn local_dir_downloads_are_identified_by_their_records() {
    let (tmp, hub) = cache();
    let hub_arg = hub.display().to_string();
    let cached = fingerprint_json(&["acme/tiny", "--hf-cache", &hub_arg], &[]);
    let dir = tmp.path().join("local");
    local_dir(&dir);
    let dir_arg = dir.display().to_string();
    let f = fingerprint_json(&[&dir_arg], &[]);
    assert_eq!(f["source"]["revision"], COMMIT);
    assert_eq!(
        f["source"]["files"][0]["blake3"], "",
        "no file was read to hash it"
    );
    assert_eq!(f["source"]["files"], cached["source"]["files"]);
    assert_eq!(
        f["source"]["content_digest"],
        cached["source"]["content_digest"]
    );
    assert!(f["source"]["content_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let verified = fingerprint_json(&[&dir_arg, "--verify-digests"], &[]);
    assert_eq!(verified["source"], f["source"]);

    // A record that lies about the weights: trusted by default, refused by --verify-digests with the record named.
    let record = dir
        .join(datasets::local_dir::RECORDS_DIR)
        .join("model.safetensors.metadata");
    let honest = std::fs::read_to_string(&record).unwrap();
    let lie = "e".repeat(64);
    let mut lines: Vec<&str> = honest.lines().collect();
    lines[1] = &lie;
    std::fs::write(&record, lines.join("\n")).unwrap();
    let run = provsearch(["fingerprint", &dir_arg, "--verify-digests"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("model.safetensors.metadata")
            && run.stderr.contains(&lie)
            && run.stderr.contains("its bytes hash to"),
        "{}",
        run.stderr
    );
    std::fs::write(&record, &honest).unwrap();

    // Weights changed after the download: the record no longer describes them, so they are hashed (BLAKE3) and
    // the directory has no revision.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    let weights = std::fs::File::options()
        .write(true)
        .open(dir.join("model.safetensors"))
        .unwrap();
    weights.set_modified(later).unwrap();
    let f = fingerprint_json(&[&dir_arg], &[]);
    assert_eq!(f["source"]["revision"], serde_json::Value::Null);
    assert_eq!(
        f["source"]["files"][0]["blake3"].as_str().unwrap().len(),
        64
    );
    assert!(f["source"]["content_digest"]
        .as_str()
        .unwrap()
        .starts_with("blake3:"));
}

/// `ingest` skips a `--local-dir` download already indexed at its recorded commit without opening its weights,
/// as it skips a cache snapshot; once a weight file is newer than its record, the record no longer vouches for
/// it and the model is read again.
#[test]
fn ingest_skips_an_unchanged_local_dir_download_without_reading_it() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let dir = models.join("tiny");
    local_dir(&dir);
    let index = tmp.path().join("index");
    let ingest = || {
        let run = provsearch([
            "ingest",
            models.to_str().unwrap(),
            "--index",
            index.to_str().unwrap(),
            "--json",
        ]);
        ingest_summary(&run)
    };
    let counts = |s: &serde_json::Value| {
        (
            s["added"].as_u64(),
            s["unchanged"].as_u64(),
            s["failed"].as_u64(),
        )
    };
    assert_eq!(counts(&ingest()), (Some(1), Some(0), Some(0)));

    // The weights replaced by bytes that are no model, with the old modification time: the record still vouches
    // for them, so the rerun skips the model. Had it opened the weights, it would have failed.
    let weights = dir.join("model.safetensors");
    let modified = std::fs::metadata(&weights).unwrap().modified().unwrap();
    std::fs::write(&weights, b"not a safetensors file").unwrap();
    let file = std::fs::File::options().write(true).open(&weights).unwrap();
    file.set_modified(modified).unwrap();
    assert_eq!(counts(&ingest()), (Some(0), Some(1), Some(0)));

    // Newer than its record: read again, and the damage is reported (the indexed record is kept).
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .unwrap();
    assert_eq!(counts(&ingest()), (Some(0), Some(0), Some(1)));
    let run = provsearch([
        "index",
        "stats",
        "--index",
        index.to_str().unwrap(),
        "--json",
    ]);
    let stats: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(stats["live"], 1, "{stats}");
}
