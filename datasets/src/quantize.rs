//! Quantized copies of a checkpoint in the on-disk layouts of the real quantization libraries: GPTQ
//! (AutoGPTQ v1), AWQ (AutoAWQ GEMM), bitsandbytes LLM.int8 and NF4/FP4 (with or without nested absmax), FP8
//! (DeepSeek-V3 block scales or a per-tensor scale), MLX affine (mlx-lm), compressed-tensors (llm-compressor)
//! pack-quantized, int-quantized, nvfp4- and mxfp4-pack-quantized, NVIDIA ModelOpt NVFP4, and gpt-oss's MXFP4
//! experts ([`fuse_experts`] makes the float model those start from). Round-to-nearest quantizers, not the
//! libraries' searches:
//! the layouts, names, dtypes and the `quantization_config` are what matter to a reader.
//!
//! The layer matrices (2-D tensors inside `layers.N` / `h.N` / `layer.N`) are quantized; everything else is
//! written in F16 (GPTQ, AWQ, bitsandbytes, MLX) or BF16 (FP8), as those libraries save it. MLX also quantizes
//! the embeddings and the head: every 2-D weight whose rows divide into whole groups (mlx-lm's predicate).

use crate::checkpoint::{Checkpoint, Tensor};
use crate::rng::Rng;
use anyhow::{bail, Context, Result};
use half::{bf16, f16};
use safetensors::tensor::{Dtype, TensorView};
use serde_json::{json, Value};
use std::path::Path;

mod micro;
pub use micro::fuse_experts;

/// A quantization scheme and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// AutoGPTQ, `checkpoint_format` "gptq" (v1: zero points stored minus one).
    Gptq {
        /// 2, 3, 4 or 8.
        bits: u32,
        /// Inputs per group.
        group: usize,
        /// Act-order: groups formed in a shuffled input order, recorded in `g_idx`.
        act_order: bool,
        /// Write `g_idx` (AutoGPTQ always does; dropping it makes an unreadable act-order checkpoint).
        g_idx: bool,
    },
    /// AutoAWQ GEMM, 4-bit with zero points.
    Awq {
        /// Inputs per group.
        group: usize,
    },
    /// bitsandbytes LLM.int8 (`weight` int8 + `SCB`).
    Bnb8,
    /// bitsandbytes 4-bit.
    Bnb4 {
        /// FP4 instead of NF4.
        fp4: bool,
        /// Values per absmax block.
        blocksize: usize,
        /// Double quantization of the absmax values.
        nested: bool,
    },
    /// FP8 E4M3 with `weight_scale_inv` per `block`×`block` tile (DeepSeek-V3, Qwen3-FP8).
    Fp8Block {
        /// Tile side.
        block: usize,
    },
    /// FP8 E4M3 with one `weight_scale` per tensor (compressed-tensors / FBGEMM style).
    Fp8Tensor,
    /// compressed-tensors `pack-quantized` (llm-compressor W4A16 and the like): `weight_packed` int32 rows of
    /// `bits`-bit codes stored plus `2^(bits−1)`, `weight_scale` per group, `weight_shape` (int64), and for
    /// asymmetric schemes `weight_zero_point` packed down the rows.
    CtPacked {
        /// 4 or 8.
        bits: u32,
        /// Inputs per group.
        group: usize,
        /// Symmetric (no zero points).
        symmetric: bool,
    },
    /// compressed-tensors `int-quantized` (W8A8 / W8A16): `weight` int8 with a per-channel `weight_scale`.
    CtInt8,
    /// MLX affine (`mx.quantize`): uint32 rows of `bits`-bit codes with F16 `scales` and `biases` per group.
    Mlx {
        /// 2, 3, 4, 5, 6 or 8.
        bits: u32,
        /// Inputs per group.
        group: usize,
    },
    /// NVFP4: E2M1 codes two per byte with E4M3 scales per 16 and a tensor scale, as NVIDIA ModelOpt
    /// (`weight`, `weight_scale_2`) or compressed-tensors `nvfp4-pack-quantized` (`weight_packed`,
    /// `weight_global_scale`) writes it.
    Nvfp4 {
        /// ModelOpt's names rather than compressed-tensors'.
        modelopt: bool,
    },
    /// compressed-tensors `mxfp4-pack-quantized`: E2M1 codes with E8M0 scales per 32.
    Mxfp4,
    /// gpt-oss: the fused expert tensors (see [`fuse_experts`]) as MXFP4 `_blocks` and `_scales`.
    GptOssMxfp4,
}

