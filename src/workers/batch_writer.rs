//! Stores source transactions as batches, together with the read position after the last of
//! them, in the caller's transaction (docs/internals.md, contracts 1 and 2): if the transaction
//! commits, the rows and the position are both there; if not, neither is, and the reader
//! re-reads from the old position.
//!
//! A transaction larger than `batch_max_memory` arrives in pieces: each is stored at once, in
//! its own transaction, into one *open* batch (`b_open`) that replay does not see; its commit
//! closes the batch together with the read position. The position never moves on a piece, so
//! a read worker that stops in the middle starts again before the transaction and first
//! removes the open batch (`catalog::discard_open_batches`): nothing stored twice, nothing
//! lost.
//!
//! An XA transaction's rows are stored at its XA PREPARE into a batch kept from replay like an
//! open one, under its xid (`t_xa_xid`: a *prepared* batch, which survives restarts); its XA
//! COMMIT moves them into a new batch at that place of the stream, its XA ROLLBACK removes
//! them, each with the read position after it (`store_xa`).

use crate::catalog;
use crate::core::change::{DiscardedRow, Op, RowChange, SourceTransaction, TransactionPiece};
use crate::core::logchunk;
use crate::core::position::BinlogPosition;
use crate::core::xa::{XaEvent, XaPhase};
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;

/// Source transactions received and not yet stored.
#[derive(Default)]
pub struct PendingBatch {
    pub txns: Vec<SourceTransaction>,
    pub events: usize,
    /// Estimated bytes of the transactions' changes (`SourceTransaction::mem_size`).
    pub bytes: usize,
    /// A position the reader reported at an event-group boundary after the last transaction
    /// (heartbeat after a rotate, for example).
    pub idle_position: Option<BinlogPosition>,
    pub heartbeat: bool,
}

impl PendingBatch {
    pub fn push(&mut self, t: SourceTransaction) {
        self.events += t.changes.len();
        self.bytes += t.mem_size();
        self.idle_position = None;
        self.txns.push(t);
    }
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty() && self.idle_position.is_none() && !self.heartbeat
    }
    pub fn end_position(&self) -> Option<BinlogPosition> {
        match (&self.idle_position, self.txns.last()) {
            (Some(idle), Some(t)) if *idle < t.end => Some(t.end.clone()),
            (Some(idle), _) => Some(idle.clone()),
            (None, t) => t.map(|t| t.end.clone()),
        }
    }
}

/// The batch of a source transaction being stored in pieces, not closed yet.
pub struct OpenBatch {
    pub id: i64,
    /// The log slot of its rows: every piece goes to the slot of the first, so replay finds
    /// them all with the batch's `i_log_slot` (maintenance never empties a slot holding a batch
    /// not replayed).
    slot: i16,
    /// Row events stored so far (the next event id follows them).
    pub events: usize,
    pub pieces: usize,
    has_ddl: bool,
    /// Rows the pieces could not convert: recorded when the transaction commits (recording
    /// them earlier would keep those of a transaction that is read again).
    discarded: Vec<(String, DiscardedRow)>,
}

/// Inserts row events into the log for `batch_id`, numbered from `first_event + 1`, in
/// chunks (`logchunk`): one log row per chunk of up to 5000 events, each inserted once built
/// (one chunk's bytes in memory besides the events).
fn insert_events<'a>(
    batch_id: i64,
    slot: i16,
    first_event: usize,
    changes: impl Iterator<Item = (&'a str, &'a RowChange)>,
) -> Result<()> {
    let mut next = first_event;
    let mut insert = |chunk: logchunk::Chunk| -> Result<()> {
        Spi::run_with_args(
            "INSERT INTO sch_chameleon.t_log_replica (i_id_batch, i_id_event, i_events, i_tables, b_events, i_log_slot) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                batch_id.into(),
                ((next + 1) as i32).into(),
                (chunk.events as i32).into(),
                chunk.tables.into(),
                chunk.bytes.into(),
                slot.into(),
            ],
        )?;
        next += chunk.events;
        Ok(())
    };
    let mut writer = logchunk::ChunkWriter::new();
    for (file, c) in changes {
        writer.push_change(file, c);
        if writer.is_full() {
            if let Some(chunk) = writer.take() {
                insert(chunk)?;
            }
        }
    }
    match writer.take() {
        Some(chunk) => insert(chunk),
        None => Ok(()),
    }
}

