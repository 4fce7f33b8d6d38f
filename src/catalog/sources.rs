//! `t_sources`: one row per MySQL source — its URL, mappings and options, status, read
//! position, worker pids, table generations — and the advisory locks that serialise changes
//! of a source's state.

use super::{check_catalogue_version, parse_state, point, run, INT4_OID};
use crate::core::mapping::SchemaMappings;
use crate::core::options::SourceOptions;
use crate::core::position::BinlogPosition;
use crate::core::state::SourceStatus;
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

#[derive(Clone)]
pub struct SourceRow {
    pub id: i32,
    pub name: String,
    pub url: String,
    pub url_safe: String,
    pub mappings: Value,
    pub options: Value,
    pub status: SourceStatus,
    pub want_running: bool,
    pub position: Option<BinlogPosition>,
    pub gtid: Option<String>,
    /// The init or read worker.
    pub worker_pid: Option<i32>,
    pub replay_pid: Option<i32>,
    pub last_error: Option<String>,
    /// Bumped whenever the set or state of the source's tables changes under running workers
    /// (`sync_tables`, a table copy finishing); the workers reload their table caches.
    pub table_generation: i64,
    /// The generation the read worker's reader follows.
    pub reader_generation: i64,
    /// Set when the source was pointed at another server without `gtid_enable`: the redacted
    /// URL of the server its stored file position belongs to (`start_replica` then needs a
    /// `start_position` on the new server).
    pub position_of: Option<String>,
}

/// Written with the redacted URL in place of the URL (which may hold a password): a row
/// formatted into a log line or an error never shows it.
impl std::fmt::Debug for SourceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url_safe)
            .field("mappings", &self.mappings)
            .field("options", &self.options)
            .field("status", &self.status)
            .field("want_running", &self.want_running)
            .field("position", &self.position)
            .field("gtid", &self.gtid)
            .field("worker_pid", &self.worker_pid)
            .field("replay_pid", &self.replay_pid)
            .field("last_error", &self.last_error)
            .field("table_generation", &self.table_generation)
            .field("reader_generation", &self.reader_generation)
            .field("position_of", &self.position_of)
            .finish()
    }
}

impl SourceRow {
    pub fn options(&self) -> Result<SourceOptions> {
        SourceOptions::from_json(&self.options)
            .map_err(|e| ChameleonError::from(e).context(format!("source \"{}\"", self.name)))
    }
    pub fn mappings(&self) -> Result<SchemaMappings> {
        SchemaMappings::from_json(&self.mappings)
            .map_err(|e| ChameleonError::from(e).context(format!("source \"{}\"", self.name)))
    }
}

const SOURCE_COLS: &str = "i_id_source, t_source, t_mysql_url, t_mysql_url_safe, jsb_schema_mappings, \
     jsb_options, enm_status, b_want_running, t_binlog_name, i_binlog_position, t_gtid, i_worker_pid, i_replay_pid, t_last_error, \
     (to_jsonb(s) ->> 'i_table_generation')::bigint, (to_jsonb(s) ->> 'i_reader_generation')::bigint, \
     to_jsonb(s) ->> 't_position_of'";
// (the generations and t_position_of through to_jsonb: a catalogue older than 0.4.0, before ALTER EXTENSION
// UPDATE, can still be read by this library)

