//! When a variable whose chunks span several time steps can sit on the group's
//! shared time axis exactly.
//!
//! A variable with chunk length `c` along time, whose `n` steps fall on union
//! indices `o, o+1, …, o+n-1`, is placed by mapping its chunk `k` to union chunk
//! `o / c + k`. That is exact when:
//! - `o % c == 0`: chunk boundaries coincide, so each step keeps its position
//!   inside its chunk;
//! - its steps are contiguous in the union: a chunk holds consecutive steps;
//! - `n % c == 0`, or `o + n` is the union's length: an HDF5 edge chunk is stored
//!   whole, padding included, and that padding must never show at union indices
//!   where the group has data (past the union's end, Zarr trims it).
//!
//! Union chunks the variable does not cover have no reference and read as the
//! fill value (NaN for floats), like the missing steps of per-step variables.

/// Why a variable keeps its own time axis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AxisMisfit {
    /// Its steps skip years of the union.
    #[error("its time steps are not consecutive steps of the group's time axis")]
    NotContiguous,
    /// Its first step is not on a chunk boundary of the union.
    #[error("its first step falls on index {offset} of the group's time axis, which is not a multiple of its chunk length {chunk}")]
    Misaligned {
        /// Union index of its first step.
        offset: u64,
        /// Chunk length along time.
        chunk: u64,
    },
    /// Its last chunk is partly padding, and the union goes on past its end.
    #[error("its last chunk holds padding ({steps} steps in chunks of {chunk}) where the group's time axis has {after} more step(s)")]
    PaddedEdge {
        /// Its steps.
        steps: u64,
        /// Chunk length along time.
        chunk: u64,
        /// Union steps after its last one.
        after: u64,
    },
}

/// The union index `o` of the first step of a variable whose steps fall on
/// union indices `positions` (in order), with chunks of `chunk` steps, on a
/// union of `union_len` steps; or why it cannot join (see the module doc).
pub fn shared_axis_offset(
    positions: &[u64],
    chunk: u64,
    union_len: u64,
) -> Result<u64, AxisMisfit> {
    let Some(&offset) = positions.first() else {
        return Ok(0);
    };
    let contiguous = positions
        .iter()
        .enumerate()
        .all(|(i, &p)| p == offset + i as u64);
    if !contiguous {
        return Err(AxisMisfit::NotContiguous);
    }
    let chunk = chunk.max(1);
    if !offset.is_multiple_of(chunk) {
        return Err(AxisMisfit::Misaligned { offset, chunk });
    }
    let steps = positions.len() as u64;
    let end = offset + steps;
    if !steps.is_multiple_of(chunk) && end != union_len {
        return Err(AxisMisfit::PaddedEdge {
            steps,
            chunk,
            after: union_len.saturating_sub(end),
        });
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Brute force: place every stored slot of every chunk (padding included) and
    /// check that each lands on its own step, or on padding past the union's end.
    fn exact_by_enumeration(positions: &[u64], chunk: u64, union_len: u64) -> bool {
        let Some(&first) = positions.first() else {
            return true;
        };
        let steps = positions.len() as u64;
        let chunks = steps.div_ceil(chunk);
        (0..chunks).all(|k| {
            (0..chunk).all(|slot| {
                let source_step = k * chunk + slot;
                let union_index = (first / chunk + k) * chunk + slot;
                match positions.get(source_step as usize) {
                    Some(&p) => p == union_index,
                    None => union_index >= union_len,
                }
            })
        })
    }

    proptest! {
        #[test]
        fn joins_exactly_when_every_stored_slot_lands_right(
            offset in 0u64..40, steps in 1u64..40, chunk in 1u64..12, after in 0u64..20, gap in proptest::option::of(1u64..39),
        ) {
            let mut positions: Vec<u64> = (offset..offset + steps).collect();
            if let Some(g) = gap.filter(|g| *g < steps) {
                for p in positions.iter_mut().skip(g as usize) {
                    *p += 1; // one union step the variable lacks
                }
            }
            let union_len = positions.last().copied().unwrap_or(0) + 1 + after;
            let rule = shared_axis_offset(&positions, chunk, union_len);
            prop_assert_eq!(rule.is_ok(), exact_by_enumeration(&positions, chunk, union_len), "{:?}", rule);
            if let Ok(o) = rule {
                prop_assert_eq!(o, offset);
            }
        }
    }

    #[test]
    fn the_reasons_name_the_numbers() {
        assert_eq!(shared_axis_offset(&[0, 1, 2, 3, 4, 5], 3, 6), Ok(0));
        assert_eq!(shared_axis_offset(&[0, 1, 2, 3, 4], 3, 5), Ok(0)); // edge chunk at the end
        assert_eq!(
            shared_axis_offset(&[1, 2, 3], 3, 4),
            Err(AxisMisfit::Misaligned {
                offset: 1,
                chunk: 3
            })
        );
        assert_eq!(
            shared_axis_offset(&[0, 1, 2, 3], 3, 10),
            Err(AxisMisfit::PaddedEdge {
                steps: 4,
                chunk: 3,
                after: 6
            })
        );
        assert_eq!(
            shared_axis_offset(&[0, 2], 2, 3),
            Err(AxisMisfit::NotContiguous)
        );
    }
}
