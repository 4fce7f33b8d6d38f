//! A table map's optional metadata (MySQL 8 and MariaDB 10.5+ with
//! `binlog_row_metadata=FULL`) checked against the definition the reader decodes a table's rows
//! with (from information_schema and the DDL statements it followed).
//!
//! The reader never decodes by these names: it decodes by position with its own definition. The
//! metadata only says whether that definition still holds. When the table map names columns,
//! their number and names (in order, compared as MySQL does, without regard to case) must be
//! the replica's; when it gives integer signedness, each integer column's must be the replica's;
//! when it gives the labels of ENUM and SET columns, each one's must be the replica's, in
//! order (a row carries an ENUM as the label's number and a SET as a bit per label).
//! Anything else means the table changed outside what the reader saw (DDL with `sql_log_bin=0`,
//! a change while the replica was stopped): its rows would go into the wrong columns or be read
//! with the wrong sign or label, so the table is stopped with an error saying what differs. Without column names
//! (`binlog_row_metadata=MINIMAL`, which still gives signedness; older servers and MariaDB's
//! default NO_LOG give nothing) only the signedness, if given, is checked.
//!
//! Labels are bytes in the column's character set: the number of labels is always compared,
//! a label's text only where it is ASCII (the same in every character set we decode).
//!
//! Not compared: column visibility (MySQL 8.0.23+; invisible columns are in the row images and
//! in information_schema, so the replica has them like any other column); the primary key
//! (MySQL gives a table without one its first NOT NULL unique key, which need not be the key
//! the replica chose, and a key that differs loses nothing: rows are matched by the
//! destination's key, whose uniqueness PostgreSQL enforces); character sets (text is decoded by
//! the charset information_schema gave, and a changed one comes with a changed type).

use crate::core::error::{CoreError, CoreResult};
use crate::core::reader::ReaderTable;
use crate::core::types::ValueKind;
use mysql::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql::consts::ColumnType;

/// What a table map says of its table's columns, where it says it.
#[derive(Debug, Default, PartialEq)]
pub struct MapMetadata {
    /// Column count (always in the table map).
    pub columns: usize,
    /// Column names, with `binlog_row_metadata=FULL`.
    pub names: Option<Vec<String>>,
    /// Per column, whether it is unsigned: `Some` for the numeric columns when the table map
    /// gives their signedness.
    pub unsigned: Option<Vec<Option<bool>>>,
    /// The labels of each ENUM column, in column order, with `binlog_row_metadata=FULL`
    /// (`None` for a label that is not ASCII).
    pub enums: Option<Vec<Vec<Option<String>>>>,
    /// The labels of each SET column, in column order, likewise.
    pub sets: Option<Vec<Vec<Option<String>>>>,
}

/// Whether a binlog column type carries a signedness bit in the table map.
pub(crate) fn is_numeric(t: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        t,
        MYSQL_TYPE_TINY
            | MYSQL_TYPE_SHORT
            | MYSQL_TYPE_INT24
            | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG
            | MYSQL_TYPE_FLOAT
            | MYSQL_TYPE_DOUBLE
            | MYSQL_TYPE_NEWDECIMAL
            | MYSQL_TYPE_DECIMAL
    )
}

