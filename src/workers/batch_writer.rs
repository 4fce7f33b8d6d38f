//! Stores whole source transactions as one batch, together with the read position after
//! the last of them, in the caller's transaction (docs/internals.md, contracts 1 and 2): if the
//! transaction commits, the rows and the position are both there; if not, neither is, and
//! the reader re-reads from the old position.

use crate::catalog;
use crate::core::change::{Op, SourceTransaction};
use crate::core::position::BinlogPosition;
use crate::core::rowcodec;
use crate::error::Result;
use pgrx::prelude::*;

/// Source transactions received and not yet stored.
#[derive(Default)]
pub struct PendingBatch {
    pub txns: Vec<SourceTransaction>,
    pub events: usize,
    /// A position the reader reported at an event-group boundary after the last transaction
    /// (heartbeat after a rotate, for example).
    pub idle_position: Option<BinlogPosition>,
    pub heartbeat: bool,
}

impl PendingBatch {
    pub fn push(&mut self, t: SourceTransaction) {
        self.events += t.changes.len();
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

/// Writes `batch` (possibly without row changes: then only the position moves).
/// Returns the number of row events stored.
pub fn store(source_id: i32, batch: &PendingBatch) -> Result<usize> {
    let Some(end) = batch.end_position() else {
        if batch.heartbeat {
            catalog::set_last_received(source_id, None)?;
        }
        return Ok(0);
    };
    let gtid = batch.txns.iter().rev().find_map(|t| t.gtid.clone());
    let last_time = batch.txns.iter().map(|t| t.timestamp).max();

    if batch.events > 0 {
        let n = batch.events;
        let mut event_ids = Vec::with_capacity(n);
        let mut table_ids = Vec::with_capacity(n);
        let mut ops = Vec::with_capacity(n);
        let mut files = Vec::with_capacity(n);
        let mut positions = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        let mut keys: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
        let mut rows: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
        for t in &batch.txns {
            for c in &t.changes {
                event_ids.push(event_ids.len() as i32 + 1);
                table_ids.push(c.table_id);
                ops.push(c.op.code());
                files.push(t.file.as_str());
                positions.push(c.pos as i64);
                times.push(c.timestamp as i64);
                keys.push(c.key.as_ref().map(|k| rowcodec::encode(k)));
                rows.push(c.row.as_ref().map(|r| rowcodec::encode(r)));
            }
        }
        let has_ddl = ops.contains(&Op::Ddl.code());
        let slot = catalog::current_log_slot()?;
        Spi::connect_mut(|client| -> Result<()> {
            let batch_id = client
                .update(
                    "INSERT INTO sch_chameleon.t_replica_batch (i_id_source, t_binlog_name, i_binlog_position, t_gtid, \
                     i_events, i_transactions, ts_source, i_log_slot, b_has_ddl) VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), $8, $9) \
                     RETURNING i_id_batch",
                    None,
                    &[
                        source_id.into(),
                        end.file.as_str().into(),
                        (end.pos as i64).into(),
                        gtid.as_deref().into(),
                        (n as i32).into(),
                        (batch.txns.len() as i32).into(),
                        last_time.map(|t| t as f64).into(),
                        slot.into(),
                        has_ddl.into(),
                    ],
                )?
                .first()
                .get_one::<i64>()?
                .unwrap_or_default();
            client.update(
                "INSERT INTO sch_chameleon.t_log_replica (i_id_batch, i_id_event, i_id_table, v_op, t_binlog_name, \
                 i_binlog_position, i_event_time, b_key, b_row, i_log_slot) \
                 SELECT $1, *, $10 FROM unnest($2::int[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bytea[], $9::bytea[])",
                None,
                &[
                    batch_id.into(),
                    event_ids.into(),
                    table_ids.into(),
                    ops.into(),
                    files.into(),
                    positions.into(),
                    times.into(),
                    keys.into(),
                    rows.into(),
                    slot.into(),
                ],
            )?;
            Ok(())
        })?;
    }
    for t in &batch.txns {
        for d in &t.discarded {
            let at = BinlogPosition::new(t.file.clone(), d.pos);
            catalog::record_discarded(source_id, d.table_id, Some(&at), &d.raw, &d.reason)?;
        }
    }
    catalog::set_position(source_id, &end, gtid.as_deref())?;
    // on a heartbeat everything was received: the source time is now
    let received = if batch.heartbeat { None } else { last_time.map(|t| t as i64) };
    catalog::set_last_received(source_id, received)?;
    Ok(batch.events)
}
