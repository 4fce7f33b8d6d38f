//! Everything the extension asks a MySQL/MariaDB server outside the binlog stream:
//! connecting with timeouts, checking the replication settings, reading table definitions
//! from `information_schema`, taking the consistent snapshot of the initial copy (global read
//! lock held only while coordinates are read and snapshots opened) and streaming a table's rows.
//! Pure Rust: runs on reader/copy threads, never touches PostgreSQL.

use crate::core::endpoint::Endpoint;
use crate::core::error::{from_mysql, CoreError, CoreResult};
use crate::core::options::SslMode;
use crate::core::position::BinlogPosition;
use crate::core::sql::quote_mysql_ident;
use crate::core::types::MySqlColumn;
use mysql::prelude::Queryable;
use mysql::{Conn, Row, Value};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MariaDb,
    MySql,
}

#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub flavor: Flavor,
    pub version: String,
}

/// A connection to the source, over TLS as `ssl_mode` says: `preferred` falls back to plain
/// TCP only when the server offers no TLS, or only TLS versions or ciphers rustls refuses
/// (TLS 1.0/1.1 of old MySQL 5.x builds), never on a refused certificate.
pub fn connect(endpoint: &Endpoint, read_timeout: Option<Duration>) -> CoreResult<Conn> {
    let tls = endpoint.ssl_mode() != SslMode::Disabled;
    match Conn::new(endpoint.opts(read_timeout, tls)) {
        Ok(conn) => Ok(conn),
        Err(e) if endpoint.ssl_mode() == SslMode::Preferred && Endpoint::tls_unavailable(&e) => {
            Conn::new(endpoint.opts(read_timeout, false)).map_err(|e| endpoint.connect_error(e))
        }
        Err(e) => Err(endpoint.connect_error(e)),
    }
}

fn q<T: mysql::prelude::FromRow>(conn: &mut Conn, sql: &str) -> CoreResult<Vec<T>> {
    conn.query(sql).map_err(|e| from_mysql(e, &format!("query \"{sql}\" failed")))
}

fn exec(conn: &mut Conn, sql: &str) -> CoreResult<()> {
    conn.query_drop(sql).map_err(|e| from_mysql(e, &format!("statement \"{sql}\" failed")))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::NULL => None,
        other => Some(format!("{other:?}")),
    }
}

fn row_text(row: &Row, i: usize) -> Option<String> {
    row.as_ref(i).and_then(text)
}

pub fn variable(conn: &mut Conn, name: &str) -> CoreResult<Option<String>> {
    let rows: Vec<Row> = q(conn, &format!("SHOW GLOBAL VARIABLES LIKE '{name}'"))?;
    Ok(rows.first().and_then(|r| row_text(r, 1)))
}

/// Checks the settings row-based replication needs, naming the one to change.
pub fn check_server(conn: &mut Conn) -> CoreResult<ServerInfo> {
    let version: Vec<String> = q(conn, "SELECT VERSION()")?;
    let version = version.into_iter().next().unwrap_or_default();
    let flavor = if version.to_ascii_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::MySql };
    let log_bin = variable(conn, "log_bin")?.unwrap_or_default();
    if !log_bin.eq_ignore_ascii_case("ON") && log_bin != "1" {
        return Err(CoreError::source_config("the source has no binary log".into())
            .with_hint("start it with log_bin (for example log_bin=mysql-bin) and server_id set"));
    }
    let format = variable(conn, "binlog_format")?.unwrap_or_default();
    if !format.eq_ignore_ascii_case("ROW") {
        return Err(CoreError::source_config(format!("binlog_format is {format}"))
            .with_detail("replication decodes row events")
            .with_hint("set binlog_format=ROW on the source"));
    }
    if let Some(image) = variable(conn, "binlog_row_image")? {
        if !image.eq_ignore_ascii_case("FULL") {
            return Err(CoreError::source_config(format!("binlog_row_image is {image}"))
                .with_detail("replication needs every column of every changed row")
                .with_hint("set binlog_row_image=FULL on the source"));
        }
    }
    // MySQL 8's binlog_transaction_compression is read (the reader decompresses its
    // TRANSACTION_PAYLOAD_EVENTs); MariaDB's compressed events are not
    for (setting, what) in [("log_bin_compress", "log_bin_compress=OFF")] {
        if variable(conn, setting)?.is_some_and(|v| v.eq_ignore_ascii_case("ON") || v == "1") {
            return Err(CoreError::source_config(format!("{setting} is ON"))
                .with_detail("compressed binlog events cannot be decoded")
                .with_hint(format!("set {what} on the source")));
        }
    }
    Ok(ServerInfo { flavor, version })
}

