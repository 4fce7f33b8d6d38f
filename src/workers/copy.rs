//! Copies one MySQL table into its PostgreSQL table through PostgreSQL's own COPY machinery
//! (`BeginCopyFrom` with a data-source callback), fed by a pure-Rust thread that streams the
//! rows from MySQL (unbuffered), converts each value with `core::value`, and sends COPY text
//! in chunks over a bounded channel. Memory stays bounded by the channel (`copy_max_memory`),
//! whatever the table size. Rows with a value PostgreSQL cannot store are not sent; they are returned with their
//! exact bytes and the reason, for `discarded_rows`.

use crate::core::copytext;
use crate::core::error::{CoreError, CoreResult};
use crate::core::mysql_source;
use crate::core::rowcodec;
use crate::core::types::{MappedType, MySqlColumn};
use crate::core::value;
use crate::error::{ChameleonError, Result};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::time::Duration;

const CHUNK_BYTES: usize = 256 * 1024;

/// A row the copy could not store.
pub struct CopyDiscard {
    pub raw: Vec<u8>,
    pub reason: String,
}

enum Chunk {
    Data(Vec<u8>),
    Discard(CopyDiscard),
}

struct Feed {
    rx: Receiver<Chunk>,
    buf: Vec<u8>,
    at: usize,
    discards: Vec<CopyDiscard>,
    interrupted: bool,
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
            match feed.rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Chunk::Data(d)) => {
                    feed.buf = d;
                    feed.at = 0;
                    if crate::workers::txn::shutdown_requested() {
                        feed.interrupted = true;
                        return 0;
                    }
                }
                Ok(Chunk::Discard(d)) => feed.discards.push(d),
                Err(RecvTimeoutError::Timeout) => {
                    if crate::workers::txn::shutdown_requested() {
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

pub struct CopyOutcome {
    pub rows: u64,
    pub discards: Vec<CopyDiscard>,
    pub conn: mysql::Conn,
}

/// Streams `schema.table` from `conn` (which holds the consistent snapshot) into the
/// PostgreSQL relation `relid`. Runs in the caller's transaction.
pub fn copy_table(
    conn: mysql::Conn,
    mysql_schema: &str,
    mysql_table: &str,
    columns: &[MySqlColumn],
    mapped: &[MappedType],
    relid: pg_sys::Oid,
    max_memory: usize,
) -> Result<CopyOutcome> {
    // chunks in the channel, plus the one being filled and the one COPY is reading
    let (tx, rx) = bounded::<Chunk>((max_memory / CHUNK_BYTES).saturating_sub(2).max(1));
    let schema = mysql_schema.to_string();
    let table = mysql_table.to_string();
    let cols = columns.to_vec();
    let kinds: Vec<_> = mapped.iter().map(|m| m.kind.clone()).collect();
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let producer = std::thread::spawn(move || -> (mysql::Conn, CoreResult<u64>) {
        let mut conn = conn;
        let mut buf = Vec::with_capacity(CHUNK_BYTES + 4096);
        let mut sent = 0u64;
        let res = mysql_source::stream_rows(&mut conn, &schema, &table, &cols, |raw| {
            let mut converted: Vec<Option<String>> = Vec::with_capacity(raw.len());
            for (i, v) in raw.iter().enumerate() {
                match v {
                    None => converted.push(None),
                    Some(bytes) => match value::from_text(&kinds[i], bytes) {
                        Ok(s) => converted.push(Some(s)),
                        Err(reason) => {
                            let d = CopyDiscard { raw: rowcodec::encode(&raw), reason: format!("column \"{}\": {reason}", names[i]) };
                            return tx
                                .send(Chunk::Discard(d))
                                .map_err(|_| CoreError::SourceQuery("copy receiver went away".into()));
                        }
                    },
                }
            }
            copytext::push_row(&mut buf, &converted);
            sent += 1;
            if buf.len() >= CHUNK_BYTES {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_BYTES + 4096));
                tx.send(Chunk::Data(full)).map_err(|_| CoreError::SourceQuery("copy receiver went away".into()))?;
            }
            Ok(())
        });
        let res = res.and_then(|_| {
            if !buf.is_empty() {
                tx.send(Chunk::Data(buf)).map_err(|_| CoreError::SourceQuery("copy receiver went away".into()))?;
            }
            Ok(sent)
        });
        (conn, res)
    });

    FEED.with(|f| *f.borrow_mut() = Some(Feed { rx, buf: Vec::new(), at: 0, discards: Vec::new(), interrupted: false }));
    let copied = crate::workers::txn::catch_pg(|| {
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
    });
    let feed = FEED.with(|f| f.borrow_mut().take());
    // Dropping the receiver unblocks the producer if COPY stopped early.
    let (discards, interrupted) = match feed {
        Some(f) => {
            let mut d = f.discards;
            // discards sent after the last data chunk
            while let Ok(c) = f.rx.try_recv() {
                if let Chunk::Discard(x) = c {
                    d.push(x)
                }
            }
            (d, f.interrupted)
        }
        None => (Vec::new(), false),
    };
    let (conn, produced) = producer
        .join()
        .map_err(|_| ChameleonError::State(format!("the copy thread of {mysql_schema}.{mysql_table} panicked")))?;
    let copied = copied?;
    if interrupted {
        return Err(ChameleonError::State(format!("copy of {mysql_schema}.{mysql_table} interrupted by shutdown")));
    }
    let produced = produced.map_err(|e| ChameleonError::from(e).context(format!("copy of {mysql_schema}.{mysql_table}")))?;
    if produced != copied {
        return Err(ChameleonError::State(format!(
            "copy of {mysql_schema}.{mysql_table}: {produced} rows read from MySQL but {copied} stored"
        )));
    }
    Ok(CopyOutcome { rows: copied, discards, conn })
}
