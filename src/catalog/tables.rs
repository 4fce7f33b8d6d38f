//! `t_replica_tables`: one row per replicated table — its MySQL definition (columns, indexes,
//! extras as JSON), replica key, state, consistent point and notes — and the state changes
//! of a table (registered, copied, replicating, disabled, marked for a new copy).

use super::foreign_keys::record_foreign_keys;
use super::sources::bump_table_generation;
use super::{parse_state, point, run};
use crate::core::ddl::TableModel;
use crate::core::position::BinlogPosition;
use crate::core::schema::{ColumnExtra, ForeignKeyDef, IndexDef};
use crate::core::state::{SourceStatus, TableState};
use crate::core::stored;
use crate::core::types::{map_column, MappedType, MySqlColumn};
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

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
    pub state: TableState,
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
    /// A table without a primary or NOT NULL unique key: its updates and deletes are matched
    /// by the full row (every column of the before image).
    pub fn full_row(&self) -> bool {
        self.key.is_empty()
    }
    /// The columns of the before image the reader keeps for an update or delete: the replica
    /// key, or every column of a full-row table.
    pub fn identity_indexes(&self) -> Vec<usize> {
        if self.full_row() {
            (0..self.columns.len()).collect()
        } else {
            self.key_indexes()
        }
    }
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
            let id: i32 = row.get(1)?.unwrap_or_default();
            let mysql_schema: String = row.get(2)?.unwrap_or_default();
            let mysql_table: String = row.get(3)?.unwrap_or_default();
            let pg_schema: String = row.get(4)?.unwrap_or_default();
            let pg_table: String = row.get(5)?.unwrap_or_default();
            let name = format!("{mysql_schema}.{mysql_table} (id {id})");
            let columns = stored_json(row.get::<JsonB>(6)?, stored::columns_from_json, &name, "jsb_columns")?;
            let enabled: bool = row.get(9)?.unwrap_or(false);
            let mapped = match columns.iter().map(|c| map_column(c, &pg_schema, &pg_table)).collect() {
                Ok(mapped) => mapped,
                // a table left out for a column type this version cannot map (registered
                // disabled, with the reason): nothing reads or replays it, and the other
                // tables of the source must go on
                Err(_) if !enabled => Vec::new(),
                Err(e) => return Err(ChameleonError::from(e).context(format!("table {mysql_table}"))),
            };
            let file: Option<String> = row.get(10)?;
            let pos: Option<i64> = row.get(11)?;
            out.push(TableRow {
                id,
                mysql_schema,
                mysql_table,
                pg_schema,
                pg_table,
                columns,
                mapped,
                key: row.get::<Vec<String>>(7)?.unwrap_or_default(),
                state: parse_state(row.get::<String>(8)?, TableState::parse)?,
                enabled,
                point: point(file, pos),
                rows_discarded: row.get(12)?.unwrap_or(0),
                last_error: row.get(13)?,
                indexes: stored_json(row.get::<JsonB>(14)?, stored::indexes_from_json, &name, "jsb_indexes")?,
                extras: stored_json(row.get::<JsonB>(15)?, stored::extras_from_json, &name, "jsb_extras")?,
            });
        }
        Ok(out)
    })
}

