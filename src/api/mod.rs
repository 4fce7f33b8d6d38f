//! The SQL surface (schema `chameleon`): thin `#[pg_extern]` wrappers that validate input,
//! call the catalogue and start or stop workers. No replication logic lives here.

pub mod replica;
pub mod sources;
pub mod verify;
