//! ggml tensor types and their dequantization to `f32`, one whole block at a time.
//!
//! Block layouts follow ggml (`ggml-common.h`) and llama.cpp's gguf-py `quants.py`; every kernel reads
//! little-endian fields from a byte slice, so nothing here needs alignment or `unsafe`.

use half::f16;
use std::fmt;

/// Elements per super-block of the K-quants.
pub const QK_K: usize = 256;

/// Largest block size of any supported type (the K-quants' 256).
pub const MAX_BLOCK: usize = QK_K;

/// A ggml tensor type as stored in a GGUF tensor info (`ggml_type`).
///
/// Every type here has a known block size and byte size, so a file using it parses; [`GgmlType::can_dequantize`]
/// tells which ones [`dequantize`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// IEEE single precision (0).
    F32,
    /// IEEE half precision (1).
    F16,
    /// 4-bit, scale only, blocks of 32 (2).
    Q4_0,
    /// 4-bit, scale and minimum, blocks of 32 (3).
    Q4_1,
    /// 5-bit, scale only, blocks of 32 (6).
    Q5_0,
    /// 5-bit, scale and minimum, blocks of 32 (7).
    Q5_1,
    /// 8-bit, scale only, blocks of 32 (8).
    Q8_0,
    /// 8-bit with scale and block sum, blocks of 32 (9).
    Q8_1,
    /// 2-bit K-quant (10).
    Q2K,
    /// 3-bit K-quant (11).
    Q3K,
    /// 4-bit K-quant (12).
    Q4K,
    /// 5-bit K-quant (13).
    Q5K,
    /// 6-bit K-quant (14).
    Q6K,
    /// 8-bit K-quant, f32 scale (15).
    Q8K,
    /// IQ2_XXS (16).
    IQ2_XXS,
    /// IQ2_XS (17).
    IQ2_XS,
    /// IQ3_XXS (18).
    IQ3_XXS,
    /// IQ1_S (19).
    IQ1_S,
    /// IQ4_NL: 4-bit non-linear, blocks of 32 (20).
    IQ4_NL,
    /// IQ3_S (21).
    IQ3_S,
    /// IQ2_S (22).
    IQ2_S,
    /// IQ4_XS: 4-bit non-linear with 6-bit sub-block scales, blocks of 256 (23).
    IQ4_XS,
    /// Signed 8-bit integer (24).
    I8,
    /// Signed 16-bit integer (25).
    I16,
    /// Signed 32-bit integer (26).
    I32,
    /// Signed 64-bit integer (27).
    I64,
    /// IEEE double precision (28).
    F64,
    /// IQ1_M (29).
    IQ1_M,
    /// bfloat16 (30).
    BF16,
    /// Ternary, base-3 packed (34).
    TQ1_0,
    /// Ternary, 2 bits per weight (35).
    TQ2_0,
    /// MXFP4: e2m1 values with a shared e8m0 exponent, blocks of 32 (39).
    MXFP4,
}

/// Why [`dequantize`] could not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DequantError {
    /// The type is known but this build has no decoder for it.
    Unsupported(GgmlType),
    /// `blocks` is not a whole number of blocks, or `out` does not have room for exactly those blocks.
    Length {
        /// Type being decoded.
        ty: GgmlType,
        /// Bytes given.
        bytes: usize,
        /// Output elements given.
        out: usize,
    },
}

impl fmt::Display for DequantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DequantError::Unsupported(ty) => write!(
                f,
                "no dequantizer for ggml type {} ({})",
                ty.name(),
                ty.id()
            ),
            DequantError::Length { ty, bytes, out } => write!(
                f,
                "{} bytes and {} output elements are not whole {} blocks ({} elements in {} bytes)",
                bytes,
                out,
                ty.name(),
                ty.block_size(),
                ty.type_size()
            ),
        }
    }
}

impl std::error::Error for DequantError {}

