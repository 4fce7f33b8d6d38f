//! The producer side of a table copy (`workers::copy`): a pure-Rust thread, started with every
//! signal blocked, that streams one MySQL table (or one key range of it) unbuffered, turns each
//! row into its COPY text line with `core::value`, and sends the lines in chunks of about
//! `CHUNK_BYTES` over a bounded channel to the backend's COPY. Rows the converter refuses go
//! over the same channel as discards, with their exact source bytes and the reason. Nothing
//! here calls PostgreSQL.

use crate::core::copytext;
use crate::core::error::{CoreError, CoreResult};
use crate::core::mysql_source;
use crate::core::rowcodec;
use crate::core::types::{MappedType, MySqlColumn, ValueKind};
use crate::core::value;
use crate::error::{ChameleonError, Result};
use crate::workers::txn::spawn_without_signals;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::thread::JoinHandle;

/// The size a chunk is sent at (its COPY text, plus the source bytes kept with it).
const CHUNK_BYTES: usize = 256 * 1024;

/// The longest COPY line PostgreSQL accepts (its buffers stop at 1 GB); a longer row is refused
/// by the converter instead of failing the COPY.
const MAX_ROW_BYTES: usize = (1 << 30) - 64 * 1024;

/// A source row as the copy reads it: one value per column, `None` for NULL.
type SourceRow = Vec<Option<Vec<u8>>>;

/// A row the copy could not store.
pub struct CopyDiscard {
    pub raw: Vec<u8>,
    pub reason: String,
}

/// A row kept with its chunk in `Isolate` mode: where its COPY line ends, and its source bytes.
pub(super) struct KeptRow {
    pub(super) end: usize,
    pub(super) raw: SourceRow,
}

/// What goes over the channel: COPY lines (with their rows in `Isolate` mode), or a row the
/// converter refused.
pub(super) enum Chunk {
    Data { text: Vec<u8>, rows: Vec<KeptRow> },
    Discard(CopyDiscard),
}

/// The request: what one copy reads and how it converts it. The connection holding the
/// consistent snapshot, the table (or the key range `filter` selects), its columns with their
/// converters, and whether each row's source bytes travel with its chunk (`Isolate` mode).
pub(super) struct CopyRequest {
    conn: mysql::Conn,
    schema: String,
    table: String,
    columns: Vec<MySqlColumn>,
    kinds: Vec<ValueKind>,
    names: Vec<String>,
    filter: Option<String>,
    keep_rows: bool,
}

impl CopyRequest {
    /// Takes the snapshot connection out of `conn` (the producer gives it back when it ends).
    pub(super) fn take(
        conn: &mut Option<mysql::Conn>,
        schema: &str,
        table: &str,
        columns: &[MySqlColumn],
        mapped: &[MappedType],
        filter: Option<&str>,
        keep_rows: bool,
    ) -> Result<CopyRequest> {
        let conn = conn.take().ok_or_else(|| ChameleonError::state("the copy connection was lost".into()))?;
        Ok(CopyRequest {
            conn,
            schema: schema.to_string(),
            table: table.to_string(),
            columns: columns.to_vec(),
            kinds: mapped.iter().map(|m| m.kind.clone()).collect(),
            names: columns.iter().map(|c| c.name.clone()).collect(),
            filter: filter.map(str::to_string),
            keep_rows,
        })
    }
}

/// The channel from the producer to COPY, as deep as `max_memory` allows: the chunks in it,
/// plus the one being filled and the one COPY is reading.
pub(super) fn chunk_channel(max_memory: usize) -> (Sender<Chunk>, Receiver<Chunk>) {
    bounded(channel_capacity(max_memory))
}

fn channel_capacity(max_memory: usize) -> usize {
    (max_memory / CHUNK_BYTES).saturating_sub(2).max(1)
}

/// The running producer thread (or why it could not start).
pub(super) struct Producer(std::io::Result<JoinHandle<(mysql::Conn, CoreResult<u64>)>>);

