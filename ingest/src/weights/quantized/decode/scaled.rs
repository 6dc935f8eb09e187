//! bitsandbytes (LLM.int8 rows, NF4/FP4 nibbles with block maxima) and FP8 (per-block, per-row or per-tensor
//! scales): one stored byte or nibble per value, in the weight's own row-major order.

use super::{dtype_of, float, float_part, for_rows, raw, read_floats, shape_of, Part, Unsupported};
use crate::weights::quantized::config::QuantConfig;
use crate::weights::SafetensorsSource;
use provsearch_formats::dtype::{decode_to_f32, Dtype};

/// bitsandbytes 8-bit parts.
#[derive(Debug, Clone)]
pub struct Bnb8 {
    pub(super) weight: Part,
    pub(super) scb: (Part, Dtype),
    pub(super) out: u64,
    pub(super) input: u64,
}

/// bitsandbytes 4-bit parts and state.
#[derive(Debug, Clone)]
pub struct Bnb4 {
    pub(super) weight: Part,
    pub(super) absmax: (Part, Dtype),
    pub(super) quant_map: [f32; 16],
    pub(super) nested: Option<Nested>,
    pub(super) blocksize: u64,
    pub(super) shape: Vec<u64>,
    pub(super) fp4: bool,
}

/// Double quantization of the 4-bit block maxima.
#[derive(Debug, Clone)]
pub struct Nested {
    pub(super) absmax: (Part, Dtype),
    pub(super) quant_map: Box<[f32; 256]>,
    pub(super) blocksize: u64,
    pub(super) offset: f32,
}

/// FP8 parts.
#[derive(Debug, Clone)]
pub struct Fp8 {
    pub(super) weight: (Part, Dtype),
    pub(super) scale: Fp8Scale,
    pub(super) shape: Vec<u64>,
}

/// How FP8 values are scaled.
#[derive(Debug, Clone)]
pub enum Fp8Scale {
    /// No scale stored: the values are the weights.
    None,
    /// One scale for the tensor.
    Tensor(f32),
    /// One scale per row (`weight_scale` `[out]` or `[out, 1]`).
    Row(Part, Dtype),
    /// One scale per `[rows, cols]` block (`weight_scale_inv`).
    Block(Part, Dtype, [u64; 2]),
}

impl Bnb8 {
    /// Validate LLM.int8 parts.
    pub fn new(src: &SafetensorsSource, weight: Part, scb: Part) -> Result<Bnb8, Unsupported> {
        let ws = shape_of(src, weight);
        let &[out, input] = ws.as_slice() else {
            return Err(format!("int8 weight {ws:?} is not 2-D"));
        };
        if dtype_of(src, weight) != Some(Dtype::I8) {
            return Err("LLM.int8 weight is not int8".into());
        }
        Ok(Bnb8 {
            weight,
            scb: float_part(src, scb, out)?,
            out,
            input,
        })
    }
}

/// Parameters of a bitsandbytes 4-bit weight, from its packed quant_state JSON.
pub struct Bnb4Parts {
    /// `weight` (uint8).
    pub weight: Part,
    /// `weight.absmax`.
    pub absmax: Part,
    /// `weight.quant_map`.
    pub quant_map: Part,
    /// `weight.quant_state.bitsandbytes__*`.
    pub state: Part,
    /// `weight.nested_absmax` and `weight.nested_quant_map`.
    pub nested: Option<(Part, Part)>,
}