/// A table's definition column (`jsb_columns`, `jsb_indexes`, `jsb_extras`) decoded from its
/// stored JSON; a NULL or malformed value is an error naming the table and the column.
fn stored_json<T>(
    json: Option<JsonB>,
    decode: fn(&Value) -> serde_json::Result<T>,
    table: &str,
    column: &str,
) -> Result<T> {
    let malformed = |why: String| {
        ChameleonError::catalog(format!("the catalogue's {column} of replicated table {table} is malformed: {why}"))
    };
    let value = json.ok_or_else(|| malformed("NULL".into()))?.0;
    decode(&value).map_err(|e| malformed(e.to_string()))
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
             VALUES ($1, $2, $3, $4, $3, $5, $6, $7, CASE WHEN $9 THEN $12 ELSE $13 END, $8::text IS NULL, $8, $10, $11) \
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
                JsonB(stored::columns_to_json(columns, pg_schema, mysql_table)).into(),
                key.to_vec().into(),
                estimate.into(),
                problem.into(),
                copy.into(),
                JsonB(stored::indexes_to_json(indexes)).into(),
                JsonB(stored::extras_to_json(extras)).into(),
                TableState::Pending.as_str().into(),
                TableState::Disabled.as_str().into(),
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

pub fn set_table_state(table_id: i32, state: TableState) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = $2 WHERE i_id_table = $1",
        &[table_id.into(), state.as_str().into()],
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
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = CASE WHEN $6 AND b_replica_enabled THEN $7 ELSE $8 END, \
         i_rows_copied = coalesce($2, i_rows_copied), i_rows_discarded = coalesce($3, i_rows_discarded), t_binlog_name = $4, i_binlog_position = $5, ts_copied = clock_timestamp() \
         WHERE i_id_table = $1",
        &[
            table_id.into(),
            rows.into(),
            discarded.into(),
            point.file.as_str().into(),
            (point.pos as i64).into(),
            replicate.into(),
            TableState::Copied.as_str().into(),
            TableState::Disabled.as_str().into(),
        ],
    )
}

/// A table copied again while its source runs is replicating from now on.
pub fn set_table_replicating_if_running(table_id: i32, source_id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = $3 WHERE i_id_table = $1 AND enm_state = $4 \
           AND EXISTS (SELECT 1 FROM sch_chameleon.t_sources WHERE i_id_source = $2 AND enm_status = $5)",
        &[
            table_id.into(),
            source_id.into(),
            TableState::Replicating.as_str().into(),
            TableState::Copied.as_str().into(),
            SourceStatus::Running.as_str().into(),
        ],
    )
}

/// Marks every copied table of the source as replicating (the replica is running).
pub fn set_tables_replicating(source_id: i32) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = $2 \
         WHERE i_id_source = $1 AND enm_state = $3 AND b_replica_enabled",
        &[source_id.into(), TableState::Replicating.as_str().into(), TableState::Copied.as_str().into()],
    )
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
            JsonB(stored::columns_to_json(&m.columns, &m.pg_schema, &m.pg_table)).into(),
            m.key.clone().into(),
            JsonB(stored::indexes_to_json(&m.indexes)).into(),
            JsonB(stored::extras_to_json(&m.extras)).into(),
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
         enm_state = CASE WHEN b_replica_enabled THEN $5 ELSE $6 END WHERE i_id_table = $1",
        &[
            id.into(),
            m.pg_table.as_str().into(),
            point.file.as_str().into(),
            (point.pos as i64).into(),
            TableState::Replicating.as_str().into(),
            TableState::Disabled.as_str().into(),
        ],
    )?;
    record_foreign_keys(id, &m.foreign_keys)?;
    Ok(id)
}

/// Why a table the options no longer select is disabled (`alter_source`).
pub const NOT_SELECTED: &str = "not replicated: left out by the source's schema_mappings, limit_tables or skip_tables";

/// Disables a table; the workers of its source reload their table caches (generation).
pub fn disable_table(table_id: i32, reason: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = $3, b_replica_enabled = false, t_last_error = $2 \
         WHERE i_id_table = $1",
        &[table_id.into(), reason.into(), TableState::Disabled.as_str().into()],
    )?;
    run(
        "UPDATE sch_chameleon.t_sources SET i_table_generation = i_table_generation + 1 \
          WHERE i_id_source = (SELECT i_id_source FROM sch_chameleon.t_replica_tables WHERE i_id_table = $1)",
        &[table_id.into()],
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
                    CASE WHEN t_last_error IS NOT DISTINCT FROM $2 AND NOT $3 THEN 'left out' ELSE enm_state END \
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
        // disabled by a replay error, failed, or left behind by a sync whose copy died (tables
        // without a key too: they replicate by full row since 0.6.0)
        None => known
            .iter()
            .filter(|k| {
                TableState::parse(&k.2).is_ok_and(|s| {
                    matches!(s, TableState::Disabled | TableState::Failed | TableState::Pending | TableState::Copying)
                })
            })
            .collect(),
    };
    for (tid, _, _) in &chosen {
        run(
            "UPDATE sch_chameleon.t_replica_tables SET enm_state = $2, b_replica_enabled = true, t_last_error = NULL \
              WHERE i_id_table = $1",
            &[(*tid).into(), TableState::Pending.as_str().into()],
        )?;
    }
    bump_table_generation(id)?;
    Ok(chosen.iter().map(|k| k.1.clone()).collect())
}

