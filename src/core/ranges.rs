//! Primary-key ranges for copying one large table with several copy workers: which tables
//! qualify, how the key span is cut, and the MySQL filter of a range.

use crate::core::sql::quote_mysql_ident;
use crate::core::types::{MappedType, ValueKind};

/// One range of an integer key: `low <= key < high`; an open end is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub low: Option<i128>,
    pub high: Option<i128>,
}

/// The key column to split `table` on, when it qualifies: a single-column key of an integer
/// type, at least `split_rows` rows estimated (0 never splits), and more than one worker.
pub fn split_column<'a>(
    key: &'a [String],
    columns: &[String],
    mapped: &[MappedType],
    estimate: i64,
    split_rows: u64,
    workers: usize,
) -> Option<&'a str> {
    if split_rows == 0 || workers < 2 || estimate < 0 || (estimate as u64) < split_rows || key.len() != 1 {
        return None;
    }
    let i = columns.iter().position(|c| *c == key[0])?;
    matches!(mapped.get(i)?.kind, ValueKind::Int { .. }).then_some(key[0].as_str())
}

/// Cuts `[min, max]` into at most `n` ranges of equal width, the first open below and the last
/// open above (rows outside the span read at planning time still belong to a range).
pub fn plan(min: i128, max: i128, n: usize) -> Vec<KeyRange> {
    let n = n.max(1) as i128;
    let span = max - min + 1;
    if span <= 1 || n == 1 {
        return vec![KeyRange { low: None, high: None }];
    }
    let n = n.min(span);
    let width = (span + n - 1) / n;
    let mut out = Vec::new();
    let mut low = None;
    let mut at = min;
    loop {
        at += width;
        if at > max {
            out.push(KeyRange { low, high: None });
            break;
        }
        out.push(KeyRange { low, high: Some(at) });
        low = Some(at);
    }
    out
}

/// The MySQL condition selecting the rows of `range` on `column` (None: every row).
pub fn filter(column: &str, range: &KeyRange) -> Option<String> {
    let c = quote_mysql_ident(column);
    match (range.low, range.high) {
        (None, None) => None,
        (Some(l), None) => Some(format!("{c} >= {l}")),
        (None, Some(h)) => Some(format!("{c} < {h}")),
        (Some(l), Some(h)) => Some(format!("{c} >= {l} AND {c} < {h}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{col, map_column};

    #[test]
    fn ranges_cover_the_span_without_overlap() {
        let r = plan(1, 100, 4);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0], KeyRange { low: None, high: Some(26) });
        assert_eq!(r[1], KeyRange { low: Some(26), high: Some(51) });
        assert_eq!(r[3], KeyRange { low: Some(76), high: None });
        for w in r.windows(2) {
            assert_eq!(w[0].high, w[1].low);
        }
        assert_eq!(plan(5, 5, 4), vec![KeyRange { low: None, high: None }]);
        assert_eq!(plan(1, 3, 8).len(), 3);
        // the whole unsigned BIGINT span
        let big = plan(0, 18_446_744_073_709_551_615, 3);
        assert_eq!(big.len(), 3);
        assert_eq!(big[2].high, None);
        assert_eq!(plan(-10, 9, 2), vec![KeyRange { low: None, high: Some(0) }, KeyRange { low: Some(0), high: None }]);
    }

    #[test]
    fn filters_and_qualifying_tables() {
        assert_eq!(filter("id", &KeyRange { low: Some(5), high: Some(9) }).unwrap(), "`id` >= 5 AND `id` < 9");
        assert_eq!(filter("o`d", &KeyRange { low: None, high: Some(-3) }).unwrap(), "`o``d` < -3");
        assert_eq!(filter("id", &KeyRange { low: None, high: None }), None);
        let cols = vec!["id".to_string(), "name".to_string()];
        let mapped = vec![
            map_column(&col("id", "bigint", "bigint(20) unsigned"), "s", "t").unwrap(),
            map_column(&col("name", "varchar", "varchar(10)"), "s", "t").unwrap(),
        ];
        let key = vec!["id".to_string()];
        assert_eq!(split_column(&key, &cols, &mapped, 2_000_000, 1_000_000, 2), Some("id"));
        assert_eq!(split_column(&key, &cols, &mapped, 999_999, 1_000_000, 2), None);
        assert_eq!(split_column(&key, &cols, &mapped, 2_000_000, 1_000_000, 1), None);
        assert_eq!(split_column(&key, &cols, &mapped, 2_000_000, 0, 4), None);
        assert_eq!(split_column(&["name".to_string()], &cols, &mapped, 2_000_000, 1, 2), None);
        assert_eq!(split_column(&["id".to_string(), "name".to_string()], &cols, &mapped, 2_000_000, 1, 2), None);
    }
}
