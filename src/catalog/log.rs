//! The change log: `t_log_slots` (the partitions of `t_log_replica` the batch writers rotate
//! through), `t_replica_batch` (stored batches, pending row events and DDL), and the
//! maintenance that empties a slot.

use super::{execute, run};
use crate::core::change::Op;
use crate::core::logchunk::{self, LoggedEvent};
use crate::core::state::TableState;
use crate::error::{ChameleonError, Result};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

/// A stored row event, read back from its log chunk.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub batch: i64,
    /// Its number in the batch.
    pub event: i32,
    pub table_id: i32,
    pub op: Op,
    pub file: String,
    pub pos: i64,
    /// The old key (update, delete), in the row encoding.
    pub key: Option<Vec<u8>>,
    /// The new row (insert, update), or a DDL event's fields, in the row encoding.
    pub row: Option<Vec<u8>>,
}

/// The events of the log chunks `query` selects, in its order: its columns are
/// `i_id_batch, i_id_event, i_events, b_events, t_binlog_name, i_binlog_position` of
/// `t_log_replica`. Only the events `keep` accepts are returned.
pub fn read_log_chunks(
    query: &str,
    args: &[DatumWithOid],
    keep: impl Fn(&LoggedEvent) -> bool,
) -> Result<Vec<StoredEvent>> {
    Spi::connect(|client| -> Result<Vec<StoredEvent>> {
        let t = client.select(query, None, args)?;
        let mut out = Vec::new();
        for r in t {
            let batch: i64 = r.get(1)?.unwrap_or_default();
            let first: i32 = r.get(2)?.unwrap_or_default();
            let count: i32 = r.get(3)?.unwrap_or_default();
            // borrowed from the tuple: the chunk is not copied before decoding
            let bytes: &[u8] = r.get(4)?.unwrap_or_default();
            let moved: Option<String> = r.get(5)?;
            let moved_pos: Option<i64> = r.get(6)?;
            let events = logchunk::decode(bytes, count.max(0) as usize).map_err(|e| {
                ChameleonError::from(e).context(format!("the stored events {first}.. of batch {batch}"))
            })?;
            for (i, e) in events.iter().enumerate() {
                if !keep(e) {
                    continue;
                }
                let (file, pos) = match (&moved, moved_pos) {
                    (Some(f), Some(p)) => (f.clone(), p),
                    _ => (e.file.to_string(), e.pos as i64),
                };
                out.push(StoredEvent {
                    batch,
                    event: first + i as i32,
                    table_id: e.table_id,
                    op: e.op,
                    file,
                    pos,
                    key: e.key.map(<[u8]>::to_vec),
                    row: e.row.map(<[u8]>::to_vec),
                });
            }
        }
        Ok(out)
    })
}

/// One stored event of a batch by its number.
pub fn stored_event(batch: i64, event: i32) -> Result<Option<StoredEvent>> {
    Ok(read_log_chunks(
        "SELECT i_id_batch, i_id_event, i_events, b_events, t_binlog_name, i_binlog_position \
           FROM sch_chameleon.t_log_replica WHERE i_id_batch = $1 AND i_id_event <= $2 AND i_id_event + i_events > $2",
        &[batch.into(), event.into()],
        |_| true,
    )?
    .into_iter()
    .find(|e| e.event == event))
}

/// The slot the batch writers write into.
pub fn current_log_slot() -> Result<i16> {
    Ok(Spi::get_one::<i16>("SELECT i_slot FROM sch_chameleon.t_log_slots WHERE b_current")?.unwrap_or(0))
}

pub struct LogSlot {
    pub slot: i16,
    pub current: bool,
    /// Seconds since it became the current slot.
    pub age_seconds: f64,
    pub batches: i64,
}

pub fn log_slots() -> Result<Vec<LogSlot>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT s.i_slot, s.b_current, coalesce(extract(epoch FROM now() - s.ts_opened), 0)::float8, \
                    (SELECT count(*) FROM sch_chameleon.t_replica_batch b WHERE b.i_log_slot = s.i_slot) \
               FROM sch_chameleon.t_log_slots s ORDER BY s.i_slot",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for r in t {
            out.push(LogSlot {
                slot: r.get(1)?.unwrap_or_default(),
                current: r.get(2)?.unwrap_or(false),
                age_seconds: r.get(3)?.unwrap_or_default(),
                batches: r.get(4)?.unwrap_or_default(),
            });
        }
        Ok(out)
    })
}

/// One maintenance at a time (per database).
pub fn try_maintenance_lock() -> Result<bool> {
    Ok(Spi::get_one::<bool>("SELECT pg_try_advisory_xact_lock(hashtext('pg_chameleon_rs maintenance'), 0)")?
        .unwrap_or(false))
}

