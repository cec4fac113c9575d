//! Pure conversions: data types to numpy typestrs, raw fill bytes and NetCDF
//! attributes to JSON (Zarr v3 spells non-finite floats as strings).

use netcdf_reader::{NcAttrValue, NcAttribute, NcType};
use serde_json::{Map, Value};

/// Byte order of multi-byte values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Little-endian (`<`).
    Little,
    /// Big-endian (`>`), as in every NetCDF3 file.
    Big,
}

/// Kind of element, enough to decode fill values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Signed integer.
    Int,
    /// Unsigned integer.
    UInt,
    /// IEEE float.
    Float,
    /// Fixed-size bytes (NetCDF `char`, HDF5 fixed-length strings).
    Bytes,
    /// One-byte boolean (h5py's `bool`, an HDF5 enum FALSE = 0, TRUE = 1).
    Bool,
}

/// A fixed-size element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementType {
    /// Kind of element.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u32,
    /// Byte order.
    pub endian: Endian,
}

impl ElementType {
    /// numpy typestr, e.g. `<f4`; single bytes use `|`.
    pub fn typestr(&self) -> String {
        let code = match self.kind {
            Kind::Int => 'i',
            Kind::UInt => 'u',
            Kind::Float => 'f',
            Kind::Bytes => 'S',
            Kind::Bool => 'b',
        };
        // Byte order means nothing for single bytes and for byte strings (`|S10`).
        let order = if self.size == 1 || self.kind == Kind::Bytes {
            '|'
        } else if self.endian == Endian::Little {
            '<'
        } else {
            '>'
        };
        format!("{order}{code}{}", self.size)
    }

    /// Decodes one element from raw bytes in this type's byte order.
    pub fn decode(&self, raw: &[u8]) -> Option<Value> {
        let n = self.size as usize;
        if raw.len() < n {
            return None;
        }
        let mut buf = [0u8; 8];
        if n > 8 {
            return None;
        }
        buf[..n].copy_from_slice(&raw[..n]);
        if self.endian == Endian::Big {
            buf[..n].reverse();
        }
        let bits = u64::from_le_bytes(buf);
        Some(match (self.kind, n) {
            (Kind::Float, 4) => float_json(f64::from(f32::from_bits(bits as u32))),
            (Kind::Float, 8) => float_json(f64::from_bits(bits)),
            (Kind::Int, _) => {
                let shift = 64 - 8 * n as u32;
                Value::from(((bits << shift) as i64) >> shift)
            }
            (Kind::UInt, _) => Value::from(bits),
            (Kind::Bytes, _) => Value::from(bits),
            (Kind::Bool, _) => Value::from(bits != 0),
            _ => return None,
        })
    }

    /// NetCDF's default fill value for this type (netcdf.h `NC_FILL_*`).
    pub fn netcdf_default_fill(&self) -> Value {
        match (self.kind, self.size) {
            (Kind::Float, 4) => float_json(f64::from(9.969_21e36_f32)),
            (Kind::Float, _) => float_json(9.969_209_968_386_869e36),
            (Kind::Int, 1) => Value::from(-127),
            (Kind::Int, 2) => Value::from(-32767),
            (Kind::Int, 4) => Value::from(-2_147_483_647),
            (Kind::Int, _) => Value::from(-9_223_372_036_854_775_806_i64),
            (Kind::UInt, 1) => Value::from(255),
            (Kind::UInt, 2) => Value::from(65535),
            (Kind::UInt, 4) => Value::from(4_294_967_295_u64),
            (Kind::UInt, _) => Value::from(18_446_744_073_709_551_614_u64),
            (Kind::Bytes, _) => Value::from(0),
            (Kind::Bool, _) => Value::from(false),
        }
    }
}

