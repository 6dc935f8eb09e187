//! Dequantization throughput and the fingerprint time of a real quantized model, in one JSON document.
//!
//! `cargo bench --bench quantized [-- --quick]` prints:
//! - `gguf`: per ggml type, GB/s of quantized blocks decoded by `provsearch_formats::gguf::dequantize` (the
//!   kernel every GGUF read goes through; the same measurement as `cargo bench -p provsearch-formats --bench
//!   dequant`) and millions of output elements per second;
//! - `safetensors`: per GPTQ/AWQ/bitsandbytes/FP8/MLX/NVFP4/MXFP4 layout, GB/s of stored layer bytes (codes plus their scales,
//!   zero points and indices) streamed through the ingest reader in 1 Mi-element chunks, as the signals read
//!   them, on a synthetic Llama (2 layers, hidden 1024, MLP 2816) written by `datasets::quantize`;
//! - `real_gguf`: SmolLM2-135M-Instruct Q4_1 (98 MB, from scripts/fetch-test-models.sh): the best of at least
//!   10 runs (and at least 1 s) of a sequential read of the file (page cache warm) and of in-process
//!   fingerprints with and without the BLAKE3 content digest, and their ratios to the read. Each run takes tens
//!   of milliseconds, so fewer runs would measure the machine's other load more than the code. Beside the wall
//!   times: the least CPU time of the same runs (all threads, `CLOCK_PROCESS_CPUTIME_ID`), which moves less
//!   with the other processes' load, and the 1-minute load average before and after.
//!
//! `-- real_gguf` runs only the last part (`--quick` shortens the first two).

mod common;

