//! `scale-bench`: build an index of N synthetic fingerprints (planted families) and measure it.
//!
//! ```text
//! cargo run --release -p datasets --bin scale-bench -- --count N [--dir DIR] [--keep] [--queries Q]
//!     [--recall-queries R] [--top-k K] [--candidates C] [--min-candidates M] [--floor F] [--ef E]
//!     [--seed S] [--batch B] [--sketch-share S] [--floor-queries F] [--reuse] [--expand E]
//! ```
//! Prints one JSON line: count, build_seconds (wall time from an empty directory to the committed index,
//! including making the synthetic fingerprints, of which generate_seconds is spent in the generator while the
//! graph grows in the background), commit_seconds, fingerprints_per_second, relative_recall (of the fingerprints
//! that the exhaustive mode calls related to the query within its top-k, the fraction the approximate path
//! returns), recall_at_10, p50_ms / p99_ms (warm, single-threaded queries through the HNSW graphs),
//! cold_query_ms (a new process opens the index from disk and answers one query; the memory-mapped graphs
//! need no loading), disk_bytes_per_fingerprint, ram_bytes_per_fingerprint (growth of the warm process's
//! resident set from before the index was opened to after all timed queries, without the pages of the
//! records file, reported apart as records_resident_bytes) and ram_anon_bytes_per_fingerprint (its anonymous
//! part; the rest is mapped graph, vector and metadata files: clean, reclaimable page cache).
//! `relative_recall_above_floor` and `graph_recall_above_floor` are measured over `--floor-queries` (default
//! 1000) further models against a brute-force truth (see [`floor_recall`]): cheap at 1M, where
//! `relative_recall`'s exhaustive rescoring allows only a handful of queries.
//! `width_pruned_queries` width-pruned models of the corpus (up to 200; they share no tensor shape with their
//! parent) are queried too: `width_pruned_parent_found` counts those whose parent comes back related,
//! `width_pruned_parent_found_by_channel_codes` those found only through the channel codes.
//! `--cold-query DIR ID` is the child process of the cold measurement. `--separation N` instead prints how
//! the composite similarity separates related from unrelated pairs in a corpus of N (and what an exact
//! comparison costs), the measurement behind the composite's dimension and weights.

use anyhow::{bail, Context, Result};
use datasets::fingerprints::{Corpus, Role};
use provsearch_index::search::{query, Origin, QueryOptions};
use provsearch_index::writer::{IndexWriter, WriterOptions};
use provsearch_index::IndexReader;
use rayon::prelude::*;
use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

const USAGE: &str = "usage: scale-bench --count N [--dir DIR] [--keep] [--reuse] [--queries Q] \
     [--recall-queries R] [--floor-queries F] [--top-k K] [--candidates C] [--min-candidates M] [--floor F] \
     [--ef E] [--seed S] [--batch B] [--sketch-share S] [--expand E]
       scale-bench --separation N
prints one JSON line; see the module docs of datasets/src/bin/scale-bench.rs for every field";

struct Args {
    count: usize,
    dir: Option<PathBuf>,
    keep: bool,
    queries: usize,
    recall_queries: Option<usize>,
    top_k: usize,
    candidates: usize,
    min_candidates: usize,
    floor: f32,
    ef: usize,
    seed: u64,
    batch: usize,
    reuse: bool,
    expand: usize,
    floor_queries: usize,
    sketch_share: f64,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        count: 10_000,
        dir: None,
        keep: false,
        queries: 200,
        recall_queries: None,
        top_k: 10,
        candidates: 100,
        min_candidates: QueryOptions::default().min_candidates,
        floor: QueryOptions::default().rescore_floor,
        ef: QueryOptions::default().ef_search,
        seed: 42,
        batch: 2048,
        reuse: false,
        expand: QueryOptions::default().expand,
        floor_queries: 1000,
        sketch_share: QueryOptions::default().sketch_share,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => a.count = value()?.replace('_', "").parse()?,
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            "--keep" => a.keep = true,
            "--queries" => a.queries = value()?.parse()?,
            "--recall-queries" => a.recall_queries = Some(value()?.parse()?),
            "--top-k" => a.top_k = value()?.parse()?,
            "--candidates" => a.candidates = value()?.parse()?,
            "--ef" => a.ef = value()?.parse()?,
            "--min-candidates" => a.min_candidates = value()?.parse()?,
            "--floor" => a.floor = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--batch" => a.batch = value()?.parse()?,
            "--reuse" => a.reuse = true,
            "--expand" => a.expand = value()?.parse()?,
            "--floor-queries" => a.floor_queries = value()?.parse()?,
            "--sketch-share" => a.sketch_share = value()?.parse()?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    Ok(a)
}

