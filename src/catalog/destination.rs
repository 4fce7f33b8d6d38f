//! Questions to PostgreSQL's own catalogs about the destination database: whether a relation
//! exists, its columns and sequences, PostGIS, foreign keys referencing a table.

use super::execute;
use crate::core::types::Extensions;
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

/// The extensions installed in this database whose types the mapping uses (PostGIS,
/// pgvector, whose extension is named `vector`), with the schema of each one's types.
pub fn extensions() -> Result<Extensions> {
    Spi::connect(|client| {
        let t = client.select(
            "SELECT e.extname::text, n.nspname::text FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname IN ('postgis', 'vector')",
            None,
            &[],
        )?;
        let mut out = Extensions::default();
        for row in t {
            let (name, schema) = (row.get::<String>(1)?, row.get::<String>(2)?);
            match name.as_deref() {
                Some("postgis") => out.postgis = schema,
                Some("vector") => out.pgvector = schema,
                _ => {}
            }
        }
        Ok(out)
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::*;
    use crate::core::types::{col, map_column};
    use crate::core::value::from_text;

    /// A VECTOR(3) value as MySQL sends it: little-endian float32s.
    fn floats(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|f| f.to_le_bytes()).collect()
    }

    /// The column the mapping gives `v` (a VECTOR(3)) with `extensions`, created, filled with
    /// the converter's text for [1.1, -2.5e-7, 3.4028235e38] and read back as real[].
    fn round_trip(extensions: &Extensions) -> (String, Vec<f32>) {
        let mut c = col("v", "vector", "vector(3)");
        extensions.apply_to(&mut c);
        let mapped = map_column(&c, "public", "vt").unwrap();
        Spi::run(&format!("DROP TABLE IF EXISTS public.vt; CREATE TABLE public.vt (v {})", mapped.pg_type)).unwrap();
        let text = from_text(&mapped.kind, &floats(&[1.1, -2.5e-7, f32::MAX])).unwrap().unwrap();
        Spi::run(&format!(
            "INSERT INTO public.vt VALUES ({}::{})",
            crate::core::sql::quote_literal(&text),
            mapped.pg_type
        ))
        .unwrap();
        let back = Spi::get_one::<Vec<f32>>("SELECT v::real[] FROM public.vt").unwrap().unwrap();
        (mapped.pg_type, back)
    }

    #[pg_test]
    fn vector_columns_are_real_arrays_or_pgvector_exactly() {
        // without pgvector: real[]
        assert_eq!(extensions().unwrap(), Extensions::default());
        let (pg_type, back) = round_trip(&extensions().unwrap());
        assert_eq!(pg_type, "real[]");
        assert_eq!(back, vec![1.1, -2.5e-7, f32::MAX]);
        // with pgvector, where this PostgreSQL has it (scripts/setup.sh installs it for 16)
        let available =
            Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')")
                .unwrap();
        if available != Some(true) {
            return;
        }
        Spi::run("CREATE SCHEMA ext; CREATE EXTENSION vector SCHEMA ext").unwrap();
        let found = extensions().unwrap();
        assert_eq!(found.pgvector.as_deref(), Some("ext"));
        let (pg_type, back) = round_trip(&found);
        assert_eq!(pg_type, "\"ext\".\"vector\"(3)");
        assert_eq!(back, vec![1.1, -2.5e-7, f32::MAX]);
        let typ = Spi::get_one::<String>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.vt'::regclass AND attname = 'v'")
            .unwrap()
            .unwrap();
        assert_eq!(typ, "ext.vector(3)");
    }
}
