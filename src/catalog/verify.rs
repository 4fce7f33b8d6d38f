//! `t_verify_runs` and `t_verify_tables`: verification runs (`verify_tables`) and their
//! per-table results; and the reads of the change log a verification needs (how far replay
//! has gone, the replayed events of one table after a source snapshot).

use super::run;
use crate::core::change::Op;
use crate::core::position::BinlogPosition;
use crate::core::verify::Tally;
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;
use pgrx::JsonB;

/// A run as its worker reads it.
pub struct VerifyRun {
    pub id: i64,
    pub source_id: i32,
    pub state: String,
    pub repair: bool,
    /// Its tables no worker has taken yet.
    pub tables: usize,
}

/// Records a run and its tables (`(table id, mysql name, pg name)` in order); returns its id.
pub fn create_verify_run(source_id: i32, repair: bool, tables: &[(i32, String, String)]) -> Result<i64> {
    let id = Spi::get_one_with_args::<i64>(
        "INSERT INTO sch_chameleon.t_verify_runs (i_id_source, b_repair) VALUES ($1, $2) RETURNING i_id_run",
        &[source_id.into(), repair.into()],
    )?
    .ok_or_else(|| ChameleonError::catalog("no verification run id returned".into()))?;
    let ids: Vec<i32> = tables.iter().map(|t| t.0).collect();
    let my: Vec<String> = tables.iter().map(|t| t.1.clone()).collect();
    let pg: Vec<String> = tables.iter().map(|t| t.2.clone()).collect();
    run(
        "INSERT INTO sch_chameleon.t_verify_tables (i_id_run, i_id_table, i_order, v_mysql_table, v_pg_table) \
         SELECT $1, t.id, t.n, t.my, t.pg FROM unnest($2::int[], $3::text[], $4::text[]) WITH ORDINALITY AS t(id, my, pg, n)",
        &[id.into(), ids.into(), my.into(), pg.into()],
    )?;
    Ok(id)
}

pub fn verify_run(run_id: i64) -> Result<VerifyRun> {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT i_id_source, enm_state, b_repair, \
                    (SELECT count(*) FROM sch_chameleon.t_verify_tables v WHERE v.i_id_run = r.i_id_run AND v.enm_state = 'queued') \
               FROM sch_chameleon.t_verify_runs r WHERE i_id_run = $1",
            None,
            &[run_id.into()],
        )?;
        if t.is_empty() {
            return Err(ChameleonError::not_found(format!("verification run {run_id}")));
        }
        let r = t.first();
        Ok(VerifyRun {
            id: run_id,
            source_id: r.get(1)?.unwrap_or_default(),
            state: r.get(2)?.unwrap_or_default(),
            repair: r.get(3)?.unwrap_or(false),
            tables: r.get::<i64>(4)?.unwrap_or(0).max(0) as usize,
        })
    })
}

/// The worker says it runs this run (its pid and start time tell a live worker from a dead one).
pub fn set_verify_worker(run_id: i64) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_runs SET enm_state = 'running', i_worker_pid = pg_backend_pid(), \
                ts_worker_start = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) \
          WHERE i_id_run = $1 AND enm_state = 'queued'",
        &[run_id.into()],
    )
}

