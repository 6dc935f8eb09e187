//! Element types of stored tensors and their conversion to `f32`.

use half::f16;
use half::slice::HalfFloatSliceExt;

/// A stored element type (safetensors names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dtype {
    /// Boolean, one byte.
    Bool,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// FP8 E4M3 (finite-only variant, as in PyTorch `float8_e4m3fn`).
    F8E4M3,
    /// FP8 E5M2.
    F8E5M2,
    /// FP8 E8M0: a bare power of two, the shared scale of OCP microscaling (MX) blocks.
    F8E8M0,
    /// FP4 E2M1 (OCP MX), two elements per byte.
    F4,
    /// FP6 E2M3 (OCP MX), four elements per three bytes.
    F6E2M3,
    /// FP6 E3M2 (OCP MX), four elements per three bytes.
    F6E3M2,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// Complex number of two `f32`s (rotary `freqs_cis` buffers in some checkpoints).
    C64,
}

impl Dtype {
    /// Parse a safetensors dtype name (`"F32"`, `"BF16"`, `"F8_E4M3"`, ...).
    pub fn from_safetensors(name: &str) -> Option<Dtype> {
        Some(match name {
            "BOOL" => Dtype::Bool,
            "U8" => Dtype::U8,
            "I8" => Dtype::I8,
            "F8_E4M3" => Dtype::F8E4M3,
            "F8_E5M2" => Dtype::F8E5M2,
            "F8_E8M0" => Dtype::F8E8M0,
            "F4" => Dtype::F4,
            "F6_E2M3" => Dtype::F6E2M3,
            "F6_E3M2" => Dtype::F6E3M2,
            "C64" => Dtype::C64,
            "I16" => Dtype::I16,
            "U16" => Dtype::U16,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I32" => Dtype::I32,
            "U32" => Dtype::U32,
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            "I64" => Dtype::I64,
            "U64" => Dtype::U64,
            _ => return None,
        })
    }

    /// The safetensors name of the dtype.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E8M0 => "F8_E8M0",
            Dtype::F4 => "F4",
            Dtype::F6E2M3 => "F6_E2M3",
            Dtype::F6E3M2 => "F6_E3M2",
            Dtype::C64 => "C64",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// Bits per element.
    pub fn bits(self) -> u64 {
        match self {
            Dtype::F4 => 4,
            Dtype::F6E2M3 | Dtype::F6E3M2 => 6,
            Dtype::Bool | Dtype::U8 | Dtype::I8 | Dtype::F8E4M3 | Dtype::F8E5M2 | Dtype::F8E8M0 => {
                8
            }
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 16,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 32,
            Dtype::F64 | Dtype::I64 | Dtype::U64 | Dtype::C64 => 64,
        }
    }

    /// Bytes per element, rounded up for F4/F6, which pack several elements per byte: those are never read
    /// element by element ([`reads_as_values`](Dtype::reads_as_values)).
    pub fn size(self) -> usize {
        self.bits().div_ceil(8) as usize
    }

    /// Whether [`decode_to_f32`] gives each element's value: every dtype but the packed sub-byte F4/F6 and
    /// the complex C64.
    pub fn reads_as_values(self) -> bool {
        !matches!(self, Dtype::F4 | Dtype::F6E2M3 | Dtype::F6E3M2 | Dtype::C64)
    }

    /// Whether values of this dtype are real-valued weights (F16/BF16/F32/F64). FP8 and integer tensors in a
    /// checkpoint are quantised or packed data and need a scheme to become weights.
    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
    }
}

fn f8_e4m3_to_f32(b: u8) -> f32 {
    let sign = if b & 0x80 != 0 { -1.0 } else { 1.0 };
    let exp = ((b >> 3) & 0x0f) as i32;
    let man = (b & 0x07) as f32;
    if exp == 0x0f && (b & 0x07) == 0x07 {
        return f32::NAN;
    }
    if exp == 0 {
        sign * man / 8.0 * 2f32.powi(-6)
    } else {
        sign * (1.0 + man / 8.0) * 2f32.powi(exp - 7)
    }
}

