//! `t_foreign_keys`: the foreign keys of copied tables, recorded at copy time (and changed by
//! DDL replication) so that `detach_replica` can create them.

use super::run;
use crate::core::schema::ForeignKeyDef;
use crate::error::Result;
use pgrx::prelude::*;

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
