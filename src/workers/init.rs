//! The init worker: the initial copy of a source (what `init_replica` starts).
//!
//! 1. reads the mapped schemas' tables, columns and keys from `information_schema`;
//! 2. takes a consistent snapshot (global read lock held only while the copy transaction is
//!    opened and the binlog coordinates read);
//! 3. for each table, in its own transaction: (re)creates the PostgreSQL table, COPYs the
//!    rows, builds the primary key after the data, records the table's consistent point;
//! 4. marks the source `initialised` at the snapshot's coordinates, where replication starts.
//!
//! Any failure puts the source in `error` with the message; `init_replica(wait => true)`
//! raises it.

use crate::catalog;
use crate::core::mysql_source::{self, Flavor};
use crate::core::schema::{self, ColumnExtra, ForeignKeyDef, IndexDef};
use crate::core::source_url::SourceUrl;
use crate::core::sql::{self, quote_ident, ColumnOptions, PgColumn};
use crate::core::types::{map_column, MySqlColumn};
use crate::error::{ChameleonError, Result};
use crate::workers::copy;
use crate::workers::txn::in_transaction;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::Duration;

struct Discovered {
    mysql_schema: String,
    mysql_table: String,
    pg_schema: String,
    columns: Vec<MySqlColumn>,
    key: Vec<String>,
    estimate: i64,
    extras: Vec<ColumnExtra>,
    indexes: Vec<IndexDef>,
    foreign_keys: Vec<ForeignKeyDef>,
    comment: String,
    /// Why the table is copied but not replicated, or not copied at all.
    problem: Option<Problem>,
}

