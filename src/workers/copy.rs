//! Copies one MySQL table into its PostgreSQL table through PostgreSQL's own COPY machinery
//! (`BeginCopyFrom` with a data-source callback), fed by a pure-Rust thread that streams the
//! rows from MySQL (unbuffered), converts each value with `core::value`, and sends COPY text
//! in chunks over a bounded channel (`copy_producer`). Memory stays bounded by the channel
//! (`copy_max_memory`), whatever the table size.
//!
//! `copy_table` runs the stages in turn: the request (what to copy), the producer thread, the
//! PostgreSQL side in the chosen mode, then the accounting of every row the producer sent.
//!
//! Two modes. `Stream` is the fast path: one COPY for the whole table. If PostgreSQL refuses
//! a row there (a data error), the caller copies the table again, on the same snapshot, in
//! `Isolate` mode: each chunk is one COPY in a subtransaction and, when a chunk fails, its
//! rows are copied one at a time so that only the rows PostgreSQL refuses are left out. Rows
//! the converter or PostgreSQL refuse are returned with their exact source bytes and the
//! reason, for `discarded_rows`; the copy goes on.

use crate::core::error::CoreResult;
use crate::core::rowcodec;
use crate::core::types::{MappedType, MySqlColumn};
use crate::error::{ChameleonError, Kind, Result};
use crate::workers::copy_producer::{chunk_channel, row_lines, Chunk, CopyRequest, KeptRow, Producer};
use crate::workers::txn::{catch_pg, in_subtransaction, shutdown_requested};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::time::Duration;

pub use crate::workers::copy_producer::CopyDiscard;

/// How the rows reach the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One COPY for the whole table: the fast path.
    Stream,
    /// One COPY per chunk in a subtransaction, and row by row in a chunk PostgreSQL refuses.
    Isolate,
}

/// What one copy stored: the rows, and the rows it set aside.
pub struct CopyOutcome {
    pub rows: u64,
    pub discards: Vec<CopyDiscard>,
}

/// Streams `schema.table` from the connection in `conn` (which holds the consistent snapshot)
/// into the PostgreSQL relation `relid`. Runs in the caller's transaction. The connection is
/// put back in `conn` whenever it survives, also when the copy fails, so that the caller can
/// copy again on the same snapshot.
#[allow(clippy::too_many_arguments)]
pub fn copy_table(
    conn: &mut Option<mysql::Conn>,
    mysql_schema: &str,
    mysql_table: &str,
    columns: &[MySqlColumn],
    mapped: &[MappedType],
    relid: pg_sys::Oid,
    filter: Option<&str>,
    max_memory: usize,
    mode: Mode,
) -> Result<CopyOutcome> {
    let what = format!("{mysql_schema}.{mysql_table}");
    let request = CopyRequest::take(conn, mysql_schema, mysql_table, columns, mapped, filter, mode == Mode::Isolate)?;
    let (tx, rx) = chunk_channel(max_memory);
    let producer = Producer::start(request, tx);
    let consumed = match mode {
        Mode::Stream => copy_stream(relid, rx),
        Mode::Isolate => copy_isolating(relid, rx),
    };
    if consumed.interrupted {
        // not joined: the thread would read the rest of the table from MySQL before it could
        // end (dropping a result set drains it); the worker is ending, and its exit closes
        // the connection, which stops the query on the server
        producer.abandon();
        return Err(ChameleonError::state(format!("copy of {what} interrupted by shutdown")));
    }
    let (source, produced) = producer.finish(&what)?;
    *conn = Some(source);
    consumed.outcome(produced, &what)
}

/// What the PostgreSQL side made of the producer's chunks.
struct Consumed {
    /// Rows stored, or the error that stopped the copy.
    copied: Result<u64>,
    /// Rows set aside, by the converter or by PostgreSQL.
    discards: Vec<CopyDiscard>,
    /// How many of the discards PostgreSQL refused.
    refused_by_postgres: u64,
    /// Whether a shutdown cut the copy short.
    interrupted: bool,
}

