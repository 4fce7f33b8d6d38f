//! Source management: `add_source`, `alter_source`, `drop_source`, `enable_replica`.

use crate::catalog;
use crate::core::mapping::SchemaMappings;
use crate::core::options::{self, SourceOptions};
use crate::core::source_url::SourceUrl;
use crate::error::{ok, ChameleonError, Result};
use crate::workers;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::time::Duration;

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 63 {
        return Err(ChameleonError::Core(crate::core::error::CoreError::InvalidParameter(
            "source_name must be a non-empty name of at most 63 bytes".into(),
        )));
    }
    Ok(())
}

fn add(name: &str, url: &str, mappings: &serde_json::Value, opts: &serde_json::Value) -> Result<i32> {
    validate_name(name)?;
    let parsed = SourceUrl::parse(url)?;
    let map = SchemaMappings::from_json(mappings)?;
    SourceOptions::from_json(opts)?;
    let opts = if opts.is_null() { serde_json::json!({}) } else { opts.clone() };
    for other in catalog::all_sources()? {
        if other.name == name {
            return Err(ChameleonError::State(format!("source \"{name}\" already exists")));
        }
        if let Ok(other_map) = other.mappings() {
            if let Some(schema) = map.overlap(&other_map) {
                return Err(ChameleonError::State(format!(
                    "PostgreSQL schema \"{schema}\" is already the target of source \"{}\"",
                    other.name
                )));
            }
        }
    }
    catalog::insert_source(name, url, &parsed.redacted(), mappings, &opts)
}

/// Registers a source (status `ready`). Returns its id.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn add_source(
    source_name: &str,
    mysql_url: &str,
    schema_mappings: JsonB,
    options: default!(JsonB, "'{}'"),
) -> i32 {
    ok(add(source_name, mysql_url, &schema_mappings.0, &options.0))
}

/// Changes options (merged; a key set to null is removed). Running workers pick the new
/// options up at their next start.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn alter_source(source_name: &str, options: JsonB) -> JsonB {
    ok((|| {
        let s = catalog::source_by_name(source_name)?;
        catalog::lock_source(s.id)?;
        let merged = options::merge(&s.options, &options.0)
            .map_err(|e| ChameleonError::from(e).context(format!("source \"{source_name}\"")))?;
        catalog::update_options(s.id, &merged)?;
        if workers::alive(s.worker_pid)? {
            notice!("source \"{source_name}\" is running: the new options take effect at the next start_replica");
        }
        Ok(JsonB(merged))
    })())
}

/// Stops the source's workers and removes it from the catalogue with its stored changes.
/// Replicated tables are kept.
#[pg_extern(volatile, parallel_unsafe, schema = "chameleon")]
fn drop_source(source_name: &str, if_exists: default!(bool, false)) {
    ok((|| {
        let s = match catalog::source_by_name(source_name) {
            Ok(s) => s,
            Err(ChameleonError::NotFound(_)) if if_exists => {
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
        if s.status != "error" {
            return Err(ChameleonError::State(format!(
                "source \"{source_name}\" is {}, not in error",
                s.status
            )));
        }
        let status = if s.position.is_some() { "stopped" } else { "ready" };
        catalog::set_status(s.id, status)?;
        catalog::clear_source_error(s.id)?;
        Ok(status.to_string())
    })())
}
