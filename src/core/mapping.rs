//! Schema mappings: which MySQL schema replicates into which PostgreSQL schema
//! (`{"shop": "shop_pg"}`), their validation, and overlap checks between sources.

use crate::core::error::{CoreError, CoreResult};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaMappings(pub BTreeMap<String, String>);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MappingChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub moved: Vec<(String, String, String)>,
}

fn bad(msg: String) -> CoreError {
    CoreError::invalid_parameter(format!("schema_mappings: {msg}"))
}

impl SchemaMappings {
    pub fn from_json(v: &Value) -> CoreResult<SchemaMappings> {
        let obj = v
            .as_object()
            .ok_or_else(|| bad("must be a JSON object {\"mysql_schema\": \"postgres_schema\", ...}".into()))?;
        if obj.is_empty() {
            return Err(bad("is empty: map at least one MySQL schema".into()));
        }
        let mut map = BTreeMap::new();
        let mut targets: BTreeMap<&str, &str> = BTreeMap::new();
        for (my, pg) in obj {
            let pg = pg
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad(format!("the target of \"{my}\" must be a non-empty string")))?;
            if my.is_empty() {
                return Err(bad("empty MySQL schema name".into()));
            }
            if pg.len() > 63 {
                return Err(bad(format!("PostgreSQL schema \"{pg}\" is longer than 63 bytes")));
            }
            if matches!(pg, "sch_chameleon" | "chameleon" | "pg_catalog" | "information_schema")
                || pg.starts_with("pg_")
            {
                return Err(bad(format!("\"{pg}\" is a reserved schema and cannot be a target")));
            }
            if let Some(other) = targets.insert(pg, my) {
                return Err(bad(format!("MySQL schemas \"{other}\" and \"{my}\" both map to \"{pg}\"")));
            }
            map.insert(my.clone(), pg.to_string());
        }
        Ok(SchemaMappings(map))
    }

    pub fn target(&self, mysql_schema: &str) -> Option<&str> {
        self.0.get(mysql_schema).map(String::as_str)
    }

    /// What changes from these mappings to `new`: MySQL schemas added, removed, and those
    /// whose PostgreSQL target moves (mysql schema, old target, new target).
    pub fn change_to(&self, new: &SchemaMappings) -> MappingChange {
        MappingChange {
            added: new.0.keys().filter(|k| !self.0.contains_key(*k)).cloned().collect(),
            removed: self.0.keys().filter(|k| !new.0.contains_key(*k)).cloned().collect(),
            moved: self
                .0
                .iter()
                .filter_map(|(k, old)| new.0.get(k).filter(|n| *n != old).map(|n| (k.clone(), old.clone(), n.clone())))
                .collect(),
        }
    }

    /// The first PostgreSQL schema that both mappings write into, if any.
    pub fn overlap<'a>(&'a self, other: &SchemaMappings) -> Option<&'a str> {
        self.0.values().find(|pg| other.0.values().any(|o| o == *pg)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn changes_between_mappings() {
        let a = SchemaMappings::from_json(&serde_json::json!({"shop": "shop", "crm": "crm", "old": "old"})).unwrap();
        let b = SchemaMappings::from_json(&serde_json::json!({"shop": "shop", "crm": "crm2", "new": "new"})).unwrap();
        let c = a.change_to(&b);
        assert_eq!(c.added, vec!["new".to_string()]);
        assert_eq!(c.removed, vec!["old".to_string()]);
        assert_eq!(c.moved, vec![("crm".to_string(), "crm".to_string(), "crm2".to_string())]);
        assert_eq!(a.change_to(&a), MappingChange::default());
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn valid_mapping() {
        let m = SchemaMappings::from_json(&json!({"shop": "shop", "crm": "crm_pg"})).unwrap();
        assert_eq!(m.target("crm"), Some("crm_pg"));
        assert_eq!(m.target("nope"), None);
    }

    #[test]
    fn rejects_bad_mappings() {
        for v in [
            json!({}),
            json!([]),
            json!({"a": ""}),
            json!({"a": 1}),
            json!({"a": "x", "b": "x"}),
            json!({"a": "sch_chameleon"}),
            json!({"a": "pg_temp"}),
        ] {
            assert!(SchemaMappings::from_json(&v).is_err(), "{v}");
        }
    }

    #[test]
    fn overlap_between_sources() {
        let a = SchemaMappings::from_json(&json!({"shop": "shop"})).unwrap();
        let b = SchemaMappings::from_json(&json!({"other": "shop"})).unwrap();
        let c = SchemaMappings::from_json(&json!({"shop": "shop2"})).unwrap();
        assert_eq!(a.overlap(&b), Some("shop"));
        assert_eq!(a.overlap(&c), None);
    }
}
