//! Writing GGUF v3 files with simple round-to-nearest quantizers: fixtures for tests of the GGUF readers
//! (enabled by the `gguf-writer` feature).
//!
//! The quantizers produce valid blocks of each layout, not llama.cpp's error-minimising searches: their
//! error is about half a quantization step, which is what a round-trip test needs to bound.

use super::{GgmlType, GgufValue, DEFAULT_ALIGNMENT, MAGIC};
use half::{bf16, f16};
use std::fmt;
use std::path::Path;

/// Why a tensor could not be quantized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuantizeError {
    /// No quantizer for this type.
    Unsupported(GgmlType),
    /// The value count is not a multiple of the block size, or does not match the shape.
    Length {
        /// Type asked for.
        ty: GgmlType,
        /// Values given.
        values: usize,
    },
}

impl fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantizeError::Unsupported(ty) => write!(f, "no quantizer for {ty}"),
            QuantizeError::Length { ty, values } => {
                write!(
                    f,
                    "{values} values do not fit whole {ty} blocks of {} or the shape",
                    ty.block_size()
                )
            }
        }
    }
}

impl std::error::Error for QuantizeError {}

#[derive(Clone)]
struct PendingTensor {
    name: String,
    ty: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

/// Builds a GGUF v3 file in memory.
pub struct GgufWriter {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<PendingTensor>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter::new()
    }
}

impl GgufWriter {
    /// An empty file with the default alignment (32).
    pub fn new() -> Self {
        GgufWriter {
            metadata: Vec::new(),
            tensors: Vec::new(),
            alignment: DEFAULT_ALIGNMENT,
        }
    }

    /// Use another data alignment (a power of two), recorded as `general.alignment`.
    pub fn with_alignment(mut self, alignment: u32) -> Self {
        self.alignment = alignment.into();
        self.metadata.retain(|(k, _)| k != "general.alignment");
        self.metadata
            .push(("general.alignment".into(), GgufValue::U32(alignment)));
        self
    }

