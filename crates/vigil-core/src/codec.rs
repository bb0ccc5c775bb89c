//! Compact storage of waveform samples (full disclosure).
//!
//! Encoding `dz`: the samples' first or second differences (whichever is smaller for the
//! chunk), zigzag-mapped and written as LEB128 varints, then compressed with zstd when that
//! helps. Lossless: the quantised integers come back exactly. Layout of the blob:
//! `[flags][varints or zstd frame]`, flags bit 0-1 = difference order (1 or 2), bit 7 = zstd.
//!
//! Older rows may hold the plain packings `i16le` / `i32le` (schema v1); [`decode`] reads all.

use std::io::Read;

use thiserror::Error;

/// Name of the current encoding, stored in `wave_chunks.enc`.
pub const ENC_DZ: &str = "dz";
const ZSTD_FLAG: u8 = 0x80;
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Error, PartialEq)]
pub enum CodecError {
    #[error("unknown sample encoding {0:?}")]
    UnknownEncoding(String),
    #[error("corrupt sample blob: {0}")]
    Corrupt(&'static str),
}

/// Encode samples; returns the encoding name and the blob.
pub fn encode(data: &[i32]) -> (&'static str, Vec<u8>) {
    let d1 = residuals(data, 1);
    let d2 = residuals(data, 2);
    let (order, res) = if varint_len(&d2) < varint_len(&d1) {
        (2u8, d2)
    } else {
        (1u8, d1)
    };
    let mut raw = Vec::with_capacity(res.len() + 1);
    for r in res {
        put_varint(&mut raw, zigzag(r));
    }
    let mut out = Vec::with_capacity(raw.len() + 1);
    match zstd::bulk::compress(&raw, ZSTD_LEVEL) {
        Ok(z) if z.len() < raw.len() => {
            out.push(order | ZSTD_FLAG);
            out.extend_from_slice(&z);
        }
        _ => {
            out.push(order);
            out.extend_from_slice(&raw);
        }
    }
    (ENC_DZ, out)
}

/// Decode a blob of `n` samples written with encoding `enc`.
pub fn decode(enc: &str, blob: &[u8], n: usize) -> Result<Vec<i32>, CodecError> {
    match enc {
        ENC_DZ => decode_dz(blob, n),
        "i16le" if n.checked_mul(2) == Some(blob.len()) => Ok(blob
            .chunks_exact(2)
            .map(|c| i32::from(i16::from_le_bytes([c[0], c[1]])))
            .collect()),
        "i32le" if n.checked_mul(4) == Some(blob.len()) => Ok(blob
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()),
        "i16le" | "i32le" => Err(CodecError::Corrupt("length does not match sample count")),
        other => Err(CodecError::UnknownEncoding(other.to_string())),
    }
}

fn decode_dz(blob: &[u8], n: usize) -> Result<Vec<i32>, CodecError> {
    let (&flags, body) = blob.split_first().ok_or(CodecError::Corrupt("empty"))?;
    let order = flags & 0x03;
    if !(1..=2).contains(&order) {
        return Err(CodecError::Corrupt("bad difference order"));
    }
    let raw;
    let bytes: &[u8] = if flags & ZSTD_FLAG != 0 {
        // Each residual of an i32 sample takes at most 5 varint bytes. Stream the frame and
        // stop past that limit, so that memory follows the data actually decompressed, never a
        // corrupt count or a size the frame header claims.
        let limit = n.saturating_mul(5).saturating_add(16);
        let mut out = Vec::new();
        zstd::stream::read::Decoder::with_buffer(body)
            .map(zstd::stream::read::Decoder::single_frame)
            .and_then(|d| {
                d.take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
                    .read_to_end(&mut out)
            })
            .map_err(|_| CodecError::Corrupt("zstd frame"))?;
        if out.len() > limit {
            return Err(CodecError::Corrupt("sample count"));
        }
        raw = out;
        &raw
    } else {
        body
    };
    // Every residual takes at least one byte.
    if n > bytes.len() {
        return Err(CodecError::Corrupt("sample count"));
    }
    let mut res = Vec::with_capacity(n);
    let mut pos = 0;
    while pos < bytes.len() {
        let (v, used) = get_varint(&bytes[pos..]).ok_or(CodecError::Corrupt("varint"))?;
        res.push(unzigzag(v));
        pos += used;
    }
    if res.len() != n {
        return Err(CodecError::Corrupt("sample count"));
    }
    integrate(&res, order)
}

/// Differences of order 1 or 2 (the first samples are differenced against zeros).
/// Computed in i64 so that no input overflows.
fn residuals(data: &[i32], order: u8) -> Vec<i64> {
    let mut out = Vec::with_capacity(data.len());
    let (mut p1, mut p2) = (0i64, 0i64);
    for &x in data {
        let x = i64::from(x);
        let pred = if order == 2 { 2 * p1 - p2 } else { p1 };
        out.push(x - pred);
        p2 = p1;
        p1 = x;
    }
    out
}

fn integrate(res: &[i64], order: u8) -> Result<Vec<i32>, CodecError> {
    let mut out = Vec::with_capacity(res.len());
    let (mut p1, mut p2) = (0i64, 0i64);
    for &r in res {
        // p1 and p2 are i32 samples, so the prediction cannot overflow; a corrupt residual can.
        let pred = if order == 2 { 2 * p1 - p2 } else { p1 };
        // Valid blobs come from i32 samples: anything else is corruption, not a sample.
        let x = pred
            .checked_add(r)
            .and_then(|x| i32::try_from(x).ok())
            .ok_or(CodecError::Corrupt("sample out of range"))?;
        out.push(x);
        p2 = p1;
        p1 = i64::from(x);
    }
    Ok(out)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn varint_len(res: &[i64]) -> usize {
    res.iter()
        .map(|&r| {
            let z = zigzag(r);
            (64 - z.leading_zeros() as usize).max(1).div_ceil(7)
        })
        .sum()
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(data: &[i32]) -> usize {
        let (enc, blob) = encode(data);
        assert_eq!(decode(enc, &blob, data.len()).as_deref(), Ok(data));
        blob.len()
    }

    #[test]
    fn round_trips_edge_cases() {
        round_trip(&[]);
        round_trip(&[0]);
        round_trip(&[i32::MAX, i32::MIN, i32::MAX, 0, -1]);
        round_trip(
            &(0..5000)
                .map(|i| (i * 7919) % 4001 - 2000)
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn smooth_signals_compress_well() {
        // A 1 Hz sine at 500 Hz, 12-bit-ish amplitude: second differences are tiny.
        let sine: Vec<i32> = (0..500)
            .map(|i| (1000.0 * (f64::from(i) * std::f64::consts::TAU / 500.0).sin()) as i32)
            .collect();
        let bytes = round_trip(&sine);
        assert!(bytes < 500 / 2, "{bytes} bytes for 500 samples");
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let (enc, blob) = encode(&[1, 2, 3, 4]);
        assert!(decode(enc, &blob, 5).is_err());
        assert!(decode(enc, &[], 0).is_err());
        assert!(decode(enc, &[0x83, 1, 2], 2).is_err());
        assert!(decode(enc, &[0x81, 0xff, 0xff], 2).is_err());
        assert!(decode(enc, &[0x01, 0xff], 1).is_err());
        assert!(decode("lz9", &blob, 4).is_err());
        assert!(decode("i16le", &[1, 2, 3], 2).is_err());
        assert_eq!(decode("i16le", &[1, 0, 255, 255], 2), Ok(vec![1, -1]));
    }

    /// Found by tests/fuzz.rs: a corrupt sample count or blob overflowed `n * 2`, `n * 5 + 16`
    /// and the residual sums (panics in debug builds), or asked for a huge allocation.
    #[test]
    fn corrupt_counts_and_residuals_are_errors() {
        assert!(decode("i16le", &[], usize::MAX).is_err());
        assert!(decode("i32le", &[], usize::MAX / 2).is_err());
        let (enc, blob) = encode(&[1, 2, 3, 4]);
        assert!(decode(enc, &blob, usize::MAX).is_err());
        let (enc, zblob) = encode(&vec![7; 1000]);
        assert_eq!(zblob[0] & ZSTD_FLAG, ZSTD_FLAG, "compressed");
        assert!(decode(enc, &zblob, usize::MAX).is_err());
        assert!(decode(enc, &zblob, 10).is_err());
        // Residuals of i64::MAX (zigzag u64::MAX - 1): their sum overflowed.
        let mut raw = vec![1u8];
        for _ in 0..2 {
            put_varint(&mut raw, zigzag(i64::MAX));
        }
        assert_eq!(
            decode(ENC_DZ, &raw, 2),
            Err(CodecError::Corrupt("sample out of range"))
        );
        assert_eq!(
            decode(ENC_DZ, &[1, 2, 0x80, 0x80, 0x80, 0x80, 0x10], 2),
            Err(CodecError::Corrupt("sample out of range")),
            "1 then a residual beyond i32"
        );
    }
}
