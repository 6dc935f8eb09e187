//! Hot loops over weight values, written so the compiler vectorises them: sums and sums of squares in `f32`
//! lanes over short blocks, folded into `f64` totals between blocks (precise enough for an RMS, and several
//! times faster than a scalar `f64` chain).

/// Sum, sum of squares and finiteness of a run of values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Σx.
    pub sum: f64,
    /// Σx².
    pub sum_sq: f64,
    /// Number of values.
    pub count: u64,
    /// Whether any value was NaN.
    pub has_nan: bool,
    /// Whether any value was NaN or infinite.
    pub has_non_finite: bool,
}

/// Lanes of the `f32` partial sums (see [`Moments::add_inline`]).
pub(crate) const LANES: usize = 16;
/// Values per block whose lane sums are folded into the `f64` totals.
pub(crate) const BLOCK: usize = 4096;

impl Moments {
    /// Moments of `values`.
    pub fn of(values: &[f32]) -> Moments {
        let mut m = Moments::default();
        m.add(values);
        m
    }

    /// Add `values`.
    pub fn add(&mut self, values: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { self.add_avx2(values) };
            return;
        }
        self.add_inline(values);
    }

    /// [`Moments::add`] compiled for AVX2: the same operations in the same order, on wider registers.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_avx2(&mut self, values: &[f32]) {
        self.add_inline(values);
    }

    /// The definition of [`Moments::add`], inlined into callers that are compiled for a wider instruction set
    /// (see [`crate::signals::embedding`]). Per block of [`BLOCK`] values, lane `k` sums the values at offsets
    /// `≡ k (mod LANES)` in order (the tail goes to lane 0); the lane totals are added in `f64`, lane by lane.
    /// Results are identical whatever the instruction set: no operation is reordered or fused.
    #[inline(always)]
    pub(crate) fn add_inline(&mut self, values: &[f32]) {
        const EXPONENT: u32 = 0x7f80_0000;
        let mut exponent_all_ones = false;
        for block in values.chunks(BLOCK) {
            let mut s = [0f32; LANES];
            let mut q = [0f32; LANES];
            let mut bad = [0u32; LANES];
            let mut lanes = block.chunks_exact(LANES);
            for chunk in &mut lanes {
                let Some(chunk) = chunk.first_chunk::<LANES>() else {
                    continue; // unreachable: chunks_exact yields LANES values
                };
                for k in 0..LANES {
                    let v = chunk[k];
                    s[k] += v;
                    q[k] += v * v;
                    bad[k] |= ((v.to_bits() & EXPONENT) == EXPONENT) as u32;
                }
            }
            for &v in lanes.remainder() {
                s[0] += v;
                q[0] += v * v;
                bad[0] |= ((v.to_bits() & EXPONENT) == EXPONENT) as u32;
            }
            self.sum += s.iter().map(|&v| v as f64).sum::<f64>();
            self.sum_sq += q.iter().map(|&v| v as f64).sum::<f64>();
            exponent_all_ones |= bad.iter().fold(0, |a, &b| a | b) != 0;
        }
        self.count += values.len() as u64;
        if exponent_all_ones {
            self.has_non_finite = true;
            self.has_nan |= values.iter().any(|v| v.is_nan());
        }
    }

    /// Root mean square.
    pub fn rms(&self) -> f64 {
        (self.sum_sq / self.count.max(1) as f64).sqrt()
    }

    /// Mean.
    pub fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    /// Population standard deviation.
    pub fn std(&self) -> f64 {
        let m = self.mean();
        (self.sum_sq / self.count.max(1) as f64 - m * m)
            .max(0.0)
            .sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop as first written (before it was restructured for AVX2): the restructured one must give
    /// bit-identical moments, whatever the instruction set.
    fn reference_add(m: &mut Moments, values: &[f32]) {
        let mut exponent_all_ones = false;
        for block in values.chunks(BLOCK) {
            let mut s = [0f32; LANES];
            let mut q = [0f32; LANES];
            let mut bad = 0u32;
            let lanes = block.chunks_exact(LANES);
            let tail = lanes.remainder();
            for chunk in lanes {
                for k in 0..LANES {
                    let v = chunk[k];
                    s[k] += v;
                    q[k] += v * v;
                    bad |= ((v.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
                }
            }
            for &v in tail {
                s[0] += v;
                q[0] += v * v;
                bad |= ((v.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
            }
            m.sum += s.iter().map(|&v| v as f64).sum::<f64>();
            m.sum_sq += q.iter().map(|&v| v as f64).sum::<f64>();
            exponent_all_ones |= bad != 0;
        }
        m.count += values.len() as u64;
        if exponent_all_ones {
            m.has_non_finite = true;
            m.has_nan |= values.iter().any(|v| v.is_nan());
        }
    }

    #[test]
    fn moments_are_bit_identical_to_the_reference_loop() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let values: Vec<f32> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
            })
            .collect();
        for len in [
            0,
            1,
            15,
            16,
            17,
            383,
            384,
            576,
            4095,
            4096,
            4097,
            8192 + 33,
            20_000,
        ] {
            for bad in [None, Some(f32::INFINITY), Some(f32::NAN)] {
                let mut v = values[..len].to_vec();
                if let (Some(b), true) = (bad, len > 0) {
                    v[len / 2] = b;
                }
                let mut want = Moments::default();
                reference_add(&mut want, &v);
                let mut baseline = Moments::default();
                baseline.add_inline(&v);
                for got in [Moments::of(&v), baseline] {
                    assert_eq!(got.sum.to_bits(), want.sum.to_bits(), "len {len} {bad:?}");
                    assert_eq!(got.sum_sq.to_bits(), want.sum_sq.to_bits(), "len {len}");
                    assert_eq!(
                        (got.count, got.has_nan, got.has_non_finite),
                        (want.count, want.has_nan, want.has_non_finite)
                    );
                }
            }
        }
    }

    #[test]
    fn moments_match_a_plain_loop() {
        let v: Vec<f32> = (0..10_001)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let m = Moments::of(&v);
        let sum: f64 = v.iter().map(|&x| x as f64).sum();
        let sq: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        assert!((m.sum - sum).abs() < 1e-3 && (m.sum_sq - sq).abs() / sq < 1e-6);
        assert!(!m.has_non_finite);
        let mut w = v.clone();
        w[5000] = f32::INFINITY;
        let m = Moments::of(&w);
        assert!(m.has_non_finite && !m.has_nan);
        w[17] = f32::NAN;
        assert!(Moments::of(&w).has_nan);
    }
}
