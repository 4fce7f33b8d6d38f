//! The initial copy: `t_copy_workers` (one slot per copy worker, its state and the point it
//! copies at), table claims on `t_replica_tables`, `t_copy_ranges` (the key ranges a large
//! table is cut into), and the copy's progress and resumption.

use super::{parse_state, point, run};
use crate::core::position::BinlogPosition;
use crate::core::state::{CopySlotState, RangeState, TableState};
use crate::core::stored::columns_to_json;
use crate::core::types::MySqlColumn;
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;
use pgrx::JsonB;

/// Whether an earlier `init_replica` of the source stopped before copying every table.
pub fn copy_incomplete(source_id: i32) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM sch_chameleon.t_replica_tables WHERE i_id_source = $1 AND enm_state IN {})",
            TableState::sql_list(TableState::COPY_UNFINISHED)
        ),
        &[source_id.into()],
    )?
    .unwrap_or(false))
}

/// The id of a table an interrupted copy already finished, if its definition on the source
/// is still the one copied and its PostgreSQL table still exists: resuming keeps it.
pub fn finished_table(
    source_id: i32,
    mysql_schema: &str,
    mysql_table: &str,
    pg_schema: &str,
    columns: &[MySqlColumn],
    key: &[String],
) -> Result<Option<i32>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT t.i_id_table FROM sch_chameleon.t_replica_tables t \
              WHERE t.i_id_source = $1 AND t.v_mysql_schema = $2 AND t.v_mysql_table = $3 AND t.v_pg_schema = $4 \
                AND t.ts_copied IS NOT NULL AND t.enm_state IN ($7, $8) AND t.jsb_columns = $5 \
                AND t.v_replica_key = $6 AND to_regclass(quote_ident(t.v_pg_schema) || '.' || quote_ident(t.v_pg_table)) IS NOT NULL",
            None,
            &[
                source_id.into(),
                mysql_schema.into(),
                mysql_table.into(),
                pg_schema.into(),
                JsonB(columns_to_json(columns, pg_schema, mysql_table)).into(),
                key.to_vec().into(),
                TableState::Copied.as_str().into(),
                TableState::Disabled.as_str().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        Ok(t.first().get_one::<i32>()?)
    })
}

/// A worker slot of the running copy.
#[derive(Debug, Clone)]
pub struct CopySlot {
    pub slot: i32,
    pub pid: Option<i32>,
    pub state: CopySlotState,
    pub per_table_points: bool,
    pub point: Option<BinlogPosition>,
    pub error: Option<String>,
    /// The table being copied now (`None`: idle).
    pub table_id: Option<i32>,
}

pub fn copy_slots(source_id: i32) -> Result<Vec<CopySlot>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT i_slot, i_pid, enm_state, b_per_table_points, t_binlog_name, i_binlog_position, t_error, i_id_table \
             FROM sch_chameleon.t_copy_workers WHERE i_id_source = $1 ORDER BY i_slot",
            None,
            &[source_id.into()],
        )?;
        let mut out = Vec::new();
        for row in t {
            let file: Option<String> = row.get(5)?;
            let pos: Option<i64> = row.get(6)?;
            out.push(CopySlot {
                slot: row.get(1)?.unwrap_or_default(),
                pid: row.get(2)?,
                state: parse_state(row.get::<String>(3)?, CopySlotState::parse)?,
                per_table_points: row.get(4)?.unwrap_or(false),
                point: point(file, pos),
                error: row.get(7)?,
                table_id: row.get(8)?,
            });
        }
        Ok(out)
    })
}

/// The table a copy worker works on now (`None`: it has nothing to claim, it is idle).
pub fn set_copy_slot_table(source_id: i32, slot: i32, table_id: Option<i32>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_copy_workers SET i_id_table = $3 WHERE i_id_source = $1 AND i_slot = $2",
        &[source_id.into(), slot.into(), table_id.into()],
    )
}

