//! Reads and writes of the `sch_chameleon` catalogue through SPI. Every SQL statement the
//! extension runs against its own catalogue lives here, so the tables' shape is known in one
//! place. Runs in whatever transaction the caller (SQL function or worker) has open.

use crate::core::ddl::TableModel;
use crate::core::mapping::SchemaMappings;
use crate::core::options::SourceOptions;
use crate::core::position::BinlogPosition;
use crate::core::schema::{ColumnExtra, ForeignKeyDef, IndexDef};
use crate::core::types::{map_column, MappedType, MySqlColumn, ZeroDates};
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;
use pgrx::{JsonB, PgBuiltInOids};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct SourceRow {
    pub id: i32,
    pub name: String,
    pub url: String,
    pub url_safe: String,
    pub mappings: Value,
    pub options: Value,
    pub status: String,
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
     (to_jsonb(s) ->> 'i_table_generation')::bigint, (to_jsonb(s) ->> 'i_reader_generation')::bigint";
// (the generations through to_jsonb: a catalogue older than 0.4.0, before ALTER EXTENSION
// UPDATE, can still be read by this library)

fn read_sources(where_clause: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<Vec<SourceRow>> {
    Spi::connect(|client| {
        let sql = format!("SELECT {SOURCE_COLS} FROM sch_chameleon.t_sources s {where_clause} ORDER BY i_id_source");
        let table = client.select(sql.as_str(), None, args)?;
        let mut out = Vec::new();
        for row in table {
            let file: Option<String> = row.get(9)?;
            let pos: Option<i64> = row.get(10)?;
            out.push(SourceRow {
                id: row.get(1)?.unwrap_or_default(),
                name: row.get(2)?.unwrap_or_default(),
                url: row.get(3)?.unwrap_or_default(),
                url_safe: row.get(4)?.unwrap_or_default(),
                mappings: row.get::<JsonB>(5)?.map(|j| j.0).unwrap_or(Value::Null),
                options: row.get::<JsonB>(6)?.map(|j| j.0).unwrap_or(json!({})),
                status: row.get(7)?.unwrap_or_default(),
                want_running: row.get(8)?.unwrap_or(false),
                position: point(file, pos),
                gtid: row.get(11)?,
                worker_pid: row.get(12)?,
                replay_pid: row.get(13)?,
                last_error: row.get(14)?,
                table_generation: row.get(15)?.unwrap_or_default(),
                reader_generation: row.get(16)?.unwrap_or_default(),
            });
        }
        Ok(out)
    })
}

pub fn all_sources() -> Result<Vec<SourceRow>> {
    read_sources("", &[])
}

/// The library and its catalogue must be the same version: after new binaries are
/// installed, `ALTER EXTENSION pg_chameleon_rs UPDATE` brings the catalogue up to them.
pub fn check_catalogue_version() -> Result<()> {
    let catalogue = Spi::get_one::<String>("SELECT t_version FROM sch_chameleon.v_version")?.unwrap_or_default();
    let library = env!("CARGO_PKG_VERSION");
    if catalogue != library {
        return Err(ChameleonError::state(format!(
            "the pg_chameleon_rs catalogue of this database is version {catalogue} but the installed library is {library}"
        ))
        .with_hint("run ALTER EXTENSION pg_chameleon_rs UPDATE"));
    }
    Ok(())
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

// ---- the log slots (partitions of t_log_replica) and their maintenance ----------------------

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
/// batches and row events removed, or None when the slot must be kept.
pub fn empty_log_slot(slot: i16, retention: &[(i32, f64)]) -> Result<Option<(i64, i64)>> {
    let partition = format!("sch_chameleon.t_log_replica_{slot}");
    execute(&format!("LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE NOWAIT"))?;
    let ids: Vec<i32> = retention.iter().map(|r| r.0).collect();
    let secs: Vec<f64> = retention.iter().map(|r| r.1).collect();
    let (batches, events, removable) = Spi::connect(|client| -> Result<(i64, i64, bool)> {
        let t = client.select(
            "SELECT count(*), coalesce(sum(b.i_events), 0)::bigint, \
                    coalesce(bool_and(b.b_replayed AND b.ts_replayed <= now() - make_interval(secs => r.secs) \
                        AND NOT EXISTS (SELECT 1 FROM sch_chameleon.t_replica_tables t \
                                         WHERE t.i_id_source = b.i_id_source AND t.enm_state IN ('pending', 'copying'))), false) \
               FROM sch_chameleon.t_replica_batch b \
               LEFT JOIN unnest($2::int[], $3::float8[]) AS r(src, secs) ON r.src = b.i_id_source \
              WHERE b.i_log_slot = $1",
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

/// Serialises replay with a table sync's catch-up: each replayed batch holds it shared, the
/// copy worker finishing a table of a running source holds it exclusively.
pub fn replay_lock(id: i32, exclusive: bool) -> Result<()> {
    let f = if exclusive { "pg_advisory_xact_lock" } else { "pg_advisory_xact_lock_shared" };
    run(&format!("SELECT {f}(hashtext('pg_chameleon_rs replay'), $1)"), &[id.into()])
}

pub fn bump_table_generation(id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET i_table_generation = i_table_generation + 1 WHERE i_id_source = $1",
        &[id.into()],
    )
}

pub fn table_generation(id: i32) -> Result<i64> {
    Ok(Spi::get_one_with_args::<i64>(
        "SELECT i_table_generation FROM sch_chameleon.t_sources WHERE i_id_source = $1",
        &[id.into()],
    )?
    .unwrap_or_default())
}

pub fn set_reader_generation(id: i32, generation: i64) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET i_reader_generation = $2 WHERE i_id_source = $1",
        &[id.into(), generation.into()],
    )
}

/// Sets tables of the source to be copied again: those named (`schema.table`, MySQL names),
/// or every one not replicating (disabled, failed, or pending after an interrupted sync). Returns the names; an unknown name is an error.
/// Tables the source's options leave out (`NOT_SELECTED`) are refused by name and skipped
/// otherwise, unless `selected_again` (alter_source bringing them back).
pub fn mark_tables_for_sync(id: i32, names: Option<&[String]>, selected_again: bool) -> Result<Vec<String>> {
    let known: Vec<(i32, String, String)> = Spi::connect(|client| {
        let t = client.select(
            "SELECT i_id_table, v_mysql_schema || '.' || v_mysql_table, \
                    CASE WHEN t_last_error IS NOT DISTINCT FROM $2 AND NOT $3 THEN 'left out' \
                         WHEN cardinality(v_replica_key) > 0 THEN enm_state ELSE 'keyless' END \
               FROM sch_chameleon.t_replica_tables WHERE i_id_source = $1 ORDER BY 2",
            None,
            &[id.into(), NOT_SELECTED.into(), selected_again.into()],
        )?;
        let mut out = Vec::new();
        for r in t {
            out.push((r.get(1)?.unwrap_or_default(), r.get(2)?.unwrap_or_default(), r.get(3)?.unwrap_or_default()));
        }
        Ok::<_, ChameleonError>(out)
    })?;
    let chosen: Vec<&(i32, String, String)> = match names {
        Some(names) => {
            let unknown: Vec<&String> = names.iter().filter(|n| !known.iter().any(|k| &k.1 == *n)).collect();
            if !unknown.is_empty() {
                return Err(ChameleonError::not_found(format!(
                    "no table {} in this source (names are the MySQL schema.table, as in chameleon.tables.mysql_table)",
                    unknown.iter().map(|u| format!("\"{u}\"")).collect::<Vec<_>>().join(", ")
                )));
            }
            if let Some(out) = known.iter().find(|k| names.contains(&k.1) && k.2 == "left out") {
                return Err(ChameleonError::state(format!(
                    "table \"{}\" is left out by the source's schema_mappings, limit_tables or skip_tables",
                    out.1
                ))
                .with_hint("change them with alter_source"));
            }
            known.iter().filter(|k| names.contains(&k.1)).collect()
        }
        // disabled by a replay error, failed, or left behind by a sync whose copy died (a table
        // without a replica key is never replicated: copying it again would change nothing)
        None => {
            known.iter().filter(|k| matches!(k.2.as_str(), "disabled" | "failed" | "pending" | "copying")).collect()
        }
    };
    for (tid, _, _) in &chosen {
        run(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = 'pending', b_replica_enabled = true, t_last_error = NULL \
              WHERE i_id_table = $1",
            &[(*tid).into()],
        )?;
    }
    bump_table_generation(id)?;
    Ok(chosen.iter().map(|k| k.1.clone()).collect())
}

/// A binlog position stored as (file, offset) columns.
fn point(file: Option<String>, pos: Option<i64>) -> Option<BinlogPosition> {
    Some(BinlogPosition::new(file?, pos? as u64))
}

fn run(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<()> {
    Spi::connect_mut(|client| {
        client.update(sql, None, args)?;
        Ok(())
    })
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

pub fn set_status(id: i32, status: &str) -> Result<()> {
    run("UPDATE sch_chameleon.t_sources SET enm_status = $2 WHERE i_id_source = $1", &[id.into(), status.into()])
}

/// Records an error on the source; with `status`, also changes the status.
pub fn set_source_error(id: i32, status: Option<&str>, message: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET enm_status = coalesce($2, enm_status), t_last_error = $3, \
         ts_last_error = clock_timestamp() WHERE i_id_source = $1",
        &[id.into(), status.into(), message.into()],
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

/// Row events stored and not yet replayed.
pub fn pending_events(id: i32) -> Result<i64> {
    Spi::connect(|c| -> Result<i64> {
        let t = c.select(
            "SELECT coalesce(sum(i_events), 0)::bigint FROM sch_chameleon.t_replica_batch WHERE i_id_source = $1 AND NOT b_replayed",
            None,
            &[id.into()],
        )?;
        Ok(t.first().get_one::<i64>()?.unwrap_or(0))
    })
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
        "UPDATE sch_chameleon.t_sources SET enm_status = 'initialised', t_binlog_name = $2, i_binlog_position = $3, \
         t_gtid = $4, t_snapshot_gtid = $4, ts_initialised = clock_timestamp(), t_last_error = NULL WHERE i_id_source = $1",
        &[id.into(), pos.file.as_str().into(), (pos.pos as i64).into(), gtid.into()],
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

/// A replicated table with its MySQL columns and their mapping.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub id: i32,
    pub mysql_schema: String,
    pub mysql_table: String,
    pub pg_schema: String,
    pub pg_table: String,
    pub columns: Vec<MySqlColumn>,
    pub mapped: Vec<MappedType>,
    pub key: Vec<String>,
    pub state: String,
    pub enabled: bool,
    pub point: Option<BinlogPosition>,
    /// Rows of this table kept in discarded_rows: the destination knowingly lacks them.
    pub rows_discarded: i64,
    pub last_error: Option<String>,
    /// Every index, PRIMARY included (empty for tables copied before 0.5.0).
    pub indexes: Vec<IndexDef>,
    /// Defaults, EXTRA and comments, parallel to `columns` (may be empty: none recorded).
    pub extras: Vec<ColumnExtra>,
}

impl TableRow {
    /// The table as DDL replication sees it. Tables copied before indexes were recorded get
    /// their replica key as their primary key.
    pub fn model(&self, foreign_keys: Vec<ForeignKeyDef>) -> TableModel {
        let mut indexes = self.indexes.clone();
        if indexes.is_empty() && !self.key.is_empty() {
            indexes.push(IndexDef {
                name: "PRIMARY".into(),
                unique: true,
                columns: self.key.clone(),
                kind: "BTREE".into(),
                prefix: false,
            });
        }
        let mut extras = self.extras.clone();
        extras.resize(self.columns.len(), ColumnExtra::default());
        TableModel {
            mysql_schema: self.mysql_schema.clone(),
            mysql_table: self.mysql_table.clone(),
            pg_schema: self.pg_schema.clone(),
            pg_table: self.pg_table.clone(),
            columns: self.columns.clone(),
            extras,
            indexes,
            key: self.key.clone(),
            foreign_keys,
        }
    }

    pub fn mysql_name(&self) -> String {
        format!("{}.{}", self.mysql_schema, self.mysql_table)
    }
    /// Indexes of the replica key columns in column order.
    pub fn key_indexes(&self) -> Vec<usize> {
        self.key.iter().filter_map(|k| self.columns.iter().position(|c| &c.name == k)).collect()
    }
}

pub fn columns_to_json(cols: &[MySqlColumn], pg_schema: &str, pg_table: &str) -> Value {
    Value::Array(
        cols.iter()
            .map(|c| {
                json!({
                    "name": c.name, "data_type": c.data_type, "column_type": c.column_type,
                    "nullable": c.nullable, "char_max_len": c.char_max_len,
                    "numeric_precision": c.numeric_precision, "numeric_scale": c.numeric_scale,
                    "datetime_precision": c.datetime_precision,
                    "pg_override": c.pg_override,
                    "zero_dates": c.zero_dates.as_str(),
                    "postgis": c.postgis,
                    "charset": c.charset,
                    "pg_type": map_column(c, pg_schema, pg_table).map(|m| m.pg_type).ok(),
                })
            })
            .collect(),
    )
}

pub fn indexes_to_json(indexes: &[IndexDef]) -> Value {
    Value::Array(
        indexes
            .iter()
            .map(|i| json!({"name": i.name, "unique": i.unique, "columns": i.columns, "kind": i.kind, "prefix": i.prefix}))
            .collect(),
    )
}

fn indexes_from_json(v: &Value) -> Vec<IndexDef> {
    let s = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let b = |c: &Value, k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|i| IndexDef {
                    name: s(i, "name"),
                    unique: b(i, "unique"),
                    columns: i
                        .get("columns")
                        .and_then(Value::as_array)
                        .map(|c| c.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default(),
                    kind: s(i, "kind"),
                    prefix: b(i, "prefix"),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn extras_to_json(extras: &[ColumnExtra]) -> Value {
    Value::Array(extras.iter().map(|x| json!({"default": x.default, "extra": x.extra, "comment": x.comment})).collect())
}

fn extras_from_json(v: &Value) -> Vec<ColumnExtra> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| ColumnExtra {
                    default: x.get("default").and_then(Value::as_str).map(str::to_string),
                    extra: x.get("extra").and_then(Value::as_str).unwrap_or_default().to_string(),
                    comment: x.get("comment").and_then(Value::as_str).unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn columns_from_json(v: &Value) -> Vec<MySqlColumn> {
    let s = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let n = |c: &Value, k: &str| c.get(k).and_then(Value::as_u64);
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|c| MySqlColumn {
                    name: s(c, "name"),
                    data_type: s(c, "data_type"),
                    column_type: s(c, "column_type"),
                    nullable: c.get("nullable").and_then(Value::as_bool).unwrap_or(true),
                    char_max_len: n(c, "char_max_len"),
                    numeric_precision: n(c, "numeric_precision"),
                    numeric_scale: n(c, "numeric_scale"),
                    datetime_precision: n(c, "datetime_precision"),
                    pg_override: c.get("pg_override").and_then(Value::as_str).map(str::to_string),
                    zero_dates: c
                        .get("zero_dates")
                        .and_then(Value::as_str)
                        .and_then(ZeroDates::parse)
                        .unwrap_or_default(),
                    postgis: c.get("postgis").and_then(Value::as_str).map(str::to_string),
                    charset: c.get("charset").and_then(Value::as_str).map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn tables_for_source(source_id: i32) -> Result<Vec<TableRow>> {
    select_tables("i_id_source = $1", source_id)
}

/// One table, as registered (the definition its PostgreSQL table was created from).
pub fn table_by_id(table_id: i32) -> Result<TableRow> {
    select_tables("i_id_table = $1", table_id)?
        .pop()
        .ok_or_else(|| ChameleonError::not_found(format!("replicated table id {table_id}")))
}

fn select_tables(filter: &str, id: i32) -> Result<Vec<TableRow>> {
    Spi::connect(|client| {
        let t = client.select(
            &format!(
                "SELECT i_id_table, v_mysql_schema, v_mysql_table, v_pg_schema, v_pg_table, jsb_columns, v_replica_key, \
                 enm_state, b_replica_enabled, t_binlog_name, i_binlog_position, i_rows_discarded, t_last_error, \
                 jsb_indexes, jsb_extras \
                 FROM sch_chameleon.t_replica_tables WHERE {filter} ORDER BY i_id_table"
            ),
            None,
            &[id.into()],
        )?;
        let mut out = Vec::new();
        for row in t {
            let columns = columns_from_json(&row.get::<JsonB>(6)?.map(|j| j.0).unwrap_or(Value::Null));
            let mysql_table: String = row.get(3)?.unwrap_or_default();
            let pg_schema: String = row.get(4)?.unwrap_or_default();
            let pg_table: String = row.get(5)?.unwrap_or_default();
            let mapped = columns
                .iter()
                .map(|c| map_column(c, &pg_schema, &pg_table))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| ChameleonError::from(e).context(format!("table {mysql_table}")))?;
            let file: Option<String> = row.get(10)?;
            let pos: Option<i64> = row.get(11)?;
            out.push(TableRow {
                id: row.get(1)?.unwrap_or_default(),
                mysql_schema: row.get(2)?.unwrap_or_default(),
                mysql_table,
                pg_schema,
                pg_table,
                columns,
                mapped,
                key: row.get::<Vec<String>>(7)?.unwrap_or_default(),
                state: row.get(8)?.unwrap_or_default(),
                enabled: row.get(9)?.unwrap_or(false),
                point: point(file, pos),
                rows_discarded: row.get(12)?.unwrap_or(0),
                last_error: row.get(13)?,
                indexes: indexes_from_json(&row.get::<JsonB>(14)?.map(|j| j.0).unwrap_or(Value::Null)),
                extras: extras_from_json(&row.get::<JsonB>(15)?.map(|j| j.0).unwrap_or(Value::Null)),
            });
        }
        Ok(out)
    })
}

/// The PostgreSQL (schema, table) of every table of the source.
pub fn tables_for_source_names(source_id: i32) -> Result<Vec<(String, String)>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT v_pg_schema, v_pg_table FROM sch_chameleon.t_replica_tables WHERE i_id_source = $1",
            None,
            &[source_id.into()],
        )?;
        let mut out = Vec::new();
        for row in t {
            out.push((row.get::<String>(1)?.unwrap_or_default(), row.get::<String>(2)?.unwrap_or_default()));
        }
        Ok(out)
    })
}

/// Registers a table as discovery read it: to copy unless it cannot be, replicated unless it
/// has a problem (shown in last_error). Returns its id.
pub fn register_definition(source_id: i32, t: &crate::core::discovery::TableDefinition) -> Result<i32> {
    register_table(
        source_id,
        &t.mysql_schema,
        &t.mysql_table,
        &t.pg_schema,
        &t.columns,
        &t.key,
        &t.indexes,
        &t.extras,
        t.estimate,
        t.copyable(),
        t.problem_text().as_deref(),
    )
}

/// Registers (or re-registers, for a new copy) a table; returns its id.
#[allow(clippy::too_many_arguments)]
pub fn register_table(
    source_id: i32,
    mysql_schema: &str,
    mysql_table: &str,
    pg_schema: &str,
    columns: &[MySqlColumn],
    key: &[String],
    indexes: &[IndexDef],
    extras: &[ColumnExtra],
    estimate: i64,
    copy: bool,
    problem: Option<&str>,
) -> Result<i32> {
    Spi::connect_mut(|client| {
        let t = client.update(
            "INSERT INTO sch_chameleon.t_replica_tables AS t (i_id_source, v_mysql_schema, v_mysql_table, v_pg_schema, v_pg_table, \
                 jsb_columns, v_replica_key, i_rows_estimated, enm_state, b_replica_enabled, t_last_error, jsb_indexes, jsb_extras) \
             VALUES ($1, $2, $3, $4, $3, $5, $6, $7, CASE WHEN $9 THEN 'pending' ELSE 'disabled' END, $8::text IS NULL, $8, $10, $11) \
             ON CONFLICT (i_id_source, v_mysql_schema, v_mysql_table) DO UPDATE SET \
                 v_pg_schema = EXCLUDED.v_pg_schema, jsb_columns = EXCLUDED.jsb_columns, v_replica_key = EXCLUDED.v_replica_key, \
                 jsb_indexes = EXCLUDED.jsb_indexes, jsb_extras = EXCLUDED.jsb_extras, \
                 i_rows_estimated = EXCLUDED.i_rows_estimated, enm_state = EXCLUDED.enm_state, \
                 b_replica_enabled = EXCLUDED.b_replica_enabled, t_last_error = EXCLUDED.t_last_error, \
                 i_rows_copied = 0, i_rows_discarded = 0, t_binlog_name = NULL, i_binlog_position = NULL, ts_copied = NULL \
             RETURNING i_id_table",
            None,
            &[
                source_id.into(),
                mysql_schema.into(),
                mysql_table.into(),
                pg_schema.into(),
                JsonB(columns_to_json(columns, pg_schema, mysql_table)).into(),
                key.to_vec().into(),
                estimate.into(),
                problem.into(),
                copy.into(),
                JsonB(indexes_to_json(indexes)).into(),
                JsonB(extras_to_json(extras)).into(),
            ],
        )?;
        Ok(t.first().get_one::<i32>()?.unwrap_or_default())
    })
}

/// Forgets one table (gone from the source); its PostgreSQL table is left alone.
pub fn unregister_table(table_id: i32) -> Result<()> {
    run("DELETE FROM sch_chameleon.t_replica_tables WHERE i_id_table = $1", &[table_id.into()])
}

/// Forgets tables of the source that are not in `keep` (dropped on the source since the last copy).
pub fn unregister_tables_except(source_id: i32, keep: &[i32]) -> Result<()> {
    run(
        "DELETE FROM sch_chameleon.t_replica_tables WHERE i_id_source = $1 AND NOT (i_id_table = ANY($2))",
        &[source_id.into(), keep.to_vec().into()],
    )
}

/// Records what the copy of a table could not reproduce.
pub fn set_table_notes(table_id: i32, notes: &[String]) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET t_notes = $2 WHERE i_id_table = $1",
        &[table_id.into(), notes.to_vec().into()],
    )
}

/// Adds a note to a table's notes.
pub fn add_table_note(table_id: i32, note: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET t_notes = coalesce(t_notes, '{}') || $2 WHERE i_id_table = $1",
        &[table_id.into(), vec![note.to_string()].into()],
    )
}

/// A recorded foreign key of a copied table, with its referenced table when that one is
/// copied too.
pub struct SourceForeignKey {
    pub table_id: i32,
    pub pg_schema: String,
    pub pg_table: String,
    pub fk: crate::core::schema::ForeignKeyDef,
    /// The referenced table's PostgreSQL schema and name.
    pub referenced: Option<(String, String)>,
}

pub fn source_foreign_keys(source_id: i32) -> Result<Vec<SourceForeignKey>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT c.i_id_table, c.v_pg_schema, c.v_pg_table, f.v_name, f.v_columns, f.v_ref_mysql_schema, f.v_ref_table, \
                    f.v_ref_columns, f.v_on_update, f.v_on_delete, p.v_pg_schema, p.v_pg_table \
               FROM sch_chameleon.t_foreign_keys f \
               JOIN sch_chameleon.t_replica_tables c ON c.i_id_table = f.i_id_table \
               LEFT JOIN sch_chameleon.t_replica_tables p ON p.i_id_source = c.i_id_source \
                    AND p.v_mysql_schema = f.v_ref_mysql_schema AND p.v_mysql_table = f.v_ref_table AND p.ts_copied IS NOT NULL \
              WHERE c.i_id_source = $1 AND c.ts_copied IS NOT NULL ORDER BY c.i_id_table, f.v_name",
            None,
            &[source_id.into()],
        )?;
        let mut out = Vec::new();
        for r in t {
            let referenced = match (r.get::<String>(11)?, r.get::<String>(12)?) {
                (Some(s), Some(t)) => Some((s, t)),
                _ => None,
            };
            out.push(SourceForeignKey {
                table_id: r.get(1)?.unwrap_or_default(),
                pg_schema: r.get(2)?.unwrap_or_default(),
                pg_table: r.get(3)?.unwrap_or_default(),
                fk: crate::core::schema::ForeignKeyDef {
                    name: r.get(4)?.unwrap_or_default(),
                    columns: r.get(5)?.unwrap_or_default(),
                    ref_schema: r.get(6)?.unwrap_or_default(),
                    ref_table: r.get(7)?.unwrap_or_default(),
                    ref_columns: r.get(8)?.unwrap_or_default(),
                    on_update: r.get(9)?.unwrap_or_default(),
                    on_delete: r.get(10)?.unwrap_or_default(),
                },
                referenced,
            });
        }
        Ok(out)
    })
}

/// Drops the foreign keys of other tables that reference the table `qualified` (if it exists).
/// IF EXISTS: another copy worker may be recreating the referencing table meanwhile.
pub fn drop_foreign_keys_referencing(qualified: &str) -> Result<()> {
    let drops: Vec<String> = Spi::connect(|client| {
        let t = client.select(
            "SELECT format('ALTER TABLE IF EXISTS %s DROP CONSTRAINT IF EXISTS %I', conrelid::regclass, conname) FROM pg_constraint \
              WHERE contype = 'f' AND confrelid = to_regclass($1) AND conrelid <> confrelid",
            None,
            &[qualified.into()],
        )?;
        let mut out = Vec::new();
        for r in t {
            out.extend(r.get::<String>(1)?);
        }
        Ok::<_, ChameleonError>(out)
    })?;
    for ddl in drops {
        execute(&ddl)?;
    }
    Ok(())
}

/// Whether every copied table of the source has the same consistent point.
pub fn single_consistent_point(source_id: i32) -> Result<bool> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT count(DISTINCT (t_binlog_name, i_binlog_position)) <= 1 FROM sch_chameleon.t_replica_tables \
              WHERE i_id_source = $1 AND ts_copied IS NOT NULL",
            None,
            &[source_id.into()],
        )?;
        Ok(t.first().get_one::<bool>()?.unwrap_or(false))
    })
}