/// E8M0: 2^(b − 127); 0xFF is NaN.
fn f8_e8m0_to_f32(b: u8) -> f32 {
    if b == 0xff {
        f32::NAN
    } else {
        2f32.powi(i32::from(b) - 127)
    }
}

fn f8_e5m2_to_f32(b: u8) -> f32 {
    // E5M2 is the top byte of an IEEE half.
    f16::from_bits((b as u16) << 8).to_f32()
}

/// Decode little-endian elements of `dtype` from `bytes` into `out` (value cast for integers).
///
/// `bytes.len()` must equal `out.len() * dtype.size()`; extra bytes are ignored and missing ones leave the
/// tail of `out` untouched, so callers check lengths first.
pub fn decode_to_f32(dtype: Dtype, bytes: &[u8], out: &mut [f32]) {
    macro_rules! each {
        ($n:expr, $conv:expr) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact($n)) {
                *o = $conv(c);
            }
        };
    }
    match dtype {
        Dtype::F32 => each!(4, |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        Dtype::F16 => f16_to_f32(bytes, out),
        Dtype::BF16 => bf16_to_f32(bytes, out),
        Dtype::F64 => each!(
            8,
            |c: &[u8]| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32
        ),
        Dtype::Bool | Dtype::U8 => each!(1, |c: &[u8]| c[0] as f32),
        Dtype::I8 => each!(1, |c: &[u8]| c[0] as i8 as f32),
        Dtype::F8E4M3 => each!(1, |c: &[u8]| f8_e4m3_to_f32(c[0])),
        Dtype::F8E5M2 => each!(1, |c: &[u8]| f8_e5m2_to_f32(c[0])),
        Dtype::F8E8M0 => each!(1, |c: &[u8]| f8_e8m0_to_f32(c[0])),
        // No per-element value to give (see `reads_as_values`): NaN, never a silent zero.
        Dtype::F4 | Dtype::F6E2M3 | Dtype::F6E3M2 | Dtype::C64 => out.fill(f32::NAN),
        Dtype::I16 => each!(2, |c: &[u8]| i16::from_le_bytes([c[0], c[1]]) as f32),
        Dtype::U16 => each!(2, |c: &[u8]| u16::from_le_bytes([c[0], c[1]]) as f32),
        Dtype::I32 => each!(4, |c: &[u8]| i32::from_le_bytes([c[0], c[1], c[2], c[3]])
            as f32),
        Dtype::U32 => each!(4, |c: &[u8]| u32::from_le_bytes([c[0], c[1], c[2], c[3]])
            as f32),
        Dtype::I64 => each!(
            8,
            |c: &[u8]| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32
        ),
        Dtype::U64 => each!(
            8,
            |c: &[u8]| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32
        ),
    }
}

/// Decode little-endian IEEE half floats into `out` (as many as both hold).
///
/// Sixteen values per instruction on a CPU with AVX-512 (eight with F16C), in one loop compiled for it:
/// `half`'s slice conversion calls a function per eight values and needs its input copied into `f16`s first,
/// which made this conversion half the CPU time of fingerprinting an F16 checkpoint. The values are the
/// same as `half`'s (the same instruction, or its exact software conversion on CPUs without F16C).
pub fn f16_to_f32(bytes: &[u8], out: &mut [f32]) {
    let n = out.len().min(bytes.len() / 2);
    let (bytes, out) = (&bytes[..2 * n], &mut out[..n]);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above); both slices hold `n` values.
        return unsafe { f16_to_f32_avx512(bytes, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("f16c") && std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports F16C and AVX (checked just above); both slices hold `n` values.
        return unsafe { f16_to_f32_f16c(bytes, out) };
    }
    f16_to_f32_portable(bytes, out)
}

/// [`f16_to_f32`] through `half`, 256 values at a time (any CPU; also the tail of the SIMD loops).
fn f16_to_f32_portable(bytes: &[u8], out: &mut [f32]) {
    const BLOCK: usize = 256;
    let mut block = [f16::ZERO; BLOCK];
    for (o, b) in out.chunks_mut(BLOCK).zip(bytes.chunks(2 * BLOCK)) {
        let n = o.len().min(b.len() / 2);
        for (h, c) in block.iter_mut().zip(b.chunks_exact(2)) {
            *h = f16::from_le_bytes([c[0], c[1]]);
        }
        block[..n].convert_to_f32_slice(&mut o[..n]);
    }
}