impl Bnb4 {
    /// Validate NF4/FP4 parts and parse the quant_state JSON.
    pub fn new(src: &SafetensorsSource, p: Bnb4Parts) -> Result<Bnb4, Unsupported> {
        let state = raw(src, p.state)?;
        let json: serde_json::Value =
            serde_json::from_slice(state).map_err(|e| format!("quant_state is not JSON: {e}"))?;
        let quant_type = json
            .get("quant_type")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let fp4 = match quant_type {
            "nf4" => false,
            "fp4" => true,
            t => return Err(format!("4-bit quant_type `{t}`")),
        };
        let shape: Vec<u64> = json
            .get("shape")
            .and_then(|v| v.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect())
            .ok_or("quant_state has no shape")?;
        let numel = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("quant_state shape {shape:?}"))?;
        let blocksize = json
            .get("blocksize")
            .and_then(|v| v.as_u64())
            .filter(|&b| b > 0)
            .ok_or("quant_state has no blocksize")?;
        let packed = shape_of(src, p.weight).iter().product::<u64>();
        if dtype_of(src, p.weight) != Some(Dtype::U8) || packed != numel.div_ceil(2) {
            return Err(format!(
                "packed weight holds {packed} bytes, {numel} values need {}",
                numel.div_ceil(2)
            ));
        }
        let blocks = numel.div_ceil(blocksize);
        let quant_map = read_floats::<16>(src, p.quant_map)?;
        let (absmax, nested) = match p.nested {
            None => (float_part(src, p.absmax, blocks)?, None),
            Some((n_absmax, n_map)) => {
                let ok = dtype_of(src, p.absmax) == Some(Dtype::U8)
                    && shape_of(src, p.absmax).iter().product::<u64>() == blocks;
                if !ok {
                    return Err(format!("nested absmax is not {blocks} uint8 codes"));
                }
                let n_bs = json
                    .get("nested_blocksize")
                    .and_then(|v| v.as_u64())
                    .filter(|&b| b > 0)
                    .ok_or("quant_state has no nested_blocksize")?;
                let offset = json
                    .get("nested_offset")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0) as f32;
                let nested = Nested {
                    absmax: float_part(src, n_absmax, blocks.div_ceil(n_bs))?,
                    quant_map: Box::new(read_floats::<256>(src, n_map)?),
                    blocksize: n_bs,
                    offset,
                };
                ((p.absmax, Dtype::U8), Some(nested))
            }
        };
        Ok(Bnb4 {
            weight: p.weight,
            absmax,
            quant_map,
            nested,
            blocksize,
            shape,
            fp4,
        })
    }

    pub(super) fn absmax(&self, am: &[u8], nested: &[u8], block: u64) -> Option<f32> {
        match &self.nested {
            None => float(am, self.absmax.1, block),
            Some(n) => {
                let code = *am.get(usize::try_from(block).ok()?)?;
                let scale = float(nested, n.absmax.1, block / n.blocksize)?;
                Some(n.quant_map[code as usize] * scale + n.offset)
            }
        }
    }

    pub(super) fn decode(
        &self,
        src: &SafetensorsSource,
        start: u64,
        out: &mut [f32],
    ) -> Option<()> {
        let w = raw(src, self.weight).ok()?;
        let am = raw(src, self.absmax.0).ok()?;
        let nested = match &self.nested {
            Some(n) => raw(src, n.absmax.0).ok()?,
            None => &[],
        };
        let (mut i, mut done) = (start, 0usize);
        // One absmax per block; two codes per byte, high nibble first.
        while done < out.len() {
            let take = ((self.blocksize - i % self.blocksize) as usize).min(out.len() - done);
            let scale = self.absmax(am, nested, i / self.blocksize)?;
            for (j, o) in (i..).zip(&mut out[done..done + take]) {
                let byte = *w.get(usize::try_from(j / 2).ok()?)?;
                let code = if j % 2 == 0 { byte >> 4 } else { byte & 15 };
                *o = self.quant_map[code as usize] * scale;
            }
            (i, done) = (i + take as u64, done + take);
        }
        Some(())
    }
}

