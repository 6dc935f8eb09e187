//! Microscaled floating-point weights (OCP MX and NVIDIA's NVFP4): small float codes, each group of 16 or 32
//! sharing one 8-bit scale, times an optional tensor-wide factor.
//!
//! | scheme | code | group | scale | tensor factor |
//! |---|---|---|---|---|
//! | MXFP4 | E2M1, two per byte, even element in the low nibble | 32 | E8M0 (`2^(b−127)`) | none |
//! | NVFP4 | E2M1, packed alike | 16 | E4M3 | ModelOpt `weight_scale_2` (times); compressed-tensors `weight_global_scale` (divides) |
//! | MXFP8 | E4M3, one per byte | 32 | E8M0 | none |
//!
//! `W[s][k] = code(s, k) · scale(s, k / group) · factor`, over stored rows `s` of `input` values. The codes may
//! be stored as bytes (compressed-tensors, ModelOpt, gpt-oss) or as little-endian 32-bit words (MLX): the byte
//! stream is the same.
//!
//! gpt-oss (transformers' `Mxfp4GptOssExperts`) stores its fused experts as `*_blocks` `[E, N, G, 16]` and
//! `*_scales` `[E, N, G]`, rows of the output dimension; transformers' `convert_moe_packed_tensors` dequantizes
//! and transposes them to `[E, G·32, N]`, the shape of the BF16 checkpoints made from it. The logical weight
//! here has that shape too, so a dequantized copy pairs tensor for tensor with its source.

use super::{dtype_of, for_groups, name_of, raw, segment_groups, shape_of, Part, Unsupported};
use crate::weights::SafetensorsSource;
use provsearch_formats::dtype::{decode_to_f32, Dtype};

/// E2M1 values by 4-bit code: bit 3 the sign, then two exponent bits and one mantissa bit.
const E2M1: [f32; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

/// Which microscaled scheme a weight uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// E2M1 codes, E8M0 scales.
    Mxfp4,
    /// E2M1 codes, E4M3 scales.
    Nvfp4,
    /// E4M3 codes, E8M0 scales.
    Mxfp8,
}

impl Scheme {
    /// Bits per code.
    pub fn bits(self) -> u64 {
        match self {
            Scheme::Mxfp4 | Scheme::Nvfp4 => 4,
            Scheme::Mxfp8 => 8,
        }
    }

    /// How the scale bytes are read.
    fn scale_dtype(self) -> Dtype {
        match self {
            Scheme::Mxfp4 | Scheme::Mxfp8 => Dtype::F8E8M0,
            Scheme::Nvfp4 => Dtype::F8E4M3,
        }
    }

    /// The name used as the tensors' dtype and in `quantization`.
    pub fn label(self) -> &'static str {
        match self {
            Scheme::Mxfp4 => "mxfp4",
            Scheme::Nvfp4 => "nvfp4",
            Scheme::Mxfp8 => "mxfp8",
        }
    }
}

/// How stored rows map to the logical weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// Stored rows are the logical rows: `[rows, input]`.
    Rows,
    /// gpt-oss fused experts: stored `[experts, N, input]`, logical `[experts, input, N]`.
    ExpertsTransposed {
        /// Number of experts.
        experts: u64,
    },
}

/// The stored parts of a microscaled weight.
#[derive(Debug, Clone, Copy)]
pub struct MicroParts {
    /// The codes (U8 bytes, U32/I32 words, or an F4 tensor).
    pub codes: Part,
    /// One scale byte per group (U8, F8_E8M0 or F8_E4M3).
    pub scales: Part,
}

/// A validated microscaled weight.
#[derive(Debug, Clone)]
pub struct Micro {
    pub(super) codes: Part,
    pub(super) scales: Part,
    pub(super) scheme: Scheme,
    pub(super) arrangement: Arrangement,
    /// Tensor-wide factor every value is multiplied by.
    pub(super) factor: f32,
    /// Stored rows.
    pub(super) rows: u64,
    /// Values per stored row.
    pub(super) input: u64,
    pub(super) group: u64,
}

