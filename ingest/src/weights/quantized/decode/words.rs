//! GPTQ, AWQ and MLX: 2–8-bit codes packed into 32-bit words, with per-group scales and zero points (GPTQ,
//! AWQ) or biases (MLX).

use super::{
    dtype_of, float, float_part, for_groups, int32_part, packed, raw, segment_groups, shape_of,
    word, BitRow, Part, Unsupported,
};
use crate::weights::quantized::config::QuantConfig;
use crate::weights::{SafetensorsSource, WeightSource};
use provsearch_formats::dtype::Dtype;

/// Position of AWQ's column `j` (within 8) inside its word: the inverse of the packing order.
const AWQ_NIBBLE: [u32; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

/// GPTQ parts and parameters.
#[derive(Debug, Clone)]
pub struct Gptq {
    pub(super) qweight: Part,
    pub(super) qzeros: Part,
    pub(super) scales: (Part, Dtype),
    /// Each input's group (read from `g_idx`, or `k / group_size`).
    pub(super) groups_of: Vec<u32>,
    pub(super) bits: u32,
    pub(super) out: u64,
    pub(super) input: u64,
    pub(super) zero_offset: u32,
    pub(super) act_order: bool,
    pub(super) group_size: u64,
}

/// AWQ parts and parameters.
#[derive(Debug, Clone)]
pub struct Awq {
    pub(super) qweight: Part,
    pub(super) qzeros: Part,
    pub(super) scales: (Part, Dtype),
    pub(super) out: u64,
    pub(super) input: u64,
    pub(super) group_size: u64,
}

/// MLX affine quantization (`mx.quantize`, mlx-lm's `nn.quantize`): `weight` uint32 `[out, in·bits/32]` holds
/// each row as one little-endian bit stream (code `k` at bit `bits·k`, across word boundaries for 3, 5 and 6
/// bits); `scales` and `biases` `[out, in/group_size]`. `W[n][k] = scales[n][g] · q + biases[n][g]` with
/// `g = k / group_size` (checked bit for bit against `mx.dequantize` in the tests).
#[derive(Debug, Clone)]
pub struct Mlx {
    pub(super) weight: Part,
    pub(super) scales: (Part, Dtype),
    pub(super) biases: (Part, Dtype),
    pub(super) bits: u32,
    pub(super) group_size: u64,
    pub(super) out: u64,
    pub(super) input: u64,
}

impl Mlx {
    /// Validate MLX parts against the declared bits and group size.
    pub fn new(
        src: &SafetensorsSource,
        [weight, scales, biases]: [Part; 3],
        bits: u32,
        group_size: u64,
    ) -> Result<Mlx, Unsupported> {
        if !(2..=8).contains(&bits) || bits == 7 || group_size == 0 {
            return Err(format!("{bits}-bit codes in groups of {group_size}"));
        }
        let ws = shape_of(src, weight);
        let &[out, words] = ws.as_slice() else {
            return Err(format!("weight {ws:?} is not 2-D"));
        };
        let input = words * 32 / u64::from(bits);
        let groups = input / group_size;
        if input * u64::from(bits) != words * 32 || groups * group_size != input || out == 0 {
            return Err(format!(
                "weight {ws:?} does not hold whole groups of {group_size} {bits}-bit codes per row"
            ));
        }
        Ok(Mlx {
            weight: int32_part(src, weight, [out, words])?,
            scales: float_part(src, scales, out * groups)?,
            biases: float_part(src, biases, out * groups)?,
            bits,
            group_size,
            out,
            input,
        })
    }

    /// Words of one packed row.
    pub(super) fn words(&self) -> u64 {
        self.input * u64::from(self.bits) / 32
    }

    pub(super) fn decode_row(
        &self,
        src: &SafetensorsSource,
        n: u64,
        k0: u64,
        out: &mut [f32],
    ) -> Option<()> {
        let qw = raw(src, self.weight).ok()?;
        let (sc, bi) = (raw(src, self.scales.0).ok()?, raw(src, self.biases.0).ok()?);
        let groups = self.input / self.group_size;
        let row = BitRow::new(qw, n * self.words(), self.words(), self.bits)?;
        let at = [n, groups, self.group_size];
        let scales = segment_groups(sc, self.scales.1, at, k0, out.len())?;
        let biases = segment_groups(bi, self.biases.1, at, k0, out.len())?;
        for_groups(self.group_size, k0, out, |i, k, span| {
            let (scale, bias) = (*scales.get(i)?, *biases.get(i)?);
            for (o, k) in span.iter_mut().zip(k..) {
                *o = scale * row.code(k) as f32 + bias;
            }
            Some(())
        })
    }
}

impl Gptq {
    /// Validate GPTQ parts against the declared (or inferred) parameters.
    pub fn new(
        src: &SafetensorsSource,
        [qweight, qzeros, scales]: [Part; 3],
        g_idx: Option<Part>,
        cfg: &QuantConfig,
    ) -> Result<Gptq, Unsupported> {
        let zero_offset = match cfg.checkpoint_format.as_deref() {
            None | Some("gptq") => 1,
            Some("gptq_v2") => 0,
            Some(other) => return Err(format!("checkpoint_format `{other}`")),
        };
        let qs = shape_of(src, qweight);
        let ss = shape_of(src, scales);
        let zs = shape_of(src, qzeros);
        let (&[rows, out], &[groups, s_out], &[_, z_cols]) =
            (qs.as_slice(), ss.as_slice(), zs.as_slice())
        else {
            return Err("qweight, qzeros and scales are not all 2-D".into());
        };
        if s_out != out || out == 0 || groups == 0 {
            return Err(format!("scales {ss:?} do not match qweight {qs:?}"));
        }
        // Bits from the config, else from how many words hold a row of zero points.
        let bits = match cfg.bits {
            Some(b) => b,
            None if (z_cols * 32) % out == 0 => (z_cols * 32 / out) as u32,
            None => return Err(format!("cannot infer bits from qzeros {zs:?}")),
        };
        if !matches!(bits, 2 | 3 | 4 | 8) {
            return Err(format!("{bits}-bit packing"));
        }
        let b = u64::from(bits);
        if (out * b) % 32 != 0 {
            return Err(format!("{out} outputs do not fill whole {bits}-bit words"));
        }
        let qweight = int32_part(src, qweight, [rows, out])?;
        let qzeros = int32_part(src, qzeros, [groups, out * b / 32])?;
        let scales = float_part(src, scales, groups * out)?;
        let input = rows * 32 / b;
        let group_size = match cfg.group_size {
            Some(g) if g > 0 => g as u64,
            Some(_) => input,
            None => input.div_ceil(groups),
        };
        let groups_of: Vec<u32> = match g_idx {
            Some(part) => read_g_idx(src, part, input, groups)?,
            None if cfg.desc_act == Some(true) => {
                return Err("act-order (desc_act) without g_idx".into())
            }
            None => {
                if (input - 1) / group_size >= groups {
                    return Err(format!(
                        "{input} inputs in groups of {group_size} need more than {groups} scale rows"
                    ));
                }
                (0..input).map(|k| (k / group_size) as u32).collect()
            }
        };
        let act_order = groups_of.windows(2).any(|w| w[1] < w[0]);
        Ok(Gptq {
            qweight,
            qzeros,
            scales,
            groups_of,
            bits,
            out,
            input,
            zero_offset,
            act_order,
            group_size,
        })
    }

    pub(super) fn detail(&self) -> String {
        format!(
            "group {}{}, {}",
            self.group_size,
            if self.act_order {
                ", act-order g_idx"
            } else {
                ""
            },
            if self.zero_offset == 1 {
                "v1 zeros stored minus one"
            } else {
                "v2 zeros"
            }
        )
    }

    pub(super) fn decode_row(
        &self,
        src: &SafetensorsSource,
        n: u64,
        k0: u64,
        out: &mut [f32],
    ) -> Option<()> {
        let (qw, qz) = (raw(src, self.qweight).ok()?, raw(src, self.qzeros).ok()?);
        let sc = raw(src, self.scales.0).ok()?;
        let z_cols = self.out * u64::from(self.bits) / 32;
        let groups_of = self
            .groups_of
            .get(k0 as usize..(k0 as usize).checked_add(out.len())?)?;
        // Scale and zero point of column n in every group this range touches.
        let first = *groups_of.iter().min()?;
        let last = *groups_of.iter().max()?;
        let mut table = Vec::with_capacity((last - first + 1) as usize);
        for g in first..=last {
            let z = packed(qz, u64::from(g) * z_cols, 1, n, self.bits)?;
            let s = float(sc, self.scales.1, u64::from(g) * self.out + n)?;
            table.push((s, (z + self.zero_offset) as f32));
        }
        let mask = (1u32 << self.bits) - 1;
        if 32 % self.bits != 0 {
            // 3-bit values straddle words: one value at a time.
            for ((k, o), &g) in (k0..).zip(out.iter_mut()).zip(groups_of) {
                let q = packed(qw, n, self.out, k, self.bits)?;
                let (s, z) = *table.get((g - first) as usize)?;
                *o = s * (q as f32 - z);
            }
            return Some(());
        }
        // 2/4/8 bits: each word of column n holds 32/bits consecutive inputs.
        let per = u64::from(32 / self.bits);
        let (mut k, mut done) = (k0, 0usize);
        while done < out.len() {
            let word = word(qw, (k / per) * self.out + n)?;
            let mut shift = ((k % per) as u32) * self.bits;
            while shift < 32 && done < out.len() {
                let (s, z) = *table.get((groups_of[done] - first) as usize)?;
                out[done] = s * (((word >> shift) & mask) as f32 - z);
                shift += self.bits;
                done += 1;
                k += 1;
            }
        }
        Some(())
    }
}

fn read_g_idx(
    src: &SafetensorsSource,
    part: Part,
    input: u64,
    groups: u64,
) -> Result<Vec<u32>, Unsupported> {
    let dtype = dtype_of(src, part);
    if !matches!(dtype, Some(Dtype::I32 | Dtype::I64)) || shape_of(src, part) != [input] {
        return Err(format!(
            "g_idx is {dtype:?} {:?}, expected int32 [{input}]",
            shape_of(src, part)
        ));
    }
    let mut values = vec![0f32; input as usize];
    src.read_f32(part.0, 0, &mut values)
        .map_err(|e| e.to_string())?;
    values
        .iter()
        .map(|&g| {
            if g >= 0.0 && (g as u64) < groups {
                Ok(g as u32)
            } else {
                Err(format!("g_idx holds group {g}, outside 0..{groups}"))
            }
        })
        .collect()
}

impl Awq {
    /// Validate AWQ GEMM parts.
    pub fn new(
        src: &SafetensorsSource,
        [qweight, qzeros, scales]: [Part; 3],
        cfg: &QuantConfig,
    ) -> Result<Awq, Unsupported> {
        match cfg.version.as_deref() {
            None | Some("gemm" | "exllama" | "ipex") => {}
            Some(v) => return Err(format!("AWQ `{v}` packing")),
        }
        if let Some(b) = cfg.bits.filter(|&b| b != 4) {
            return Err(format!("{b}-bit AWQ"));
        }
        let qs = shape_of(src, qweight);
        let ss = shape_of(src, scales);
        let (&[input, words], &[groups, out]) = (qs.as_slice(), ss.as_slice()) else {
            return Err("qweight and scales are not both 2-D".into());
        };
        if words * 8 != out || groups == 0 || input == 0 {
            return Err(format!("scales {ss:?} do not match qweight {qs:?}"));
        }
        let group_size = match cfg.group_size {
            Some(g) if g > 0 => g as u64,
            Some(_) => input,
            None => input.div_ceil(groups),
        };
        if (input - 1) / group_size >= groups {
            return Err(format!(
                "{input} inputs in groups of {group_size} need more than {groups} scale rows"
            ));
        }
        Ok(Awq {
            qweight: int32_part(src, qweight, [input, words])?,
            qzeros: int32_part(src, qzeros, [groups, words])?,
            scales: float_part(src, scales, groups * out)?,
            out,
            input,
            group_size,
        })
    }

    pub(super) fn decode_row(
        &self,
        src: &SafetensorsSource,
        n: u64,
        k0: u64,
        out: &mut [f32],
    ) -> Option<()> {
        let (qw, qz) = (raw(src, self.qweight).ok()?, raw(src, self.qzeros).ok()?);
        let sc = raw(src, self.scales.0).ok()?;
        let words = self.out / 8;
        let shift = 4 * AWQ_NIBBLE[(n % 8) as usize];
        let (mut last, mut zero, mut scale) = (u64::MAX, 0f32, 0f32);
        for (k, o) in (k0..).zip(out.iter_mut()) {
            let g = k / self.group_size;
            if g != last {
                zero = ((word(qz, g * words + n / 8)? >> shift) & 15) as f32;
                scale = float(sc, self.scales.1, g * self.out + n)?;
                last = g;
            }
            let q = (word(qw, k * words + n / 8)? >> shift) & 15;
            *o = (q as f32 - zero) * scale;
        }
        Some(())
    }
}

/// How a compressed-tensors weight stores its integer codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtCodes {
    /// `pack-quantized`: `weight_packed` int32 `[out, ⌈in/(32/bits)⌉]`, code `k` of a row in word `k/(32/bits)`
    /// at bit `bits·(k mod 32/bits)`, stored plus `2^(bits−1)`.
    Packed(u32),
    /// `int-quantized` (naive): `weight` int8 `[out, in]`, the signed codes as they are.
    Int8,
}