/// bitsandbytes' NF4 code (`get_4bit_type("nf4")`).
pub const NF4: [f32; 16] = [
    -1.0,
    -0.696_192_8,
    -0.525_073_05,
    -0.394_917_5,
    -0.284_441_38,
    -0.184_773_43,
    -0.091_050_036,
    0.0,
    0.079_580_3,
    0.160_930_2,
    0.246_112_3,
    0.337_915_24,
    0.440_709_83,
    0.562_617,
    0.722_956_84,
    1.0,
];

/// bitsandbytes' FP4 code (`get_4bit_type("fp4")`: e2m1 values over their maximum 12).
pub fn fp4_code() -> [f32; 16] {
    let v = [
        0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0,
        -3.0,
    ];
    v.map(|x: f32| x / 12.0)
}

/// bitsandbytes' signed dynamic 8-bit map (`create_dynamic_map(signed=True)`), used for nested absmax.
pub fn dynamic_map() -> [f32; 256] {
    let mut data: Vec<f32> = Vec::with_capacity(256);
    for i in 0..7i32 {
        let items = (1usize << i) + 1;
        let step = 0.9 / (items - 1) as f64;
        let bounds: Vec<f64> = (0..items).map(|j| 0.1 + step * j as f64).collect();
        for w in bounds.windows(2) {
            let mean = (w[0] + w[1]) / 2.0;
            let v = 10f64.powi(i - 6) * mean;
            data.push(v as f32);
            data.push(-v as f32);
        }
    }
    data.push(0.0);
    data.push(1.0);
    data.sort_by(|a, b| a.total_cmp(b));
    let mut out = [0f32; 256];
    out.copy_from_slice(&data);
    out
}