fn rss_bytes() -> u64 {
    status_bytes("VmRSS:")
}

/// A `/proc/self/status` field in bytes (`VmRSS:`, `RssAnon:`, ...).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resident bytes of this process's mappings of files whose name ends with `suffix` (`/proc/self/smaps`).
fn mapped_rss_bytes(suffix: &str) -> u64 {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut total = 0;
    let mut counting = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // A mapping header: address range, perms, offset, device, inode, path.
            counting = line.trim_end().ends_with(suffix);
        } else if counting && first == "Rss:" {
            total += words
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024;
        }
    }
    total
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            total += if path.is_dir() {
                dir_bytes(&path)
            } else {
                e.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Recall measured against a brute-force truth, cheap enough for a thousand queries at 1M (unlike
/// `relative_recall`'s exhaustive rescoring of every record). For each query model, the truth is each
/// segment's exact top `candidates` records by composite similarity that reach the rescore floor (the
/// query's own record left out):
/// - `graph`: how many of them the segment's graph search returns at the query's breadth (the graph's own
///   losses);
/// - `related`: of those that an exact comparison calls related (at most `top_k`, best identity first), how
///   many the full query path returns, expansion and metadata candidates included.
///
/// Related models below the floor (distilled students, say) are outside this truth: `relative_recall`
/// covers them.
#[derive(Default)]
struct FloorRecall {
    graph: (usize, usize),
    related: (usize, usize),
    missed: Vec<serde_json::Value>,
}

fn floor_recall(
    reader: &IndexReader,
    corpus: &Corpus,
    queries: &[usize],
    args: &Args,
    options: &(dyn Fn(usize) -> QueryOptions + Sync),
) -> Result<FloorRecall> {
    use provsearch_index::composite::{composite, dot};
    use provsearch_index::score::compare;
    let config = reader.manifest().composite;
    let floor = (args.floor * config.scale() * config.scale()) as i32;
    let per_query: Vec<Result<FloorRecall>> = queries
        .par_iter()
        .map(|&i| {
            let f = corpus.fingerprint(i);
            let q = composite(&f, &config);
            let own = reader.find_id(&corpus.id(i))?;
            let mut out = FloorRecall::default();
            let mut related = Vec::new();
            for (segment, s) in reader.segments().iter().enumerate() {
                let mut exact: Vec<(i32, u32)> = s
                    .vectors()
                    .chunks_exact(q.len())
                    .enumerate()
                    .map(|(doc, v)| (dot(&q, v), doc as u32))
                    .filter(|&(score, doc)| {
                        score >= floor && !own.iter().any(|r| r.segment == segment && r.doc == doc)
                    })
                    .collect();
                exact.sort_unstable_by(|a, b| b.cmp(a));
                exact.truncate(args.candidates);
                if let Some(graph) = s.graph() {
                    let got: HashSet<u32> = graph
                        .search(s.vectors(), &q, args.candidates + 1, args.ef, None)
                        .into_iter()
                        .map(|(doc, _)| doc)
                        .collect();
                    out.graph.1 += exact.len();
                    out.graph.0 += exact.iter().filter(|(_, d)| got.contains(d)).count();
                }
                for &(score, doc) in &exact {
                    let other = s.fingerprint(doc)?;
                    let c = compare(&f, &other);
                    if c.related == Some(true) {
                        let composite = score as f32 / (config.scale() * config.scale());
                        related.push((c.identity_score.unwrap_or(0.0), other.source.id, composite));
                    }
                }
            }
            related.sort_by(|a, b| b.0.total_cmp(&a.0));
            related.truncate(args.top_k);
            let result = query(reader, &f, &options(i))?;
            let got: HashSet<&str> = result.hits.iter().map(|h| h.model_id.as_str()).collect();
            // Relatives tied with (or beaten by) `top_k` returned ones are not lost: the exact top-k could
            // have listed either.
            let weakest_returned = (result.hits.len() >= args.top_k)
                .then(|| result.hits.iter().filter(|h| h.comparison.related == Some(true)).count() >= args.top_k)
                .filter(|&full| full)
                .and_then(|_| result.hits.iter().filter_map(|h| h.comparison.identity_score).reduce(f64::min));
            for (identity, id, composite) in related {
                out.related.1 += 1;
                if got.contains(id.as_str()) || weakest_returned.is_some_and(|w| w >= identity) {
                    out.related.0 += 1;
                } else {
                    out.missed.push(json!({"query": corpus.id(i), "missed": id, "identity": identity, "composite": composite}));
                }
            }
            Ok(out)
        })
        .collect();
    let mut total = FloorRecall::default();
    for r in per_query {
        let r = r?;
        total.graph = (total.graph.0 + r.graph.0, total.graph.1 + r.graph.1);
        total.related = (total.related.0 + r.related.0, total.related.1 + r.related.1);
        total.missed.extend(r.missed);
    }
    Ok(total)
}

/// Child process: open the index cold and answer one query (as `provsearch query model ID --no-server`).
fn cold_query(dir: &Path, id: &str) -> Result<()> {
    let reader = IndexReader::open(dir)?;
    let r = reader.find_id(id)?;
    let first = r.first().context("query id not in the index")?;
    let f = reader.segments()[first.segment].fingerprint(first.doc)?;
    let opts = QueryOptions {
        exclude_id: Some(id.to_string()),
        ..QueryOptions::default()
    };
    let result = query(&reader, &f, &opts)?;
    println!("{}", result.hits.len());
    Ok(())
}

/// Composite similarity of related vs unrelated pairs, and the cost of one exact comparison.
fn separation(n: usize, overrides: &[String]) -> Result<()> {
    use provsearch_index::composite::{composite, CompositeConfig};
    use provsearch_index::score::compare;
    let corpus = Corpus::new(n, 42);
    let mut config = CompositeConfig::default();
    for pair in overrides.chunks(2) {
        let value = pair.get(1).context("flag needs a value")?;
        match pair[0].as_str() {
            "--dims" => config.dimension = value.parse()?,
            "--gram-dims" => config.gram_dims = value.parse()?,
            "--share" => config.positional_share_permille = value.parse()?,
            "--norm-weight" => config.norm_weight_permille = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let fps: Vec<_> = (0..n)
        .into_par_iter()
        .map(|i| corpus.fingerprint(i))
        .collect();
    let vs: Vec<Vec<i8>> = fps.par_iter().map(|f| composite(f, &config)).collect();
    // Related pairs: each model with its parent; unrelated: random pairs of different families.
    let mut related = Vec::new();
    let mut unrelated = Vec::new();
    let t = Instant::now();
    let mut compares = 0usize;
    for i in 0..n {
        let p = corpus.planted(i);
        // Every later member of the same family (families are contiguous): parents, children, siblings and
        // cousins; the truth is what `compare` says of them.
        for k in i + 1..n {
            let q = corpus.planted(k);
            if q.family != p.family {
                break;
            }
            let c = compare(&fps[i], &fps[k]);
            compares += 1;
            let kind = if q.parent == Some(i as u32) {
                format!("child {:?}", q.role)
            } else {
                format!("kin {:?}", q.role)
            };
            related.push((
                config.similarity(&vs[i], &vs[k]),
                c.related == Some(true),
                kind,
            ));
        }
        let j = (i * 7919 + 13) % n;
        if corpus.planted(j).family != p.family {
            let c = compare(&fps[i], &fps[j]);
            compares += 1;
            unrelated.push((config.similarity(&vs[i], &vs[j]), c.related == Some(true)));
        }
    }
    let per_compare_us = t.elapsed().as_secs_f64() * 1e6 / compares.max(1) as f64;
    let mut u: Vec<f32> = unrelated.iter().map(|x| x.0).collect();
    u.sort_by(f32::total_cmp);
    let q = |v: &[f32], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    let mut r: Vec<f32> = related.iter().filter(|x| x.1).map(|x| x.0).collect();
    r.sort_by(f32::total_cmp);
    let mean = u.iter().sum::<f32>() / u.len() as f32;
    let sd = (u.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / u.len() as f32).sqrt();
    // Where each related pair would rank among a million unrelated models (Gaussian fit of the unrelated
    // similarities): the fraction that stays within the best 100 and 1000 candidates.
    let expected_above = |x: f32| 1e6 * upper_tail(((x - mean) / sd) as f64);
    let within = |k: f64| {
        r.iter().filter(|&&x| expected_above(x) <= k).count() as f64 / r.len().max(1) as f64
    };
    let weakest: Vec<_> = {
        let mut w: Vec<_> = related.iter().filter(|x| x.1).collect();
        w.sort_by(|a, b| a.0.total_cmp(&b.0));
        w.iter()
            .take(5)
            .map(|x| json!({"composite": x.0, "role": x.2}))
            .collect()
    };
    println!(
        "{}",
        json!({
            "pairs_related": r.len(), "family_pairs_not_related_by_compare": related.iter().filter(|x| !x.1).count(),
            "pairs_unrelated": u.len(), "unrelated_called_related": unrelated.iter().filter(|x| x.1).count(),
            "unrelated_mean": mean, "unrelated_sd": sd, "unrelated_max": q(&u, 1.0), "unrelated_p999": q(&u, 0.999),
            "related_min": r.first(), "related_p01": r.get(r.len() / 100), "related_p10": r.get(r.len() / 10), "related_median": r.get(r.len() / 2),
            "weakest_related": weakest,
            "at_1m_within_top100": within(100.0), "at_1m_within_top1000": within(1000.0),
            "dims": config.dimension, "gram_dims": config.gram_dims, "share_permille": config.positional_share_permille,
            "compare_us": per_compare_us,
        })
    );
    Ok(())
}

/// P(Z > z) for a standard normal (Abramowitz & Stegun 7.1.26 for erfc; absolute error < 1.5e-7).
fn upper_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--cold-query") {
        let (dir, id) = (argv.get(2).context("dir")?, argv.get(3).context("id")?);
        return cold_query(Path::new(dir), id);
    }
    if argv.get(1).map(String::as_str) == Some("--separation") {
        let n: usize = argv.get(2).context("N")?.parse()?;
        return separation(n, &argv[3..]);
    }
    let args = parse()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("scale-bench-{}", args.count)));
    let corpus = Corpus::new(args.count, args.seed);
    // `--reuse`: query an index an earlier `--keep` run built from the same corpus (tuning query options).
    let reuse = args.reuse && dir.join("manifest.json").exists();
    if dir.exists() && !reuse {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }

    // Build.
    let t0 = Instant::now();
    let mut commit_seconds = f64::NAN;
    // Wall time spent making the synthetic fingerprints (the stand-in for extraction, which the fingerprint
    // benchmarks measure). It stays in build_seconds (a conservative figure): graph insertion runs in the
    // background meanwhile, so subtracting it would undercount the index's own work.
    let mut generate_seconds = 0.0;
    if !reuse {
        let mut writer = IndexWriter::open(&dir, WriterOptions::default())?;
        let mut start = 0;
        while start < corpus.len() {
            let end = (start + args.batch).min(corpus.len());
            let t = Instant::now();
            let batch: Vec<_> = (start..end)
                .into_par_iter()
                .map(|i| corpus.fingerprint(i))
                .collect();
            generate_seconds += t.elapsed().as_secs_f64();
            writer.add_batch(&batch)?;
            start = end;
        }
        let t = Instant::now();
        writer.commit()?;
        commit_seconds = t.elapsed().as_secs_f64();
    }
    let build_seconds = if reuse {
        f64::NAN
    } else {
        t0.elapsed().as_secs_f64()
    };
    let disk = dir_bytes(&dir);

    // Warm process state: index open, graphs checked and read ahead (what `serve` does).
    let (rss0, anon0) = (rss_bytes(), status_bytes("RssAnon:"));
    let reader = IndexReader::open(&dir)?;
    let t1 = Instant::now();
    reader.load_graphs()?;
    let graph_load_seconds = t1.elapsed().as_secs_f64();

    // Query set: every k-th model, so roots and derivatives both appear.
    let step = (corpus.len() / args.queries.max(1)).max(1);
    let qs: Vec<usize> = (0..corpus.len()).step_by(step).take(args.queries).collect();
    let options = |i: usize, exact: bool| QueryOptions {
        top_k: args.top_k,
        candidates: args.candidates,
        min_candidates: args.min_candidates,
        rescore_floor: args.floor,
        ef_search: args.ef,
        sketch_share: args.sketch_share,
        exact,
        exclude_id: Some(corpus.id(i)),
        expand: args.expand,
        ..QueryOptions::default()
    };
    // One untimed pass first: "warm" means the index is open and its pages are cached, and the records of a
    // large index are not all in the page cache after the build (without this, the first timed pass pays
    // the disk reads and the second does not).
    for &i in &qs {
        query(&reader, &corpus.fingerprint(i), &options(i, false))?;
    }
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let mut times = Vec::with_capacity(qs.len());
    let mut approx = Vec::with_capacity(qs.len());
    for &i in &qs {
        let f = corpus.fingerprint(i);
        let t = Instant::now();
        let r = single.install(|| query(&reader, &f, &options(i, false)))?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        approx.push(r);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    // The same queries with rescoring spread over every core (what `serve` does).
    let mut parallel = Vec::with_capacity(qs.len());
    for &i in &qs {
        let f = corpus.fingerprint(i);
        let t = Instant::now();
        query(&reader, &f, &options(i, false))?;
        parallel.push(t.elapsed().as_secs_f64() * 1e3);
    }
    parallel.sort_by(f64::total_cmp);
    // Memory of the warm process after every query above: its growth since before the index was opened,
    // without the pages of the records file (each query reads its ~20 candidates' records; that working set
    // does not grow with the index), reported apart.
    let records_rss = mapped_rss_bytes("fingerprints.rkyv");
    let ram = rss_bytes().saturating_sub(rss0).saturating_sub(records_rss);
    let ram_anon = status_bytes("RssAnon:").saturating_sub(anon0);

    // Ground truth on a subset (exhaustive rescoring is O(N) compares per query).
    let recall_queries = args
        .recall_queries
        .unwrap_or(if args.count <= 20_000 {
            50
        } else if args.count <= 200_000 {
            20
        } else {
            6
        })
        .min(qs.len());
    let (mut rel_found, mut rel_total, mut top_found, mut top_total) =
        (0usize, 0usize, 0usize, 0usize);
    let mut missed = Vec::new();
    for (n, &i) in qs.iter().enumerate().take(recall_queries) {
        let f = corpus.fingerprint(i);
        let exact = query(&reader, &f, &options(i, true))?;
        let got: HashSet<&str> = approx[n].hits.iter().map(|h| h.model_id.as_str()).collect();
        for h in &exact.hits {
            if h.comparison.related == Some(true) {
                rel_total += 1;
                if got.contains(h.model_id.as_str()) {
                    rel_found += 1;
                } else {
                    missed.push(json!({"query": corpus.id(i), "missed": h.model_id, "identity": h.comparison.identity_score, "composite": h.composite_similarity}));
                }
            }
        }
        for h in exact.hits.iter().take(10) {
            top_total += 1;
            top_found += got.contains(h.model_id.as_str()) as usize;
        }
    }

    // Recall against a brute-force truth above the rescore floor, over more queries (offset from the timed
    // ones).
    let cstep = (corpus.len() / args.floor_queries.max(1)).max(1);
    let cqs: Vec<usize> = (cstep / 2..corpus.len())
        .step_by(cstep)
        .take(args.floor_queries)
        .collect();
    let floor = floor_recall(&reader, &corpus, &cqs, &args, &|i| options(i, false))?;
    let ratio = |(found, total): (usize, usize)| {
        if total > 0 {
            found as f64 / total as f64
        } else {
            f64::NAN
        }
    };

    // Width-pruned models (no tensor shape in common with their parent): is the parent among the results,
    // and through which path? Up to 200 of them, in corpus order.
    let pruned: Vec<usize> = (0..corpus.len())
        .filter(|&i| matches!(corpus.planted(i).role, Role::WidthPruned { .. }))
        .take(200)
        .collect();
    let (mut pruned_found, mut pruned_by_codes_only) = (0usize, 0usize);
    for &i in &pruned {
        let Some(parent) = corpus.planted(i).parent else {
            continue;
        };
        let r = query(&reader, &corpus.fingerprint(i), &options(i, false))?;
        let parent_id = corpus.id(parent as usize);
        if let Some(h) = r
            .hits
            .iter()
            .find(|h| h.model_id == parent_id && h.comparison.related == Some(true))
        {
            pruned_found += 1;
            pruned_by_codes_only += (h.origin == Origin::Channels) as usize;
        }
    }

    // Cold one-shot query in a new process.
    let exe = std::env::current_exe()?;
    let qid = corpus.id(qs.get(1).copied().unwrap_or(0));
    let t2 = Instant::now();
    let status = std::process::Command::new(&exe)
        .args(["--cold-query", &dir.display().to_string(), &qid])
        .stdout(std::process::Stdio::null())
        .status()?;
    let cold_ms = t2.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        bail!("cold query process failed");
    }

    let line = json!({
        "width_pruned_queries": pruned.len(),
        "width_pruned_parent_found": pruned_found,
        "width_pruned_parent_found_by_channel_codes": pruned_by_codes_only,
        "count": corpus.len(),
        "build_seconds": (build_seconds * 100.0).round() / 100.0,
        "fingerprints_per_second": (corpus.len() as f64 / build_seconds).round(),
        "commit_seconds": (commit_seconds * 100.0).round() / 100.0,
        "generate_seconds": (generate_seconds * 100.0).round() / 100.0,
        "relative_recall": if rel_total > 0 { rel_found as f64 / rel_total as f64 } else { f64::NAN },
        "related_in_truth": rel_total,
        "recall_at_10": if top_total > 0 { top_found as f64 / top_total as f64 } else { f64::NAN },
        "recall_queries": recall_queries,
        "graph_recall_above_floor": ratio(floor.graph), "graph_candidates_in_truth": floor.graph.1,
        "relative_recall_above_floor": ratio(floor.related), "related_above_floor_in_truth": floor.related.1,
        "floor_recall_queries": cqs.len(), "missed_above_floor": floor.missed.iter().take(5).collect::<Vec<_>>(),
        "p50_ms": (percentile(&sorted, 0.5) * 100.0).round() / 100.0,
        "p99_ms": (percentile(&sorted, 0.99) * 100.0).round() / 100.0,
        "queries": qs.len(),
        "p50_ms_all_cores": (percentile(&parallel, 0.5) * 100.0).round() / 100.0,
        "p99_ms_all_cores": (percentile(&parallel, 0.99) * 100.0).round() / 100.0,
        "cold_query_ms": cold_ms.round(),
        "graph_load_seconds": (graph_load_seconds * 100.0).round() / 100.0,
        "disk_bytes_per_fingerprint": disk / corpus.len().max(1) as u64,
        "ram_bytes_per_fingerprint": ram / corpus.len().max(1) as u64,
        "ram_anon_bytes_per_fingerprint": ram_anon / corpus.len().max(1) as u64,
        "records_resident_bytes": records_rss,
        "top_k": args.top_k, "candidates": args.candidates, "min_candidates": args.min_candidates,
        "rescore_floor": args.floor, "ef_search": args.ef, "sketch_share": args.sketch_share, "mean_rescored": approx.iter().map(|r| r.rescored).sum::<usize>() as f64 / approx.len().max(1) as f64,
        "dimension": reader.manifest().composite.dimension,
        "missed_examples": missed.iter().take(5).collect::<Vec<_>>(),
    });
    println!("{line}");
    if !args.keep && !reuse {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