/// Empties a slot when every batch in it is replayed and past its source's retention
/// (`retention`: source id, seconds), and no table of its sources is being copied again (the
/// copy's catch-up reads the batches replayed meanwhile). Locks the partition first (NOWAIT: an error when in
/// use) so that no writer adds to it between the check and the TRUNCATE. Returns the
/// batches and row events removed, or None when the slot must be kept. A slot holding an open
/// batch or a prepared XA transaction is never emptied: neither is replayed.
pub fn empty_log_slot(slot: i16, retention: &[(i32, f64)]) -> Result<Option<(i64, i64)>> {
    let partition = format!("sch_chameleon.t_log_replica_{slot}");
    execute(&format!("LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE NOWAIT"))?;
    let ids: Vec<i32> = retention.iter().map(|r| r.0).collect();
    let secs: Vec<f64> = retention.iter().map(|r| r.1).collect();
    let (batches, events, removable) = Spi::connect(|client| -> Result<(i64, i64, bool)> {
        let t = client.select(
            &format!(
                "SELECT count(*), coalesce(sum(b.i_events), 0)::bigint, \
                    coalesce(bool_and(b.b_replayed AND b.ts_replayed <= now() - make_interval(secs => r.secs) \
                        AND NOT EXISTS (SELECT 1 FROM sch_chameleon.t_replica_tables t \
                                         WHERE t.i_id_source = b.i_id_source AND t.enm_state IN {awaiting})), false) \
               FROM sch_chameleon.t_replica_batch b \
               LEFT JOIN unnest($2::int[], $3::float8[]) AS r(src, secs) ON r.src = b.i_id_source \
              WHERE b.i_log_slot = $1",
                awaiting = TableState::sql_list(TableState::AWAITING_COPY)
            ),
            None,
            &[slot.into(), ids.into(), secs.into()],
        )?;
        let row = t.first();
        Ok((row.get(1)?.unwrap_or_default(), row.get(2)?.unwrap_or_default(), row.get(3)?.unwrap_or(false)))
    })?;
    if batches == 0 || !removable {
        return Ok(None);
    }
    execute(&format!("TRUNCATE {partition}"))?;
    run("DELETE FROM sch_chameleon.t_replica_batch WHERE i_log_slot = $1", &[slot.into()])?;
    Ok(Some((batches, events)))
}

pub fn set_current_log_slot(slot: i16) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_log_slots SET b_current = (i_slot = $1), \
                ts_opened = CASE WHEN i_slot = $1 THEN now() ELSE ts_opened END",
        &[slot.into()],
    )
}

/// Row events stored and not yet replayed, in closed batches (an open batch, or a prepared XA
/// transaction, cannot be replayed before the read worker closes it: counting it would pause
/// reading for ever).
pub fn pending_events(id: i32) -> Result<i64> {
    Spi::connect(|c| -> Result<i64> {
        let t = c.select(
            "SELECT coalesce(sum(i_events), 0)::bigint FROM sch_chameleon.t_replica_batch \
              WHERE i_id_source = $1 AND NOT b_replayed AND NOT b_open",
            None,
            &[id.into()],
        )?;
        Ok(t.first().get_one::<i64>()?.unwrap_or(0))
    })
}

/// Whether a stored batch of the source holds a DDL statement replay has not applied yet (the
/// reader decodes rows with the tables as the catalogue has them: it waits until then).
pub fn ddl_pending(source_id: i32) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND NOT b_replayed AND b_has_ddl)",
        &[source_id.into()],
    )?
    .unwrap_or(false))
}

/// Removes the open batches of the source (pieces of a source transaction whose commit was
/// not stored: the read worker stopped or lost the source in the middle of it, or the source
/// never committed it), with their row events. The reader reads the transaction again whole
/// from the stored position, which is before it. Prepared XA transactions (`t_xa_xid`) stay:
/// the position is past their prepare. Returns the batches and row events removed.
pub fn discard_open_batches(source_id: i32) -> Result<(i64, i64)> {
    Spi::connect_mut(|c| -> Result<(i64, i64)> {
        let t = c.update(
            "WITH gone AS (DELETE FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND b_open AND t_xa_xid IS NULL RETURNING i_events) \
             SELECT count(*), coalesce(sum(i_events), 0)::bigint FROM gone",
            None,
            &[source_id.into()],
        )?;
        let row = t.first();
        Ok((row.get(1)?.unwrap_or_default(), row.get(2)?.unwrap_or_default()))
    })
}
