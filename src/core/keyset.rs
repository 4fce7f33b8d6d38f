//! Reading a table on the source in the order of a key that is not a single integer column
//! (`verify_tables`): which keys qualify, a key value as a MySQL literal, and the filters
//! "after this key, in the source's own key order" and "one of these keys".
//!
//! The source orders a key by its columns' collations (a case-insensitive `varchar` puts `b`
//! between `A` and `C`), which PostgreSQL does not reproduce; so the bound of the next chunk
//! is the last key read, written back to the source as literals that compare with the
//! column under the column's own collation: a character value as `_utf8mb4 X'..'` (the
//! session's character set; a literal is coerced to the column's collation), a binary value
//! as `X'..'`, a number unquoted, a date or time quoted. Columns that order by something
//! else than their text are written as what they order by: an ENUM as its index, a SET as
//! its bitmask, a BIT as its integer (each compares numerically with an integer), a FLOAT or
//! DOUBLE as the exact double it holds with an exponent (a decimal literal would compare as
//! DECIMAL; the copy reads a FLOAT as that double), a UUID or INET6 quoted (the literal is
//! converted to the column's type and compares in its order). The filter is expanded
//! (`k1 >= a AND (k1 > a OR (k1 = a AND k2 > b))`): MariaDB does not use an index for a
//! row constructor's `>`.

use crate::core::sql::quote_mysql_ident;
use crate::core::types::{MySqlColumn, ValueKind};

/// How a key column's value is written as a MySQL literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiteralKind {
    /// An integer or a decimal, unquoted.
    Number,
    /// Character data, as `_utf8mb4 X'hex'`.
    Text,
    /// Bytes, as `X'hex'`.
    Binary,
    /// DATE, DATETIME, TIMESTAMP (in the session's UTC), TIME, quoted.
    Temporal,
    /// FLOAT and DOUBLE: the double, with an exponent (`0.5e0`).
    Double,
    /// BIT(n): its integer.
    Bit,
    /// ENUM: the label's index (1-based; 0 for the error value '').
    Enum(Vec<String>),
    /// SET: the members' bitmask.
    Set(Vec<String>),
    /// MariaDB's UUID and INET6/INET4: the text form, quoted.
    Quoted,
}

impl LiteralKind {
    /// The literal kind of a key column of this kind; None when the key cannot be read in
    /// order by literals (a TIME mapped to interval, and the rest are not key material).
    pub fn of(kind: &ValueKind) -> Option<LiteralKind> {
        Some(match kind {
            ValueKind::Int { .. } | ValueKind::Year | ValueKind::Decimal | ValueKind::Bool => LiteralKind::Number,
            ValueKind::Text(_) => LiteralKind::Text,
            ValueKind::Binary | ValueKind::FixedBinary(_) => LiteralKind::Binary,
            ValueKind::Date(_) | ValueKind::DateTime(_) | ValueKind::Timestamp(_) | ValueKind::Time => {
                LiteralKind::Temporal
            }
            ValueKind::Float | ValueKind::Double => LiteralKind::Double,
            ValueKind::Bit(_) => LiteralKind::Bit,
            ValueKind::Enum(labels) => LiteralKind::Enum(labels.clone()),
            ValueKind::Set(members) => LiteralKind::Set(members.clone()),
            ValueKind::Uuid | ValueKind::Inet { .. } => LiteralKind::Quoted,
            _ => return None,
        })
    }

    /// The PostgreSQL expression that writes a destination key value (`column`, quoted) as
    /// the text `literal_from_pg` turns into the source's literal: dates and times in ISO
    /// form whatever the session's DateStyle, a timestamp with time zone in UTC (the source
    /// session's time zone), bytes in hex, a `real` as the double it holds, a boolean as 0 or
    /// 1, an inet without its mask.
    pub fn pg_text(&self, column: &str, pg_type: &str) -> String {
        match self {
            LiteralKind::Binary => format!("encode({column}, 'hex')"),
            LiteralKind::Temporal => match pg_type {
                "date" => format!("to_char({column}, 'YYYY-MM-DD')"),
                t if t.starts_with("timestamp") && t.contains("with time zone") => {
                    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
                }
                t if t.starts_with("timestamp") => format!("to_char({column}, 'YYYY-MM-DD HH24:MI:SS.US')"),
                _ => format!("{column}::text"),
            },
            LiteralKind::Double => format!("{column}::float8::text"),
            LiteralKind::Number if pg_type == "boolean" => format!("{column}::int::text"),
            LiteralKind::Quoted if pg_type == "inet" => format!("host({column})"),
            LiteralKind::Number
            | LiteralKind::Text
            | LiteralKind::Bit
            | LiteralKind::Enum(_)
            | LiteralKind::Set(_)
            | LiteralKind::Quoted => format!("{column}::text"),
        }
    }
}

