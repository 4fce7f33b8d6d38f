//! `refresh_schema`: a mapped MySQL schema copied again, as it is now on the source, while the
//! source keeps replicating. Its tables are read again from `information_schema` (new tables
//! are registered, changed ones re-registered with their new definition, tables gone from the
//! source are no longer replicated: their PostgreSQL tables are kept and named in the result)
//! and set to be copied; the `sync_tables` coordinator (`init`, SYNC_FLAG) then copies them.
//! Runs in the calling backend, inside its transaction.

use crate::catalog::{self, SourceRow};
use crate::core::endpoint::Endpoint;
use crate::core::mysql_source;
use crate::core::sql::{self, quote_ident};
use crate::error::{ChameleonError, Result};
use crate::workers::init;

pub struct Refreshed {
    /// MySQL `schema.table` of the tables to copy.
    pub tables: Vec<String>,
    /// PostgreSQL tables whose MySQL table is gone: kept, no longer replicated.
    pub gone: Vec<String>,
}

/// Registers the schema's tables to be copied. `only_new`: only tables not registered yet
/// (what `alter_source` adds when a schema is mapped or the filters let more in); otherwise
/// every table, and those gone from the source are forgotten.
pub fn register(source: &SourceRow, my_schema: &str, only_new: bool) -> Result<Refreshed> {
    let mappings = source.mappings()?;
    let Some(pg_schema) = mappings.0.get(my_schema).cloned() else {
        return Err(ChameleonError::not_found(format!(
            "source \"{}\" does not map a MySQL schema \"{my_schema}\" (schema_mappings: {})",
            source.name,
            mappings.0.keys().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
        )));
    };
    let options = source.options()?;
    let endpoint = Endpoint::resolve(&source.url, &options)?;
    let mut conn = mysql_source::connect(&endpoint, None)?;
    mysql_source::check_server(&mut conn)?;
    let extensions = catalog::extensions()?;
    let tables: Vec<_> = init::discover(&mut conn, source, &options, &extensions)?
        .into_iter()
        .filter(|t| t.mysql_schema == my_schema)
        .collect();
    init::check_table_names(source, &tables)?;
    // every table of the schema, the ones the filters leave out included: only a table missing
    // here is gone
    let present = mysql_source::list_tables(&mut conn, my_schema)?;
    let registered = catalog::tables_for_source(source.id)?;
    for t in &tables {
        let managed = registered.iter().any(|r| r.pg_schema == pg_schema && r.pg_table == t.mysql_table);
        if !managed && catalog::table_exists(&pg_schema, &t.mysql_table)? {
            return Err(ChameleonError::state(format!(
                "source \"{}\": table {} already exists in PostgreSQL and is not managed by this source",
                source.name,
                sql::qualified(&pg_schema, &t.mysql_table)
            ))
            .with_hint("drop or rename it"));
        }
    }
    catalog::execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&pg_schema)))?;
    let mut out = Refreshed { tables: Vec::new(), gone: Vec::new() };
    for t in &tables {
        let known = registered.iter().any(|r| r.mysql_schema == t.mysql_schema && r.mysql_table == t.mysql_table);
        if only_new && known {
            continue;
        }
        catalog::register_definition(source.id, t)?;
        out.tables.push(format!("{}.{}", t.mysql_schema, t.mysql_table));
    }
    for r in registered.iter().filter(|r| r.mysql_schema == my_schema && !only_new) {
        if !present.contains(&r.mysql_table) {
            catalog::unregister_table(r.id)?;
            out.gone.push(sql::qualified(&r.pg_schema, &r.pg_table));
        }
    }
    catalog::bump_table_generation(source.id)?;
    Ok(out)
}