/// The largest absolute value (0 for none).
fn abs_max(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Nearest entry of `code` to `x`.
fn nearest(code: &[f32], x: f32) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, &c) in code.iter().enumerate() {
        let d = (c - x).abs();
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// The value of a non-negative E4M3 byte (0..=0x7E).
fn f8_e4m3_value(b: u8) -> f32 {
    let (e, m) = ((b >> 3) as i32, (b & 7) as f32);
    if e == 0 {
        m / 8.0 * 2f32.powi(-6)
    } else {
        (1.0 + m / 8.0) * 2f32.powi(e - 7)
    }
}

/// The E4M3 (finite-only, `float8_e4m3fn`) byte nearest to `x` (saturating at ±448).
pub fn f8_e4m3(x: f32) -> u8 {
    let sign = if x.is_sign_negative() { 0x80 } else { 0 };
    let a = x.abs().min(448.0);
    let value = f8_e4m3_value;
    // Codes 0..=0x7E are the non-negative finite values, in increasing order.
    let (mut lo, mut hi) = (0u8, 0x7Eu8);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if value(mid) <= a {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let best = if (a - value(lo)).abs() <= (value(hi) - a).abs() {
        lo
    } else {
        hi
    };
    sign | best
}

/// Whether a tensor is a layer matrix that the libraries quantize.
pub fn is_quantized_layer(t: &Tensor) -> bool {
    t.is_float()
        && t.shape.len() == 2
        && t.name.ends_with(".weight")
        && [".layers.", ".h.", ".layer."]
            .iter()
            .any(|p| t.name.contains(p))
}

/// An encoded tensor: name, dtype, shape, little-endian bytes.
type Encoded = (String, Dtype, Vec<usize>, Vec<u8>);

fn i32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f16s(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| f16::from_f32(*x).to_le_bytes())
        .collect()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Pack `values` (each below 2^bits) as one little-endian bit stream: value `i` at bit `bits·i`.
fn bitstream(values: impl Iterator<Item = u32>, bits: u32, words: usize) -> Vec<u32> {
    let mut out = vec![0u32; words];
    for (i, v) in values.enumerate() {
        let bit = i * bits as usize;
        let (w, s) = (bit / 32, (bit % 32) as u32);
        out[w] |= v << s;
        if s + bits > 32 {
            out[w + 1] |= v >> (32 - s);
        }
    }
    out
}

/// AutoGPTQ's `pack` for one `[out, in]` weight: qweight, qzeros (minus one), scales, g_idx.
fn gptq(t: &Tensor, bits: u32, group: usize, act_order: bool, seed: u64) -> Vec<Encoded> {
    let (out, input) = (t.shape[0], t.shape[1]);
    let maxq = (1u32 << bits) - 1;
    // Act-order permutes the inputs before grouping; g_idx[k] is the group of input k.
    let perm: Vec<usize> = if act_order {
        Rng::new(seed).permutation(input)
    } else {
        (0..input).collect()
    };
    let mut g_idx = vec![0u32; input];
    for (pos, &k) in perm.iter().enumerate() {
        g_idx[k] = (pos / group) as u32;
    }
    let groups = input.div_ceil(group);
    let (mut scales, mut zeros) = (vec![0f32; groups * out], vec![0u32; groups * out]);
    let mut codes = vec![0u32; out * input];
    for n in 0..out {
        let row = &t.data[n * input..(n + 1) * input];
        for g in 0..groups {
            let members = &perm[g * group..((g + 1) * group).min(input)];
            // GPTQ's Quantizer.find_params: the range always includes 0.
            let lo = members.iter().map(|&k| row[k]).fold(0f32, f32::min);
            let hi = members.iter().map(|&k| row[k]).fold(0f32, f32::max);
            let (lo, hi) = if lo == hi { (-1.0, 1.0) } else { (lo, hi) };
            let scale = f16::from_f32((hi - lo) / maxq as f32).to_f32();
            let zero = (-lo / scale).round().clamp(0.0, maxq as f32) as u32;
            scales[g * out + n] = scale;
            zeros[g * out + n] = zero;
            for &k in members {
                let q = (row[k] / scale).round() + zero as f32;
                codes[n * input + k] = q.clamp(0.0, maxq as f32) as u32;
            }
        }
    }
    // qweight [in·bits/32, out]: column n is the bit stream of its codes down the inputs.
    let rows = input * bits as usize / 32;
    let mut qweight = vec![0u32; rows * out];
    for n in 0..out {
        let column = bitstream((0..input).map(|k| codes[n * input + k]), bits, rows);
        for (r, w) in column.into_iter().enumerate() {
            qweight[r * out + n] = w;
        }
    }
    // qzeros [groups, out·bits/32], zero points minus one (wrapping, as `zeros -= 1` on uint32 does).
    let z_cols = out * bits as usize / 32;
    let mut qzeros = Vec::with_capacity(groups * z_cols);
    for g in 0..groups {
        let stored = (0..out).map(|n| zeros[g * out + n].wrapping_sub(1) & maxq);
        qzeros.extend(bitstream(stored, bits, z_cols));
    }
    let prefix = t.name.trim_end_matches(".weight");
    vec![
        (
            format!("{prefix}.qweight"),
            Dtype::I32,
            vec![rows, out],
            i32s(&qweight),
        ),
        (
            format!("{prefix}.qzeros"),
            Dtype::I32,
            vec![groups, z_cols],
            i32s(&qzeros),
        ),
        (
            format!("{prefix}.scales"),
            Dtype::F16,
            vec![groups, out],
            f16s(&scales),
        ),
        (
            format!("{prefix}.g_idx"),
            Dtype::I32,
            vec![input],
            i32s(&g_idx),
        ),
    ]
}

/// AutoAWQ GEMM packing: `[in, out/8]` words, nibble `i` holding column `ORDER[i]`.
fn awq(t: &Tensor, group: usize) -> Vec<Encoded> {
    const ORDER: [usize; 8] = [0, 2, 4, 6, 1, 3, 5, 7];
    let (out, input) = (t.shape[0], t.shape[1]);
    let groups = input.div_ceil(group);
    let (mut scales, mut zeros) = (vec![0f32; groups * out], vec![0u32; groups * out]);
    let mut codes = vec![0u32; input * out]; // [in, out]
    for n in 0..out {
        let row = &t.data[n * input..(n + 1) * input];
        for g in 0..groups {
            let span = g * group..((g + 1) * group).min(input);
            let lo = row[span.clone()].iter().copied().fold(f32::MAX, f32::min);
            let hi = row[span.clone()].iter().copied().fold(f32::MIN, f32::max);
            let scale = f16::from_f32(((hi - lo).max(1e-5)) / 15.0).to_f32();
            let zero = (-(lo / scale).round()).clamp(0.0, 15.0) as u32;
            scales[g * out + n] = scale;
            zeros[g * out + n] = zero;
            for k in span {
                codes[k * out + n] =
                    ((row[k] / scale).round() + zero as f32).clamp(0.0, 15.0) as u32;
            }
        }
    }
    let pack = |m: &[u32], rows: usize| -> Vec<u32> {
        let mut words = vec![0u32; rows * out / 8];
        for r in 0..rows {
            for c in 0..out / 8 {
                for (i, &j) in ORDER.iter().enumerate() {
                    words[r * out / 8 + c] |= m[r * out + c * 8 + j] << (4 * i);
                }
            }
        }
        words
    };
    let prefix = t.name.trim_end_matches(".weight");
    vec![
        (
            format!("{prefix}.qweight"),
            Dtype::I32,
            vec![input, out / 8],
            i32s(&pack(&codes, input)),
        ),
        (
            format!("{prefix}.qzeros"),
            Dtype::I32,
            vec![groups, out / 8],
            i32s(&pack(&zeros, groups)),
        ),
        (
            format!("{prefix}.scales"),
            Dtype::F16,
            vec![groups, out],
            f16s(&scales),
        ),
    ]
}

/// LLM.int8: int8 rows with their absolute maxima `SCB`, and the `weight_format` byte ("row" = 0).
fn bnb8(t: &Tensor) -> Vec<Encoded> {
    let (out, input) = (t.shape[0], t.shape[1]);
    let mut scb = vec![0f32; out];
    let mut q = vec![0u8; out * input];
    for n in 0..out {
        let row = &t.data[n * input..(n + 1) * input];
        let max = abs_max(row).max(1e-12);
        scb[n] = max;
        for (k, v) in row.iter().enumerate() {
            q[n * input + k] = ((v * 127.0 / max).round().clamp(-127.0, 127.0) as i8) as u8;
        }
    }
    vec![
        (t.name.clone(), Dtype::I8, vec![out, input], q),
        (
            t.name.replace(".weight", ".SCB"),
            Dtype::F32,
            vec![out],
            f32s(&scb),
        ),
        (
            t.name.replace(".weight", ".weight_format"),
            Dtype::U8,
            vec![],
            vec![0],
        ),
    ]
}

/// bitsandbytes `quantize_4bit` and `QuantState.as_dict(packed=True)`.
fn bnb4(t: &Tensor, fp4: bool, blocksize: usize, nested: bool) -> Vec<Encoded> {
    let code = if fp4 { fp4_code() } else { NF4 };
    let n = t.data.len();
    let absmax: Vec<f32> = t
        .data
        .chunks(blocksize)
        .map(|b| abs_max(b).max(1e-12))
        .collect();
    let mut packed = vec![0u8; n.div_ceil(2)];
    for (i, v) in t.data.iter().enumerate() {
        let c = nearest(&code, v / absmax[i / blocksize]) as u8;
        packed[i / 2] |= if i % 2 == 0 { c << 4 } else { c };
    }
    let name = &t.name;
    let kind = if fp4 { "fp4" } else { "nf4" };
    let mut state =
        json!({"quant_type": kind, "blocksize": blocksize, "dtype": "float16", "shape": t.shape});
    let mut out = vec![(name.clone(), Dtype::U8, vec![n.div_ceil(2), 1], packed)];
    if nested {
        // Double quantization: absmax minus its mean, blockwise 8-bit with the dynamic map.
        const NESTED: usize = 256;
        let offset = absmax.iter().sum::<f32>() / absmax.len() as f32;
        let centred: Vec<f32> = absmax.iter().map(|a| a - offset).collect();
        let map = dynamic_map();
        let maxima: Vec<f32> = centred
            .chunks(NESTED)
            .map(|b| abs_max(b).max(1e-12))
            .collect();
        let codes: Vec<u8> = centred
            .iter()
            .enumerate()
            .map(|(i, a)| nearest(&map, a / maxima[i / NESTED]) as u8)
            .collect();
        state["nested_blocksize"] = json!(NESTED);
        state["nested_dtype"] = json!("float32");
        state["nested_offset"] = json!(offset);
        out.push((
            format!("{name}.absmax"),
            Dtype::U8,
            vec![codes.len()],
            codes,
        ));
        out.push((
            format!("{name}.nested_absmax"),
            Dtype::F32,
            vec![maxima.len()],
            f32s(&maxima),
        ));
        out.push((
            format!("{name}.nested_quant_map"),
            Dtype::F32,
            vec![256],
            f32s(&map),
        ));
    } else {
        out.push((
            format!("{name}.absmax"),
            Dtype::F32,
            vec![absmax.len()],
            f32s(&absmax),
        ));
    }
    out.push((
        format!("{name}.quant_map"),
        Dtype::F32,
        vec![16],
        f32s(&code),
    ));
    let blob = serde_json::to_vec(&state).unwrap_or_default();
    out.push((
        format!("{name}.quant_state.bitsandbytes__{kind}"),
        Dtype::U8,
        vec![blob.len()],
        blob,
    ));
    out
}

/// FP8 E4M3 with one `weight_scale_inv` per `block`×`block` tile (`W ≈ fp8 · scale_inv`).
fn fp8_block(t: &Tensor, block: usize) -> Vec<Encoded> {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let (br, bc) = (rows.div_ceil(block), cols.div_ceil(block));
    let mut scale = vec![0f32; br * bc];
    for r in 0..rows {
        for c in 0..cols {
            let s = &mut scale[(r / block) * bc + c / block];
            *s = s.max(t.data[r * cols + c].abs() / 448.0);
        }
    }
    scale.iter_mut().for_each(|s| *s = s.max(1e-12));
    let q: Vec<u8> = (0..rows * cols)
        .map(|i| f8_e4m3(t.data[i] / scale[(i / cols / block) * bc + (i % cols) / block]))
        .collect();
    vec![
        (t.name.clone(), Dtype::F8_E4M3, vec![rows, cols], q),
        (
            t.name.replace(".weight", ".weight_scale_inv"),
            Dtype::F32,
            vec![br, bc],
            f32s(&scale),
        ),
    ]
}

/// MLX affine: per row and group of `group` inputs, `scale = (max − min) / (2^bits − 1)` and `bias = min` (both
/// stored as F16), codes `round((w − bias) / scale)`, each row packed as one little-endian bit stream.
fn mlx(t: &Tensor, bits: u32, group: usize) -> Vec<Encoded> {
    let (out, input) = (t.shape[0], t.shape[1]);
    let (groups, words) = (input / group, input * bits as usize / 32);
    let maxq = ((1u32 << bits) - 1) as f32;
    let (mut scales, mut biases) = (vec![0f32; out * groups], vec![0f32; out * groups]);
    let mut packed = Vec::with_capacity(out * words);
    for n in 0..out {
        let row = &t.data[n * input..(n + 1) * input];
        let mut codes = Vec::with_capacity(input);
        for g in 0..groups {
            let span = &row[g * group..(g + 1) * group];
            let lo = span.iter().copied().fold(f32::MAX, f32::min);
            let hi = span.iter().copied().fold(f32::MIN, f32::max);
            let scale = f16::from_f32(((hi - lo) / maxq).max(1e-6)).to_f32();
            let bias = f16::from_f32(lo).to_f32();
            scales[n * groups + g] = scale;
            biases[n * groups + g] = bias;
            codes.extend(
                span.iter()
                    .map(|w| ((w - bias) / scale).round().clamp(0.0, maxq) as u32),
            );
        }
        packed.extend(bitstream(codes.into_iter(), bits, words));
    }
    let prefix = t.name.trim_end_matches(".weight");
    vec![
        (t.name.clone(), Dtype::U32, vec![out, words], i32s(&packed)),
        (
            format!("{prefix}.scales"),
            Dtype::F16,
            vec![out, groups],
            f16s(&scales),
        ),
        (
            format!("{prefix}.biases"),
            Dtype::F16,
            vec![out, groups],
            f16s(&biases),
        ),
    ]
}

/// compressed-tensors pack-quantized: signed codes in `[−2^(b−1), 2^(b−1) − 1]` per group, `W = (q − z) · s`.
fn ct_packed(t: &Tensor, bits: u32, group: usize, symmetric: bool) -> Vec<Encoded> {
    let (out, input) = (t.shape[0], t.shape[1]);
    let groups = input.div_ceil(group);
    let (lo_q, hi_q) = (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1);
    let offset = 1u32 << (bits - 1);
    let per = (32 / bits) as usize;
    let row_words = input.div_ceil(per);
    let (mut scales, mut zeros) = (vec![0f32; out * groups], vec![0i32; out * groups]);
    let mut words = Vec::with_capacity(out * row_words);
    for n in 0..out {
        let row = &t.data[n * input..(n + 1) * input];
        let mut codes = Vec::with_capacity(input);
        for g in 0..groups {
            let span = g * group..((g + 1) * group).min(input);
            let lo = row[span.clone()].iter().copied().fold(0f32, f32::min);
            let hi = row[span.clone()].iter().copied().fold(0f32, f32::max);
            let (scale, zero) = if symmetric {
                (
                    f16::from_f32((hi.max(-lo) / hi_q as f32).max(1e-6)).to_f32(),
                    0,
                )
            } else {
                let scale = f16::from_f32(((hi - lo) / (hi_q - lo_q) as f32).max(1e-6)).to_f32();
                (
                    scale,
                    (lo_q - (lo / scale).round() as i32).clamp(lo_q, hi_q),
                )
            };
            scales[n * groups + g] = scale;
            zeros[n * groups + g] = zero;
            codes.extend(row[span].iter().map(|w| {
                let q = ((w / scale).round() as i32 + zero).clamp(lo_q, hi_q);
                (q + offset as i32) as u32
            }));
        }
        // `pack_to_int32`: code `k` at bit `bits·(k mod 32/bits)` of word `k/(32/bits)`, the row's bit stream.
        words.extend(bitstream(codes.into_iter(), bits, row_words));
    }
    let prefix = t.name.trim_end_matches(".weight");
    let mut parts = vec![
        (
            format!("{prefix}.weight_packed"),
            Dtype::I32,
            vec![out, row_words],
            i32s(&words),
        ),
        (
            format!("{prefix}.weight_scale"),
            Dtype::F16,
            vec![out, groups],
            f16s(&scales),
        ),
        (
            format!("{prefix}.weight_shape"),
            Dtype::I64,
            vec![2],
            [out as i64, input as i64]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
    ];
    if !symmetric {
        // `pack_to_int32(zero_point, bits, packed_dim=0)`: down the rows.
        let mut packed = vec![0u32; out.div_ceil(per) * groups];
        for n in 0..out {
            for g in 0..groups {
                packed[(n / per) * groups + g] |=
                    ((zeros[n * groups + g] + offset as i32) as u32) << (bits as usize * (n % per));
            }
        }
        parts.push((
            format!("{prefix}.weight_zero_point"),
            Dtype::I32,
            vec![out.div_ceil(per), groups],
            i32s(&packed),
        ));
    }
    parts
}

/// compressed-tensors int-quantized: int8 rows scaled by their absolute maximum over 127.
fn ct_int8(t: &Tensor) -> Vec<Encoded> {
    let (out, input) = (t.shape[0], t.shape[1]);
    let mut scales = Vec::with_capacity(out);
    let mut codes = Vec::with_capacity(out * input);
    for row in t.data.chunks_exact(input) {
        let scale = f16::from_f32((abs_max(row) / 127.0).max(1e-8)).to_f32();
        scales.push(scale);
        codes.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-128.0, 127.0) as i8 as u8),
        );
    }
    vec![
        (t.name.clone(), Dtype::I8, vec![out, input], codes),
        (
            t.name.replace(".weight", ".weight_scale"),
            Dtype::F16,
            vec![out, 1],
            f16s(&scales),
        ),
    ]
}

