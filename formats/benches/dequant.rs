//! Dequantization throughput per ggml type: prints one JSON line per type with GB/s of quantized input and
//! millions of output elements per second.
//!
//! Run with `cargo bench -p provsearch-formats --bench dequant` (optionally `-- Q4_K Q6_K` to pick types).

use provsearch_formats::gguf::writer::quantize;
use provsearch_formats::gguf::{dequantize, GgmlType};
use std::time::{Duration, Instant};

/// Elements per timed call: 4 Mi f32 of output (16 MiB), larger than the L2 cache.
const ELEMENTS: usize = 1 << 22;

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
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
    for ty in GgmlType::ALL {
        if !wanted.is_empty() && !wanted.iter().any(|w| w.eq_ignore_ascii_case(ty.name())) {
            continue;
        }
        let Ok(blocks) = quantize(ty, &values) else {
            continue;
        };
        // Warm up, then repeat until at least half a second has passed.
        dequantize(ty, &blocks, &mut out).expect("dequantize");
        let (mut runs, start) = (0u32, Instant::now());
        while start.elapsed() < Duration::from_millis(500) {
            dequantize(ty, std::hint::black_box(&blocks), &mut out).expect("dequantize");
            std::hint::black_box(&out);
            runs += 1;
        }
        let secs = start.elapsed().as_secs_f64() / f64::from(runs);
        println!(
            "{{\"type\":\"{}\",\"bytes\":{},\"elements\":{},\"gb_per_s\":{:.3},\"melem_per_s\":{:.1}}}",
            ty.name(),
            blocks.len(),
            ELEMENTS,
            blocks.len() as f64 / secs / 1e9,
            ELEMENTS as f64 / secs / 1e6
        );
    }
}
