//! Index library tests on synthetic fingerprints: commit and reopen, replacement and tombstones, compaction,
//! merging shards, filters, approximate vs exhaustive search, corruption detection.

use datasets::fingerprints::{Corpus, Role};
use provsearch_index::search::{query, query_text, QueryOptions};
use provsearch_index::writer::{AddOutcome, IndexWriter, WriterOptions};
use provsearch_index::{Error, IndexReader};

fn options(graph_min: u64) -> WriterOptions {
    WriterOptions {
        graph_min_records: graph_min,
        ..WriterOptions::default()
    }
}

fn build(dir: &std::path::Path, corpus: &Corpus, range: std::ops::Range<usize>, graph_min: u64) {
    let mut w = IndexWriter::open(dir, options(graph_min)).unwrap();
    let batch: Vec<_> = range.map(|i| corpus.fingerprint(i)).collect();
    for o in w.add_batch(&batch).unwrap() {
        assert_eq!(o, AddOutcome::Added);
    }
    w.commit().unwrap();
}

#[test]
fn commit_reopen_replace_compact() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(40, 1);
    build(dir.path(), &corpus, 0..30, u64::MAX);
    let r = IndexReader::open(dir.path()).unwrap();
    assert_eq!(r.live_count(), 30);
    assert_eq!(r.manifest().generation, 1);
    assert_eq!(r.verify().unwrap(), 30);

    // Re-adding an unchanged model is skipped; a new revision replaces (tombstones) the old record.
    let mut w = IndexWriter::open(dir.path(), options(u64::MAX)).unwrap();
    let same = corpus.fingerprint(3);
    assert_eq!(w.add(&same).unwrap(), AddOutcome::Unchanged);
    let mut newer = corpus.fingerprint(4);
    newer.source.revision = Some("f".repeat(40));
    assert_eq!(w.add(&newer).unwrap(), AddOutcome::Replaced);
    assert_eq!(w.add(&corpus.fingerprint(35)).unwrap(), AddOutcome::Added);
    // Uncommitted work is invisible to readers.
    assert_eq!(IndexReader::open(dir.path()).unwrap().live_count(), 30);
    let info = w.commit().unwrap();
    assert_eq!((info.records, info.deleted), (2, 1));
    let r = IndexReader::open(dir.path()).unwrap();
    assert_eq!(r.live_count(), 31);
    assert_eq!(r.stats().deleted, 1);
    let found = r.find_id(&corpus.id(4)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        r.record(found[0])
            .unwrap()
            .source
            .revision
            .as_ref()
            .map(|s| s.as_str()),
        Some("f".repeat(40).as_str())
    );
    r.verify().unwrap();

    let (kept, dropped) = w.compact().unwrap();
    assert_eq!((kept, dropped), (31, 1));
    let r = IndexReader::open(dir.path()).unwrap();
    assert_eq!(r.segments().len(), 1);
    assert_eq!(r.stats().deleted, 0);
    r.verify().unwrap();
    // Old segment directories are garbage-collected.
    let dirs = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .count();
    assert_eq!(dirs, 1);
}

/// The kernel's flags (`VmFlags` of /proc/self/smaps) of this process's mapping of `file`.
#[cfg(target_os = "linux")]
fn mapping_flags(file: &std::path::Path) -> Vec<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = file.to_str().unwrap();
    let mut in_mapping = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !first.ends_with(':') {
            // A mapping's first line: address range, permissions, offset, device, inode, path.
            in_mapping = line.ends_with(name);
        } else if in_mapping && first == "VmFlags:" {
            return line
                .split_whitespace()
                .skip(1)
                .map(str::to_string)
                .collect();
        }
    }
    panic!("{name} is not mapped");
}