/// Replaces the recorded foreign keys of a table.
pub fn record_foreign_keys(table_id: i32, fks: &[crate::core::schema::ForeignKeyDef]) -> Result<()> {
    run("DELETE FROM sch_chameleon.t_foreign_keys WHERE i_id_table = $1", &[table_id.into()])?;
    for fk in fks {
        run(
            "INSERT INTO sch_chameleon.t_foreign_keys (i_id_table, v_name, v_columns, v_ref_mysql_schema, v_ref_table, \
             v_ref_columns, v_on_update, v_on_delete) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                table_id.into(),
                fk.name.as_str().into(),
                fk.columns.clone().into(),
                fk.ref_schema.as_str().into(),
                fk.ref_table.as_str().into(),
                fk.ref_columns.clone().into(),
                fk.on_update.as_str().into(),
                fk.on_delete.as_str().into(),
            ],
        )?;
    }
    Ok(())
}

pub fn set_table_state(table_id: i32, state: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = $2 WHERE i_id_table = $1",
        &[table_id.into(), state.into()],
    )
}

pub fn set_table_copied(
    table_id: i32,
    rows: Option<i64>,
    discarded: Option<i64>,
    point: &BinlogPosition,
    replicate: bool,
) -> Result<()> {
    // (a table disabled while it was being copied, by a DDL statement, stays disabled)
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = CASE WHEN $6 AND b_replica_enabled THEN 'copied' ELSE 'disabled' END, \
         i_rows_copied = coalesce($2, i_rows_copied), i_rows_discarded = coalesce($3, i_rows_discarded), t_binlog_name = $4, i_binlog_position = $5, ts_copied = clock_timestamp() \
         WHERE i_id_table = $1",
        &[table_id.into(), rows.into(), discarded.into(), point.file.as_str().into(), (point.pos as i64).into(), replicate.into()],
    )
}

