//! `detach_replica`: the end of a migration. With the workers stopped and the stored changes
//! replayed (by the caller, `api::replica`), the source's tables become ordinary read-write
//! tables: every sequence moves past its column's maximum, the recorded foreign keys are
//! created as the application had them (NOT VALID, then validated; what fails is reported,
//! not fatal), and the source leaves the catalogue. Runs in the calling backend, in its
//! transaction: if anything here fails, nothing is detached.

use crate::catalog::{self, SourceRow};
use crate::core::schema::{self, ForeignKeyUse};
use crate::core::sql::{self, quote_ident};
use crate::error::Result;
use crate::workers::txn::in_subtransaction;

/// What detaching did, for the DBA.
#[derive(Debug, Default)]
pub struct Detached {
    pub tables: usize,
    pub sequences: usize,
    pub foreign_keys: usize,
    /// Foreign keys left NOT VALID or not created, with the reason.
    pub foreign_key_problems: Vec<String>,
    /// Tables that were not replicating when detached (disabled, failed...): they may differ
    /// from the source.
    pub not_in_sync: Vec<String>,
}

impl Detached {
    pub fn summary(&self, source: &str, replayed: i64) -> String {
        let mut s = format!(
            "source \"{source}\" detached: {} tables are now ordinary tables; {replayed} stored changes replayed, \
             {} sequences set past their maximum, {} foreign keys created and validated",
            self.tables, self.sequences, self.foreign_keys
        );
        if !self.foreign_key_problems.is_empty() {
            s.push_str(&format!("; foreign keys to check: {}", self.foreign_key_problems.join("; ")));
        }
        if !self.not_in_sync.is_empty() {
            s.push_str(&format!(
                "; tables that were not replicating (they may differ from the source): {}",
                self.not_in_sync.join(", ")
            ));
        }
        s
    }
}

pub fn detach(source: &SourceRow) -> Result<Detached> {
    let mut out = Detached::default();
    let tables = catalog::tables_for_source(source.id)?;
    for t in &tables {
        let qualified = sql::qualified(&t.pg_schema, &t.pg_table);
        if !catalog::table_exists(&t.pg_schema, &t.pg_table)? {
            continue;
        }
        out.tables += 1;
        if !t.state.is_applied() || !t.enabled {
            out.not_in_sync.push(format!("{} ({})", t.mysql_name(), t.state));
        }
        for column in catalog::sequence_columns(&qualified)? {
            catalog::set_sequence_past_max(&qualified, &column)?;
            out.sequences += 1;
        }
    }
    for k in catalog::source_foreign_keys(source.id)? {
        let name = &k.fk.name;
        let table = sql::qualified(&k.pg_schema, &k.pg_table);
        let Some((ref_schema, ref_table)) = &k.referenced else {
            out.foreign_key_problems.push(format!(
                "{name} on {table} not created: the referenced table {}.{} was not replicated",
                k.fk.ref_schema, k.fk.ref_table
            ));
            continue;
        };
        let ddl =
            schema::foreign_key_ddl(&k.pg_schema, &k.pg_table, &k.fk, ref_schema, ref_table, ForeignKeyUse::Detached);
        // a key created for the replica (foreign_keys = create) is replaced by the final form
        if let Err(e) = in_subtransaction(|| {
            catalog::execute(&format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}", quote_ident(name)))?;
            catalog::execute(&ddl)
        }) {
            out.foreign_key_problems.push(format!("{name} on {table} not created: {e}"));
            continue;
        }
        match in_subtransaction(|| catalog::execute(&format!("ALTER TABLE {table} VALIDATE CONSTRAINT {}", quote_ident(name)))) {
            Ok(()) => out.foreign_keys += 1,
            Err(e) => out.foreign_key_problems.push(format!(
                "{name} on {table} created NOT VALID ({e}); fix the rows, then ALTER TABLE {table} VALIDATE CONSTRAINT {}",
                quote_ident(name)
            )),
        }
    }
    catalog::delete_source(source.id)?;
    Ok(out)
}