/// FP8 E4M3 with one `weight_scale` for the tensor and a unit `input_scale`.
fn fp8_tensor(t: &Tensor) -> Vec<Encoded> {
    let s = (abs_max(&t.data) / 448.0).max(1e-12);
    let q = t.data.iter().map(|v| f8_e4m3(v / s)).collect();
    vec![
        (t.name.clone(), Dtype::F8_E4M3, t.shape.clone(), q),
        (
            t.name.replace(".weight", ".weight_scale"),
            Dtype::F32,
            vec![1],
            f32s(&[s]),
        ),
        (
            t.name.replace(".weight", ".input_scale"),
            Dtype::F32,
            vec![1],
            f32s(&[1.0]),
        ),
    ]
}

impl Scheme {
    /// The `quantization_config` block transformers writes into config.json.
    pub fn config(&self) -> Value {
        match *self {
            Scheme::Gptq {
                bits,
                group,
                act_order,
                ..
            } => json!({
                "quant_method": "gptq", "bits": bits, "group_size": group, "desc_act": act_order,
                "sym": false, "damp_percent": 0.01, "checkpoint_format": "gptq"
            }),
            Scheme::Awq { group } => json!({
                "quant_method": "awq", "bits": 4, "group_size": group, "zero_point": true, "version": "gemm"
            }),
            Scheme::Bnb8 => {
                json!({"quant_method": "bitsandbytes", "load_in_8bit": true, "load_in_4bit": false})
            }
            Scheme::Bnb4 { fp4, nested, .. } => json!({
                "quant_method": "bitsandbytes", "load_in_4bit": true, "load_in_8bit": false,
                "bnb_4bit_quant_type": if fp4 { "fp4" } else { "nf4" },
                "bnb_4bit_use_double_quant": nested, "bnb_4bit_compute_dtype": "float16"
            }),
            Scheme::Fp8Block { block } => json!({
                "quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                "weight_block_size": [block, block]
            }),
            Scheme::Fp8Tensor => {
                json!({"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "static"})
            }
            Scheme::Mlx { bits, group } => json!({"group_size": group, "bits": bits}),
            Scheme::CtPacked {
                bits,
                group,
                symmetric,
            } => json!({
                "quant_method": "compressed-tensors", "format": "pack-quantized",
                "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                    "num_bits": bits, "type": "int", "symmetric": symmetric, "strategy": "group",
                    "group_size": group}}},
                "ignore": ["lm_head"]
            }),
            Scheme::CtInt8 => json!({
                "quant_method": "compressed-tensors", "format": "int-quantized",
                "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                    "num_bits": 8, "type": "int", "symmetric": true, "strategy": "channel"}}},
                "ignore": ["lm_head"]
            }),
            Scheme::Nvfp4 { modelopt: true } => json!({
                "quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16,
                "exclude_modules": ["lm_head"]
            }),
            Scheme::Nvfp4 { modelopt: false } => json!({
                "quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized",
                "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                    "num_bits": 4, "type": "float", "symmetric": true, "strategy": "tensor_group",
                    "group_size": 16}}},
                "ignore": ["lm_head"]
            }),
            Scheme::Mxfp4 => json!({
                "quant_method": "compressed-tensors", "format": "mxfp4-pack-quantized",
                "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
                    "num_bits": 4, "type": "float", "symmetric": true, "strategy": "group",
                    "group_size": 32, "scale_dtype": "torch.uint8"}}},
                "ignore": ["lm_head"]
            }),
            Scheme::GptOssMxfp4 => json!({
                "quant_method": "mxfp4",
                "modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                    "model.embed_tokens", "lm_head"]
            }),
        }
    }

    /// The config.json keys the declaration goes under: mlx-lm writes `quantization` and a copy as
    /// `quantization_config`; the others only `quantization_config`.
    fn config_keys(&self) -> &'static [&'static str] {
        match self {
            Scheme::Mlx { .. } => &["quantization", "quantization_config"],
            _ => &["quantization_config"],
        }
    }

    /// Whether the scheme quantizes this tensor.
    fn quantizes(&self, t: &Tensor) -> bool {
        match *self {
            Scheme::Mlx { group, .. } => {
                t.is_float()
                    && t.shape.len() == 2
                    && t.name.ends_with(".weight")
                    && t.shape[1].is_multiple_of(group)
            }
            Scheme::GptOssMxfp4 => micro::is_fused_experts(t) && t.shape[1].is_multiple_of(32),
            _ => is_quantized_layer(t),
        }
    }

    fn quantize(&self, t: &Tensor, seed: u64) -> Vec<Encoded> {
        match *self {
            Scheme::Gptq {
                bits,
                group,
                act_order,
                g_idx,
            } => {
                let mut parts = gptq(t, bits, group, act_order, seed);
                if !g_idx {
                    parts.retain(|p| !p.0.ends_with(".g_idx"));
                }
                parts
            }
            Scheme::Awq { group } => awq(t, group),
            Scheme::Bnb8 => bnb8(t),
            Scheme::Bnb4 {
                fp4,
                blocksize,
                nested,
            } => bnb4(t, fp4, blocksize, nested),
            Scheme::Fp8Block { block } => fp8_block(t, block),
            Scheme::Fp8Tensor => fp8_tensor(t),
            Scheme::Mlx { bits, group } => mlx(t, bits, group),
            Scheme::CtPacked {
                bits,
                group,
                symmetric,
            } => ct_packed(t, bits, group, symmetric),
            Scheme::CtInt8 => ct_int8(t),
            Scheme::Nvfp4 { modelopt } => micro::nvfp4(t, modelopt),
            Scheme::Mxfp4 => micro::mxfp4_packed(t),
            Scheme::GptOssMxfp4 => micro::gpt_oss(t),
        }
    }
}

