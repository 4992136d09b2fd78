//! RoPE frequency scaling for long contexts, applied once to the inverse
//! frequencies so the kernels never see it.

use crate::backend::Rope;

/// How a config stretches RoPE beyond the trained context.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// Positions divided by `factor` (Code Llama, "linear").
    Linear { factor: f32 },
    /// Llama 3.1's scheme: low frequencies divided by `factor`, high ones
    /// kept, a smooth blend between (`rope_type = "llama3"`).
    Llama3 {
        factor: f32,
        low_freq_factor: f32,
        high_freq_factor: f32,
        original_context: f32,
    },
}

impl RopeScaling {
    /// Rescales `rope.inv_freq` in place, computed in f32 as the reference
    /// implementation does.
    pub fn apply(&self, rope: &mut Rope) {
        match *self {
            RopeScaling::Linear { factor } => {
                for f in &mut rope.inv_freq {
                    *f /= factor;
                }
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_context,
            } => {
                let low_wavelen = original_context / low_freq_factor;
                let high_wavelen = original_context / high_freq_factor;
                for f in &mut rope.inv_freq {
                    let wavelen = 2.0 * std::f32::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (original_context / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
        }
    }
}

/// Divides each frequency by its factor: GGUF files of Llama 3.1 carry
/// the llama3 scaling as a `rope_freqs` tensor of per-pair factors.
pub fn apply_factors(rope: &mut Rope, factors: &[f32]) {
    for (f, &k) in rope.inv_freq.iter_mut().zip(factors) {
        *f /= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::RopeStyle;

    #[test]
    fn llama3_keeps_high_frequencies_and_divides_low_ones() {
        let plain = Rope::new(RopeStyle::Halves, 128, 500000.0);
        let mut scaled = plain.clone();
        RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_context: 8192.0,
        }
        .apply(&mut scaled);
        // Wavelength below 8192/4: untouched.
        assert_eq!(scaled.inv_freq[0], plain.inv_freq[0]);
        // Wavelength above 8192: divided by the factor.
        let last = plain.inv_freq.len() - 1;
        assert_eq!(scaled.inv_freq[last], plain.inv_freq[last] / 8.0);
        // Between: strictly between the two.
        let mid = (0..=last)
            .find(|&i| {
                let w = 2.0 * std::f32::consts::PI / plain.inv_freq[i];
                (2048.0..8192.0).contains(&w)
            })
            .expect("a blended frequency");
        assert!(scaled.inv_freq[mid] < plain.inv_freq[mid]);
        assert!(scaled.inv_freq[mid] > plain.inv_freq[mid] / 8.0);
    }

    #[test]
    fn linear_divides_every_frequency() {
        let plain = Rope::new(RopeStyle::Halves, 8, 10000.0);
        let mut scaled = plain.clone();
        RopeScaling::Linear { factor: 4.0 }.apply(&mut scaled);
        for (a, b) in scaled.inv_freq.iter().zip(&plain.inv_freq) {
            assert_eq!(*a, b / 4.0);
        }
    }
}