/// Element type of a NetCDF type, or `None` for types that have no fixed-size
/// numeric layout (strings, compounds, vlen, opaque, enum).
pub fn netcdf_element_type(t: &NcType, endian: Endian) -> Option<ElementType> {
    let (kind, size) = match t {
        NcType::Byte => (Kind::Int, 1),
        NcType::Char => (Kind::Bytes, 1),
        NcType::Short => (Kind::Int, 2),
        NcType::Int => (Kind::Int, 4),
        NcType::Float => (Kind::Float, 4),
        NcType::Double => (Kind::Float, 8),
        NcType::UByte => (Kind::UInt, 1),
        NcType::UShort => (Kind::UInt, 2),
        NcType::UInt => (Kind::UInt, 4),
        NcType::Int64 => (Kind::Int, 8),
        NcType::UInt64 => (Kind::UInt, 8),
        _ => return None,
    };
    Some(ElementType { kind, size, endian })
}

/// numpy's typestr for variable-length strings: an object array, as netCDF4
/// and h5py hand them to xarray. Zarr v3 calls the type `string`.
pub const VLEN_STRING_TYPESTR: &str = "|O";

/// Strings as the Zarr v3 `vlen-utf8` codec stores them (numcodecs
/// `VLenUTF8`): the item count, then each item's length in bytes and its
/// bytes, counts and lengths as u32 little-endian.
pub fn encode_vlen_utf8<S: AsRef<str>>(items: &[S]) -> Vec<u8> {
    let bytes: usize = items.iter().map(|s| 4 + s.as_ref().len()).sum();
    let mut out = Vec::with_capacity(4 + bytes);
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        let item = item.as_ref().as_bytes();
        out.extend_from_slice(&(item.len() as u32).to_le_bytes());
        out.extend_from_slice(item);
    }
    out
}

/// The items of a `vlen-utf8` chunk ([`encode_vlen_utf8`]), as byte slices, or
/// `None` when the bytes are not one (a length that runs past the end, bytes
/// left over). The count is checked against the bytes before anything is
/// allocated for it.
pub fn decode_vlen_utf8(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let u32_at = |at: usize| -> Option<usize> {
        let raw = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(raw.try_into().ok()?) as usize)
    };
    let count = u32_at(0)?;
    if count > (bytes.len() - 4) / 4 {
        return None;
    }
    let mut items = Vec::with_capacity(count);
    let mut at = 4;
    for _ in 0..count {
        let len = u32_at(at)?;
        let start = at + 4;
        let end = start.checked_add(len)?;
        items.push(bytes.get(start..end)?);
        at = end;
    }
    (at == bytes.len()).then_some(items)
}

