//! Applies a stored DDL statement of the source when replay reaches it in the log: translates
//! it against the tables as the catalogue has them (`core::ddl`), runs each step's PostgreSQL
//! in a subtransaction and records the tables' new definitions, in replay's transaction, so
//! the change commits with the batch. A step that cannot be translated or fails is recorded
//! in `chameleon.errors` with the statement and position, and its table is disabled; the
//! rest of the source keeps replicating (`sync_tables` brings the table back).

use crate::catalog::{self, TableRow};
use crate::core::change::DdlEvent;
use crate::core::ddl::{self, DdlContext, DdlError, DdlOutcome, DdlStep, TableAction, TableModel, TableName};
use crate::core::mapping::SchemaMappings;
use crate::core::mysql_source::Flavor;
use crate::core::position::{after_consistent_point, BinlogPosition};
use crate::core::state::TableState;
use crate::error::{ChameleonError, Result};
use crate::workers::txn::{build_index, in_subtransaction};
use pgrx::prelude::*;
use std::collections::HashMap;

/// What became of one statement.
#[derive(Debug, Default)]
pub struct DdlReport {
    pub applied: bool,
    pub failed_steps: usize,
}

/// Tables DDL replication follows: enabled, and copied or being copied (the reader decodes
/// their rows). Only the live ones (copied, replicating) are changed in PostgreSQL; one being
/// copied is copied again after the statement (`requeue_copy`), or disabled when that cannot
/// follow it (DROP, RENAME), its copy no longer matching the source.
fn followed(t: &TableRow) -> bool {
    t.enabled && t.state.is_followed()
}

fn live(t: &TableRow) -> bool {
    t.enabled && t.state.is_applied()
}

pub fn apply(
    source_id: i32,
    tables: &HashMap<i32, TableRow>,
    event: &DdlEvent,
    at: &BinlogPosition,
) -> Result<DdlReport> {
    let source = catalog::source_by_id(source_id)?;
    let options = source.options()?;
    let mappings = source.mappings()?;
    let mut fks = catalog::foreign_keys_by_table(source_id)?;
    let mut ids: HashMap<TableName, &TableRow> = HashMap::new();
    let mut models: HashMap<TableName, TableModel> = HashMap::new();
    for t in tables.values().filter(|t| followed(t)) {
        let name = (t.mysql_schema.clone(), t.mysql_table.clone());
        models.insert(name.clone(), t.model(fks.remove(&t.id).unwrap_or_default()));
        ids.insert(name, t);
    }
    let charsets: HashMap<String, String> = event.schema_charsets.iter().cloned().collect();
    let extensions = catalog::extensions()?;
    let ctx = DdlContext {
        default_schema: &event.default_schema,
        mappings: &mappings,
        options: &options,
        flavor: if event.mysql { Flavor::MySql } else { Flavor::MariaDb },
        extensions: &extensions,
        tables: &models,
        schema_charsets: &charsets,
    };
    let mut report = DdlReport::default();
    match ddl::translate(&event.query, &ctx) {
        Ok(DdlOutcome::Skipped(reason)) => {
            catalog::count_ddl(source_id, false)?;
            if !reason.is_empty() {
                log!(
                    "pg_chameleon_rs: source \"{}\": DDL at {at} skipped ({reason}): {}",
                    source.name,
                    short(&event.query)
                );
            }
        }
        Ok(DdlOutcome::Apply(steps)) => {
            for step in &steps {
                if !apply_step(source_id, &ids, &mappings, step, event, at)? {
                    report.failed_steps += 1;
                }
            }
            report.applied = true;
            catalog::count_ddl(source_id, true)?;
        }
        Err(e) => {
            report.failed_steps += 1;
            untranslatable(source_id, &ids, &mappings, &e, None, event, at)?;
        }
    }
    catalog::bump_table_generation(source_id)?;
    Ok(report)
}