/// The current binlog coordinates and GTID state: MySQL's `SHOW BINARY LOG STATUS` (8.2 and
/// later; 8.4 removed `SHOW MASTER STATUS`), else `SHOW MASTER STATUS` (MariaDB, MySQL before
/// 8.2).
pub fn binlog_status(conn: &mut Conn, flavor: Flavor) -> CoreResult<(BinlogPosition, Option<String>)> {
    let rows: Vec<Row> = match flavor {
        Flavor::MySql => match conn.query("SHOW BINARY LOG STATUS") {
            Ok(r) => r,
            Err(_) => q(conn, "SHOW MASTER STATUS")?,
        },
        Flavor::MariaDb => q(conn, "SHOW MASTER STATUS")?,
    };
    let row = rows.first().ok_or_else(|| {
        CoreError::source_config("SHOW MASTER STATUS returned nothing: the binary log is disabled".into())
    })?;
    let file = row_text(row, 0).unwrap_or_default();
    let pos = row_text(row, 1)
        .and_then(|p| p.parse::<u64>().ok())
        .ok_or_else(|| CoreError::source_query("SHOW MASTER STATUS returned no position".into()))?;
    let gtid = match flavor {
        Flavor::MariaDb => q::<Option<String>>(conn, "SELECT @@GLOBAL.gtid_binlog_pos")?.into_iter().next().flatten(),
        Flavor::MySql => row_text(row, 4),
    }
    .filter(|g| !g.is_empty());
    Ok((BinlogPosition::new(file, pos), gtid))
}

/// The binlog files the source still has, with their sizes (`SHOW BINARY LOGS`).
pub fn binlog_files(conn: &mut Conn) -> CoreResult<Vec<(String, u64)>> {
    let rows: Vec<Row> = q(conn, "SHOW BINARY LOGS")?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((row_text(r, 0)?, row_text(r, 1).and_then(|s| s.parse().ok()).unwrap_or(0))))
        .collect())
}

/// Base tables of a schema, by name.
pub fn list_tables(conn: &mut Conn, schema: &str) -> CoreResult<Vec<String>> {
    let rows: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            (schema,),
        )
        .map_err(|e| from_mysql(e, &format!("cannot list the tables of schema \"{schema}\"")))?;
    Ok(rows)
}

pub fn schema_exists(conn: &mut Conn, schema: &str) -> CoreResult<bool> {
    let rows: Vec<String> = conn
        .exec("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", (schema,))
        .map_err(|e| from_mysql(e, "cannot read information_schema.SCHEMATA"))?;
    Ok(!rows.is_empty())
}

/// The default character set of each of `schemas` that exists (for columns a DDL statement
/// creates without one).
pub fn schema_charsets(conn: &mut Conn, schemas: &[String]) -> CoreResult<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = conn
        .query("SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA")
        .map_err(|e| from_mysql(e, "cannot read information_schema.SCHEMATA"))?;
    Ok(rows.into_iter().filter(|(s, _)| schemas.contains(s)).collect())
}

fn opt_u64(row: &Row, i: usize) -> Option<u64> {
    row_text(row, i).and_then(|s| s.parse().ok())
}

