//! The replica worker of a source (what `start_replica` starts): its reader thread follows
//! the binlog (`core::reader`), its main thread — the only one that touches PostgreSQL —
//! stores whole source transactions as batches with the read position
//! (`batch_writer`) and replays stored batches (`replay`), each in its own transaction.
//!
//! Reconnects with backoff after transient source errors, always from the last committed
//! position. Stops on SIGTERM (`stop_replica`), or on a fatal error, which puts the source in
//! `error` with the message.

use crate::catalog::{self, TableRow};
use crate::core::change::ReaderMessage;
use crate::core::options::{OnErrorReplay, SourceOptions};
use crate::core::reader::{self, ReaderConfig, ReaderTable};
use crate::core::source_url::SourceUrl;
use crate::error::{ChameleonError, Result};
use crate::workers::batch_writer::{self, PendingBatch};
use crate::workers::replay::{current_failure, Replayer};
use crate::workers::txn::{backend_sleep, in_transaction};
use crossbeam_channel::{bounded, RecvTimeoutError};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHANNEL_TRANSACTIONS: usize = 1024;

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_replica_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(Some(BackgroundWorker::get_extra()), None);
    let source_id = unsafe { i32::from_datum(arg, false) }.unwrap_or_default();
    if let Err(e) = run(source_id) {
        let msg = e.to_string();
        log!("pg_chameleon_rs: replica of source id {source_id} stopped on error: {msg}");
        let _ = in_transaction(|| {
            catalog::set_source_error(source_id, Some("error"), &msg)?;
            catalog::set_want_running(source_id, false)?;
            catalog::set_worker_pid(source_id, None)
        });
    }
}

fn sigterm() -> bool {
    crate::workers::txn::shutdown_requested()
}

fn reader_tables(tables: &[TableRow]) -> HashMap<(String, String), ReaderTable> {
    tables
        .iter()
        .filter(|t| t.enabled && matches!(t.state.as_str(), "copied" | "replicating") && !t.key.is_empty())
        .map(|t| {
            (
                (t.mysql_schema.clone(), t.mysql_table.clone()),
                ReaderTable { id: t.id, kinds: t.mapped.iter().map(|m| m.kind.clone()).collect(), key: t.key_indexes() },
            )
        })
        .collect()
}