/// The first line of a statement, cut for the server log.
fn short(query: &str) -> String {
    let line = query.lines().next().unwrap_or_default();
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

/// A statement that matters but cannot be translated: recorded, and its table disabled (a
/// table it would create is registered disabled, so that sync_tables can copy it).
fn untranslatable(
    source_id: i32,
    ids: &HashMap<TableName, &TableRow>,
    mappings: &SchemaMappings,
    e: &DdlError,
    model: Option<&TableModel>,
    event: &DdlEvent,
    at: &BinlogPosition,
) -> Result<()> {
    let msg = format!("DDL statement not replicated: {e}");
    let table_id = match &e.table {
        Some(name) => match ids.get(name) {
            Some(t) => Some(t.id),
            None => match mappings.target(&name.0) {
                Some(pg_schema) => Some(register_disabled(source_id, name, pg_schema, model, &msg)?),
                None => None,
            },
        },
        None => None,
    };
    catalog::record_error(source_id, table_id, Some(at), Some(&event.query), Some("0A000"), &msg)?;
    if let Some(id) = table_id {
        catalog::disable_table(id, &format!("{msg} (at {at}); copy it again with chameleon.sync_tables"))?;
    }
    warning!("pg_chameleon_rs: {msg} at {at}");
    Ok(())
}

/// A table a statement creates but the replica could not: registered disabled, with its
/// definition when known (sync_tables' reader then follows it from before its copy).
fn register_disabled(
    source_id: i32,
    name: &TableName,
    pg_schema: &str,
    model: Option<&TableModel>,
    why: &str,
) -> Result<i32> {
    let (columns, key, indexes, extras) = match model {
        Some(m) => (&m.columns[..], &m.key[..], &m.indexes[..], &m.extras[..]),
        None => (&[][..], &[][..], &[][..], &[][..]),
    };
    catalog::register_table(source_id, &name.0, &name.1, pg_schema, columns, key, indexes, extras, 0, true, Some(why))
}

/// Runs one step; false when it failed (recorded, its table disabled).
fn apply_step(
    source_id: i32,
    ids: &HashMap<TableName, &TableRow>,
    mappings: &SchemaMappings,
    step: &DdlStep,
    event: &DdlEvent,
    at: &BinlogPosition,
) -> Result<bool> {
    let table = step.table.as_ref().and_then(|n| ids.get(n)).copied();
    // copied after the statement (per-table consistent points): the copy has it already
    if let Some(t) = table.filter(|t| t.point.is_some() && !after_consistent_point(&at.file, at.pos, t.point.as_ref()))
    {
        log!(
            "pg_chameleon_rs: DDL at {at} on {} is before the table's consistent point: already in its copy",
            t.mysql_name()
        );
        return Ok(true);
    }
    if let Some(t) = table.filter(|t| !live(t)) {
        if requeue_copy(t, step, at)? {
            return Ok(true);
        }
        let msg = format!(
            "changed on the source by a DDL statement at {at} while it was being copied: copy it again with chameleon.sync_tables"
        );
        catalog::disable_table(t.id, &msg)?;
        return Ok(true);
    }
    if let (true, TableAction::Create { model, .. }) = (event.with_rows, &step.action) {
        // CREATE TABLE ... SELECT: the rows came in the same event group, before the table was
        // known; it is copied instead
        let e = DdlError {
            table: Some((model.mysql_schema.clone(), model.mysql_table.clone())),
            message: "created together with its rows (CREATE TABLE ... SELECT), which the binlog carries before the \
                      replica knows the table"
                .into(),
        };
        untranslatable(source_id, ids, mappings, &e, Some(model), event, at)?;
        return Ok(false);
    }
    let outcome = in_subtransaction(|| -> Result<Vec<String>> {
        let mut left_out = Vec::new();
        for sql in &step.sql {
            if is_index_build(sql) {
                left_out.extend(build_index(sql)?);
            } else {
                catalog::execute(sql)?;
            }
        }
        let id = match &step.action {
            TableAction::Create { model, problem } => {
                Some(catalog::register_created_table(source_id, model, at, problem.as_deref())?)
            }
            TableAction::Alter { model, .. } => {
                let id = require(table, step)?;
                // (a key lost or gained changes how replay matches rows: by full row, or by the
                // new key; the reader restarts after the statement with the new definition)
                catalog::save_table_model(id, model)?;
                Some(id)
            }
            TableAction::Drop(_) => {
                catalog::unregister_table(require(table, step)?)?;
                None
            }
            TableAction::Truncate(_) => table.map(|t| t.id),
            TableAction::CreateSchema(_) | TableAction::DropSchema(_) => None,
        };
        if let Some(id) = id {
            for note in step.notes.iter().chain(&left_out) {
                catalog::add_table_note(id, note)?;
            }
        }
        Ok(left_out)
    });
    match outcome {
        Ok(left_out) => {
            for note in &left_out {
                warning!("pg_chameleon_rs: at {at}: {note}");
            }
            Ok(true)
        }
        Err(e) => {
            let name = step.table.as_ref().map(|(s, t)| format!("{s}.{t}")).unwrap_or_default();
            let msg = format!("DDL statement on {name} failed at the destination: {e}");
            let sql = step.sql.join(";\n");
            catalog::record_error(
                source_id,
                table.map(|t| t.id),
                Some(at),
                Some(&format!("{}\n-- as: {sql}", event.query)),
                Some(&e.sqlstate()),
                &msg,
            )?;
            let disabled = format!("{msg}; copy it again with chameleon.sync_tables");
            match (table, &step.action) {
                (Some(t), _) => catalog::disable_table(t.id, &disabled)?,
                // a table the statement creates: registered disabled with its definition, for sync_tables
                (None, TableAction::Create { model, .. }) => {
                    let name = (model.mysql_schema.clone(), model.mysql_table.clone());
                    register_disabled(source_id, &name, &model.pg_schema, Some(model), &disabled)?;
                }
                _ => {}
            }
            warning!("pg_chameleon_rs: {msg}");
            Ok(false)
        }
    }
}

/// Whether a translated statement builds a secondary index (`schema::index_statements`): one
/// PostgreSQL cannot build over the table's rows is left out with a note (`build_index`),
/// rather than the table disabled.
fn is_index_build(sql: &str) -> bool {
    sql.starts_with("CREATE INDEX ") || sql.starts_with("CREATE UNIQUE INDEX ")
}

/// A statement that changes (ALTER) or empties (TRUNCATE) a table `sync_tables` is copying:
/// the copy under way (at a snapshot before the statement) is void. The table is `pending`
/// again at the statement's position and takes the definition the statement makes (the reader
/// decodes its rows after the statement with it); its coordinator copies it again at a new
/// snapshot, after the statement, whose catch-up applies what follows. Nothing here waits on
/// the copy (the copy worker writes the table's row only at its end, under the replay lock).
/// False for other statements (the table is disabled, as before).
fn requeue_copy(t: &TableRow, step: &DdlStep, at: &BinlogPosition) -> Result<bool> {
    if !t.enabled || !matches!(t.state, TableState::Pending | TableState::Copying) {
        return Ok(false);
    }
    match &step.action {
        // (a rename is not followed: the table is disabled, as before)
        TableAction::Alter { from, model } if *from == (model.mysql_schema.clone(), model.mysql_table.clone()) => {
            catalog::save_table_model(t.id, model)?
        }
        TableAction::Truncate(_) => {}
        _ => return Ok(false),
    }
    catalog::requeue_after_ddl(t.id, at)?;
    log!("pg_chameleon_rs: DDL at {at} changed {} while it was being copied: copied again after it", t.mysql_name());
    Ok(true)
}

fn require(table: Option<&TableRow>, step: &DdlStep) -> Result<i32> {
    table.map(|t| t.id).ok_or_else(|| {
        ChameleonError::internal(format!("DDL step for a table the catalogue does not have: {:?}", step.table))
    })
}