/// Columns in ordinal order: the order of values in binlog row images.
pub fn table_columns(conn: &mut Conn, schema: &str, table: &str) -> CoreResult<Vec<MySqlColumn>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, \
             NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (schema, table),
        )
        .map_err(|e| from_mysql(e, &format!("cannot read the columns of {schema}.{table}")))?;
    Ok(rows
        .iter()
        .map(|r| MySqlColumn {
            name: row_text(r, 0).unwrap_or_default(),
            data_type: row_text(r, 1).unwrap_or_default(),
            column_type: row_text(r, 2).unwrap_or_default(),
            nullable: row_text(r, 3).as_deref() == Some("YES"),
            char_max_len: opt_u64(r, 4),
            numeric_precision: opt_u64(r, 5),
            numeric_scale: opt_u64(r, 6),
            datetime_precision: opt_u64(r, 7),
            pg_override: None,
            zero_dates: Default::default(),
            charset: row_text(r, 8),
            postgis: None,
            pgvector: None,
        })
        .collect())
}

pub fn row_estimate(conn: &mut Conn, schema: &str, table: &str) -> CoreResult<i64> {
    let rows: Vec<Option<u64>> = conn
        .exec(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, table),
        )
        .map_err(|e| from_mysql(e, &format!("cannot read the size of {schema}.{table}")))?;
    Ok(rows.into_iter().next().flatten().unwrap_or(0) as i64)
}