/// The next table of a run nobody compares yet, in the run's order, now `running` under this
/// worker (its pid recorded): (table id, mysql name); None when every table is taken. The run's
/// workers claim their tables so, each once (`FOR UPDATE SKIP LOCKED`: two claims never wait
/// for each other nor take the same table).
pub fn claim_verify_table(run_id: i64) -> Result<Option<(i32, String)>> {
    Spi::connect_mut(|c| {
        let t = c.update(
            "UPDATE sch_chameleon.t_verify_tables v SET enm_state = 'running', i_worker_pid = pg_backend_pid() \
              WHERE v.i_id_run = $1 AND v.i_id_table = \
                    (SELECT q.i_id_table FROM sch_chameleon.t_verify_tables q \
                      WHERE q.i_id_run = $1 AND q.enm_state = 'queued' \
                      ORDER BY q.i_order LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING v.i_id_table, v.v_mysql_table",
            None,
            &[run_id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok(Some((r.get(1)?.unwrap_or_default(), r.get(2)?.unwrap_or_default())))
    })
}

pub fn verify_run_state(run_id: i64) -> Result<String> {
    Ok(Spi::get_one_with_args::<String>(
        "SELECT enm_state FROM sch_chameleon.t_verify_runs WHERE i_id_run = $1",
        &[run_id.into()],
    )?
    .unwrap_or_default())
}

/// A table's comparison starts (again: a repaired table is compared a second time).
pub fn verify_table_started(run_id: i64, table_id: i32, method: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_tables SET enm_state = 'running', t_method = $3, ts_started = clock_timestamp(), \
                ts_finished = NULL, i_chunks = 0, i_rows_source = 0, i_rows_destination = 0, i_missing = 0, \
                i_extra = 0, i_different = 0, jsb_sample = '[]', t_reason = NULL \
          WHERE i_id_run = $1 AND i_id_table = $2",
        &[run_id.into(), table_id.into(), method.into()],
    )
}

/// How a table was compared, as it turned out (e.g. how many chunks were equal as text).
pub fn verify_table_method(run_id: i64, table_id: i32, method: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_tables SET t_method = $3 WHERE i_id_run = $1 AND i_id_table = $2",
        &[run_id.into(), table_id.into(), method.into()],
    )
}

/// Progress of a table: what was compared so far and where.
pub struct VerifyProgress<'a> {
    pub chunks: i64,
    pub rows_source: i64,
    pub rows_destination: i64,
    pub position: Option<&'a BinlogPosition>,
    pub tally: &'a Tally,
    pub sample: serde_json::Value,
}

pub fn verify_table_progress(run_id: i64, table_id: i32, p: &VerifyProgress) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_tables SET i_chunks = $3, i_rows_source = $4, i_rows_destination = $5, \
                t_position = coalesce($6, t_position), i_missing = $7, i_extra = $8, i_different = $9, jsb_sample = $10 \
          WHERE i_id_run = $1 AND i_id_table = $2",
        &[
            run_id.into(),
            table_id.into(),
            p.chunks.into(),
            p.rows_source.into(),
            p.rows_destination.into(),
            p.position.map(|x| x.to_string()).into(),
            (p.tally.missing as i64).into(),
            (p.tally.extra as i64).into(),
            (p.tally.different as i64).into(),
            JsonB(p.sample.clone()).into(),
        ],
    )
}

/// Serialises the repairs of a source's verification runs (a repair may copy its table again
/// by `sync_tables`, and a source runs one copy at a time): a session lock, held across the
/// repair's transactions until `unlock_verify_repairs`.
pub fn lock_verify_repairs(source_id: i32) -> Result<()> {
    run("SELECT pg_advisory_lock(hashtext('pg_chameleon_rs verify repair'), $1)", &[source_id.into()])
}

pub fn unlock_verify_repairs(source_id: i32) -> Result<()> {
    run("SELECT pg_advisory_unlock(hashtext('pg_chameleon_rs verify repair'), $1)", &[source_id.into()])
}

/// A table's result: `equal`, `different`, `repaired` or `failed` (with the reason). Only
/// while the run is on: a helper that finishes a table after the run was stopped or failed
/// leaves the table as the run's end recorded it (`failed`), never `equal`.
pub fn verify_table_finished(run_id: i64, table_id: i32, state: &str, reason: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_tables SET enm_state = $3, t_reason = $4, ts_finished = clock_timestamp() \
          WHERE i_id_run = $1 AND i_id_table = $2 \
            AND EXISTS (SELECT 1 FROM sch_chameleon.t_verify_runs r \
                         WHERE r.i_id_run = $1 AND r.enm_state IN ('queued', 'running'))",
        &[run_id.into(), table_id.into(), state.into(), reason.into()],
    )
}

/// A different table being repaired: `running` again until compared after its copy.
pub fn verify_table_repairing(run_id: i64, table_id: i32, how: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_tables SET enm_state = 'running', t_reason = $3 \
          WHERE i_id_run = $1 AND i_id_table = $2",
        &[run_id.into(), table_id.into(), how.into()],
    )
}

