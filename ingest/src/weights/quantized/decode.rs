//! Dequantizers for the packed layouts of GPTQ, AWQ, bitsandbytes and FP8 safetensors checkpoints: each one
//! validates its parts once, then decodes any range of the logical weight straight from the mapped bytes.
//!
//! Layouts (logical weight `W` is `[out, in]`, as in the float checkpoint the quantization was made from):
//!
//! - **GPTQ** (AutoGPTQ / optimum, `checkpoint_format` `gptq` = v1): `qweight` int32 `[in·bits/32, out]` holds
//!   the codes of each output column as a little-endian bit stream down the rows (value `k` at bit `bits·k`; for
//!   2/4/8 bits a value never straddles two words, for 3 bits 32 values fill 3 words); `qzeros` int32
//!   `[groups, out·bits/32]` packs zero points the same way along each row; `scales` `[groups, out]`; `g_idx`
//!   int32 `[in]` gives each input's group (act-order checkpoints shuffle it; without it the group is
//!   `k / group_size`). `W[n][k] = scales[g][n] · (q[k][n] − (z[g][n] + 1))`: v1 stores every zero point minus
//!   one (AutoGPTQ's `pack` does `zeros -= 1`, its kernels add it back); `gptq_v2` (GPTQModel) stores them as
//!   they are.
//! - **AWQ** (AutoAWQ GEMM): `qweight` int32 `[in, out/8]`, eight 4-bit codes per word packed along the output
//!   columns in the order `[0, 2, 4, 6, 1, 3, 5, 7]` (nibble `i` holds column `order[i]`), `qzeros`
//!   `[in/group, out/8]` packed alike, `scales` `[in/group, out]`. `W[n][k] = (q − z) · s`.
//! - **bitsandbytes LLM.int8** : `weight` int8 `[out, in]` and `SCB` `[out]`: `W = q · SCB[n] / 127`.
//! - **bitsandbytes 4-bit** (NF4/FP4): `weight` uint8, two codes per byte (high nibble first) over the flattened
//!   weight; `weight.absmax` per block of `blocksize`; `weight.quant_map` the 16 code values; the
//!   `weight.quant_state.bitsandbytes__nf4` (or `__fp4`) uint8 tensor is a JSON object with `shape`,
//!   `blocksize`, `dtype`. Nested (double) quantization stores `absmax` as uint8 codes of `nested_quant_map`
//!   with `nested_absmax` per `nested_blocksize`, plus `nested_offset`.
//!   `W[i] = quant_map[code_i] · absmax[i / blocksize]`.
//! - **MLX** affine (mlx-lm, mlx-community): `weight` uint32 `[out, in·bits/32]`, each row one little-endian
//!   bit stream of 2–8-bit codes; `scales` and `biases` `[out, in/group]`: `W[n][k] = s · q + b` ([`Mlx`]).
//! - **compressed-tensors** (llm-compressor, `quant_method: compressed-tensors`): `pack-quantized`
//!   `weight_packed` int32 `[out, ⌈in·bits/32⌉]` with `weight_shape`, or `int-quantized` int8 `weight`; with
//!   `weight_scale` `[out, groups]`, optional `weight_zero_point` and `weight_g_idx`: `W = (q − z) · s` ([`Ct`]).
//! - **FP8** (DeepSeek-V3, Qwen3-FP8): `weight` F8_E4M3 `[out, in]` times `weight_scale_inv` per block
//!   (`[⌈out/128⌉, ⌈in/128⌉]` for 128×128 blocks), or times `weight_scale` (one value, or one per row).
//! - **Microscaled floats** (MXFP4, NVFP4, MXFP8: gpt-oss, compressed-tensors `nvfp4-pack-quantized` and
//!   `mxfp4-pack-quantized`, NVIDIA ModelOpt, MLX modes): 4- or 8-bit float codes with one 8-bit scale per
//!   group of 16 or 32 ([`Micro`]).

mod micro;
mod scaled;
mod words;

use crate::weights::{SafetensorsSource, WeightSource};
pub use micro::{Arrangement, Micro, MicroParts, Scheme as MicroScheme};
use provsearch_formats::dtype::{decode_to_f32, Dtype};
pub use scaled::{Bnb4, Bnb4Parts, Bnb8, Fp8, Fp8Scale, Nested};
pub use words::{Awq, Ct, CtCodes, CtParts, Gptq, Mlx};

