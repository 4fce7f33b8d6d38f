//! What the binlog reader thread hands to the worker's main thread: source transactions of
//! typed row changes (values already in PostgreSQL text form), rows that could not be
//! converted, and the position after the commit; a transaction larger than a piece comes first
//! as pieces (`TransactionPiece`), then its commit (docs/internals.md, contract 2). Also the
//! memory estimate (`mem_size`) that bounds pieces, batches and the channel in bytes.

use crate::core::error::CoreError;
use crate::core::position::BinlogPosition;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Update,
    Delete,
    /// A DDL statement, in stream order between the row changes (`RowChange::row` holds
    /// `DdlEvent::to_row`).
    Ddl,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Insert => "I",
            Op::Update => "U",
            Op::Delete => "D",
            Op::Ddl => "Q",
        }
    }

    pub fn from_code(code: &str) -> Option<Op> {
        match code {
            "I" => Some(Op::Insert),
            "U" => Some(Op::Update),
            "D" => Some(Op::Delete),
            "Q" => Some(Op::Ddl),
            _ => None,
        }
    }
}

pub type Row = Vec<Option<String>>;

/// One row change. `key` is the old key (update, delete), `row` the new row (insert, update).
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub table_id: i32,
    pub op: Op,
    /// End offset of the row event in the transaction's binlog file.
    pub pos: u64,
    pub timestamp: u32,
    pub key: Option<Row>,
    pub row: Option<Row>,
}

/// Estimated heap bytes of a row: each value's slot plus its text (and the allocator's share).
fn row_mem_size(row: &Option<Row>) -> usize {
    row.as_ref().map_or(0, |r| {
        r.iter().map(|v| std::mem::size_of::<Option<String>>() + v.as_ref().map_or(0, |s| s.len() + 16)).sum::<usize>()
            + 16
    })
}

impl RowChange {
    /// Estimated bytes this change holds in memory (what pieces and batches are bounded by).
    pub fn mem_size(&self) -> usize {
        std::mem::size_of::<RowChange>() + row_mem_size(&self.key) + row_mem_size(&self.row)
    }
}

/// A row that could not be converted: kept with its exact source bytes and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscardedRow {
    pub table_id: i32,
    pub pos: u64,
    pub raw: Vec<u8>,
    pub reason: String,
}

impl DiscardedRow {
    pub fn mem_size(&self) -> usize {
        std::mem::size_of::<DiscardedRow>() + self.raw.len() + self.reason.len() + 32
    }
}

/// A committed source transaction. A transaction never spans binlog files.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTransaction {
    pub file: String,
    pub changes: Vec<RowChange>,
    pub discarded: Vec<DiscardedRow>,
    /// The position right after the commit: where to resume.
    pub end: BinlogPosition,
    pub gtid: Option<String>,
    /// Source time of the commit (seconds since the epoch).
    pub timestamp: u32,
}

impl SourceTransaction {
    /// Estimated bytes of its changes and discarded rows.
    pub fn mem_size(&self) -> usize {
        changes_mem_size(&self.changes, &self.discarded)
    }
}

pub fn changes_mem_size(changes: &[RowChange], discarded: &[DiscardedRow]) -> usize {
    changes.iter().map(RowChange::mem_size).sum::<usize>() + discarded.iter().map(DiscardedRow::mem_size).sum::<usize>()
}

/// Part of a source transaction not committed yet, sent because the transaction grew past the
/// piece size: stored at once in the transaction's open batch, which replay does not see
/// until the commit (the `SourceTransaction` that follows) closes it with the read position.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionPiece {
    pub file: String,
    pub changes: Vec<RowChange>,
    pub discarded: Vec<DiscardedRow>,
    /// Position of the last event in the piece (for messages: never a resume position).
    pub last: BinlogPosition,
    /// Source time of its latest event.
    pub timestamp: u32,
}

impl TransactionPiece {
    pub fn mem_size(&self) -> usize {
        changes_mem_size(&self.changes, &self.discarded)
    }
}