pub fn verify_table_repaired_rows(run_id: i64, table_id: i32, rows: i64) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_tables SET i_repaired = $3 WHERE i_id_run = $1 AND i_id_table = $2",
        &[run_id.into(), table_id.into(), rows.into()],
    )
}

/// The run ends (`done`, `failed`, `stopped`); its unfinished tables become `failed` with the
/// reason, never `equal`.
pub fn finish_verify_run(run_id: i64, state: &str, error: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_verify_runs SET enm_state = $2, t_error = $3, ts_finished = clock_timestamp() \
          WHERE i_id_run = $1 AND enm_state IN ('queued', 'running')",
        &[run_id.into(), state.into(), error.into()],
    )?;
    let reason = match state {
        "stopped" => "stopped by stop_verification".to_string(),
        _ => error.unwrap_or("the verification ended before this table was compared").to_string(),
    };
    run(
        "UPDATE sch_chameleon.t_verify_tables SET enm_state = 'failed', t_reason = $2, ts_finished = clock_timestamp() \
          WHERE i_id_run = $1 AND enm_state IN ('queued', 'running')",
        &[run_id.into(), reason.into()],
    )
}

/// Records as failed the runs of a source whose worker is gone without finishing them (a
/// restart, a crash): they never read as equal.
pub fn fail_dead_verify_runs(source_id: i32) -> Result<()> {
    let dead: Vec<i64> = Spi::connect(|c| -> Result<Vec<i64>> {
        let t = c.select(
            "SELECT r.i_id_run FROM sch_chameleon.t_verify_runs r \
              WHERE r.i_id_source = $1 AND r.enm_state IN ('queued', 'running') AND r.ts_worker_start IS NOT NULL \
                AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a \
                                 WHERE a.pid = r.i_worker_pid AND a.backend_start = r.ts_worker_start)",
            None,
            &[source_id.into()],
        )?;
        let mut out = Vec::new();
        for r in t {
            out.push(r.get::<i64>(1)?.unwrap_or_default());
        }
        Ok(out)
    })?;
    for id in dead {
        finish_verify_run(
            id,
            "failed",
            Some(
                "the verification worker ended before this table was compared (server restart or crash): verify again",
            ),
        )?;
    }
    Ok(())
}

/// How far the source's read worker has stored: its read position and the last batch closed
/// with it (an open batch, a large transaction being stored in pieces, lies past the position).
pub fn stored_frontier(source_id: i32) -> Result<(Option<BinlogPosition>, i64)> {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT s.t_binlog_name, s.i_binlog_position, \
                    (SELECT coalesce(max(b.i_id_batch), 0) FROM sch_chameleon.t_replica_batch b WHERE b.i_id_source = s.i_id_source AND NOT b.b_open) \
               FROM sch_chameleon.t_sources s WHERE s.i_id_source = $1",
            None,
            &[source_id.into()],
        )?;
        let r = t.first();
        let pos = match (r.get::<String>(1)?, r.get::<i64>(2)?) {
            (Some(f), Some(p)) => Some(BinlogPosition::new(f, p as u64)),
            _ => None,
        };
        Ok((pos, r.get::<i64>(3)?.unwrap_or(0)))
    })
}

const BACKLOG_AGE: &str = "SELECT extract(epoch FROM clock_timestamp() - min(ts_created))::float8 \
    FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND NOT b_replayed AND NOT b_open AND t_xa_xid IS NULL";

/// How long the oldest batch of the source that replay has still to apply has waited (None:
/// replay is caught up). Open batches and prepared XA transactions are not waiting for replay.
pub fn replay_backlog_age(source_id: i32) -> Result<Option<std::time::Duration>> {
    let secs = Spi::get_one_with_args::<f64>(BACKLOG_AGE, &[source_id.into()])?;
    Ok(age(secs))
}

fn age(secs: Option<f64>) -> Option<std::time::Duration> {
    secs.and_then(|s| std::time::Duration::try_from_secs_f64(s.max(0.0)).ok())
}