/// A table copied again while its source runs is replicating from now on.
pub fn set_table_replicating_if_running(table_id: i32, source_id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = 'replicating' WHERE i_id_table = $1 AND enm_state = 'copied' \
           AND EXISTS (SELECT 1 FROM sch_chameleon.t_sources WHERE i_id_source = $2 AND enm_status = 'running')",
        &[table_id.into(), source_id.into()],
    )
}

/// Marks every copied table of the source as replicating (the replica is running).
pub fn set_tables_replicating(source_id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = 'replicating' \
         WHERE i_id_source = $1 AND enm_state = 'copied' AND b_replica_enabled",
        &[source_id.into()],
    )
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

/// The recorded foreign keys of every table of the source, by table id.
pub fn foreign_keys_by_table(source_id: i32) -> Result<std::collections::HashMap<i32, Vec<ForeignKeyDef>>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT f.i_id_table, f.v_name, f.v_columns, f.v_ref_mysql_schema, f.v_ref_table, f.v_ref_columns, f.v_on_update, f.v_on_delete \
               FROM sch_chameleon.t_foreign_keys f JOIN sch_chameleon.t_replica_tables t USING (i_id_table) \
              WHERE t.i_id_source = $1 ORDER BY f.i_id_table, f.v_name",
            None,
            &[source_id.into()],
        )?;
        let mut out: std::collections::HashMap<i32, Vec<ForeignKeyDef>> = std::collections::HashMap::new();
        for r in t {
            out.entry(r.get(1)?.unwrap_or_default()).or_default().push(ForeignKeyDef {
                name: r.get(2)?.unwrap_or_default(),
                columns: r.get(3)?.unwrap_or_default(),
                ref_schema: r.get(4)?.unwrap_or_default(),
                ref_table: r.get(5)?.unwrap_or_default(),
                ref_columns: r.get(6)?.unwrap_or_default(),
                on_update: r.get(7)?.unwrap_or_default(),
                on_delete: r.get(8)?.unwrap_or_default(),
            });
        }
        Ok(out)
    })
}

