//! Value conversion: MySQL values to the text input form of their PostgreSQL column type.
//!
//! One module serves both paths so that a change is never applied with a value the copy
//! would have written differently: `from_text` takes the text-protocol bytes the initial copy
//! reads, `from_binlog` takes the values decoded from row events. A value PostgreSQL cannot
//! store, or that would change meaning (zero dates, TIME outside 00:00..24:00, invalid UTF-8,
//! NUL in text), is an error with a reason; callers put the row in `discarded_rows`.

use crate::core::types::{Charset, ValueKind, ZeroDates};
use mysql::binlog::value::BinlogValue;
use mysql::Value;

/// Why a value was refused. Callers add the table and column.
pub type ValueResult = Result<String, String>;

fn utf8(bytes: &[u8]) -> Result<&str, String> {
    let s =
        std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8 byte sequence at byte {}", e.valid_up_to()))?;
    if s.contains('\0') {
        return Err("text contains a NUL byte, which PostgreSQL cannot store".into());
    }
    Ok(s)
}

/// Windows-1252's 0x80..0x9F (MySQL's latin1); MySQL keeps the five unassigned bytes as the
/// C1 controls of the same value.
const CP1252_HIGH: [char; 32] = [
    '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{2c6}', '\u{2030}',
    '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}', '\u{8f}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}',
    '\u{201d}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}',
    '\u{17e}', '\u{178}',
];

/// Character data from the binlog, in the column's character set, as UTF-8.
fn decode_text(cs: Charset, bytes: &[u8]) -> ValueResult {
    let units16 = |little: bool| -> Result<String, String> {
        if !bytes.len().is_multiple_of(2) {
            return Err(format!("UTF-16 value of odd length {}", bytes.len()));
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| if little { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
            .collect();
        String::from_utf16(&units).map_err(|_| "invalid UTF-16 sequence".to_string())
    };
    let s = match cs {
        Charset::Utf8 | Charset::Other => return utf8(bytes).map(str::to_string),
        Charset::Ascii => {
            if let Some(p) = bytes.iter().position(|b| *b >= 0x80) {
                return Err(format!("byte {:#04x} at {p} is not ASCII", bytes[p]));
            }
            bytes.iter().map(|b| *b as char).collect()
        }
        Charset::Latin1 => bytes
            .iter()
            .map(|&b| match b {
                0x80..=0x9f => CP1252_HIGH[(b - 0x80) as usize],
                _ => b as char,
            })
            .collect(),
        Charset::Utf16 => units16(false)?,
        Charset::Utf16Le => units16(true)?,
        Charset::Utf32 => {
            if !bytes.len().is_multiple_of(4) {
                return Err(format!("UTF-32 value of length {}", bytes.len()));
            }
            bytes
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).ok_or("invalid UTF-32 code point")
                })
                .collect::<Result<String, _>>()?
        }
    };
    if s.contains('\0') {
        return Err("text contains a NUL character, which PostgreSQL cannot store".into());
    }
    Ok(s)
}

fn numeric_text(bytes: &[u8]) -> ValueResult {
    let s = std::str::from_utf8(bytes).map_err(|_| "number is not ASCII".to_string())?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) {
        return Err(format!("\"{s}\" is not a number"));
    }
    Ok(s.to_string())
}

/// Appends `bytes` in lower-case hex (a table lookup per byte: blobs pass here whole).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
}

pub fn bytea_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("\\x");
    push_hex(&mut out, bytes);
    out
}

/// A MySQL spatial value (4-byte little-endian SRID, then WKB) as EWKB: the WKB itself when
/// the SRID is 0, otherwise with the SRID flag and the SRID after the type, as PostGIS writes
/// it. Nothing is lost: the SRID stays with the geometry.
pub fn ewkb(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < 9 {
        return Err(format!("spatial value of {} bytes is too short to be a geometry", bytes.len()));
    }
    let srid = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let wkb = &bytes[4..];
    let little = match wkb[0] {
        0 => false,
        1 => true,
        other => return Err(format!("spatial value has WKB byte order {other}, neither 0 nor 1")),
    };
    if srid == 0 {
        return Ok(wkb.to_vec());
    }
    let raw_type = [wkb[1], wkb[2], wkb[3], wkb[4]];
    let gtype = if little { u32::from_le_bytes(raw_type) } else { u32::from_be_bytes(raw_type) };
    let (flagged, srid) = if little {
        ((gtype | 0x2000_0000).to_le_bytes(), srid.to_le_bytes())
    } else {
        ((gtype | 0x2000_0000).to_be_bytes(), srid.to_be_bytes())
    };
    let mut out = Vec::with_capacity(wkb.len() + 4);
    out.push(wkb[0]);
    out.extend_from_slice(&flagged);
    out.extend_from_slice(&srid);
    out.extend_from_slice(&wkb[5..]);
    Ok(out)
}

fn spatial(bytes: &[u8], postgis: bool) -> ValueResult {
    let e = ewkb(bytes)?;
    if postgis {
        let mut out = String::new();
        push_hex(&mut out, &e);
        Ok(out)
    } else {
        Ok(bytea_hex(&e))
    }
}

/// BINARY(n) as MySQL stores it: right-padded with zero bytes to n.
fn fixed_binary(bytes: &[u8], n: u32) -> ValueResult {
    if bytes.len() > n as usize {
        return Err(format!("BINARY({n}) value of {} bytes", bytes.len()));
    }
    let mut padded = bytes.to_vec();
    padded.resize(n as usize, 0);
    Ok(bytea_hex(&padded))
}