/// A table whose rows were loaded by other means: replicated from the source's start
/// position on (no consistent point of its own), or kept unreplicated.
pub fn set_table_adopted(table_id: i32, replicate: bool, note: &str) -> Result<()> {
    run(
        "UPDATE sch_chameleon.t_replica_tables SET enm_state = CASE WHEN $2 THEN $4 ELSE $5 END, \
         i_rows_copied = 0, i_rows_discarded = 0, t_binlog_name = NULL, i_binlog_position = NULL, \
         ts_copied = clock_timestamp(), t_notes = t_notes || $3 WHERE i_id_table = $1",
        &[
            table_id.into(),
            replicate.into(),
            vec![note.to_string()].into(),
            TableState::Copied.as_str().into(),
            TableState::Disabled.as_str().into(),
        ],
    )
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;
    use crate::core::types::ZeroDates;

    fn source() -> i32 {
        Spi::get_one::<i32>("SELECT chameleon.add_source('cat', 'mysql://u:p@h:1', '{\"shop\":\"shop\"}')")
            .unwrap()
            .unwrap()
    }

    #[pg_test]
    fn table_definition_round_trips_through_the_catalogue() {
        let id = source();
        let columns = vec![MySqlColumn {
            name: "id".into(),
            data_type: "int".into(),
            column_type: "int(11)".into(),
            nullable: false,
            char_max_len: None,
            numeric_precision: Some(10),
            numeric_scale: Some(0),
            datetime_precision: None,
            pg_override: None,
            zero_dates: ZeroDates::Null,
            charset: None,
            postgis: None,
            pgvector: None,
        }];
        let indexes = vec![IndexDef {
            name: "PRIMARY".into(),
            unique: true,
            columns: vec!["id".into()],
            kind: "BTREE".into(),
            prefix: false,
        }];
        let extras = vec![ColumnExtra { default: None, extra: "auto_increment".into(), comment: "key".into() }];
        let tid = register_table(id, "shop", "t", "shop", &columns, &["id".into()], &indexes, &extras, 5, true, None)
            .unwrap();
        let t = table_by_id(tid).unwrap();
        assert_eq!((t.columns, t.indexes, t.extras), (columns, indexes, extras));
    }

    #[pg_test]
    fn a_malformed_definition_names_the_table_and_the_column() {
        let id = source();
        Spi::run(&format!(
            "INSERT INTO sch_chameleon.t_replica_tables (i_id_source, v_mysql_schema, v_mysql_table, v_pg_schema, v_pg_table, jsb_indexes) \
             VALUES ({id}, 'shop', 't', 'shop', 't', '[{{\"name\": \"PRIMARY\", \"unique\": \"yes\"}}]')"
        ))
        .unwrap();
        let e = tables_for_source(id).unwrap_err().to_string();
        assert!(e.contains("jsb_indexes") && e.contains("shop.t (id ") && e.contains("entry 0"), "{e}");
        Spi::run("UPDATE sch_chameleon.t_replica_tables SET jsb_indexes = '[]', jsb_columns = '{}'").unwrap();
        let e = tables_for_source(id).unwrap_err().to_string();
        assert!(e.contains("jsb_columns") && e.contains("shop.t (id "), "{e}");
    }
}

/// Forgets the consistent point of these tables: replication has passed it (every later
/// event applies), so it is never compared with a position of another server. Called in the
/// transaction of the batch that passes it, or of the move to another server.
pub fn clear_table_points(table_ids: &[i32]) -> Result<()> {
    if table_ids.is_empty() {
        return Ok(());
    }
    run(
        "UPDATE sch_chameleon.t_replica_tables SET t_binlog_name = NULL, i_binlog_position = NULL \
         WHERE i_id_table = ANY($1)",
        &[table_ids.to_vec().into()],
    )
}