/// A replicated table's new definition after a DDL statement (names included).
pub fn save_table_model(table_id: i32, m: &TableModel) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET v_mysql_schema = $2, v_mysql_table = $3, v_pg_schema = $4, v_pg_table = $5, \
         jsb_columns = $6, v_replica_key = $7, jsb_indexes = $8, jsb_extras = $9 WHERE i_id_table = $1",
        &[
            table_id.into(),
            m.mysql_schema.as_str().into(),
            m.mysql_table.as_str().into(),
            m.pg_schema.as_str().into(),
            m.pg_table.as_str().into(),
            JsonB(columns_to_json(&m.columns, &m.pg_schema, &m.pg_table)).into(),
            m.key.clone().into(),
            JsonB(indexes_to_json(&m.indexes)).into(),
            JsonB(extras_to_json(&m.extras)).into(),
        ],
    )?;
    record_foreign_keys(table_id, &m.foreign_keys)
}

/// A table created on the source by a DDL statement at `point`: replicated from there (its
/// rows all come after it), or registered disabled with the reason `problem`.
pub fn register_created_table(
    source_id: i32,
    m: &TableModel,
    point: &BinlogPosition,
    problem: Option<&str>,
) -> Result<i32> {
    let id = register_table(
        source_id,
        &m.mysql_schema,
        &m.mysql_table,
        &m.pg_schema,
        &m.columns,
        &m.key,
        &m.indexes,
        &m.extras,
        0,
        true,
        problem,
    )?;
    run(
        "UPDATE sch_chameleon.t_replica_tables SET v_pg_table = $2, t_binlog_name = $3, i_binlog_position = $4, ts_copied = clock_timestamp(), \
         enm_state = CASE WHEN b_replica_enabled THEN 'replicating' ELSE 'disabled' END WHERE i_id_table = $1",
        &[id.into(), m.pg_table.as_str().into(), point.file.as_str().into(), (point.pos as i64).into()],
    )?;
    record_foreign_keys(id, &m.foreign_keys)?;
    Ok(id)
}

