//! Grid rules: ISMIP6 grids are polar stereographic over ±3,040,000 m at
//! 32/16/8/4/2/1 km. Missing or broken x/y are regenerated from the size.

/// Half-width of the ISMIP6 Antarctic grid, metres.
pub const HALF_WIDTH_M: f64 = 3_040_000.0;
/// Grid spacings seen in the archive, metres.
pub const RESOLUTIONS_M: [f64; 6] = [32_000.0, 16_000.0, 8_000.0, 4_000.0, 2_000.0, 1_000.0];

/// Whether a coordinate can be used as it is: finite, strictly monotonic.
pub fn is_usable(values: &[f64], expected_len: usize) -> bool {
    values.len() == expected_len
        && values.iter().all(|v| v.is_finite())
        && (values.windows(2).all(|w| w[1] > w[0]) || values.windows(2).all(|w| w[1] < w[0]))
}

/// Regenerates a coordinate of `n` points: spacing snapped to the nearest
/// ISMIP6 resolution, centred on 0.
pub fn regenerate(n: usize) -> (Vec<f64>, f64) {
    let raw = if n > 1 {
        2.0 * HALF_WIDTH_M / (n - 1) as f64
    } else {
        RESOLUTIONS_M[0]
    };
    let spacing = RESOLUTIONS_M
        .iter()
        .copied()
        .min_by(|a, b| (a - raw).abs().total_cmp(&(b - raw).abs()))
        .unwrap_or(raw);
    let start = -spacing * (n.saturating_sub(1)) as f64 / 2.0;
    (
        (0..n).map(|i| start + spacing * i as f64).collect(),
        spacing,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regenerates_ismip6_grids() {
        for (n, km) in [(191, 32.0), (381, 16.0), (761, 8.0), (1521, 4.0)] {
            let (v, spacing) = regenerate(n);
            assert_eq!(spacing, km * 1000.0);
            assert_eq!(v[0], -HALF_WIDTH_M);
            assert_eq!(v[n - 1], HALF_WIDTH_M);
        }
    }

    #[test]
    fn duplicates_and_gaps_are_not_usable() {
        assert!(is_usable(&[1.0, 2.0, 3.0], 3));
        assert!(!is_usable(&[1.0, 1.0, 3.0], 3));
        assert!(!is_usable(&[1.0, 2.0], 3));
        assert!(!is_usable(&[1.0, f64::NAN, 3.0], 3));
    }
}