/// `replay_backlog_age` read in the latest snapshot, inside a REPEATABLE READ transaction whose
/// own snapshot would never see replay move on (a batch replayed since it was taken still
/// looks pending): what the foreign-key checks of PostgreSQL do, `SPI_execute_snapshot`.
pub fn replay_backlog_age_now(source_id: i32) -> Result<Option<std::time::Duration>> {
    let sql = std::ffi::CString::new(BACKLOG_AGE).map_err(|e| ChameleonError::state(e.to_string()))?;
    let secs = Spi::connect(|_client| -> Result<Option<f64>> {
        // SAFETY: SPI is connected (Spi::connect) for the whole block; the plan is this
        // block's and freed in it; the one int4 argument and its null flag outlive the call;
        // the result is read before SPI_finish frees it. An error raised by PostgreSQL unwinds
        // through the caller's PgTryBuilder.
        unsafe {
            let mut types = [pg_sys::INT4OID];
            let plan = pg_sys::SPI_prepare(sql.as_ptr(), 1, types.as_mut_ptr());
            if plan.is_null() {
                let code = std::ptr::addr_of!(pg_sys::SPI_result).read();
                return Err(ChameleonError::state(format!(
                    "cannot prepare the replay backlog query (SPI error {code})"
                )));
            }
            let mut values = [pg_sys::Datum::from(source_id)];
            let nulls = [b' ' as std::ffi::c_char];
            let rc = pg_sys::SPI_execute_snapshot(
                plan,
                values.as_mut_ptr(),
                nulls.as_ptr(),
                pg_sys::GetLatestSnapshot(),
                std::ptr::null_mut(),
                true,
                false,
                1,
            );
            let table = pg_sys::SPI_tuptable;
            let out = if rc != pg_sys::SPI_OK_SELECT as i32 || table.is_null() || pg_sys::SPI_processed != 1 {
                Err(ChameleonError::state(format!("the replay backlog query failed (SPI code {rc})")))
            } else {
                let mut isnull = false;
                let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut isnull);
                Ok(if isnull { None } else { Some(f64::from_bits(d.value() as u64)) })
            };
            pg_sys::SPI_freeplan(plan);
            out
        }
    })?;
    Ok(age(secs))
}

/// Whether every batch of the source up to `batch_id` is replayed (open batches and prepared XA
/// transactions are not in the stream yet: an XA COMMIT moves its rows into a new batch).
pub fn replayed_through(source_id: i32, batch_id: i64) -> Result<bool> {
    Ok(!Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND NOT b_replayed AND NOT b_open AND i_id_batch <= $2)",
        &[source_id.into(), batch_id.into()],
    )?
    .unwrap_or(true))
}

/// The last batch id such that every batch of the source up to it is replayed, as this
/// transaction's snapshot sees it (replay applies batches in id order, each with its mark).
pub fn replayed_prefix(source_id: i32) -> Result<i64> {
    Ok(Spi::get_one_with_args::<i64>(
        "SELECT coalesce((SELECT min(i_id_batch) - 1 FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND NOT b_replayed AND NOT b_open), \
                         (SELECT max(i_id_batch) FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND NOT b_open), 0)",
        &[source_id.into()],
    )?
    .unwrap_or(0))
}

/// Batch ids and end positions of the source, `upto` and below, newest first (`limit` of them);
/// closed batches only.
pub fn batches_before(source_id: i32, upto: i64, limit: i64) -> Result<Vec<(i64, BinlogPosition)>> {
    Spi::connect(|c| {
        let t = c.select(
            "SELECT i_id_batch, t_binlog_name, i_binlog_position FROM sch_chameleon.t_replica_batch \
              WHERE i_id_source = $1 AND i_id_batch <= $2 AND NOT b_open ORDER BY i_id_batch DESC LIMIT $3",
            None,
            &[source_id.into(), upto.into(), limit.into()],
        )?;
        let mut out = Vec::new();
        for r in t {
            let id: i64 = r.get(1)?.unwrap_or_default();
            let f: String = r.get(2)?.unwrap_or_default();
            let p: i64 = r.get(3)?.unwrap_or_default();
            out.push((id, BinlogPosition::new(f, p as u64)));
        }
        Ok(out)
    })
}

