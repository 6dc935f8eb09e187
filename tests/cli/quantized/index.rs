//! Quantized derivatives in the index: `provsearch ingest` over safetensors parents, GGUF files written from
//! them (loose, several in one Hugging Face cache repo, one split by gguf-split), GPTQ and bitsandbytes copies
//! and independently initialised twins of the same config; then `provsearch query model` from indexed ids,
//! from .gguf paths and from a Hub `org/name:FILE.gguf` selector. Every quantized copy finds its parent as its
//! best full-precision relative, level with the best hit; a twin is never reported related; the results show
//! format and scheme.

use super::gguf::{gguf_writer, spec, write_gguf};
use crate::cli::util::{compare, num, provsearch, Run};
use datasets::quantize::{write_quantized, Scheme};
use datasets::synth::build;
use datasets::Storage;
use provsearch_formats::gguf::split::part_file_name;
use provsearch_formats::gguf::GgmlType;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

const COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn ok(run: Run) -> Run {
    assert_eq!(run.code, 0, "exit {}: {}", run.code, run.stderr);
    run
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `query model SPEC --json --no-server` (plus `extra`), parsed.
fn query(index: &Path, spec: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "query",
        "model",
        spec,
        "--index",
        index.to_str().unwrap(),
        "--json",
        "--no-server",
        "--top-k",
        "20",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(provsearch(&args)).stdout).unwrap()
}

/// `models--acme--smol-gguf` with one snapshot holding three GGUF models of `parent-b` (Q4_0, Q5_1, and a Q6_K
/// split by gguf-split into two parts), as the Hub ships quantization repos (a README, no config.json).
fn hub_repo(hub: &Path, ckpt: &datasets::Checkpoint) {
    let repo = hub.join("models--acme--smol-gguf");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    std::fs::write(snapshot.join("README.md"), "---\nlicense: mit\n---\n").unwrap();
    write_gguf(ckpt, &snapshot.join("smol-Q4_0.gguf"), GgmlType::Q4_0);
    write_gguf(ckpt, &snapshot.join("smol-Q5_1.gguf"), GgmlType::Q5_1);
    let parts = gguf_writer(ckpt, GgmlType::Q6K).split(11, false);
    assert_eq!(parts.len(), 2);
    for (i, part) in parts.iter().enumerate() {
        let name = part_file_name("smol-Q6_K", i as u64 + 1, 2);
        part.write(&snapshot.join(name)).unwrap();
    }
}