impl Micro {
    /// Validate the parts of a weight of `rows` stored rows of `input` values (the caller derives them from
    /// the layout), with `factor` applied to every value.
    pub fn new(
        src: &SafetensorsSource,
        parts: MicroParts,
        scheme: Scheme,
        arrangement: Arrangement,
        [rows, input]: [u64; 2],
        factor: f32,
    ) -> Result<Micro, Unsupported> {
        if rows == 0 || input == 0 || input % 2 != 0 {
            return Err(format!("{rows} rows of {input} values"));
        }
        if let Arrangement::ExpertsTransposed { experts } = arrangement {
            if experts == 0 || rows % experts != 0 {
                return Err(format!("{rows} rows do not split into {experts} experts"));
            }
        }
        if !factor.is_finite() || factor == 0.0 {
            return Err(format!("tensor scale {factor}"));
        }
        let code_bytes = rows
            .checked_mul(input)
            .and_then(|n| n.checked_mul(scheme.bits()))
            .map(|b| b / 8)
            .ok_or("shape overflows")?;
        let stored = stored_bytes(src, parts.codes);
        let code_dtype_ok = matches!(
            dtype_of(src, parts.codes),
            Some(Dtype::U8 | Dtype::I8 | Dtype::U32 | Dtype::I32)
        ) || (dtype_of(src, parts.codes) == Some(Dtype::F4)
            && scheme.bits() == 4);
        if !code_dtype_ok || stored != Some(code_bytes) {
            return Err(format!(
                "`{}` is {:?} {:?}, expected {code_bytes} bytes of {}-bit codes",
                name_of(src, parts.codes),
                dtype_of(src, parts.codes),
                shape_of(src, parts.codes),
                scheme.bits()
            ));
        }
        // The group size follows from the scale count: one scale per group of each row.
        let scale_count: u64 = shape_of(src, parts.scales).iter().product();
        let per_row = scale_count / rows;
        let scale_dtype_ok = matches!(
            (dtype_of(src, parts.scales), scheme.scale_dtype()),
            (Some(Dtype::U8), _)
                | (Some(Dtype::F8E8M0), Dtype::F8E8M0)
                | (Some(Dtype::F8E4M3), Dtype::F8E4M3)
        );
        if !scale_dtype_ok || per_row == 0 || per_row * rows != scale_count || input % per_row != 0
        {
            return Err(format!(
                "`{}` is {:?} {:?}: not one {} scale per group of {rows} rows of {input}",
                name_of(src, parts.scales),
                dtype_of(src, parts.scales),
                shape_of(src, parts.scales),
                scheme.scale_dtype().name()
            ));
        }
        Ok(Micro {
            codes: parts.codes,
            scales: parts.scales,
            scheme,
            arrangement,
            factor,
            rows,
            input,
            group: input / per_row,
        })
    }

    /// Logical shape.
    pub fn shape(&self) -> Vec<u64> {
        match self.arrangement {
            Arrangement::Rows => vec![self.rows, self.input],
            Arrangement::ExpertsTransposed { experts } => {
                vec![experts, self.input, self.rows / experts]
            }
        }
    }

    /// The scheme's name.
    pub fn label(&self) -> String {
        self.scheme.label().to_string()
    }

    /// Layout details for the fingerprint's note.
    pub fn detail(&self) -> String {
        let mut d = format!(
            "{} scales per {}",
            self.scheme.scale_dtype().name(),
            self.group
        );
        if self.factor != 1.0 {
            d.push_str(", tensor scale");
        }
        if let Arrangement::ExpertsTransposed { .. } = self.arrangement {
            d.push_str(", gpt-oss experts read as [experts, in, out]");
        }
        d
    }

    /// Whether logical rows are stored rows (so a range of them can be released).
    pub(super) fn row_major(&self) -> bool {
        self.arrangement == Arrangement::Rows
    }

    /// Elements of the stored code tensor per stored row (bytes, words or F4 values).
    pub(super) fn stored_per_row(&self, src: &SafetensorsSource) -> u64 {
        shape_of(src, self.codes).iter().product::<u64>() / self.rows
    }