/// Counts a DDL statement of the source: applied, or without meaning for the replica.
pub fn count_ddl(source_id: i32, applied: bool) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET i_ddl_applied = i_ddl_applied + $2::int, i_ddl_skipped = i_ddl_skipped + (NOT $2)::int \
         WHERE i_id_source = $1",
        &[source_id.into(), applied.into()],
    )
}

/// Why a table the options no longer select is disabled (`alter_source`).
pub const NOT_SELECTED: &str = "not replicated: left out by the source's schema_mappings, limit_tables or skip_tables";

/// Disables a table; the workers of its source reload their table caches (generation).
pub fn disable_table(table_id: i32, reason: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = 'disabled', b_replica_enabled = false, t_last_error = $2 \
         WHERE i_id_table = $1",
        &[table_id.into(), reason.into()],
    )?;
    run(
        "UPDATE sch_chameleon.t_sources SET i_table_generation = i_table_generation + 1 \
          WHERE i_id_source = (SELECT i_id_source FROM sch_chameleon.t_replica_tables WHERE i_id_table = $1)",
        &[table_id.into()],
    )
}

#[allow(clippy::too_many_arguments)]
pub fn record_error(
    source_id: i32,
    table_id: Option<i32>,
    position: Option<&BinlogPosition>,
    statement: Option<&str>,
    sqlstate: Option<&str>,
    message: &str,
) -> Result<()> {
    run(
        "INSERT INTO sch_chameleon.t_error_log (i_id_source, i_id_table, t_binlog_name, i_binlog_position, t_statement, t_sqlstate, t_error_message) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            source_id.into(),
            table_id.into(),
            position.map(|p| p.file.clone()).into(),
            position.map(|p| p.pos as i64).into(),
            statement.into(),
            sqlstate.into(),
            message.into(),
        ],
    )
}