/// Queries read a few scattered records of a file that can outgrow RAM: its mapping must not read around a
/// page fault (`rr`, random); whole-file passes switch to in-order read-ahead (`sr`) and back. Asking for
/// records ahead of use takes any range, reversed, empty or past the end, without harm.
#[cfg(target_os = "linux")]
#[test]
fn records_are_mapped_for_scattered_reads() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(30, 3);
    build(dir.path(), &corpus, 0..30, u64::MAX);
    let r = IndexReader::open(dir.path()).unwrap();
    let s = &r.segments()[0];
    let records = s.dir().join("fingerprints.rkyv").canonicalize().unwrap();
    let flags = mapping_flags(&records);
    assert!(flags.iter().any(|f| f == "rr"), "{flags:?}");
    s.read_records_in_order(|| {
        let flags = mapping_flags(&records);
        assert!(flags.iter().any(|f| f == "sr"), "{flags:?}");
        assert!(!flags.iter().any(|f| f == "rr"), "{flags:?}");
    });
    let flags = mapping_flags(&records);
    assert!(flags.iter().any(|f| f == "rr"), "{flags:?}");
    assert!(!flags.iter().any(|f| f == "sr"), "{flags:?}");
    #[allow(clippy::reversed_empty_ranges)]
    for docs in [
        0..30,
        5..6,
        29..30,
        7..7,
        9..3,
        25..1000,
        30..31,
        u32::MAX - 1..u32::MAX,
    ] {
        s.prefetch_records(docs);
    }
    // Verification (a whole-file pass) still reads every record, and leaves the query-time advice.
    assert_eq!(r.verify().unwrap(), 30);
    assert!(mapping_flags(&records).iter().any(|f| f == "rr"));
    for i in 0..30 {
        assert_eq!(
            r.record(r.find_id(&corpus.id(i)).unwrap()[0])
                .unwrap()
                .source
                .id,
            corpus.id(i)
        );
    }
}

#[test]
fn approximate_search_finds_what_exhaustive_finds() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(400, 7);
    // Graph on (threshold below the count) to exercise hnsw; one more small segment scanned exactly.
    build(dir.path(), &corpus, 0..300, 100);
    build(dir.path(), &corpus, 300..400, u64::MAX);
    let r = IndexReader::open(dir.path()).unwrap();
    r.load_graphs().unwrap();
    assert!(r.segments()[0].graph().is_some());
    let (mut found, mut total) = (0, 0);
    for i in (0..400).step_by(13) {
        let f = corpus.fingerprint(i);
        let opts = QueryOptions {
            exclude_id: Some(corpus.id(i)),
            ..QueryOptions::default()
        };
        let approx = query(&r, &f, &opts).unwrap();
        assert!(approx.hits.iter().all(|h| h.model_id != corpus.id(i)));
        let exact = query(
            &r,
            &f,
            &QueryOptions {
                exact: true,
                ..opts
            },
        )
        .unwrap();
        for h in exact
            .hits
            .iter()
            .filter(|h| h.comparison.related == Some(true))
        {
            total += 1;
            found += approx.hits.iter().any(|a| a.model_id == h.model_id) as usize;
        }
        // A planted light derivative finds its parent first.
        let p = corpus.planted(i);
        if let (Some(parent), Role::Tuned { sigma }) = (p.parent, p.role) {
            if sigma < 0.5 {
                let top = &approx.hits[0];
                assert_eq!(top.comparison.related, Some(true), "{i}: {top:?}");
                let family: Vec<String> = (0..400)
                    .filter(|&j| corpus.planted(j).family == p.family)
                    .map(|j| corpus.id(j))
                    .collect();
                assert!(
                    family.contains(&top.model_id),
                    "{i} (parent {parent}): top {}",
                    top.model_id
                );
            }
        }
    }
    assert!(total > 20, "{total}");
    assert!(found as f64 >= 0.95 * total as f64, "{found}/{total}");
}

#[test]
fn filters_and_text_queries() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(60, 3);
    build(dir.path(), &corpus, 0..60, u64::MAX);
    let r = IndexReader::open(dir.path()).unwrap();
    let f = corpus.fingerprint(0);
    let opts = QueryOptions {
        filter: Some("model_type:bert".into()),
        top_k: 100,
        ..QueryOptions::default()
    };
    let res = query(&r, &f, &opts).unwrap();
    assert!(res.hits.iter().all(|h| h.model_type == "bert"));
    let id = corpus.id(5);
    let text = query_text(&r, &format!("id:\"{id}\""), 5).unwrap();
    assert_eq!(text[0].model_id, id);
    let bad = query(
        &r,
        &f,
        &QueryOptions {
            filter: Some("model_type:(".into()),
            ..QueryOptions::default()
        },
    );
    assert!(matches!(bad, Err(Error::Query { .. })));
}