/// Creates an open batch (kept from replay) in the current log slot.
fn new_open_batch(source_id: i32, last: &BinlogPosition, timestamp: u32) -> Result<OpenBatch> {
    let slot = catalog::current_log_slot()?;
    let id = Spi::get_one_with_args::<i64>(
        "INSERT INTO sch_chameleon.t_replica_batch (i_id_source, t_binlog_name, i_binlog_position, \
         i_events, i_transactions, ts_source, i_log_slot, b_open) \
         VALUES ($1, $2, $3, 0, 0, to_timestamp($4), $5, true) RETURNING i_id_batch",
        &[
            source_id.into(),
            last.file.as_str().into(),
            (last.pos as i64).into(),
            (timestamp as f64).into(),
            slot.into(),
        ],
    )?
    .unwrap_or_default();
    Ok(OpenBatch { id, slot, events: 0, pieces: 0, has_ddl: false, discarded: Vec::new() })
}

/// Appends row events (read from `file`) to the open batch, created first (at `last`) when
/// there is none yet; in the caller's transaction.
fn append(
    source_id: i32,
    open: Option<OpenBatch>,
    file: &str,
    changes: &[RowChange],
    last: &BinlogPosition,
    timestamp: u32,
) -> Result<OpenBatch> {
    let mut open = match open {
        Some(o) => o,
        None => new_open_batch(source_id, last, timestamp)?,
    };
    insert_events(open.id, open.slot, open.events, changes.iter().map(|c| (file, c)))?;
    open.events += changes.len();
    open.has_ddl |= changes.iter().any(|c| c.op == Op::Ddl);
    Ok(open)
}

/// Stores a piece of a source transaction into its open batch (created by the first piece),
/// in the caller's transaction. The read position does not move.
pub fn store_piece(source_id: i32, open: Option<OpenBatch>, piece: &TransactionPiece) -> Result<OpenBatch> {
    let mut open = append(source_id, open, &piece.file, &piece.changes, &piece.last, piece.timestamp)?;
    open.pieces += 1;
    open.discarded.extend(piece.discarded.iter().map(|d| (piece.file.clone(), d.clone())));
    // the progress shows in chameleon.sources (pending_events) while the transaction is stored
    Spi::run_with_args(
        "UPDATE sch_chameleon.t_replica_batch SET i_events = $2, i_binlog_position = $3 WHERE i_id_batch = $1",
        &[open.id.into(), (open.events as i32).into(), (piece.last.pos as i64).into()],
    )?;
    Ok(open)
}