/// A packed tensor of the checkpoint: its index in the wrapped source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part(pub usize);

/// Why a layout cannot be read (becomes "unsupported: ..." in the fingerprint).
pub type Unsupported = String;

/// One dequantizable weight.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// GPTQ.
    Gptq(Gptq),
    /// AWQ GEMM.
    Awq(Awq),
    /// bitsandbytes LLM.int8.
    Bnb8(Bnb8),
    /// bitsandbytes NF4/FP4.
    Bnb4(Bnb4),
    /// FP8 with scales.
    Fp8(Fp8),
    /// MLX affine.
    Mlx(Mlx),
    /// compressed-tensors integer codes.
    Ct(Ct),
    /// Microscaled floats (MXFP4, NVFP4, MXFP8).
    Micro(Micro),
}
pub(crate) fn raw(src: &SafetensorsSource, part: Part) -> Result<&[u8], String> {
    src.raw(part.0)
        .map(|(file, info)| file.bytes(info))
        .ok_or_else(|| format!("tensor index {} out of range", part.0))
}

pub(crate) fn shape_of(src: &SafetensorsSource, part: Part) -> Vec<u64> {
    src.tensors()
        .get(part.0)
        .map(|m| m.shape.clone())
        .unwrap_or_default()
}

pub(crate) fn dtype_of(src: &SafetensorsSource, part: Part) -> Option<Dtype> {
    src.dtype(part.0)
}

pub(crate) fn name_of(src: &SafetensorsSource, part: Part) -> &str {
    src.tensors().get(part.0).map_or("?", |m| m.name.as_str())
}

/// A float part (scales, maxima) of a given number of elements.
pub(crate) fn float_part(
    src: &SafetensorsSource,
    part: Part,
    numel: u64,
) -> Result<(Part, Dtype), Unsupported> {
    let dtype = dtype_of(src, part).filter(|d| d.is_float());
    let shape = shape_of(src, part);
    match dtype {
        Some(d) if shape.iter().product::<u64>() == numel => Ok((part, d)),
        _ => Err(format!(
            "`{}` is {:?} {shape:?}, expected {numel} float values",
            name_of(src, part),
            dtype_of(src, part)
        )),
    }
}

/// The `N` values of a small float part (a tensor-wide scale, a quant map).
pub(crate) fn read_floats<const N: usize>(
    src: &SafetensorsSource,
    part: Part,
) -> Result<[f32; N], Unsupported> {
    float_part(src, part, N as u64)?;
    let mut v = [0f32; N];
    src.read_f32(part.0, 0, &mut v).map_err(|e| e.to_string())?;
    Ok(v)
}

/// Whether a part is a 32-bit integer tensor of the given 2-D shape.
pub(crate) fn int32_part(
    src: &SafetensorsSource,
    part: Part,
    shape: [u64; 2],
) -> Result<Part, Unsupported> {
    let ok = matches!(dtype_of(src, part), Some(Dtype::I32 | Dtype::U32))
        && shape_of(src, part) == shape;
    if ok {
        Ok(part)
    } else {
        Err(format!(
            "`{}` is {:?} {:?}, expected int32 {shape:?}",
            name_of(src, part),
            dtype_of(src, part),
            shape_of(src, part)
        ))
    }
}