impl Consumed {
    /// The copy's outcome once the producer has ended: the COPY's error first, then a shutdown,
    /// then the producer's error; and every row the producer sent must be stored or refused.
    fn outcome(self, produced: CoreResult<u64>, what: &str) -> Result<CopyOutcome> {
        let copied = self.copied?;
        if self.interrupted {
            return Err(ChameleonError::state(format!("copy of {what} interrupted by shutdown")));
        }
        let produced = produced.map_err(|e| ChameleonError::from(e).context(format!("copy of {what}")))?;
        let refused = self.refused_by_postgres;
        if produced != copied + refused {
            return Err(ChameleonError::state(format!(
                "copy of {what}: {produced} rows read from MySQL but {copied} stored and {refused} refused"
            )));
        }
        Ok(CopyOutcome { rows: copied, discards: self.discards })
    }
}

/// `Stream` mode: one COPY for the whole table, reading the channel as it goes. An error
/// PostgreSQL raises is returned, not handled: the caller's transaction must abort.
fn copy_stream(relid: pg_sys::Oid, rx: Receiver<Chunk>) -> Consumed {
    FEED.with(|f| *f.borrow_mut() = Some(Feed::channel(rx)));
    let copied = catch_pg(|| run_copy(relid));
    // Dropping the receiver (with the feed) unblocks the producer if COPY stopped early.
    let (discards, interrupted) = match take_feed() {
        Some(f) => {
            let interrupted = f.interrupted;
            (f.into_discards(), interrupted)
        }
        None => (Vec::new(), false),
    };
    Consumed { copied, discards, refused_by_postgres: 0, interrupted }
}

