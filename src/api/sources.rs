//! Source management: `add_source`, `alter_source`, `drop_source`, `enable_replica`.

use crate::catalog;
use crate::core::mapping::SchemaMappings;
use crate::core::options::{self, SourceOptions};
use crate::core::source_url::SourceUrl;
use crate::core::state::SourceEvent;
use crate::error::{ok, ChameleonError, Kind, Result};
use crate::workers;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::time::Duration;

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 63 {
        return Err(ChameleonError::from(crate::core::error::CoreError::invalid_parameter(
            "source_name must be a non-empty name of at most 63 bytes".into(),
        )));
    }
    Ok(())
}

fn add(name: &str, url: &str, mappings: &serde_json::Value, opts: &serde_json::Value) -> Result<i32> {
    catalog::check_catalogue_version()?;
    validate_name(name)?;
    let parsed = SourceUrl::parse(url)?;
    let map = SchemaMappings::from_json(mappings)?;
    SourceOptions::from_json(opts)?;
    let opts = if opts.is_null() { serde_json::json!({}) } else { opts.clone() };
    for other in catalog::all_sources()? {
        if other.name == name {
            return Err(ChameleonError::state(format!("source \"{name}\" already exists")));
        }
        if let Some(schema) = map.overlap(&other.mappings()?) {
            return Err(ChameleonError::state(format!(
                "PostgreSQL schema \"{schema}\" is already the target of source \"{}\"",
                other.name
            )));
        }
    }
    catalog::insert_source(name, url, &parsed.redacted(), mappings, &opts)
}

/// Registers a source (status `ready`). Returns its id.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn add_source(source_name: &str, mysql_url: &str, schema_mappings: JsonB, options: default!(JsonB, "'{}'")) -> i32 {
    ok(add(source_name, mysql_url, &schema_mappings.0, &options.0))
}

fn alter(
    source_name: &str,
    changes: &serde_json::Value,
    mappings: Option<&serde_json::Value>,
) -> Result<serde_json::Value> {
    let s = catalog::source_by_name(source_name)?;
    catalog::lock_source_control(s.id)?;
    catalog::lock_source(s.id)?;
    let named = |e: crate::core::error::CoreError| ChameleonError::from(e).context(format!("source \"{source_name}\""));
    let merged = options::merge(&s.options, changes).map_err(named)?;
    let old_opts = s.options()?;
    let new_opts = SourceOptions::from_json(&merged).map_err(named)?;
    let old_map = s.mappings()?;
    let new_map = match mappings {
        Some(m) => SchemaMappings::from_json(m).map_err(named)?,
        None => old_map.clone(),
    };
    for other in catalog::all_sources()?.iter().filter(|o| o.id != s.id) {
        if let Some(schema) = new_map.overlap(&other.mappings()?).map(str::to_string) {
            return Err(ChameleonError::state(format!(
                "PostgreSQL schema \"{schema}\" is already the target of source \"{}\"",
                other.name
            )));
        }
    }
    let change = old_map.change_to(&new_map);
    let registered = catalog::tables_for_source(s.id)?;
    if let Some((my, from, to)) =
        change.moved.iter().find(|(my, _, _)| registered.iter().any(|t| &t.mysql_schema == my))
    {
        return Err(ChameleonError::state(format!(
            "source \"{source_name}\": MySQL schema \"{my}\" is replicated into \"{from}\"; its tables cannot move to \"{to}\""
        ))
        .with_hint("remove the mapping, then map the schema again under the new name: it is copied again there"));
    }
    catalog::update_options(s.id, &merged)?;
    if let Some(m) = mappings {
        catalog::update_mappings(s.id, m)?;
    }
    if registered.is_empty() {
        return Ok(merged);
    }
    // tables no longer selected stop being replicated at once (their PostgreSQL tables stay;
    // they stay registered, disabled with the reason, to come back if selected again)
    let selected = |t: &catalog::TableRow| {
        new_map.0.contains_key(&t.mysql_schema) && new_opts.table_selected(&t.mysql_schema, &t.mysql_table)
    };
    let dropped: Vec<&catalog::TableRow> =
        registered.iter().filter(|t| !selected(t) && t.last_error.as_deref() != Some(catalog::NOT_SELECTED)).collect();
    for t in &dropped {
        catalog::disable_table(t.id, catalog::NOT_SELECTED)?;
    }
    if !dropped.is_empty() {
        notice!(
            "no longer replicated (their PostgreSQL tables are kept): {}",
            dropped.iter().map(|t| t.mysql_name()).collect::<Vec<_>>().join(", ")
        );
    }
    // tables newly selected are copied while the source goes on, as by sync_tables: those
    // left out before, and those not registered yet (a newly mapped schema, wider filters)
    let back: Vec<String> = registered
        .iter()
        .filter(|t| selected(t) && t.last_error.as_deref() == Some(catalog::NOT_SELECTED))
        .map(catalog::TableRow::mysql_name)
        .collect();
    let mut added = Vec::new();
    if !back.is_empty() {
        added.extend(catalog::mark_tables_for_sync(s.id, Some(&back), true)?);
    }
    let filters_changed =
        old_opts.limit_tables != new_opts.limit_tables || old_opts.skip_tables != new_opts.skip_tables;
    let scan: Vec<&String> = new_map.0.keys().filter(|k| change.added.contains(k) || filters_changed).collect();
    let s = catalog::source_by_id(s.id)?;
    for schema in scan {
        added.extend(workers::refresh::register(&s, schema, true)?.tables);
    }
    if !added.is_empty() {
        workers::init::start_sync(&s)?;
        notice!("to be copied, then replicated: {}", added.join(", "));
    }
    if workers::alive(s.worker_pid)? {
        notice!("source \"{source_name}\" is running: its workers take the other options at the next start_replica");
    }
    Ok(merged)
}

