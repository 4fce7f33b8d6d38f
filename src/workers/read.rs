//! The read worker of a source (started by `start_replica`, restarted by the launcher): its
//! reader thread follows the binlog (`core::reader`), its main thread — the only one that
//! touches PostgreSQL — stores whole source transactions as batches with the read position
//! (`batch_writer`); a transaction larger than `batch_max_memory` arrives in pieces, stored
//! as they come into one open batch that its commit closes. Memory stays bounded: by the piece
//! size in the reader and here, and by a byte budget of twice that in the channel. It never
//! replays: the replay worker does, so a replay blocked on a lock shows as replay lag, not read
//! lag (docs/internals.md, contract 4). The backlog between them is bounded by
//! `max_backlog_events`: past it, reading pauses until replay catches up. A prepared XA
//! transaction is stored at its prepare and kept from replay until its XA COMMIT, which makes
//! it visible at that place of the stream (`batch_writer::store_xa`).
//!
//! Reconnects with backoff after transient source errors, always from the last committed
//! position. Stops on SIGTERM (`stop_replica`), when the source is put in `error` (by the
//! replay worker), or on a fatal error, which puts the source in `error` with the message.

use crate::catalog::{self, TableRow};
use crate::core::budget::ByteBudget;
use crate::core::change::{Op, ReaderMessage};
use crate::core::endpoint::Endpoint;
use crate::core::gtid::GtidState;
use crate::core::options::SourceOptions;
use crate::core::reader::{self, ReaderConfig, ReaderTable};
use crate::core::state::{SourceStatus, TableState};
use crate::core::types::ValueKind;
use crate::core::xa::XaPhase;
use crate::error::{ChameleonError, Result};
use crate::workers::batch_writer::{self, OpenBatch, PendingBatch};
use crate::workers::txn::{backend_sleep, in_transaction};
use crossbeam_channel::{bounded, RecvTimeoutError, TryRecvError};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHANNEL_TRANSACTIONS: usize = 1024;

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_read_main(arg: pg_sys::Datum) {
    let source_id = super::worker_prologue(arg);
    if let Err(e) = run(source_id) {
        super::stop_source_on_error(source_id, super::WorkerRole::Read, &e.to_string());
    }
}

fn sigterm() -> bool {
    crate::workers::txn::shutdown_requested()
}

fn reader_tables(tables: &[TableRow], options: &SourceOptions) -> HashMap<(String, String), ReaderTable> {
    tables
        .iter()
        // tables being copied again (sync_tables) too: their changes are stored from before
        // their new consistent point, and applied once the copy is done
        .filter(|t| t.enabled && t.state.is_followed())
        .map(|t| {
            (
                (t.mysql_schema.clone(), t.mysql_table.clone()),
                ReaderTable {
                    id: t.id,
                    kinds: t.mapped.iter().map(|m| m.kind.clone()).collect(),
                    names: t.columns.iter().map(|c| c.name.clone()).collect(),
                    // a table without a key keeps its whole before image (full-row match)
                    key: t.identity_indexes(),
                    skip: [Op::Insert, Op::Update, Op::Delete]
                        .into_iter()
                        .filter(|op| options.skip_events.skips(*op, &t.mysql_schema, &t.mysql_table))
                        .collect(),
                    point: t.point.clone(),
                    awaiting_copy: TableState::AWAITING_COPY.contains(&t.state),
                },
            )
        })
        .collect()
}