/// A DDL statement as the reader saw it: the text, the session's default schema, the source's
/// flavor (how its `information_schema` writes types), and the default character set of each
/// mapped schema (for columns created without one).
#[derive(Debug, Clone, PartialEq)]
pub struct DdlEvent {
    pub query: String,
    pub default_schema: String,
    pub mysql: bool,
    pub schema_charsets: Vec<(String, String)>,
    /// The statement is part of a larger event group (MariaDB logs CREATE TABLE ... SELECT as
    /// the CREATE statement followed by the rows, in one group): a table it creates comes with
    /// rows the reader could not decode.
    pub with_rows: bool,
}

impl DdlEvent {
    /// Stored as one row of the log: [query, schema, flavor, charsets as "schema=charset"
    /// lines, "rows" when `with_rows`].
    pub fn to_row(&self) -> Row {
        let charsets: Vec<String> = self.schema_charsets.iter().map(|(s, c)| format!("{s}={c}")).collect();
        vec![
            Some(self.query.clone()),
            Some(self.default_schema.clone()),
            Some(if self.mysql { "mysql" } else { "mariadb" }.to_string()),
            Some(charsets.join("\n")),
            Some(if self.with_rows { "rows" } else { "" }.to_string()),
        ]
    }

    pub fn from_row(row: &[Option<&str>]) -> Result<DdlEvent, CoreError> {
        let field = |i: usize| row.get(i).copied().flatten().unwrap_or_default().to_string();
        if row.len() < 3 {
            return Err(CoreError::codec("a stored DDL event has fewer than 3 fields".into()));
        }
        let charsets =
            field(3).lines().filter_map(|l| l.rsplit_once('=').map(|(s, c)| (s.to_string(), c.to_string()))).collect();
        Ok(DdlEvent {
            query: field(0),
            default_schema: field(1),
            mysql: field(2) == "mysql",
            schema_charsets: charsets,
            with_rows: field(4) == "rows",
        })
    }
}

#[derive(Debug)]
pub enum ReaderMessage {
    /// A committed transaction; after pieces, the rest of their transaction and its commit.
    Transaction(SourceTransaction),
    /// The first part, or the next, of a transaction larger than a piece.
    Piece(TransactionPiece),
    /// The transaction being read was cut off (the source restarted in the middle of writing
    /// it: a new binlog file began before its commit). It never committed: its pieces are
    /// discarded. The text says where, for the server log.
    Abandon(String),
    /// The source sent a heartbeat: everything it had was received. `position` is the
    /// reader's position when it is between event groups (a safe place to resume), so that
    /// a rotate or events of unreplicated kinds still move the stored position.
    Heartbeat { position: Option<BinlogPosition> },
    /// An XA event group (`core::xa`): a prepared transaction, stored and kept from replay
    /// (after the pieces sent before it), or the XA COMMIT / XA ROLLBACK of one, which makes
    /// its rows visible at this place in the stream or drops them; each with the position
    /// after it.
    Xa { txn: SourceTransaction, xa: crate::core::xa::XaEvent },
    /// Something the server log should say (an unknown event type skipped).
    Note(String),
    /// The transaction just sent holds a DDL statement that may change replicated tables:
    /// the reader stopped after it. Rows after it are decoded with the tables as the statement
    /// leaves them, so the worker restarts the reader once replay has applied it.
    DdlBarrier,
    /// A replicated table's table map contradicts the definition its rows are decoded with
    /// (`core::tablemap`): the reader skips its rows from here on; the worker disables it with
    /// the error (the source's other tables go on).
    TableStopped { table_id: i32, position: BinlogPosition, error: CoreError },
    /// The reader stopped; the worker decides whether to reconnect.
    Error(CoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_events_survive_the_log_row() {
        let ev = DdlEvent {
            query: "ALTER TABLE `t` ADD COLUMN `a=b` int".into(),
            default_schema: "shop".into(),
            mysql: true,
            schema_charsets: vec![("shop".into(), "utf8mb4".into()), ("we=ird".into(), "latin1".into())],
            with_rows: true,
        };
        let row = ev.to_row();
        let fields: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
        assert_eq!(DdlEvent::from_row(&fields), Ok(ev.clone()));
        let plain = DdlEvent { mysql: false, with_rows: false, schema_charsets: vec![], ..ev };
        let row = plain.to_row();
        let fields: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
        assert_eq!(DdlEvent::from_row(&fields), Ok(plain));
        assert!(DdlEvent::from_row(&[Some("x")]).is_err());
        assert_eq!(Op::from_code(Op::Ddl.code()), Some(Op::Ddl));
    }
}
