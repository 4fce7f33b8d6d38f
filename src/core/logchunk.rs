//! The change log's storage unit: a chunk of consecutive row events of one batch, stored as
//! one value (`sch_chameleon.t_log_replica.b_events`) instead of one log row per event. One
//! row per event cost the read worker more than decoding the binlog did (a heap tuple, an
//! index entry and their WAL per event), and replay as much again to read them back through
//! SPI; a chunk is one tuple for thousands of events, written and read as bytes.
//!
//! Format: a version byte (1), then per event: the table id (varint), the operation's code
//! (one byte: `I`, `U`, `D`, `Q`), the binlog file (varint 0: the previous event's; n + 1: n
//! bytes of its name follow; the first event always names it), the position (varint), then
//! the old key and the new row (each varint 0: none; n + 1: n bytes of the `rowcodec`
//! encoding follow).

use crate::core::change::{Op, RowChange};
use crate::core::error::{CoreError, CoreResult};
use crate::core::rowcodec::{encode_into, get_varint, put_varint};

const FORMAT: u8 = 1;
/// A chunk closes at this many events, or at `MAX_BYTES`, whichever comes first: replay
/// reads a chunk whole, so this bounds its memory per chunk read.
pub const MAX_EVENTS: usize = 5000;
pub const MAX_BYTES: usize = 16 << 20;

/// A closed chunk, ready to store.
#[derive(Debug)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub events: usize,
    /// The tables its events change, sorted (the catch-up and verification read only the
    /// chunks of their table).
    pub tables: Vec<i32>,
}

/// Builds chunks from events in stream order.
pub struct ChunkWriter {
    buf: Vec<u8>,
    scratch: Vec<u8>,
    events: usize,
    tables: Vec<i32>,
    last_file: String,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        ChunkWriter::new()
    }
}

impl ChunkWriter {
    pub fn new() -> ChunkWriter {
        ChunkWriter { buf: vec![FORMAT], scratch: Vec::new(), events: 0, tables: Vec::new(), last_file: String::new() }
    }

    pub fn is_full(&self) -> bool {
        self.events >= MAX_EVENTS || self.buf.len() >= MAX_BYTES
    }

    /// Appends a row change read from `file`.
    pub fn push_change(&mut self, file: &str, c: &RowChange) {
        self.push(file, c.table_id, c.op, c.pos, c.key.as_deref(), c.row.as_deref());
    }

    pub fn push<S: AsRef<[u8]>>(
        &mut self,
        file: &str,
        table_id: i32,
        op: Op,
        pos: u64,
        key: Option<&[Option<S>]>,
        row: Option<&[Option<S>]>,
    ) {
        put_varint(&mut self.buf, table_id as u32 as u64);
        self.buf.push(op.code().as_bytes()[0]);
        if self.events > 0 && file == self.last_file {
            self.buf.push(0);
        } else {
            put_varint(&mut self.buf, file.len() as u64 + 1);
            self.buf.extend_from_slice(file.as_bytes());
            self.last_file.clear();
            self.last_file.push_str(file);
        }
        put_varint(&mut self.buf, pos);
        for values in [key, row] {
            match values {
                None => self.buf.push(0),
                Some(v) => {
                    self.scratch.clear();
                    encode_into(&mut self.scratch, v);
                    put_varint(&mut self.buf, self.scratch.len() as u64 + 1);
                    self.buf.extend_from_slice(&self.scratch);
                }
            }
        }
        if let Err(at) = self.tables.binary_search(&table_id) {
            self.tables.insert(at, table_id);
        }
        self.events += 1;
    }

    /// The chunk built so far (None when it holds no event); the writer starts a new one.
    pub fn take(&mut self) -> Option<Chunk> {
        if self.events == 0 {
            return None;
        }
        let bytes = std::mem::replace(&mut self.buf, vec![FORMAT]);
        let chunk = Chunk { bytes, events: self.events, tables: std::mem::take(&mut self.tables) };
        self.events = 0;
        Some(chunk)
    }
}

/// One event of a chunk, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent<'a> {
    pub table_id: i32,
    pub op: Op,
    pub file: &'a str,
    pub pos: u64,
    /// The old key (update, delete), in the row encoding.
    pub key: Option<&'a [u8]>,
    /// The new row (insert, update) or the DDL event's fields, in the row encoding.
    pub row: Option<&'a [u8]>,
}

fn bytes<'a>(buf: &'a [u8], at: &mut usize, what: &str) -> CoreResult<Option<&'a [u8]>> {
    let tag = get_varint(buf, at)?;
    if tag == 0 {
        return Ok(None);
    }
    let len = usize::try_from(tag - 1).map_err(|_| CoreError::codec(format!("log chunk has an overlong {what}")))?;
    let out = buf
        .get(*at..at.saturating_add(len))
        .ok_or_else(|| CoreError::codec(format!("log chunk truncated in {what}")))?;
    *at += len;
    Ok(Some(out))
}