/// Session settings for copy connections: UTF-8 text, TIMESTAMP read in UTC, long timeouts.
pub fn prepare_copy_session(conn: &mut Conn) -> CoreResult<()> {
    exec(conn, "SET NAMES utf8mb4")?;
    exec(conn, "SET SESSION time_zone = '+00:00'")?;
    exec(conn, "SET SESSION net_write_timeout = 3600, net_read_timeout = 3600")?;
    exec(conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
}

/// The coordinator's global read lock (`FLUSH TABLES WITH READ LOCK`): while it is held no
/// transaction commits on the source, so every copy connection that opens its snapshot
/// meanwhile sees the source exactly as of the coordinates read under the lock.
pub struct GlobalLock {
    conn: Conn,
    since: std::time::Instant,
}

/// Whether the global read lock could be taken, or why the user may not take it.
pub enum LockOutcome {
    Held(GlobalLock),
    /// The user lacks the privilege (MySQL error 1227/1045): the copy falls back to per-table
    /// consistent points.
    Refused(String),
}

pub fn lock_global(endpoint: &Endpoint, lock_timeout_secs: u32) -> CoreResult<LockOutcome> {
    let mut conn = connect(endpoint, None)?;
    exec(&mut conn, &format!("SET SESSION lock_wait_timeout = {lock_timeout_secs}"))?;
    match conn.query_drop("FLUSH TABLES WITH READ LOCK") {
        Ok(()) => Ok(LockOutcome::Held(GlobalLock { conn, since: std::time::Instant::now() })),
        Err(mysql::Error::MySqlError(e)) if e.code == 1227 || e.code == 1045 || e.code == 1142 => {
            Ok(LockOutcome::Refused(format!("MySQL error {}: {}", e.code, e.message)))
        }
        Err(e) => Err(from_mysql(e, "cannot take the global read lock for the consistent snapshot")),
    }
}

impl GlobalLock {
    /// The binlog coordinates (and GTID) every snapshot opened under the lock corresponds to.
    pub fn position(&mut self, flavor: Flavor) -> CoreResult<(BinlogPosition, Option<String>)> {
        binlog_status(&mut self.conn, flavor)
    }

    /// Releases the lock; returns how long it was held.
    pub fn release(mut self) -> CoreResult<Duration> {
        exec(&mut self.conn, "UNLOCK TABLES")?;
        Ok(self.since.elapsed())
    }
}

/// Opens (or reopens) the connection's consistent-snapshot transaction.
pub fn open_snapshot(conn: &mut Conn) -> CoreResult<()> {
    exec(conn, "COMMIT")?;
    exec(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
}

/// Per-table consistent point, for users who may not take the global read lock: reopens the
/// snapshot of `snap` so that it corresponds to the returned coordinates as far as
/// `schema.table` is concerned. MariaDB reports the coordinates of a snapshot itself
/// (`binlog_snapshot_file/position`, no lock at all); MySQL needs `LOCK TABLES ... READ` on a
/// second connection while the snapshot is opened and the coordinates read (the lock waits
/// for every open transaction that wrote the table).
pub fn table_snapshot(
    snap: &mut Conn,
    lock: &mut Conn,
    flavor: Flavor,
    schema: &str,
    table: &str,
) -> CoreResult<(BinlogPosition, Option<String>)> {
    match flavor {
        Flavor::MariaDb => {
            open_snapshot(snap)?;
            let rows: Vec<Row> = q(snap, "SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")?;
            let get = |name: &str| {
                rows.iter()
                    .find(|r| row_text(r, 0).is_some_and(|n| n.eq_ignore_ascii_case(name)))
                    .and_then(|r| row_text(r, 1))
            };
            let file = get("Binlog_snapshot_file").filter(|f| !f.is_empty()).ok_or_else(|| {
                CoreError::source_config(
                    "the server reports no binlog_snapshot_file: the binary log is disabled".into(),
                )
            })?;
            let pos = get("Binlog_snapshot_position")
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(|| CoreError::source_query("the server reports no binlog_snapshot_position".into()))?;
            Ok((BinlogPosition::new(file, pos), None))
        }
        Flavor::MySql => {
            let name = format!("{}.{}", quote_mysql_ident(schema), quote_mysql_ident(table));
            exec(lock, &format!("LOCK TABLES {name} READ")).map_err(|e| {
                e.context(format!("cannot lock {schema}.{table} for its consistent point (the user needs LOCK TABLES)"))
            })?;
            let res = open_snapshot(snap).and_then(|_| binlog_status(lock, flavor));
            let unlock = exec(lock, "UNLOCK TABLES");
            let point = res?;
            unlock?;
            Ok(point)
        }
    }
}

/// The storage engine of a table (`information_schema.TABLES.ENGINE`); None when the server
/// does not say.
pub fn table_engine(conn: &mut Conn, schema: &str, table: &str) -> CoreResult<Option<String>> {
    let rows: Vec<Option<String>> = conn
        .exec("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", (schema, table))
        .map_err(|e| from_mysql(e, &format!("cannot read the engine of {schema}.{table}")))?;
    Ok(rows.into_iter().next().flatten().filter(|e| !e.is_empty()))
}

/// The copy of a table whose engine has no consistent snapshot (MyISAM, Aria, MEMORY...):
/// `LOCK TABLES t READ` on `conn` (a connection of its own: LOCK TABLES ends a connection's
/// transaction), waiting at most `lock_timeout_secs` for the writes under way, then the binlog
/// coordinates, which are the table's consistent point: every write to it that finished is
/// in the binlog before them (a non-transactional table's changes are written to the binlog
/// before its table lock is released), and every later write waits for `unlock_tables`.
/// The rows are then read on `conn`, still locked.
pub fn lock_table_for_copy(
    conn: &mut Conn,
    flavor: Flavor,
    schema: &str,
    table: &str,
    engine: &str,
    lock_timeout_secs: u32,
) -> CoreResult<BinlogPosition> {
    exec(conn, &format!("SET SESSION lock_wait_timeout = {lock_timeout_secs}"))?;
    let name = format!("{}.{}", quote_mysql_ident(schema), quote_mysql_ident(table));
    match conn.query_drop(format!("LOCK TABLES {name} READ")) {
        Ok(()) => {}
        Err(mysql::Error::MySqlError(e)) if e.code == 1044 || e.code == 1142 || e.code == 1227 => {
            return Err(CoreError::source_config(format!(
                "cannot copy {schema}.{table}: its engine {engine} has no consistent snapshot, so it is copied \
                 under LOCK TABLES {schema}.{table} READ, which the user may not take (MySQL error {}: {})",
                e.code, e.message
            ))
            .with_hint(format!(
                "GRANT LOCK TABLES ON {}.* TO the replication user, or convert the table to InnoDB \
                 (ALTER TABLE {name} ENGINE=InnoDB), then init_replica or sync_tables again",
                quote_mysql_ident(schema)
            )))
        }
        Err(e) => return Err(from_mysql(e, &format!("cannot lock {schema}.{table} ({engine}) for its copy"))),
    }
    binlog_status(conn, flavor).map(|(point, _)| point)
}

/// Releases `lock_table_for_copy`'s lock.
pub fn unlock_tables(conn: &mut Conn) -> CoreResult<()> {
    exec(conn, "UNLOCK TABLES")
}

/// Streams every row of a table (unbuffered: rows are read from the socket as they are
/// consumed) to `on_row`, as raw text-protocol values in column order.
pub fn stream_rows<F>(
    conn: &mut Conn,
    schema: &str,
    table: &str,
    columns: &[MySqlColumn],
    filter: Option<&str>,
    mut on_row: F,
) -> CoreResult<u64>
where
    F: FnMut(Vec<Option<Vec<u8>>>) -> CoreResult<()>,
{
    // FLOAT is read as the double it holds (times 1, which keeps -0): its own text form has 6
    // digits, not enough to give back every float exactly
    let cols: Vec<String> = columns
        .iter()
        .map(|c| match c.data_type.as_str() {
            "float" => format!("{} * 1e0", quote_mysql_ident(&c.name)),
            _ => quote_mysql_ident(&c.name),
        })
        .collect();
    let mut sql = format!("SELECT {} FROM {}.{}", cols.join(", "), quote_mysql_ident(schema), quote_mysql_ident(table));
    if let Some(f) = filter {
        sql.push_str(" WHERE ");
        sql.push_str(f);
    }
    let what = format!("reading {schema}.{table}");
    let mut result = conn.query_iter(&sql).map_err(|e| from_mysql(e, &what))?;
    let mut n = 0u64;
    while let Some(set) = result.iter() {
        for row in set {
            let row = row.map_err(|e| from_mysql(e, &what))?;
            let values = row
                .unwrap_raw()
                .into_iter()
                .map(|v| match v {
                    None | Some(Value::NULL) => None,
                    Some(Value::Bytes(b)) => Some(b),
                    Some(other) => Some(format!("{other:?}").into_bytes()),
                })
                .collect();
            on_row(values)?;
            n += 1;
        }
    }
    Ok(n)
}

/// The smallest and largest value of an integer key column, on the connection's snapshot
/// (`None` for an empty table).
pub fn key_span(conn: &mut Conn, schema: &str, table: &str, column: &str) -> CoreResult<Option<(i128, i128)>> {
    let c = quote_mysql_ident(column);
    let sql = format!(
        "SELECT CAST(MIN({c}) AS CHAR), CAST(MAX({c}) AS CHAR) FROM {}.{}",
        quote_mysql_ident(schema),
        quote_mysql_ident(table)
    );
    let rows: Vec<Row> = q(conn, &sql)?;
    let Some(r) = rows.first() else { return Ok(None) };
    let parse = |i| {
        row_text(r, i)
            .map(|s| {
                s.parse::<i128>().map_err(|_| {
                    CoreError::source_query(format!("key span of {schema}.{table}: {s} is not an integer"))
                })
            })
            .transpose()
    };
    Ok(match (parse(0)?, parse(1)?) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        _ => None,
    })
}

/// Defaults, EXTRA and comments of the columns, in ordinal order.
pub fn column_extras(conn: &mut Conn, schema: &str, table: &str) -> CoreResult<Vec<crate::core::schema::ColumnExtra>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (schema, table),
        )
        .map_err(|e| from_mysql(e, &format!("cannot read the columns of {schema}.{table}")))?;
    Ok(rows
        .iter()
        .map(|r| crate::core::schema::ColumnExtra {
            default: row_text(r, 0),
            extra: row_text(r, 1).unwrap_or_default(),
            comment: row_text(r, 2).unwrap_or_default(),
        })
        .collect())
}