pub fn record_discarded(
    source_id: i32,
    table_id: i32,
    position: Option<&BinlogPosition>,
    raw: &[u8],
    reason: &str,
) -> Result<()> {
    run(
        "INSERT INTO sch_chameleon.t_discarded_rows (i_id_source, i_id_table, t_binlog_name, i_binlog_position, b_row, t_reason) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            source_id.into(),
            table_id.into(),
            position.map(|p| p.file.clone()).into(),
            position.map(|p| p.pos as i64).into(),
            raw.to_vec().into(),
            reason.into(),
        ],
    )?;
    run(
        "UPDATE sch_chameleon.t_replica_tables SET i_rows_discarded = i_rows_discarded + 1 WHERE i_id_table = $1",
        &[table_id.into()],
    )
}

/// Whether the calling transaction has written anything (then a worker cannot see it yet).
/// Must be asked before any pgrx `Spi::get_one`/`update`, which assign a transaction id.
pub fn transaction_has_writes() -> bool {
    unsafe { pgrx::pg_sys::GetCurrentTransactionIdIfAny() != pgrx::pg_sys::InvalidTransactionId }
}

pub fn current_database() -> Result<String> {
    Ok(Spi::get_one::<String>("SELECT current_database()::text")?.unwrap_or_default())
}

