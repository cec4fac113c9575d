//! HDF5 filters that `hdf5-reader` does not decode itself (it has deflate,
//! shuffle and fletcher32), for [`crate::data::read_region`]: zstd (32015),
//! bzip2 (307) and blosc (32001), each decoding the byte format the HDF5 filter
//! plugin writes (hdf5plugin's and netCDF-C 4.9's), through kept libraries:
//! `zstd`, `bzip2`, and zarrs' safe binding of c-blosc. These decode the
//! *filter's* format as HDF5 recorded it, which is what makes them a check on
//! the Zarr codecs floe describes for the same bytes.

use std::io::Read;

use hdf5_core::FilterDescription;
use hdf5_reader::error::Error as ReaderError;
use hdf5_reader::FilterRegistry;

/// HDF5 filter id of zstd (hdf5plugin, netCDF-C `nc_def_var_zstandard`).
pub const FILTER_ZSTD: u16 = 32015;
/// HDF5 filter id of bzip2 (netCDF-C `nc_def_var_bzip2`).
pub const FILTER_BZIP2: u16 = 307;
/// HDF5 filter id of blosc (hdf5plugin, netCDF-C `nc_def_var_blosc`).
pub const FILTER_BLOSC: u16 = 32001;

/// Largest chunk one filter may inflate to: far beyond any NetCDF chunk, small
/// enough that a hostile frame cannot exhaust memory.
const MAX_DECODED: u64 = 1 << 31;

/// The reader's built-in filters plus zstd, bzip2 and blosc.
pub fn registry() -> FilterRegistry {
    let mut registry = FilterRegistry::new();
    registry.register(FILTER_ZSTD, Box::new(|_, data, _| decode_zstd(data)));
    registry.register(FILTER_BZIP2, Box::new(|_, data, _| decode_bzip2(data)));
    registry.register(FILTER_BLOSC, Box::new(decode_blosc));
    registry
}

fn bounded_read(reader: impl Read, what: &str) -> Result<Vec<u8>, ReaderError> {
    let mut out = Vec::new();
    reader
        .take(MAX_DECODED + 1)
        .read_to_end(&mut out)
        .map_err(|e| ReaderError::DecompressionError(format!("{what}: {e}")))?;
    if out.len() as u64 > MAX_DECODED {
        return Err(ReaderError::DecompressionError(format!(
            "{what}: inflates past {MAX_DECODED} bytes"
        )));
    }
    Ok(out)
}

fn decode_zstd(data: &[u8]) -> Result<Vec<u8>, ReaderError> {
    let decoder = zstd::stream::read::Decoder::new(data)
        .map_err(|e| ReaderError::DecompressionError(format!("zstd: {e}")))?;
    bounded_read(decoder, "zstd")
}

fn decode_bzip2(data: &[u8]) -> Result<Vec<u8>, ReaderError> {
    bounded_read(bzip2::read::BzDecoder::new(data), "bzip2")
}

fn decode_blosc(_: &FilterDescription, data: &[u8], _: usize) -> Result<Vec<u8>, ReaderError> {
    use zarrs::array::codec::bytes_to_bytes::blosc::{blosc_decompress_bytes, blosc_nbytes};
    let size = blosc_nbytes(data)
        .filter(|n| (*n as u64) <= MAX_DECODED)
        .ok_or_else(|| ReaderError::DecompressionError("blosc: not a valid blosc frame".into()))?;
    blosc_decompress_bytes(data, size, 1)
        .map_err(|e| ReaderError::DecompressionError(format!("blosc: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zstd_and_bzip2_frames_decode_and_garbage_is_an_error() {
        let plain: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let z = zstd::encode_all(plain.as_slice(), 3).expect("in test");
        assert_eq!(decode_zstd(&z).expect("in test"), plain);
        let mut b = Vec::new();
        std::io::Write::write_all(
            &mut bzip2::write::BzEncoder::new(&mut b, bzip2::Compression::fast()),
            &plain,
        )
        .expect("in test");
        assert_eq!(decode_bzip2(&b).expect("in test"), plain);
        assert!(decode_zstd(b"not zstd").is_err());
        assert!(decode_bzip2(b"not bzip2").is_err());
        let none = FilterDescription {
            id: FILTER_BLOSC,
            name: None,
            client_data: vec![],
        };
        assert!(decode_blosc(&none, b"short", 4).is_err());
    }
}