/// Replaces the slots of the source by `n` fresh ones, all `starting`.
pub fn create_copy_slots(source_id: i32, n: usize) -> Result<()> {
    run("DELETE FROM sch_chameleon.t_copy_workers WHERE i_id_source = $1", &[source_id.into()])?;
    run(
        "INSERT INTO sch_chameleon.t_copy_workers (i_id_source, i_slot) SELECT $1, g FROM generate_series(0, $2 - 1) g",
        &[source_id.into(), (n as i32).into()],
    )
}

/// A copy worker reporting its state (and, once known, its pid; an error when it fails).
pub fn set_copy_slot(
    source_id: i32,
    slot: i32,
    state: CopySlotState,
    pid: Option<i32>,
    error: Option<&str>,
) -> Result<()> {
    // a worker that ended holds no table
    let ended = matches!(state, CopySlotState::Done | CopySlotState::Failed);
    run(
        "UPDATE sch_chameleon.t_copy_workers SET enm_state = $3, i_pid = coalesce($4, i_pid), t_error = coalesce($5, t_error), \
         i_id_table = CASE WHEN $6 THEN NULL ELSE i_id_table END \
         WHERE i_id_source = $1 AND i_slot = $2",
        &[source_id.into(), slot.into(), state.as_str().into(), pid.into(), error.into(), ended.into()],
    )
}

/// The coordinator, holding the global read lock: every connected worker opens its snapshot now.
pub fn copy_slots_open(source_id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_copy_workers SET enm_state = $2 WHERE i_id_source = $1 AND enm_state = $3",
        &[source_id.into(), CopySlotState::Open.as_str().into(), CopySlotState::Connected.as_str().into()],
    )
}

/// The coordinator letting every ready worker copy: at the snapshot's coordinates, or with a
/// consistent point per table.
pub fn copy_slots_go(source_id: i32, point: Option<&BinlogPosition>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_copy_workers SET enm_state = $4, b_per_table_points = $2::text IS NULL, \
         t_binlog_name = $2, i_binlog_position = $3 WHERE i_id_source = $1 AND enm_state = $5",
        &[
            source_id.into(),
            point.map(|p| p.file.clone()).into(),
            point.map(|p| p.pos as i64).into(),
            CopySlotState::Go.as_str().into(),
            CopySlotState::Ready.as_str().into(),
        ],
    )
}

/// Tells every worker that has not finished to give up (the coordinator failed).
pub fn abort_copy_slots(source_id: i32) -> Result<()> {
    run(
        &format!(
            "UPDATE sch_chameleon.t_copy_workers SET enm_state = $2 WHERE i_id_source = $1 AND enm_state IN {}",
            CopySlotState::sql_list(CopySlotState::ABORTABLE)
        ),
        &[source_id.into(), CopySlotState::Aborted.as_str().into()],
    )
}

/// A table a copy worker took: `copying` from now on, by this worker.
#[derive(Debug, Clone)]
pub struct ClaimedTable {
    pub id: i32,
    pub mysql_schema: String,
    pub mysql_table: String,
    pub pg_schema: String,
}