fn read_sources(where_clause: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<Vec<SourceRow>> {
    Spi::connect(|client| {
        let sql = format!("SELECT {SOURCE_COLS} FROM sch_chameleon.t_sources s {where_clause} ORDER BY i_id_source");
        let table = client.select(sql.as_str(), None, args)?;
        let mut out = Vec::new();
        for row in table {
            let file: Option<String> = row.get(9)?;
            let pos: Option<i64> = row.get(10)?;
            let name: String = row.get(2)?.unwrap_or_default();
            let not_null = |json: Option<JsonB>, column: &str| {
                json.map(|j| j.0).ok_or_else(|| {
                    ChameleonError::catalog(format!("the catalogue's {column} of source \"{name}\" is NULL"))
                })
            };
            out.push(SourceRow {
                id: row.get(1)?.unwrap_or_default(),
                url: row.get(3)?.unwrap_or_default(),
                url_safe: row.get(4)?.unwrap_or_default(),
                mappings: not_null(row.get::<JsonB>(5)?, "jsb_schema_mappings")?,
                options: not_null(row.get::<JsonB>(6)?, "jsb_options")?,
                name,
                status: parse_state(row.get::<String>(7)?, SourceStatus::parse)?,
                want_running: row.get(8)?.unwrap_or(false),
                position: point(file, pos),
                gtid: row.get(11)?,
                worker_pid: row.get(12)?,
                replay_pid: row.get(13)?,
                last_error: row.get(14)?,
                table_generation: row.get(15)?.unwrap_or_default(),
                reader_generation: row.get(16)?.unwrap_or_default(),
                position_of: row.get(17)?,
            });
        }
        Ok(out)
    })
}

pub fn all_sources() -> Result<Vec<SourceRow>> {
    read_sources("", &[])
}

pub fn source_by_name(name: &str) -> Result<SourceRow> {
    check_catalogue_version()?;
    read_sources("WHERE t_source = $1", &[name.into()])?
        .into_iter()
        .next()
        .ok_or_else(|| ChameleonError::not_found(format!("source \"{name}\" does not exist")))
}

pub fn source_by_id(id: i32) -> Result<SourceRow> {
    read_sources("WHERE i_id_source = $1", &[id.into()])?
        .into_iter()
        .next()
        .ok_or_else(|| ChameleonError::not_found(format!("source id {id} does not exist")))
}

/// Serialises changes of a source's desired state (start, stop, drop, init, enable) with
/// the launcher, without locking the source row the worker writes to.
pub fn lock_source_control(id: i32) -> Result<()> {
    run("SELECT pg_advisory_xact_lock(hashtext('pg_chameleon_rs'), $1)", &[id.into()])
}

/// The launcher's non-blocking form of `lock_source_control`.
pub fn try_lock_source_control(id: i32) -> Result<bool> {
    Spi::connect_mut(|client| {
        let t =
            client.update("SELECT pg_try_advisory_xact_lock(hashtext('pg_chameleon_rs'), $1)", None, &[id.into()])?;
        Ok(t.first().get_one::<bool>()?.unwrap_or(false))
    })
}

/// Locks the source row for the rest of the transaction (serialises state changes).
pub fn lock_source(id: i32) -> Result<()> {
    run("SELECT 1 FROM sch_chameleon.t_sources WHERE i_id_source = $1 FOR UPDATE", &[id.into()])
}

/// Serialises replay with a table sync's catch-up: each replayed batch holds it shared, the
/// copy worker finishing a table of a running source holds it exclusively.
pub fn replay_lock(id: i32, exclusive: bool) -> Result<()> {
    let sql = if exclusive {
        "SELECT pg_advisory_xact_lock(hashtext('pg_chameleon_rs replay'), $1)"
    } else {
        "SELECT pg_advisory_xact_lock_shared(hashtext('pg_chameleon_rs replay'), $1)"
    };
    super::run_kept(sql, &[INT4_OID], &[id.into()], |_| Ok(()))
}

pub fn bump_table_generation(id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET i_table_generation = i_table_generation + 1 WHERE i_id_source = $1",
        &[id.into()],
    )
}

/// Read by replay for every batch.
pub fn table_generation(id: i32) -> Result<i64> {
    super::run_kept(
        "SELECT i_table_generation FROM sch_chameleon.t_sources WHERE i_id_source = $1",
        &[INT4_OID],
        &[id.into()],
        |t| Ok(if t.is_empty() { 0 } else { t.first().get::<i64>(1)?.unwrap_or_default() }),
    )
}

pub fn set_reader_generation(id: i32, generation: i64) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET i_reader_generation = $2 WHERE i_id_source = $1",
        &[id.into(), generation.into()],
    )
}

pub fn insert_source(name: &str, url: &str, url_safe: &str, mappings: &Value, options: &Value) -> Result<i32> {
    Spi::connect_mut(|client| {
        let t = client.update(
            "INSERT INTO sch_chameleon.t_sources (t_source, t_mysql_url, t_mysql_url_safe, jsb_schema_mappings, jsb_options) \
             VALUES ($1, $2, $3, $4, $5) RETURNING i_id_source",
            None,
            &[name.into(), url.into(), url_safe.into(), JsonB(mappings.clone()).into(), JsonB(options.clone()).into()],
        )?;
        Ok(t.first().get_one::<i32>()?.unwrap_or_default())
    })
}

pub fn update_options(id: i32, options: &Value) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET jsb_options = $2 WHERE i_id_source = $1",
        &[id.into(), JsonB(options.clone()).into()],
    )
}

pub fn update_mappings(id: i32, mappings: &Value) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET jsb_schema_mappings = $2 WHERE i_id_source = $1",
        &[id.into(), JsonB(mappings.clone()).into()],
    )
}

pub fn delete_source(id: i32) -> Result<()> {
    run("DELETE FROM sch_chameleon.t_sources WHERE i_id_source = $1", &[id.into()])
}

pub fn set_status(id: i32, status: SourceStatus) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET enm_status = $2 WHERE i_id_source = $1",
        &[id.into(), status.as_str().into()],
    )
}

/// Records an error on the source; with `status`, also changes the status.
pub fn set_source_error(id: i32, status: Option<SourceStatus>, message: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET enm_status = coalesce($2, enm_status), t_last_error = $3, \
         ts_last_error = clock_timestamp() WHERE i_id_source = $1",
        &[id.into(), status.map(SourceStatus::as_str).into(), message.into()],
    )
}

pub fn clear_source_error(id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET t_last_error = NULL, ts_last_error = NULL WHERE i_id_source = $1",
        &[id.into()],
    )
}

pub fn set_want_running(id: i32, want: bool) -> Result<()> {
    run("UPDATE sch_chameleon.t_sources SET b_want_running = $2 WHERE i_id_source = $1", &[id.into(), want.into()])
}