use datasets::quantize::{fuse_experts, write_quantized, Scheme};
use datasets::synth::{build, Family, Spec};
use provsearch_formats::gguf::writer::quantize;
use provsearch_formats::gguf::{dequantize, GgmlType};
use provsearch_formats::safetensors::SafetensorsFile;
use provsearch_ingest::weights::quantized;
use provsearch_ingest::{fingerprint, FingerprintOptions};
use serde_json::{json, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Repeat `f` for at least `min` and `min_runs` runs; the best time of one run.
fn best_of(min: Duration, min_runs: usize, mut f: impl FnMut()) -> f64 {
    let (start, mut runs, mut best) = (Instant::now(), 0, f64::MAX);
    while runs < min_runs || start.elapsed() < min {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

fn gguf_kernels(min: Duration) -> Vec<Value> {
    const ELEMENTS: usize = 1 << 22;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let values: Vec<f32> = (0..ELEMENTS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect();
    let mut out = vec![0f32; ELEMENTS];
    let mut rows = Vec::new();
    for ty in GgmlType::ALL {
        let Ok(blocks) = quantize(ty, &values) else {
            continue;
        };
        let secs = best_of(min, 3, || {
            dequantize(ty, std::hint::black_box(&blocks), &mut out).expect("dequantize");
            std::hint::black_box(&out);
        });
        rows.push(json!({
            "type": ty.name(),
            "gb_per_s": round(blocks.len() as f64 / secs / 1e9),
            "melem_per_s": round(ELEMENTS as f64 / secs / 1e6),
        }));
    }
    rows
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Seconds to 0.1 ms.
fn seconds(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn safetensors_layouts(dir: &Path, min: Duration) -> Vec<Value> {
    let spec = Spec {
        family: Family::Llama,
        layers: 2,
        hidden: 1024,
        intermediate: 2816,
        heads: 8,
        vocab: 1024,
        seed: 1,
    };
    let ckpt = build(&spec);
    let schemes = [
        (
            "gptq-4bit g128",
            Scheme::Gptq {
                bits: 4,
                group: 128,
                act_order: false,
                g_idx: true,
            },
        ),
        (
            "gptq-4bit g128 act-order",
            Scheme::Gptq {
                bits: 4,
                group: 128,
                act_order: true,
                g_idx: true,
            },
        ),
        (
            "gptq-3bit g128",
            Scheme::Gptq {
                bits: 3,
                group: 128,
                act_order: false,
                g_idx: true,
            },
        ),
        (
            "gptq-8bit g128",
            Scheme::Gptq {
                bits: 8,
                group: 128,
                act_order: false,
                g_idx: true,
            },
        ),
        ("awq-4bit g128", Scheme::Awq { group: 128 }),
        ("bnb-int8", Scheme::Bnb8),
        (
            "bnb-nf4 nested",
            Scheme::Bnb4 {
                fp4: false,
                blocksize: 64,
                nested: true,
            },
        ),
        (
            "bnb-fp4",
            Scheme::Bnb4 {
                fp4: true,
                blocksize: 64,
                nested: false,
            },
        ),
        ("fp8-e4m3 128x128", Scheme::Fp8Block { block: 128 }),
        ("fp8-e4m3 per-tensor", Scheme::Fp8Tensor),
        ("mlx-4bit g64", Scheme::Mlx { bits: 4, group: 64 }),
        ("mlx-3bit g64", Scheme::Mlx { bits: 3, group: 64 }),
        (
            "nvfp4 compressed-tensors",
            Scheme::Nvfp4 { modelopt: false },
        ),
        ("nvfp4 modelopt", Scheme::Nvfp4 { modelopt: true }),
        ("mxfp4 compressed-tensors", Scheme::Mxfp4),
        // Read in full through the transposed view, element by element (the signals read sampled rows only).
        ("mxfp4 gpt-oss experts", Scheme::GptOssMxfp4),
    ];
    // gpt-oss's layout needs the MLP as fused experts.
    let fused = fuse_experts(&ckpt, 2);
    let mut rows = Vec::new();
    let mut buf = vec![0f32; 1 << 20];
    for (i, (label, scheme)) in schemes.into_iter().enumerate() {
        let model = dir.join(format!("q{i}"));
        let source = if scheme == Scheme::GptOssMxfp4 {
            &fused
        } else {
            &ckpt
        };
        write_quantized(source, &model, scheme).expect("write quantized checkpoint");
        let file = model.join("model.safetensors");
        let stored: u64 = SafetensorsFile::open(&file)
            .expect("open")
            .tensors()
            .iter()
            .map(|t| t.len)
            .sum();
        let source = quantized::open(&[file], &model).expect("open quantized");
        // Packed bytes: everything but the tensors left in half precision (MLX packs the embedding too).
        let float_bytes: u64 = source
            .tensors()
            .iter()
            .filter(|m| m.dtype == "F16" || m.dtype == "BF16")
            .map(|m| 2 * m.numel())
            .sum();
        let layer_bytes = stored - float_bytes;
        let decoded: Vec<usize> = (0..source.tensors().len())
            .filter(|&i| {
                let m = &source.tensors()[i];
                m.dtype != "F16" && m.dtype != "BF16" && m.is_weight
            })
            .collect();
        let elements: u64 = decoded.iter().map(|&i| source.tensors()[i].numel()).sum();
        let secs = best_of(min, 3, || {
            for &i in &decoded {
                let n = source.tensors()[i].numel();
                let mut start = 0;
                while start < n {
                    let take = (n - start).min(buf.len() as u64) as usize;
                    source.read_f32(i, start, &mut buf[..take]).expect("read");
                    start += take as u64;
                }
            }
            std::hint::black_box(&buf);
        });
        rows.push(json!({
            "layout": label,
            "quantization": source.quantization(),
            "layer_bytes": layer_bytes,
            "gb_per_s": round(layer_bytes as f64 / secs / 1e9),
            "melem_per_s": round(elements as f64 / secs / 1e6),
        }));
    }
    rows
}

/// CPU time of every thread of this process so far, in ns.
fn process_cpu_ns() -> u64 {
    common::cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn loadavg() -> Value {
    common::loadavg().map_or(Value::Null, Value::from)
}

/// [`best_of`], also giving the least CPU time of the runs (all threads of the process).
fn best_of_cpu(min: Duration, min_runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut cpu = f64::MAX;
    let wall = best_of(min, min_runs, || {
        let start = process_cpu_ns();
        f();
        cpu = cpu.min(process_cpu_ns().saturating_sub(start) as f64 * 1e-9);
    });
    (wall, cpu)
}

fn real_gguf(file: &Path) -> Value {
    let load_before = loadavg();
    let mut buf = vec![0u8; 8 << 20];
    let (min, runs) = (Duration::from_secs(1), 10);
    let (read, read_cpu) = best_of_cpu(min, runs, || {
        let mut f = std::fs::File::open(file).expect("open GGUF");
        while f.read(&mut buf).expect("read") > 0 {}
    });
    let spec = file.to_string_lossy().into_owned();
    let time = |skip_digests: bool| {
        let options = FingerprintOptions {
            skip_digests,
            ..Default::default()
        };
        best_of_cpu(min, runs, || {
            fingerprint(&spec, &options).expect("fingerprint the real GGUF");
        })
    };
    let ((full, full_cpu), (signals, signals_cpu)) = (time(false), time(true));
    json!({
        "file": file.file_name().map(|n| n.to_string_lossy().into_owned()),
        "bytes": std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        "read_seconds": seconds(read),
        "fingerprint_seconds": seconds(full),
        "ratio": round(full / read),
        "signals_only_seconds": seconds(signals),
        "signals_only_ratio": round(signals / read),
        "read_cpu_seconds": seconds(read_cpu),
        "fingerprint_cpu_seconds": seconds(full_cpu),
        "signals_only_cpu_seconds": seconds(signals_cpu),
        "loadavg": [load_before, loadavg()],
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let min = Duration::from_millis(if quick { 50 } else { 500 });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("target/bench-data/quantized");
    std::fs::create_dir_all(&data).expect("bench data directory");
    let models = std::env::var_os("PROVSEARCH_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/test-models"));
    let gguf = models.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let real = || {
        if gguf.exists() {
            real_gguf(&gguf)
        } else {
            json!({"missing": gguf.display().to_string(), "hint": "run scripts/fetch-test-models.sh"})
        }
    };
    let report = if std::env::args().any(|a| a == "real_gguf") {
        json!({ "real_gguf": real() })
    } else {
        json!({
            "gguf": gguf_kernels(min),
            "safetensors": safetensors_layouts(&data, min),
            "real_gguf": real(),
        })
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
}