/// The row events of a table in the replayed batches `after` < id <= `upto`, in stream order.
pub fn table_events(source_id: i32, table_id: i32, after: i64, upto: i64) -> Result<Vec<super::StoredEvent>> {
    super::read_log_chunks(
        "SELECT l.i_id_batch, l.i_id_event, l.i_events, l.b_events, l.t_binlog_name, l.i_binlog_position \
           FROM sch_chameleon.t_log_replica l \
           JOIN sch_chameleon.t_replica_batch b ON b.i_id_batch = l.i_id_batch AND b.i_log_slot = l.i_log_slot \
          WHERE b.i_id_source = $1 AND b.b_replayed AND $2 = ANY (l.i_tables) \
            AND l.i_id_batch > $3 AND l.i_id_batch <= $4 \
          ORDER BY l.i_id_batch, l.i_id_event",
        &[source_id.into(), table_id.into(), after.into(), upto.into()],
        |e| e.table_id == table_id && e.op != Op::Ddl,
    )
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;

    #[pg_test]
    fn the_backlog_age_read_now_is_the_one_read_in_the_transaction_snapshot() {
        let id = Spi::get_one::<i32>("SELECT chameleon.add_source('age', 'mysql://u:p@h:1', '{\"shop\":\"shop\"}')")
            .unwrap()
            .unwrap();
        assert_eq!(replay_backlog_age(id).unwrap(), None);
        assert_eq!(replay_backlog_age_now(id).unwrap(), None);
        Spi::run(&format!(
            "INSERT INTO sch_chameleon.t_replica_batch (i_id_source, t_binlog_name, i_binlog_position, i_events, \
             i_transactions, ts_created) VALUES ({id}, 'b.000001', 4, 1, 1, clock_timestamp() - interval '90 seconds')"
        ))
        .unwrap();
        // the test's own transaction: its latest snapshot sees its own insert too
        let in_snapshot = replay_backlog_age(id).unwrap().unwrap();
        let now = replay_backlog_age_now(id).unwrap().unwrap();
        assert!(in_snapshot.as_secs() >= 90 && now.as_secs() >= 90, "{in_snapshot:?} {now:?}");
        assert!(now >= in_snapshot && now.as_secs() < 120, "{in_snapshot:?} {now:?}");
    }

    #[pg_test]
    fn a_run_s_workers_claim_each_table_once_in_order_and_a_table_finished_after_the_run_stays_failed() {
        let id = Spi::get_one::<i32>("SELECT chameleon.add_source('claims', 'mysql://u:p@h:1', '{\"shop\":\"shop\"}')")
            .unwrap()
            .unwrap();
        let names = |n: &str| (n.to_string(), format!("shop.{n}"), format!("shop.{n}"));
        let (a, b, c) = (names("a"), names("b"), names("c"));
        let run = create_verify_run(id, false, &[(7, a.1, a.2), (3, b.1, b.2), (5, c.1, c.2)]).unwrap();
        assert_eq!(verify_run(run).unwrap().tables, 3);
        assert_eq!(claim_verify_table(run).unwrap(), Some((7, "shop.a".to_string())));
        assert_eq!(claim_verify_table(run).unwrap(), Some((3, "shop.b".to_string())));
        assert_eq!(verify_run(run).unwrap().tables, 1);
        let pid = Spi::get_one_with_args::<bool>(
            "SELECT bool_and(i_worker_pid = pg_backend_pid()) FROM sch_chameleon.t_verify_tables \
              WHERE i_id_run = $1 AND enm_state = 'running'",
            &[run.into()],
        );
        assert_eq!(pid.unwrap(), Some(true));
        verify_table_finished(run, 7, "equal", None).unwrap();
        // the run stopped meanwhile: the table still being compared and the one nobody took
        // end failed, and a late result does not turn the first into `equal`
        finish_verify_run(run, "stopped", None).unwrap();
        verify_table_finished(run, 3, "equal", None).unwrap();
        assert_eq!(claim_verify_table(run).unwrap(), None);
        let states = Spi::get_one_with_args::<String>(
            "SELECT string_agg(i_id_table || ' ' || enm_state, ', ' ORDER BY i_order) FROM sch_chameleon.t_verify_tables \
              WHERE i_id_run = $1",
            &[run.into()],
        );
        assert_eq!(states.unwrap().as_deref(), Some("7 equal, 3 failed, 5 failed"));
    }
}