pub fn set_worker_pid(id: i32, pid: Option<i32>) -> Result<()> {
    run("UPDATE sch_chameleon.t_sources SET i_worker_pid = $2 WHERE i_id_source = $1", &[id.into(), pid.into()])
}

pub fn set_replay_pid(id: i32, pid: Option<i32>) -> Result<()> {
    run("UPDATE sch_chameleon.t_sources SET i_replay_pid = $2 WHERE i_id_source = $1", &[id.into(), pid.into()])
}

/// Sets the read position (after init, or with a batch).
pub fn set_position(id: i32, pos: &BinlogPosition, gtid: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET t_binlog_name = $2, i_binlog_position = $3, t_gtid = coalesce($4, t_gtid) \
         WHERE i_id_source = $1",
        &[id.into(), pos.file.as_str().into(), (pos.pos as i64).into(), gtid.into()],
    )
}

pub fn mark_initialised(id: i32, pos: &BinlogPosition, gtid: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET enm_status = $5, t_binlog_name = $2, i_binlog_position = $3, \
         t_gtid = $4, t_snapshot_gtid = $4, ts_initialised = clock_timestamp(), t_last_error = NULL WHERE i_id_source = $1",
        &[
            id.into(),
            pos.file.as_str().into(),
            (pos.pos as i64).into(),
            gtid.into(),
            SourceStatus::Initialised.as_str().into(),
        ],
    )?;
    // a fresh copy makes every stored change obsolete
    run("DELETE FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1", &[id.into()])?;
    run("DELETE FROM sch_chameleon.t_last_replayed WHERE i_id_source = $1", &[id.into()])?;
    run("DELETE FROM sch_chameleon.t_last_received WHERE i_id_source = $1", &[id.into()])
}

/// Source time up to which everything was received: an event time, or now on a heartbeat.
pub fn set_last_received(id: i32, source_time: Option<i64>) -> Result<()> {
    run(
        "INSERT INTO sch_chameleon.t_last_received (i_id_source, ts_last_received) \
         VALUES ($1, coalesce(to_timestamp($2), clock_timestamp())) \
         ON CONFLICT (i_id_source) DO UPDATE SET ts_last_received = EXCLUDED.ts_last_received, ts_written = clock_timestamp()",
        &[id.into(), source_time.map(|t| t as f64).into()],
    )
}

/// Counts a DDL statement of the source: applied, or without meaning for the replica.
pub fn count_ddl(source_id: i32, applied: bool) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET i_ddl_applied = i_ddl_applied + $2::int, i_ddl_skipped = i_ddl_skipped + (NOT $2)::int \
         WHERE i_id_source = $1",
        &[source_id.into(), applied.into()],
    )
}

/// Where replication starts when the DBA gives the position: a file and offset, a GTID
/// position, or both. The stored changes of the old position are obsolete.
pub fn set_start_position(id: i32, pos: Option<&BinlogPosition>, gtid: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET enm_status = $5, t_binlog_name = $2, i_binlog_position = $3, \
         t_gtid = $4, ts_initialised = coalesce(ts_initialised, clock_timestamp()), t_last_error = NULL, \
         t_position_of = NULL WHERE i_id_source = $1",
        &[
            id.into(),
            pos.map(|p| p.file.as_str()).into(),
            pos.map(|p| p.pos as i64).into(),
            gtid.into(),
            SourceStatus::Initialised.as_str().into(),
        ],
    )?;
    run("DELETE FROM sch_chameleon.t_last_replayed WHERE i_id_source = $1", &[id.into()])?;
    run("DELETE FROM sch_chameleon.t_last_received WHERE i_id_source = $1", &[id.into()])
}

/// Points the source at another URL (`alter_source(mysql_url)`). `server_changed`: another
/// host or port; the batches stored so far are then marked as read from earlier servers, and
/// `position_of` (without `gtid_enable`) records whose file position is stored.
pub fn point_at(id: i32, url: &str, url_safe: &str, server_changed: bool, position_of: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET t_mysql_url = $2, t_mysql_url_safe = $3, \
         i_moved_after_batch = CASE WHEN $4 THEN (SELECT max(i_id_batch) FROM sch_chameleon.t_replica_batch b \
                                                   WHERE b.i_id_source = $1) ELSE i_moved_after_batch END, \
         t_position_of = CASE WHEN $4 THEN coalesce(t_position_of, $5) ELSE t_position_of END \
         WHERE i_id_source = $1",
        &[id.into(), url.into(), url_safe.into(), server_changed.into(), position_of.into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_row_formatted_never_shows_the_password() {
        let row = SourceRow {
            id: 1,
            name: "src".into(),
            url: "mysql://repl:s3cret-pw@db.example:3306".into(),
            url_safe: "mysql://repl:***@db.example:3306".into(),
            mappings: Value::Null,
            options: Value::Null,
            status: SourceStatus::Stopped,
            want_running: false,
            position: None,
            gtid: None,
            worker_pid: None,
            replay_pid: None,
            last_error: None,
            table_generation: 0,
            reader_generation: 0,
            position_of: None,
        };
        let shown = format!("{row:?} {row:#?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("mysql://repl:***@db.example:3306"), "{shown}");
    }
}
