//! Copies one MySQL table into its PostgreSQL table through PostgreSQL's own COPY machinery
//! (`BeginCopyFrom` with a data-source callback), fed by a pure-Rust thread that streams the
//! rows from MySQL (unbuffered), converts each value with `core::value`, and sends COPY text
//! in chunks over a bounded channel. Memory stays bounded by the channel (`copy_max_memory`),
//! whatever the table size.
//!
//! Two modes. `Stream` is the fast path: one COPY for the whole table. If PostgreSQL refuses
//! a row there (a data error), the caller copies the table again, on the same snapshot, in
//! `Isolate` mode: each chunk is one COPY in a subtransaction and, when a chunk fails, its
//! rows are copied one at a time so that only the rows PostgreSQL refuses are left out. Rows
//! the converter or PostgreSQL refuse are returned with their exact source bytes and the
//! reason, for `discarded_rows`; the copy goes on.

use crate::core::copytext;
use crate::core::error::{CoreError, CoreResult};
use crate::core::mysql_source;
use crate::core::rowcodec;
use crate::core::types::{MappedType, MySqlColumn};
use crate::core::value;
use crate::error::{ChameleonError, Result};
use crate::workers::txn::{catch_pg, in_subtransaction, shutdown_requested};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::time::Duration;

const CHUNK_BYTES: usize = 256 * 1024;

/// The longest COPY line PostgreSQL accepts (its buffers stop at 1 GB); a longer row is refused
/// by the converter instead of failing the COPY.
const MAX_ROW_BYTES: usize = (1 << 30) - 64 * 1024;

/// How the rows reach the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One COPY for the whole table: the fast path.
    Stream,
    /// One COPY per chunk in a subtransaction, and row by row in a chunk PostgreSQL refuses.
    Isolate,
}

/// A row the copy could not store.
pub struct CopyDiscard {
    pub raw: Vec<u8>,
    pub reason: String,
}

/// A row kept with its chunk in `Isolate` mode: where its COPY line ends, and its source bytes.
struct KeptRow {
    end: usize,
    raw: Vec<Option<Vec<u8>>>,
}

enum Chunk {
    Data { text: Vec<u8>, rows: Vec<KeptRow> },
    Discard(CopyDiscard),
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
}

thread_local! {
    static FEED: RefCell<Option<Feed>> = const { RefCell::new(None) };
}

