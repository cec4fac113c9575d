//! Records (HDF5 compound types) as Zarr's `struct` data type: the pure half.
//!
//! zarr-python's `struct` is packed: its fields lie end to end in declared order with no
//! padding, and the `bytes` codec gives the whole record one byte order. A record stored that
//! way in the file can be referenced as it is. Any other layout (padding, fields out of
//! order, mixed byte order) would need its bytes moved before a Zarr reader could decode them,
//! which a byte-range reference cannot do: such a record is refused with the reason. Which
//! HDF5 member types are accepted is decided in `hdf5.rs`.

use serde_json::{Map, Value};

use crate::model::{Codec, StructField};
use crate::values::{ElementType, Endian, Kind};

/// One member of a record: its name, where it starts in the record, and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// Field name.
    pub name: String,
    /// Byte offset in the record.
    pub offset: u32,
    /// Type of the field: a single value or a nested record.
    pub field: FieldType,
}

/// What one member of a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldType {
    /// A single fixed-size value.
    Value(ElementType),
    /// A nested record (a compound member that is itself a compound), packed like the outer.
    Record(Record),
}

impl FieldType {
    fn size(&self) -> u32 {
        match self {
            FieldType::Value(e) => e.size,
            FieldType::Record(r) => r.size,
        }
    }
}

/// A record whose stored bytes are Zarr's packed `struct` as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// Size of one record in bytes.
    pub size: u32,
    members: Vec<Member>,
    /// Byte order of the multi-byte numeric members, nested ones included; little-endian when
    /// only byte strings are wider than a byte; `None` when every member is a single byte.
    order: Option<Endian>,
}

impl Record {
    /// The record of `size` bytes with `members` in declared order, or why Zarr's packed
    /// struct cannot describe its bytes.
    #[cfg(test)]
    pub fn new(size: u32, members: Vec<Member>) -> Result<Record, String> {
        Record::at("", size, members)
    }

    /// As [`Record::new`], for the record at field path `path` (`inner.deep`) inside an outer
    /// one (`""` for the outermost), which messages name.
    pub fn at(path: &str, size: u32, members: Vec<Member>) -> Result<Record, String> {
        let layout: Vec<(u32, u32)> = members.iter().map(|m| (m.offset, m.field.size())).collect();
        check_packed(path, size, &layout)?;
        let mut leaves = Vec::new();
        collect_leaves(path, &members, &mut leaves);
        // zarr-python asks for a byte order whenever a field is wider than a byte, byte strings
        // included (it warns, assuming little-endian, without one): they read the same either way.
        let order = common_byte_order(&leaves)?.or_else(|| {
            leaves
                .iter()
                .any(|(_, e)| e.size > 1)
                .then_some(Endian::Little)
        });
        Ok(Record {
            size,
            members,
            order,
        })
    }

    /// numpy's typestr of the whole record: `|V{size}`, so that the item size reads off it.
    pub fn typestr(&self) -> String {
        format!("|V{}", self.size)
    }

    /// The fields in order, as the manifest lists them, nested records with their own.
    pub fn fields(&self) -> Vec<StructField> {
        self.members
            .iter()
            .map(|m| match &m.field {
                FieldType::Value(e) => StructField::value(m.name.clone(), e.typestr()),
                FieldType::Record(r) => StructField {
                    name: m.name.clone(),
                    dtype: r.typestr(),
                    fields: r.fields(),
                },
            })
            .collect()
    }

    /// The `bytes` codec with the members' byte order, or without one when every member is a
    /// single byte (as for one-byte types), as zarr-python writes it for the numpy dtype.
    pub fn bytes_codec(&self) -> Codec {
        match self.order {
            Some(Endian::Little) => Codec::new("bytes", [("endian", Value::from("little"))]),
            Some(Endian::Big) => Codec::new("bytes", [("endian", Value::from("big"))]),
            None => Codec::new("bytes", []),
        }
    }

    /// The fill value as Zarr v3 writes a struct's (an object of each field's value, a nested
    /// record's an object inside) from the record's raw bytes, or `None` when they are too
    /// short to hold it.
    pub fn fill_value(&self, raw: &[u8]) -> Option<Value> {
        if raw.len() < usize::try_from(self.size).ok()? {
            return None;
        }
        let mut out = Map::new();
        for m in &self.members {
            let at = raw.get(usize::try_from(m.offset).ok()?..)?;
            let value = match &m.field {
                FieldType::Value(e) => field_value(*e, at)?,
                FieldType::Record(r) => r.fill_value(at)?,
            };
            out.insert(m.name.clone(), value);
        }
        Some(Value::Object(out))
    }