    /// Add a metadata key (replacing an earlier value of the same key).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: GgufValue) -> &mut Self {
        let key = key.into();
        self.metadata.retain(|(k, _)| *k != key);
        self.metadata.push((key, value));
        self
    }

    /// Add a string metadata key.
    pub fn add_string(&mut self, key: impl Into<String>, value: &str) -> &mut Self {
        self.add_metadata(key, GgufValue::String(value.into()))
    }

    /// Add a `u32` metadata key.
    pub fn add_u32(&mut self, key: impl Into<String>, value: u32) -> &mut Self {
        self.add_metadata(key, GgufValue::U32(value))
    }

    /// Add an `f32` metadata key.
    pub fn add_f32(&mut self, key: impl Into<String>, value: f32) -> &mut Self {
        self.add_metadata(key, GgufValue::F32(value))
    }

    /// Add a string-array metadata key.
    pub fn add_strings<S: AsRef<str>>(
        &mut self,
        key: impl Into<String>,
        values: &[S],
    ) -> &mut Self {
        let a = values.iter().map(|s| s.as_ref()).collect();
        self.add_metadata(key, GgufValue::StringArray(Box::new(a)))
    }

    /// Add a tensor whose bytes are already encoded; `dims` in GGUF `ne` order (row length first).
    pub fn add_raw_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        dims: &[u64],
        data: Vec<u8>,
    ) -> &mut Self {
        self.tensors.push(PendingTensor {
            name: name.into(),
            ty,
            dims: dims.to_vec(),
            data,
        });
        self
    }

    /// Quantize `values` (row-major, logical `shape` as in a Hugging Face checkpoint) to `ty` and add them.
    /// The caller applies any row permutation first (see [`llama_permute`]).
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        shape: &[u64],
        values: &[f32],
    ) -> Result<&mut Self, QuantizeError> {
        if shape.iter().product::<u64>() != values.len() as u64 {
            return Err(QuantizeError::Length {
                ty,
                values: values.len(),
            });
        }
        let row = shape.last().copied().unwrap_or(1);
        if row % ty.block_size() as u64 != 0 {
            return Err(QuantizeError::Length {
                ty,
                values: values.len(),
            });
        }
        let data = quantize(ty, values)?;
        let dims: Vec<u64> = shape.iter().rev().copied().collect();
        Ok(self.add_raw_tensor(name, ty, &dims, data))
    }

    /// The complete file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let align = |n: u64| n.div_ceil(self.alignment) * self.alignment;
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_string(&mut out, k);
            out.extend_from_slice(&type_id(v).to_le_bytes());
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = align(offset + t.data.len() as u64);
        }
        out.resize(align(out.len() as u64) as usize, 0);
        for t in &self.tensors {
            out.extend_from_slice(&t.data);
            out.resize(align(out.len() as u64) as usize, 0);
        }
        out
    }

    /// Write the file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_bytes())
    }

    /// Split the file the way llama.cpp's `gguf-split --split-max-tensors N` does: the tensors in order, at
    /// most `max_tensors` per part (at least 1). The first part holds all metadata; every part also gets
    /// `split.no` (u16, from 0), `split.count` (u16) and `split.tensors.count` (i32, all tensors). With
    /// `metadata_only_first` (`--no-tensor-first-split`) the first part holds no tensors. Write part `i` to
    /// [`super::split::part_file_name`]`(prefix, i + 1, parts)`.
    pub fn split(&self, max_tensors: usize, metadata_only_first: bool) -> Vec<GgufWriter> {
        let chunks: Vec<&[PendingTensor]> = self.tensors.chunks(max_tensors.max(1)).collect();
        let mut groups: Vec<&[PendingTensor]> = Vec::with_capacity(chunks.len() + 1);
        if metadata_only_first || chunks.is_empty() {
            groups.push(&[]);
        }
        groups.extend(chunks);
        let count = groups.len() as u16;
        let total = self.tensors.len() as i32;
        groups
            .into_iter()
            .enumerate()
            .map(|(i, tensors)| {
                let mut part = if i == 0 {
                    GgufWriter {
                        metadata: self.metadata.clone(),
                        tensors: Vec::new(),
                        alignment: self.alignment,
                    }
                } else {
                    GgufWriter::new()
                };
                part.add_metadata(super::split::KEY_NO, GgufValue::U16(i as u16))
                    .add_metadata(super::split::KEY_COUNT, GgufValue::U16(count))
                    .add_metadata(super::split::KEY_TENSORS, GgufValue::I32(total));
                part.tensors = tensors.to_vec();
                part
            })
            .collect()
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn type_id(v: &GgufValue) -> u32 {
    match v {
        GgufValue::U8(_) => 0,
        GgufValue::I8(_) => 1,
        GgufValue::U16(_) => 2,
        GgufValue::I16(_) => 3,
        GgufValue::U32(_) => 4,
        GgufValue::I32(_) => 5,
        GgufValue::F32(_) => 6,
        GgufValue::Bool(_) => 7,
        GgufValue::String(_) => 8,
        GgufValue::Array(_) | GgufValue::StringArray(_) => 9,
        GgufValue::U64(_) => 10,
        GgufValue::I64(_) => 11,
        GgufValue::F64(_) => 12,
    }
}

fn put_value(out: &mut Vec<u8>, v: &GgufValue) {
    match v {
        GgufValue::U8(x) => out.push(*x),
        GgufValue::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(x) => out.push(u8::from(*x)),
        GgufValue::String(s) => put_string(out, s),
        GgufValue::Array(a) => {
            // An empty array is written as an empty u32 array.
            out.extend_from_slice(&a.first().map_or(4, type_id).to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            for e in a {
                put_value(out, e);
            }
        }
        GgufValue::StringArray(a) => {
            out.extend_from_slice(&8u32.to_le_bytes());
            out.extend_from_slice(&(a.len() as u64).to_le_bytes());
            for s in a.iter() {
                put_string(out, s);
            }
        }
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// llama.cpp's converter permutation of Q/K projection rows (`LlamaModel.permute`): each head's rows, seen as
/// `(2, head_dim/2)`, are transposed so that rotary pairs become adjacent. `values` is `rows × cols`
/// row-major (`cols` = 1 for a bias); `heads` is `n_head` for Q and `n_head_kv` for K.
pub fn llama_permute(values: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut out = vec![0f32; values.len()];
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..half {
                let src = h * head_dim + i * half + j;
                let dst = h * head_dim + 2 * j + i;
                out[dst * cols..(dst + 1) * cols]
                    .copy_from_slice(&values[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Quantize `values` (a whole number of blocks) to `ty`.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Result<Vec<u8>, QuantizeError> {
    let bs = ty.block_size();
    if !values.len().is_multiple_of(bs) {
        return Err(QuantizeError::Length {
            ty,
            values: values.len(),
        });
    }
    let mut out = Vec::with_capacity(values.len() / bs * ty.type_size());
    let f: fn(&[f32], &mut Vec<u8>) = match ty {
        GgmlType::F32 => |x, o| o.extend_from_slice(&x[0].to_le_bytes()),
        GgmlType::F16 => |x, o| o.extend_from_slice(&f16::from_f32(x[0]).to_le_bytes()),
        GgmlType::BF16 => |x, o| o.extend_from_slice(&bf16::from_f32(x[0]).to_le_bytes()),
        GgmlType::F64 => |x, o| o.extend_from_slice(&f64::from(x[0]).to_le_bytes()),
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q8_1 => q8_1,
        GgmlType::Q2K => q2_k,
        GgmlType::Q3K => q3_k,
        GgmlType::Q4K => q4_k,
        GgmlType::Q5K => q5_k,
        GgmlType::Q6K => q6_k,
        GgmlType::Q8K => q8_k,
        _ => return Err(QuantizeError::Unsupported(ty)),
    };
    for block in values.chunks_exact(bs) {
        f(block, &mut out);
    }
    Ok(out)
}

/// A scale stored as f16, and its reciprocal (0 for a zero scale).
fn f16_scale(d: f32) -> (f16, f32) {
    let d = f16::from_f32(d);
    let id = if d.to_f32() == 0.0 {
        0.0
    } else {
        1.0 / d.to_f32()
    };
    (d, id)
}

/// The element of largest magnitude, with its sign.
fn signed_absmax(x: &[f32]) -> f32 {
    x.iter()
        .copied()
        .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m })
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

fn q4_0(x: &[f32], o: &mut Vec<u8>) {
    let (d, id) = f16_scale(signed_absmax(x) / -8.0);
    o.extend_from_slice(&d.to_le_bytes());
    let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
    for j in 0..16 {
        o.push(q(x[j]) | (q(x[j + 16]) << 4));
    }
}

fn q4_1(x: &[f32], o: &mut Vec<u8>) {
    let (lo, hi) = min_max(x);
    let (d, id) = f16_scale((hi - lo) / 15.0);
    let m = f16::from_f32(lo);
    o.extend_from_slice(&d.to_le_bytes());
    o.extend_from_slice(&m.to_le_bytes());
    let q = |v: f32| (((v - m.to_f32()) * id + 0.5) as i32).clamp(0, 15) as u8;
    for j in 0..16 {
        o.push(q(x[j]) | (q(x[j + 16]) << 4));
    }
}

fn q5_0(x: &[f32], o: &mut Vec<u8>) {
    let (d, id) = f16_scale(signed_absmax(x) / -16.0);
    let q: Vec<u32> = x
        .iter()
        .map(|&v| ((v * id + 16.5) as i32).clamp(0, 31) as u32)
        .collect();
    o.extend_from_slice(&d.to_le_bytes());
    let qh = q
        .iter()
        .enumerate()
        .fold(0u32, |acc, (j, &v)| acc | ((v >> 4) << j));
    o.extend_from_slice(&qh.to_le_bytes());
    for j in 0..16 {
        o.push(((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4)) as u8);
    }
}

fn q5_1(x: &[f32], o: &mut Vec<u8>) {
    let (lo, hi) = min_max(x);
    let (d, id) = f16_scale((hi - lo) / 31.0);
    let m = f16::from_f32(lo);
    let q: Vec<u32> = x
        .iter()
        .map(|&v| (((v - m.to_f32()) * id + 0.5) as i32).clamp(0, 31) as u32)
        .collect();
    o.extend_from_slice(&d.to_le_bytes());
    o.extend_from_slice(&m.to_le_bytes());
    let qh = q
        .iter()
        .enumerate()
        .fold(0u32, |acc, (j, &v)| acc | ((v >> 4) << j));
    o.extend_from_slice(&qh.to_le_bytes());
    for j in 0..16 {
        o.push(((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4)) as u8);
    }
}

fn q8_0(x: &[f32], o: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (d, id) = f16_scale(amax / 127.0);
    o.extend_from_slice(&d.to_le_bytes());
    o.extend(
        x.iter()
            .map(|&v| (v * id).round().clamp(-127.0, 127.0) as i8 as u8),
    );
}

fn q8_1(x: &[f32], o: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (d, id) = f16_scale(amax / 127.0);
    let q: Vec<i8> = x
        .iter()
        .map(|&v| (v * id).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let sum: i32 = q.iter().map(|&v| i32::from(v)).sum();
    o.extend_from_slice(&d.to_le_bytes());
    o.extend_from_slice(&f16::from_f32(d.to_f32() * sum as f32).to_le_bytes());
    o.extend(q.iter().map(|&v| v as u8));
}

/// Round-to-nearest code of `v` on the grid `scale·q − min`, clamped to `0..=max`.
fn code(v: f32, scale: f32, min: f32, max: i32) -> u8 {
    if scale == 0.0 {
        0
    } else {
        ((v + min) / scale).round().clamp(0.0, max as f32) as u8
    }
}

/// Per-sub-block (scale, min) for an asymmetric grid with `levels` steps, quantized to `bits`-bit integers
/// against two f16 super-scales. Returns (d, dmin, integer scales, integer mins).
fn k_scales(x: &[f32], sub: usize, levels: f32, bits: u32) -> (f16, f16, Vec<u8>, Vec<u8>) {
    let top = ((1u32 << bits) - 1) as f32;
    let (scales, mins): (Vec<f32>, Vec<f32>) = x
        .chunks_exact(sub)
        .map(|c| {
            let (lo, hi) = min_max(c);
            let lo = lo.min(0.0);
            ((hi - lo) / levels, -lo)
        })
        .unzip();
    let (d, id) = f16_scale(scales.iter().fold(0f32, |m, &v| m.max(v)) / top);
    let (dmin, idmin) = f16_scale(mins.iter().fold(0f32, |m, &v| m.max(v)) / top);
    let iq = |v: f32, inv: f32| (v * inv).round().clamp(0.0, top) as u8;
    let sc = scales.iter().map(|&s| iq(s, id)).collect();
    let mn = mins.iter().map(|&m| iq(m, idmin)).collect();
    (d, dmin, sc, mn)
}

fn q2_k(x: &[f32], o: &mut Vec<u8>) {
    let (d, dmin, sc, mn) = k_scales(x, 16, 3.0, 4);
    let mut qs = [0u8; 64];
    for (e, &v) in x.iter().enumerate() {
        let s = e / 16;
        let q = code(
            v,
            d.to_f32() * sc[s] as f32,
            dmin.to_f32() * mn[s] as f32,
            3,
        );
        let (half, shift, k) = (e / 128, e % 128 / 32, e % 32);
        qs[half * 32 + k] |= q << (2 * shift);
    }
    o.extend((0..16).map(|s| sc[s] | (mn[s] << 4)));
    o.extend_from_slice(&qs);
    o.extend_from_slice(&d.to_le_bytes());
    o.extend_from_slice(&dmin.to_le_bytes());
}

fn q3_k(x: &[f32], o: &mut Vec<u8>) {
    // Symmetric: 16 sub-blocks of 16 with signed 6-bit scales; codes -4..=3.
    let scales: Vec<f32> = x
        .chunks_exact(16)
        .map(|c| signed_absmax(c) / -4.0)
        .collect();
    let (d, id) = f16_scale(scales.iter().fold(0f32, |m, v| m.max(v.abs())) / 31.0);
    let sc: Vec<i32> = scales
        .iter()
        .map(|&s| (s * id).round().clamp(-32.0, 31.0) as i32)
        .collect();
    let (mut hmask, mut qs, mut packed) = ([0u8; 32], [0u8; 64], [0u8; 12]);
    for (e, &v) in x.iter().enumerate() {
        let dl = d.to_f32() * sc[e / 16] as f32;
        let q = if dl == 0.0 {
            0
        } else {
            (v / dl).round().clamp(-4.0, 3.0) as i32
        };
        let l = (q + 4) as u8;
        let (half, shift, k) = (e / 128, e % 128 / 32, e % 32);
        qs[half * 32 + k] |= (l & 3) << (2 * shift);
        hmask[k] |= (l >> 2) << (e / 32);
    }
    for (i, &s) in sc.iter().enumerate() {
        let v = (s + 32) as u8;
        packed[i % 8] |= (v & 0x0f) << (4 * (i / 8));
        packed[8 + i % 4] |= (v >> 4) << (2 * (i / 4));
    }
    o.extend_from_slice(&hmask);
    o.extend_from_slice(&qs);
    o.extend_from_slice(&packed);
    o.extend_from_slice(&d.to_le_bytes());
}

/// Pack 8 six-bit (scale, min) pairs the way Q4_K/Q5_K store them.
fn pack_k_scales(sc: &[u8], mn: &[u8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = (mn[j] & 63) | ((mn[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4);
    }
    s
}

fn q4_k(x: &[f32], o: &mut Vec<u8>) {
    let (d, dmin, sc, mn) = k_scales(x, 32, 15.0, 6);
    let mut qs = [0u8; 128];
    for (e, &v) in x.iter().enumerate() {
        let s = e / 32;
        let q = code(
            v,
            d.to_f32() * sc[s] as f32,
            dmin.to_f32() * mn[s] as f32,
            15,
        );
        qs[(e / 64) * 32 + e % 32] |= q << (4 * (s % 2));
    }
    o.extend_from_slice(&d.to_le_bytes());
    o.extend_from_slice(&dmin.to_le_bytes());
    o.extend_from_slice(&pack_k_scales(&sc, &mn));
    o.extend_from_slice(&qs);
}

fn q5_k(x: &[f32], o: &mut Vec<u8>) {
    let (d, dmin, sc, mn) = k_scales(x, 32, 31.0, 6);
    let (mut qh, mut qs) = ([0u8; 32], [0u8; 128]);
    for (e, &v) in x.iter().enumerate() {
        let s = e / 32;
        let q = code(
            v,
            d.to_f32() * sc[s] as f32,
            dmin.to_f32() * mn[s] as f32,
            31,
        );
        qs[(e / 64) * 32 + e % 32] |= (q & 0x0f) << (4 * (s % 2));
        qh[e % 32] |= (q >> 4) << s;
    }
    o.extend_from_slice(&d.to_le_bytes());
    o.extend_from_slice(&dmin.to_le_bytes());
    o.extend_from_slice(&pack_k_scales(&sc, &mn));
    o.extend_from_slice(&qh);
    o.extend_from_slice(&qs);
}

fn q6_k(x: &[f32], o: &mut Vec<u8>) {
    // Symmetric: 16 sub-blocks of 16 with signed 8-bit scales; codes -32..=31.
    let scales: Vec<f32> = x
        .chunks_exact(16)
        .map(|c| signed_absmax(c) / -32.0)
        .collect();
    let (d, id) = f16_scale(scales.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0);
    let sc: Vec<i8> = scales
        .iter()
        .map(|&s| (s * id).round().clamp(-128.0, 127.0) as i8)
        .collect();
    let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
    for (e, &v) in x.iter().enumerate() {
        let dl = d.to_f32() * sc[e / 16] as f32;
        let q = if dl == 0.0 {
            0
        } else {
            (v / dl).round().clamp(-32.0, 31.0) as i32
        };
        let l = (q + 32) as u8;
        let (half, r) = (e / 128, e % 128);
        ql[half * 64 + r % 64] |= (l & 0x0f) << (4 * (r / 64));
        qh[half * 32 + r % 32] |= (l >> 4) << (2 * (r / 32));
    }
    o.extend_from_slice(&ql);
    o.extend_from_slice(&qh);
    o.extend(sc.iter().map(|&s| s as u8));
    o.extend_from_slice(&d.to_le_bytes());
}

fn q8_k(x: &[f32], o: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d == 0.0 { 0.0 } else { 1.0 / d };
    let q: Vec<i8> = x
        .iter()
        .map(|&v| (v * id).round().clamp(-127.0, 127.0) as i8)
        .collect();
    o.extend_from_slice(&d.to_le_bytes());
    o.extend(q.iter().map(|&v| v as u8));
    for c in q.chunks_exact(16) {
        let s: i16 = c.iter().map(|&v| i16::from(v)).sum();
        o.extend_from_slice(&s.to_le_bytes());
    }
}