impl Producer {
    /// Starts the producer thread with every signal blocked (`txn::spawn_without_signals`). A
    /// thread that cannot start drops `tx`: the COPY sees no rows, and `finish` fails.
    pub(super) fn start(request: CopyRequest, tx: Sender<Chunk>) -> Producer {
        Producer(spawn_without_signals("copy-reader", move || produce(request, tx)))
    }

    /// Leaves the producer thread to itself (the copy was interrupted by a shutdown): it ends
    /// with the process, without being waited for.
    pub(super) fn abandon(self) {
        drop(self.0);
    }

    /// Waits for the producer to end: the connection, and how many rows it sent as COPY lines
    /// (or why it stopped). `what` names the table in the errors.
    pub(super) fn finish(self, what: &str) -> Result<(mysql::Conn, CoreResult<u64>)> {
        self.0
            .map_err(|e| ChameleonError::state(format!("cannot start the copy thread of {what}: {e}")))?
            .join()
            .map_err(|_| ChameleonError::state(format!("the copy thread of {what} panicked")))
    }
}

/// The producer thread's body: streams the rows, sends their chunks and discards, and gives
/// the connection back whatever happened.
fn produce(request: CopyRequest, tx: Sender<Chunk>) -> (mysql::Conn, CoreResult<u64>) {
    let CopyRequest { mut conn, schema, table, columns, kinds, names, filter, keep_rows } = request;
    let mut chunker = Chunker::new(keep_rows);
    let streamed = mysql_source::stream_rows(&mut conn, &schema, &table, &columns, filter.as_deref(), |raw| {
        match chunker.push(raw, &kinds, &names) {
            Some(chunk) => send(&tx, chunk),
            None => Ok(()),
        }
    });
    let sent = streamed.and_then(|_| {
        let (last, sent) = chunker.finish();
        if let Some(chunk) = last {
            send(&tx, chunk)?;
        }
        Ok(sent)
    });
    (conn, sent)
}

fn send(tx: &Sender<Chunk>, chunk: Chunk) -> CoreResult<()> {
    tx.send(chunk).map_err(|_| CoreError::source_query("copy receiver went away".into()))
}

/// Gathers COPY lines into chunks of about `CHUNK_BYTES` (counting the source bytes kept with
/// them in `Isolate` mode), and counts the rows it accepted.
struct Chunker {
    buf: Vec<u8>,
    rows: Vec<KeptRow>,
    kept_bytes: usize,
    accepted: u64,
    keep_rows: bool,
}

impl Chunker {
    fn new(keep_rows: bool) -> Chunker {
        Chunker { buf: chunk_buffer(), rows: Vec::new(), kept_bytes: 0, accepted: 0, keep_rows }
    }

    /// Takes one source row. Returns what to send now: the row as a discard when the converter
    /// refuses it, or the chunk when this row filled it.
    fn push(&mut self, raw: SourceRow, kinds: &[ValueKind], names: &[String]) -> Option<Chunk> {
        if let Err(reason) = push_copy_line(&mut self.buf, &raw, kinds, names) {
            return Some(Chunk::Discard(CopyDiscard { raw: rowcodec::encode(&raw), reason }));
        }
        self.accepted += 1;
        if self.keep_rows {
            self.kept_bytes += raw.iter().map(|v| v.as_ref().map_or(0, |b| b.len())).sum::<usize>();
            self.rows.push(KeptRow { end: self.buf.len(), raw });
        }
        if self.buf.len() + self.kept_bytes < CHUNK_BYTES {
            return None;
        }
        let text = std::mem::replace(&mut self.buf, chunk_buffer());
        self.kept_bytes = 0;
        Some(Chunk::Data { text, rows: std::mem::take(&mut self.rows) })
    }

