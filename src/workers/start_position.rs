//! Starting replication at a position the DBA gives (`start_replica(source, start_position)`),
//! for data loaded by other means (a dump, a restored backup, another tool): records the
//! position (binlog file and offset, or a GTID position) and, when the source has no tables
//! registered (never initialised), registers its tables as the source defines them without
//! copying anything, after checking that PostgreSQL has each of them with every column.
//! Runs in the calling backend, inside its transaction (nothing is kept if it fails).

use crate::catalog::{self, SourceRow};
use crate::core::endpoint::Endpoint;
use crate::core::mysql_source::{self, Flavor};
use crate::core::position::StartAt;
use crate::core::sql;
use crate::error::{ChameleonError, Result};
use crate::workers::init;

/// Records where the source's replication starts; registers its tables first when it has
/// none. Returns the number of tables registered that way.
pub fn set(source: &SourceRow, text: &str) -> Result<usize> {
    let at = StartAt::parse(text)?;
    let pending = catalog::pending_events(source.id)?;
    if pending > 0 {
        return Err(ChameleonError::state(format!(
            "source \"{}\" has {pending} stored changes not replayed yet from its current position",
            source.name
        ))
        .with_hint("replay them (chameleon.replay) or resync before moving the start position"));
    }
    let options = source.options()?;
    let endpoint = Endpoint::resolve(&source.url, &options)?;
    let mut conn = mysql_source::connect(&endpoint, None)?;
    let info = mysql_source::check_server(&mut conn)?;
    match &at {
        StartAt::File(p) => {
            let files = mysql_source::binlog_files(&mut conn)?;
            match files.iter().find(|(f, _)| *f == p.file) {
                None => {
                    let range = match (files.first(), files.last()) {
                        (Some(a), Some(b)) => format!("it has {} to {}", a.0, b.0),
                        _ => "it lists none".into(),
                    };
                    return Err(ChameleonError::state(format!(
                        "start_position {p}: the source has no binlog file {} ({range})",
                        p.file
                    )));
                }
                Some((_, size)) if p.pos > *size || p.pos < 4 => {
                    return Err(ChameleonError::state(format!(
                        "start_position {p}: offset outside {} (4 to {size} bytes)",
                        p.file
                    )))
                }
                Some(_) => {}
            }
        }
        StartAt::Gtid(g) => {
            if g.is_mariadb() != (info.flavor == Flavor::MariaDb) {
                return Err(ChameleonError::state(format!(
                    "start_position {g} is a {} GTID but the source is {}",
                    if g.is_mariadb() { "MariaDB" } else { "MySQL" },
                    info.version
                )));
            }
        }
    }
    let mut adopted = 0;
    if catalog::tables_for_source_names(source.id)?.is_empty() {
        let extensions = catalog::extensions()?;
        let tables = init::discover(&mut conn, source, &options, &extensions)?;
        let mut missing = Vec::new();
        for t in tables.iter().filter(|t| t.problem.is_none()) {
            let name = sql::qualified(&t.pg_schema, &t.mysql_table);
            match catalog::pg_table_columns(&t.pg_schema, &t.mysql_table)? {
                None => missing.push(format!("table {name} does not exist")),
                Some(have) => {
                    let lacking: Vec<&str> = t
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .filter(|c| !have.iter().any(|h| h == sql::pg_identifier(c)))
                        .collect();
                    if !lacking.is_empty() {
                        missing.push(format!("{name} has no column {}", lacking.join(", ")));
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Err(ChameleonError::state(format!(
                "source \"{}\" cannot start at {text} without a copy: {}",
                source.name,
                missing.join("; ")
            ))
            .with_hint("load those tables first, or run init_replica"));
        }
        let note = format!("not copied: rows loaded outside pg_chameleon_rs; replicated from {text}");
        for t in &tables {
            let id = catalog::register_definition(source.id, t)?;
            catalog::set_table_adopted(id, t.problem.is_none(), &note)?;
            adopted += 1;
        }
    }
    match &at {
        StartAt::File(p) => catalog::set_start_position(source.id, Some(p), None)?,
        StartAt::Gtid(g) => catalog::set_start_position(source.id, None, Some(&g.to_string()))?,
    }
    Ok(adopted)
}