/// The key columns (indexes into `columns`) with their literal kinds, when the table can be
/// read in key order by literals: a key of at least one column, none of them nullable, each
/// of a kind `LiteralKind::of` writes.
pub fn key_literals(key: &[usize], columns: &[MySqlColumn], kinds: &[&ValueKind]) -> Option<Vec<LiteralKind>> {
    if key.is_empty() {
        return None;
    }
    key.iter()
        .map(|&i| {
            let c = columns.get(i)?;
            if c.nullable {
                return None;
            }
            LiteralKind::of(kinds.get(i)?)
        })
        .collect()
}

fn hex(v: &[u8]) -> String {
    use std::fmt::Write;
    v.iter().fold(String::with_capacity(v.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn is_number(v: &[u8]) -> bool {
    let digits = v.strip_prefix(b"-").unwrap_or(v);
    let (int, frac) = match digits.iter().position(|&b| b == b'.') {
        Some(p) => (&digits[..p], Some(&digits[p + 1..])),
        None => (digits, None),
    };
    !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// A double as MySQL and PostgreSQL print one (`-1.5`, `1e-300`, `3.4e+38`), with an
/// exponent so that the source reads a double, not a DECIMAL.
fn double_literal(v: &[u8]) -> Option<String> {
    let (mantissa, exponent) = match v.iter().position(|&b| b == b'e' || b == b'E') {
        Some(p) => (&v[..p], Some(&v[p + 1..])),
        None => (v, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(b"-").or_else(|| e.strip_prefix(b"+")).unwrap_or(e);
        !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
    });
    if !is_number(mantissa) || !exponent_ok {
        return None;
    }
    let text = String::from_utf8_lossy(v);
    Some(if exponent.is_some() { text.into_owned() } else { format!("{text}e0") })
}

/// An ENUM label's index: 1-based in definition order; 0 for '' when '' is not a label (the
/// value MySQL stores for an invalid one).
fn enum_index(labels: &[String], label: &str) -> Option<String> {
    match labels.iter().position(|l| l == label) {
        Some(i) => Some((i + 1).to_string()),
        None => label.is_empty().then(|| "0".to_string()),
    }
}

/// A SET value (`a,c`) as its bitmask.
fn set_mask(members: &[String], value: &str) -> Option<String> {
    let mut mask = 0u64;
    for m in value.split(',').filter(|m| !m.is_empty()) {
        let i = members.iter().position(|x| x == m)?;
        mask |= 1u64.checked_shl(u32::try_from(i).ok()?)?;
    }
    Some(mask.to_string())
}

/// A key value as the source's text protocol returns it (the session is `utf8mb4`, UTC; a
/// FLOAT read as its double, `mysql_source::stream_rows`; a BIT as its bytes), as a
/// literal; None when the value is not of its kind's form (then it cannot be a bound).
pub fn mysql_literal(kind: &LiteralKind, v: &[u8]) -> Option<String> {
    match kind {
        LiteralKind::Number => is_number(v).then(|| String::from_utf8_lossy(v).into_owned()),
        LiteralKind::Text => Some(format!("_utf8mb4 X'{}'", hex(v))),
        LiteralKind::Binary => Some(format!("X'{}'", hex(v))),
        LiteralKind::Temporal => (!v.is_empty()
            && v.iter().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b' ')))
        .then(|| format!("'{}'", String::from_utf8_lossy(v))),
        LiteralKind::Double => double_literal(v),
        LiteralKind::Bit => (v.len() <= 8).then(|| v.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)).to_string()),
        LiteralKind::Enum(labels) => enum_index(labels, std::str::from_utf8(v).ok()?),
        LiteralKind::Set(members) => set_mask(members, std::str::from_utf8(v).ok()?),
        LiteralKind::Quoted => (!v.is_empty()
            && v.iter().all(|b| b.is_ascii_hexdigit() || matches!(b, b'-' | b':' | b'.')))
        .then(|| format!("'{}'", String::from_utf8_lossy(v))),
    }
}

/// A destination key value written by `LiteralKind::pg_text`, as the source's literal.
pub fn literal_from_pg(kind: &LiteralKind, text: &str) -> Option<String> {
    match kind {
        LiteralKind::Binary => {
            let ok = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
            ok.then(|| format!("X'{}'", text.to_ascii_lowercase()))
        }
        // bit varying's text: its binary digits
        LiteralKind::Bit => {
            let ok = !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b == b'0' || b == b'1');
            ok.then(|| u64::from_str_radix(text, 2).ok()).flatten().map(|n| n.to_string())
        }
        _ => mysql_literal(kind, text.as_bytes()),
    }
}

