//! What the binlog reader thread hands to the worker's main thread: whole source
//! transactions of typed row changes (values already in PostgreSQL text form), rows that
//! could not be converted, and the position after the commit.

use crate::core::error::CoreError;
use crate::core::position::BinlogPosition;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Insert => "I",
            Op::Update => "U",
            Op::Delete => "D",
        }
    }

    pub fn from_code(code: &str) -> Option<Op> {
        match code {
            "I" => Some(Op::Insert),
            "U" => Some(Op::Update),
            "D" => Some(Op::Delete),
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

/// A row that could not be converted: kept with its exact source bytes and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscardedRow {
    pub table_id: i32,
    pub pos: u64,
    pub raw: Vec<u8>,
    pub reason: String,
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

#[derive(Debug)]
pub enum ReaderMessage {
    Transaction(SourceTransaction),
    /// The source sent a heartbeat: everything it had was received. `position` is the
    /// reader's position when it is between event groups (a safe place to resume), so that
    /// a rotate or events of unreplicated kinds still move the stored position.
    Heartbeat { position: Option<BinlogPosition> },
    /// Something the server log should say (an unknown event type skipped).
    Note(String),
    /// The reader stopped; the worker decides whether to reconnect.
    Error(CoreError),
}
