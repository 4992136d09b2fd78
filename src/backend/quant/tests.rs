use super::kquants::scale_min;
use super::unpack::{groups_per_block, unpack_block, Group};
use super::*;

fn values(n: usize, seed: u64) -> Vec<f32> {
    crate::backend::testing::uniform(n, seed, 4.0)
}

/// Largest error of a round trip, relative to the largest magnitude in
/// the block it falls in.
fn worst_relative_error(format: WeightFormat, v: &[f32]) -> f32 {
    let bytes = encode(format, v);
    assert_eq!(bytes.len(), format.row_bytes(v.len()), "{format:?} size");
    let mut back = vec![0f32; v.len()];
    dequantize_scalar(format, &bytes, &mut back);
    let be = format.block_elems();
    v.chunks(be)
        .zip(back.chunks(be))
        .map(|(a, b)| {
            let amax = a.iter().fold(0f32, |m, x| m.max(x.abs()));
            let err = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            err / amax
        })
        .fold(0f32, f32::max)
}

#[test]
fn every_integer_format_round_trips_within_its_step() {
    // Relative to the block's largest magnitude: about one step of the
    // format's grid (K-quants add the rounding of their 6- or 8-bit
    // group scales).
    let v = values(QK_K * 6, 11);
    for (format, tol) in [
        (WeightFormat::Q8_0, 1.0 / 127.0),
        (WeightFormat::Q4_0, 1.0 / 8.0),
        (WeightFormat::Q4_1, 2.0 / 15.0),
        (WeightFormat::Q5_0, 1.0 / 16.0),
        (WeightFormat::Q5_1, 2.0 / 31.0),
        (WeightFormat::Q4K, 2.0 / 15.0 * 1.2),
        (WeightFormat::Q5K, 2.0 / 31.0 * 1.2),
        (WeightFormat::Q6K, 1.0 / 32.0 * 1.2),
    ] {
        let err = worst_relative_error(format, &v);
        assert!(err <= tol, "{format:?}: worst relative error {err} > {tol}");
    }
}

#[test]
fn more_bits_mean_smaller_errors() {
    // A check on the quantizers' fitting: root mean square error falls
    // with every added bit.
    let v: Vec<f32> = values(QK_K * 16, 5)
        .iter()
        .enumerate()
        // Skewed groups, like real weights, so mins matter.
        .map(|(i, x)| x * (1.0 + (i % 7) as f32) + if i % 64 < 32 { 0.5 } else { 0.0 })
        .collect();
    let rmse = |format| {
        let mut back = vec![0f32; v.len()];
        dequantize_scalar(format, &encode(format, &v), &mut back);
        let s: f32 = v.iter().zip(&back).map(|(a, b)| (a - b) * (a - b)).sum();
        (s / v.len() as f32).sqrt()
    };
    let (q4k, q5k, q6k) = (
        rmse(WeightFormat::Q4K),
        rmse(WeightFormat::Q5K),
        rmse(WeightFormat::Q6K),
    );
    assert!(q5k < q4k * 0.6, "q5_k {q5k} vs q4_k {q4k}");
    assert!(q6k < q5k * 0.8, "q6_k {q6k} vs q5_k {q5k}");
    // K-quants fit better than the plain formats of the same width, and
    // the fitted Q5_1 better than Q5_0 on skewed groups.
    assert!(q4k < rmse(WeightFormat::Q4_1), "q4_k {q4k}");
    let (q5_0, q5_1) = (rmse(WeightFormat::Q5_0), rmse(WeightFormat::Q5_1));
    assert!(q5_1 < q5_0, "q5_1 {q5_1} vs q5_0 {q5_0}");
}

#[test]
fn packed_scales_and_mins_unpack_to_what_was_packed() {
    for seed in 0..64u8 {
        let sc: [u8; 8] = std::array::from_fn(|j| (seed.wrapping_mul(7) + j as u8 * 9) % 64);
        let m: [u8; 8] = std::array::from_fn(|j| (seed.wrapping_mul(5) + j as u8 * 13) % 64);
        let packed = super::kquants::pack_scales_mins_for_test(&sc, &m);
        for j in 0..8 {
            assert_eq!(scale_min(&packed, j), (sc[j], m[j]), "group {j}");
        }
    }
}

#[test]
fn unpacked_groups_describe_the_dequantized_values() {
    let v = values(QK_K * 2, 3);
    for format in WeightFormat::all() {
        if !unpack::is_unpacked(format) {
            continue;
        }
        let bytes = encode(format, &v);
        let mut want = vec![0f32; v.len()];
        dequantize_scalar(format, &bytes, &mut want);
        let n = groups_per_block(format);
        let mut groups = vec![Group::default(); n];
        for (b, block) in bytes.chunks_exact(format.block_bytes()).enumerate() {
            unpack_block(format, block, &mut groups);
            for (g, group) in groups.iter().enumerate() {
                for j in 0..BLOCK {
                    let q = group.q[j];
                    if unpack::is_signed(format) {
                        assert!((-32..32).contains(&q), "{format:?}: q {q}");
                    } else {
                        assert!((0..32).contains(&q), "{format:?}: q {q}");
                    }
                    let value = group.scale[j / 16] * q as f32 + group.min;
                    let at = b * format.block_elems() + g * BLOCK + j;
                    assert!((value - want[at]).abs() <= 1e-6 * want[at].abs().max(1.0));
                }
            }
        }
    }
}

#[test]
fn k_quants_fall_back_for_rows_that_are_not_whole_super_blocks() {
    assert_eq!(WeightFormat::Q4K.for_row_width(576), WeightFormat::Q5_0);
    assert_eq!(WeightFormat::Q5K.for_row_width(896), WeightFormat::Q5_1);
    assert_eq!(WeightFormat::Q6K.for_row_width(576), WeightFormat::Q8_0);
    assert_eq!(WeightFormat::Q6K.for_row_width(1536), WeightFormat::Q6K);
    assert_eq!(WeightFormat::Q4_0.for_row_width(576), WeightFormat::Q4_0);
    for f in WeightFormat::all() {
        assert_eq!(WeightFormat::from_name(f.name()), Some(f));
    }
}
