//! Fingerprinting speed and memory, measured against a plain sequential read of the same files in the same
//! run (this machine is noisy: ratios, not absolute times, are what to compare).
//!
//! `cargo bench --bench fingerprint [-- --big-gb 2.2] [-- --skip-big] [-- --no-cold] [-- --child-exe PATH]`
//! prints one JSON line per model:
//! - `read_seconds`: the best of [`runs`] sequential `read()`s of the weight files (page cache warm);
//! - `fingerprint_seconds`: the best of [`runs`] fingerprints, each in a fresh child process (timed inside the
//!   child, so process start-up is excluded), and `ratio` = fingerprint / read. This includes the BLAKE3
//!   content digest that a local directory needs; `signals_only_seconds`/`signals_only_ratio` are the same
//!   without it, which is also the cost for a Hugging Face cache snapshot (its SHA-256s come free with the blob
//!   names);
//! - `local_dir_download_seconds`/`local_dir_download_ratio`: the default fingerprint of the same files laid out
//!   as `huggingface-cli download --local-dir` leaves them (hard links to the same inodes, so the same cached
//!   pages, and a download record per file in `.cache/huggingface/download/`): the records give the SHA-256s,
//!   so nothing is hashed;
//! - `peak_rss_bytes` (the highest VmHWM of the children), `embedding_bytes` (the stored embedding matrix) and
//!   `peak_rss_minus_embedding_bytes`;
//! - `read_cpu_seconds`, `fingerprint_cpu_seconds`, `signals_only_cpu_seconds`: the least CPU time of the same
//!   runs (all threads, `CLOCK_PROCESS_CPUTIME_ID` in the child, `CLOCK_THREAD_CPUTIME_ID` for the read). It
//!   moves less with the other processes' load than wall time: with two cores free, the wall time of the
//!   parallel fingerprint approaches half its CPU time;
//! - `cold_read_seconds`, `cold_fingerprint_seconds`, `cold_ratio`: the same read and (default) fingerprint
//!   with the weight files dropped from the page cache before each run (`fsync`, then
//!   `posix_fadvise(POSIX_FADV_DONTNEED)` on those files only; config and tokenizer files stay cached), best
//!   of [`COLD_RUNS`]. `cold_read_vs_warm` is the cold read over the warm one, and
//!   `cold_resident_after_evict_bytes` the most bytes of the weight files still cached right after an
//!   eviction (from `mincore`; 0 when the eviction worked). `-- --no-cold` skips these;
//! - `loadavg`: the 1-minute load average before and after the model's measurements.
//!
//! A last line times `provsearch compare` (this build's, whatever `--child-exe`) on the real all-MiniLM-L6-v2
//! against its int8 copy (whole command, best of 3), for comparison with the reference tool's 6.6–9.4 s per
//! pair.
//!
//! The big model is a synthetic TinyLlama-shaped checkpoint (22 layers, hidden 2048, F16, ≈ 2.2 GB) that the
//! benchmark writes itself, streaming, into `target/bench-data/`.

mod common;

use datasets::rng::Rng;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn weight_files(model: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(model)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.extension()
            .is_some_and(|e| e == "safetensors" || e == "gguf")
    });
    files.sort();
    files
}

/// (wall seconds, CPU seconds of this thread) of one sequential read of the files.
fn read_all(files: &[PathBuf]) -> (f64, f64) {
    let mut buf = vec![0u8; 8 << 20];
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    for f in files {
        let mut file = std::fs::File::open(f).expect("open weights");
        while file.read(&mut buf).expect("read") > 0 {}
    }
    (
        start.elapsed().as_secs_f64(),
        thread_cpu_ns().saturating_sub(cpu) as f64 * 1e-9,
    )
}