/// Changes options (merged; a key set to null is removed) and, with `schema_mappings`, the
/// mapped schemas. On a source already copied, tables no longer selected (schema unmapped,
/// `limit_tables`/`skip_tables`) stop being replicated at once, their PostgreSQL tables
/// kept; tables newly selected are copied and then replicated while the source goes on. A
/// replicated schema cannot move to another PostgreSQL schema (refused, with the way to do
/// it). Running workers take the other options at their next start. Returns the options.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn alter_source(
    source_name: &str,
    options: default!(JsonB, "'{}'"),
    schema_mappings: default!(Option<JsonB>, "NULL"),
) -> JsonB {
    ok(alter(source_name, &options.0, schema_mappings.as_ref().map(|m| &m.0)).map(JsonB))
}

/// Stops the source's workers and removes it from the catalogue with its stored changes.
/// Replicated tables are kept.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn drop_source(source_name: &str, if_exists: default!(bool, false)) {
    ok((|| {
        let s = match catalog::source_by_name(source_name) {
            Ok(s) => s,
            Err(e) if e.kind() == Kind::NotFound && if_exists => {
                notice!("source \"{source_name}\" does not exist, skipping");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        // No lock on the source row while waiting: the worker's last flush writes to it.
        catalog::lock_source_control(s.id)?;
        let s = catalog::source_by_id(s.id)?;
        workers::stop_all(&s, Duration::from_secs(60))?;
        catalog::lock_source(s.id)?;
        catalog::delete_source(s.id)
    })())
}

/// Clears an `error` status once the DBA has fixed the cause; `start_replica` then resumes
/// from the stored position.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn enable_replica(source_name: &str) -> String {
    ok((|| {
        let s = catalog::source_by_name(source_name)?;
        catalog::lock_source(s.id)?;
        let status = s
            .status
            .next(SourceEvent::Enable { has_position: s.position.is_some() })
            .map_err(|_| ChameleonError::state(format!("source \"{source_name}\" is {}, not in error", s.status)))?;
        catalog::set_status(s.id, status)?;
        catalog::clear_source_error(s.id)?;
        Ok(status.to_string())
    })())
}
