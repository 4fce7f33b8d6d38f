//! DDL replication: a MySQL/MariaDB statement from a binlog QUERY event, translated into the
//! PostgreSQL statements that give the replica the same structure, and the new definitions of
//! the replicated tables it touches. Pure: no PostgreSQL, no MySQL connection.
//!
//! `normalize` strips what sqlparser cannot read (version comments, MariaDB-only forms),
//! `parse` turns the statement into our own small AST (`DdlStatement`), `model` applies it to
//! the table definitions, `translate` writes the PostgreSQL.

use crate::core::mapping::SchemaMappings;
use crate::core::mysql_source::Flavor;
use crate::core::options::SourceOptions;
use crate::core::schema::{ColumnExtra, ForeignKeyDef, IndexDef};
use crate::core::types::MySqlColumn;
use std::collections::HashMap;

/// MySQL (schema, table).
pub type TableName = (String, String);

/// One replicated table as the catalogue knows it: everything needed to decode its rows and
/// to change its PostgreSQL table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableModel {
    pub mysql_schema: String,
    pub mysql_table: String,
    pub pg_schema: String,
    /// The PostgreSQL table: the MySQL name (PostgreSQL cuts it to 63 bytes).
    pub pg_table: String,
    /// In MySQL ordinal order.
    pub columns: Vec<MySqlColumn>,
    /// Parallel to `columns`: default, EXTRA (auto_increment, ...), comment.
    pub extras: Vec<ColumnExtra>,
    /// Every index, `PRIMARY` included.
    pub indexes: Vec<IndexDef>,
    /// The replica key: `schema::replica_key(&indexes, &columns)`.
    pub key: Vec<String>,
    pub foreign_keys: Vec<ForeignKeyDef>,
}

/// What the translator needs besides the statement.
pub struct DdlContext<'a> {
    /// The schema of the QUERY event (`USE`d by the session); may be empty.
    pub default_schema: &'a str,
    pub mappings: &'a SchemaMappings,
    /// type_override, zero_dates, limit_tables/skip_tables (`table_selected`).
    pub options: &'a SourceOptions,
    pub flavor: Flavor,
    /// The destination's PostGIS and pgvector, where installed.
    pub extensions: &'a crate::core::types::Extensions,
    /// The replicated tables (every table the catalogue has for the source).
    pub tables: &'a HashMap<TableName, TableModel>,
    /// Default character set of each MySQL schema, where known.
    pub schema_charsets: &'a HashMap<String, String>,
}

/// What happens to one table (or schema) because of the statement.
#[derive(Debug, Clone, PartialEq)]
pub enum TableAction {
    /// A new table, replicated from this event on; `problem` says why it is not replicated
    /// (no key, a type we cannot map): it is then registered disabled.
    Create {
        model: TableModel,
        problem: Option<String>,
    },
    /// The table's definition changed; `from` is its name before the statement (a rename
    /// changes the name in `model`).
    Alter {
        from: TableName,
        model: TableModel,
    },
    Drop(TableName),
    Truncate(TableName),
    /// CREATE DATABASE / DROP DATABASE of a mapped schema (PostgreSQL schema name).
    CreateSchema(String),
    DropSchema(String),
}

/// One step of a translated statement: run `sql` in order (one subtransaction), then record
/// `action` in the catalogue. On failure, the table of the step is disabled.
#[derive(Debug, Clone, PartialEq)]
pub struct DdlStep {
    /// The table the step is about (before the statement), for errors.
    pub table: Option<TableName>,
    pub action: TableAction,
    pub sql: Vec<String>,
    /// What could not be reproduced (an index PostgreSQL cannot build, a default).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DdlOutcome {
    /// Nothing to do for the replica, and why (no PostgreSQL meaning, schema not mapped,
    /// table not replicated): counted, never an error.
    Skipped(String),
    Apply(Vec<DdlStep>),
}

/// A statement that matters but cannot be translated: the table it is about (disabled by the
/// caller) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DdlError {
    pub table: Option<TableName>,
    pub message: String,
}