/// A float as JSON the way Zarr v3 writes fill values.
pub fn float_json(v: f64) -> Value {
    if v.is_nan() {
        Value::from("NaN")
    } else if v == f64::INFINITY {
        Value::from("Infinity")
    } else if v == f64::NEG_INFINITY {
        Value::from("-Infinity")
    } else {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

fn list_or_scalar<T>(items: &[T], f: impl Fn(&T) -> Value) -> Value {
    if items.len() == 1 {
        f(&items[0])
    } else {
        Value::Array(items.iter().map(f).collect())
    }
}

/// One attribute value as JSON: a length-1 array becomes a scalar, as
/// netCDF4-python and xarray present it.
pub fn attr_json(value: &NcAttrValue) -> Value {
    match value {
        NcAttrValue::Bytes(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::Chars(s) => Value::from(s.trim_end_matches('\0')),
        NcAttrValue::Shorts(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::Ints(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::Floats(v) => list_or_scalar(v, |x| float_json(f64::from(*x))),
        NcAttrValue::Doubles(v) => list_or_scalar(v, |x| float_json(*x)),
        NcAttrValue::UBytes(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::UShorts(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::UInts(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::Int64s(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::UInt64s(v) => list_or_scalar(v, |x| Value::from(*x)),
        NcAttrValue::Strings(v) => list_or_scalar(v, |x| Value::from(x.as_str())),
        NcAttrValue::UserDefined { .. } => Value::from(format!("{value:?}")),
    }
}

/// Attributes that only exist to encode NetCDF-4 structure in HDF5.
const INTERNAL_ATTRIBUTES: &[&str] = &[
    "_Netcdf4Dimid",
    "_Netcdf4Coordinates",
    "_NCProperties",
    "_nc3_strict",
    "DIMENSION_LIST",
    "REFERENCE_LIST",
    "CLASS",
    "NAME",
    "_IsNetcdf4",
    "_SuperblockVersion",
];

/// Attributes as a JSON object, without NetCDF-4's internal bookkeeping.
pub fn attributes_json(attrs: &[NcAttribute]) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|a| !INTERNAL_ATTRIBUTES.contains(&a.name.as_str()))
        .map(|a| (a.name.clone(), attr_json(&a.value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlen_utf8_round_trips_and_refuses_what_is_not_one() {
        let items = ["", "0001", "ünïcode", "5"];
        let bytes = encode_vlen_utf8(&items);
        assert_eq!(&bytes[..4], &4u32.to_le_bytes());
        let back = decode_vlen_utf8(&bytes).expect("decodes");
        let back: Vec<&str> = back
            .iter()
            .map(|b| std::str::from_utf8(b).expect("utf-8"))
            .collect();
        assert_eq!(back, items);
        assert_eq!(
            decode_vlen_utf8(&encode_vlen_utf8::<&str>(&[])),
            Some(vec![])
        );
        assert_eq!(
            decode_vlen_utf8(&bytes[..bytes.len() - 1]),
            None,
            "truncated"
        );
        assert_eq!(
            decode_vlen_utf8(&[&bytes[..], b"x"].concat()),
            None,
            "bytes left over"
        );
        assert_eq!(
            decode_vlen_utf8(&u32::MAX.to_le_bytes()),
            None,
            "count beyond the bytes"
        );
        assert_eq!(decode_vlen_utf8(&[1, 0]), None, "no count");
    }

    #[test]
    fn typestrs_carry_byte_order() {
        let f4 = ElementType {
            kind: Kind::Float,
            size: 4,
            endian: Endian::Little,
        };
        assert_eq!(f4.typestr(), "<f4");
        let f8 = ElementType {
            kind: Kind::Float,
            size: 8,
            endian: Endian::Big,
        };
        assert_eq!(f8.typestr(), ">f8");
        let c = ElementType {
            kind: Kind::Bytes,
            size: 1,
            endian: Endian::Big,
        };
        assert_eq!(c.typestr(), "|S1");
        let s10 = ElementType {
            kind: Kind::Bytes,
            size: 10,
            endian: Endian::Little,
        };
        assert_eq!(s10.typestr(), "|S10");
        let b = ElementType {
            kind: Kind::Bool,
            size: 1,
            endian: Endian::Little,
        };
        assert_eq!(
            (b.typestr(), b.decode(&[1])),
            ("|b1".to_string(), Some(Value::from(true)))
        );
    }

    #[test]
    fn decodes_fill_values_in_both_byte_orders() {
        let be = ElementType {
            kind: Kind::Int,
            size: 2,
            endian: Endian::Big,
        };
        assert_eq!(be.decode(&[0x80, 0x01]), Some(Value::from(-32767)));
        let le = ElementType {
            kind: Kind::Float,
            size: 4,
            endian: Endian::Little,
        };
        assert_eq!(le.decode(&f32::NAN.to_le_bytes()), Some(Value::from("NaN")));
        assert_eq!(le.decode(&1.5f32.to_le_bytes()), Some(Value::from(1.5)));
        assert_eq!(le.decode(&[0, 0]), None);
    }

    #[test]
    fn single_element_attributes_are_scalars() {
        assert_eq!(
            attr_json(&NcAttrValue::Doubles(vec![2.0])),
            Value::from(2.0)
        );
        assert_eq!(
            attr_json(&NcAttrValue::Ints(vec![1, 2])),
            serde_json::json!([1, 2])
        );
        assert_eq!(
            attr_json(&NcAttrValue::Chars("m\0".into())),
            Value::from("m")
        );
    }
}