/// Write `ckpt` quantized with `scheme` as a snapshot in `dir`: `model.safetensors` plus the checkpoint's other
/// files, with `quantization_config` added to config.json.
pub fn write_quantized(ckpt: &Checkpoint, dir: &Path, scheme: Scheme) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in &ckpt.files {
        let bytes = if name == "config.json" {
            let mut config: Value = serde_json::from_slice(bytes).context("config.json")?;
            for key in scheme.config_keys() {
                config[*key] = scheme.config();
            }
            serde_json::to_vec_pretty(&config)?
        } else {
            bytes.clone()
        };
        std::fs::write(dir.join(name), bytes)?;
    }
    let rest = if matches!(
        scheme,
        Scheme::Fp8Block { .. } | Scheme::Fp8Tensor | Scheme::GptOssMxfp4
    ) {
        |t: &Tensor| -> Encoded {
            let b = t
                .data
                .iter()
                .flat_map(|x| bf16::from_f32(*x).to_le_bytes())
                .collect();
            (t.name.clone(), Dtype::BF16, t.shape.clone(), b)
        }
    } else {
        |t: &Tensor| -> Encoded { (t.name.clone(), Dtype::F16, t.shape.clone(), f16s(&t.data)) }
    };
    let mut encoded: Vec<Encoded> = Vec::new();
    for (i, t) in ckpt.tensors.iter().enumerate() {
        if let Some(ints) = &t.int64 {
            let b = ints.iter().flat_map(|v| v.to_le_bytes()).collect();
            encoded.push((t.name.clone(), Dtype::I64, t.shape.clone(), b));
        } else if scheme.quantizes(t) {
            if t.data.len() != t.shape.iter().product::<usize>() {
                bail!(
                    "tensor {} has {} values for shape {:?}",
                    t.name,
                    t.data.len(),
                    t.shape
                );
            }
            encoded.extend(scheme.quantize(t, 1000 + i as u64));
        } else {
            encoded.push(rest(t));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    safetensors::serialize_to_file(views, None, &dir.join("model.safetensors"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_libraries() {
        let map = dynamic_map();
        assert!((map[0] + 0.992_968_75).abs() < 1e-6 && map[255] == 1.0);
        assert_eq!(map.iter().filter(|v| **v == 0.0).count(), 1);
        assert!(map.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(fp4_code()[3], 1.0);
        assert_eq!(f8_e4m3(1.0), 0x38);
        assert_eq!(f8_e4m3(-2.0), 0xC0);
        assert_eq!(f8_e4m3(1e6), 0x7E);
        assert_eq!(f8_e4m3(0.0), 0);
    }

    #[test]
    fn awq_packs_in_its_interleaved_order() {
        // Row n is [-n, 15 - n]: scale 1 and zero point n, so the zero-point word spells the packing order.
        let data = (0..8)
            .flat_map(|n| [-(n as f32), 15.0 - n as f32])
            .collect();
        let t = Tensor::new("model.layers.0.mlp.up_proj.weight", vec![8, 2], data);
        let parts = awq(&t, 2);
        let word = u32::from_le_bytes(parts[1].3[..4].try_into().unwrap());
        let nibbles: Vec<u32> = (0..8).map(|i| (word >> (4 * i)) & 15).collect();
        assert_eq!(nibbles, [0, 2, 4, 6, 1, 3, 5, 7]);
    }

    #[test]
    fn gptq_three_bit_values_straddle_words() {
        // 32 inputs at 3 bits fill three words; value 10 spans words 0 and 1.
        let codes: Vec<u32> = (0..32).map(|i| i % 8).collect();
        let words = bitstream(codes.iter().copied(), 3, 3);
        assert_eq!(words[0] >> 30 | (words[1] & 1) << 2, codes[10]);
        assert_eq!((words[1] >> 1) & 7, codes[11]);
    }
}
