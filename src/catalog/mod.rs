//! Reads and writes of the `sch_chameleon` catalogue through SPI. Every SQL statement the
//! extension runs against its own catalogue lives under this module, one file per object, so
//! the tables' shape is known in one place. Runs in whatever transaction the caller (SQL
//! function or worker) has open.
//!
//! - `sources`: `t_sources` (a source's row, status, options, positions, worker pids, locks)
//! - `tables`: `t_replica_tables` (a replicated table's definition, state, notes)
//! - `foreign_keys`: `t_foreign_keys` (the foreign keys recorded at copy time)
//! - `copy`: `t_copy_workers` and `t_copy_ranges` (the initial copy's slots, claims, key ranges)
//! - `log`: `t_log_slots` and `t_replica_batch` (log slots, stored batches, maintenance)
//! - `errors`: `t_error_log` and `t_discarded_rows`
//! - `destination`: PostgreSQL's own catalogs (relations, columns, sequences, PostGIS)
//! - `verify`: `t_verify_runs` and `t_verify_tables` (verify_tables), and its reads of the log
//!
//! Everything is re-exported here, so callers write `catalog::source_by_id`.

mod copy;
mod destination;
mod errors;
mod foreign_keys;
mod log;
mod sources;
mod tables;
mod verify;

pub use copy::*;
pub use destination::*;
pub use errors::*;
pub use foreign_keys::*;
pub use log::*;
pub use sources::*;
pub use tables::*;
pub use verify::*;

/// A state read from the catalogue: a word that is not one of the machine's states is an
/// error naming it, never a default.
fn parse_state<T>(
    text: Option<String>,
    parse: fn(&str) -> std::result::Result<T, crate::core::state::UnknownState>,
) -> Result<T> {
    parse(text.as_deref().unwrap_or("")).map_err(|e| ChameleonError::catalog(e.to_string()))
}

use crate::core::position::BinlogPosition;
use crate::error::{ChameleonError, Result};
use pgrx::prelude::*;
use pgrx::PgBuiltInOids;

/// The library and its catalogue must be the same version: after new binaries are
/// installed, `ALTER EXTENSION pg_chameleon_rs UPDATE` brings the catalogue up to them.
pub fn check_catalogue_version() -> Result<()> {
    let catalogue = Spi::get_one::<String>("SELECT t_version FROM sch_chameleon.v_version")?.unwrap_or_default();
    let library = env!("CARGO_PKG_VERSION");
    if catalogue != library {
        return Err(ChameleonError::state(format!(
            "the pg_chameleon_rs catalogue of this database is version {catalogue} but the installed library is {library}"
        ))
        .with_hint("run ALTER EXTENSION pg_chameleon_rs UPDATE"));
    }
    Ok(())
}

/// A binlog position stored as (file, offset) columns.
fn point(file: Option<String>, pos: Option<i64>) -> Option<BinlogPosition> {
    Some(BinlogPosition::new(file?, pos? as u64))
}

fn run(sql: &str, args: &[pgrx::datum::DatumWithOid]) -> Result<()> {
    Spi::connect_mut(|client| {
        client.update(sql, None, args)?;
        Ok(())
    })
}

/// Whether the calling transaction has written anything (then a worker cannot see it yet).
/// Must be asked before any pgrx `Spi::get_one`/`update`, which assign a transaction id.
pub fn transaction_has_writes() -> bool {
    unsafe { pgrx::pg_sys::GetCurrentTransactionIdIfAny() != pgrx::pg_sys::InvalidTransactionId }
}

pub fn execute(sql: &str) -> Result<()> {
    run(sql, &[])
}

pub const INT4_OID: pgrx::pg_sys::PgOid = pgrx::pg_sys::PgOid::BuiltIn(PgBuiltInOids::INT4OID);
pub const INT8_OID: pgrx::pg_sys::PgOid = pgrx::pg_sys::PgOid::BuiltIn(PgBuiltInOids::INT8OID);
pub const TEXT_OID: pgrx::pg_sys::PgOid = pgrx::pg_sys::PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
pub const TEXT_ARRAY_OID: pgrx::pg_sys::PgOid = pgrx::pg_sys::PgOid::BuiltIn(PgBuiltInOids::TEXTARRAYOID);

/// A statement prepared once and kept for the life of the backend (`SPI_keepplan`): replay's
/// row and set plans. `mutating`: it writes (run with `update`), else it only reads.
pub fn kept_plan(
    sql: &str,
    types: &[pgrx::pg_sys::PgOid],
    mutating: bool,
) -> Result<pgrx::spi::OwnedPreparedStatement> {
    Spi::connect(|client| -> Result<pgrx::spi::OwnedPreparedStatement> {
        Ok(if mutating { client.prepare_mut(sql, types)?.keep() } else { client.prepare(sql, types)?.keep() })
    })
}

thread_local! {
    /// The catalogue statements `run_kept` has prepared in this backend, by their text.
    static KEPT: std::cell::RefCell<std::collections::HashMap<&'static str, std::rc::Rc<pgrx::spi::OwnedPreparedStatement>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Runs a catalogue statement a worker runs per batch and hands its rows to `read`: parsed
/// and planned on its first use, then kept for the life of the backend (PostgreSQL plans it
/// again itself when a table it reads changes). `types`: its parameters' types, which the
/// arguments must have exactly.
pub fn run_kept<R>(
    sql: &'static str,
    types: &[pgrx::pg_sys::PgOid],
    args: &[pgrx::datum::DatumWithOid],
    read: impl FnOnce(pgrx::spi::SpiTupleTable<'_>) -> Result<R>,
) -> Result<R> {
    let stmt = match KEPT.with(|k| k.borrow().get(sql).cloned()) {
        Some(stmt) => stmt,
        None => {
            let stmt = std::rc::Rc::new(kept_plan(sql, types, true)?);
            KEPT.with(|k| k.borrow_mut().insert(sql, stmt.clone()));
            stmt
        }
    };
    Spi::connect_mut(|client| read(client.update(&*stmt, None, args)?))
}