/// The column names of a PostgreSQL table, or None when there is no such table.
pub fn pg_table_columns(schema: &str, table: &str) -> Result<Option<Vec<String>>> {
    Spi::connect(|client| {
        let exists = client.select(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            None,
            &[crate::core::sql::pg_identifier(schema).into(), crate::core::sql::pg_identifier(table).into()],
        )?;
        if exists.is_empty() {
            return Ok(None);
        }
        let t = client.select(
            "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            None,
            &[crate::core::sql::pg_identifier(schema).into(), crate::core::sql::pg_identifier(table).into()],
        )?;
        let mut out = Vec::new();
        for r in t {
            out.push(r.get::<String>(1)?.unwrap_or_default());
        }
        Ok(Some(out))
    })
}

/// Moves the sequence of `column` (identity or serial) of `qualified` past the column's
/// maximum, so that the next generated value is free.
pub fn set_sequence_past_max(qualified: &str, column: &str) -> Result<()> {
    execute(&format!(
        "SELECT setval(pg_get_serial_sequence({}, {}), greatest(max({}), 1), max({}) IS NOT NULL) FROM {qualified}",
        crate::core::sql::quote_literal(qualified),
        crate::core::sql::quote_literal(column),
        crate::core::sql::quote_ident(column),
        crate::core::sql::quote_ident(column)
    ))
}

/// The columns of a table that own a sequence (identity or serial).
pub fn sequence_columns(qualified: &str) -> Result<Vec<String>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 \
               AND NOT a.attisdropped AND pg_get_serial_sequence($1, a.attname) IS NOT NULL ORDER BY a.attnum",
            None,
            &[qualified.into()],
        )?;
        let mut out = Vec::new();
        for r in t {
            out.push(r.get::<String>(1)?.unwrap_or_default());
        }
        Ok(out)
    })
}

/// A table whose rows were loaded by other means: replicated from the source's start
/// position on (no consistent point of its own), or kept unreplicated.
pub fn set_table_adopted(table_id: i32, replicate: bool, note: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = CASE WHEN $2 THEN 'copied' ELSE 'disabled' END, \
         i_rows_copied = 0, i_rows_discarded = 0, t_binlog_name = NULL, i_binlog_position = NULL, \
         ts_copied = clock_timestamp(), t_notes = t_notes || $3 WHERE i_id_table = $1",
        &[table_id.into(), replicate.into(), vec![note.to_string()].into()],
    )
}

/// Where replication starts when the DBA gives the position: a file and offset, a GTID
/// position, or both. The stored changes of the old position are obsolete.
pub fn set_start_position(id: i32, pos: Option<&BinlogPosition>, gtid: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_sources SET enm_status = 'initialised', t_binlog_name = $2, i_binlog_position = $3, \
         t_gtid = $4, ts_initialised = coalesce(ts_initialised, clock_timestamp()), t_last_error = NULL WHERE i_id_source = $1",
        &[id.into(), pos.map(|p| p.file.as_str()).into(), pos.map(|p| p.pos as i64).into(), gtid.into()],
    )?;
    run("DELETE FROM sch_chameleon.t_last_replayed WHERE i_id_source = $1", &[id.into()])?;
    run("DELETE FROM sch_chameleon.t_last_received WHERE i_id_source = $1", &[id.into()])
}

/// Whether a relation exists and, if so, whether some table of the source owns it.
/// (Names longer than 63 bytes are cut as PostgreSQL cuts them.)
pub fn table_exists(schema: &str, table: &str) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
        &[crate::core::sql::pg_identifier(schema).into(), crate::core::sql::pg_identifier(table).into()],
    )?
    .unwrap_or(false))
}

pub fn execute(sql: &str) -> Result<()> {
    run(sql, &[])
}

pub const TEXT_OID: pgrx::pg_sys::PgOid = pgrx::pg_sys::PgOid::BuiltIn(PgBuiltInOids::TEXTOID);

// ---- the initial copy: resumption, copy workers, table claims ------------------------------