impl Fp8 {
    /// Validate FP8 parts: the weight and at most one kind of scale.
    pub fn new(
        src: &SafetensorsSource,
        weight: Part,
        scale_inv: Option<Part>,
        scale: Option<Part>,
        cfg: &QuantConfig,
    ) -> Result<Fp8, Unsupported> {
        let dtype = dtype_of(src, weight)
            .filter(|d| matches!(d, Dtype::F8E4M3 | Dtype::F8E5M2))
            .ok_or("weight is not FP8")?;
        let shape = shape_of(src, weight);
        let rows = shape.first().copied().unwrap_or(1);
        let numel: u64 = shape.iter().product();
        let cols = numel.checked_div(rows).unwrap_or(0);
        let scale = match (scale_inv, scale) {
            (Some(part), _) => {
                let [br, bc] = cfg.weight_block_size.unwrap_or([128, 128]);
                if shape.len() != 2 || br == 0 || bc == 0 {
                    return Err(format!("block scales on a {shape:?} weight"));
                }
                let want = [rows.div_ceil(br), cols.div_ceil(bc)];
                let (p, d) = float_part(src, part, want[0] * want[1])?;
                if shape_of(src, part) != want {
                    return Err(format!(
                        "weight_scale_inv {:?} does not tile {shape:?} in {br}x{bc} blocks",
                        shape_of(src, part)
                    ));
                }
                Fp8Scale::Block(p, d, [br, bc])
            }
            (None, Some(part)) => {
                let n: u64 = shape_of(src, part).iter().product();
                if n == 1 {
                    let [v] = read_floats::<1>(src, part)?;
                    Fp8Scale::Tensor(v)
                } else if n == rows {
                    let (p, d) = float_part(src, part, rows)?;
                    Fp8Scale::Row(p, d)
                } else {
                    return Err(format!(
                        "weight_scale {:?} is neither per-tensor nor per-row",
                        shape_of(src, part)
                    ));
                }
            }
            (None, None) => Fp8Scale::None,
        };
        Ok(Fp8 {
            weight: (weight, dtype),
            scale,
            shape,
        })
    }

    pub(super) fn decode(
        &self,
        src: &SafetensorsSource,
        start: u64,
        out: &mut [f32],
    ) -> Option<()> {
        let w = raw(src, self.weight.0).ok()?;
        let from = usize::try_from(start).ok()?;
        let bytes = w.get(from..from.checked_add(out.len())?)?;
        let table = fp8_table(self.weight.1);
        match &self.scale {
            Fp8Scale::None => decode_with(table, bytes, out, 1.0),
            Fp8Scale::Tensor(s) => decode_with(table, bytes, out, *s),
            Fp8Scale::Row(part, dtype) => {
                let s = raw(src, *part).ok()?;
                let cols = self.shape.iter().skip(1).product::<u64>().max(1);
                for_rows(cols, start, out, |r, c0, seg| {
                    let at = (r * cols + c0 - start) as usize;
                    decode_with(
                        table,
                        bytes.get(at..at + seg.len())?,
                        seg,
                        float(s, *dtype, r)?,
                    );
                    Some(())
                })?;
            }
            Fp8Scale::Block(part, dtype, [br, bc]) => {
                let s = raw(src, *part).ok()?;
                let cols = self.shape.get(1).copied().unwrap_or(1).max(1);
                let s_cols = cols.div_ceil(*bc);
                for_rows(cols, start, out, |r, c0, seg| {
                    let base = (r / br) * s_cols;
                    let mut at = (r * cols + c0 - start) as usize;
                    let (mut c, mut done) = (c0, 0usize);
                    // One scale per run of columns inside a block.
                    while done < seg.len() {
                        let take = ((bc - c % bc) as usize).min(seg.len() - done);
                        let scale = float(s, *dtype, base + c / bc)?;
                        decode_with(
                            table,
                            bytes.get(at..at + take)?,
                            &mut seg[done..done + take],
                            scale,
                        );
                        (c, done, at) = (c + take as u64, done + take, at + take);
                    }
                    Some(())
                })?;
            }
        }
        Some(())
    }
}

/// Every FP8 byte's value, for E4M3 (finite-only `float8_e4m3fn`) and E5M2.
fn fp8_table(dtype: Dtype) -> &'static [f32; 256] {
    static E4M3: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    static E5M2: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    let cell = if dtype == Dtype::F8E5M2 { &E5M2 } else { &E4M3 };
    cell.get_or_init(|| {
        let mut t = [0f32; 256];
        for (b, v) in t.iter_mut().enumerate() {
            decode_to_f32(dtype, &[b as u8], std::slice::from_mut(v));
        }
        t
    })
}

/// `out[i] = table[bytes[i]] · scale`.
#[inline]
fn decode_with(table: &[f32; 256], bytes: &[u8], out: &mut [f32], scale: f32) {
    for (o, &b) in out.iter_mut().zip(bytes) {
        *o = table[b as usize] * scale;
    }
}
