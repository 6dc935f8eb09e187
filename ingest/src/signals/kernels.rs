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

const LANES: usize = 16;
const BLOCK: usize = 4096;

impl Moments {
    /// Moments of `values`.
    pub fn of(values: &[f32]) -> Moments {
        let mut m = Moments::default();
        m.add(values);
        m
    }

    /// Add `values`.
    pub fn add(&mut self, values: &[f32]) {
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
            self.sum += s.iter().map(|&v| v as f64).sum::<f64>();
            self.sum_sq += q.iter().map(|&v| v as f64).sum::<f64>();
            exponent_all_ones |= bad != 0;
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