fn bit_string(bytes: &[u8], n: u32) -> ValueResult {
    let mut v: u128 = 0;
    if bytes.len() > 16 {
        return Err("BIT value longer than 64 bits".into());
    }
    for b in bytes {
        v = (v << 8) | *b as u128;
    }
    let n = n as usize;
    if n < 128 && v >> n != 0 {
        return Err(format!("BIT value wider than bit({n})"));
    }
    Ok((0..n).rev().map(|i| if (v >> i) & 1 == 1 { '1' } else { '0' }).collect())
}

/// Brings an integer decoded without (or with wrong) signedness into the column's range:
/// unsigned columns reinterpret negative values, signed ones sign-extend (MEDIUMINT).
fn normalize_int(v: i128, bits: u8, unsigned: bool) -> Result<i128, String> {
    let width = 1i128 << bits;
    let v = if unsigned && v < 0 {
        v + width
    } else if !unsigned && bits < 64 && v >= width / 2 {
        v - width
    } else {
        v
    };
    let (min, max) = if unsigned { (0, width - 1) } else { (-width / 2, width / 2 - 1) };
    if v < min || v > max {
        return Err(format!("integer {v} out of range for a {bits}-bit column"));
    }
    Ok(v)
}

fn check_date(y: u32, m: u32, d: u32) -> Result<(), String> {
    if y == 0 || m == 0 || d == 0 {
        return Err(format!("zero date {y:04}-{m:02}-{d:02} has no PostgreSQL equivalent"));
    }
    if m > 12 || d > 31 {
        return Err(format!("invalid date {y:04}-{m:02}-{d:02}"));
    }
    Ok(())
}