    /// Zarr's default fill value of the struct: every field zero (`""` for byte strings),
    /// nested records' too.
    pub fn default_fill(&self) -> Value {
        let zero = [0u8; 8];
        let fields = self.members.iter().map(|m| {
            let value = match &m.field {
                FieldType::Record(r) => r.default_fill(),
                FieldType::Value(e) if e.kind == Kind::Bytes => Value::from(""),
                FieldType::Value(e) => field_value(*e, &zero).unwrap_or(Value::from(0)),
            };
            (m.name.clone(), value)
        });
        Value::Object(fields.collect())
    }
}

/// A field's path for messages: `inner.x` for `x` in the record at `inner`.
pub(crate) fn field_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The single-value fields of `members`, nested ones included, by path, in byte order.
fn collect_leaves(path: &str, members: &[Member], out: &mut Vec<(String, ElementType)>) {
    for m in members {
        let here = field_path(path, &m.name);
        match &m.field {
            FieldType::Value(e) => out.push((here, *e)),
            FieldType::Record(r) => collect_leaves(&here, &r.members, out),
        }
    }
}

/// One field's value as Zarr v3 JSON: numbers as [`ElementType::decode`] gives them, byte
/// strings as base64 of their bytes up to the trailing NULs (numpy's `S` value, which Zarr's
/// `null_terminated_bytes` writes so).
fn field_value(element: ElementType, raw: &[u8]) -> Option<Value> {
    if element.kind != Kind::Bytes {
        return element.decode(raw);
    }
    let bytes = raw.get(..usize::try_from(element.size).ok()?)?;
    let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    Some(Value::from(base64(&bytes[..end])))
}

/// Checks that fields at `(offset, size)`, in declared order, fill a record of `size` bytes
/// end to end: Zarr's struct is packed, so any gap, overlap or other order would make Zarr
/// read other bytes than the file's type means. `path` names a nested record (`""` for the
/// outermost).
pub(crate) fn check_packed(path: &str, size: u32, layout: &[(u32, u32)]) -> Result<(), String> {
    const PACKED: &str =
        "Zarr's struct data type is packed, so its bytes cannot be referenced as they are";
    if layout.is_empty() {
        let which = if path.is_empty() {
            String::new()
        } else {
            format!(" (nested record {path:?})")
        };
        return Err(format!(
            "compound type with no fields{which}: Zarr's struct data type needs one"
        ));
    }
    let offsets: Vec<u32> = layout.iter().map(|(offset, _)| *offset).collect();
    let described = if path.is_empty() {
        format!("fields at offsets {offsets:?}, record of {size} bytes")
    } else {
        format!("nested record {path:?}: fields at offsets {offsets:?}, record of {size} bytes")
    };
    if offsets.windows(2).any(|w| w[1] < w[0]) {
        return Err(format!(
            "compound type whose fields are stored out of declared order ({described}): Zarr's struct data type is packed in field order, so its bytes cannot be referenced as they are"
        ));
    }
    let mut end = 0u64;
    let mut gap = false;
    for &(offset, len) in layout {
        let offset = u64::from(offset);
        if offset < end {
            let sizes: Vec<u32> = layout.iter().map(|(_, len)| *len).collect();
            return Err(format!(
                "compound type with overlapping fields ({described}, field sizes {sizes:?}): {PACKED}"
            ));
        }
        gap |= offset > end;
        end = offset + u64::from(len);
    }
    if end > u64::from(size) {
        return Err(format!(
            "compound type whose fields run past the end of the record ({described}, fields end at {end})"
        ));
    }
    if gap || end < u64::from(size) {
        return Err(format!(
            "compound type with padding ({described}): {PACKED}"
        ));
    }
    Ok(())
}

/// The one byte order of the fields that have one (multi-byte numbers), named by path, or
/// why the record has several: the `bytes` codec gives the whole record, nested records
/// included, one.
fn common_byte_order(leaves: &[(String, ElementType)]) -> Result<Option<Endian>, String> {
    let mut ordered = leaves
        .iter()
        .filter(|(_, e)| e.size > 1 && e.kind != Kind::Bytes);
    let Some((first_name, first)) = ordered.next() else {
        return Ok(None);
    };
    let word = |e: Endian| match e {
        Endian::Little => "little-endian",
        Endian::Big => "big-endian",
    };
    match ordered.find(|(_, e)| e.endian != first.endian) {
        None => Ok(Some(first.endian)),
        Some((other_name, other)) => Err(format!(
            "compound type with fields of mixed byte order ({first_name:?} {}, {other_name:?} {}): Zarr's bytes codec gives the whole record one byte order",
            word(first.endian),
            word(other.endian)
        )),
    }
}

