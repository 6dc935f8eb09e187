//! `model.safetensors.index.json`: resolution, ordering and confinement of shards to the index's directory.

use provsearch_formats::safetensors::{SafetensorsFile, ShardIndex};
use provsearch_formats::Error;
use safetensors::tensor::TensorView;
use std::path::Path;

fn write_shard(path: &Path, names: &[&str]) {
    let data = [0u8; 8];
    let tensors: Vec<_> = names
        .iter()
        .map(|n| {
            (
                *n,
                TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(tensors, None, path).unwrap();
}

fn write_index(dir: &Path, weight_map: &str) -> std::path::PathBuf {
    let path = dir.join("model.safetensors.index.json");
    let text = format!(r#"{{"metadata": {{"total_size": 48}}, "weight_map": {weight_map}}}"#);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn resolves_shards_sorted_and_distinct() {
    let dir = tempfile::tempdir().unwrap();
    write_shard(
        &dir.path().join("model-00002-of-00002.safetensors"),
        &["z.weight", "a.bias"],
    );
    write_shard(
        &dir.path().join("model-00001-of-00002.safetensors"),
        &["m.weight"],
    );
    let index = write_index(
        dir.path(),
        r#"{"z.weight": "model-00002-of-00002.safetensors", "m.weight": "./model-00001-of-00002.safetensors",
            "a.bias": "model-00002-of-00002.safetensors"}"#,
    );
    let idx = ShardIndex::load(&index).unwrap();
    let names: Vec<&str> = idx.weight_map.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["z.weight", "m.weight", "a.bias"],
        "weight_map keeps the listed order"
    );
    assert_eq!(
        idx.shards,
        vec![
            dir.path().join("model-00001-of-00002.safetensors"),
            dir.path().join("model-00002-of-00002.safetensors")
        ]
    );
    // Every listed tensor is in a shard that opens.
    for shard in &idx.shards {
        let f = SafetensorsFile::open(shard).unwrap();
        assert!(!f.tensors().is_empty());
    }
}

#[test]
fn refuses_escaping_names() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("model");
    std::fs::create_dir(&inner).unwrap();
    write_shard(&dir.path().join("outside.safetensors"), &["x"]);
    for name in [
        "../outside.safetensors",
        "sub/../../outside.safetensors",
        "/etc/passwd",
        "..\\\\outside",
    ] {
        let index = write_index(&inner, &format!(r#"{{"x": "{name}"}}"#));
        let e = ShardIndex::load(&index).expect_err(name);
        assert!(matches!(e, Error::Refused { .. }), "{name}: {e:?}");
        assert!(
            e.to_string().contains("model.safetensors.index.json"),
            "{e}"
        );
    }
}

#[cfg(unix)]
#[test]
fn refuses_symlink_escape_but_allows_inner_links() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("model");
    std::fs::create_dir(&inner).unwrap();
    write_shard(&dir.path().join("outside.safetensors"), &["x"]);
    std::os::unix::fs::symlink("../outside.safetensors", inner.join("evil.safetensors")).unwrap();
    let index = write_index(&inner, r#"{"x": "evil.safetensors"}"#);
    let e = ShardIndex::load(&index).unwrap_err();
    assert!(
        matches!(e, Error::Refused { .. }) && e.to_string().contains("outside"),
        "{e:?}"
    );

    // The link target is what counts: a link to a file inside the directory is fine.
    write_shard(&inner.join("real.safetensors"), &["y"]);
    std::os::unix::fs::symlink("real.safetensors", inner.join("link.safetensors")).unwrap();
    let index = write_index(&inner, r#"{"y": "link.safetensors"}"#);
    assert_eq!(
        ShardIndex::load(&index).unwrap().shards,
        vec![inner.join("link.safetensors")]
    );
}

#[test]
fn missing_shard_is_io_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let index = write_index(dir.path(), r#"{"x": "model-00001-of-00009.safetensors"}"#);
    let e = ShardIndex::load(&index).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(
        e.to_string().contains("model-00001-of-00009.safetensors"),
        "{e}"
    );
    assert_eq!(
        e.path(),
        dir.path().join("model-00001-of-00009.safetensors")
    );
}

#[test]
fn malformed_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors.index.json");
    for text in [
        r#"{"weight_map": {"x": 3}}"#,
        r#"{"metadata": {}}"#,
        "{\"weight_map\": {",
        r#"{"weight_map": []}"#,
    ] {
        std::fs::write(&path, text).unwrap();
        let e = ShardIndex::load(&path).unwrap_err();
        assert!(matches!(e, Error::Json { .. }), "{text}: {e:?}");
        assert!(e.to_string().contains("line 1 column"), "{e}");
    }
    let e = ShardIndex::load(&dir.path().join("absent.json")).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
}

/// A Hugging Face cache repository: snapshot files are symlinks into `../../blobs/`, which is allowed; links
/// elsewhere in the cache are not.
#[cfg(unix)]
#[test]
fn hf_cache_snapshot_links_into_blobs() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--org--name");
    let snap = repo.join("snapshots").join("0123abcd");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(&snap).unwrap();
    write_shard(&repo.join("blobs/5f2e"), &["x"]);
    write_shard(&repo.join("refs/stray"), &["y"]);
    std::os::unix::fs::symlink(
        "../../blobs/5f2e",
        snap.join("model-00001-of-00001.safetensors"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../../refs/stray", snap.join("stray.safetensors")).unwrap();

    let index = write_index(&snap, r#"{"x": "model-00001-of-00001.safetensors"}"#);
    let idx = ShardIndex::load(&index).unwrap();
    assert_eq!(
        idx.shards,
        vec![snap.join("model-00001-of-00001.safetensors")]
    );
    assert_eq!(
        SafetensorsFile::open(&idx.shards[0]).unwrap().tensors()[0].name,
        "x"
    );

    let index = write_index(&snap, r#"{"y": "stray.safetensors"}"#);
    assert!(matches!(
        ShardIndex::load(&index),
        Err(Error::Refused { .. })
    ));
}