/// Reads the column names and signedness of a table map's optional metadata.
pub fn metadata(tme: &TableMapEvent<'_>) -> CoreResult<MapMetadata> {
    let n = tme.columns_count() as usize;
    let mut out = MapMetadata { columns: n, ..Default::default() };
    let unreadable = |e: std::io::Error| {
        CoreError::binlog(format!(
            "table map of {}.{}: unreadable optional metadata: {e}",
            tme.database_name(),
            tme.table_name()
        ))
    };
    for field in tme.iter_optional_meta() {
        match field.map_err(unreadable)? {
            OptionalMetadataField::ColumnName(c) => {
                let names = c
                    .iter_names()
                    .map(|x| x.map(|x| x.name().into_owned()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unreadable)?;
                out.names = Some(names);
            }
            OptionalMetadataField::Signedness(bits) => {
                let mut bits = bits.iter();
                let unsigned = (0..n)
                    .map(|i| match tme.get_column_type(i).ok().flatten() {
                        Some(t) if is_numeric(t) => bits.next().map(|b| *b),
                        _ => None,
                    })
                    .collect();
                out.unsigned = Some(unsigned);
            }
            OptionalMetadataField::EnumStrValue(e) => {
                let lists = e.iter_values().map(|v| v.map(|v| labels(v.values().iter().map(|l| l.value_raw()))));
                out.enums = Some(lists.collect::<Result<_, _>>().map_err(unreadable)?);
            }
            OptionalMetadataField::SetStrValue(e) => {
                let lists = e.iter_values().map(|v| v.map(|v| labels(v.values().iter().map(|l| l.value_raw()))));
                out.sets = Some(lists.collect::<Result<_, _>>().map_err(unreadable)?);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// An ENUM's or SET's labels as the table map gives them, each where it is ASCII.
fn labels<'a>(raw: impl Iterator<Item = &'a [u8]>) -> Vec<Option<String>> {
    raw.map(|l| l.is_ascii().then(|| String::from_utf8_lossy(l).into_owned())).collect()
}

fn column_name(table: &ReaderTable, i: usize) -> String {
    table.names.get(i).cloned().unwrap_or_else(|| format!("{}", i + 1))
}

fn quoted(labels: &[String]) -> String {
    labels.iter().map(|l| format!("'{}'", l.replace('\'', "''"))).collect::<Vec<_>>().join(",")
}

/// Checks what the table map says against the replicated `table` (`name` is `schema.table`,
/// `at` the binlog position): an error saying what differs, with the advice.
pub fn check(meta: &MapMetadata, table: &ReaderTable, name: &str, at: &str) -> CoreResult<()> {
    let mut differences = Vec::new();
    if let Some(names) = &meta.names {
        let same = names.len() == table.names.len()
            && names.iter().zip(&table.names).all(|(a, b)| a.to_lowercase() == b.to_lowercase());
        if !same {
            differences.push(format!(
                "the binlog names the columns ({}) but the replica knows ({})",
                names.join(", "),
                table.names.join(", ")
            ));
        }
    }
    // signedness is compared only where the columns line up (without names, a column count
    // that differs is the rows event's error, as it always was)
    if differences.is_empty() && meta.columns == table.kinds.len() {
        if let Some(unsigned) = &meta.unsigned {
            for (i, (u, kind)) in unsigned.iter().zip(&table.kinds).enumerate() {
                if let (Some(u), ValueKind::Int { unsigned: known, .. }) = (u, kind) {
                    if u != known {
                        let col = column_name(table, i);
                        let sign = |x: bool| if x { "unsigned" } else { "signed" };
                        differences.push(format!(
                            "column \"{col}\" is {} in the binlog but {} for the replica",
                            sign(*u),
                            sign(*known)
                        ));
                    }
                }
            }
        }
    }
    if differences.is_empty() && meta.columns == table.kinds.len() {
        for (what, given) in [("ENUM", &meta.enums), ("SET", &meta.sets)] {
            let Some(given) = given else { continue };
            // the replica's columns of that kind, in column order, with their labels
            let known: Vec<(usize, &Vec<String>)> = table
                .kinds
                .iter()
                .enumerate()
                .filter_map(|(i, k)| match (k, what) {
                    (ValueKind::Enum(l), "ENUM") | (ValueKind::Set(l), "SET") => Some((i, l)),
                    _ => None,
                })
                .collect();
            if given.len() != known.len() {
                differences.push(format!(
                    "the binlog has {} {what} columns but the replica {}",
                    given.len(),
                    known.len()
                ));
                continue;
            }
            for (labels, (i, replica)) in given.iter().zip(known) {
                let same = labels.len() == replica.len()
                    && labels.iter().zip(replica).all(|(l, r)| l.as_ref().is_none_or(|l| l == r));
                if !same {
                    let shown: Vec<String> = labels.iter().map(|l| l.clone().unwrap_or_else(|| "?".into())).collect();
                    differences.push(format!(
                        "column \"{}\" is {what}({}) in the binlog but {what}({}) for the replica",
                        column_name(table, i),
                        quoted(&shown),
                        quoted(replica)
                    ));
                }
            }
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(CoreError::binlog(format!(
        "table {name} changed on the source outside what the replica saw (at {at}): {}",
        differences.join("; ")
    ))
    .with_detail(
        "the binlog's table map (binlog_row_metadata=FULL) describes the table otherwise than the definition \
         its rows are decoded with: a DDL statement not in the binlog (sql_log_bin=0) or made while the replica \
         was stopped; its rows are not applied, the source's other tables go on",
    )
    .with_hint(
        "copy it again with chameleon.sync_tables (after chameleon.refresh_schema if the source's schema changed)",
    ))
}