/// Standard base64 with padding (RFC 4648), as Zarr v3 writes byte strings in JSON.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, offset: u32, kind: Kind, size: u32, endian: Endian) -> Member {
        Member {
            name: name.into(),
            offset,
            field: FieldType::Value(ElementType { kind, size, endian }),
        }
    }

    fn nested(name: &str, offset: u32, record: Record) -> Member {
        Member {
            name: name.into(),
            offset,
            field: FieldType::Record(record),
        }
    }

    #[test]
    fn packed_records_pass_and_every_other_layout_is_named() {
        assert_eq!(
            check_packed("", 16, &[(0, 4), (4, 8), (12, 3), (15, 1)]),
            Ok(())
        );
        let padded = check_packed("", 16, &[(0, 1), (8, 8)]).expect_err("gap");
        assert_eq!(
            padded,
            "compound type with padding (fields at offsets [0, 8], record of 16 bytes): Zarr's struct data type is packed, so its bytes cannot be referenced as they are"
        );
        let trailing = check_packed("", 8, &[(0, 4), (4, 2)]).expect_err("trailing padding");
        assert!(trailing.contains("with padding"), "{trailing}");
        let order = check_packed("", 8, &[(4, 4), (0, 4)]).expect_err("order");
        assert!(
            order.contains("out of declared order") && order.contains("[4, 0]"),
            "{order}"
        );
        let overlap = check_packed("", 8, &[(0, 8), (4, 4)]).expect_err("overlap");
        assert!(overlap.contains("overlapping"), "{overlap}");
        let past = check_packed("", 4, &[(0, 8)]).expect_err("past the end");
        assert!(past.contains("past the end"), "{past}");
        assert!(check_packed("", 0, &[])
            .expect_err("empty")
            .contains("no fields"));
        // Offsets near u32::MAX do not overflow.
        assert!(check_packed("", u32::MAX, &[(u32::MAX, u32::MAX)]).is_err());
    }

    #[test]
    fn one_byte_order_goes_to_the_bytes_codec_and_mixed_orders_are_refused() {
        let big = Record::new(
            15,
            vec![
                member("t", 0, Kind::Int, 4, Endian::Big),
                member("v", 4, Kind::Float, 8, Endian::Big),
                // Byte strings and single bytes have no byte order of their own.
                member("c", 12, Kind::Bytes, 2, Endian::Little),
                member("ok", 14, Kind::Bool, 1, Endian::Little),
            ],
        )
        .expect("packed");
        assert_eq!(big.bytes_codec().configuration["endian"], "big");
        assert_eq!(big.typestr(), "|V15");
        let bytes_only = Record::new(
            4,
            vec![
                member("s", 0, Kind::Bytes, 3, Endian::Little),
                member("u", 3, Kind::UInt, 1, Endian::Big),
            ],
        )
        .expect("packed");
        // A byte string wider than a byte: zarr-python writes (and wants) little-endian.
        assert_eq!(bytes_only.bytes_codec().configuration["endian"], "little");
        let mixed = Record::new(
            12,
            vec![
                member("a", 0, Kind::Int, 4, Endian::Little),
                member("b", 4, Kind::Float, 8, Endian::Big),
            ],
        )
        .expect_err("mixed");
        assert!(
            mixed.contains("mixed byte order") && mixed.contains("\"b\" big-endian"),
            "{mixed}"
        );
    }

    #[test]
    fn fill_values_are_zarr_struct_json() {
        let record = Record::new(
            16,
            vec![
                member("a", 0, Kind::Int, 4, Endian::Little),
                member("b", 4, Kind::Float, 8, Endian::Little),
                member("s", 12, Kind::Bytes, 3, Endian::Little),
                member("u", 15, Kind::UInt, 1, Endian::Little),
            ],
        )
        .expect("packed");
        let mut raw = Vec::new();
        raw.extend_from_slice(&(-1i32).to_le_bytes());
        raw.extend_from_slice(&f64::NAN.to_le_bytes());
        raw.extend_from_slice(b"ab\0");
        raw.push(7);
        assert_eq!(
            record.fill_value(&raw),
            Some(serde_json::json!({"a": -1, "b": "NaN", "s": "YWI=", "u": 7}))
        );
        assert_eq!(record.fill_value(&raw[..15]), None);
        assert_eq!(
            record.default_fill(),
            serde_json::json!({"a": 0, "b": 0.0, "s": "", "u": 0})
        );
        assert_eq!(record.fill_value(&[0; 16]), Some(record.default_fill()));
    }

    /// `{a <i4, inner {x <f4, deep {s |S2, d <f8}}}`, 4 + 4 + 2 + 8 bytes, all `endian`.
    fn two_levels(endian: Endian) -> Record {
        let deep = Record::at(
            "inner.deep",
            10,
            vec![
                member("s", 0, Kind::Bytes, 2, Endian::Little),
                member("d", 2, Kind::Float, 8, endian),
            ],
        )
        .expect("packed");
        let inner = Record::at(
            "inner",
            14,
            vec![
                member("x", 0, Kind::Float, 4, endian),
                nested("deep", 4, deep),
            ],
        )
        .expect("packed");
        Record::new(
            18,
            vec![
                member("a", 0, Kind::Int, 4, endian),
                nested("inner", 4, inner),
            ],
        )
        .expect("packed")
    }

    #[test]
    fn nested_records_list_their_fields_and_fill_values_nest() {
        let record = two_levels(Endian::Big);
        assert_eq!(record.typestr(), "|V18");
        assert_eq!(record.bytes_codec().configuration["endian"], "big");
        let fields = serde_json::to_value(record.fields()).expect("json");
        assert_eq!(
            fields,
            serde_json::json!([
                {"name": "a", "dtype": ">i4"},
                {"name": "inner", "dtype": "|V14", "fields": [
                    {"name": "x", "dtype": ">f4"},
                    {"name": "deep", "dtype": "|V10", "fields": [
                        {"name": "s", "dtype": "|S2"},
                        {"name": "d", "dtype": ">f8"},
                    ]},
                ]},
            ])
        );
        let mut raw = Vec::new();
        raw.extend_from_slice(&(-5i32).to_be_bytes());
        raw.extend_from_slice(&1.5f32.to_be_bytes());
        raw.extend_from_slice(b"q\0");
        raw.extend_from_slice(&f64::INFINITY.to_be_bytes());
        assert_eq!(
            record.fill_value(&raw),
            Some(
                serde_json::json!({"a": -5, "inner": {"x": 1.5, "deep": {"s": "cQ==", "d": "Infinity"}}})
            )
        );
        assert_eq!(record.fill_value(&raw[..17]), None);
        assert_eq!(
            record.default_fill(),
            serde_json::json!({"a": 0, "inner": {"x": 0.0, "deep": {"s": "", "d": 0.0}}})
        );
        assert_eq!(record.fill_value(&[0; 18]), Some(record.default_fill()));
    }

    #[test]
    fn refusals_inside_nested_records_name_the_path() {
        let inner = Record::at(
            "inner",
            8,
            vec![member("x", 0, Kind::Float, 4, Endian::Big)],
        )
        .expect_err("trailing padding");
        assert!(
            inner.starts_with("compound type with padding (nested record \"inner\": fields at offsets [0], record of 8 bytes)"),
            "{inner}"
        );
        let inner = Record::at(
            "inner",
            8,
            vec![
                member("x", 0, Kind::Float, 4, Endian::Big),
                member("y", 4, Kind::Float, 4, Endian::Little),
            ],
        )
        .expect_err("mixed inside");
        assert!(
            inner.contains("(\"inner.x\" big-endian, \"inner.y\" little-endian)"),
            "{inner}"
        );
        // Each level alone has one byte order; together they have two.
        let little = Record::at(
            "inner",
            4,
            vec![member("x", 0, Kind::Float, 4, Endian::Little)],
        )
        .expect("packed");
        let mixed = Record::new(
            8,
            vec![
                member("a", 0, Kind::Int, 4, Endian::Big),
                nested("inner", 4, little),
            ],
        )
        .expect_err("mixed across levels");
        assert!(
            mixed.contains("(\"a\" big-endian, \"inner.x\" little-endian)"),
            "{mixed}"
        );
        assert!(check_packed("inner", 0, &[])
            .expect_err("empty")
            .contains("no fields (nested record \"inner\")"));
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