#[test]
fn merge_shards() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let corpus = Corpus::new(30, 5);
    build(a.path(), &corpus, 0..15, u64::MAX);
    build(b.path(), &corpus, 15..30, u64::MAX);
    let mut w = IndexWriter::open(out.path(), WriterOptions::default()).unwrap();
    assert_eq!(w.absorb(a.path()).unwrap(), 15);
    assert_eq!(w.absorb(b.path()).unwrap(), 15);
    drop(w);
    let r = IndexReader::open(out.path()).unwrap();
    assert_eq!(r.live_count(), 30);
    r.verify().unwrap();
    assert_eq!(r.find_id(&corpus.id(20)).unwrap().len(), 1);
}

#[test]
fn damage_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(10, 9);
    build(dir.path(), &corpus, 0..10, u64::MAX);
    let r = IndexReader::open(dir.path()).unwrap();
    let seg = r.segments()[0].dir().to_path_buf();
    drop(r);

    // A flipped byte inside a record: verify names the file; opening still works (lazy validation).
    let records = seg.join("fingerprints.rkyv");
    let original = std::fs::read(&records).unwrap();
    let mut bytes = original.clone();
    bytes[100] ^= 0x55;
    std::fs::write(&records, &bytes).unwrap();
    let e = IndexReader::open(dir.path()).unwrap().verify().unwrap_err();
    assert!(
        e.is_corruption() && e.to_string().contains("fingerprints.rkyv"),
        "{e}"
    );

    // Truncation is caught at open.
    std::fs::write(&records, &original[..original.len() - 10]).unwrap();
    let e = IndexReader::open(dir.path())
        .err()
        .expect("truncated records must not open");
    assert!(e.to_string().contains("fingerprints.rkyv"), "{e}");
    std::fs::write(&records, &original).unwrap();
    IndexReader::open(dir.path()).unwrap().verify().unwrap();

    // A damaged tantivy file is named by verify.
    let meta_file = std::fs::read_dir(seg.join("meta"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "store"))
        .unwrap();
    let mut m = std::fs::read(&meta_file).unwrap();
    m[0] ^= 1;
    std::fs::write(&meta_file, &m).unwrap();
    let e = IndexReader::open(dir.path()).unwrap().verify().unwrap_err();
    assert!(e.to_string().contains(".store"), "{e}");
}

#[test]
fn damaged_graph_and_sketches_are_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(300, 5);
    build(dir.path(), &corpus, 0..300, 100);
    let r = IndexReader::open(dir.path()).unwrap();
    let seg = r.segments()[0].dir().to_path_buf();
    assert!(r.segments()[0].meta().sketch && r.segments()[0].sketch().is_some());
    drop(r);
    for name in ["sketch.bin", "graph.bin"] {
        let path = seg.join(name);
        let original = std::fs::read(&path).unwrap();
        // A flipped payload byte: the index opens (sizes are intact) but verify and a server's warm-up
        // name the file.
        let mut bytes = original.clone();
        bytes[40] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        let r = IndexReader::open(dir.path()).unwrap();
        let e = r.verify().unwrap_err();
        assert!(e.is_corruption() && e.to_string().contains(name), "{e}");
        let e = r.load_graphs().unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
        drop(r);
        // Truncated: refused at open, naming the file.
        std::fs::write(&path, &original[..original.len() - 30]).unwrap();
        let e = IndexReader::open(dir.path())
            .err()
            .expect("a truncated file must not open");
        assert!(e.to_string().contains(name), "{e}");
        std::fs::write(&path, &original).unwrap();
        IndexReader::open(dir.path()).unwrap().verify().unwrap();
    }
}

#[test]
fn an_index_of_another_composite_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Corpus::new(5, 3);
    build(dir.path(), &corpus, 0..5, u64::MAX);
    let mut m = provsearch_index::manifest::Manifest::load(dir.path()).unwrap();
    m.composite.version -= 1;
    m.store(dir.path()).unwrap();
    let err = IndexReader::open(dir.path()).err().expect("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("manifest.json") && msg.contains("composite vectors of version"),
        "{msg}"
    );
}