/// compressed-tensors (llm-compressor, vLLM; `quant_method: compressed-tensors`) integer weights:
/// `W[n][k] = (q − z[n][g]) · weight_scale[n][g]` with `g = weight_g_idx[k]`, or `k / group_size`; one scale
/// column is per-channel. Zero points (asymmetric schemes) are int8 `[out, groups]` beside int8 codes, and
/// packed down the rows like the codes beside packed ones (`pack_to_int32(..., packed_dim=0)`).
#[derive(Debug, Clone)]
pub struct Ct {
    pub(super) codes: Part,
    pub(super) layout: CtCodes,
    pub(super) scales: (Part, Dtype),
    pub(super) zeros: Option<Part>,
    pub(super) groups_of: Option<Vec<u32>>,
    pub(super) groups: u64,
    pub(super) group_size: u64,
    pub(super) out: u64,
    pub(super) input: u64,
}

/// The parts of a compressed-tensors weight.
pub struct CtParts {
    /// `weight_packed` (int32) or `weight` (int8).
    pub codes: Part,
    /// `weight_shape` (`[out, in]`), for packed codes.
    pub shape: Option<Part>,
    /// `weight_scale`.
    pub scales: Part,
    /// `weight_zero_point`.
    pub zeros: Option<Part>,
    /// `weight_g_idx`.
    pub g_idx: Option<Part>,
}

