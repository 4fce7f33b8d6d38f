//! What the initial copy needs to know about one source table, read from
//! `information_schema`: columns (with type overrides applied), row estimate, defaults and
//! comments, indexes, the replica key, foreign keys, the table comment, and whether the table
//! can be copied and replicated at all. Used by the init coordinator (to register tables) and
//! by each copy worker (again, on its snapshot connection, just before copying the table).

use crate::core::error::CoreResult;
use crate::core::mysql_source;
use crate::core::options::SourceOptions;
use crate::core::schema::{self, ColumnExtra, ForeignKeyDef, IndexDef};
use crate::core::types::{map_column, Charset, Extensions, MySqlColumn, ValueKind};
use mysql::Conn;

#[derive(Debug, Clone)]
pub struct TableDefinition {
    pub mysql_schema: String,
    pub mysql_table: String,
    pub pg_schema: String,
    pub columns: Vec<MySqlColumn>,
    pub key: Vec<String>,
    pub estimate: i64,
    pub extras: Vec<ColumnExtra>,
    pub indexes: Vec<IndexDef>,
    pub foreign_keys: Vec<ForeignKeyDef>,
    pub comment: String,
    /// The storage engine (`information_schema.TABLES.ENGINE`), when the server says.
    pub engine: Option<String>,
    /// Why the table is copied but not replicated, or not copied at all.
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A column type we cannot map: the table is neither copied nor replicated.
    Unsupported(String),
    /// Copied, not replicated, for the reason given.
    CopyOnly(String),
}

impl TableDefinition {
    /// What `chameleon.tables` says about a table that is not replicated, if anything.
    pub fn problem_text(&self) -> Option<String> {
        match &self.problem {
            Some(Problem::Unsupported(m)) => Some(m.clone()),
            Some(Problem::CopyOnly(m)) => Some(format!("{m}: copied, not replicated")),
            None => None,
        }
    }

    pub fn copyable(&self) -> bool {
        !matches!(self.problem, Some(Problem::Unsupported(_)))
    }

    /// Whether the table's engine reads it in the copy's consistent snapshot (see
    /// `has_snapshots`).
    pub fn in_snapshot(&self) -> bool {
        has_snapshots(self.engine.as_deref())
    }
}

/// Whether an engine gives a table consistent snapshots (multiversioning: InnoDB and its
/// XtraDB build, MyRocks, TokuDB). The others (MyISAM, Aria, MEMORY, CSV, ARCHIVE, MERGE,
/// CONNECT, ...) are read as they are at the moment they are read, whatever snapshot the
/// connection holds: their copy needs a lock of its own. An engine not named (None: the server
/// does not say) is locked too: a lock is always correct, only slower for writers.
pub fn has_snapshots(engine: Option<&str>) -> bool {
    engine.is_some_and(|e| ["InnoDB", "XtraDB", "RocksDB", "TokuDB"].iter().any(|m| e.eq_ignore_ascii_case(m)))
}

/// Reads the definition of `my_schema.table`, mapped into `pg_schema` (spatial columns as
/// PostGIS geometry and VECTOR as pgvector's vector where `extensions` has them).
pub fn describe(
    conn: &mut Conn,
    options: &SourceOptions,
    my_schema: &str,
    table: &str,
    pg_schema: &str,
    extensions: &Extensions,
) -> CoreResult<TableDefinition> {
    let mut columns = mysql_source::table_columns(conn, my_schema, table)?;
    for c in columns.iter_mut() {
        c.pg_override = options.override_for(my_schema, table, &c.column_type);
        c.zero_dates = options.zero_dates;
        extensions.apply_to(c);
    }
    let estimate = mysql_source::row_estimate(conn, my_schema, table)?;
    let extras = mysql_source::column_extras(conn, my_schema, table)?;
    let indexes = mysql_source::table_indexes(conn, my_schema, table)?;
    let key = schema::replica_key(&indexes, &columns);
    let foreign_keys = mysql_source::foreign_keys(conn, my_schema, table)?;
    let comment = mysql_source::table_comment(conn, my_schema, table)?;
    let engine = mysql_source::table_engine(conn, my_schema, table)?;
    let mapped: Result<Vec<_>, _> = columns.iter().map(|c| map_column(c, pg_schema, table)).collect();
    let collision = crate::core::sql::identifier_collision(columns.iter().map(|c| c.name.as_str()));
    let problem = match mapped {
        _ if collision.is_some() => collision.map(|(a, b)| {
            Problem::Unsupported(format!(
                "columns \"{a}\" and \"{b}\" have the same first 63 bytes, the longest name PostgreSQL keeps"
            ))
        }),
        Err(e) => Some(Problem::Unsupported(e.to_string())),
        Ok(mapped) => {
            columns.iter().zip(&mapped).find(|(_, m)| m.kind == ValueKind::Text(Charset::Other)).map(|(c, _)| {
                Problem::CopyOnly(format!(
                    "column \"{}\" has character set {}, which the change stream cannot decode yet",
                    c.name,
                    c.charset.as_deref().unwrap_or("?")
                ))
            })
        }
    };
    Ok(TableDefinition {
        mysql_schema: my_schema.to_string(),
        mysql_table: table.to_string(),
        pg_schema: pg_schema.to_string(),
        columns,
        key,
        estimate,
        extras,
        indexes,
        foreign_keys,
        comment,
        engine,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::has_snapshots;

    #[test]
    fn only_multiversion_engines_are_read_in_the_snapshot() {
        for e in ["InnoDB", "innodb", "RocksDB", "TokuDB"] {
            assert!(has_snapshots(Some(e)), "{e}");
        }
        for e in [Some("MyISAM"), Some("Aria"), Some("MEMORY"), Some("CSV"), Some("MRG_MyISAM"), Some(""), None] {
            assert!(!has_snapshots(e), "{e:?}");
        }
    }
}