#[inline]
pub(crate) fn word(b: &[u8], i: u64) -> Option<u32> {
    let i = usize::try_from(i).ok()?.checked_mul(4)?;
    let s = b.get(i..i.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

#[inline]
pub(crate) fn float(b: &[u8], dtype: Dtype, i: u64) -> Option<f32> {
    let size = dtype.size();
    let at = usize::try_from(i).ok()?.checked_mul(size)?;
    let s = b.get(at..at.checked_add(size)?)?;
    let mut v = [0f32; 1];
    decode_to_f32(dtype, s, &mut v);
    Some(v[0])
}

/// `bits`-wide value number `index` of a bit stream laid over words `stride` apart starting at word `base`.
#[inline]
pub(crate) fn packed(b: &[u8], base: u64, stride: u64, index: u64, bits: u32) -> Option<u32> {
    let bit = index * u64::from(bits);
    let (w, shift) = (bit / 32, (bit % 32) as u32);
    let lo = word(b, base + w * stride)? >> shift;
    let v = if shift + bits > 32 {
        lo | (word(b, base + (w + 1) * stride)? << (32 - shift))
    } else {
        lo
    };
    Some(v & ((1u32 << bits) - 1))
}

/// One row of codes laid as a little-endian bit stream over 32-bit words (code `k` at bit `bits·k`), as MLX and
/// compressed-tensors pack along a row. The row is bounds-checked once, and a code is read from the 64-bit
/// window of its word and the next, so codes that straddle two words (3, 5, 6 bits) take no second path: on a
/// streamed MLX embedding this is about a third faster than [`packed`] per code.
pub(crate) struct BitRow<'a> {
    bytes: &'a [u8],
    bits: u64,
    mask: u64,
}

impl<'a> BitRow<'a> {
    /// Words `first .. first + words` of `b`, holding `bits`-wide codes; `None` when they are not all in `b`.
    pub(crate) fn new(b: &'a [u8], first: u64, words: u64, bits: u32) -> Option<BitRow<'a>> {
        let start = usize::try_from(first).ok()?.checked_mul(4)?;
        let len = usize::try_from(words).ok()?.checked_mul(4)?;
        Some(BitRow {
            bytes: b.get(start..start.checked_add(len)?)?,
            bits: u64::from(bits),
            mask: (1u64 << bits) - 1,
        })
    }

    fn word(&self, w: usize) -> u64 {
        self.bytes
            .get(4 * w..4 * w + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
    }

    /// Code `k` of the row (0 past its end).
    #[inline]
    pub(crate) fn code(&self, k: u64) -> u64 {
        let bit = k * self.bits;
        let w = (bit / 32) as usize;
        ((self.word(w) | self.word(w + 1) << 32) >> (bit % 32)) & self.mask
    }
}

/// The values of the groups (of `group` columns) that columns `k0 .. k0 + len` of row `row` touch, from a part
/// of `dtype` values holding `groups` per row: one conversion call per segment rather than one per group.
pub(crate) fn segment_groups(
    bytes: &[u8],
    dtype: Dtype,
    [row, groups, group]: [u64; 3],
    k0: u64,
    len: usize,
) -> Option<Vec<f32>> {
    let (g0, g1) = (k0 / group, (k0 + len as u64).div_ceil(group));
    let size = dtype.size();
    let from = usize::try_from(row * groups + g0).ok()?.checked_mul(size)?;
    let count = usize::try_from(g1 - g0).ok()?;
    let mut v = vec![0f32; count];
    decode_to_f32(
        dtype,
        bytes.get(from..from.checked_add(count * size)?)?,
        &mut v,
    );
    Some(v)
}

/// Walk columns `k0 .. k0 + out.len()` group by group (groups of `group` columns), calling `f(i, k, span)` for
/// the `i`-th group the segment touches, with its first column `k` in the segment and its part of `out`: the
/// decoders then need no division per code.
pub(crate) fn for_groups(
    group: u64,
    k0: u64,
    out: &mut [f32],
    mut f: impl FnMut(usize, u64, &mut [f32]) -> Option<()>,
) -> Option<()> {
    let (mut k, mut rest, mut i) = (k0, out, 0);
    while !rest.is_empty() {
        let take = usize::try_from((k / group + 1) * group - k)
            .ok()?
            .min(rest.len());
        let (span, tail) = rest.split_at_mut(take);
        f(i, k, span)?;
        k += take as u64;
        rest = tail;
        i += 1;
    }
    Some(())
}

/// Call `f(row, first_col, segment)` for each row-piece of the flat range `start .. start + out.len()`.
pub(crate) fn for_rows(
    cols: u64,
    start: u64,
    out: &mut [f32],
    mut f: impl FnMut(u64, u64, &mut [f32]) -> Option<()>,
) -> Option<()> {
    let (mut pos, mut done) = (start, 0usize);
    while done < out.len() {
        let (r, c) = (pos / cols, pos % cols);
        let take = ((cols - c) as usize).min(out.len() - done);
        f(r, c, &mut out[done..done + take])?;
        done += take;
        pos += take as u64;
    }
    Some(())
}

impl Decoder {
    /// Logical shape of the weight.
    pub fn shape(&self) -> Vec<u64> {
        match self {
            Decoder::Gptq(g) => vec![g.out, g.input],
            Decoder::Awq(a) => vec![a.out, a.input],
            Decoder::Bnb8(b) => vec![b.out, b.input],
            Decoder::Bnb4(b) => b.shape.clone(),
            Decoder::Fp8(f) => f.shape.clone(),
            Decoder::Mlx(m) => vec![m.out, m.input],
            Decoder::Ct(c) => vec![c.out, c.input],
            Decoder::Micro(m) => m.shape(),
        }
    }

    /// Scheme name for `Source.quantization` and the tensor's dtype (`"gptq-4bit"`, `"bnb-nf4"`, ...).
    pub fn label(&self) -> String {
        match self {
            Decoder::Gptq(g) => format!("gptq-{}bit", g.bits),
            Decoder::Awq(_) => "awq-4bit".into(),
            Decoder::Bnb8(_) => "bnb-int8".into(),
            Decoder::Bnb4(b) => if b.fp4 { "bnb-fp4" } else { "bnb-nf4" }.into(),
            Decoder::Fp8(f) if f.weight.1 == Dtype::F8E5M2 => "fp8-e5m2".into(),
            Decoder::Fp8(_) => "fp8-e4m3".into(),
            Decoder::Mlx(m) => format!("mlx-{}bit", m.bits),
            Decoder::Ct(c) => format!("compressed-tensors-{}bit", c.bits()),
            Decoder::Micro(m) => m.label(),
        }
    }

    /// Layout details for the fingerprint's note.
    pub fn detail(&self) -> String {
        match self {
            Decoder::Gptq(g) => g.detail(),
            Decoder::Awq(a) => format!("group {}", a.group_size),
            Decoder::Bnb8(_) => "row scales SCB/127".into(),
            Decoder::Bnb4(b) => format!(
                "blocksize {}{}",
                b.blocksize,
                if b.nested.is_some() {
                    ", nested absmax"
                } else {
                    ""
                }
            ),
            Decoder::Fp8(f) => match f.scale {
                Fp8Scale::None => "unscaled".into(),
                Fp8Scale::Tensor(_) => "per-tensor scale".into(),
                Fp8Scale::Row(..) => "per-row scales".into(),
                Fp8Scale::Block(_, _, [r, c]) => format!("{r}x{c} block scales"),
            },
            Decoder::Mlx(m) => format!("affine, group {}", m.group_size),
            Decoder::Ct(c) => format!(
                "{}, {}{}{}",
                match c.layout {
                    CtCodes::Packed(_) => "pack-quantized",
                    CtCodes::Int8 => "int-quantized",
                },
                if c.groups == 1 {
                    "per-channel scales".to_string()
                } else {
                    format!("group {}", c.group_size)
                },
                if c.zeros.is_some() {
                    ", zero points"
                } else {
                    ""
                },
                if c.groups_of.is_some() {
                    ", act-order g_idx"
                } else {
                    ""
                },
            ),
            Decoder::Micro(m) => m.detail(),
        }
    }

    /// The part holding the packed values (its file names the tensor in errors).
    pub fn main_part(&self) -> Part {
        match self {
            Decoder::Gptq(g) => g.qweight,
            Decoder::Awq(a) => a.qweight,
            Decoder::Bnb8(b) => b.weight,
            Decoder::Bnb4(b) => b.weight,
            Decoder::Fp8(f) => f.weight.0,
            Decoder::Mlx(m) => m.weight,
            Decoder::Ct(c) => c.codes,
            Decoder::Micro(m) => m.codes,
        }
    }

    /// Decode logical elements `start .. start + out.len()` (row-major); the caller checks the range. `None`
    /// when a stored value is out of place (cannot happen after validation, short of a file changed under us).
    pub fn decode(&self, src: &SafetensorsSource, start: u64, out: &mut [f32]) -> Option<()> {
        match self {
            Decoder::Gptq(g) => for_rows(g.input, start, out, |n, k, seg| {
                g.decode_row(src, n, k, seg)
            }),
            Decoder::Awq(a) => for_rows(a.input, start, out, |n, k, seg| {
                a.decode_row(src, n, k, seg)
            }),
            Decoder::Bnb8(b) => {
                let w = raw(src, b.weight).ok()?;
                let s = raw(src, b.scb.0).ok()?;
                let from = usize::try_from(start).ok()?;
                decode_to_f32(Dtype::I8, w.get(from..from.checked_add(out.len())?)?, out);
                for_rows(b.input, start, out, |n, _, seg| {
                    let f = float(s, b.scb.1, n)? / 127.0;
                    seg.iter_mut().for_each(|v| *v *= f);
                    Some(())
                })
            }
            Decoder::Bnb4(b) => b.decode(src, start, out),
            Decoder::Fp8(f) => f.decode(src, start, out),
            Decoder::Mlx(m) => for_rows(m.input, start, out, |n, k, seg| {
                m.decode_row(src, n, k, seg)
            }),
            Decoder::Ct(c) => for_rows(c.input, start, out, |n, k, seg| {
                c.decode_row(src, n, k, seg)
            }),
            Decoder::Micro(m) => m.decode(src, start, out),
        }
    }

    /// Every stored part the weight is decoded from.
    pub fn parts(&self) -> Vec<Part> {
        match self {
            Decoder::Gptq(g) => vec![g.qweight, g.qzeros, g.scales.0],
            Decoder::Awq(a) => vec![a.qweight, a.qzeros, a.scales.0],
            Decoder::Bnb8(b) => vec![b.weight, b.scb.0],
            Decoder::Bnb4(b) => {
                let mut v = vec![b.weight, b.absmax.0];
                v.extend(b.nested.as_ref().map(|n| n.absmax.0));
                v
            }
            Decoder::Fp8(f) => match f.scale {
                Fp8Scale::Row(p, _) | Fp8Scale::Block(p, _, _) => vec![f.weight.0, p],
                Fp8Scale::None | Fp8Scale::Tensor(_) => vec![f.weight.0],
            },
            Decoder::Mlx(m) => vec![m.weight, m.scales.0, m.biases.0],
            Decoder::Ct(c) => [Some(c.codes), Some(c.scales.0), c.zeros]
                .into_iter()
                .flatten()
                .collect(),
            Decoder::Micro(m) => vec![m.codes, m.scales],
        }
    }

    /// Release the mapped pages behind a reader of logical elements `start .. start + count`. Where the
    /// logical order follows the stored order (bitsandbytes, FP8; MLX and microscaled rows by whole rows) the matching bytes are
    /// released; GPTQ and AWQ
    /// spread every logical row over the whole packed tensor, so their pages go only when the whole weight is
    /// released (as the samplers do once a matrix is done).
    pub fn release(&self, src: &SafetensorsSource, start: u64, count: u64) {
        let numel: u64 = self.shape().iter().product();
        if start == 0 && count >= numel {
            for p in self.parts() {
                let n = src.tensors().get(p.0).map_or(0, |m| m.numel());
                src.release(p.0, 0, n);
            }
            return;
        }
        match self {
            Decoder::Bnb8(b) => src.release(b.weight.0, start, count),
            Decoder::Fp8(f) => src.release(f.weight.0 .0, start, count),
            Decoder::Bnb4(b) => src.release(b.weight.0, start.div_ceil(2), count / 2),
            Decoder::Mlx(m) => {
                // The rows wholly inside the range (a streamed embedding releases chunks of rows).
                let first = start.div_ceil(m.input);
                let end = (start + count) / m.input;
                if end > first {
                    src.release(m.weight.0, first * m.words(), (end - first) * m.words());
                }
            }
            Decoder::Micro(m) if m.row_major() => {
                let first = start.div_ceil(m.input);
                let end = (start + count) / m.input;
                if end > first {
                    let per_row = m.stored_per_row(src);
                    src.release(m.codes.0, first * per_row, (end - first) * per_row);
                }
            }
            Decoder::Gptq(_) | Decoder::Awq(_) | Decoder::Ct(_) | Decoder::Micro(_) => {}
        }
    }
}