    /// Decode logical elements `start .. start + out.len()`.
    pub fn decode(&self, src: &SafetensorsSource, start: u64, out: &mut [f32]) -> Option<()> {
        let codes = raw(src, self.codes).ok()?;
        let scales = raw(src, self.scales).ok()?;
        match self.arrangement {
            Arrangement::Rows => super::for_rows(self.input, start, out, |s, k, seg| {
                self.decode_run(codes, scales, s, k, seg)
            }),
            Arrangement::ExpertsTransposed { experts } => {
                // Logical (e, k, n) is stored (e, n, k): every element of a logical row lies in another
                // stored row. Only sampled rows are read this way, so the per-element walk is cheap enough.
                let n_out = self.rows / experts;
                for (i, o) in (start..).zip(out.iter_mut()) {
                    let (e, k, n) = (
                        i / (self.input * n_out),
                        (i / n_out) % self.input,
                        i % n_out,
                    );
                    *o = self.value(codes, scales, e * n_out + n, k)?;
                }
                Some(())
            }
        }
    }

    /// The value at stored row `s`, column `k`.
    fn value(&self, codes: &[u8], scales: &[u8], s: u64, k: u64) -> Option<f32> {
        let group = usize::try_from(s * (self.input / self.group) + k / self.group).ok()?;
        let mut scale = [0f32];
        decode_to_f32(
            self.scheme.scale_dtype(),
            scales.get(group..group.checked_add(1)?)?,
            &mut scale,
        );
        let at = usize::try_from((s * self.input + k) * self.scheme.bits() / 8).ok()?;
        Some(self.code(*codes.get(at)?, k) * scale[0] * self.factor)
    }

    /// The value of column `k`'s code, from the byte that holds it.
    #[inline]
    fn code(&self, byte: u8, k: u64) -> f32 {
        match self.scheme {
            Scheme::Mxfp4 | Scheme::Nvfp4 => E2M1[usize::from((byte >> (4 * (k % 2))) & 0x0F)],
            Scheme::Mxfp8 => {
                let mut v = [0f32];
                decode_to_f32(Dtype::F8E4M3, &[byte], &mut v);
                v[0]
            }
        }
    }

    /// Decode stored row `s` from column `k0` into `out`.
    fn decode_run(
        &self,
        codes: &[u8],
        scales: &[u8],
        s: u64,
        k0: u64,
        out: &mut [f32],
    ) -> Option<()> {
        let bits = self.scheme.bits();
        let groups = self.input / self.group;
        let at = [s, groups, self.group];
        let group_scales = segment_groups(scales, self.scheme.scale_dtype(), at, k0, out.len())?;
        let row = codes.get(usize::try_from(s * self.input * bits / 8).ok()?..)?;
        for_groups(self.group, k0, out, |i, k, span| {
            let scale = *group_scales.get(i)? * self.factor;
            for (o, k) in span.iter_mut().zip(k..) {
                let byte = *row.get(usize::try_from(k * bits / 8).ok()?)?;
                *o = self.code(byte, k) * scale;
            }
            Some(())
        })
    }
}

/// Bytes a stored part occupies, from its dtype and shape.
fn stored_bytes(src: &SafetensorsSource, part: Part) -> Option<u64> {
    let dtype = dtype_of(src, part)?;
    let numel: u64 = shape_of(src, part).iter().product();
    numel.checked_mul(dtype.bits()).map(|b| b.div_ceil(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2m1_codes_are_the_ocp_values() {
        // Sign bit 3; exponent bits 2..1 and mantissa bit 0: code 0b0101 is 2^(2−1)·1.5 = 3.
        assert_eq!(E2M1[0b0101], 3.0);
        assert_eq!(E2M1[0b0001], 0.5, "subnormal: 0.5 · 2^0");
        assert_eq!(E2M1[0b1111], -6.0);
        assert!(E2M1[0b1000].is_sign_negative());
    }
}