    /// The last chunk, if it holds any row, and how many rows were accepted in all.
    fn finish(self) -> (Option<Chunk>, u64) {
        let last = (!self.buf.is_empty()).then_some(Chunk::Data { text: self.buf, rows: self.rows });
        (last, self.accepted)
    }
}

fn chunk_buffer() -> Vec<u8> {
    Vec::with_capacity(CHUNK_BYTES + 4096)
}

/// Appends the row's COPY line (tab-separated fields, `\N` for NULL, a newline) to `buf`, or
/// leaves `buf` as it was and returns why the row is refused: a value the converter refuses
/// (named by its column), or a line over PostgreSQL's limit.
fn push_copy_line(
    buf: &mut Vec<u8>,
    raw: &[Option<Vec<u8>>],
    kinds: &[ValueKind],
    names: &[String],
) -> std::result::Result<(), String> {
    let before = buf.len();
    for (i, v) in raw.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        let Some(bytes) = v else {
            buf.extend_from_slice(b"\\N");
            continue;
        };
        let done = match value::push_copy_text(&kinds[i], bytes, buf) {
            Ok(true) => Ok(()),
            Ok(false) => value::from_text(&kinds[i], bytes).map(|s| copytext::push_field(buf, s.as_deref())),
            Err(reason) => Err(reason),
        };
        if let Err(reason) = done {
            buf.truncate(before);
            return Err(format!("column \"{}\": {reason}", names[i]));
        }
    }
    buf.push(b'\n');
    if buf.len() - before > MAX_ROW_BYTES {
        let len = buf.len() - before;
        buf.truncate(before);
        return Err(format!("the row is {len} bytes in COPY form, over PostgreSQL's 1 GB limit for one row"));
    }
    Ok(())
}