/// Writes `batch` (possibly without row changes: then only the position moves); with `open`,
/// `batch` holds the commit of the open batch's transaction (and possibly more whole ones),
/// and the open batch is closed with them. Returns the number of row events stored.
pub fn store(source_id: i32, batch: &PendingBatch, open: Option<OpenBatch>) -> Result<usize> {
    let Some(end) = batch.end_position() else {
        if batch.heartbeat {
            catalog::set_last_received(source_id, None)?;
        }
        return Ok(0);
    };
    let gtid = batch.txns.iter().rev().find_map(|t| t.gtid.clone());
    let last_time = batch.txns.iter().map(|t| t.timestamp).max();
    let changes = || batch.txns.iter().flat_map(|t| t.changes.iter().map(move |c| (t.file.as_str(), c)));
    let has_ddl = batch.txns.iter().any(|t| t.changes.iter().any(|c| c.op == Op::Ddl));
    let stored = match &open {
        Some(o) => {
            insert_events(o.id, o.slot, o.events, changes())?;
            let total = o.events + batch.events;
            Spi::run_with_args(
                "UPDATE sch_chameleon.t_replica_batch SET b_open = false, t_binlog_name = $2, i_binlog_position = $3, \
                 t_gtid = $4, i_events = $5, i_transactions = $6, ts_source = to_timestamp($7), \
                 b_has_ddl = $8, ts_created = clock_timestamp() WHERE i_id_batch = $1",
                &[
                    o.id.into(),
                    end.file.as_str().into(),
                    (end.pos as i64).into(),
                    gtid.as_deref().into(),
                    (total as i32).into(),
                    (batch.txns.len() as i32).into(),
                    last_time.map(|t| t as f64).into(),
                    (has_ddl || o.has_ddl).into(),
                ],
            )?;
            total
        }
        None if batch.events > 0 => {
            let slot = catalog::current_log_slot()?;
            let batch_id = Spi::get_one_with_args::<i64>(
                "INSERT INTO sch_chameleon.t_replica_batch (i_id_source, t_binlog_name, i_binlog_position, t_gtid, \
                 i_events, i_transactions, ts_source, i_log_slot, b_has_ddl) VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), $8, $9) \
                 RETURNING i_id_batch",
                &[
                    source_id.into(),
                    end.file.as_str().into(),
                    (end.pos as i64).into(),
                    gtid.as_deref().into(),
                    (batch.events as i32).into(),
                    (batch.txns.len() as i32).into(),
                    last_time.map(|t| t as f64).into(),
                    slot.into(),
                    has_ddl.into(),
                ],
            )?
            .unwrap_or_default();
            insert_events(batch_id, slot, 0, changes())?;
            batch.events
        }
        None => 0,
    };
    let earlier = open.iter().flat_map(|o| o.discarded.iter().map(|(f, d)| (f.as_str(), d)));
    let now = batch.txns.iter().flat_map(|t| t.discarded.iter().map(move |d| (t.file.as_str(), d)));
    record_discarded(source_id, earlier.chain(now))?;
    catalog::set_position(source_id, &end, gtid.as_deref())?;
    // on a heartbeat everything was received: the source time is now
    let received = if batch.heartbeat { None } else { last_time.map(|t| t as i64) };
    catalog::set_last_received(source_id, received)?;
    Ok(stored)
}

/// Removes an open batch whose transaction will not be closed by this reader (it stopped, or
/// the source abandoned the transaction); in the caller's transaction. Never a prepared one.
pub fn discard(open: OpenBatch) -> Result<()> {
    Spi::run_with_args(
        "DELETE FROM sch_chameleon.t_replica_batch WHERE i_id_batch = $1 AND b_open AND t_xa_xid IS NULL",
        &[open.id.into()],
    )?;
    Ok(())
}