/// Every index of a table (PRIMARY included), columns in index order.
pub fn table_indexes(conn: &mut Conn, schema: &str, table: &str) -> CoreResult<Vec<crate::core::schema::IndexDef>> {
    let rows: Vec<Row> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, INDEX_TYPE, SUB_PART FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            (schema, table),
        )
        .map_err(|e| from_mysql(e, &format!("cannot read the indexes of {schema}.{table}")))?;
    let mut out: Vec<crate::core::schema::IndexDef> = Vec::new();
    for r in &rows {
        let name = row_text(r, 0).unwrap_or_default();
        let column = row_text(r, 2).unwrap_or_default();
        let prefix = row_text(r, 4).is_some();
        match out.last_mut() {
            Some(ix) if ix.name == name => {
                ix.columns.push(column);
                ix.prefix |= prefix;
            }
            _ => out.push(crate::core::schema::IndexDef {
                name,
                unique: row_text(r, 1).as_deref() == Some("0"),
                columns: vec![column],
                kind: row_text(r, 3).unwrap_or_default(),
                prefix,
            }),
        }
    }
    Ok(out)
}

/// Foreign keys declared on a table: columns from KEY_COLUMN_USAGE, actions from SHOW CREATE
/// TABLE.
pub fn foreign_keys(conn: &mut Conn, schema: &str, table: &str) -> CoreResult<Vec<crate::core::schema::ForeignKeyDef>> {
    let what = format!("cannot read the foreign keys of {schema}.{table}");
    // ON UPDATE / ON DELETE come from SHOW CREATE TABLE: information_schema's
    // REFERENTIAL_CONSTRAINTS shows nothing to a user with only SELECT on the table (MariaDB)
    let create: Vec<(String, String)> = conn
        .query(format!("SHOW CREATE TABLE {}.{}", quote_mysql_ident(schema), quote_mysql_ident(table)))
        .map_err(|e| from_mysql(e, &what))?;
    let rules = create.first().map(|(_, ddl)| crate::core::schema::foreign_key_rules(ddl)).unwrap_or_default();
    let rows: Vec<Row> = conn
        .exec(
            "SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME \
             FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
            (schema, table),
        )
        .map_err(|e| from_mysql(e, &what))?;
    let mut out: Vec<crate::core::schema::ForeignKeyDef> = Vec::new();
    for r in &rows {
        let name = row_text(r, 0).unwrap_or_default();
        let col = row_text(r, 1).unwrap_or_default();
        let ref_col = row_text(r, 4).unwrap_or_default();
        match out.last_mut() {
            Some(fk) if fk.name == name => {
                fk.columns.push(col);
                fk.ref_columns.push(ref_col);
            }
            _ => {
                let rule = rules.get(&name);
                out.push(crate::core::schema::ForeignKeyDef {
                    columns: vec![col],
                    ref_schema: row_text(r, 2).unwrap_or_default(),
                    ref_table: row_text(r, 3).unwrap_or_default(),
                    ref_columns: vec![ref_col],
                    on_update: rule.map(|r| r.0.clone()).unwrap_or_else(|| "RESTRICT".into()),
                    on_delete: rule.map(|r| r.1.clone()).unwrap_or_else(|| "RESTRICT".into()),
                    name,
                })
            }
        }
    }
    Ok(out)
}

pub fn table_comment(conn: &mut Conn, schema: &str, table: &str) -> CoreResult<String> {
    let rows: Vec<Option<String>> = conn
        .exec(
            "SELECT TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (schema, table),
        )
        .map_err(|e| from_mysql(e, &format!("cannot read the comment of {schema}.{table}")))?;
    Ok(rows.into_iter().next().flatten().unwrap_or_default())
}