impl GgmlType {
    /// Every known type, in id order.
    pub const ALL: [GgmlType; 32] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::IQ2_XXS,
        GgmlType::IQ2_XS,
        GgmlType::IQ3_XXS,
        GgmlType::IQ1_S,
        GgmlType::IQ4_NL,
        GgmlType::IQ3_S,
        GgmlType::IQ2_S,
        GgmlType::IQ4_XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1_M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
    ];

    /// The type with ggml id `id`, if known.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        GgmlType::ALL.iter().copied().find(|t| t.id() == id)
    }

    /// The ggml id stored in GGUF.
    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2K => 10,
            Q3K => 11,
            Q4K => 12,
            Q5K => 13,
            Q6K => 14,
            Q8K => 15,
            IQ2_XXS => 16,
            IQ2_XS => 17,
            IQ3_XXS => 18,
            IQ1_S => 19,
            IQ4_NL => 20,
            IQ3_S => 21,
            IQ2_S => 22,
            IQ4_XS => 23,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            IQ1_M => 29,
            BF16 => 30,
            TQ1_0 => 34,
            TQ2_0 => 35,
            MXFP4 => 39,
        }
    }

    /// ggml's name for the type (`"Q4_K"`, `"BF16"`, ...).
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
            Q8K => "Q8_K",
            IQ2_XXS => "IQ2_XXS",
            IQ2_XS => "IQ2_XS",
            IQ3_XXS => "IQ3_XXS",
            IQ1_S => "IQ1_S",
            IQ4_NL => "IQ4_NL",
            IQ3_S => "IQ3_S",
            IQ2_S => "IQ2_S",
            IQ4_XS => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            IQ1_M => "IQ1_M",
            BF16 => "BF16",
            TQ1_0 => "TQ1_0",
            TQ2_0 => "TQ2_0",
            MXFP4 => "MXFP4",
        }
    }

    /// Elements per block (1 for plain element types).
    pub fn block_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 | F64 | I8 | I16 | I32 | I64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 | IQ4_NL | MXFP4 => 32,
            _ => QK_K,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | I32 => 4,
            F16 | BF16 | I16 => 2,
            F64 | I64 => 8,
            I8 => 1,
            Q4_0 => 2 + 16,
            Q4_1 => 2 + 2 + 16,
            Q5_0 => 2 + 4 + 16,
            Q5_1 => 2 + 2 + 4 + 16,
            Q8_0 => 2 + 32,
            Q8_1 => 4 + 32,
            Q2K => 2 + 2 + QK_K / 16 + QK_K / 4,
            Q3K => 2 + QK_K / 4 + QK_K / 8 + 12,
            Q4K => 2 + 2 + QK_K / 2 + 12,
            Q5K => 2 + 2 + QK_K / 2 + QK_K / 8 + 12,
            Q6K => 2 + QK_K / 2 + QK_K / 4 + QK_K / 16,
            Q8K => 4 + QK_K + QK_K / 8,
            IQ2_XXS => 2 + QK_K / 4,
            IQ2_XS => 2 + QK_K / 4 + QK_K / 32,
            IQ3_XXS => 2 + QK_K / 4 + QK_K / 8,
            IQ1_S => 2 + QK_K / 8 + QK_K / 16,
            IQ4_NL => 2 + 16,
            IQ3_S => 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4,
            IQ2_S => 2 + QK_K / 4 + QK_K / 16,
            IQ4_XS => 2 + 2 + QK_K / 2 + QK_K / 64,
            IQ1_M => QK_K / 8 + QK_K / 16 + QK_K / 32,
            TQ1_0 => 2 + 4 * 13,
            TQ2_0 => 2 + 64,
            MXFP4 => 1 + 16,
        }
    }

    /// Whether [`dequantize`] decodes this type.
    pub fn can_dequantize(self) -> bool {
        use GgmlType::*;
        !matches!(
            self,
            IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S | IQ3_S | IQ2_S | IQ1_M | TQ1_0
        )
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[inline(always)]
fn h(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Dequantize whole blocks: `blocks.len()` must be a multiple of `ty.type_size()` and `out.len()` exactly the
/// matching number of elements. Returns the number of elements written.
///
/// On x86-64 CPUs with AVX2 and F16C the kernels run compiled for those extensions, and Q8_0 and Q6_K for
/// AVX-512 where the CPU has it: the same operations in the same order (Rust never fuses a multiply and an
/// add), so the values are bit for bit those of the baseline build, only computed eight or sixteen lanes at a
/// time.
pub fn dequantize(ty: GgmlType, blocks: &[u8], out: &mut [f32]) -> Result<usize, DequantError> {
    let (bs, ts) = (ty.block_size(), ty.type_size());
    if !blocks.len().is_multiple_of(ts) || blocks.len() / ts * bs != out.len() {
        return Err(DequantError::Length {
            ty,
            bytes: blocks.len(),
            out: out.len(),
        });
    }
    // Sixteen lanes pay for Q8_0 and Q6_K (1.36× and 1.9× the AVX2 build's speed on L2-resident blocks); for
    // the 4-bit types the AVX-512 build measured slower (Q4_K 1.5×, Q4_1 1.08×), so they stay on AVX2.
    #[cfg(target_arch = "x86_64")]
    if matches!(ty, GgmlType::Q8_0 | GgmlType::Q6K)
        && std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU supports AVX-512 F, BW and VL and F16C (checked just above).
        return unsafe { dequantize_avx512(ty, blocks, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU supports AVX2 and F16C (checked just above).
        return unsafe { dequantize_avx2(ty, blocks, out) };
    }
    dequantize_inline(ty, blocks, out)
}

/// [`dequantize`] compiled for AVX2 and F16C whatever the CPU has beyond them (for tests against the dispatched
/// one).
#[cfg(all(test, target_arch = "x86_64"))]
fn dequantize_avx2_only(
    ty: GgmlType,
    blocks: &[u8],
    out: &mut [f32],
) -> Option<Result<usize, DequantError>> {
    (std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("f16c"))
        // SAFETY: the CPU supports AVX2 and F16C (checked just above).
        .then(|| unsafe { dequantize_avx2(ty, blocks, out) })
}

/// [`dequantize`] compiled for AVX-512 (F, BW, VL) and F16C: sixteen lanes at a time, the same operations in
/// the same order (used for the types where that is faster).
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VL, and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,f16c")]
unsafe fn dequantize_avx512(
    ty: GgmlType,
    blocks: &[u8],
    out: &mut [f32],
) -> Result<usize, DequantError> {
    dequantize_inline(ty, blocks, out)
}

/// [`dequantize`] on the baseline instruction set, whatever the CPU (for tests against the dispatched one).
#[cfg(test)]
fn dequantize_baseline(
    ty: GgmlType,
    blocks: &[u8],
    out: &mut [f32],
) -> Result<usize, DequantError> {
    dequantize_inline(ty, blocks, out)
}

/// [`dequantize`] compiled for AVX2 and F16C.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn dequantize_avx2(
    ty: GgmlType,
    blocks: &[u8],
    out: &mut [f32],
) -> Result<usize, DequantError> {
    dequantize_inline(ty, blocks, out)
}

/// The kernels, inlined into [`dequantize`]'s callers for each instruction set. Lengths are checked by the
/// caller.
#[inline(always)]
fn dequantize_inline(ty: GgmlType, blocks: &[u8], out: &mut [f32]) -> Result<usize, DequantError> {
    let (bs, ts) = (ty.block_size(), ty.type_size());
    macro_rules! each {
        ($f:expr) => {
            for (b, o) in blocks.chunks_exact(ts).zip(out.chunks_exact_mut(bs)) {
                $f(b, o);
            }
        };
    }
    use GgmlType::*;
    match ty {
        F32 => each!(|b: &[u8], o: &mut [f32]| o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        F16 => crate::dtype::f16_to_f32(blocks, out),
        BF16 => crate::dtype::bf16_to_f32(blocks, out),
        F64 => each!(|b: &[u8], o: &mut [f32]| o[0] =
            f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32),
        I8 => each!(|b: &[u8], o: &mut [f32]| o[0] = b[0] as i8 as f32),
        I16 => each!(|b: &[u8], o: &mut [f32]| o[0] = i16::from_le_bytes([b[0], b[1]]) as f32),
        I32 => {
            each!(|b: &[u8], o: &mut [f32]| o[0] =
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
        }
        I64 => each!(|b: &[u8], o: &mut [f32]| o[0] =
            i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32),
        Q4_0 => each!(q4_0),
        Q4_1 => each!(q4_1),
        Q5_0 => each!(q5_0),
        Q5_1 => each!(q5_1),
        Q8_0 => each!(q8_0),
        Q8_1 => each!(q8_1),
        Q2K => each!(q2_k),
        Q3K => each!(q3_k),
        Q4K => each!(q4_k),
        Q5K => each!(q5_k),
        Q6K => each!(q6_k),
        Q8K => each!(q8_k),
        IQ4_NL => each!(iq4_nl),
        IQ4_XS => each!(iq4_xs),
        TQ2_0 => each!(tq2_0),
        MXFP4 => each!(mxfp4),
        IQ2_XXS | IQ2_XS | IQ3_XXS | IQ1_S | IQ3_S | IQ2_S | IQ1_M | TQ1_0 => {
            return Err(DequantError::Unsupported(ty));
        }
    }
    Ok(out.len())
}

// Each kernel gets exactly one block (`b.len() == type_size`) and its `block_size` outputs.

#[inline(always)]
fn q4_0(b: &[u8], o: &mut [f32]) {
    let d = h(b, 0);
    let qs = &b[2..18];
    for (j, &q) in qs.iter().enumerate() {
        o[j] = d * ((q & 0x0f) as i32 - 8) as f32;
        o[j + 16] = d * ((q >> 4) as i32 - 8) as f32;
    }
}

#[inline(always)]
fn q4_1(b: &[u8], o: &mut [f32]) {
    let (d, m) = (h(b, 0), h(b, 2));
    let qs = &b[4..20];
    for (j, &q) in qs.iter().enumerate() {
        o[j] = d * (q & 0x0f) as f32 + m;
        o[j + 16] = d * (q >> 4) as f32 + m;
    }
}

#[inline(always)]
fn q5_0(b: &[u8], o: &mut [f32]) {
    let d = h(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for (j, &q) in qs.iter().enumerate() {
        let lo = (q & 0x0f) as u32 | (((qh >> j) & 1) << 4);
        let hi = (q >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4);
        o[j] = d * (lo as i32 - 16) as f32;
        o[j + 16] = d * (hi as i32 - 16) as f32;
    }
}

#[inline(always)]
fn q5_1(b: &[u8], o: &mut [f32]) {
    let (d, m) = (h(b, 0), h(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for (j, &q) in qs.iter().enumerate() {
        let lo = (q & 0x0f) as u32 | (((qh >> j) & 1) << 4);
        let hi = (q >> 4) as u32 | (((qh >> (j + 16)) & 1) << 4);
        o[j] = d * lo as f32 + m;
        o[j + 16] = d * hi as f32 + m;
    }
}

#[inline(always)]
fn q8_0(b: &[u8], o: &mut [f32]) {
    let d = h(b, 0);
    for (y, &q) in o.iter_mut().zip(&b[2..34]) {
        *y = d * (q as i8) as f32;
    }
}

#[inline(always)]
fn q8_1(b: &[u8], o: &mut [f32]) {
    // d (f16), s = d * sum(qs) (f16, unused here), qs[32].
    let d = h(b, 0);
    for (y, &q) in o.iter_mut().zip(&b[4..36]) {
        *y = d * (q as i8) as f32;
    }
}

#[inline(always)]
fn q2_k(b: &[u8], o: &mut [f32]) {
    // scales[16] (low nibble scale, high nibble min), qs[64], d, dmin. Elements half·128 + shift·32 + k take
    // bits 2·shift of qs[half·32 + k]; each run of 16 has its own scale and min.
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (h(b, 80), h(b, 82));
    for (half, (q, y)) in qs.chunks_exact(32).zip(o.chunks_exact_mut(128)).enumerate() {
        for (shift, y) in y.chunks_exact_mut(32).enumerate() {
            for (part, y) in y.chunks_exact_mut(16).enumerate() {
                let sc = scales[half * 8 + shift * 2 + part];
                let (dl, ml) = (d * (sc & 0x0f) as f32, dmin * (sc >> 4) as f32);
                for (y, &q) in y.iter_mut().zip(&q[part * 16..part * 16 + 16]) {
                    *y = dl * ((q >> (2 * shift)) & 3) as f32 - ml;
                }
            }
        }
    }
}

#[inline(always)]
fn q3_k(b: &[u8], o: &mut [f32]) {
    // hmask[32], qs[64], scales[12] (16 packed 6-bit scales), d. Element e = half·128 + shift·32 + k takes bits
    // 2·shift of qs[half·32 + k] and bit e/32 of hmask[k]; a clear high bit subtracts 4.
    let (hmask, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = h(b, 108);
    let mut scales = [0f32; 16];
    for (i, s) in scales.iter_mut().enumerate() {
        let lo = (sc[i % 8] >> (4 * (i / 8))) & 0x0f;
        let hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        *s = d * (((lo | (hi << 4)) as i32) - 32) as f32;
    }
    for (half, (q, y)) in qs.chunks_exact(32).zip(o.chunks_exact_mut(128)).enumerate() {
        for (shift, y) in y.chunks_exact_mut(32).enumerate() {
            let bit = half * 4 + shift;
            for (part, y) in y.chunks_exact_mut(16).enumerate() {
                let dl = scales[half * 8 + shift * 2 + part];
                let (q, m) = (
                    &q[part * 16..part * 16 + 16],
                    &hmask[part * 16..part * 16 + 16],
                );
                for ((y, &q), &m) in y.iter_mut().zip(q).zip(m) {
                    let lo = ((q >> (2 * shift)) & 3) as i32;
                    let hbit = ((m >> bit) & 1) as i32;
                    *y = dl * (lo - 4 + 4 * hbit) as f32;
                }
            }
        }
    }
}

/// The 8 (scale, min) pairs of Q4_K/Q5_K, 6 bits each, packed in 12 bytes.
#[inline(always)]
fn k_scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

#[inline(always)]
fn q4_k(b: &[u8], o: &mut [f32]) {
    let (d, dmin) = (h(b, 0), h(b, 2));
    let s = &b[4..16];
    let qs = &b[16..144];
    for c in 0..4 {
        for k in 0..2 {
            let (sc, m) = k_scale_min(s, c * 2 + k);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            let base = c * 64 + k * 32;
            for (j, &q) in qs[c * 32..c * 32 + 32].iter().enumerate() {
                o[base + j] = dl * ((q >> (4 * k)) & 0x0f) as f32 - ml;
            }
        }
    }
}

#[inline(always)]
fn q5_k(b: &[u8], o: &mut [f32]) {
    let (d, dmin) = (h(b, 0), h(b, 2));
    let s = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for c in 0..4 {
        for k in 0..2 {
            let sub = c * 2 + k;
            let (sc, m) = k_scale_min(s, sub);
            let (dl, ml) = (d * sc as f32, dmin * m as f32);
            let base = c * 64 + k * 32;
            for j in 0..32 {
                let q = ((qs[c * 32 + j] >> (4 * k)) & 0x0f) | (((qh[j] >> sub) & 1) << 4);
                o[base + j] = dl * q as f32 - ml;
            }
        }
    }
}

#[inline(always)]
fn q6_k(b: &[u8], o: &mut [f32]) {
    // ql[128], qh[64], scales[16] (i8), d. In each half of 128, position l < 32 and its three companions l + 32,
    // l + 64, l + 96 share ql[l], ql[l + 32] (low / high nibbles) and qh[l] (2 bits each); ggml's loop order.
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = h(b, 208);
    let mut scales = [0f32; 16];
    for (s, &c) in scales.iter_mut().zip(sc) {
        *s = d * (c as i8) as f32;
    }
    for half in 0..2 {
        let (ql, qh, sc) = (
            &ql[half * 64..half * 64 + 64],
            &qh[half * 32..half * 32 + 32],
            &scales[half * 8..half * 8 + 8],
        );
        let y = &mut o[half * 128..half * 128 + 128];
        for l in 0..32 {
            let is = l / 16;
            let (a, c, hb) = (ql[l], ql[l + 32], qh[l]);
            let q1 = ((a & 0x0f) | ((hb & 3) << 4)) as i32 - 32;
            let q2 = ((c & 0x0f) | (((hb >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((a >> 4) | (((hb >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((c >> 4) | (((hb >> 6) & 3) << 4)) as i32 - 32;
            y[l] = sc[is] * q1 as f32;
            y[l + 32] = sc[is + 2] * q2 as f32;
            y[l + 64] = sc[is + 4] * q3 as f32;
            y[l + 96] = sc[is + 6] * q4 as f32;
        }
    }
}

#[inline(always)]
fn q8_k(b: &[u8], o: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (y, &q) in o.iter_mut().zip(&b[4..4 + QK_K]) {
        *y = d * (q as i8) as f32;
    }
}

/// IQ4_NL / IQ4_XS code book.
const KVALUES_IQ4NL: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

#[inline(always)]
fn iq4_nl(b: &[u8], o: &mut [f32]) {
    let d = h(b, 0);
    for (j, &q) in b[2..18].iter().enumerate() {
        o[j] = d * KVALUES_IQ4NL[(q & 0x0f) as usize] as f32;
        o[j + 16] = d * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
    }
}

#[inline(always)]
fn iq4_xs(b: &[u8], o: &mut [f32]) {
    // d, scales_h (u16), scales_l[4], qs[128]: 8 sub-blocks of 32 with 6-bit scales (offset 32).
    let d = h(b, 0);
    let scales_h = u16::from_le_bytes([b[2], b[3]]);
    let scales_l = &b[4..8];
    let qs = &b[8..136];
    for ib in 0..8 {
        let ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f)
            | ((((scales_h >> (2 * ib)) & 3) as u8) << 4);
        let dl = d * (ls as i32 - 32) as f32;
        for (j, &q) in qs[ib * 16..ib * 16 + 16].iter().enumerate() {
            o[ib * 32 + j] = dl * KVALUES_IQ4NL[(q & 0x0f) as usize] as f32;
            o[ib * 32 + j + 16] = dl * KVALUES_IQ4NL[(q >> 4) as usize] as f32;
        }
    }
}

#[inline(always)]
fn tq2_0(b: &[u8], o: &mut [f32]) {
    // qs[64] (2-bit codes 0..2 meaning -1..1), d.
    let d = h(b, 64);
    for half in 0..2 {
        for shift in 0..4 {
            for k in 0..32 {
                let q = ((b[half * 32 + k] >> (2 * shift)) & 3) as i32 - 1;
                o[half * 128 + shift * 32 + k] = d * q as f32;
            }
        }
    }
}

/// e2m1 values, doubled (the e8m0 scale is halved to match).
const KVALUES_MXFP4: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

#[inline(always)]
fn mxfp4(b: &[u8], o: &mut [f32]) {
    // e (e8m0 exponent), qs[16].
    let e = b[0] as u32;
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        (e - 1) << 23
    };
    let d = f32::from_bits(bits);
    for (j, &q) in b[1..17].iter().enumerate() {
        o[j] = d * KVALUES_MXFP4[(q & 0x0f) as usize] as f32;
        o[j + 16] = d * KVALUES_MXFP4[(q >> 4) as usize] as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sizes_match_ggml() {
        for ty in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(ty.id()), Some(ty));
        }
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::Q2K.type_size(), 84);
        assert_eq!(GgmlType::Q3K.type_size(), 110);
        assert_eq!(GgmlType::Q4K.type_size(), 144);
        assert_eq!(GgmlType::Q5K.type_size(), 176);
        assert_eq!(GgmlType::Q6K.type_size(), 210);
        assert_eq!(GgmlType::Q8K.type_size(), 292);
    }

    #[test]
    fn q4_1_is_d_times_q_plus_m() {
        let mut b = vec![0u8; 20];
        b[0..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(-1.0).to_le_bytes());
        b[4] = 0x3a; // element 0 = 0xa, element 16 = 0x3
        let mut o = [0f32; 32];
        dequantize(GgmlType::Q4_1, &b, &mut o).unwrap();
        assert_eq!(o[0], 0.5 * 10.0 - 1.0);
        assert_eq!(o[16], 0.5 * 3.0 - 1.0);
        assert_eq!(o[1], -1.0);
    }

    /// The kernels compiled for AVX-512 and for AVX2 (with F16C) give the bits of the baseline build, for every type, on blocks of
    /// random bytes (every scale, NaN and infinity included) and on the writer's quantized values.
    #[test]
    fn dispatched_kernels_match_the_baseline_bit_for_bit() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for ty in GgmlType::ALL.into_iter().filter(|t| t.can_dequantize()) {
            let blocks = 64;
            let bytes: Vec<u8> = (0..blocks * ty.type_size()).map(|_| next() as u8).collect();
            let n = blocks * ty.block_size();
            let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
            dequantize(ty, &bytes, &mut a).unwrap();
            dequantize_baseline(ty, &bytes, &mut b).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{ty}");
            // The AVX2 build too, on a CPU where the dispatch picks the AVX-512 one.
            #[cfg(target_arch = "x86_64")]
            {
                let mut c = vec![0f32; n];
                if let Some(r) = dequantize_avx2_only(ty, &bytes, &mut c) {
                    r.unwrap();
                    assert_eq!(bits(&c), bits(&b), "{ty} (AVX2)");
                }
            }
        }
    }

    #[test]
    fn rejects_partial_blocks_and_unsupported_types() {
        let mut o = [0f32; 32];
        assert!(matches!(
            dequantize(GgmlType::Q8_0, &[0; 33], &mut o),
            Err(DequantError::Length { .. })
        ));
        assert!(matches!(
            dequantize(GgmlType::Q8_0, &[0; 34], &mut o[..31]),
            Err(DequantError::Length { .. })
        ));
        let mut o = [0f32; 256];
        let b = vec![0u8; GgmlType::IQ2_XXS.type_size()];
        assert_eq!(
            dequantize(GgmlType::IQ2_XXS, &b, &mut o),
            Err(DequantError::Unsupported(GgmlType::IQ2_XXS))
        );
    }
}