/// Stores an XA event group (the whole transactions read before it are stored already) with
/// the read position after it, in the caller's transaction: exactly once, as a batch is.
/// Returns the row events it made visible to replay.
///
/// - prepare: its rows (after the pieces already in `open`) go into a batch kept from replay
///   (`b_open`) under its xid (`t_xa_xid`), replacing one stored for the same xid before; a
///   prepared transaction without rows is stored too, empty, so that its outcome finds it.
///   Its discarded rows are recorded now.
/// - commit: the prepared rows move into a new batch, whose id follows every batch stored
///   before (replay applies them at the commit's place in the stream), and take the commit's
///   position (the one a table's consistent point is compared with: the commit made them
///   visible on the source).
/// - rollback: the prepared batch and its rows are removed.
///
/// An XA COMMIT whose prepare was never stored (it lies before where reading started) is an
/// error: its rows are in neither the copy nor the log. An XA ROLLBACK of one has nothing to undo.
pub fn store_xa(source_id: i32, open: Option<OpenBatch>, txn: &SourceTransaction, xa: &XaEvent) -> Result<usize> {
    let xid = xa.xid.to_string();
    let made_visible = match xa.phase {
        XaPhase::Prepare => {
            store_prepared(source_id, open, txn, &xid)?;
            0
        }
        XaPhase::Commit | XaPhase::Rollback => {
            if let Some(o) = open {
                return Err(ChameleonError::internal(format!(
                    "the XA outcome for {xid} at {} arrived with the pieces of another transaction (batch {})",
                    txn.end, o.id
                )));
            }
            match prepared_batch(source_id, &xid)? {
                None if xa.phase == XaPhase::Commit => return Err(unknown_xa_commit(source_id, &xid, &txn.end)),
                None => {
                    log!(
                        "pg_chameleon_rs: source id {source_id}: XA ROLLBACK at {} of {xid}, prepared before where \
                         reading started: nothing of it was stored or applied",
                        txn.end
                    );
                    0
                }
                Some((batch, _, _)) if xa.phase == XaPhase::Rollback => {
                    Spi::run_with_args(
                        "DELETE FROM sch_chameleon.t_replica_batch WHERE i_id_batch = $1",
                        &[batch.into()],
                    )?;
                    0
                }
                Some((batch, slot, events)) => commit_prepared(source_id, batch, slot, events, txn)?,
            }
        }
    };
    catalog::set_position(source_id, &txn.end, txn.gtid.as_deref())?;
    catalog::set_last_received(source_id, Some(txn.timestamp as i64))?;
    Ok(made_visible)
}