fn thread_cpu_ns() -> u64 {
    common::cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time of every thread of this process so far, in ns.
fn process_cpu_ns() -> u64 {
    common::cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn loadavg() -> String {
    common::loadavg().map_or_else(|| "null".into(), |l| l.to_string())
}

/// Bytes of `file` in the page cache (`mincore` over a read-only mapping; `None` when that fails).
fn resident_bytes(file: &Path) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(file).ok()?;
    let len = f.metadata().ok()?.len() as usize;
    if len == 0 {
        return Some(0);
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
    // SAFETY: a fresh read-only shared mapping of the whole file, never dereferenced, unmapped below.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return None;
    }
    let mut pages = vec![0u8; len.div_ceil(page)];
    // SAFETY: `addr` maps `len` bytes and `pages` has one byte per page of them.
    let ok = unsafe { libc::mincore(addr, len, pages.as_mut_ptr()) } == 0;
    // SAFETY: `addr` and `len` are the mapping made above.
    unsafe { libc::munmap(addr, len) };
    ok.then(|| pages.iter().filter(|&&p| p & 1 != 0).count() as u64 * page as u64)
}

/// Drop the files from the page cache: `fsync` (dirty pages are not dropped), then
/// `posix_fadvise(POSIX_FADV_DONTNEED)` on each. Only these files are dropped, not the whole page cache
/// (`/proc/sys/vm/drop_caches` would evict every other process's cache on this shared machine). Returns the
/// bytes still cached afterwards, to check that the eviction happened (pages mapped by another process stay).
fn evict(files: &[PathBuf]) -> u64 {
    use std::os::fd::AsRawFd;
    let mut resident = 0;
    for path in files {
        let f = std::fs::File::open(path).expect("open weights");
        // fsync of a file opened read-only is allowed on Linux; it flushes any dirty pages of the file.
        let _ = f.sync_all();
        // SAFETY: a valid descriptor, offset 0 and length 0 (to the end of the file).
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if rc != 0 {
            eprintln!("posix_fadvise({}): error {rc}", path.display());
        }
        resident += resident_bytes(path).unwrap_or(u64::MAX / 2);
    }
    resident
}

/// Child mode: fingerprint once and report the time and the peak RSS.
fn child(model: &str, skip_digests: bool) {
    let options = provsearch_ingest::FingerprintOptions {
        skip_digests,
        ..Default::default()
    };
    let cpu = process_cpu_ns();
    let start = Instant::now();
    let extracted = provsearch_ingest::fingerprint(model, &options).expect("fingerprint");
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_ns().saturating_sub(cpu) as f64 * 1e-9;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let emb = extracted
        .fingerprint
        .weights
        .embedding
        .as_ref()
        .map_or(0, |e| e.rows as u64 * e.hidden as u64);
    let bytes_per = extracted.fingerprint.source.total_bytes as f64
        / extracted.fingerprint.source.parameter_count.max(1) as f64;
    println!(
        "{seconds} {} {} {cpu_seconds}",
        hwm_kb * 1024,
        (emb as f64 * bytes_per) as u64
    );
}

/// Repetitions of each measurement: 3 for a multi-GB model, 10 below 1 GB, whose runs take tens of
/// milliseconds, so that the best is not a sample of the other processes' load.
fn runs(bytes: u64) -> usize {
    if bytes < 1 << 30 {
        10
    } else {
        3
    }
}

/// The program run as the child: this benchmark, or with `-- --child-exe PATH` another build of it (e.g. a
/// copy of an older commit's bench binary), whose `--child` mode prints the same fields. Both are then timed by
/// the same harness against the same reads, for before/after comparisons in one run.
fn child_exe() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--child-exe")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_exe().expect("own path"))
}

