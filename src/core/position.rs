//! Binlog coordinates: a file name and a byte offset, ordered the way the server orders
//! them (the numeric suffix of the file, then the offset). Consistent points, batch ends
//! and the read position are all `BinlogPosition`s.

use crate::core::error::{CoreError, CoreResult};
use crate::core::gtid::GtidState;
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
}

impl BinlogPosition {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogPosition { file: file.into(), pos }
    }

    /// The numeric suffix of the file name (`mysql-bin.000042` -> 42), if any.
    pub fn file_seq(&self) -> Option<u64> {
        let (_, suffix) = self.file.rsplit_once('.')?;
        suffix.parse().ok()
    }

    /// Parses `file:pos`, the form used in messages and in `chameleon.sources`.
    pub fn parse(text: &str) -> CoreResult<Self> {
        let (file, pos) = text.rsplit_once(':').ok_or_else(|| {
            CoreError::invalid_parameter(format!("binlog position \"{text}\" is not of the form file:offset"))
        })?;
        let pos = pos
            .parse::<u64>()
            .map_err(|_| CoreError::invalid_parameter(format!("binlog position \"{text}\": offset is not a number")))?;
        if file.is_empty() {
            return Err(CoreError::invalid_parameter(format!("binlog position \"{text}\": empty file name")));
        }
        Ok(BinlogPosition::new(file, pos))
    }
}

impl Ord for BinlogPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_file = match (self.file_seq(), other.file_seq()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.file.cmp(&other.file),
        };
        by_file.then(self.pos.cmp(&other.pos))
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// Whether an event at `file:pos` must be applied to a table whose consistent point is
/// `point`. Events at or before the point are already in the copied data. Allocates nothing
/// in the common case (same file), as replay asks it for every row.
pub fn after_consistent_point(file: &str, pos: u64, point: Option<&BinlogPosition>) -> bool {
    match point {
        None => true,
        Some(p) if p.file == file => pos > p.pos,
        Some(p) => BinlogPosition::new(file, pos) > *p,
    }
}

/// A start position as the DBA writes it (`start_replica(source, start_position)`).
#[derive(Debug, Clone, PartialEq)]
pub enum StartAt {
    /// `mysql-bin.000042:1234`
    File(BinlogPosition),
    /// `0-1-4711` (MariaDB) or `uuid:1-4711` (MySQL)
    Gtid(GtidState),
}

impl StartAt {
    pub fn parse(text: &str) -> CoreResult<StartAt> {
        if GtidState::looks_like_gtid(text) {
            return Ok(StartAt::Gtid(GtidState::parse(text)?));
        }
        BinlogPosition::parse(text.trim()).map(StartAt::File).map_err(|_| {
            CoreError::invalid_parameter(format!(
                "start_position \"{text}\" is neither file:offset (mysql-bin.000042:1234) nor a GTID position \
                 (MariaDB 0-1-4711, MySQL uuid:1-4711)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_file_number_then_offset() {
        let a = BinlogPosition::new("mysql-bin.000009", 9000);
        let b = BinlogPosition::new("mysql-bin.000010", 4);
        let c = BinlogPosition::new("mysql-bin.000010", 120);
        assert!(a < b && b < c);
        // numeric, not lexicographic, once the suffix grows past six digits
        let d = BinlogPosition::new("mysql-bin.999999", 4);
        let e = BinlogPosition::new("mysql-bin.1000000", 4);
        assert!(d < e);
    }

    #[test]
    fn parses_and_prints() {
        let p = BinlogPosition::parse("mysql-bin.000003:1234").unwrap();
        assert_eq!(p, BinlogPosition::new("mysql-bin.000003", 1234));
        assert_eq!(p.to_string(), "mysql-bin.000003:1234");
        assert!(BinlogPosition::parse("nope").is_err());
        assert!(BinlogPosition::parse(":12").is_err());
        assert!(BinlogPosition::parse("f:x").is_err());
    }

    #[test]
    fn start_positions_parse() {
        assert_eq!(
            StartAt::parse("mysql-bin.000042:1234").unwrap(),
            StartAt::File(BinlogPosition::new("mysql-bin.000042", 1234))
        );
        assert!(matches!(StartAt::parse("0-1-4711").unwrap(), StartAt::Gtid(g) if g.is_mariadb()));
        assert!(
            matches!(StartAt::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9").unwrap(), StartAt::Gtid(g) if !g.is_mariadb())
        );
        assert!(StartAt::parse("yesterday").unwrap_err().to_string().contains("start_position"));
    }

    #[test]
    fn consistent_point_excludes_events_at_or_before() {
        let point = BinlogPosition::new("b.000001", 500);
        assert!(!after_consistent_point("b.000001", 400, Some(&point)));
        assert!(!after_consistent_point("b.000001", 500, Some(&point)));
        assert!(after_consistent_point("b.000001", 501, Some(&point)));
        assert!(after_consistent_point("b.000002", 4, Some(&point)));
        assert!(!after_consistent_point("b.000000", 9999, Some(&point)));
        assert!(after_consistent_point("b.000001", 1, None));
    }
}