/// The prepared batch of the xid: id, log slot, row events; locked.
fn prepared_batch(source_id: i32, xid: &str) -> Result<Option<(i64, i16, i32)>> {
    Spi::connect_mut(|c| -> Result<Option<(i64, i16, i32)>> {
        let t = c.update(
            "SELECT i_id_batch, i_log_slot, i_events FROM sch_chameleon.t_replica_batch \
              WHERE i_id_source = $1 AND t_xa_xid = $2 FOR UPDATE",
            None,
            &[source_id.into(), xid.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok(Some((r.get(1)?.unwrap_or_default(), r.get(2)?.unwrap_or_default(), r.get(3)?.unwrap_or_default())))
    })
}

/// The prepare of an XA transaction: its rows into its open batch, which becomes prepared.
fn store_prepared(source_id: i32, open: Option<OpenBatch>, txn: &SourceTransaction, xid: &str) -> Result<()> {
    // The source has one prepared transaction per xid: one stored already is this one read
    // again (start_replica moved the position back before it), or one whose outcome lay in
    // binlog skipped by moving the position forward. The prepare read now is the one its
    // outcome will name.
    if let Some((old, _, events)) = prepared_batch(source_id, xid)? {
        log!(
            "pg_chameleon_rs: source id {source_id}: the XA transaction {xid} is prepared again at {}: \
             the {events} row events stored for it before are replaced",
            txn.end
        );
        Spi::run_with_args("DELETE FROM sch_chameleon.t_replica_batch WHERE i_id_batch = $1", &[old.into()])?;
    }
    let o = append(source_id, open, &txn.file, &txn.changes, &txn.end, txn.timestamp)?;
    Spi::run_with_args(
        "UPDATE sch_chameleon.t_replica_batch SET t_xa_xid = $2, i_events = $3, t_binlog_name = $4, \
         i_binlog_position = $5, t_gtid = $6, ts_source = to_timestamp($7) WHERE i_id_batch = $1",
        &[
            o.id.into(),
            xid.into(),
            (o.events as i32).into(),
            txn.end.file.as_str().into(),
            (txn.end.pos as i64).into(),
            txn.gtid.as_deref().into(),
            (txn.timestamp as f64).into(),
        ],
    )?;
    let earlier = o.discarded.iter().map(|(f, d)| (f.as_str(), d));
    let now = txn.discarded.iter().map(|d| (txn.file.as_str(), d));
    record_discarded(source_id, earlier.chain(now))
}

/// Records the rows that could not be converted (each with the file it was read from), in the
/// caller's transaction. A table's first one moves the table generation: the table now
/// knowingly lacks a row, and replay must know it before it applies this batch (a later delete
/// or update of that row finds nothing, which is then not a divergence), so its table cache is
/// read again.
fn record_discarded<'a>(source_id: i32, rows: impl Iterator<Item = (&'a str, &'a DiscardedRow)>) -> Result<()> {
    let mut first_discard = false;
    for (file, d) in rows {
        let at = BinlogPosition::new(file, d.pos);
        first_discard |= catalog::record_discarded(source_id, d.table_id, Some(&at), &d.raw, &d.reason)? == 1;
    }
    if first_discard {
        catalog::bump_table_generation(source_id)?;
    }
    Ok(())
}

/// The commit of a prepared XA transaction: its rows move into a new batch ending at the
/// commit, with the commit's position; the prepared batch goes. Returns the row events.
fn commit_prepared(source_id: i32, batch: i64, slot: i16, events: i32, txn: &SourceTransaction) -> Result<usize> {
    if events > 0 {
        let id = Spi::get_one_with_args::<i64>(
            "INSERT INTO sch_chameleon.t_replica_batch (i_id_source, t_binlog_name, i_binlog_position, t_gtid, \
             i_events, i_transactions, ts_source, i_log_slot) VALUES ($1, $2, $3, $4, $5, 1, to_timestamp($6), $7) \
             RETURNING i_id_batch",
            &[
                source_id.into(),
                txn.end.file.as_str().into(),
                (txn.end.pos as i64).into(),
                txn.gtid.as_deref().into(),
                events.into(),
                (txn.timestamp as f64).into(),
                slot.into(),
            ],
        )?
        .unwrap_or_default();
        Spi::run_with_args(
            // every event of the chunks is at the commit now (`t_binlog_name`, `i_binlog_position`)
            "UPDATE sch_chameleon.t_log_replica SET i_id_batch = $2, t_binlog_name = $3, i_binlog_position = $4 \
              WHERE i_id_batch = $1 AND i_log_slot = $5",
            &[batch.into(), id.into(), txn.end.file.as_str().into(), (txn.end.pos as i64).into(), slot.into()],
        )?;
    }
    Spi::run_with_args("DELETE FROM sch_chameleon.t_replica_batch WHERE i_id_batch = $1", &[batch.into()])?;
    Ok(events as usize)
}

/// An XA COMMIT whose prepare was not read: its rows cannot be applied, and are not dropped
/// silently either.
fn unknown_xa_commit(source_id: i32, xid: &str, end: &BinlogPosition) -> ChameleonError {
    let source = catalog::source_by_id(source_id).map(|s| s.name).unwrap_or_else(|_| format!("id {source_id}"));
    ChameleonError::state(format!(
        "source \"{source}\": the binlog at {end} (the end of an XA COMMIT) commits the XA transaction {xid}, \
         whose XA PREPARE was not read: it lies before where this source started reading"
    ))
    .with_detail(
        "an XA transaction prepared before the copy's snapshot (or the start position) and committed after it: \
         the copy did not see its rows (they were not committed yet) and the binlog holds them before the \
         start; they may change replicated tables, so the source stops here rather than lose them",
    )
    .with_hint(format!(
        "find the tables it changed (mysqlbinlog around its XA PREPARE, or the application); then \
         enable_replica('{source}'), start_replica('{source}', start_position => '{end}') to go on after it and sync_tables those tables \
         (or copy the source again with init_replica). To avoid it, resolve the XA transactions XA RECOVER \
         lists before init_replica"
    ))
}
