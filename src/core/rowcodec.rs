//! The compact row encoding stored in `sch_chameleon.t_log_replica` (instead of two JSONB
//! documents per event): a varint count, then per value a varint tag (0 = NULL, n + 1 =
//! n bytes follow) and the bytes of the value's PostgreSQL text form.

use crate::core::error::{CoreError, CoreResult};

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(buf: &[u8], at: &mut usize) -> CoreResult<u64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *buf.get(*at).ok_or_else(|| CoreError::codec("row encoding truncated in a length".into()))?;
        *at += 1;
        if shift > 63 {
            return Err(CoreError::codec("row encoding has an overlong length".into()));
        }
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
}

pub fn encode<S: AsRef<[u8]>>(values: &[Option<S>]) -> Vec<u8> {
    let size: usize = values.iter().map(|v| v.as_ref().map_or(1, |s| s.as_ref().len() + 3)).sum();
    let mut out = Vec::with_capacity(size + 3);
    encode_into(&mut out, values);
    out
}

/// Appends the encoding of `values` to `out`.
pub fn encode_into<S: AsRef<[u8]>>(out: &mut Vec<u8>, values: &[Option<S>]) {
    put_varint(out, values.len() as u64);
    for v in values {
        match v {
            None => out.push(0),
            Some(s) => {
                let s = s.as_ref();
                put_varint(out, s.len() as u64 + 1);
                out.extend_from_slice(s);
            }
        }
    }
}

/// Decodes a row of text values (the form replay uses).
pub fn decode(buf: &[u8]) -> CoreResult<Vec<Option<&str>>> {
    decode_bytes(buf)?
        .into_iter()
        .map(|v| match v {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| CoreError::codec("row encoding holds a value that is not UTF-8".into())),
        })
        .collect()
}

/// Decodes a row of raw byte values (the form discarded rows keep: the exact source bytes).
pub fn decode_bytes(buf: &[u8]) -> CoreResult<Vec<Option<&[u8]>>> {
    let mut at = 0;
    let n = get_varint(buf, &mut at)? as usize;
    if n > buf.len() {
        return Err(CoreError::codec(format!("row encoding claims {n} values in {} bytes", buf.len())));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = get_varint(buf, &mut at)?;
        if tag == 0 {
            out.push(None);
            continue;
        }
        let len = (tag - 1) as usize;
        let bytes = buf
            .get(at..at.saturating_add(len))
            .ok_or_else(|| CoreError::codec("row encoding truncated in a value".into()))?;
        at += len;
        out.push(Some(bytes));
    }
    if at != buf.len() {
        return Err(CoreError::codec("row encoding has trailing bytes".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let long = "x".repeat(300);
        let row = vec![Some("1"), None, Some(""), Some(long.as_str()), Some("żółw")];
        let enc = encode(&row);
        assert_eq!(decode(&enc).unwrap(), row);
        assert_eq!(decode(&encode::<&str>(&[])).unwrap(), Vec::<Option<&str>>::new());
        let raw: Vec<Option<&[u8]>> = vec![Some(b"\xff\x00"), None];
        assert_eq!(decode_bytes(&encode(&raw)).unwrap(), raw);
        assert!(decode(&encode(&raw)).is_err());
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let enc = encode(&[Some("hello"), None]);
        for cut in 0..enc.len() {
            assert!(decode(&enc[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = enc.clone();
        extra.push(0);
        assert!(decode(&extra).is_err());
        assert!(decode(&[0xff; 12]).is_err());
    }
}