/// The COPY line of each kept row of a chunk's `text`, in order (for the row-by-row retry).
pub(super) fn row_lines<'a>(text: &'a [u8], rows: &'a [KeptRow]) -> impl Iterator<Item = &'a [u8]> + 'a {
    rows.iter().scan(0, move |start, row| {
        let line = &text[*start..row.end];
        *start = row.end;
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(n: usize) -> (Vec<ValueKind>, Vec<String>) {
        let kinds = vec![ValueKind::Int { bits: 32, unsigned: false }; n];
        let names = (0..n).map(|i| format!("c{i}")).collect();
        (kinds, names)
    }

    fn row(values: &[Option<&str>]) -> SourceRow {
        values.iter().map(|v| v.map(|s| s.as_bytes().to_vec())).collect()
    }

    #[test]
    fn the_channel_holds_what_copy_max_memory_leaves_for_it() {
        // 64 MB: 256 chunks, less the one being filled and the one COPY is reading
        assert_eq!(channel_capacity(64 * 1024 * 1024), 254);
        // however small the budget, one chunk can wait in the channel
        assert_eq!(channel_capacity(0), 1);
        assert_eq!(channel_capacity(3 * CHUNK_BYTES), 1);
    }

    #[test]
    fn a_row_becomes_one_copy_line() {
        let (kinds, names) = ints(3);
        let mut buf = b"1\n".to_vec();
        push_copy_line(&mut buf, &row(&[Some("7"), None, Some("-3")]), &kinds, &names).unwrap();
        assert_eq!(buf, b"1\n7\t\\N\t-3\n");
    }

    #[test]
    fn a_refused_value_leaves_the_chunk_as_it_was_and_names_its_column() {
        let (kinds, names) = ints(2);
        let mut buf = b"1\t2\n".to_vec();
        let reason = push_copy_line(&mut buf, &row(&[Some("7"), Some("x")]), &kinds, &names).unwrap_err();
        assert!(reason.starts_with("column \"c1\": "), "{reason}");
        assert_eq!(buf, b"1\t2\n");
    }

    #[test]
    fn small_rows_wait_for_a_full_chunk_and_the_rest_goes_at_the_end() {
        let (kinds, names) = ints(1);
        let mut c = Chunker::new(false);
        for _ in 0..100 {
            assert!(c.push(row(&[Some("42")]), &kinds, &names).is_none());
        }
        let (last, accepted) = c.finish();
        assert_eq!(accepted, 100);
        match last {
            Some(Chunk::Data { text, rows }) => {
                assert_eq!(text, b"42\n".repeat(100));
                assert!(rows.is_empty(), "rows are kept only to isolate them");
            }
            _ => panic!("expected the last chunk"),
        }
        assert!(Chunker::new(false).finish().0.is_none(), "no rows, no chunk");
    }

    #[test]
    fn a_chunk_is_sent_once_it_reaches_chunk_bytes() {
        let (kinds, names) = ints(1);
        let big = "9".repeat(CHUNK_BYTES / 2);
        let mut c = Chunker::new(false);
        assert!(c.push(row(&[Some(&big)]), &kinds, &names).is_none());
        match c.push(row(&[Some(&big)]), &kinds, &names) {
            Some(Chunk::Data { text, .. }) => assert_eq!(text.len(), 2 * (big.len() + 1)),
            _ => panic!("expected a full chunk"),
        }
        assert!(c.push(row(&[Some("1")]), &kinds, &names).is_none());
        let (last, accepted) = c.finish();
        assert_eq!(accepted, 3);
        assert!(matches!(last, Some(Chunk::Data { text, .. }) if text == b"1\n"));
    }

    #[test]
    fn a_refused_row_is_a_discard_with_its_source_bytes_and_is_not_counted() {
        let (kinds, names) = ints(2);
        let mut c = Chunker::new(true);
        assert!(c.push(row(&[Some("1"), Some("2")]), &kinds, &names).is_none());
        let bad = row(&[Some("3"), Some("four")]);
        match c.push(bad.clone(), &kinds, &names) {
            Some(Chunk::Discard(d)) => {
                assert_eq!(d.raw, rowcodec::encode(&bad));
                assert!(d.reason.starts_with("column \"c1\": "), "{}", d.reason);
            }
            _ => panic!("expected a discard"),
        }
        let (last, accepted) = c.finish();
        assert_eq!(accepted, 1);
        assert!(matches!(last, Some(Chunk::Data { text, rows }) if text == b"1\t2\n" && rows.len() == 1));
    }

    #[test]
    fn kept_source_bytes_count_toward_the_chunk_size() {
        let (kinds, names) = ints(1);
        let third = "5".repeat(CHUNK_BYTES / 3);
        // without the kept bytes two such rows stay under a chunk; with them they fill it
        let mut streaming = Chunker::new(false);
        let mut isolating = Chunker::new(true);
        for c in [&mut streaming, &mut isolating] {
            assert!(c.push(row(&[Some(&third)]), &kinds, &names).is_none());
        }
        assert!(streaming.push(row(&[Some(&third)]), &kinds, &names).is_none());
        match isolating.push(row(&[Some(&third)]), &kinds, &names) {
            Some(Chunk::Data { rows, .. }) => assert_eq!(rows.len(), 2),
            _ => panic!("expected a full chunk"),
        }
        assert!(isolating.finish().0.is_none());
    }

    #[test]
    fn the_kept_rows_cut_a_chunk_back_into_its_lines() {
        let (kinds, names) = ints(2);
        let mut c = Chunker::new(true);
        for r in [row(&[Some("1"), None]), row(&[Some("22"), Some("3")]), row(&[None, None])] {
            assert!(c.push(r, &kinds, &names).is_none());
        }
        let Some(Chunk::Data { text, rows }) = c.finish().0 else { panic!("expected the last chunk") };
        let lines: Vec<&[u8]> = row_lines(&text, &rows).collect();
        assert_eq!(lines, [&b"1\t\\N\n"[..], &b"22\t3\n"[..], &b"\\N\t\\N\n"[..]]);
        assert_eq!(rows[1].raw, row(&[Some("22"), Some("3")]));
    }
}