enum Problem {
    /// A column type we cannot map: the table is neither copied nor replicated.
    Unsupported(String),
    /// No primary or unique NOT NULL key: copied, not replicated.
    NoKey,
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_chameleon_rs_init_main(arg: pg_sys::Datum) {
    let source_id = super::worker_prologue(arg);
    super::set_application_name("pg_chameleon_rs init");
    let mut phase = Phase::default();
    if let Err(e) = run(source_id, &mut phase) {
        let msg = e.to_string();
        // Before the copy touched anything (connection, settings, discovery) the source keeps
        // its status; once tables were being replaced it is in error.
        let status = if phase.copying { "error".to_string() } else { phase.previous_status.unwrap_or_else(|| "ready".into()) };
        let _ = in_transaction(|| {
            catalog::record_error(source_id, None, None, None, Some(&e.sqlstate()), &format!("initial copy failed: {msg}"))?;
            catalog::set_source_error(source_id, Some(&status), &format!("initial copy failed: {msg}"))?;
            catalog::set_worker_pid(source_id, None)
        });
        log!("pg_chameleon_rs: initial copy of source id {source_id} failed: {msg}");
    }
}

#[derive(Default)]
struct Phase {
    previous_status: Option<String>,
    copying: bool,
}

fn discover(conn: &mut mysql::Conn, source: &catalog::SourceRow) -> Result<Vec<Discovered>> {
    let mappings = source.mappings()?;
    let options = source.options()?;
    let mut out = Vec::new();
    for (my_schema, pg_schema) in &mappings.0 {
        if !mysql_source::schema_exists(conn, my_schema)? {
            return Err(ChameleonError::State(format!(
                "source \"{}\": MySQL schema \"{my_schema}\" in schema_mappings does not exist",
                source.name
            )));
        }
        for table in mysql_source::list_tables(conn, my_schema)? {
            if !options.table_selected(my_schema, &table) {
                continue;
            }
            let mut columns = mysql_source::table_columns(conn, my_schema, &table)?;
            for c in columns.iter_mut() {
                c.pg_override = options.override_for(my_schema, &table, &c.column_type);
            }
            let estimate = mysql_source::row_estimate(conn, my_schema, &table)?;
            let extras = mysql_source::column_extras(conn, my_schema, &table)?;
            let indexes = mysql_source::table_indexes(conn, my_schema, &table)?;
            let key = schema::replica_key(&indexes, &columns);
            let foreign_keys = mysql_source::foreign_keys(conn, my_schema, &table)?;
            let comment = mysql_source::table_comment(conn, my_schema, &table)?;
            let problem = match columns.iter().map(|c| map_column(c, pg_schema, &table)).find_map(|r| r.err()) {
                Some(e) => Some(Problem::Unsupported(e.to_string())),
                None if key.is_empty() => Some(Problem::NoKey),
                None => None,
            };
            out.push(Discovered {
                mysql_schema: my_schema.clone(),
                mysql_table: table,
                pg_schema: pg_schema.clone(),
                columns,
                key,
                estimate,
                extras,
                indexes,
                foreign_keys,
                comment,
                problem,
            });
        }
    }
    Ok(out)
}

fn run(source_id: i32, phase: &mut Phase) -> Result<()> {
    let source = in_transaction(|| {
        let s = catalog::source_by_id(source_id)?;
        catalog::set_status(source_id, "initialising")?;
        catalog::set_want_running(source_id, false)?;
        catalog::clear_source_error(source_id)?;
        catalog::set_worker_pid(source_id, Some(unsafe { pg_sys::MyProcPid }))?;
        Ok(s)
    })?;
    phase.previous_status = Some(if source.status == "initialising" { "ready".into() } else { source.status.clone() });
    let options = source.options()?;
    let url = SourceUrl::parse(&source.url)?;
    let connect_timeout = Duration::from_secs(options.connect_timeout as u64);
    let mut meta = mysql_source::connect(&url, connect_timeout, None)?;
    let info = mysql_source::check_server(&mut meta)?;
    let tables = discover(&mut meta, &source)?;
    drop(meta);

    let snapshot = mysql_source::take_snapshot(&url, info.flavor, 1, connect_timeout, options.lock_timeout)?;
    log!(
        "pg_chameleon_rs: source \"{}\": consistent snapshot at {} (global read lock held {} ms)",
        source.name,
        snapshot.position,
        snapshot.lock_held.as_millis()
    );
    let mut conn = snapshot.conns.into_iter().next();
    let point = snapshot.position.clone();

    phase.copying = true;
    let ids = in_transaction(|| {
        let known: Vec<(String, String)> = catalog::tables_for_source(source_id)?
            .into_iter()
            .map(|t| (t.pg_schema, t.pg_table))
            .collect();
        for t in &tables {
            let target = (t.pg_schema.clone(), t.mysql_table.clone());
            if catalog::table_exists(&target.0, &target.1)? && !known.contains(&target) {
                return Err(ChameleonError::State(format!(
                    "source \"{}\": table {} already exists in PostgreSQL and is not managed by this source; \
                     drop or rename it, or map {} to another schema",
                    source.name,
                    sql::qualified(&target.0, &target.1),
                    t.mysql_schema
                )));
            }
        }
        let mut ids = Vec::new();
        for t in &tables {
            let unsupported = match &t.problem {
                Some(Problem::Unsupported(m)) => Some(m.clone()),
                Some(Problem::NoKey) => Some("no primary key or NOT NULL unique key: copied, not replicated".to_string()),
                None => None,
            };
            ids.push(catalog::register_table(
                source_id,
                &t.mysql_schema,
                &t.mysql_table,
                &t.pg_schema,
                &t.columns,
                &t.key,
                t.estimate,
                unsupported.as_deref(),
            )?);
        }
        catalog::unregister_tables_except(source_id, &ids)?;
        Ok(ids)
    })?;

    for (t, id) in tables.iter().zip(ids) {
        if crate::workers::txn::shutdown_requested() {
            return Err(ChameleonError::State("initial copy interrupted by shutdown".into()));
        }
        if matches!(t.problem, Some(Problem::Unsupported(_))) {
            continue;
        }
        let replicate = t.problem.is_none();
        let c = conn.take().ok_or_else(|| ChameleonError::State("the copy connection was lost".into()))?;
        conn = Some(
            in_transaction(|| copy_one(source_id, id, t, c, &point, replicate, info.flavor))
                .map_err(|e| e.context(format!("table {}.{}", t.mysql_schema, t.mysql_table)))?,
        );
    }

    in_transaction(|| {
        catalog::mark_initialised(source_id, &point, snapshot.gtid.as_deref())?;
        for role in &options.grant_select_to {
            for pg_schema in source.mappings()?.0.values() {
                catalog::execute(&format!("GRANT USAGE ON SCHEMA {} TO {}", quote_ident(pg_schema), quote_ident(role)))?;
                catalog::execute(&format!(
                    "GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}",
                    quote_ident(pg_schema),
                    quote_ident(role)
                ))?;
            }
        }
        catalog::set_worker_pid(source_id, None)
    })?;
    log!("pg_chameleon_rs: source \"{}\" initialised; replication starts at {point}", source.name);
    Ok(())
}

fn copy_one(
    source_id: i32,
    table_id: i32,
    t: &Discovered,
    conn: mysql::Conn,
    point: &crate::core::position::BinlogPosition,
    replicate: bool,
    flavor: Flavor,
) -> Result<mysql::Conn> {
    let mapped = t
        .columns
        .iter()
        .map(|c| map_column(c, &t.pg_schema, &t.mysql_table))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let pg_cols: Vec<PgColumn> = t
        .columns
        .iter()
        .zip(&mapped)
        .map(|(c, m)| PgColumn { name: c.name.clone(), pg_type: m.pg_type.clone(), nullable: c.nullable })
        .collect();
    catalog::set_table_state(table_id, "copying")?;
    catalog::execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&t.pg_schema)))?;
    let qualified = sql::qualified(&t.pg_schema, &t.mysql_table);
    catalog::execute(&format!("DROP TABLE IF EXISTS {qualified}"))?;
    for (name, labels) in mapped.iter().filter_map(|m| m.create_enum.as_ref()) {
        let type_name = sql::qualified(&t.pg_schema, name);
        catalog::execute(&format!("DROP TYPE IF EXISTS {type_name}"))?;
        catalog::execute(&sql::create_enum(&t.pg_schema, name, labels))?;
    }
    let mut notes = Vec::new();
    let opts: Vec<ColumnOptions> = t
        .columns
        .iter()
        .zip(&mapped)
        .zip(&t.extras)
        .map(|((c, m), x)| ColumnOptions {
            default: schema::default_clause(flavor, c, m, x).unwrap_or_else(|note| {
                notes.push(note);
                None
            }),
            identity: schema::identity(c, m, x),
        })
        .collect();
    catalog::execute(&sql::create_table_with(&t.pg_schema, &t.mysql_table, &pg_cols, &opts))?;
    if !t.comment.is_empty() {
        catalog::execute(&format!("COMMENT ON TABLE {qualified} IS {}", sql::quote_literal(&t.comment)))?;
    }
    for (c, x) in t.columns.iter().zip(&t.extras) {
        if !x.comment.is_empty() {
            catalog::execute(&format!(
                "COMMENT ON COLUMN {qualified}.{} IS {}",
                quote_ident(&c.name),
                sql::quote_literal(&x.comment)
            ))?;
        }
    }
    let relid = Spi::get_one_with_args::<pg_sys::Oid>("SELECT $1::regclass::oid", &[qualified.as_str().into()])?
        .ok_or_else(|| ChameleonError::Catalog(format!("table {qualified} vanished after creation")))?;
    let outcome = copy::copy_table(conn, &t.mysql_schema, &t.mysql_table, &t.columns, &mapped, relid)?;
    for d in &outcome.discards {
        catalog::record_discarded(source_id, table_id, None, &d.raw, &d.reason)?;
    }
    // keys and indexes after the data
    if !t.key.is_empty() {
        catalog::execute(&sql::add_primary_key(&t.pg_schema, &t.mysql_table, &t.key))?;
    }
    let key_index = t.indexes.iter().find(|i| i.columns == t.key && i.unique).map(|i| i.name.clone());
    let secondary: Vec<_> = t.indexes.iter().filter(|i| Some(&i.name) != key_index.as_ref()).cloned().collect();
    let (index_ddl, skipped) = schema::index_statements(&t.pg_schema, &t.mysql_table, &secondary);
    for ddl in &index_ddl {
        catalog::execute(ddl)?;
    }
    notes.extend(skipped);
    for (c, o) in t.columns.iter().zip(&opts) {
        if o.identity {
            // the sequence continues after the copied maximum
            catalog::execute(&format!(
                "SELECT setval(pg_get_serial_sequence({}, {}), greatest(max({}), 1), max({}) IS NOT NULL) FROM {qualified}",
                sql::quote_literal(&qualified),
                sql::quote_literal(&c.name),
                quote_ident(&c.name),
                quote_ident(&c.name)
            ))?;
        }
    }
    catalog::set_table_notes(table_id, &notes)?;
    catalog::record_foreign_keys(table_id, &t.foreign_keys)?;
    catalog::set_table_copied(table_id, outcome.rows as i64, outcome.discards.len() as i64, point, replicate)?;
    Ok(outcome.conn)
}