#[test]
fn quantized_copies_are_ingested_and_find_their_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    let (a, b) = (build(&spec(31)), build(&spec(32)));
    a.write(&models.join("parent-a"), Storage::F32, 1).unwrap();
    b.write(&models.join("parent-b"), Storage::F32, 1).unwrap();
    // Independently initialised, same config and tokenizer: related to nothing.
    build(&spec(33))
        .write(&models.join("twin"), Storage::F32, 1)
        .unwrap();
    write_gguf(&a, &models.join("gguf/a-Q4_K.gguf"), GgmlType::Q4K);
    write_gguf(&b, &models.join("gguf/b-Q8_0.gguf"), GgmlType::Q8_0);
    let gptq = Scheme::Gptq {
        bits: 4,
        group: 128,
        act_order: false,
        g_idx: true,
    };
    write_quantized(&a, &models.join("a-gptq"), gptq).unwrap();
    let nf4 = Scheme::Bnb4 {
        fp4: false,
        blocksize: 64,
        nested: true,
    };
    write_quantized(&b, &models.join("b-nf4"), nf4).unwrap();
    hub_repo(&models.join("hub"), &b);

    let index = tmp.path().join("index");
    let idx = index.to_str().unwrap();
    let run = ok(provsearch([
        "ingest",
        models.to_str().unwrap(),
        "--index",
        idx,
        "--json",
    ]));
    let lines = json_lines(&run.stdout);
    let statuses: BTreeMap<&str, &str> = lines
        .iter()
        .filter(|l| l["event"] == "model")
        .map(|l| (l["id"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    let expected = [
        "a-Q4_K",
        "a-gptq",
        "acme/smol-gguf/smol-Q4_0",
        "acme/smol-gguf/smol-Q5_1",
        "acme/smol-gguf/smol-Q6_K",
        "b-Q8_0",
        "b-nf4",
        "parent-a",
        "parent-b",
        "twin",
    ];
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        expected,
        "{lines:?}"
    );
    assert!(statuses.values().all(|s| *s == "added"), "{statuses:?}");

    // Each quantized copy, queried by its indexed id, finds its parent: the best full-precision hit, related,
    // and level with the best hit. (Sibling quantizations of the same parent tie with it: their weight
    // evidence saturates too, so they may rank first.)
    let parents = [
        ("a-Q4_K", "parent-a", "gguf", "Q4_K"),
        ("a-gptq", "parent-a", "safetensors", "gptq-4bit"),
        ("b-Q8_0", "parent-b", "gguf", "Q8_0"),
        ("b-nf4", "parent-b", "safetensors", "bnb-nf4"),
        ("acme/smol-gguf/smol-Q4_0", "parent-b", "gguf", "Q4_0"),
        ("acme/smol-gguf/smol-Q5_1", "parent-b", "gguf", "Q5_1"),
        ("acme/smol-gguf/smol-Q6_K", "parent-b", "gguf", "Q6_K"),
    ];
    for (id, parent, format, scheme) in parents {
        let r = query(&index, id, &[]);
        assert_eq!(r["query"]["model_id"], id, "{r}");
        assert_eq!(r["query"]["format"], format, "{id}: {}", r["query"]);
        assert_eq!(r["query"]["quantization"], scheme, "{id}: {}", r["query"]);
        let hits = r["results"].as_array().unwrap();
        let found = |pick: &dyn Fn(&Value) -> bool| hits.iter().find(|h| pick(h)).cloned();
        let best_float = found(&|h| h["quantization"].is_null()).unwrap();
        let parent_hit = found(&|h| h["model_id"] == parent).unwrap();
        eprintln!(
            "{id}: top {} identity {} wvc {}; parent {parent} rank {} identity {} wvc {}",
            hits[0]["model_id"],
            hits[0]["identity_score"],
            hits[0]["signals"]["wvc"],
            parent_hit["rank"],
            parent_hit["identity_score"],
            parent_hit["signals"]["wvc"]
        );
        assert_eq!(best_float["model_id"], parent, "{id}: {r}");
        assert_eq!(parent_hit["related"], true, "{id}: {parent_hit}");
        assert_eq!(parent_hit["format"], "safetensors");
        assert!(
            num(&parent_hit, "identity_score") >= num(&hits[0], "identity_score") - 0.01,
            "{id}: {r}"
        );
        // Every family member is related; the twin and the other family are not.
        let family = if parent == "parent-a" { 'a' } else { 'b' };
        for h in hits {
            let other = h["model_id"].as_str().unwrap();
            let same = other.starts_with(&format!("{family}-"))
                || other == parent
                || (family == 'b' && other.starts_with("acme/"));
            assert_eq!(h["related"], same, "{id} vs {other}: {h}");
            assert!(h["format"].is_string(), "{h}");
        }
    }
    // The hits say how each result is stored.
    let r = query(&index, "parent-b", &[]);
    let hit = |id: &str| {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["model_id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {r}"))
            .clone()
    };
    assert_eq!(
        (
            hit("acme/smol-gguf/smol-Q6_K")["format"].clone(),
            hit("acme/smol-gguf/smol-Q6_K")["quantization"].clone()
        ),
        (Value::from("gguf"), Value::from("Q6_K"))
    );
    assert_eq!(hit("b-nf4")["quantization"], "bnb-nf4");
    assert_eq!(hit("twin")["related"], false);
    for id in ["twin", "parent-a"] {
        let r = query(&index, id, &[]);
        for h in r["results"].as_array().unwrap() {
            let other = h["model_id"].as_str().unwrap();
            let related = id == "parent-a" && other.starts_with("a-");
            assert_eq!(h["related"], related, "{id} vs {other}: {h}");
        }
    }

    // A .gguf path as the query: a file not in the index, and an indexed one (excluded from its own results).
    let outside = tmp.path().join("elsewhere/a-Q5_K.gguf");
    write_gguf(&a, &outside, GgmlType::Q5K);
    for path in [outside.clone(), models.join("gguf/a-Q4_K.gguf")] {
        let r = query(&index, path.to_str().unwrap(), &[]);
        assert_eq!(r["query"]["format"], "gguf", "{r}");
        let hits = r["results"].as_array().unwrap();
        let related: Vec<&str> = hits
            .iter()
            .filter(|h| h["related"] == true)
            .map(|h| h["model_id"].as_str().unwrap())
            .collect();
        let mut want = vec!["a-Q4_K", "a-gptq", "parent-a"];
        if path != outside {
            want.remove(0);
        }
        assert_eq!(
            {
                let mut r = related.clone();
                r.sort();
                r
            },
            want,
            "{}: {r}",
            path.display()
        );
        assert_eq!(r["results"][0]["related"], true);
    }
    // The human table and CSV show format and scheme.
    let human = ok(provsearch([
        "query",
        "model",
        outside.to_str().unwrap(),
        "--index",
        idx,
        "--no-server",
    ]))
    .stdout;
    assert!(human.contains("llama, gguf Q5_K)"), "{human}");
    assert!(human.contains("safetensors gptq-4bit"), "{human}");
    let csv = ok(provsearch([
        "query",
        "model",
        "a-gptq",
        "--index",
        idx,
        "--no-server",
        "--csv",
    ]))
    .stdout;
    assert!(csv.contains(",llama,gguf,Q4_K,"), "{csv}");

    // One GGUF model of a Hub repo, named by `org/name:FILE`, and by its path in the snapshot.
    let hub = models.join("hub");
    let hub_s = hub.to_str().unwrap();
    let r = query(
        &index,
        "acme/smol-gguf:smol-Q6_K-00002-of-00002.gguf",
        &["--hf-cache", hub_s],
    );
    assert_eq!(r["query"]["model_id"], "acme/smol-gguf/smol-Q6_K", "{r}");
    assert_eq!(r["query"]["revision"], COMMIT);
    assert!(
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["model_id"] == "parent-b" && h["related"] == true),
        "{r}"
    );
    let snapshot = hub.join("models--acme--smol-gguf/snapshots").join(COMMIT);
    let f: Value = serde_json::from_str(
        &ok(provsearch([
            Path::new("fingerprint"),
            &snapshot.join("smol-Q4_0.gguf"),
            Path::new("--json"),
        ]))
        .stdout,
    )
    .unwrap();
    assert_eq!(
        (&f["source"]["id"], &f["source"]["revision"]),
        (
            &Value::from("acme/smol-gguf/smol-Q4_0"),
            &Value::from(COMMIT)
        )
    );
    // The repo as one MODEL is ambiguous: the error lists its GGUF models and how to name one.
    for spec in [snapshot.to_str().unwrap(), "acme/smol-gguf"] {
        let run = provsearch(["fingerprint", spec, "--hf-cache", hub_s]);
        assert_eq!(run.code, 1, "{spec}: {}", run.stderr);
        for word in [
            "3 GGUF models",
            "smol-Q4_0.gguf",
            "smol-Q6_K-00001-of-00002.gguf",
            "acme/smol-gguf:smol-Q4_0.gguf",
        ] {
            assert!(
                run.stderr.contains(word),
                "{spec}: no {word:?} in {}",
                run.stderr
            );
        }
    }
    let run = provsearch([
        "fingerprint",
        "acme/smol-gguf:nope.gguf",
        "--hf-cache",
        hub_s,
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("nope.gguf") && run.stderr.contains("smol-Q5_1.gguf"),
        "{}",
        run.stderr
    );

    // A second ingest finds everything committed.
    let run = ok(provsearch([
        "ingest",
        models.to_str().unwrap(),
        "--index",
        idx,
        "--json",
    ]));
    let summary = json_lines(&run.stdout)
        .into_iter()
        .find(|l| l["event"] == "summary")
        .unwrap();
    assert_eq!(
        (summary["added"].as_u64(), summary["unchanged"].as_u64()),
        (Some(0), Some(expected.len() as u64)),
        "{summary}"
    );
}