/// Whether an earlier `init_replica` of the source stopped before copying every table.
pub fn copy_incomplete(source_id: i32) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM sch_chameleon.t_replica_tables WHERE i_id_source = $1 AND enm_state IN ('pending', 'copying', 'failed'))",
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
                AND t.ts_copied IS NOT NULL AND t.enm_state IN ('copied', 'disabled') AND t.jsb_columns = $5 \
                AND t.v_replica_key = $6 AND to_regclass(quote_ident(t.v_pg_schema) || '.' || quote_ident(t.v_pg_table)) IS NOT NULL",
            None,
            &[
                source_id.into(),
                mysql_schema.into(),
                mysql_table.into(),
                pg_schema.into(),
                JsonB(columns_to_json(columns, pg_schema, mysql_table)).into(),
                key.to_vec().into(),
            ],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        Ok(t.first().get_one::<i32>()?)
    })
}

/// The schema of PostGIS's types when the extension is installed in this database.
pub fn postgis_schema() -> Result<Option<String>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'",
            None,
            &[],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        Ok(t.first().get_one::<String>()?)
    })
}

/// A worker slot of the running copy.
#[derive(Debug, Clone)]
pub struct CopySlot {
    pub slot: i32,
    pub pid: Option<i32>,
    pub state: String,
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
                state: row.get(3)?.unwrap_or_default(),
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
pub fn set_copy_slot(source_id: i32, slot: i32, state: &str, pid: Option<i32>, error: Option<&str>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_copy_workers SET enm_state = $3, i_pid = coalesce($4, i_pid), t_error = coalesce($5, t_error), \
         i_id_table = CASE WHEN $3 IN ('done', 'failed') THEN NULL ELSE i_id_table END \
         WHERE i_id_source = $1 AND i_slot = $2",
        &[source_id.into(), slot.into(), state.into(), pid.into(), error.into()],
    )
}

/// The coordinator letting every ready worker copy: at the snapshot's coordinates, or with a
/// consistent point per table.
pub fn copy_slots_go(source_id: i32, point: Option<&BinlogPosition>) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_copy_workers SET enm_state = 'go', b_per_table_points = $2::text IS NULL, \
         t_binlog_name = $2, i_binlog_position = $3 WHERE i_id_source = $1 AND enm_state = 'ready'",
        &[source_id.into(), point.map(|p| p.file.clone()).into(), point.map(|p| p.pos as i64).into()],
    )
}

/// Tells every worker that has not finished to give up (the coordinator failed).
pub fn abort_copy_slots(source_id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_copy_workers SET enm_state = 'aborted' WHERE i_id_source = $1 AND enm_state IN ('starting', 'ready', 'go')",
        &[source_id.into()],
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

/// Claims the largest table still to copy (none failed in this run), for `slot`.
pub fn claim_table(source_id: i32, slot: i32) -> Result<Option<ClaimedTable>> {
    let claimed = Spi::connect_mut(|client| -> Result<Option<ClaimedTable>> {
        let t = client.update(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = 'copying' WHERE i_id_table = ( \
                 SELECT i_id_table FROM sch_chameleon.t_replica_tables \
                  WHERE i_id_source = $1 AND enm_state = 'pending' \
                  ORDER BY i_rows_estimated DESC NULLS LAST, i_id_table LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING i_id_table, v_mysql_schema, v_mysql_table, v_pg_schema",
            None,
            &[source_id.into()],
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
            "UPDATE sch_chameleon.t_copy_ranges r SET enm_state = 'copying', i_slot = $2 \
               FROM sch_chameleon.t_replica_tables t \
              WHERE t.i_id_table = r.i_id_table AND (r.i_id_table, r.i_range) = ( \
                    SELECT c.i_id_table, c.i_range FROM sch_chameleon.t_copy_ranges c \
                      JOIN sch_chameleon.t_replica_tables x ON x.i_id_table = c.i_id_table \
                     WHERE x.i_id_source = $1 AND x.enm_state = 'copying' AND c.enm_state = 'pending' \
                     ORDER BY c.i_id_table, c.i_range LIMIT 1 FOR UPDATE OF c SKIP LOCKED) \
             RETURNING r.i_id_table, t.v_mysql_schema, t.v_mysql_table, t.v_pg_schema, r.i_range, r.v_column, r.t_low, r.t_high",
            None,
            &[source_id.into(), slot.into()],
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
        "UPDATE sch_chameleon.t_copy_ranges SET enm_state = 'done', i_rows = $3 WHERE i_id_table = $1 AND i_range = $2",
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
            "SELECT t.enm_state = 'copying' AND NOT EXISTS ( \
                    SELECT 1 FROM sch_chameleon.t_copy_ranges r WHERE r.i_id_table = t.i_id_table AND r.enm_state <> 'done') \
               FROM sch_chameleon.t_replica_tables t WHERE t.i_id_table = $1 FOR UPDATE OF t",
            None,
            &[table_id.into()],
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
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = 'failed', t_last_error = $2 WHERE i_id_table = $1",
        &[table_id.into(), error.into()],
    )
}

/// How many tables of the source are waiting for a copy, being copied or catching up after it.
pub fn tables_being_copied(source_id: i32) -> Result<i64> {
    Ok(Spi::get_one_with_args::<i64>(
        "SELECT count(*) FROM sch_chameleon.t_replica_tables WHERE i_id_source = $1 AND enm_state IN ('pending', 'copying', 'copied')",
        &[source_id.into()],
    )?
    .unwrap_or_default())
}

/// Tables of the source not copied yet, with the error that stopped each, if any.
pub fn uncopied_tables(source_id: i32) -> Result<Vec<(String, Option<String>)>> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT v_mysql_schema || '.' || v_mysql_table, t_last_error FROM sch_chameleon.t_replica_tables \
              WHERE i_id_source = $1 AND enm_state IN ('pending', 'copying', 'failed') ORDER BY 1",
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
