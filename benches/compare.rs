//! Cost of comparing two fingerprints, the work done for every rescored candidate of a query, in one JSON
//! document: `cargo bench --bench compare`.
//!
//! For each pair, the best of 7 rounds of the mean wall and CPU time of `score::compare` (everything a verdict needs) and,
//! within it, of `score::channels::match_channels` (the embedding channels paired by content). Pairs: the
//! committed trained zoo models L-base against L-widthpruned (a width-pruned derivative: the channels decide)
//! and against L-seed2 (independent, same shapes); and, when scripts/fetch-test-models.sh has fetched it, the
//! real all-MiniLM-L6-v2 against a residual-permuted copy and against a fresh initialisation.

mod common;

use datasets::derive::fresh_init;
use datasets::residual::permute_residual;
use datasets::{Checkpoint, Storage};
use provsearch_index::score::{channels, compare};
use provsearch_index::Fingerprint;
use provsearch_ingest::{fingerprint, FingerprintOptions};
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn fp(path: &Path) -> Fingerprint {
    let options = FingerprintOptions {
        skip_digests: true,
        ..FingerprintOptions::default()
    };
    fingerprint(path.to_str().expect("utf-8 path"), &options)
        .expect("fingerprint")
        .fingerprint
}

/// Mean seconds per call of `f`, best of 7 rounds of `n` calls: (wall time, CPU time of this thread). The
/// calls run on one thread, so their CPU time moves less with the other processes' load than the wall time.
fn best_mean(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..7 {
        let (t, c) = (
            Instant::now(),
            common::cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID),
        );
        for _ in 0..n {
            f();
        }
        let spent = common::cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID).saturating_sub(c);
        wall = wall.min(t.elapsed().as_secs_f64() / n as f64);
        cpu = cpu.min(spent as f64 * 1e-9 / n as f64);
    }
    (wall, cpu)
}

fn pair(name: &str, a: &Fingerprint, b: &Fingerprint) -> Value {
    let n = 2000;
    let full = best_mean(n, || {
        black_box(compare(black_box(a), black_box(b)));
    });
    let (ea, eb) = (a.weights.embedding.as_ref(), b.weights.embedding.as_ref());
    let channel = match (ea, eb) {
        (Some(ea), Some(eb)) => Some(best_mean(n, || {
            black_box(channels::match_channels(black_box(ea), black_box(eb)));
        })),
        _ => None,
    };
    let c = compare(a, b);
    json!({
        "pair": name,
        "verdict": c.verdict,
        "compare_us": full.0 * 1e6,
        "compare_cpu_us": full.1 * 1e6,
        "match_channels_us": channel.map(|s| s.0 * 1e6),
        "match_channels_cpu_us": channel.map(|s| s.1 * 1e6),
        "channel_share_cpu": channel.map(|s| s.1 / full.1),
        "fingerprint_bytes": [a.archived_size(), b.archived_size()],
        "channel_profiles": [ea.map(|e| e.channel_ids.len()), eb.map(|e| e.channel_ids.len())],
        "channel_pairs": c.signals.channel_pairs,
    })
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let zoo = root.join("datasets/zoo/trained");
    let base = fp(&zoo.join("L-base"));
    let mut pairs = vec![
        pair(
            "L-base ~ L-widthpruned",
            &base,
            &fp(&zoo.join("L-widthpruned")),
        ),
        pair("L-base ~ L-seed2", &base, &fp(&zoo.join("L-seed2"))),
    ];
    let minilm = root.join(".cache/test-models/minilm");
    if minilm.join("model.safetensors").is_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let copy = |name: &str, edit: &dyn Fn(&mut Checkpoint)| {
            let mut c = Checkpoint::read(&minilm).expect("read MiniLM");
            edit(&mut c);
            let dir = tmp.path().join(name);
            c.write(&dir, Storage::F16, 1).expect("write copy");
            fp(&dir)
        };
        let original = fp(&minilm);
        let permuted = copy("permuted", &|c| {
            permute_residual(c, 1).expect("permute");
        });
        let fresh = copy("fresh", &|c| fresh_init(c, 0.02, 2));
        pairs.push(pair("MiniLM ~ residual-permuted", &original, &permuted));
        pairs.push(pair("MiniLM ~ fresh init", &original, &fresh));
    }
    let doc = json!({ "load_average": common::loadavg(), "pairs": pairs });
    println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
}
