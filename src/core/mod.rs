//! The pure-Rust core: everything that can be decided without PostgreSQL.
//!
//! Nothing below this module imports pgrx; it is unit-tested with plain `cargo test --lib`.
//! The pgrx glue (`api`, `workers`, `catalog`) calls into it and turns its errors into
//! `ereport`s at the PostgreSQL boundary.

pub mod assembler;
pub mod binlog_file;
#[cfg(test)]
mod binlog_fixtures;
pub mod budget;
pub mod change;
pub mod copytext;
pub mod ddl;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod gtid;
pub mod json;
pub mod keyset;
pub mod logchunk;
pub mod mapping;
pub mod mysql_source;
pub mod netchange;
pub mod options;
pub mod position;
pub mod ranges;
pub mod reader;
pub mod rowcodec;
pub mod rowimage;
pub mod schema;
pub mod setsql;
pub mod source_url;
pub mod sql;
pub mod state;
pub mod stored;
pub mod tablemap;
pub mod types;
pub mod value;
pub mod verify;
pub mod xa;