fn run(source_id: i32) -> Result<()> {
    let source = in_transaction(|| {
        let s = catalog::source_by_id(source_id)?;
        catalog::set_tables_replicating(source_id)?;
        Ok(s)
    })?;
    super::set_application_name(&format!("pg_chameleon_rs replica {}", source.name));
    let options = source.options()?;
    let url = SourceUrl::parse(&source.url)?;
    let mut replayer = Replayer::new(source_id);
    let mut backoff = Duration::from_secs(1);

    replay_pending(&mut replayer, source_id, &options)?;
    loop {
        let (position, tables) = in_transaction(|| {
            Ok((catalog::source_by_id(source_id)?.position, catalog::tables_for_source(source_id)?))
        })?;
        let start = position.ok_or_else(|| {
            ChameleonError::State(format!("source \"{}\" has no binlog position: run init_replica first", source.name))
        })?;
        let cfg = ReaderConfig {
            url: url.clone(),
            server_id: options.my_server_id,
            start,
            tables: reader_tables(&tables),
            connect_timeout: Duration::from_secs(options.connect_timeout as u64),
            net_read_timeout: Duration::from_secs(options.net_read_timeout as u64),
        };
        let (tx, rx) = bounded(CHANNEL_TRANSACTIONS);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_reader = stop.clone();
        let handle = std::thread::Builder::new()
            .name("binlog-reader".into())
            .spawn(move || reader::run(cfg, tx, &stop_reader))
            .map_err(|e| ChameleonError::State(format!("cannot start the binlog reader thread: {e}")))?;

        let outcome = follow(&mut replayer, source_id, &options, &rx);
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        // the thread notices `stop` at its next event or heartbeat; do not wait for it
        drop(handle);
        match outcome {
            Ok(()) => return Ok(()),
            Err(ChameleonError::Core(e)) if e.is_transient() => {
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

/// Receives, stores and replays until SIGTERM (Ok) or a reader error (Err).
fn follow(
    replayer: &mut Replayer,
    source_id: i32,
    options: &SourceOptions,
    rx: &crossbeam_channel::Receiver<ReaderMessage>,
) -> Result<()> {
    let mut pending = PendingBatch::default();
    let mut last_flush = Instant::now();
    let poll = options.sleep_loop_duration().min(Duration::from_millis(100));
    loop {
        if sigterm() {
            flush(source_id, &mut pending)?;
            return Ok(());
        }
        backend_sleep(Duration::ZERO);
        let mut reader_error = None;
        match rx.recv_timeout(poll) {
            Ok(ReaderMessage::Transaction(t)) => pending.push(t),
            Ok(ReaderMessage::Heartbeat { position }) => {
                pending.heartbeat = true;
                if position.is_some() {
                    pending.idle_position = position;
                }
            }
            Ok(ReaderMessage::Error(e)) => reader_error = Some(ChameleonError::Core(e)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                reader_error = Some(ChameleonError::Core(crate::core::error::CoreError::Binlog(
                    "the binlog reader stopped".into(),
                )))
            }
        }
        // Flush whole transactions: when the batch is full, when the reader has nothing more
        // right now (low lag when idle, large batches under load), or on a heartbeat.
        let due = pending.events >= options.replica_batch_size
            || (!pending.txns.is_empty() && rx.is_empty())
            || last_flush.elapsed() >= options.sleep_loop_duration()
            || reader_error.is_some();
        if due && !pending.is_empty() {
            let stored = flush(source_id, &mut pending)?;
            last_flush = Instant::now();
            if stored > 0 {
                replay_pending(replayer, source_id, options)?;
            }
        }
        if let Some(e) = reader_error {
            return Err(e);
        }
    }
}

fn flush(source_id: i32, pending: &mut PendingBatch) -> Result<usize> {
    if pending.is_empty() {
        return Ok(0);
    }
    let batch = std::mem::take(pending);
    in_transaction(|| batch_writer::store(source_id, &batch))
}

/// Replays every stored batch, each in its own transaction. A failing batch is rolled back
/// and recorded; with `on_error_replay = continue` the failing table is disabled and the batch
/// retried without it, with `exit` the error is returned (the source goes to `error`).
pub fn replay_pending(replayer: &mut Replayer, source_id: i32, options: &SourceOptions) -> Result<i64> {
    let mut total = 0;
    loop {
        in_transaction(|| replayer.reload_tables())?;
        let batches = in_transaction(|| replayer.pending_batches(16))?;
        if batches.is_empty() {
            return Ok(total);
        }
        for b in batches {
            loop {
                match in_transaction(|| replayer.apply_batch(b.id)) {
                    Ok(n) => {
                        total += n;
                        break;
                    }
                    Err(e) => {
                        let at = current_failure();
                        let msg = match &at.table {
                            Some(t) => format!("replay of {t} failed: {e}"),
                            None => format!("replay failed: {e}"),
                        };
                        in_transaction(|| {
                            catalog::record_error(
                                source_id,
                                at.table_id,
                                at.position.as_ref(),
                                at.statement.as_deref(),
                                Some(&e.sqlstate()),
                                &msg,
                            )
                        })?;
                        match (options.on_error_replay, at.table_id) {
                            (OnErrorReplay::Continue, Some(tid)) => {
                                in_transaction(|| {
                                    catalog::disable_table(tid, &msg)?;
                                    replayer.reload_tables()
                                })?;
                            }
                            _ => {
                                let pos = at.position.map(|p| format!(" at {p}")).unwrap_or_default();
                                return Err(ChameleonError::State(format!("{msg}{pos}")));
                            }
                        }
                    }
                }
            }
            if sigterm() {
                return Ok(total);
            }
        }
    }
}