/// `Isolate` mode: each chunk from the channel is copied on its own (`copy_chunk_isolating`),
/// until the producer ends, a chunk fails for a reason other than its data, or a shutdown.
fn copy_isolating(relid: pg_sys::Oid, rx: Receiver<Chunk>) -> Consumed {
    let mut discards = Vec::new();
    let mut refused_by_postgres = 0u64;
    let mut interrupted = false;
    let mut copied = Ok(0u64);
    loop {
        if shutdown_requested() {
            interrupted = true;
            break;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Chunk::Data { text, rows }) => {
                let before = discards.len();
                let result = copy_chunk_isolating(relid, text, &rows, &mut discards);
                refused_by_postgres += (discards.len() - before) as u64;
                match result {
                    Ok(n) => copied = copied.map(|c| c + n),
                    Err(e) => {
                        copied = Err(e);
                        break;
                    }
                }
            }
            Ok(Chunk::Discard(d)) => discards.push(d),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    drop(rx);
    Consumed { copied, discards, refused_by_postgres, interrupted }
}

/// One chunk in `Isolate` mode: one COPY in a subtransaction; if PostgreSQL refuses its data,
/// the chunk's rows one at a time (`copy_rows_one_by_one`). Returns the rows stored.
fn copy_chunk_isolating(
    relid: pg_sys::Oid,
    text: Vec<u8>,
    rows: &[KeptRow],
    discards: &mut Vec<CopyDiscard>,
) -> Result<u64> {
    let (result, text) = copy_buffer(relid, text);
    match result {
        Ok(n) => Ok(n),
        Err(e) if refused_data(&e) => copy_rows_one_by_one(relid, &text, rows, discards),
        Err(e) => Err(e),
    }
}

/// Each row of a chunk PostgreSQL refused, in its own COPY and subtransaction: the rows it
/// refuses are set aside with its reason and their source bytes. Returns the rows stored.
fn copy_rows_one_by_one(
    relid: pg_sys::Oid,
    text: &[u8],
    rows: &[KeptRow],
    discards: &mut Vec<CopyDiscard>,
) -> Result<u64> {
    let mut stored = 0;
    for (row, line) in rows.iter().zip(row_lines(text, rows)) {
        let (result, _) = copy_buffer(relid, line.to_vec());
        match result {
            Ok(n) => stored += n,
            Err(e) if refused_data(&e) => {
                discards.push(CopyDiscard { raw: rowcodec::encode(&row.raw), reason: refusal_reason(&e) })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(stored)
}

/// The reason recorded for a row PostgreSQL refused.
fn refusal_reason(e: &ChameleonError) -> String {
    match e.kind() {
        Kind::Postgres => format!("PostgreSQL refused the row: {e} (SQLSTATE {})", e.sqlstate()),
        _ => e.to_string(),
    }
}

/// Whether PostgreSQL refused the data itself (a value, a row), as opposed to failing for a
/// reason that would refuse every row (disk, locks, memory): data exceptions, integrity
/// violations, program limits.
pub fn refused_data(e: &ChameleonError) -> bool {
    let sqlstate = e.sqlstate();
    e.kind() == Kind::Postgres
        && (sqlstate.starts_with("22") || sqlstate.starts_with("23") || sqlstate.starts_with("54"))
}

/// What COPY's data source reads: a channel (streaming), or one buffer (a chunk, a row).
struct Feed {
    rx: Option<Receiver<Chunk>>,
    buf: Vec<u8>,
    at: usize,
    discards: Vec<CopyDiscard>,
    interrupted: bool,
}

impl Feed {
    fn buffer(buf: Vec<u8>) -> Feed {
        Feed { rx: None, buf, at: 0, discards: Vec::new(), interrupted: false }
    }

    fn channel(rx: Receiver<Chunk>) -> Feed {
        Feed { rx: Some(rx), ..Feed::buffer(Vec::new()) }
    }

    /// Makes sure unread bytes are in `buf`, taking the next chunk from the channel (and
    /// keeping the discards that arrive meanwhile). False at the end of the data, or when a
    /// shutdown interrupts the copy.
    fn fill(&mut self) -> bool {
        while self.at >= self.buf.len() {
            let Some(rx) = &self.rx else { return false };
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Chunk::Data { text, .. }) => {
                    self.buf = text;
                    self.at = 0;
                    if shutdown_requested() {
                        self.interrupted = true;
                        return false;
                    }
                }
                Ok(Chunk::Discard(d)) => self.discards.push(d),
                Err(RecvTimeoutError::Timeout) => {
                    if shutdown_requested() {
                        self.interrupted = true;
                        return false;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
        true
    }

    /// The discards received, with those still in the channel (sent after the last data
    /// chunk COPY read); the channel is closed.
    fn into_discards(self) -> Vec<CopyDiscard> {
        let mut discards = self.discards;
        if let Some(rx) = self.rx {
            while let Ok(c) = rx.try_recv() {
                if let Chunk::Discard(d) = c {
                    discards.push(d)
                }
            }
        }
        discards
    }
}

thread_local! {
    static FEED: RefCell<Option<Feed>> = const { RefCell::new(None) };
}

fn take_feed() -> Option<Feed> {
    FEED.with(|f| f.borrow_mut().take())
}

/// COPY's data source: hands PostgreSQL up to `maxread` bytes of FEED; 0 means end of data.
#[pg_guard]
unsafe extern "C-unwind" fn copy_source(outbuf: *mut std::ffi::c_void, _minread: i32, maxread: i32) -> i32 {
    FEED.with(|f| {
        let mut guard = f.borrow_mut();
        let Some(feed) = guard.as_mut() else { return 0 };
        if !feed.fill() {
            return 0;
        }
        let n = (feed.buf.len() - feed.at).min(maxread.max(0) as usize);
        unsafe { std::ptr::copy_nonoverlapping(feed.buf.as_ptr().add(feed.at), outbuf as *mut u8, n) };
        feed.at += n;
        n as i32
    })
}

/// One COPY into `relid` from whatever FEED holds; returns the rows stored.
fn run_copy(relid: pg_sys::Oid) -> Result<u64> {
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
        // CopyFrom initialises its result relation from the range table, as DoCopy sets it up
        pg_sys::addRangeTableEntryForRelation(
            pstate,
            rel,
            pg_sys::RowExclusiveLock as i32,
            std::ptr::null_mut(),
            false,
            false,
        );
        let encoding = pg_sys::makeDefElem(
            c"encoding".as_ptr() as *mut _,
            pg_sys::makeString(c"UTF8".as_ptr() as *mut _) as *mut pg_sys::Node,
            -1,
        );
        let options = pg_sys::lappend(std::ptr::null_mut(), encoding as *mut std::ffi::c_void);
        let cstate = pg_sys::BeginCopyFrom(
            pstate,
            rel,
            std::ptr::null_mut(),
            std::ptr::null(),
            false,
            Some(copy_source),
            std::ptr::null_mut(),
            options,
        );
        let n = pg_sys::CopyFrom(cstate);
        pg_sys::EndCopyFrom(cstate);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
        Ok(n)
    }
}

/// One COPY of `text` in a subtransaction (a chunk, a row); gives the text back for the
/// row-by-row retry.
fn copy_buffer(relid: pg_sys::Oid, text: Vec<u8>) -> (Result<u64>, Vec<u8>) {
    FEED.with(|f| *f.borrow_mut() = Some(Feed::buffer(text)));
    let result = in_subtransaction(|| run_copy(relid));
    (result, take_feed().map(|f| f.buf).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::CoreError;

    fn consumed(copied: Result<u64>, refused_by_postgres: u64, interrupted: bool) -> Consumed {
        let discards = (0..refused_by_postgres).map(|_| CopyDiscard { raw: vec![1], reason: "r".into() }).collect();
        Consumed { copied, discards, refused_by_postgres, interrupted }
    }

    fn error(r: Result<CopyOutcome>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    fn pg_error(sqlstate: &str) -> ChameleonError {
        use pgrx::PgSqlErrorCode::*;
        let code = match sqlstate {
            "22P02" => ERRCODE_INVALID_TEXT_REPRESENTATION,
            "22001" => ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
            "23505" => ERRCODE_UNIQUE_VIOLATION,
            "23502" => ERRCODE_NOT_NULL_VIOLATION,
            "54000" => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "53100" => ERRCODE_DISK_FULL,
            "40P01" => ERRCODE_T_R_DEADLOCK_DETECTED,
            other => panic!("no test code for {other}"),
        };
        ChameleonError::postgres(code, "bad".into())
    }

    #[test]
    fn every_row_sent_is_stored_or_refused() {
        let outcome = consumed(Ok(5), 2, false).outcome(Ok(7), "s.t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((outcome.rows, outcome.discards.len()), (5, 2));
        let lost = error(consumed(Ok(5), 1, false).outcome(Ok(7), "s.t"));
        assert!(lost.contains("copy of s.t: 7 rows read from MySQL but 5 stored and 1 refused"), "{lost}");
    }

    #[test]
    fn the_copy_error_comes_first_then_a_shutdown_then_the_producer_error() {
        let gone = || Err(CoreError::source_query("copy receiver went away".into()));
        let copy = error(consumed(Err(pg_error("22P02")), 0, true).outcome(gone(), "s.t"));
        assert!(copy.contains("bad"), "{copy}");
        let stop = error(consumed(Ok(0), 0, true).outcome(gone(), "s.t"));
        assert!(stop.contains("copy of s.t interrupted by shutdown"), "{stop}");
        let read = error(consumed(Ok(0), 0, false).outcome(gone(), "s.t"));
        assert!(read.contains("copy of s.t") && read.contains("copy receiver went away"), "{read}");
    }

    #[test]
    fn only_data_errors_isolate_rows() {
        for sqlstate in ["22P02", "23505", "54000"] {
            assert!(refused_data(&pg_error(sqlstate)), "{sqlstate}");
        }
        for e in [pg_error("53100"), pg_error("40P01"), ChameleonError::state("x".into())] {
            assert!(!refused_data(&e), "{e}");
        }
        assert_eq!(refusal_reason(&pg_error("22P02")), "PostgreSQL refused the row: bad (SQLSTATE 22P02)");
    }
}