impl Ct {
    /// Validate compressed-tensors parts; `bits` is the declared `num_bits` when the config gives one.
    pub fn new(src: &SafetensorsSource, p: CtParts, bits: Option<u32>) -> Result<Ct, Unsupported> {
        let cs = shape_of(src, p.codes);
        let &[out, cols] = cs.as_slice() else {
            return Err(format!("codes {cs:?} are not 2-D"));
        };
        let (layout, input) = match (dtype_of(src, p.codes), p.shape) {
            (Some(Dtype::I8), _) => (CtCodes::Int8, cols),
            (Some(Dtype::I32 | Dtype::U32), Some(shape)) => {
                let [rows, input] = read_pair(src, shape)?;
                if rows != out {
                    return Err(format!(
                        "weight_shape [{rows}, {input}] against codes {cs:?}"
                    ));
                }
                // The declared width when it gives this many words per row (a config may mix widths), else
                // the only width that does.
                let fits = |b: u32| input.div_ceil(u64::from(32 / b)) == cols;
                let fitting: Vec<u32> = [2, 4, 8].into_iter().filter(|&b| fits(b)).collect();
                let bits = match (bits, fitting.as_slice()) {
                    (Some(b), _) if matches!(b, 2 | 4 | 8) && fits(b) => b,
                    (_, [b]) => *b,
                    (_, []) => return Err(format!("no code width packs {input} inputs in {cols} words")),
                    (_, _) => {
                        return Err(format!(
                            "{input} inputs in {cols} words fit {fitting:?}-bit codes; num_bits not declared"
                        ))
                    }
                };
                (CtCodes::Packed(bits), input)
            }
            (Some(Dtype::I32 | Dtype::U32), None) => return Err("no weight_shape".into()),
            (d, _) => return Err(format!("codes are {d:?}")),
        };
        let ss = shape_of(src, p.scales);
        let groups = match ss.as_slice() {
            [o, g] if *o == out && *g > 0 => *g,
            [o] if *o == out => 1,
            _ => return Err(format!("weight_scale {ss:?} against [{out}, {input}]")),
        };
        let scales = float_part(src, p.scales, out * groups)?;
        let group_size = input.div_ceil(groups);
        let groups_of = match p.g_idx {
            Some(part) => Some(read_g_idx(src, part, input, groups)?),
            None => None,
        };
        let zeros = match (p.zeros, layout) {
            (None, _) => None,
            (Some(z), CtCodes::Int8) => {
                let ok = dtype_of(src, z) == Some(Dtype::I8)
                    && shape_of(src, z).iter().product::<u64>() == out * groups;
                if !ok {
                    return Err(format!(
                        "weight_zero_point {:?} against int8 codes",
                        shape_of(src, z)
                    ));
                }
                Some(z)
            }
            (Some(z), CtCodes::Packed(bits)) => {
                let rows = out.div_ceil(u64::from(32 / bits));
                Some(int32_part(src, z, [rows, groups])?)
            }
        };
        Ok(Ct {
            codes: p.codes,
            layout,
            scales,
            zeros,
            groups_of,
            groups,
            group_size,
            out,
            input,
        })
    }