/// Claims the largest table still to copy (none failed in this run, none in `skip`), for
/// `slot`; its rows copied count from 0 again.
pub fn claim_table(source_id: i32, slot: i32, skip: &[i32]) -> Result<Option<ClaimedTable>> {
    let claimed = Spi::connect_mut(|client| -> Result<Option<ClaimedTable>> {
        let t = client.update(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = $2, i_rows_copied = 0 WHERE i_id_table = ( \
                 SELECT i_id_table FROM sch_chameleon.t_replica_tables \
                  WHERE i_id_source = $1 AND enm_state = $3 AND NOT (i_id_table = ANY($4)) \
                  ORDER BY i_rows_estimated DESC NULLS LAST, i_id_table LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING i_id_table, v_mysql_schema, v_mysql_table, v_pg_schema",
            None,
            &[
                source_id.into(),
                TableState::Copying.as_str().into(),
                TableState::Pending.as_str().into(),
                skip.to_vec().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        Ok(Some(ClaimedTable {
            id: row.get(1)?.unwrap_or_default(),
            mysql_schema: row.get(2)?.unwrap_or_default(),
            mysql_table: row.get(3)?.unwrap_or_default(),
            pg_schema: row.get(4)?.unwrap_or_default(),
        }))
    })?;
    if let Some(c) = &claimed {
        set_copy_slot_table(source_id, slot, Some(c.id))?;
        // ranges of an earlier, interrupted copy of this table are void
        run("DELETE FROM sch_chameleon.t_copy_ranges WHERE i_id_table = $1", &[c.id.into()])?;
    }
    Ok(claimed)
}

/// Cuts a claimed table into key ranges for the copy workers (replacing any earlier ones).
pub fn create_copy_ranges(table_id: i32, column: &str, ranges: &[crate::core::ranges::KeyRange]) -> Result<()> {
    run("DELETE FROM sch_chameleon.t_copy_ranges WHERE i_id_table = $1", &[table_id.into()])?;
    for (i, r) in ranges.iter().enumerate() {
        run(
            "INSERT INTO sch_chameleon.t_copy_ranges (i_id_table, i_range, v_column, t_low, t_high) VALUES ($1, $2, $3, $4, $5)",
            &[
                table_id.into(),
                (i as i32).into(),
                column.into(),
                r.low.map(|v| v.to_string()).into(),
                r.high.map(|v| v.to_string()).into(),
            ],
        )?;
    }
    Ok(())
}

/// A key range of a table being copied, claimed by one copy worker.
#[derive(Debug, Clone)]
pub struct ClaimedRange {
    pub table: ClaimedTable,
    pub range: i32,
    pub column: String,
    pub bounds: crate::core::ranges::KeyRange,
}

/// Claims a pending range of a table of the source still being copied, for `slot`.
pub fn claim_range(source_id: i32, slot: i32) -> Result<Option<ClaimedRange>> {
    let claimed = Spi::connect_mut(|client| -> Result<Option<ClaimedRange>> {
        let t = client.update(
            "UPDATE sch_chameleon.t_copy_ranges r SET enm_state = $3, i_slot = $2 \
               FROM sch_chameleon.t_replica_tables t \
              WHERE t.i_id_table = r.i_id_table AND (r.i_id_table, r.i_range) = ( \
                    SELECT c.i_id_table, c.i_range FROM sch_chameleon.t_copy_ranges c \
                      JOIN sch_chameleon.t_replica_tables x ON x.i_id_table = c.i_id_table \
                     WHERE x.i_id_source = $1 AND x.enm_state = $4 AND c.enm_state = $5 \
                     ORDER BY c.i_id_table, c.i_range LIMIT 1 FOR UPDATE OF c SKIP LOCKED) \
             RETURNING r.i_id_table, t.v_mysql_schema, t.v_mysql_table, t.v_pg_schema, r.i_range, r.v_column, r.t_low, r.t_high",
            None,
            &[
                source_id.into(),
                slot.into(),
                RangeState::Copying.as_str().into(),
                TableState::Copying.as_str().into(),
                RangeState::Pending.as_str().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let row = t.first();
        let bound = |i: usize| -> Result<Option<i128>> {
            match row.get::<String>(i)? {
                None => Ok(None),
                Some(s) => s
                    .parse::<i128>()
                    .map(Some)
                    .map_err(|_| ChameleonError::catalog(format!("copy range bound {s} is not an integer"))),
            }
        };
        Ok(Some(ClaimedRange {
            table: ClaimedTable {
                id: row.get(1)?.unwrap_or_default(),
                mysql_schema: row.get(2)?.unwrap_or_default(),
                mysql_table: row.get(3)?.unwrap_or_default(),
                pg_schema: row.get(4)?.unwrap_or_default(),
            },
            range: row.get(5)?.unwrap_or_default(),
            column: row.get(6)?.unwrap_or_default(),
            bounds: crate::core::ranges::KeyRange { low: bound(7)?, high: bound(8)? },
        }))
    })?;
    if let Some(c) = &claimed {
        set_copy_slot_table(source_id, slot, Some(c.table.id))?;
    }
    Ok(claimed)
}

/// A range is copied: its rows count towards the table's.
pub fn copy_range_done(table_id: i32, range: i32, rows: i64) -> Result<()> {
    run(
        &format!(
            "UPDATE sch_chameleon.t_copy_ranges SET enm_state = '{}', i_rows = $3 WHERE i_id_table = $1 AND i_range = $2",
            RangeState::Done
        ),
        &[table_id.into(), range.into(), rows.into()],
    )?;
    run(
        "UPDATE sch_chameleon.t_replica_tables SET i_rows_copied = i_rows_copied + $2 WHERE i_id_table = $1",
        &[table_id.into(), rows.into()],
    )
}

/// Locks a table copied in ranges and says whether it is ready to be finished: still
/// `copying` and every range done. Of the workers finishing ranges at the same time, exactly
/// one sees it ready (the lock orders them; the first marks the table copied).
pub fn ranges_complete(table_id: i32) -> Result<bool> {
    Spi::connect_mut(|client| {
        let t = client.update(
            "SELECT t.enm_state = $2 AND NOT EXISTS ( \
                    SELECT 1 FROM sch_chameleon.t_copy_ranges r WHERE r.i_id_table = t.i_id_table AND r.enm_state <> $3) \
               FROM sch_chameleon.t_replica_tables t WHERE t.i_id_table = $1 FOR UPDATE OF t",
            None,
            &[table_id.into(), TableState::Copying.as_str().into(), RangeState::Done.as_str().into()],
        )?;
        if t.is_empty() {
            return Ok(false);
        }
        Ok(t.first().get_one::<bool>()?.unwrap_or(false))
    })
}

/// A table whose copy failed: `failed` with the error (not claimed again in this run; the
/// next `init_replica` retries it).
pub fn table_copy_failed(table_id: i32, error: &str) -> Result<()> {
    run(
        &format!(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = '{}', t_last_error = $2 WHERE i_id_table = $1",
            TableState::Failed
        ),
        &[table_id.into(), error.into()],
    )
}

/// How many tables of the source are waiting for a copy, being copied or catching up after it.
pub fn tables_being_copied(source_id: i32) -> Result<i64> {
    Ok(Spi::get_one_with_args::<i64>(
        &format!(
            "SELECT count(*) FROM sch_chameleon.t_replica_tables WHERE i_id_source = $1 AND enm_state IN {}",
            TableState::sql_list(TableState::BEING_COPIED)
        ),
        &[source_id.into()],
    )?
    .unwrap_or_default())
}

/// Tables of the source not copied yet, with the error that stopped each, if any.
pub fn uncopied_tables(source_id: i32) -> Result<Vec<(String, Option<String>)>> {
    Spi::connect(|client| {
        let t = client.select(
            &format!(
                "SELECT v_mysql_schema || '.' || v_mysql_table, t_last_error FROM sch_chameleon.t_replica_tables \
                  WHERE i_id_source = $1 AND enm_state IN {} ORDER BY 1",
                TableState::sql_list(TableState::COPY_UNFINISHED)
            ),
            None,
            &[source_id.into()],
        )?;
        let mut out = Vec::new();
        for row in t {
            out.push((row.get::<String>(1)?.unwrap_or_default(), row.get::<String>(2)?));
        }
        Ok(out)
    })
}

/// Where replication of the source starts: the earliest consistent point of its replicated
/// tables (each table then applies only the events after its own point).
pub fn earliest_table_point(source_id: i32) -> Result<Option<BinlogPosition>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT t_binlog_name, i_binlog_position FROM sch_chameleon.t_replica_tables \
              WHERE i_id_source = $1 AND b_replica_enabled AND t_binlog_name IS NOT NULL",
            None,
            &[source_id.into()],
        )?;
        let mut points = Vec::new();
        for row in t {
            points.extend(point(row.get(1)?, row.get(2)?));
        }
        Ok(points.into_iter().min())
    })
}

/// The session advisory lock a `sync_tables` coordinator holds while it runs (with the source
/// id as second key): one coordinator per source, and the launcher and `stop_replica` find it
/// in `pg_locks`.
const SYNC_LOCK: &str = "hashtext('pg_chameleon_rs sync')";

/// Takes the source's sync lock for this session (until it exits); false if another
/// coordinator holds it.
pub fn try_lock_sync(source_id: i32) -> Result<bool> {
    Spi::connect_mut(|client| {
        let t = client.update(&format!("SELECT pg_try_advisory_lock({SYNC_LOCK}, $1)"), None, &[source_id.into()])?;
        Ok(t.first().get_one::<bool>()?.unwrap_or(false))
    })
}

/// The pid of the live `sync_tables` coordinator of the source (the holder of its sync lock).
pub fn sync_coordinator_pid(source_id: i32) -> Result<Option<i32>> {
    Ok(Spi::get_one_with_args::<i32>(
        &format!(
            "SELECT min(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                AND classid = ({SYNC_LOCK})::oid AND objid = $1::oid AND objsubid = 2"
        ),
        &[source_id.into()],
    )?)
}

/// Tables of the source, selected for replication, whose copy is due or was under way
/// (`pending`, `copying`): what a `sync_tables` coordinator still has to copy.
pub fn tables_awaiting_copy(source_id: i32) -> Result<i64> {
    Ok(Spi::get_one_with_args::<i64>(
        &format!(
            "SELECT count(*) FROM sch_chameleon.t_replica_tables \
              WHERE i_id_source = $1 AND b_replica_enabled AND enm_state IN {}",
            TableState::sql_list(TableState::AWAITING_COPY)
        ),
        &[source_id.into()],
    )?
    .unwrap_or_default())
}

/// Tables an interrupted copy left `copying` (its worker is gone: a crash, a restart,
/// `stop_replica`) are `pending` again, to be copied again whole at the next snapshot.
pub fn requeue_interrupted_copies(source_id: i32) -> Result<()> {
    run(
        &format!(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = '{}' WHERE i_id_source = $1 AND enm_state = '{}'",
            TableState::Pending,
            TableState::Copying
        ),
        &[source_id.into()],
    )
}

/// A `sync_tables` coordinator that failed: the tables it did not copy (`pending`,
/// `copying`) are `failed` with its error, so that nothing resumes a copy that cannot succeed
/// (`sync_tables` picks them again).
pub fn fail_awaiting_copies(source_id: i32, error: &str) -> Result<()> {
    run(
        &format!(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = '{}', t_last_error = $2 \
              WHERE i_id_source = $1 AND enm_state IN {}",
            TableState::Failed,
            TableState::sql_list(TableState::AWAITING_COPY)
        ),
        &[source_id.into(), error.into()],
    )
}

/// A DDL statement at `at` changed a table being copied (`pending` or `copying`): the copy
/// under way is void, the table is `pending` again with the statement's position as its point
/// (a copy must start after it; the read worker skips its rows up to there). Touches the
/// table's row only, which a copy worker writes only at its end, holding the replay lock.
pub fn requeue_after_ddl(table_id: i32, at: &BinlogPosition) -> Result<()> {
    run(
        &format!(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = '{}', t_binlog_name = $2, i_binlog_position = $3 \
              WHERE i_id_table = $1",
            TableState::Pending
        ),
        &[table_id.into(), at.file.as_str().into(), (at.pos as i64).into()],
    )
}