/// [`f16_to_f32`] with AVX-512F, sixteen values per `vcvtph2ps`.
///
/// # Safety
/// The CPU must support AVX-512F, and `bytes` must hold `2 * out.len()` bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn f16_to_f32_avx512(bytes: &[u8], out: &mut [f32]) {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm512_cvtph_ps, _mm512_storeu_ps};
    let full = out.len() / 16 * 16;
    for i in (0..full).step_by(16) {
        // SAFETY: values i..i+16 lie inside both slices (i + 16 <= full <= out.len(), and bytes holds 2 per
        // value); the loads and stores are unaligned.
        unsafe {
            let h = _mm256_loadu_si256(bytes.as_ptr().add(2 * i).cast::<__m256i>());
            _mm512_storeu_ps(out.as_mut_ptr().add(i), _mm512_cvtph_ps(h));
        }
    }
    f16_to_f32_portable(&bytes[2 * full..], &mut out[full..]);
}

/// [`f16_to_f32`] with F16C, eight values per `vcvtph2ps`.
///
/// # Safety
/// The CPU must support F16C and AVX, and `bytes` must hold `2 * out.len()` bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn f16_to_f32_f16c(bytes: &[u8], out: &mut [f32]) {
    use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};
    let full = out.len() / 8 * 8;
    for i in (0..full).step_by(8) {
        // SAFETY: values i..i+8 lie inside both slices (see `f16_to_f32_avx512`).
        unsafe {
            let h = _mm_loadu_si128(bytes.as_ptr().add(2 * i).cast::<__m128i>());
            _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
    }
    f16_to_f32_portable(&bytes[2 * full..], &mut out[full..]);
}

/// Decode little-endian bfloat16 values into `out` (as many as both hold): the top half of an `f32`, with a
/// NaN made quiet as `half` does. One loop compiled for AVX-512 or AVX2, which the compiler vectorises
/// (about ten times the speed of `half`'s one-at-a-time conversion, the common case for Hub checkpoints).
pub fn bf16_to_f32(bytes: &[u8], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw") {
        // SAFETY: the CPU supports AVX-512F and AVX-512BW (checked just above).
        return unsafe { bf16_to_f32_avx512(bytes, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { bf16_to_f32_avx2(bytes, out) };
    }
    bf16_to_f32_inline(bytes, out)
}

/// [`bf16_to_f32`] compiled for AVX-512F and BW (integer operations: the same bits on any instruction set).
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn bf16_to_f32_avx512(bytes: &[u8], out: &mut [f32]) {
    bf16_to_f32_inline(bytes, out)
}

/// [`bf16_to_f32`] compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bf16_to_f32_avx2(bytes: &[u8], out: &mut [f32]) {
    bf16_to_f32_inline(bytes, out)
}