/// Best of `runs` child runs: (seconds, peak RSS, embedding bytes, least CPU seconds).
fn run_children(model: &Path, skip_digests: bool, runs: usize) -> Option<(f64, u64, u64, f64)> {
    let exe = child_exe();
    let (mut best, mut rss, mut emb, mut cpu) = (f64::MAX, 0u64, 0u64, f64::MAX);
    for _ in 0..runs {
        let mut cmd = Command::new(&exe);
        cmd.arg("--child").arg(model);
        if skip_digests {
            cmd.arg("--no-digest");
        }
        let out = cmd.output().expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [s, r, e, c] = parts.as_slice() else {
            eprintln!("child failed: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        };
        best = best.min(s.parse().unwrap_or(f64::MAX));
        rss = rss.max(r.parse().unwrap_or(0));
        emb = e.parse().unwrap_or(0);
        cpu = cpu.min(c.parse().unwrap_or(f64::MAX));
    }
    Some((best, rss, emb, cpu))
}

/// Cold runs of each measurement (each one reads the files from disk).
const COLD_RUNS: usize = 3;

/// Cold-cache figures: the best of [`COLD_RUNS`] reads and fingerprints, each started with the files evicted
/// from the page cache. Returns (read seconds, fingerprint seconds, most bytes still cached after an eviction).
/// Ends with the files evicted and read once more with 8 MiB `read()`s, so that the page cache is left as the
/// warm measurements find it at the start (in large folios: see docs/benchmarks.md).
fn measure_cold(model: &Path, files: &[PathBuf]) -> Option<(f64, f64, u64)> {
    let (mut read, mut fingerprint, mut resident) = (f64::MAX, f64::MAX, 0u64);
    for _ in 0..COLD_RUNS {
        resident = resident.max(evict(files));
        read = read.min(read_all(files).0);
        resident = resident.max(evict(files));
        fingerprint = fingerprint.min(run_children(model, false, 1)?.0);
    }
    evict(files);
    read_all(files);
    Some((read, fingerprint, resident))
}

/// The model's top-level files as a `--local-dir` download in `dir`: hard links (the same inodes, so the same
/// cached pages and modification times) and a download record per file written after them, with the SHA-256 of
/// each weight file as its etag (an LFS file's) and a git SHA-1 for the others. Copies if linking fails.
fn local_dir_download(model: &Path, dir: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let weights = weight_files(model);
    let written = datasets::local_dir::unix_now();
    for entry in std::fs::read_dir(model)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let link = dir.join(name);
        if std::fs::hard_link(&path, &link).is_err() {
            std::fs::copy(&path, &link)?;
        }
        let etag = if weights.contains(&path) {
            provsearch_ingest::digest::hashed_sha256(&path)
                .map_err(|e| std::io::Error::other(e.to_string()))?
        } else {
            "0".repeat(40)
        };
        let commit = "0123456789abcdef0123456789abcdef01234567";
        datasets::local_dir::write_record(dir, name, commit, &etag, written)?;
    }
    Ok(())
}

fn measure(name: &str, model: &Path, cold: bool) {
    let files = weight_files(model);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum();
    let load_before = loadavg();
    read_all(&files); // warm the page cache
    let runs = runs(bytes);
    let reads: Vec<(f64, f64)> = (0..runs).map(|_| read_all(&files)).collect();
    let read = reads.iter().map(|r| r.0).fold(f64::MAX, f64::min);
    let read_cpu = reads.iter().map(|r| r.1).fold(f64::MAX, f64::min);
    let Some((best, rss, emb, cpu)) = run_children(model, false, runs) else {
        return;
    };
    let Some((signals_only, _, _, signals_cpu)) = run_children(model, true, runs) else {
        return;
    };
    let slug = model.file_name().unwrap_or_default().to_string_lossy();
    let download = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(format!("{slug}-local-dir"));
    local_dir_download(model, &download).expect("write the --local-dir layout");
    let Some((local_dir, _, _, _)) = run_children(&download, false, runs) else {
        return;
    };
    let cold = if cold {
        match measure_cold(model, &files) {
            Some((r, f, resident)) => format!(
                ",\"cold_read_seconds\":{r:.4},\"cold_fingerprint_seconds\":{f:.4},\"cold_ratio\":{:.2},\"cold_read_vs_warm\":{:.1},\"cold_resident_after_evict_bytes\":{resident}",
                f / r,
                r / read
            ),
            None => return,
        }
    } else {
        String::new()
    };
    println!(
        "{{\"model\":\"{name}\",\"bytes\":{bytes},\"read_seconds\":{read:.4},\"read_gb_per_s\":{:.2},\"fingerprint_seconds\":{best:.4},\"fingerprint_gb_per_s\":{:.2},\"ratio\":{:.2},\"signals_only_seconds\":{signals_only:.4},\"signals_only_ratio\":{:.2},\"local_dir_download_seconds\":{local_dir:.4},\"local_dir_download_ratio\":{:.2},\"peak_rss_bytes\":{rss},\"embedding_bytes\":{emb},\"peak_rss_minus_embedding_bytes\":{},\"read_cpu_seconds\":{read_cpu:.4},\"fingerprint_cpu_seconds\":{cpu:.4},\"signals_only_cpu_seconds\":{signals_cpu:.4}{cold},\"loadavg\":[{load_before},{}]}}",
        bytes as f64 / read / 1e9,
        bytes as f64 / best / 1e9,
        best / read,
        signals_only / read,
        local_dir / read,
        rss.saturating_sub(emb),
        loadavg(),
    );
}

/// Write a TinyLlama-shaped F16 checkpoint of about `gb` gigabytes, streaming (never the whole model in RAM).
fn write_big(dir: &Path, gb: f64) -> std::io::Result<()> {
    let (hidden, inter, vocab) = (2048usize, 5632usize, 32000usize);
    let per_layer = 4 * hidden * hidden + 3 * hidden * inter;
    let layers =
        (((gb * 1e9 / 2.0) - 2.0 * (vocab * hidden) as f64) / per_layer as f64).max(1.0) as usize;
    let mut tensors: Vec<(String, Vec<usize>)> =
        vec![("model.embed_tokens.weight".into(), vec![vocab, hidden])];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        for m in ["q_proj", "k_proj", "v_proj", "o_proj"] {
            tensors.push((format!("{p}.self_attn.{m}.weight"), vec![hidden, hidden]));
        }
        tensors.push((format!("{p}.mlp.gate_proj.weight"), vec![inter, hidden]));
        tensors.push((format!("{p}.mlp.up_proj.weight"), vec![inter, hidden]));
        tensors.push((format!("{p}.mlp.down_proj.weight"), vec![hidden, inter]));
        tensors.push((format!("{p}.input_layernorm.weight"), vec![hidden]));
        tensors.push((format!("{p}.post_attention_layernorm.weight"), vec![hidden]));
    }
    tensors.push(("model.norm.weight".into(), vec![hidden]));
    tensors.push(("lm_head.weight".into(), vec![vocab, hidden]));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut offset = 0usize;
    for (name, shape) in &tensors {
        let n: usize = shape.iter().product::<usize>() * 2;
        header.insert(name.clone(), serde_json::json!({"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + n]}));
        offset += n;
    }
    let mut text = serde_json::to_string(&header).unwrap_or_default();
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    std::fs::create_dir_all(dir)?;
    let mut out = std::io::BufWriter::with_capacity(
        8 << 20,
        std::fs::File::create(dir.join("model.safetensors.partial"))?,
    );
    out.write_all(&(text.len() as u64).to_le_bytes())?;
    out.write_all(text.as_bytes())?;
    let mut rng = Rng::new(42);
    for (name, shape) in &tensors {
        let n: usize = shape.iter().product();
        let norm = name.contains("norm");
        let mut chunk = Vec::with_capacity(1 << 16);
        for i in 0..n {
            let v = if norm {
                1.0 + 0.1 * rng.normal()
            } else {
                0.02 * rng.normal()
            };
            chunk.extend_from_slice(&half::f16::from_f64(v).to_le_bytes());
            if chunk.len() >= 1 << 16 || i + 1 == n {
                out.write_all(&chunk)?;
                chunk.clear();
            }
        }
    }
    out.flush()?;
    drop(out);
    std::fs::rename(
        dir.join("model.safetensors.partial"),
        dir.join("model.safetensors"),
    )?;
    let config = serde_json::json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": 32, "num_key_value_heads": 32,
        "vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "hidden_act": "silu"});
    std::fs::write(dir.join("config.json"), config.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], args.iter().any(|a| a == "--no-digest"));
        return;
    }
    let cold = !args.iter().any(|a| a == "--no-cold");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = std::env::var_os("PROVSEARCH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/test-models"));
    let minilm = models.join("minilm");
    if minilm.join("model.safetensors").exists() {
        measure("all-MiniLM-L6-v2 (F32, 90 MB)", &minilm, cold);
    } else {
        eprintln!("skipping the real model: run scripts/fetch-test-models.sh");
    }
    if !args.iter().any(|a| a == "--skip-big") {
        let gb: f64 = args
            .iter()
            .position(|a| a == "--big-gb")
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(2.2);
        let dir = root.join(format!("target/bench-data/tinyllama-{gb}gb"));
        if !dir.join("model.safetensors").exists() {
            eprintln!(
                "writing the synthetic {gb} GB checkpoint to {}",
                dir.display()
            );
            write_big(&dir, gb).expect("write synthetic checkpoint");
        }
        measure(
            &format!("synthetic TinyLlama-shaped (F16, {gb} GB)"),
            &dir,
            cold,
        );
    }
    // The whole `compare` command on a real pair, for comparison with the reference tool (6.6–9.4 s per pair).
    if minilm.join("model.safetensors").exists() {
        let copy = root.join("target/bench-data/minilm-int8");
        if !copy.join("model.safetensors").exists() {
            let mut c = datasets::Checkpoint::read(&minilm).expect("read minilm");
            datasets::derive::int8_per_channel(&mut c);
            c.write(&copy, datasets::Storage::F32, 1)
                .expect("write copy");
        }
        let exe = env!("CARGO_BIN_EXE_provsearch");
        let best = (0..3)
            .map(|_| {
                let t = Instant::now();
                let ok = Command::new(exe)
                    .arg("compare")
                    .arg(&minilm)
                    .arg(&copy)
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ok {
                    t.elapsed().as_secs_f64()
                } else {
                    f64::MAX
                }
            })
            .fold(f64::MAX, f64::min);
        println!("{{\"command\":\"provsearch compare all-MiniLM-L6-v2 int8-copy\",\"best_of_3_seconds\":{best:.3},\"reference_seconds\":6.6,\"speedup\":{:.1}}}", 6.6 / best);
    }
}