fn run(source_id: i32) -> Result<()> {
    let source = in_transaction(|| {
        // waits for the transaction that started this worker to commit (start_replica locks
        // the source row and may have just moved the start position)
        catalog::lock_source(source_id)?;
        let s = catalog::source_by_id(source_id)?;
        catalog::set_tables_replicating(source_id)?;
        Ok(s)
    })?;
    super::set_application_name(&format!("pg_chameleon_rs read {}", source.name));
    let options = source.options()?;
    let mut backoff = Duration::from_secs(1);

    let mapped_schemas: Vec<String> = source.mappings()?.0.keys().cloned().collect();
    loop {
        // A stored DDL statement not yet replayed: the catalogue does not have the tables as
        // the reader must decode them from the stored position on. Wait for replay.
        if !wait_for_ddl_replay(source_id)? {
            return Ok(());
        }
        let (now, tables) =
            in_transaction(|| Ok((catalog::source_by_id(source_id)?, catalog::tables_for_source(source_id)?)))?;
        let gtid = now.gtid.as_deref().and_then(|g| GtidState::parse(g).ok());
        if now.position.is_none() && gtid.is_none() {
            return Err(ChameleonError::state(format!("source \"{}\" has no binlog position", source.name))
                .with_hint("run init_replica first"));
        }
        // pieces of a transaction whose commit an earlier reader did not store: the reader
        // starts before that transaction and reads it again whole
        let (batches, events) = in_transaction(|| catalog::discard_open_batches(source_id))?;
        if batches > 0 {
            log!(
                "pg_chameleon_rs: source \"{}\": removed {events} row events of a source transaction stored in part; \
                 it is read again from the stored position",
                source.name
            );
        }
        let cfg_tables = reader_tables(&tables, &options);
        let following = signature(&cfg_tables);
        let budget = Arc::new(ByteBudget::new(2 * options.batch_max_bytes()));
        let cfg = ReaderConfig {
            // resolved at each (re)connection: a rotated password_file is read again
            endpoint: Endpoint::resolve(&source.url, &options)?,
            server_id: options.my_server_id,
            start: now.position.clone(),
            tables: cfg_tables,
            net_read_timeout: Duration::from_secs(options.net_read_timeout as u64),
            gtid,
            gtid_connect: options.gtid_enable,
            mapped_schemas: mapped_schemas.clone(),
            piece_bytes: options.batch_max_bytes(),
            budget: budget.clone(),
        };
        let (tx, rx) = bounded(CHANNEL_TRANSACTIONS);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_reader = stop.clone();
        let handle =
            crate::workers::txn::spawn_without_signals("binlog-reader", move || reader::run(cfg, tx, &stop_reader))
                .map_err(|e| ChameleonError::state(format!("cannot start the binlog reader thread: {e}")))?;

        in_transaction(|| catalog::set_reader_generation(source_id, now.table_generation))?;
        let outcome = follow(source_id, &options, &rx, &budget, now.table_generation, &following);
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        // The thread notices `stop` at its next event or heartbeat (one a second) and closes its
        // connection: wait that long, so that the next reader's binlog connection is not refused
        // for a server_id still connected. (It is not joined beyond that: a stuck socket must
        // not hold the worker.)
        let until = Instant::now() + Duration::from_millis(2500);
        while !handle.is_finished() && Instant::now() < until {
            backend_sleep(Duration::from_millis(20));
        }
        drop(handle);
        match outcome {
            Ok(FollowEnd::Stop) => return Ok(()),
            Ok(FollowEnd::Reload) => {
                log!("pg_chameleon_rs: source \"{}\": the replicated tables changed; the reader starts again from the stored position", source.name);
            }
            Ok(FollowEnd::Ddl) => {}
            Err(e) if e.is_transient() => {
                let msg = format!("source connection lost, reconnecting in {}s: {e}", backoff.as_secs());
                log!("pg_chameleon_rs: source \"{}\": {msg}", source.name);
                in_transaction(|| catalog::set_source_error(source_id, None, &msg))?;
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    if sigterm() {
                        return Ok(());
                    }
                    backend_sleep(Duration::from_millis(200));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One followed table as the reader decodes it: id, column names, how each column's values
/// are decoded, key columns, skipped operations, whether it is awaiting a copy (its table maps
/// are checked again once the copy is done).
type TableSignature = (i32, Vec<String>, Vec<ValueKind>, Vec<usize>, Vec<Op>, bool);

/// What the reader's table map is made of: when it changes, the reader starts again. The value
/// kinds are part of it: a table registered again with other column types under the same
/// names (`refresh_schema`, `sync_tables` of a table changed on the source) must be decoded
/// with its new types from then on.
fn signature(tables: &HashMap<(String, String), ReaderTable>) -> Vec<TableSignature> {
    let mut sig: Vec<_> = tables
        .values()
        .map(|t| (t.id, t.names.clone(), t.kinds.clone(), t.key.clone(), t.skip.clone(), t.awaiting_copy))
        .collect();
    sig.sort_by_key(|s| s.0);
    sig
}

/// Why `follow` returned without an error.
enum FollowEnd {
    /// SIGTERM, or the source was put in error.
    Stop,
    /// The replicated tables changed (`sync_tables`): start the reader again with them.
    Reload,
    /// A DDL statement was stored: start the reader again once it is replayed.
    Ddl,
}

/// Waits until replay has applied every stored DDL statement of the source; false when the
/// worker must stop meanwhile (SIGTERM, or the source put in error).
fn wait_for_ddl_replay(source_id: i32) -> Result<bool> {
    let mut checks = 0u32;
    loop {
        if sigterm() {
            return Ok(false);
        }
        let (pending, status) =
            in_transaction(|| Ok((catalog::ddl_pending(source_id)?, catalog::source_by_id(source_id)?.status)))?;
        if status == SourceStatus::Error {
            return Ok(false);
        }
        if !pending {
            return Ok(true);
        }
        checks += 1;
        backend_sleep(Duration::from_millis(if checks < 50 { 20 } else { 200 }));
    }
}

/// Receives and stores until SIGTERM or the source is put in error, or the table set changes;
/// Err on a reader error. An open batch left when it returns is removed (at once when the
/// worker stops, else when the reader starts again).
fn follow(
    source_id: i32,
    options: &SourceOptions,
    rx: &crossbeam_channel::Receiver<ReaderMessage>,
    budget: &ByteBudget,
    generation: i64,
    following: &[TableSignature],
) -> Result<FollowEnd> {
    let mut open = None;
    let end = follow_storing(source_id, options, rx, budget, generation, following, &mut open);
    if let (Ok(FollowEnd::Stop), Some(o)) = (&end, open) {
        in_transaction(|| batch_writer::discard(o))?;
    }
    end
}

fn follow_storing(
    source_id: i32,
    options: &SourceOptions,
    rx: &crossbeam_channel::Receiver<ReaderMessage>,
    budget: &ByteBudget,
    generation: i64,
    following: &[TableSignature],
    open: &mut Option<OpenBatch>,
) -> Result<FollowEnd> {
    let mut generation = generation;
    let mut pending = PendingBatch::default();
    let mut last_flush = Instant::now();
    let mut last_check = Instant::now() - Duration::from_secs(60);
    let mut paused = false;
    let poll = options.sleep_loop_duration().min(Duration::from_millis(100));
    let delay = options.batch_delay();
    // the replay worker, woken after each stored batch (found again once a second)
    let mut replay_pid = None;
    loop {
        if sigterm() {
            flush(source_id, &mut pending)?;
            return Ok(FollowEnd::Stop);
        }
        backend_sleep(Duration::ZERO);
        // Once a second: stop if the replay worker put the source in error, and bound the
        // backlog: while replay is this far behind, stop taking from the reader (its channel
        // fills and it stops reading the socket) until replay catches up.
        if last_check.elapsed() >= Duration::from_secs(1)
            || (paused && last_check.elapsed() >= Duration::from_millis(200))
        {
            last_check = Instant::now();
            let (backlog, source) =
                in_transaction(|| Ok((catalog::pending_events(source_id)?, catalog::source_by_id(source_id)?)))?;
            if source.status == SourceStatus::Error {
                flush(source_id, &mut pending)?;
                return Ok(FollowEnd::Stop);
            }
            replay_pid = source.replay_pid;
            if source.table_generation != generation {
                // the tables changed: acknowledge at once if the reader's map is the same,
                // else store what was received and start again from the stored position
                let tables = in_transaction(|| catalog::tables_for_source(source_id))?;
                if signature(&reader_tables(&tables, options)) == following {
                    generation = source.table_generation;
                    in_transaction(|| catalog::set_reader_generation(source_id, generation))?;
                } else {
                    flush(source_id, &mut pending)?;
                    return Ok(FollowEnd::Reload);
                }
            }
            paused = backlog >= options.max_backlog_events as i64;
            if paused {
                flush(source_id, &mut pending)?;
            }
        }
        if paused {
            backend_sleep(Duration::from_millis(200));
            continue;
        }
        let mut reader_error = None;
        // with transactions waiting for the batch delay, wake up when it ends
        let wait = if pending.txns.is_empty() { poll } else { delay.saturating_sub(last_flush.elapsed()).min(poll) };
        let received = if !pending.txns.is_empty() && open.is_none() && rx.is_empty() {
            // gathering a batch: sleep out its delay and take what came meanwhile, rather than
            // wake for every transaction (at a few thousand small transactions a second those
            // wake-ups were a third of this thread's CPU)
            backend_sleep(wait);
            rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            rx.recv_timeout(wait)
        };
        match received {
            Ok(ReaderMessage::Transaction(t)) => {
                budget.release(t.mem_size());
                pending.push(t);
                if let Some(o) = open.take() {
                    // the commit of the transaction stored in pieces: close its batch
                    let batch = std::mem::take(&mut pending);
                    in_transaction(|| batch_writer::store(source_id, &batch, Some(o)))?;
                    super::wake(replay_pid);
                    last_check = Instant::now() - Duration::from_secs(60);
                    last_flush = Instant::now();
                    continue;
                }
            }
            Ok(ReaderMessage::Piece(piece)) => {
                budget.release(piece.mem_size());
                // the whole transactions received before go first, as their own batch
                flush(source_id, &mut pending)?;
                let previous = open.take();
                *open = Some(in_transaction(|| batch_writer::store_piece(source_id, previous, &piece))?);
                continue;
            }
            Ok(ReaderMessage::Xa { txn, xa }) => {
                budget.release(txn.mem_size());
                // the whole transactions received before go first; then the XA group alone,
                // with the position after it (a prepare takes the pieces stored before it)
                flush(source_id, &mut pending)?;
                let pieces = if xa.phase == XaPhase::Prepare { open.take() } else { None };
                let visible = in_transaction(|| batch_writer::store_xa(source_id, pieces, &txn, &xa))?;
                if visible > 0 {
                    super::wake(replay_pid);
                    last_check = Instant::now() - Duration::from_secs(60);
                }
                last_flush = Instant::now();
                continue;
            }
            Ok(ReaderMessage::Abandon(what)) => {
                log!("pg_chameleon_rs: source id {source_id}: {what}");
                if let Some(o) = open.take() {
                    in_transaction(|| batch_writer::discard(o))?;
                }
            }
            Ok(ReaderMessage::Heartbeat { position }) => {
                pending.heartbeat = true;
                if position.is_some() {
                    pending.idle_position = position;
                }
            }
            Ok(ReaderMessage::Note(note)) => log!("pg_chameleon_rs: source id {source_id}: {note}"),
            Ok(ReaderMessage::TableStopped { table_id, position, error }) => {
                stop_table(source_id, table_id, &position, error)?
            }
            Ok(ReaderMessage::DdlBarrier) => {
                flush(source_id, &mut pending)?;
                return Ok(FollowEnd::Ddl);
            }
            Ok(ReaderMessage::Error(e)) => reader_error = Some(ChameleonError::from(e)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                reader_error = Some(ChameleonError::from(crate::core::error::CoreError::binlog(
                    "the binlog reader stopped".into(),
                )))
            }
        }
        if flush_due(&pending, rx.is_empty(), last_flush.elapsed(), options) || reader_error.is_some() {
            if flush(source_id, &mut pending)? > 0 {
                super::wake(replay_pid);
                // re-check the backlog right after storing rows
                last_check = Instant::now() - Duration::from_secs(60);
            }
            last_flush = Instant::now();
        }
        if let Some(e) = reader_error {
            return Err(e);
        }
    }
}

/// Whether to store what was received now: whole transactions only, when the batch is full
/// (`replica_batch_size` rows, or `batch_max_memory` bytes);
/// when the reader has nothing more right now and the batch delay since the last flush has
/// passed (an idle source flushes its first transaction at once, a busy one gathers the
/// transactions of `batch_delay_ms` into one batch: one store and one replay transaction for
/// many small source transactions); or, with heartbeats only, every `sleep_loop`.
fn flush_due(pending: &PendingBatch, reader_empty: bool, since_flush: Duration, options: &SourceOptions) -> bool {
    if pending.is_empty() {
        return false;
    }
    pending.events >= options.replica_batch_size
        || pending.bytes >= options.batch_max_bytes()
        || (!pending.txns.is_empty() && reader_empty && since_flush >= options.batch_delay())
        || since_flush >= options.sleep_loop_duration()
}

fn flush(source_id: i32, pending: &mut PendingBatch) -> Result<usize> {
    if pending.is_empty() {
        return Ok(0);
    }
    let batch = std::mem::take(pending);
    in_transaction(|| batch_writer::store(source_id, &batch, None))
}

/// A table whose table map contradicts its definition (`core::tablemap`): disabled with the
/// error (last_error, chameleon.errors, the server log), so that replay leaves its stored rows
/// and the reader its new ones; the source's other tables go on. The generation it bumps makes
/// this worker restart its reader without the table.
fn stop_table(
    source_id: i32,
    table_id: i32,
    position: &crate::core::position::BinlogPosition,
    error: crate::core::error::CoreError,
) -> Result<()> {
    let e = ChameleonError::from(error);
    let text = match e.hint() {
        Some(hint) => format!("{}; {hint}", e.message()),
        None => e.message().to_string(),
    };
    warning!("pg_chameleon_rs: source id {source_id}: {text}");
    in_transaction(|| {
        catalog::record_error(source_id, Some(table_id), Some(position), None, Some(&e.sqlstate()), &text)?;
        catalog::disable_table(table_id, &text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::change::SourceTransaction;
    use crate::core::position::BinlogPosition;

    fn one_txn(events: usize) -> PendingBatch {
        let mut p = PendingBatch::default();
        p.push(SourceTransaction {
            file: "mysql-bin.000001".into(),
            changes: vec![],
            discarded: vec![],
            end: BinlogPosition { file: "mysql-bin.000001".into(), pos: 400 },
            gtid: None,
            timestamp: 0,
        });
        p.events = events;
        p
    }

    #[test]
    fn flushes_at_once_when_idle_and_gathers_when_busy() {
        let o = SourceOptions { replica_batch_size: 100, batch_delay_ms: 50, ..Default::default() };
        let ms = Duration::from_millis;
        assert!(!flush_due(&PendingBatch::default(), true, ms(5000), &o), "nothing to store");
        // the first transaction after a quiet spell goes at once
        assert!(flush_due(&one_txn(4), true, ms(800), &o));
        // shortly after a flush, transactions are gathered until the delay ends
        assert!(!flush_due(&one_txn(4), true, ms(10), &o));
        assert!(flush_due(&one_txn(4), true, ms(50), &o));
        // more is waiting in the reader: keep taking it (up to the batch size or sleep_loop)
        assert!(!flush_due(&one_txn(4), false, ms(60), &o));
        assert!(flush_due(&one_txn(100), false, ms(1), &o));
        assert!(flush_due(&one_txn(4), false, o.sleep_loop_duration(), &o));
        // heartbeats alone: every sleep_loop
        let beat = PendingBatch { heartbeat: true, ..Default::default() };
        assert!(!flush_due(&beat, true, ms(100), &o));
        assert!(flush_due(&beat, true, o.sleep_loop_duration(), &o));
        // batch_delay_ms 0: the old behaviour, flush whenever the reader has nothing more
        let o0 = SourceOptions { batch_delay_ms: 0, ..o };
        assert!(flush_due(&one_txn(4), true, ms(0), &o0));
    }
}