/// `ORDER BY` list of the key columns (MySQL names).
pub fn order_by(columns: &[String]) -> String {
    columns.iter().map(|c| quote_mysql_ident(c)).collect::<Vec<_>>().join(", ")
}

/// The rows after the key `last` (one literal per key column) in the key's order:
/// `k1 >= a AND (k1 > a OR (k1 = a AND k2 > b) OR ...)`, for a range scan of the key's index.
pub fn after(columns: &[String], last: &[String]) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_mysql_ident(c)).collect();
    if cols.len() == 1 {
        return format!("{} > {}", cols[0], last[0]);
    }
    let terms: Vec<String> = (0..cols.len())
        .map(|n| {
            let mut parts: Vec<String> = (0..n).map(|i| format!("{} = {}", cols[i], last[i])).collect();
            parts.push(format!("{} > {}", cols[n], last[n]));
            if parts.len() == 1 {
                parts.remove(0)
            } else {
                format!("({})", parts.join(" AND "))
            }
        })
        .collect();
    format!("{} >= {} AND ({})", cols[0], last[0], terms.join(" OR "))
}

/// The rows whose key is one of `keys` (each one literal per key column).
pub fn one_of(columns: &[String], keys: &[Vec<String>]) -> String {
    let cols: Vec<String> = columns.iter().map(|c| quote_mysql_ident(c)).collect();
    if cols.len() == 1 {
        let list: Vec<&str> = keys.iter().filter_map(|k| k.first().map(String::as_str)).collect();
        return format!("{} IN ({})", cols[0], list.join(", "));
    }
    let list: Vec<String> = keys.iter().map(|k| format!("({})", k.join(", "))).collect();
    format!("({}) IN ({})", cols.join(", "), list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{Charset, ZeroDates};

    #[test]
    fn literals_are_written_so_the_source_compares_them_with_the_column() {
        assert_eq!(mysql_literal(&LiteralKind::Number, b"-42"), Some("-42".into()));
        assert_eq!(mysql_literal(&LiteralKind::Number, b"12.500"), Some("12.500".into()));
        for bad in [&b""[..], b"1e5", b"1.", b".5", b"1; DROP", b"--1"] {
            assert_eq!(mysql_literal(&LiteralKind::Number, bad), None, "{bad:?}");
        }
        assert_eq!(mysql_literal(&LiteralKind::Text, "a'É".as_bytes()), Some("_utf8mb4 X'6127c389'".into()));
        assert_eq!(mysql_literal(&LiteralKind::Text, b""), Some("_utf8mb4 X''".into()));
        assert_eq!(mysql_literal(&LiteralKind::Binary, &[0, 255]), Some("X'00ff'".into()));
        assert_eq!(
            mysql_literal(&LiteralKind::Temporal, b"2024-01-02 03:04:05.000006"),
            Some("'2024-01-02 03:04:05.000006'".into())
        );
        assert_eq!(mysql_literal(&LiteralKind::Temporal, b"-01:00:00"), Some("'-01:00:00'".into()));
        assert_eq!(mysql_literal(&LiteralKind::Temporal, b"2024-01-02' OR 1"), None);
        assert_eq!(literal_from_pg(&LiteralKind::Binary, "00FF"), Some("X'00ff'".into()));
        assert_eq!(literal_from_pg(&LiteralKind::Binary, "0g"), None);
        assert_eq!(literal_from_pg(&LiteralKind::Temporal, "infinity"), None);
    }

    #[test]
    fn after_is_the_key_order_expanded_for_an_index_range() {
        assert_eq!(after(&["code".into()], &["X'61'".into()]), "`code` > X'61'");
        assert_eq!(
            after(&["a".into(), "b".into(), "c".into()], &["1".into(), "'x'".into(), "3".into()]),
            "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND `b` > 'x') OR (`a` = 1 AND `b` = 'x' AND `c` > 3))"
        );
        assert_eq!(one_of(&["k".into()], &[vec!["1".into()], vec!["2".into()]]), "`k` IN (1, 2)");
        assert_eq!(
            one_of(&["a".into(), "b`".into()], &[vec!["1".into(), "2".into()], vec!["3".into(), "4".into()]]),
            "(`a`, `b```) IN ((1, 2), (3, 4))"
        );
        assert_eq!(order_by(&["a".into(), "b".into()]), "`a`, `b`");
    }

    #[test]
    fn which_keys_are_read_in_order_by_literals() {
        let col = |name: &str, nullable: bool| MySqlColumn { nullable, ..crate::core::types::col(name, "x", "x") };
        let text = ValueKind::Text(Charset::Utf8);
        let int = ValueKind::Int { bits: 32, unsigned: false };
        let dt = ValueKind::DateTime(ZeroDates::Null);
        let cols = [col("a", false), col("b", false), col("c", true), col("d", false)];
        let kinds = [&text, &int, &text, &ValueKind::Float];
        assert_eq!(key_literals(&[0, 1], &cols, &kinds), Some(vec![LiteralKind::Text, LiteralKind::Number]));
        assert_eq!(key_literals(&[0, 2], &cols, &kinds), None, "a nullable column");
        assert_eq!(key_literals(&[3], &cols, &kinds), Some(vec![LiteralKind::Double]), "a float");
        assert_eq!(key_literals(&[3], &cols, &[&text, &int, &text, &ValueKind::Interval]), None, "an interval");
        assert_eq!(key_literals(&[], &cols, &kinds), None);
        assert_eq!(LiteralKind::of(&dt), Some(LiteralKind::Temporal));
        assert_eq!(
            LiteralKind::Temporal.pg_text("\"t\"", "timestamp(6) with time zone"),
            "to_char(\"t\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        );
        assert_eq!(LiteralKind::Binary.pg_text("\"b\"", "bytea"), "encode(\"b\", 'hex')");
        assert_eq!(LiteralKind::Double.pg_text("\"f\"", "real"), "\"f\"::float8::text");
        assert_eq!(LiteralKind::Number.pg_text("\"b\"", "boolean"), "\"b\"::int::text");
        assert_eq!(LiteralKind::Quoted.pg_text("\"i\"", "inet"), "host(\"i\")");
        assert_eq!(LiteralKind::Quoted.pg_text("\"u\"", "uuid"), "\"u\"::text");
    }

    #[test]
    fn keys_that_order_by_something_else_than_their_text_are_written_as_what_they_order_by() {
        // doubles as MariaDB and PostgreSQL print them, always with an exponent
        let d = LiteralKind::Double;
        assert_eq!(mysql_literal(&d, b"0.1428571492433548"), Some("0.1428571492433548e0".into()));
        assert_eq!(mysql_literal(&d, b"-1.5"), Some("-1.5e0".into()));
        assert_eq!(mysql_literal(&d, b"1.1754943508222875e-38"), Some("1.1754943508222875e-38".into()));
        assert_eq!(literal_from_pg(&d, "3.3999999521443642e+38"), Some("3.3999999521443642e+38".into()));
        for bad in ["NaN", "Infinity", "1e", "1e+", "e5", "1.5e3.2", "1 OR 1"] {
            assert_eq!(literal_from_pg(&d, bad), None, "{bad}");
        }
        // BIT: the source sends its bytes, the destination its binary digits
        assert_eq!(mysql_literal(&LiteralKind::Bit, &[0x02, 0x01]), Some("513".into()));
        assert_eq!(mysql_literal(&LiteralKind::Bit, &[0xff; 8]), Some(u64::MAX.to_string()));
        assert_eq!(mysql_literal(&LiteralKind::Bit, &[1; 9]), None);
        assert_eq!(literal_from_pg(&LiteralKind::Bit, "1000000001"), Some("513".into()));
        assert_eq!(literal_from_pg(&LiteralKind::Bit, "12"), None);
        assert_eq!(literal_from_pg(&LiteralKind::Bit, ""), None);
        // ENUM by index, SET by bitmask, whichever side the text comes from
        let e = LiteralKind::Enum(vec!["zeta".into(), "alpha".into(), "It's".into()]);
        assert_eq!(mysql_literal(&e, b"zeta"), Some("1".into()));
        assert_eq!(literal_from_pg(&e, "It's"), Some("3".into()));
        assert_eq!(mysql_literal(&e, b""), Some("0".into()), "the error value");
        assert_eq!(mysql_literal(&e, b"Zeta"), None);
        let s = LiteralKind::Set(vec!["b".into(), "a".into(), "c".into()]);
        assert_eq!(mysql_literal(&s, b"a,c"), Some("6".into()));
        assert_eq!(literal_from_pg(&s, "b"), Some("1".into()));
        assert_eq!(mysql_literal(&s, b""), Some("0".into()));
        assert_eq!(mysql_literal(&s, b"a,x"), None);
        // UUID and INET quoted, nothing else let through
        let q = LiteralKind::Quoted;
        assert_eq!(
            mysql_literal(&q, b"123e4567-e89b-12d3-a456-426655440000"),
            Some("'123e4567-e89b-12d3-a456-426655440000'".into())
        );
        assert_eq!(literal_from_pg(&q, "::ffff:1.2.3.4"), Some("'::ffff:1.2.3.4'".into()));
        assert_eq!(literal_from_pg(&q, "::1/128"), None);
        assert_eq!(literal_from_pg(&q, "1' OR '1"), None);
        assert_eq!(LiteralKind::of(&ValueKind::Bit(3)), Some(LiteralKind::Bit));
        assert_eq!(LiteralKind::of(&ValueKind::Inet { v4: true }), Some(LiteralKind::Quoted));
    }
}
