//! Reading a table on the source in the order of a key that is not a single integer column
//! (`verify_tables`): which keys qualify, a key value as a MySQL literal, and the filters
//! "after this key, in the source's own key order" and "one of these keys".
//!
//! The source orders a key by its columns' collations (a case-insensitive `varchar` puts `b`
//! between `A` and `C`), which PostgreSQL does not reproduce; so the bound of the next chunk
//! is the last key read, written back to the source as literals that compare with the
//! column under the column's own collation: a character value as `_utf8mb4 X'..'` (the
//! session's character set; a literal is coerced to the column's collation), a binary value
//! as `X'..'`, a number unquoted, a date or time quoted. The filter is expanded
//! (`k1 >= a AND (k1 > a OR (k1 = a AND k2 > b))`): MariaDB does not use an index for a
//! row constructor's `>`.

use crate::core::sql::quote_mysql_ident;
use crate::core::types::{MySqlColumn, ValueKind};

/// How a key column's value is written as a MySQL literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    /// An integer or a decimal, unquoted.
    Number,
    /// Character data, as `_utf8mb4 X'hex'`.
    Text,
    /// Bytes, as `X'hex'`.
    Binary,
    /// DATE, DATETIME, TIMESTAMP (in the session's UTC), TIME, quoted.
    Temporal,
}

impl LiteralKind {
    /// The literal kind of a key column of this kind; None when the key cannot be read in
    /// order by literals (floats, BIT, ENUM and SET order by something else than their text,
    /// and the rest are not key material).
    pub fn of(kind: &ValueKind) -> Option<LiteralKind> {
        Some(match kind {
            ValueKind::Int { .. } | ValueKind::Year | ValueKind::Decimal => LiteralKind::Number,
            ValueKind::Text(_) => LiteralKind::Text,
            ValueKind::Binary | ValueKind::FixedBinary(_) => LiteralKind::Binary,
            ValueKind::Date(_) | ValueKind::DateTime(_) | ValueKind::Timestamp(_) | ValueKind::Time => {
                LiteralKind::Temporal
            }
            _ => return None,
        })
    }

    /// The PostgreSQL expression that writes a destination key value (`column`, quoted) as
    /// the text `literal_from_pg` turns into the source's literal: dates and times in ISO
    /// form whatever the session's DateStyle, a timestamp with time zone in UTC (the source
    /// session's time zone), bytes in hex.
    pub fn pg_text(self, column: &str, pg_type: &str) -> String {
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
            LiteralKind::Number | LiteralKind::Text => format!("{column}::text"),
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

/// A key value as the source's text protocol returns it (the session is `utf8mb4`, UTC), as
/// a literal; None when the value is not of its kind's form (then it cannot be a bound).
pub fn mysql_literal(kind: LiteralKind, v: &[u8]) -> Option<String> {
    match kind {
        LiteralKind::Number => is_number(v).then(|| String::from_utf8_lossy(v).into_owned()),
        LiteralKind::Text => Some(format!("_utf8mb4 X'{}'", hex(v))),
        LiteralKind::Binary => Some(format!("X'{}'", hex(v))),
        LiteralKind::Temporal => (!v.is_empty()
            && v.iter().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'.' | b' ')))
        .then(|| format!("'{}'", String::from_utf8_lossy(v))),
    }
}

/// A destination key value written by `LiteralKind::pg_text`, as the source's literal.
pub fn literal_from_pg(kind: LiteralKind, text: &str) -> Option<String> {
    match kind {
        LiteralKind::Binary => {
            let ok = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
            ok.then(|| format!("X'{}'", text.to_ascii_lowercase()))
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
        assert_eq!(mysql_literal(LiteralKind::Number, b"-42"), Some("-42".into()));
        assert_eq!(mysql_literal(LiteralKind::Number, b"12.500"), Some("12.500".into()));
        for bad in [&b""[..], b"1e5", b"1.", b".5", b"1; DROP", b"--1"] {
            assert_eq!(mysql_literal(LiteralKind::Number, bad), None, "{bad:?}");
        }
        assert_eq!(mysql_literal(LiteralKind::Text, "a'É".as_bytes()), Some("_utf8mb4 X'6127c389'".into()));
        assert_eq!(mysql_literal(LiteralKind::Text, b""), Some("_utf8mb4 X''".into()));
        assert_eq!(mysql_literal(LiteralKind::Binary, &[0, 255]), Some("X'00ff'".into()));
        assert_eq!(
            mysql_literal(LiteralKind::Temporal, b"2024-01-02 03:04:05.000006"),
            Some("'2024-01-02 03:04:05.000006'".into())
        );
        assert_eq!(mysql_literal(LiteralKind::Temporal, b"-01:00:00"), Some("'-01:00:00'".into()));
        assert_eq!(mysql_literal(LiteralKind::Temporal, b"2024-01-02' OR 1"), None);
        assert_eq!(literal_from_pg(LiteralKind::Binary, "00FF"), Some("X'00ff'".into()));
        assert_eq!(literal_from_pg(LiteralKind::Binary, "0g"), None);
        assert_eq!(literal_from_pg(LiteralKind::Temporal, "infinity"), None);
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
        assert_eq!(key_literals(&[3], &cols, &kinds), None, "a float");
        assert_eq!(key_literals(&[], &cols, &kinds), None);
        assert_eq!(LiteralKind::of(&dt), Some(LiteralKind::Temporal));
        assert_eq!(
            LiteralKind::Temporal.pg_text("\"t\"", "timestamp(6) with time zone"),
            "to_char(\"t\" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
        );
        assert_eq!(LiteralKind::Binary.pg_text("\"b\"", "bytea"), "encode(\"b\", 'hex')");
    }
}