/// Decodes a chunk that holds `expected` events.
pub fn decode(buf: &[u8], expected: usize) -> CoreResult<Vec<LoggedEvent<'_>>> {
    match buf.first() {
        Some(&FORMAT) => {}
        Some(v) => return Err(CoreError::codec(format!("log chunk has format {v}, this version reads {FORMAT}"))),
        None => return Err(CoreError::codec("log chunk is empty".into())),
    }
    let mut at = 1;
    let mut out = Vec::with_capacity(expected.min(MAX_EVENTS));
    let mut file: Option<&str> = None;
    while at < buf.len() {
        let table = get_varint(buf, &mut at)?;
        let table_id =
            u32::try_from(table).map_err(|_| CoreError::codec(format!("log chunk has table id {table}")))? as i32;
        let code = *buf.get(at).ok_or_else(|| CoreError::codec("log chunk truncated in an operation".into()))?;
        at += 1;
        let op = std::str::from_utf8(&[code])
            .ok()
            .and_then(Op::from_code)
            .ok_or_else(|| CoreError::codec(format!("log chunk has unknown operation code {code}")))?;
        if let Some(name) = bytes(buf, &mut at, "a file name")? {
            file = Some(
                std::str::from_utf8(name)
                    .map_err(|_| CoreError::codec("log chunk has a file name that is not UTF-8".into()))?,
            );
        }
        let file = file.ok_or_else(|| CoreError::codec("log chunk's first event names no file".into()))?;
        let pos = get_varint(buf, &mut at)?;
        let key = bytes(buf, &mut at, "a key")?;
        let row = bytes(buf, &mut at, "a row")?;
        out.push(LoggedEvent { table_id, op, file, pos, key, row });
    }
    if out.len() != expected {
        return Err(CoreError::codec(format!("log chunk holds {} events, its row says {expected}", out.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::rowcodec;

    /// Builds the chunks of `changes` (each with the file it was read from), in order.
    fn chunks<'a>(changes: impl Iterator<Item = (&'a str, &'a RowChange)>) -> Vec<Chunk> {
        let mut w = ChunkWriter::new();
        let mut out = Vec::new();
        for (file, c) in changes {
            w.push_change(file, c);
            if w.is_full() {
                out.extend(w.take());
            }
        }
        out.extend(w.take());
        out
    }

    fn change(table_id: i32, op: Op, pos: u64, key: Option<&[&str]>, row: Option<&[Option<&str>]>) -> RowChange {
        RowChange {
            table_id,
            op,
            pos,
            timestamp: 0,
            key: key.map(|k| k.iter().map(|v| Some(v.to_string())).collect()),
            row: row.map(|r| r.iter().map(|v| v.map(str::to_string)).collect()),
        }
    }

    #[test]
    fn events_round_trip_with_files_keys_rows_and_nulls() {
        let changes = [
            ("mysql-bin.000001", change(7, Op::Insert, 120, None, Some(&[Some("1"), None, Some("")]))),
            ("mysql-bin.000001", change(8, Op::Update, 300, Some(&["1"]), Some(&[Some("2"), Some("żółw")]))),
            ("mysql-bin.000002", change(7, Op::Delete, 4, Some(&["9"]), None)),
            ("mysql-bin.000002", change(0, Op::Ddl, u64::MAX, None, Some(&[Some("ALTER TABLE t ADD c int")]))),
        ];
        let out = chunks(changes.iter().map(|(f, c)| (*f, c)));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].events, 4);
        assert_eq!(out[0].tables, vec![0, 7, 8]);
        let events = decode(&out[0].bytes, 4).unwrap();
        for ((file, c), e) in changes.iter().zip(&events) {
            assert_eq!((e.file, e.table_id, e.op, e.pos), (*file, c.table_id, c.op, c.pos));
            assert_eq!(
                e.key.map(|k| rowcodec::decode(k).unwrap()),
                c.key.as_ref().map(|k| k.iter().map(|v| v.as_deref()).collect())
            );
            assert_eq!(
                e.row.map(|r| rowcodec::decode(r).unwrap()),
                c.row.as_ref().map(|r| r.iter().map(|v| v.as_deref()).collect())
            );
        }
        assert!(decode(&out[0].bytes, 5).is_err(), "a count that disagrees is an error");
    }

    #[test]
    fn chunks_close_at_the_event_limit_and_each_names_its_file() {
        let c = change(1, Op::Insert, 10, None, Some(&[Some("x")]));
        let out = chunks(std::iter::repeat_n(("f.1", &c), MAX_EVENTS * 2 + 1));
        assert_eq!(out.iter().map(|c| c.events).collect::<Vec<_>>(), vec![MAX_EVENTS, MAX_EVENTS, 1]);
        assert_eq!(decode(&out[2].bytes, 1).unwrap()[0].file, "f.1");
        assert!(chunks(std::iter::empty()).is_empty());
    }

    #[test]
    fn corrupt_chunks_are_errors_not_panics() {
        let c = change(3, Op::Update, 99, Some(&["k"]), Some(&[Some("v"), None]));
        let bytes = chunks([("bin.9", &c)].into_iter()).remove(0).bytes;
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut], 1).is_err(), "cut at {cut}");
        }
        assert!(decode(&[], 0).is_err());
        assert!(decode(&[2], 0).is_err(), "an unknown format");
        let mut bad_op = bytes.clone();
        bad_op[2] = b'Z';
        assert!(decode(&bad_op, 1).is_err());
        // a first event that names no file
        assert!(decode(&[FORMAT, 1, b'I', 0, 5, 0, 0], 1).is_err());
        assert!(decode(&[FORMAT, 0xff, 0xff, 0xff, 0xff, 0x7f, b'I', 1, 5, 0, 0], 1).is_err(), "table id past 32 bits");
    }
}