impl std::fmt::Display for DdlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.table {
            Some((s, t)) => write!(f, "{s}.{t}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[cfg(test)]
mod corpus;
mod model;
mod normalize;
mod parse;
mod pgsql;
mod translate;

/// Translates one statement. Ok(Skipped(reason)) for statements with no meaning for the
/// replica or outside mapped schemas / replicated tables; Err only for a statement that
/// matters (touches a replicated table or a mapped schema) but cannot be translated — the
/// error names the table.
pub fn translate(query: &str, ctx: &DdlContext) -> Result<DdlOutcome, DdlError> {
    translate::translate(query, ctx)
}

/// Cheap check for the binlog reader thread (it has no table models): whether the statement
/// may change the structure of something in a mapped schema (`mapped(mysql_schema)`). True
/// for CREATE/ALTER/DROP/RENAME/TRUNCATE of tables/indexes/databases that name (qualified,
/// or via default_schema) a mapped schema. A statement that cannot be read but starts with
/// such a keyword counts as "may" when it mentions a mapped schema or the default schema is
/// mapped. False for BEGIN/COMMIT/SAVEPOINT/XA/GRANT/views/triggers/routines/ANALYZE/etc.
pub fn may_affect(query: &str, default_schema: &str, mapped: &dyn Fn(&str) -> bool) -> bool {
    use parse::Stmt;
    let toks = normalize::lex(query);
    let schema_of = |n: &parse::Name| n.schema.clone().unwrap_or_else(|| default_schema.to_string());
    let any = |names: &mut dyn Iterator<Item = &parse::Name>| {
        for n in names {
            let s = schema_of(n);
            if !s.is_empty() && mapped(&s) {
                return true;
            }
        }
        false
    };
    match parse::statement(&toks) {
        Ok(Stmt::Skip(_)) => false,
        Ok(Stmt::CreateTable { temporary: true, .. }) | Ok(Stmt::DropTable { temporary: true, .. }) => false,
        Ok(Stmt::CreateTable { name, .. }) | Ok(Stmt::AlterTable { name, .. }) | Ok(Stmt::Truncate(name)) => {
            any(&mut std::iter::once(&name))
        }
        Ok(Stmt::CreateIndex { table, .. }) | Ok(Stmt::DropIndex { table, .. }) => any(&mut std::iter::once(&table)),
        Ok(Stmt::DropTable { names, .. }) => any(&mut names.iter()),
        Ok(Stmt::Rename(pairs)) => any(&mut pairs.iter().flat_map(|(a, b)| [a, b])),
        Ok(Stmt::CreateDatabase(s)) | Ok(Stmt::DropDatabase(s)) => mapped(&s),
        Err(fail) => {
            if let Some(n) = &fail.table {
                if any(&mut std::iter::once(n)) {
                    return true;
                }
            }
            let mentions = toks.iter().filter_map(normalize::Tok::ident).any(mapped);
            mentions || (!default_schema.is_empty() && mapped(default_schema))
        }
    }
}

/// For the binlog reader: the replicated table a data-changing statement logged as text
/// (binlog_format STATEMENT or MIXED) names, if any: `(schema, table)` for the first name in an
/// INSERT / REPLACE / UPDATE / DELETE / LOAD / WITH statement that, qualified or in
/// `default_schema`, is a replicated table (`replicated(schema, table)`). Such a change has no
/// rows in the binlog: skipping it would lose it. Other statements (BEGIN, COMMIT, SAVEPOINT,
/// XA, SET, DDL, ...) and statements naming no replicated table give `None`.
pub fn logged_dml_target(
    query: &str,
    default_schema: &str,
    replicated: &dyn Fn(&str, &str) -> bool,
) -> Option<TableName> {
    let toks = normalize::lex(query);
    let first = toks.first()?;
    if !["INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD", "WITH"].iter().any(|kw| first.is(kw)) {
        return None;
    }
    let mut i = 0;
    while i < toks.len() {
        let Some(a) = toks[i].ident() else {
            i += 1;
            continue;
        };
        let qualified =
            toks.get(i + 1).is_some_and(|t| t.is_punct(".")).then(|| toks.get(i + 2).and_then(|t| t.ident()));
        match qualified {
            Some(Some(b)) => {
                if replicated(a, b) {
                    return Some((a.to_string(), b.to_string()));
                }
                i += 3;
            }
            _ => {
                if !default_schema.is_empty() && replicated(default_schema, a) {
                    return Some((default_schema.to_string(), a.to_string()));
                }
                i += 1;
            }
        }
    }
    None
}

/// A model from a CREATE TABLE text (used also by tests and by the caller): the table of the
/// statement (its schema, or `ctx.default_schema`), mapped into its PostgreSQL schema.
pub fn model_from_create(create_table: &str, ctx: &DdlContext) -> Result<TableModel, DdlError> {
    let toks = normalize::lex(create_table);
    let bad = |table: Option<TableName>, message: String| DdlError { table, message };
    match parse::statement(&toks) {
        Ok(parse::Stmt::CreateTable { name, body: parse::CreateBody::Elements { elements, charset, .. }, .. }) => {
            let t = (name.schema.clone().unwrap_or_else(|| ctx.default_schema.to_string()), name.table.clone());
            let pg =
                ctx.mappings.target(&t.0).ok_or_else(|| bad(Some(t.clone()), "schema not mapped".into()))?.to_string();
            let (m, _) = translate::model_from_elements(ctx, &t, &pg, &elements, charset)
                .map_err(|e| bad(Some(t.clone()), e))?;
            Ok(m)
        }
        Ok(_) => Err(bad(None, "not a CREATE TABLE with columns".into())),
        Err(f) => {
            Err(bad(f.table.map(|n| (n.schema.unwrap_or_else(|| ctx.default_schema.to_string()), n.table)), f.message))
        }
    }
}
