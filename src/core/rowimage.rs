//! The row images of a rows event, decoded without the driver's per-row column descriptors.
//!
//! `mysql_common`'s `RowsEvent::rows` builds, for every row image, a `Column` per column (the
//! schema, table and column names copied into each, twice), parses the table map's optional
//! metadata again and copies every value out of the event: at keep-up about a third of the
//! read worker's CPU went there. Here the table map's column layout is read once per rows
//! event (`Layout`) and each image's values borrow the event's bytes. The format is the one
//! `BinlogRow::deserialize` reads, value by value with the driver's own `BinlogValue` decoder:
//! an image is an optional shared-image block (a partial update's after image: its value
//! options, then one bit per JSON column updated in part), the NULL bitmap of the columns the
//! image holds, then each of those columns' values that is not NULL, in column order.

use mysql::binlog::events::{OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;
use mysql_common::proto::MyDeserialize;
use std::io;

/// One row image, by column: `None` for a column the image does not hold (its bitmap leaves it
/// out: binlog_row_image=MINIMAL or NOBLOB), a NULL as `Value::NULL`.
pub type Image<'a> = Vec<Option<BinlogValue<'a>>>;

/// What decoding a column takes: its type, its table-map metadata, whether it is an unsigned
/// number.
struct ColumnLayout<'a> {
    ty: ColumnType,
    meta: &'a [u8],
    unsigned: bool,
}

/// The table map's columns, as the images of one rows event are decoded.
struct Layout<'a> {
    columns: Vec<ColumnLayout<'a>>,
    json_columns: usize,
}

impl<'a> Layout<'a> {
    fn of(map: &'a TableMapEvent<'a>, n: usize) -> io::Result<Layout<'a>> {
        let optional = OptionalMetaExtractor::new(map.iter_optional_meta())?;
        // one signedness bit per numeric column, in order (none when the server sent none)
        let mut signedness = optional.iter_signedness();
        let mut columns = Vec::with_capacity(n);
        for i in 0..n {
            let ty = match map.get_column_type(i) {
                Ok(Some(ty)) => ty,
                Ok(None) => return Err(invalid(format!("column {} has no type in the table map", i + 1))),
                Err(e) => return Err(invalid(format!("column {}: {e}", i + 1))),
            };
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            columns.push(ColumnLayout { ty, meta: map.get_column_metadata(i).unwrap_or(&[]), unsigned });
        }
        Ok(Layout { columns, json_columns: map.json_column_count() })
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Every row of a rows event: its before image (an update's or a delete's) and its after
/// image (an insert's or an update's).
pub fn rows<'a>(
    event: &'a RowsEventData<'a>,
    map: &'a TableMapEvent<'a>,
) -> io::Result<Vec<(Option<Image<'a>>, Option<Image<'a>>)>> {
    let n = usize::try_from(event.num_columns()).map_err(|_| invalid("too many columns".into()))?;
    let layout = Layout::of(map, n)?;
    let before: Option<Vec<bool>> = event.columns_before_image().map(|b| b.iter().by_vals().take(n).collect());
    let after: Option<Vec<bool>> = event.columns_after_image().map(|b| b.iter().by_vals().take(n).collect());
    let shared = matches!(event, RowsEventData::PartialUpdateRowsEvent(_));
    let mut buf = ParseBuf(event.rows_data());
    let mut out = Vec::new();
    while !buf.is_empty() {
        let b = match &before {
            Some(present) => Some(image(&layout, present, false, &mut buf)?),
            None => None,
        };
        let a = match &after {
            Some(present) => Some(image(&layout, present, shared, &mut buf)?),
            None => None,
        };
        if b.is_none() && a.is_none() {
            return Err(invalid("a rows event without row images".into()));
        }
        out.push((b, a));
    }
    Ok(out)
}

/// The JSON columns' partial-update bits of an after image with a shared-image block.
const PARTIAL_JSON_UPDATES: u64 = 1;

fn image<'a>(layout: &Layout<'a>, present: &[bool], shared: bool, buf: &mut ParseBuf<'a>) -> io::Result<Image<'a>> {
    let partial: Option<&'a [u8]> = if shared {
        let options = len_enc_int(buf)?;
        if options & PARTIAL_JSON_UPDATES != 0 {
            Some(take(buf, layout.json_columns.div_ceil(8))?)
        } else {
            None
        }
    } else {
        None
    };
    let count = present.iter().filter(|p| **p).count();
    let nulls = take(buf, count.div_ceil(8))?;
    let mut values = Vec::with_capacity(layout.columns.len());
    let (mut at, mut json_at) = (0usize, 0usize);
    for (i, c) in layout.columns.iter().enumerate() {
        let is_json = c.ty == ColumnType::MYSQL_TYPE_JSON;
        // one bit per JSON column of the table, whether the image holds it or not
        let is_partial = is_json && partial.is_some_and(|bits| bit(bits, json_at));
        if is_json {
            json_at += 1;
        }
        if !present.get(i).copied().unwrap_or(false) {
            values.push(None);
            continue;
        }
        if bit(nulls, at) {
            values.push(Some(BinlogValue::Value(mysql::Value::NULL)));
        } else {
            values.push(Some(BinlogValue::deserialize((c.ty, c.meta, c.unsigned, is_partial), buf)?));
        }
        at += 1;
    }
    Ok(values)
}

/// Bit `i` of a bitmap, least significant bit first.
fn bit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1)
}

fn take<'a>(buf: &mut ParseBuf<'a>, n: usize) -> io::Result<&'a [u8]> {
    buf.checked_eat(n).ok_or_else(|| invalid("a row image ends early".into()))
}

/// A length-encoded integer of the client/server protocol.
fn len_enc_int(buf: &mut ParseBuf<'_>) -> io::Result<u64> {
    let first = take(buf, 1)?[0];
    let width = match first {
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        0xfb | 0xff => return Err(invalid(format!("a length-encoded integer cannot start with {first:#x}"))),
        v => return Ok(u64::from(v)),
    };
    let bytes = take(buf, width)?;
    Ok(bytes.iter().rev().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_least_significant_first() {
        assert!(bit(&[0b0000_0101], 0) && !bit(&[0b0000_0101], 1) && bit(&[0b0000_0101], 2));
        assert!(bit(&[0, 0b1000_0000], 15) && !bit(&[0], 9));
    }

    #[test]
    fn length_encoded_integers() {
        assert_eq!(len_enc_int(&mut ParseBuf(&[0x05])).unwrap(), 5);
        assert_eq!(len_enc_int(&mut ParseBuf(&[0xfc, 0x34, 0x12])).unwrap(), 0x1234);
        assert_eq!(len_enc_int(&mut ParseBuf(&[0xfd, 0x56, 0x34, 0x12])).unwrap(), 0x123456);
        assert_eq!(len_enc_int(&mut ParseBuf(&[0xfe, 1, 0, 0, 0, 0, 0, 0, 0x80])).unwrap(), 0x8000_0000_0000_0001);
        assert!(len_enc_int(&mut ParseBuf(&[0xfc, 0x34])).is_err());
        assert!(len_enc_int(&mut ParseBuf(&[0xfb])).is_err());
    }
}