#[test]
fn gguf_split_parts_are_read_as_one_model() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let ckpt = build(&spec(41));
    ckpt.write(&source, Storage::F32, 1).unwrap();
    let whole = tmp.path().join("whole/m-Q8_0.gguf");
    write_gguf(&ckpt, &whole, GgmlType::Q8_0);
    let dir = tmp.path().join("split");
    std::fs::create_dir_all(&dir).unwrap();
    // gguf-split --split-max-tensors 7: the tensors in 3 parts, metadata in the first.
    let parts = gguf_writer(&ckpt, GgmlType::Q8_0).split(7, false);
    assert_eq!(parts.len(), 3);
    let paths: Vec<_> = (1..=3)
        .map(|n| dir.join(part_file_name("m-Q8_0", n, 3)))
        .collect();
    for (part, path) in parts.iter().zip(&paths) {
        part.write(path).unwrap();
    }

    // Any part names the whole model; it reads exactly like the unsplit file.
    let fp = |p: &Path| -> Value {
        let run = ok(provsearch([
            Path::new("fingerprint"),
            p,
            Path::new("--json"),
        ]));
        serde_json::from_str(&run.stdout).unwrap()
    };
    let (joined, single) = (fp(&paths[1]), fp(&whole));
    assert_eq!(joined["source"]["id"], "m-Q8_0");
    assert_eq!(joined["source"]["files"].as_array().unwrap().len(), 3);
    assert_eq!(
        joined["source"]["tensor_count"],
        single["source"]["tensor_count"]
    );
    assert_eq!(joined["weights"], {
        let mut w = single["weights"].clone();
        w["notes"] = joined["weights"]["notes"].clone();
        w
    });
    assert!(
        joined["weights"]["notes"]
            .to_string()
            .contains("split by gguf-split into 3 parts"),
        "{}",
        joined["weights"]["notes"]
    );
    let c = compare(&paths[0], &source);
    assert_eq!(c["related"], true, "{c}");
    assert!(num(&c, "identity_score") > 0.99, "{c}");
    assert_eq!(c["a"]["quantization"], "Q8_0");

    // Ingesting the directory gives one model, not three.
    let index = tmp.path().join("index");
    let run = ok(provsearch([
        "ingest",
        dir.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--json",
    ]));
    let models: Vec<Value> = json_lines(&run.stdout)
        .into_iter()
        .filter(|l| l["event"] == "model")
        .collect();
    assert_eq!(models.len(), 1, "{models:?}");
    assert_eq!(
        (&models[0]["id"], &models[0]["status"]),
        (&Value::from("m-Q8_0"), &Value::from("added"))
    );

    // A missing part is an error naming it; so is a part that belongs elsewhere.
    std::fs::remove_file(&paths[2]).unwrap();
    let run = provsearch([Path::new("fingerprint"), &paths[0]]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("m-Q8_0-00003-of-00003.gguf") && run.stderr.contains("missing"),
        "{}",
        run.stderr
    );
    std::fs::copy(&paths[1], &paths[2]).unwrap();
    let run = provsearch([Path::new("fingerprint"), &paths[0]]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("m-Q8_0-00003-of-00003.gguf") && run.stderr.contains("split.no is 1"),
        "{}",
        run.stderr
    );
}

