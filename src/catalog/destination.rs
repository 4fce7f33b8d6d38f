//! Questions to PostgreSQL's own catalogs about the destination database: whether a relation
//! exists, its columns and sequences, PostGIS, foreign keys referencing a table.

use super::execute;
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;

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

/// Whether a relation exists and, if so, whether some table of the source owns it.
/// (Names longer than 63 bytes are cut as PostgreSQL cuts them.)
pub fn table_exists(schema: &str, table: &str) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
        &[crate::core::sql::pg_identifier(schema).into(), crate::core::sql::pg_identifier(table).into()],
    )?
    .unwrap_or(false))
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