fn fmt_datetime(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> String {
    if us == 0 {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
    }
}

fn fmt_time(hours: u64, m: u32, s: u32, us: u32) -> ValueResult {
    if hours > 24 || (hours == 24 && (m, s, us) != (0, 0, 0)) {
        return Err(format!("TIME {hours}:{m:02}:{s:02} is outside PostgreSQL's 00:00:00..24:00:00"));
    }
    Ok(if us == 0 { format!("{hours:02}:{m:02}:{s:02}") } else { format!("{hours:02}:{m:02}:{s:02}.{us:06}") })
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A binlog TIMESTAMP (seconds since the epoch; 0 is MySQL's zero timestamp).
fn epoch(z: ZeroDates, secs: i64, us: u32) -> Result<Option<String>, String> {
    if secs == 0 && us == 0 {
        return zero_value(z, "zero timestamp 0000-00-00 00:00:00 has no PostgreSQL equivalent".into());
    }
    fmt_epoch(secs, us).map(Some)
}

/// A TIMESTAMP as seconds since the epoch, rendered as a UTC instant.
fn fmt_epoch(secs: i64, us: u32) -> ValueResult {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    Ok(format!("{}+00", fmt_datetime(y as u32, m, d, rem / 3600, rem / 60 % 60, rem % 60, us)))
}

fn parse_u32(s: &str) -> Option<u32> {
    s.parse().ok()
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` from the text protocol, checked for zero parts.
fn text_datetime(s: &str, with_time: bool) -> ValueResult {
    let (date, time) = s.split_once(' ').unwrap_or((s, ""));
    let mut dp = date.split('-').map(parse_u32);
    let (y, m, d) = match (dp.next().flatten(), dp.next().flatten(), dp.next().flatten()) {
        (Some(y), Some(m), Some(d)) => (y, m, d),
        _ => return Err(format!("\"{s}\" is not a date")),
    };
    check_date(y, m, d)?;
    if !with_time {
        return Ok(format!("{y:04}-{m:02}-{d:02}"));
    }
    Ok(if time.is_empty() { format!("{y:04}-{m:02}-{d:02} 00:00:00") } else { s.to_string() })
}

/// A TIME from the text protocol: (negative, hours, minutes, seconds, microseconds).
fn parse_text_time(s: &str) -> Result<(bool, u64, u32, u32, u32), String> {
    let neg = s.starts_with('-');
    let body = s.trim_start_matches('-');
    let (hms, frac) = body.split_once('.').unwrap_or((body, ""));
    let mut p = hms.split(':');
    let h: u64 = p.next().and_then(|x| x.parse().ok()).ok_or(format!("\"{s}\" is not a time"))?;
    let m = p.next().and_then(parse_u32).ok_or(format!("\"{s}\" is not a time"))?;
    let sec = p.next().and_then(parse_u32).ok_or(format!("\"{s}\" is not a time"))?;
    let us = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<6}");
        padded.get(..6).and_then(parse_u32).ok_or(format!("\"{s}\" is not a time"))?
    };
    if m > 59 || sec > 59 || p.next().is_some() {
        return Err(format!("\"{s}\" is not a time"));
    }
    Ok((neg && (h, m, sec, us) != (0, 0, 0, 0), h, m, sec, us))
}

fn text_time(s: &str) -> ValueResult {
    let (neg, h, m, sec, us) = parse_text_time(s)?;
    if neg {
        return Err(format!("negative TIME {s} has no PostgreSQL time equivalent"));
    }
    fmt_time(h, m, sec, us)
}

/// A TIME as a PostgreSQL interval: the sign covers the whole `h:mm:ss.ffffff` field, hours
/// beyond 24 stay hours (no days are made up), microseconds exact.
fn fmt_interval(neg: bool, hours: u64, m: u32, s: u32, us: u32) -> String {
    let sign = if neg { "-" } else { "" };
    if us == 0 {
        format!("{sign}{hours:02}:{m:02}:{s:02}")
    } else {
        format!("{sign}{hours:02}:{m:02}:{s:02}.{us:06}")
    }
}

/// MariaDB's UUID: its 16 bytes in text order (the binlog drops trailing zero bytes).
fn uuid_text(bytes: &[u8]) -> ValueResult {
    if bytes.len() > 16 {
        return Err(format!("UUID value of {} bytes", bytes.len()));
    }
    let mut b = [0u8; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    let mut out = String::with_capacity(36);
    for (i, chunk) in [&b[..4], &b[4..6], &b[6..8], &b[8..10], &b[10..]].iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        push_hex(&mut out, chunk);
    }
    Ok(out)
}

/// A UUID as the text protocol writes it, checked (8-4-4-4-12 hex digits).
fn text_uuid(s: &str) -> ValueResult {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    if !ok {
        return Err(format!("\"{s}\" is not a UUID"));
    }
    Ok(s.to_ascii_lowercase())
}

/// MariaDB's INET6 (16 bytes) or INET4 (4 bytes) from the binlog (trailing zero bytes dropped).
fn inet_bytes(bytes: &[u8], v4: bool) -> ValueResult {
    let width = if v4 { 4 } else { 16 };
    if bytes.len() > width {
        return Err(format!("INET{} value of {} bytes", if v4 { 4 } else { 6 }, bytes.len()));
    }
    let mut b = [0u8; 16];
    b[..bytes.len()].copy_from_slice(bytes);
    Ok(if v4 {
        std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()
    } else {
        std::net::Ipv6Addr::from(b).to_string()
    })
}

/// An INET6 / INET4 as the text protocol writes it, in the same form the binlog path gives.
fn text_inet(s: &str, v4: bool) -> ValueResult {
    let bad = || format!("\"{s}\" is not an INET{} address", if v4 { 4 } else { 6 });
    if v4 {
        s.parse::<std::net::Ipv4Addr>().map(|a| a.to_string()).map_err(|_| bad())
    } else {
        s.parse::<std::net::Ipv6Addr>().map(|a| a.to_string()).map_err(|_| bad())
    }
}

fn enum_label(labels: &[String], index: i64) -> ValueResult {
    if index == 0 {
        return Err("invalid ENUM value (index 0, the empty error value stored in non-strict mode)".into());
    }
    labels
        .get((index - 1) as usize)
        .cloned()
        .ok_or_else(|| format!("ENUM index {index} is outside the {} labels", labels.len()))
}

fn set_members(members: &[String], bitmask: &[u8]) -> ValueResult {
    let mut v: u64 = 0;
    for (i, b) in bitmask.iter().enumerate().take(8) {
        v |= (*b as u64) << (8 * i);
    }
    if members.len() < 64 && v >> members.len() != 0 {
        return Err(format!("SET bitmask {v:#x} has bits beyond its {} members", members.len()));
    }
    Ok(members
        .iter()
        .enumerate()
        .filter(|(i, _)| v >> i & 1 == 1)
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join(","))
}

/// A VECTOR value (little-endian float32s) as pgvector's input or a real[] literal.
fn vector(bytes: &[u8], pgvector: bool) -> ValueResult {
    if !bytes.len().is_multiple_of(4) {
        return Err(format!("VECTOR value of {} bytes is not a whole number of floats", bytes.len()));
    }
    let mut items = Vec::with_capacity(bytes.len() / 4);
    for c in bytes.chunks_exact(4) {
        let f = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        if !f.is_finite() {
            return Err(format!("VECTOR element {f} is not a finite number"));
        }
        items.push(f.to_string());
    }
    let (open, close) = if pgvector { ('[', ']') } else { ('{', '}') };
    Ok(format!("{open}{}{close}", items.join(",")))
}

fn boolean(v: i128) -> ValueResult {
    match v {
        0 => Ok("false".into()),
        1 => Ok("true".into()),
        other => Err(format!("{other} is not 0 or 1: it cannot become a boolean (type_override)")),
    }
}

/// The initial copy's fast path: appends the COPY text form of a text-protocol value straight
/// to `out` when its kind needs no conversion (numbers, character data, JSON), with the same
/// checks as `from_text`, and says `Ok(true)`; `Ok(false)` leaves `out` alone (use `from_text`).
pub fn push_copy_text(kind: &ValueKind, bytes: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
    match kind {
        ValueKind::Int { .. } | ValueKind::Decimal | ValueKind::Float | ValueKind::Double | ValueKind::Year => {
            if bytes.is_empty() || !bytes.iter().all(|b| b.is_ascii_digit() || b"+-.eE".contains(b)) {
                return Err(numeric_text(bytes).err().unwrap_or_else(|| "not a number".into()));
            }
            out.extend_from_slice(bytes);
            Ok(true)
        }
        ValueKind::Text(_) | ValueKind::Json => {
            utf8(bytes)?;
            crate::core::copytext::push_escaped(out, bytes);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// What a zero date becomes under the column's `zero_dates` policy.
fn zero_value(policy: ZeroDates, reason: String) -> Result<Option<String>, String> {
    match policy {
        ZeroDates::Discard => Err(reason),
        ZeroDates::Null => Ok(None),
        ZeroDates::MinusInfinity => Ok(Some("-infinity".into())),
    }
}

fn zero_parts(y: u32, m: u32, d: u32) -> bool {
    y == 0 || m == 0 || d == 0
}

/// The zero-date reason of a text-protocol date, if its date part has a zero year, month or day.
fn text_zero(s: &str, what: &str) -> Option<String> {
    let date = s.split(' ').next().unwrap_or(s);
    let mut p = date.split('-').map(parse_u32);
    match (p.next().flatten(), p.next().flatten(), p.next().flatten()) {
        (Some(y), Some(m), Some(d)) if zero_parts(y, m, d) => {
            Some(format!("zero {what} {s} has no PostgreSQL equivalent"))
        }
        _ => None,
    }
}

/// Converts a value read with the text protocol (initial copy); `Ok(None)` is a zero date
/// that the `zero_dates` policy turns into NULL.
/// The copy session runs with `time_zone = '+00:00'`, so TIMESTAMP text is UTC.
pub fn from_text(kind: &ValueKind, bytes: &[u8]) -> Result<Option<String>, String> {
    let refused = match text_value(kind, bytes) {
        Ok(v) => return Ok(Some(v)),
        Err(reason) => reason,
    };
    // only a refused date can be a zero date: valid dates are parsed once
    match kind {
        ValueKind::Date(z) | ValueKind::DateTime(z) | ValueKind::Timestamp(z) => {
            let what = if matches!(kind, ValueKind::Timestamp(_)) { "timestamp" } else { "date" };
            match std::str::from_utf8(bytes).ok().and_then(|s| text_zero(s, what)) {
                Some(reason) => zero_value(*z, reason),
                None => Err(refused),
            }
        }
        _ => Err(refused),
    }
}

fn text_value(kind: &ValueKind, bytes: &[u8]) -> ValueResult {
    match kind {
        ValueKind::Int { .. } | ValueKind::Decimal | ValueKind::Float | ValueKind::Double => numeric_text(bytes),
        ValueKind::Year => numeric_text(bytes),
        ValueKind::Bit(n) => bit_string(bytes, *n),
        // the copy session reads every character set as utf8mb4
        ValueKind::Text(_) | ValueKind::Json => utf8(bytes).map(str::to_string),
        ValueKind::Binary => Ok(bytea_hex(bytes)),
        ValueKind::FixedBinary(n) => fixed_binary(bytes, *n),
        ValueKind::Date(_) => text_datetime(utf8(bytes)?, false),
        ValueKind::DateTime(_) => text_datetime(utf8(bytes)?, true),
        ValueKind::Timestamp(_) => Ok(format!("{}+00", text_datetime(utf8(bytes)?, true)?)),
        ValueKind::Time => text_time(utf8(bytes)?),
        ValueKind::Interval => {
            let (neg, h, m, sec, us) = parse_text_time(utf8(bytes)?)?;
            Ok(fmt_interval(neg, h, m, sec, us))
        }
        ValueKind::Uuid => text_uuid(utf8(bytes)?),
        ValueKind::Inet { v4 } => text_inet(utf8(bytes)?, *v4),
        ValueKind::Enum(labels) => {
            let s = utf8(bytes)?;
            if labels.iter().any(|l| l == s) {
                Ok(s.to_string())
            } else if s.is_empty() {
                enum_label(labels, 0)
            } else {
                Err(format!("\"{s}\" is not a label of the ENUM"))
            }
        }
        ValueKind::Bool => {
            let s = numeric_text(bytes)?;
            boolean(s.parse::<i128>().map_err(|_| format!("\"{s}\" is not an integer"))?)
        }
        ValueKind::Spatial { postgis } => spatial(bytes, *postgis),
        // the text protocol sends a VECTOR as its binary form, as the binlog does
        ValueKind::Vector { pgvector } => vector(bytes, *pgvector),
        ValueKind::Set(members) => {
            let s = utf8(bytes)?;
            match s.split(',').find(|m| !m.is_empty() && !members.iter().any(|x| x == m)) {
                Some(m) => Err(format!("\"{m}\" is not a member of the SET")),
                None => Ok(s.to_string()),
            }
        }
    }
}

/// Converts one value decoded from a binlog row event. `Value::NULL` gives `Ok(None)`.
pub fn from_binlog(kind: &ValueKind, value: &BinlogValue<'_>) -> Result<Option<String>, String> {
    let v = match value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => return crate::core::json::jsonb_text(j).map(Some),
        // the reader applies the diffs to the before image (`decode_rows`)
        BinlogValue::JsonDiff(_) => {
            return Err("a partial JSON update, but the before image lacks the column: set binlog_row_image=FULL".into())
        }
    };
    let out = match (kind, v) {
        (_, Value::NULL) => return Ok(None),
        (ValueKind::Int { bits, unsigned }, Value::Int(i)) => normalize_int(*i as i128, *bits, *unsigned)?.to_string(),
        (ValueKind::Int { bits, unsigned }, Value::UInt(u)) => normalize_int(*u as i128, *bits, *unsigned)?.to_string(),
        (ValueKind::Float, Value::Float(f)) => f.to_string(),
        (ValueKind::Float, Value::Double(f)) => (*f as f32).to_string(),
        (ValueKind::Double, Value::Double(f)) => f.to_string(),
        (ValueKind::Double, Value::Float(f)) => (*f as f64).to_string(),
        (ValueKind::Decimal, Value::Bytes(b)) => numeric_text(b)?,
        (ValueKind::Year, Value::Bytes(b)) => {
            // mysql_common renders the stored byte as 1900 + n; n = 0 is the year 0000.
            let y = numeric_text(b)?;
            if y == "1900" {
                "0".into()
            } else {
                y
            }
        }
        (ValueKind::Year, Value::Int(i)) => i.to_string(),
        (ValueKind::Bit(n), Value::Bytes(b)) => bit_string(b, *n)?,
        (ValueKind::Text(cs), Value::Bytes(b)) => decode_text(*cs, b)?,
        (ValueKind::Json, Value::Bytes(b)) => utf8(b)?.to_string(),
        (ValueKind::Binary, Value::Bytes(b)) => bytea_hex(b),
        (ValueKind::FixedBinary(n), Value::Bytes(b)) => fixed_binary(b, *n)?,
        (ValueKind::Date(z) | ValueKind::DateTime(z), Value::Date(y, m, d, ..))
            if zero_parts(*y as u32, *m as u32, *d as u32) =>
        {
            return zero_value(*z, format!("zero date {y:04}-{m:02}-{d:02} has no PostgreSQL equivalent"));
        }
        (ValueKind::Date(_), Value::Date(y, m, d, ..)) => {
            check_date(*y as u32, *m as u32, *d as u32)?;
            format!("{y:04}-{m:02}-{d:02}")
        }
        (ValueKind::DateTime(_), Value::Date(y, mo, d, h, mi, s, us)) => {
            check_date(*y as u32, *mo as u32, *d as u32)?;
            fmt_datetime(*y as u32, *mo as u32, *d as u32, *h as u32, *mi as u32, *s as u32, *us)
        }
        (ValueKind::Timestamp(z), Value::Bytes(b)) => {
            let s = std::str::from_utf8(b).map_err(|_| "bad TIMESTAMP".to_string())?;
            let (secs, us) = s.split_once('.').unwrap_or((s, "0"));
            let secs: i64 = secs.parse().map_err(|_| format!("bad TIMESTAMP \"{s}\""))?;
            let us: u32 = us.parse().map_err(|_| format!("bad TIMESTAMP \"{s}\""))?;
            return epoch(*z, secs, us);
        }
        (ValueKind::Timestamp(z), Value::Int(secs)) => return epoch(*z, *secs, 0),
        (ValueKind::Bool, Value::Int(i)) => boolean(*i as i128)?,
        (ValueKind::Bool, Value::UInt(u)) => boolean(*u as i128)?,
        (ValueKind::Enum(labels), Value::Int(i)) => enum_label(labels, *i)?,
        (ValueKind::Enum(labels), Value::UInt(i)) => enum_label(labels, *i as i64)?,
        (ValueKind::Set(members), Value::Bytes(b)) => set_members(members, b)?,
        (ValueKind::Spatial { postgis }, Value::Bytes(b)) => spatial(b, *postgis)?,
        (ValueKind::Vector { pgvector }, Value::Bytes(b)) => vector(b, *pgvector)?,
        (ValueKind::Time, Value::Time(neg, days, h, m, s, us)) => {
            if *neg && (*days, *h, *m, *s, *us) != (0, 0, 0, 0, 0) {
                return Err(format!(
                    "negative TIME -{}:{m:02}:{s:02} has no PostgreSQL time equivalent",
                    *days as u64 * 24 + *h as u64
                ));
            }
            fmt_time(*days as u64 * 24 + *h as u64, *m as u32, *s as u32, *us)?
        }
        (ValueKind::Interval, Value::Time(neg, days, h, m, s, us)) => {
            let hours = *days as u64 * 24 + *h as u64;
            fmt_interval(*neg && (hours, *m, *s, *us) != (0, 0, 0, 0), hours, *m as u32, *s as u32, *us)
        }
        (ValueKind::Uuid, Value::Bytes(b)) => uuid_text(b)?,
        (ValueKind::Inet { v4 }, Value::Bytes(b)) => inet_bytes(b, *v4)?,
        (kind, other) => return Err(format!("unexpected binlog value {other:?} for a {kind:?} column")),
    };
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bl(kind: &ValueKind, v: Value) -> Result<Option<String>, String> {
        from_binlog(kind, &BinlogValue::Value(v))
    }

    fn ft(kind: &ValueKind, bytes: &[u8]) -> Result<String, String> {
        from_text(kind, bytes).map(|v| v.unwrap_or_else(|| "NULL".into()))
    }

    #[test]
    fn copy_fast_path_equals_the_general_conversion() {
        let kinds = [
            ValueKind::Int { bits: 32, unsigned: false },
            ValueKind::Decimal,
            ValueKind::Float,
            ValueKind::Year,
            ValueKind::Text(Charset::Latin1),
            ValueKind::Json,
        ];
        let values: [&[u8]; 8] =
            [b"-12", b"3.5e-7", b"tab\there\\ \r\n end", b"", "zażółć 🐢".as_bytes(), b"x\0y", b"\xff", b"1 2"];
        for k in &kinds {
            for v in values {
                let mut fast = Vec::new();
                let f = push_copy_text(k, v, &mut fast);
                let general = from_text(k, v);
                match (f, general) {
                    (Ok(true), Ok(s)) => {
                        let mut g = Vec::new();
                        crate::core::copytext::push_field(&mut g, s.as_deref());
                        assert_eq!(fast, g, "{k:?} {v:?}");
                    }
                    (Err(_), Err(_)) => assert!(fast.is_empty()),
                    (f, g) => panic!("{k:?} {v:?}: fast {f:?}, general {g:?}"),
                }
            }
        }
        let mut out = Vec::new();
        assert_eq!(push_copy_text(&ValueKind::Date(ZeroDates::Discard), b"2024-01-01", &mut out), Ok(false));
        assert!(out.is_empty());
    }

    #[test]
    fn binlog_text_in_other_character_sets() {
        let t = |cs, b: &[u8]| bl(&ValueKind::Text(cs), Value::Bytes(b.to_vec())).map(|v| v.unwrap_or_default());
        assert_eq!(t(Charset::Latin1, b"caf\xe9 \x80 \x81\x9f").unwrap(), "caf\u{e9} \u{20ac} \u{81}\u{178}");
        assert_eq!(t(Charset::Ascii, b"plain").unwrap(), "plain");
        assert!(t(Charset::Ascii, b"\xe9").unwrap_err().contains("not ASCII"));
        assert_eq!(t(Charset::Utf16, &[0xd8, 0x3d, 0xdc, 0x22, 0, 0x61]).unwrap(), "\u{1f422}a");
        assert_eq!(t(Charset::Utf16Le, &[0x61, 0]).unwrap(), "a");
        assert_eq!(t(Charset::Utf32, &[0, 1, 0xf4, 0x22]).unwrap(), "\u{1f422}");
        assert!(t(Charset::Latin1, b"a\0b").unwrap_err().contains("NUL"));
        assert!(t(Charset::Utf8, b"\xff").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn spatial_values_become_ewkb() {
        // POINT(1 2) with SRID 0: the WKB as it is
        let mut point = vec![0, 0, 0, 0, 1, 1, 0, 0, 0];
        point.extend_from_slice(&1f64.to_le_bytes());
        point.extend_from_slice(&2f64.to_le_bytes());
        assert_eq!(ewkb(&point).unwrap(), point[4..].to_vec());
        // SRID 4326: flag and SRID after the type, as PostGIS's EWKB
        let mut with_srid = point.clone();
        with_srid[..4].copy_from_slice(&4326u32.to_le_bytes());
        let e = ewkb(&with_srid).unwrap();
        assert_eq!(&e[..9], &[1, 1, 0, 0, 0x20, 0xe6, 0x10, 0, 0]);
        assert_eq!(&e[9..], &point[9..]);
        let k = ValueKind::Spatial { postgis: true };
        assert_eq!(ft(&k, &with_srid).unwrap(), "0101000020e6100000000000000000f03f0000000000000040");
        assert_eq!(
            bl(&ValueKind::Spatial { postgis: false }, Value::Bytes(point.clone())).unwrap().unwrap(),
            "\\x0101000000000000000000f03f0000000000000040"
        );
        assert!(ft(&k, &[0, 0, 0, 0, 1]).unwrap_err().contains("too short"));
        assert!(ft(&k, &[0, 0, 0, 0, 7, 1, 0, 0, 0]).unwrap_err().contains("byte order"));
    }

    #[test]
    fn zero_dates_follow_the_policy() {
        use ZeroDates::*;
        for (kind, text) in [
            (ValueKind::Date as fn(ZeroDates) -> ValueKind, &b"0000-00-00"[..]),
            (ValueKind::DateTime, b"2024-00-15 10:00:00"),
            (ValueKind::Timestamp, b"0000-00-00 00:00:00"),
        ] {
            assert!(ft(&kind(Discard), text).unwrap_err().starts_with("zero "));
            assert_eq!(ft(&kind(Null), text).unwrap(), "NULL");
            assert_eq!(ft(&kind(MinusInfinity), text).unwrap(), "-infinity");
        }
        assert_eq!(bl(&ValueKind::Date(Null), Value::Date(0, 0, 0, 0, 0, 0, 0)).unwrap(), None);
        assert_eq!(
            bl(&ValueKind::DateTime(MinusInfinity), Value::Date(2024, 1, 0, 0, 0, 0, 0)).unwrap().unwrap(),
            "-infinity"
        );
        assert_eq!(bl(&ValueKind::Timestamp(MinusInfinity), Value::Int(0)).unwrap().unwrap(), "-infinity");
        assert!(bl(&ValueKind::Timestamp(Discard), Value::Int(0)).unwrap_err().contains("zero timestamp"));
        // a date that is merely early is not a zero date
        assert_eq!(ft(&ValueKind::Date(Null), b"1000-01-01").unwrap(), "1000-01-01");
    }

    #[test]
    fn integers_signedness() {
        let u32k = ValueKind::Int { bits: 32, unsigned: true };
        assert_eq!(bl(&u32k, Value::Int(-1)).unwrap().unwrap(), "4294967295");
        let u64k = ValueKind::Int { bits: 64, unsigned: true };
        assert_eq!(bl(&u64k, Value::Int(-1)).unwrap().unwrap(), "18446744073709551615");
        assert_eq!(bl(&u64k, Value::UInt(u64::MAX)).unwrap().unwrap(), "18446744073709551615");
        let m24 = ValueKind::Int { bits: 24, unsigned: false };
        assert_eq!(bl(&m24, Value::Int(0xFFFFFF)).unwrap().unwrap(), "-1");
        assert_eq!(bl(&m24, Value::Int(-8388608)).unwrap().unwrap(), "-8388608");
        assert_eq!(bl(&m24, Value::Int(8388607)).unwrap().unwrap(), "8388607");
        let u24 = ValueKind::Int { bits: 24, unsigned: true };
        assert_eq!(bl(&u24, Value::Int(-1)).unwrap().unwrap(), "16777215");
        let i8k = ValueKind::Int { bits: 8, unsigned: false };
        assert_eq!(bl(&i8k, Value::Int(-128)).unwrap().unwrap(), "-128");
        let i64k = ValueKind::Int { bits: 64, unsigned: false };
        assert_eq!(bl(&i64k, Value::Int(i64::MIN)).unwrap().unwrap(), i64::MIN.to_string());
        assert_eq!(bl(&i64k, Value::NULL).unwrap(), None);
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(
            bl(&ValueKind::Date(ZeroDates::Discard), Value::Date(2024, 2, 29, 0, 0, 0, 0)).unwrap().unwrap(),
            "2024-02-29"
        );
        assert_eq!(
            bl(&ValueKind::DateTime(ZeroDates::Discard), Value::Date(1999, 12, 31, 23, 59, 58, 120)).unwrap().unwrap(),
            "1999-12-31 23:59:58.000120"
        );
        assert!(bl(&ValueKind::Date(ZeroDates::Discard), Value::Date(0, 0, 0, 0, 0, 0, 0))
            .unwrap_err()
            .contains("zero date"));
        assert_eq!(ft(&ValueKind::Date(ZeroDates::Discard), b"2024-01-05").unwrap(), "2024-01-05");
        assert!(ft(&ValueKind::Date(ZeroDates::Discard), b"0000-00-00").is_err());
        assert!(ft(&ValueKind::DateTime(ZeroDates::Discard), b"2024-00-01 00:00:00").is_err());
        assert_eq!(
            ft(&ValueKind::DateTime(ZeroDates::Discard), b"2024-01-05 10:11:12.5").unwrap(),
            "2024-01-05 10:11:12.5"
        );
        assert_eq!(ft(&ValueKind::Time, b"23:59:59.5").unwrap(), "23:59:59.500000");
        assert!(ft(&ValueKind::Time, b"838:59:59").is_err());
        assert!(ft(&ValueKind::Time, b"-01:00:00").is_err());
        assert_eq!(bl(&ValueKind::Time, Value::Time(false, 1, 0, 0, 0, 0)).unwrap().unwrap(), "24:00:00");
        assert!(bl(&ValueKind::Time, Value::Time(false, 1, 0, 0, 1, 0)).is_err());
    }

    #[test]
    fn timestamps_are_utc_instants() {
        let k = ValueKind::Timestamp(ZeroDates::Discard);
        assert_eq!(bl(&k, Value::Bytes(b"1700000000".to_vec())).unwrap().unwrap(), "2023-11-14 22:13:20+00");
        assert_eq!(
            bl(&k, Value::Bytes(b"951782400.000001".to_vec())).unwrap().unwrap(),
            "2000-02-29 00:00:00.000001+00"
        );
        assert!(bl(&k, Value::Bytes(b"0".to_vec())).is_err());
        assert_eq!(ft(&k, b"2023-11-14 22:13:20").unwrap(), "2023-11-14 22:13:20+00");
    }

    #[test]
    fn text_binary_bits() {
        assert!(ft(&ValueKind::Text(Charset::Utf8), b"a\0b").unwrap_err().contains("NUL"));
        assert!(ft(&ValueKind::Text(Charset::Utf8), b"\xff\xfe").unwrap_err().contains("UTF-8"));
        assert_eq!(ft(&ValueKind::Text(Charset::Utf8), "żółw 🐢".as_bytes()).unwrap(), "żółw 🐢");
        assert_eq!(ft(&ValueKind::Binary, b"\x00\xff").unwrap(), "\\x00ff");
        // the row binlog drops BINARY(n)'s trailing zero bytes; the copy reads them
        assert_eq!(bl(&ValueKind::FixedBinary(4), Value::Bytes(vec![0x61])).unwrap().unwrap(), "\\x61000000");
        assert_eq!(ft(&ValueKind::FixedBinary(4), b"a\0\0\0").unwrap(), "\\x61000000");
        assert!(ft(&ValueKind::FixedBinary(2), b"abc").is_err());
        assert_eq!(ft(&ValueKind::Bit(10), b"\x02\x01").unwrap(), "1000000001");
        assert!(ft(&ValueKind::Bit(3), b"\xff").is_err());
        assert!(ft(&ValueKind::Decimal, b"1; drop").is_err());
        assert_eq!(bl(&ValueKind::Decimal, Value::Bytes(b"-12.50".to_vec())).unwrap().unwrap(), "-12.50");
        assert_eq!(bl(&ValueKind::Year, Value::Bytes(b"1900".to_vec())).unwrap().unwrap(), "0");
        assert_eq!(bl(&ValueKind::Year, Value::Bytes(b"2024".to_vec())).unwrap().unwrap(), "2024");
    }

    #[test]
    fn enums_and_sets() {
        let e = ValueKind::Enum(vec!["new".into(), "It's".into()]);
        assert_eq!(bl(&e, Value::Int(2)).unwrap().unwrap(), "It's");
        assert!(bl(&e, Value::Int(0)).unwrap_err().contains("index 0"));
        assert!(bl(&e, Value::Int(3)).is_err());
        assert_eq!(ft(&e, b"new").unwrap(), "new");
        assert!(ft(&e, b"").is_err());
        assert!(ft(&e, b"old").is_err());
        let s = ValueKind::Set(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(bl(&s, Value::Bytes(vec![0b101])).unwrap().unwrap(), "a,c");
        assert_eq!(bl(&s, Value::Bytes(vec![0])).unwrap().unwrap(), "");
        assert!(bl(&s, Value::Bytes(vec![0b1000])).is_err());
        assert_eq!(ft(&s, b"a,c").unwrap(), "a,c");
        assert_eq!(ft(&s, b"").unwrap(), "");
        assert!(ft(&s, b"a,z").is_err());
    }

    #[test]
    fn booleans_from_overrides() {
        assert_eq!(ft(&ValueKind::Bool, b"1").unwrap(), "true");
        assert_eq!(ft(&ValueKind::Bool, b"0").unwrap(), "false");
        assert!(ft(&ValueKind::Bool, b"2").unwrap_err().contains("type_override"));
        assert_eq!(bl(&ValueKind::Bool, Value::Int(1)).unwrap().unwrap(), "true");
        assert!(bl(&ValueKind::Bool, Value::Int(-1)).is_err());
    }

    #[test]
    fn time_as_interval_keeps_every_value() {
        let k = ValueKind::Interval;
        assert_eq!(ft(&k, b"-838:59:59.000000").unwrap(), "-838:59:59");
        assert_eq!(ft(&k, b"838:59:59.999999").unwrap(), "838:59:59.999999");
        assert_eq!(ft(&k, b"-00:00:00.000001").unwrap(), "-00:00:00.000001");
        assert_eq!(ft(&k, b"-00:00:00").unwrap(), "00:00:00");
        assert!(ft(&k, b"12:61:00").is_err());
        assert_eq!(bl(&k, Value::Time(true, 34, 22, 59, 59, 0)).unwrap().unwrap(), "-838:59:59");
        assert_eq!(bl(&k, Value::Time(true, 0, 0, 0, 0, 1)).unwrap().unwrap(), "-00:00:00.000001");
        assert_eq!(bl(&k, Value::Time(false, 1, 1, 2, 3, 400)).unwrap().unwrap(), "25:02:03.000400");
    }

    #[test]
    fn mariadb_uuid_and_inet() {
        let u = ValueKind::Uuid;
        let bytes = [0x6c, 0xcd, 0x78, 0x0c, 0xba, 0xba, 0x10, 0x26, 0x95, 0x64, 0x5b, 0x8c, 0x65, 0x60, 0x24, 0xdb];
        assert_eq!(bl(&u, Value::Bytes(bytes.to_vec())).unwrap().unwrap(), "6ccd780c-baba-1026-9564-5b8c656024db");
        // the binlog drops trailing zero bytes
        assert_eq!(bl(&u, Value::Bytes(vec![])).unwrap().unwrap(), "00000000-0000-0000-0000-000000000000");
        assert_eq!(bl(&u, Value::Bytes(vec![0x11, 0x22])).unwrap().unwrap(), "11220000-0000-0000-0000-000000000000");
        assert!(bl(&u, Value::Bytes(vec![1; 17])).is_err());
        assert_eq!(ft(&u, b"6CCD780C-baba-1026-9564-5b8c656024db").unwrap(), "6ccd780c-baba-1026-9564-5b8c656024db");
        assert!(ft(&u, b"6ccd780c-baba-1026-9564-5b8c656024dbx").is_err());
        let i6 = ValueKind::Inet { v4: false };
        let mut mapped = vec![0u8; 10];
        mapped.extend_from_slice(&[0xff, 0xff, 1, 2, 3, 4]);
        assert_eq!(bl(&i6, Value::Bytes(mapped)).unwrap().unwrap(), "::ffff:1.2.3.4");
        assert_eq!(ft(&i6, b"::ffff:1.2.3.4").unwrap(), "::ffff:1.2.3.4");
        assert_eq!(bl(&i6, Value::Bytes(vec![])).unwrap().unwrap(), "::");
        assert_eq!(bl(&i6, Value::Bytes(vec![0x20, 0x01, 0x0d, 0xb8])).unwrap().unwrap(), "2001:db8::");
        assert_eq!(ft(&i6, b"2001:DB8::1").unwrap(), "2001:db8::1");
        let i4 = ValueKind::Inet { v4: true };
        assert_eq!(bl(&i4, Value::Bytes(vec![1, 2, 3, 4])).unwrap().unwrap(), "1.2.3.4");
        assert_eq!(bl(&i4, Value::Bytes(vec![10])).unwrap().unwrap(), "10.0.0.0");
        assert_eq!(ft(&i4, b"255.255.255.255").unwrap(), "255.255.255.255");
        assert!(ft(&i4, b"::1").is_err());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }
}