/// GGUF ids are unique and keep their Hub id: a folder of a cache snapshot (`Q8_0/…`, as some repos ship one
/// quantization per folder) gives `org/name/<folder>[/<name>]`, whether named by `org/name:FILE`, by path or
/// ingested as a directory; and `x.gguf` beside the parts of a split `x` is another model with another id,
/// in a snapshot and in a plain directory.
#[test]
fn gguf_ids_in_snapshot_folders_and_beside_split_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = build(&spec(43));
    let hub = tmp.path().join("hub");
    let repo = hub.join("models--acme--folders");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    let (q4, q8) = (snapshot.join("Q4_0"), snapshot.join("Q8_0"));
    std::fs::create_dir_all(&q4).unwrap();
    std::fs::create_dir_all(&q8).unwrap();
    write_gguf(&ckpt, &q4.join("smol-Q4_0.gguf"), GgmlType::Q4_0);
    // In Q8_0/: `m.gguf`, and `m` split in two parts.
    write_gguf(&ckpt, &q8.join("m.gguf"), GgmlType::Q8_0);
    let parts = gguf_writer(&ckpt, GgmlType::Q8_0).split(11, false);
    for (i, part) in parts.iter().enumerate() {
        part.write(&q8.join(part_file_name("m", i as u64 + 1, 2)))
            .unwrap();
    }
    let hub_s = hub.to_str().unwrap();
    let source = |spec: &str| -> Value {
        let run = ok(provsearch([
            "fingerprint",
            spec,
            "--hf-cache",
            hub_s,
            "--json",
            "--no-digest",
        ]));
        let f: Value = serde_json::from_str(&run.stdout).unwrap();
        f["source"].clone()
    };
    let id_of = |spec: &str| {
        let s = source(spec);
        assert_eq!(s["revision"], COMMIT, "{spec}: {s}");
        (
            s["id"].as_str().unwrap().to_string(),
            s["files"].as_array().unwrap().len(),
        )
    };
    let q4_file = q4.join("smol-Q4_0.gguf");
    for spec in [
        "acme/folders:Q4_0/smol-Q4_0.gguf",
        q4_file.to_str().unwrap(),
    ] {
        assert_eq!(id_of(spec), ("acme/folders/Q4_0".to_string(), 1), "{spec}");
    }
    let split_part = q8.join(part_file_name("m", 2, 2));
    for (spec, id, files) in [
        ("acme/folders:Q8_0/m.gguf", "acme/folders/Q8_0/m", 1),
        (
            "acme/folders:Q8_0/m-00002-of-00002.gguf",
            "acme/folders/Q8_0/m-00001-of-00002",
            2,
        ),
        (
            split_part.to_str().unwrap(),
            "acme/folders/Q8_0/m-00001-of-00002",
            2,
        ),
    ] {
        assert_eq!(id_of(spec), (id.to_string(), files), "{spec}");
    }

    // Ingested as a directory: the same two ids, both added.
    let index = tmp.path().join("index");
    let run = ok(provsearch([
        "ingest",
        q8.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--json",
        "--no-digest",
    ]));
    let mut ids: Vec<(String, String)> = json_lines(&run.stdout)
        .into_iter()
        .filter(|l| l["event"] == "model")
        .map(|l| {
            (
                l["id"].as_str().unwrap_or_default().to_string(),
                l["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("acme/folders/Q8_0/m".to_string(), "added".to_string()),
            (
                "acme/folders/Q8_0/m-00001-of-00002".to_string(),
                "added".to_string()
            ),
        ]
    );

    // A plain directory: file ids are the names, unique as well.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    for entry in std::fs::read_dir(&q8).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, plain.join(path.file_name().unwrap())).unwrap();
    }
    for (file, id) in [
        ("m.gguf", "m"),
        ("m-00001-of-00002.gguf", "m-00001-of-00002"),
    ] {
        let s = source(plain.join(file).to_str().unwrap());
        assert_eq!((s["id"].as_str(), &s["revision"]), (Some(id), &Value::Null));
    }
    std::fs::remove_file(plain.join("m.gguf")).unwrap();
    let s = source(plain.join("m-00002-of-00002.gguf").to_str().unwrap());
    assert_eq!(s["id"], "m", "alone, a split model is named by its prefix");
}
