//! Variables kept inline, joined across files: data with no byte range in its
//! file to reference (variable-length strings, HDF5 compact layout) is stored
//! in the repository as one chunk. Along the concatenation dimension, each
//! file's rows are placed at their steps of the union and encoded again as one
//! chunk. Pure: no I/O.

use floe_formats::values::{decode_vlen_utf8, encode_vlen_utf8, VLEN_STRING_TYPESTR};
use floe_formats::VariableManifest;

use crate::concat::Piece;
use crate::series::SeriesError;

/// The variable of `pieces` along the union of steps, as one inline chunk: the
/// first file's variable with the joined data, and its shape. Refused by name
/// when a file holds it by reference instead, its inline bytes are not what its
/// type says, or the files leave steps of the union without a value (an inline
/// chunk has no fill to leave them to).
pub(crate) fn concat(
    name: &str,
    pieces: &[Piece],
    union: &[i64],
) -> Result<(VariableManifest, Vec<u64>), SeriesError> {
    let first = pieces[0].variable;
    let refuse = |file: &str, reason: String| SeriesError::File {
        file: file.to_string(),
        reason: format!("{name}: {reason}"),
    };
    let row_items: u64 = first.shape.iter().skip(1).product();
    let mut rows: Vec<Option<&[&[u8]]>> = vec![None; union.len()];
    let mut items_of = Vec::with_capacity(pieces.len());
    for piece in pieces {
        let var = piece.variable;
        let data = var.inline_data.as_deref().ok_or_else(|| {
            refuse(
                piece.file,
                "held by reference here and in the header (inline) in another file of the group"
                    .into(),
            )
        })?;
        let items = items(var, data).ok_or_else(|| {
            refuse(
                piece.file,
                format!("inline data is not {} {}", element_count(var), var.dtype),
            )
        })?;
        items_of.push(items);
    }
    for (piece, items) in pieces.iter().zip(&items_of) {
        let row = usize::try_from(row_items).unwrap_or(usize::MAX).max(1);
        for (step, values) in items.chunks(row).enumerate() {
            let position = crate::build::step_position(name, piece, step, union)?;
            rows[position] = Some(values);
        }
    }
    if let Some(gap) = rows.iter().position(Option::is_none) {
        return Err(refuse(
            pieces[0].file,
            format!("kept inline, and no file holds step {gap} of the concatenated axis"),
        ));
    }
    let all: Vec<&[u8]> = rows.into_iter().flatten().flatten().copied().collect();
    let data = if first.dtype == VLEN_STRING_TYPESTR {
        let strings: Vec<&str> = all
            .iter()
            .map(|b| std::str::from_utf8(b).unwrap_or_default())
            .collect();
        encode_vlen_utf8(&strings)
    } else {
        all.concat()
    };
    let mut shape = first.shape.clone();
    shape[0] = union.len() as u64;
    let mut merged = first.clone();
    merged.shape.clone_from(&shape);
    merged.chunk_shape.clone_from(&shape);
    merged.inline_data = Some(data);
    Ok((merged, shape))
}

fn element_count(var: &VariableManifest) -> u64 {
    var.shape.iter().product()
}

/// A variable's inline data as its elements' bytes, when it holds exactly as
/// many as its shape says: `vlen-utf8` items (valid UTF-8), or fixed-size
/// elements of uncompressed data.
fn items<'a>(var: &VariableManifest, data: &'a [u8]) -> Option<Vec<&'a [u8]>> {
    let count = usize::try_from(element_count(var)).ok()?;
    let items = if var.dtype == VLEN_STRING_TYPESTR {
        let items = decode_vlen_utf8(data)?;
        items
            .iter()
            .all(|b| std::str::from_utf8(b).is_ok())
            .then_some(items)?
    } else {
        let size = usize::try_from(var.item_size()?).ok()?;
        if !var.is_uncompressed() || size == 0 || data.len() != count.checked_mul(size)? {
            return None;
        }
        data.chunks(size).collect()
    };
    (items.len() == count).then_some(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn strings(values: &[&str]) -> VariableManifest {
        VariableManifest {
            variable: "expver".into(),
            dtype: VLEN_STRING_TYPESTR.into(),
            fields: Vec::new(),
            shape: vec![values.len() as u64],
            chunk_shape: vec![values.len() as u64],
            dimensions: vec!["valid_time".into()],
            fill_value: "".into(),
            codecs: Arc::new(vec![floe_formats::Codec::new("vlen-utf8", [])]),
            attributes: Default::default(),
            chunks: Vec::new(),
            inline_data: Some(encode_vlen_utf8(values)),
            layout: "strings".into(),
        }
    }

    fn piece<'a>(file: &'a str, variable: &'a VariableManifest, instants: &'a [i64]) -> Piece<'a> {
        Piece {
            file,
            index: 0,
            variable,
            calendar: "standard",
            instants,
        }
    }

    fn joined(var: &VariableManifest) -> Vec<String> {
        let data = var.inline_data.as_deref().expect("inline");
        decode_vlen_utf8(data)
            .expect("vlen-utf8")
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).expect("utf-8"))
            .collect()
    }

    #[test]
    fn files_strings_join_in_the_order_of_their_steps() {
        let (a, b) = (strings(&["0001", "0001"]), strings(&["0005"]));
        // The later file listed first: placement follows the instants, not the list.
        let pieces = [piece("b.nc", &b, &[30]), piece("a.nc", &a, &[10, 20])];
        let (merged, shape) = concat("expver", &pieces, &[10, 20, 30]).expect("joins");
        assert_eq!(shape, vec![3]);
        assert_eq!(merged.chunk_shape, vec![3]);
        assert_eq!(joined(&merged), ["0001", "0001", "0005"]);
    }

    #[test]
    fn a_gap_a_reference_or_bytes_that_are_not_the_type_are_refused_by_file() {
        let (a, b) = (strings(&["x"]), strings(&["y"]));
        let gap = concat(
            "expver",
            &[piece("a.nc", &a, &[1]), piece("b.nc", &b, &[3])],
            &[1, 2, 3],
        );
        assert!(gap.expect_err("gap").to_string().contains("step 1"));
        let mut by_reference = strings(&["y"]);
        by_reference.inline_data = None;
        let mixed = concat(
            "expver",
            &[piece("a.nc", &a, &[1]), piece("b.nc", &by_reference, &[2])],
            &[1, 2],
        );
        assert!(mixed.expect_err("mixed").to_string().contains("b.nc"));
        let mut short = strings(&["y"]);
        short.shape = vec![2];
        let wrong = concat(
            "expver",
            &[piece("a.nc", &a, &[1]), piece("c.nc", &short, &[2, 3])],
            &[1, 2, 3],
        );
        assert!(wrong.expect_err("count").to_string().contains("c.nc"));
    }

    #[test]
    fn compact_numbers_join_as_bytes() {
        let mut a = strings(&[]);
        a.dtype = "<i4".into();
        a.codecs = Arc::new(vec![floe_formats::Codec::new("bytes", [])]);
        a.shape = vec![2];
        a.inline_data = Some([1i32, 2].iter().flat_map(|v| v.to_le_bytes()).collect());
        let mut b = a.clone();
        b.shape = vec![1];
        b.inline_data = Some(3i32.to_le_bytes().to_vec());
        let (merged, _) = concat(
            "n",
            &[piece("a.nc", &a, &[0, 1]), piece("b.nc", &b, &[2])],
            &[0, 1, 2],
        )
        .expect("joins");
        let values: Vec<i32> = merged
            .inline_data
            .expect("inline")
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4")))
            .collect();
        assert_eq!(values, [1, 2, 3]);
    }
}