    /// Code width.
    pub(super) fn bits(&self) -> u32 {
        match self.layout {
            CtCodes::Packed(b) => b,
            CtCodes::Int8 => 8,
        }
    }

    pub(super) fn decode_row(
        &self,
        src: &SafetensorsSource,
        n: u64,
        k0: u64,
        out: &mut [f32],
    ) -> Option<()> {
        let codes = raw(src, self.codes).ok()?;
        let sc = raw(src, self.scales.0).ok()?;
        let zeros = match self.zeros {
            Some(z) => Some(raw(src, z).ok()?),
            None => None,
        };
        // Packed codes and zero points are stored plus 2^(bits − 1).
        let offset = |bits: u32| (1u32 << (bits - 1)) as f32;
        let row = match self.layout {
            CtCodes::Packed(bits) => {
                let words = self.input.div_ceil(u64::from(32 / bits));
                Some(BitRow::new(codes, n * words, words, bits)?)
            }
            CtCodes::Int8 => None,
        };
        let zero_of = |g: u64| -> Option<f32> {
            let Some(z) = zeros else { return Some(0.0) };
            match self.layout {
                CtCodes::Int8 => Some(f32::from(
                    *z.get(usize::try_from(n * self.groups + g).ok()?)? as i8,
                )),
                // Packed down the rows: row `n`'s zero point of group `g` is code `n` of column `g`.
                CtCodes::Packed(bits) => {
                    Some(packed(z, g, self.groups, n, bits)? as f32 - offset(bits))
                }
            }
        };
        let (mut last, mut scale, mut zero) = (u64::MAX, 0f32, 0f32);
        for (k, o) in (k0..).zip(out.iter_mut()) {
            let g = match &self.groups_of {
                Some(map) => u64::from(*map.get(usize::try_from(k).ok()?)?),
                None => k / self.group_size,
            };
            if g != last {
                scale = float(sc, self.scales.1, n * self.groups + g)?;
                zero = zero_of(g)?;
                last = g;
            }
            let q = match &row {
                Some(row) => row.code(k) as f32 - offset(self.bits()),
                None => f32::from(*codes.get(usize::try_from(n * self.input + k).ok()?)? as i8),
            };
            *o = (q - zero) * scale;
        }
        Some(())
    }
}

/// The two values of a `weight_shape` tensor (int32 or int64).
fn read_pair(src: &SafetensorsSource, part: Part) -> Result<[u64; 2], Unsupported> {
    let bytes = raw(src, part)?;
    let values: Vec<i64> = match (dtype_of(src, part), bytes.len()) {
        (Some(Dtype::I32), 8) => bytes
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        (Some(Dtype::I64), 16) => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])))
            .collect(),
        (d, _) => {
            return Err(format!(
                "weight_shape is {d:?} {:?}, expected two integers",
                shape_of(src, part)
            ))
        }
    };
    match values.as_slice() {
        [r, c] if *r > 0 && *c > 0 => Ok([*r as u64, *c as u64]),
        _ => Err(format!("weight_shape holds {values:?}")),
    }
}