#[inline(always)]
fn bf16_to_f32_inline(bytes: &[u8], out: &mut [f32]) {
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let bits = u16::from_le_bytes([c[0], c[1]]) as u32;
        // `half::bf16::to_f32`: a NaN gets its quiet bit.
        let quiet = if bits & 0x7fff > 0x7f80 { 0x40 } else { 0 };
        *o = f32::from_bits((bits | quiet) << 16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    #[test]
    fn f16_blocks_decode_like_single_values() {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|b| b.to_le_bytes()).collect();
        let mut out = vec![0f32; 1 << 16];
        decode_to_f32(Dtype::F16, &bytes, &mut out);
        for (b, v) in (0..=u16::MAX).zip(&out) {
            assert_eq!(
                v.to_bits(),
                f16::from_bits(b).to_f32().to_bits(),
                "{b:#06x}"
            );
        }
        // Short inputs leave the rest of `out` untouched; odd lengths and partial blocks.
        let mut out = vec![7f32; 300];
        decode_to_f32(Dtype::F16, &bytes[..2 * 257 + 1], &mut out);
        assert_eq!(out[256], f16::from_bits(256).to_f32());
        assert!(out[257..].iter().all(|&v| v == 7.0));
    }

    /// Every BF16 kernel the CPU can run gives `half`'s bits for every pattern, with short and odd inputs.
    #[test]
    fn bf16_kernels_agree_on_every_value() {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|b| b.to_le_bytes()).collect();
        let want: Vec<u32> = (0..=u16::MAX)
            .map(|b| bf16::from_bits(b).to_f32().to_bits())
            .collect();
        type Kernel = fn(&[u8], &mut [f32]);
        let mut kernels: Vec<(&str, Kernel)> = vec![("baseline", bf16_to_f32_inline)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
            {
                // SAFETY (of the call inside): the CPU supports AVX-512F and BW.
                kernels.push(("avx512", |b, o| unsafe { bf16_to_f32_avx512(b, o) }));
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY (of the call inside): the CPU supports AVX2.
                kernels.push(("avx2", |b, o| unsafe { bf16_to_f32_avx2(b, o) }));
            }
        }
        for (name, kernel) in kernels {
            let mut out = vec![0f32; 1 << 16];
            kernel(&bytes, &mut out);
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert!(got == want, "{name}");
            // Three values from seven bytes: the odd byte is ignored and the rest of `out` untouched.
            let mut out = [5f32; 5];
            kernel(&bytes[2 * 0x7f80..2 * 0x7f80 + 7], &mut out);
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got[..3], want[0x7f80..0x7f83], "{name}");
            assert_eq!(out[3..], [5.0, 5.0], "{name}");
        }
    }

    /// Every kernel the CPU can run gives `half`'s value for every bit pattern, at every offset into the bytes
    /// (unaligned loads) and for every tail length.
    #[test]
    fn f16_kernels_agree_on_every_value() {
        let bytes: Vec<u8> = (0..=u16::MAX).flat_map(|b| b.to_le_bytes()).collect();
        let want: Vec<u32> = (0..=u16::MAX)
            .map(|b| f16::from_bits(b).to_f32().to_bits())
            .collect();
        type Kernel = fn(&[u8], &mut [f32]);
        let mut kernels: Vec<(&str, Kernel)> = vec![("portable", f16_to_f32_portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY (of the call inside): the CPU supports AVX-512F; the lengths match.
                kernels.push(("avx512", |b, o| unsafe { f16_to_f32_avx512(b, o) }));
            }
            if std::is_x86_feature_detected!("f16c") && std::is_x86_feature_detected!("avx") {
                // SAFETY (of the call inside): the CPU supports F16C and AVX; the lengths match.
                kernels.push(("f16c", |b, o| unsafe { f16_to_f32_f16c(b, o) }));
            }
        }
        for (name, kernel) in kernels {
            let mut out = vec![0f32; 1 << 16];
            kernel(&bytes, &mut out);
            let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert!(got == want, "{name}");
            for skip in 1..=17 {
                let mut shifted = vec![0u8; 1];
                shifted.extend_from_slice(&bytes[2 * skip..2 * (skip + 40)]);
                let mut out = vec![0f32; 40];
                kernel(&shifted[1..], &mut out);
                let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want[skip..skip + 40], "{name}, offset {skip}");
            }
        }
    }

    #[test]
    fn decodes_halfs_and_fp8() {
        let mut out = [0f32; 2];
        let bytes: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect();
        decode_to_f32(Dtype::F16, &bytes, &mut out);
        assert_eq!(out, [1.5, -2.0]);
        let bytes: Vec<u8> = [0.375f32, -3.0]
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect();
        decode_to_f32(Dtype::BF16, &bytes, &mut out);
        assert_eq!(out, [0.375, -3.0]);
        // E4M3: 0x38 = 1.0, 0xC0 = -2.0; E5M2: 0x3C = 1.0.
        assert_eq!(f8_e4m3_to_f32(0x38), 1.0);
        assert_eq!(f8_e4m3_to_f32(0xC0), -2.0);
        assert_eq!(f8_e5m2_to_f32(0x3C), 1.0);
        assert!(f8_e4m3_to_f32(0x7f).is_nan());
    }
}