/// COPY's data source: hands PostgreSQL up to `maxread` bytes; 0 means end of data.
#[pg_guard]
unsafe extern "C-unwind" fn copy_source(outbuf: *mut std::ffi::c_void, _minread: i32, maxread: i32) -> i32 {
    FEED.with(|f| {
        let mut guard = f.borrow_mut();
        let Some(feed) = guard.as_mut() else { return 0 };
        while feed.at >= feed.buf.len() {
            let Some(rx) = &feed.rx else { return 0 };
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Chunk::Data { text, .. }) => {
                    feed.buf = text;
                    feed.at = 0;
                    if shutdown_requested() {
                        feed.interrupted = true;
                        return 0;
                    }
                }
                Ok(Chunk::Discard(d)) => feed.discards.push(d),
                Err(RecvTimeoutError::Timeout) => {
                    if shutdown_requested() {
                        feed.interrupted = true;
                        return 0;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return 0,
            }
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

/// Whether PostgreSQL refused the data itself (a value, a row), as opposed to failing for a
/// reason that would refuse every row (disk, locks, memory): data exceptions, integrity
/// violations, program limits.
pub fn refused_data(e: &ChameleonError) -> bool {
    let sqlstate = e.sqlstate();
    e.kind() == crate::error::Kind::Postgres
        && (sqlstate.starts_with("22") || sqlstate.starts_with("23") || sqlstate.starts_with("54"))
}

fn take_feed() -> Option<Feed> {
    FEED.with(|f| f.borrow_mut().take())
}

fn copy_buffer(relid: pg_sys::Oid, text: Vec<u8>) -> (Result<u64>, Vec<u8>) {
    FEED.with(|f| *f.borrow_mut() = Some(Feed::buffer(text)));
    let result = in_subtransaction(|| run_copy(relid));
    (result, take_feed().map(|f| f.buf).unwrap_or_default())
}

/// `Isolate` mode for one chunk: one COPY; if PostgreSQL refuses it, one COPY per row, and the
/// rows it refuses are discarded with its reason.
fn copy_chunk(relid: pg_sys::Oid, text: Vec<u8>, rows: Vec<KeptRow>, discards: &mut Vec<CopyDiscard>) -> Result<u64> {
    let (result, text) = copy_buffer(relid, text);
    match result {
        Ok(n) => return Ok(n),
        Err(e) if refused_data(&e) => {}
        Err(e) => return Err(e),
    }
    let mut stored = 0;
    let mut start = 0;
    for row in rows {
        let (result, _) = copy_buffer(relid, text[start..row.end].to_vec());
        start = row.end;
        match result {
            Ok(n) => stored += n,
            Err(e) if refused_data(&e) => {
                let reason = match e.kind() {
                    crate::error::Kind::Postgres => {
                        format!("PostgreSQL refused the row: {e} (SQLSTATE {})", e.sqlstate())
                    }
                    _ => e.to_string(),
                };
                discards.push(CopyDiscard { raw: rowcodec::encode(&row.raw), reason });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(stored)
}

pub struct CopyOutcome {
    pub rows: u64,
    pub discards: Vec<CopyDiscard>,
}

fn gone() -> CoreError {
    CoreError::source_query("copy receiver went away".into())
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
    let mut source = conn.take().ok_or_else(|| ChameleonError::state("the copy connection was lost".into()))?;
    // chunks in the channel, plus the one being filled and the one COPY is reading
    let (tx, rx) = bounded::<Chunk>((max_memory / CHUNK_BYTES).saturating_sub(2).max(1));
    let schema = mysql_schema.to_string();
    let table = mysql_table.to_string();
    let cols = columns.to_vec();
    let kinds: Vec<_> = mapped.iter().map(|m| m.kind.clone()).collect();
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let keep = mode == Mode::Isolate;
    let filter = filter.map(str::to_string);
    let producer =
        crate::workers::txn::spawn_without_signals("copy-reader", move || -> (mysql::Conn, CoreResult<u64>) {
            let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
            let mut rows: Vec<KeptRow> = Vec::new();
            let mut kept_bytes = 0usize;
            let mut sent = 0u64;
            let res = mysql_source::stream_rows(&mut source, &schema, &table, &cols, filter.as_deref(), |raw| {
                // the row's COPY line goes straight into the chunk; a refused row is cut off again
                let before = buf.len();
                let mut refused = None;
                for (i, v) in raw.iter().enumerate() {
                    if i > 0 {
                        buf.push(b'\t');
                    }
                    let Some(bytes) = v else {
                        buf.extend_from_slice(b"\\N");
                        continue;
                    };
                    let done = match value::push_copy_text(&kinds[i], bytes, &mut buf) {
                        Ok(true) => Ok(()),
                        Ok(false) => {
                            value::from_text(&kinds[i], bytes).map(|s| copytext::push_field(&mut buf, s.as_deref()))
                        }
                        Err(reason) => Err(reason),
                    };
                    if let Err(reason) = done {
                        refused = Some(format!("column \"{}\": {reason}", names[i]));
                        break;
                    }
                }
                if refused.is_none() {
                    buf.push(b'\n');
                    if buf.len() - before > MAX_ROW_BYTES {
                        refused = Some(format!(
                            "the row is {} bytes in COPY form, over PostgreSQL's 1 GB limit for one row",
                            buf.len() - before
                        ));
                    }
                }
                if let Some(reason) = refused {
                    buf.truncate(before);
                    let d = CopyDiscard { raw: rowcodec::encode(&raw), reason };
                    return tx.send(Chunk::Discard(d)).map_err(|_| gone());
                }
                sent += 1;
                if keep {
                    kept_bytes += raw.iter().map(|v| v.as_ref().map_or(0, |b| b.len())).sum::<usize>();
                    rows.push(KeptRow { end: buf.len(), raw });
                }
                if buf.len() + kept_bytes >= CHUNK_BYTES {
                    let text = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES + 4096));
                    kept_bytes = 0;
                    tx.send(Chunk::Data { text, rows: std::mem::take(&mut rows) }).map_err(|_| gone())?;
                }
                Ok(())
            });
            let res = res.and_then(|_| {
                if !buf.is_empty() {
                    tx.send(Chunk::Data { text: buf, rows }).map_err(|_| gone())?;
                }
                Ok(sent)
            });
            (source, res)
        });

    // rows stored, rows set aside (by the converter or by PostgreSQL), how many of those
    // PostgreSQL refused, and whether a shutdown cut the copy short
    let (copied, discards, refused_by_postgres, interrupted) = match mode {
        Mode::Stream => {
            FEED.with(|f| *f.borrow_mut() = Some(Feed::channel(rx)));
            let copied = catch_pg(|| run_copy(relid));
            // Dropping the receiver unblocks the producer if COPY stopped early.
            match take_feed() {
                Some(f) => {
                    let mut d = f.discards;
                    // discards sent after the last data chunk
                    if let Some(rx) = f.rx {
                        while let Ok(c) = rx.try_recv() {
                            if let Chunk::Discard(x) = c {
                                d.push(x)
                            }
                        }
                    }
                    (copied, d, 0, f.interrupted)
                }
                None => (copied, Vec::new(), 0, false),
            }
        }
        Mode::Isolate => {
            let mut discards = Vec::new();
            let mut refused = 0u64;
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
                        let result = copy_chunk(relid, text, rows, &mut discards);
                        refused += (discards.len() - before) as u64;
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
            (copied, discards, refused, interrupted)
        }
    };
    // (a thread that could not start dropped its channel: the COPY saw no rows, and this fails)
    let (source, produced) = producer
        .map_err(|e| {
            ChameleonError::state(format!("cannot start the copy thread of {mysql_schema}.{mysql_table}: {e}"))
        })?
        .join()
        .map_err(|_| ChameleonError::state(format!("the copy thread of {mysql_schema}.{mysql_table} panicked")))?;
    *conn = Some(source);
    let copied = copied?;
    if interrupted {
        return Err(ChameleonError::state(format!("copy of {mysql_schema}.{mysql_table} interrupted by shutdown")));
    }
    let produced =
        produced.map_err(|e| ChameleonError::from(e).context(format!("copy of {mysql_schema}.{mysql_table}")))?;
    if produced != copied + refused_by_postgres {
        return Err(ChameleonError::state(format!(
            "copy of {mysql_schema}.{mysql_table}: {produced} rows read from MySQL but {copied} stored and {refused_by_postgres} refused"
        )));
    }
    Ok(CopyOutcome { rows: copied, discards })
}
