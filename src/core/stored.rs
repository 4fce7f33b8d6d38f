//! The JSON the catalogue keeps of a replicated table's definition: the `jsb_columns`,
//! `jsb_indexes` and `jsb_extras` columns of `t_replica_tables`, each an array with one object
//! per column or index. The structs here are that stored form, field for field: their names are
//! the JSON keys catalogues written by earlier releases hold, so none may be renamed (the tests
//! pin the text the writer produces). A field has a default only where an earlier writer left
//! it out; anything else missing or of the wrong type is an error, never a silent default.

use crate::core::schema::{ColumnExtra, IndexDef};
use crate::core::types::{map_column, MySqlColumn, ZeroDates};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of `jsb_columns`.
#[derive(Serialize, Deserialize)]
struct StoredColumn {
    name: String,
    data_type: String,
    column_type: String,
    nullable: bool,
    char_max_len: Option<u64>,
    numeric_precision: Option<u64>,
    numeric_scale: Option<u64>,
    datetime_precision: Option<u64>,
    // The next four are absent from catalogues written by 0.1.0 (pg_override from its
    // earliest builds only): no type_override, zero_dates `discard`, no PostGIS, no charset.
    #[serde(default)]
    pg_override: Option<String>,
    #[serde(default, with = "zero_dates_text")]
    zero_dates: ZeroDates,
    #[serde(default)]
    postgis: Option<String>,
    #[serde(default)]
    charset: Option<String>,
    /// Since 0.6.0, written only when set (a table without a vector column is stored exactly as
    /// before, so resuming a copy begun by 0.5.0 compares equal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pgvector: Option<String>,
    /// The PostgreSQL type the column maps to, for a DBA reading the catalogue; not read back
    /// (the mapping is recomputed from the rest).
    #[serde(default, skip_deserializing)]
    pg_type: Option<String>,
}

/// `zero_dates` is stored as its option value: `discard`, `null`, `-infinity`.
mod zero_dates_text {
    use super::*;

    pub fn serialize<S: serde::Serializer>(z: &ZeroDates, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(z.as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ZeroDates, D::Error> {
        let text = String::deserialize(d)?;
        ZeroDates::parse(&text).ok_or_else(|| {
            D::Error::custom(format!("zero_dates \"{text}\" is not one of {}", ZeroDates::NAMES.join(", ")))
        })
    }
}

impl StoredColumn {
    fn new(c: &MySqlColumn, pg_schema: &str, pg_table: &str) -> StoredColumn {
        StoredColumn {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            column_type: c.column_type.clone(),
            nullable: c.nullable,
            char_max_len: c.char_max_len,
            numeric_precision: c.numeric_precision,
            numeric_scale: c.numeric_scale,
            datetime_precision: c.datetime_precision,
            pg_override: c.pg_override.clone(),
            zero_dates: c.zero_dates,
            postgis: c.postgis.clone(),
            charset: c.charset.clone(),
            pgvector: c.pgvector.clone(),
            pg_type: map_column(c, pg_schema, pg_table).map(|m| m.pg_type).ok(),
        }
    }

    fn into_column(self) -> MySqlColumn {
        MySqlColumn {
            name: self.name,
            data_type: self.data_type,
            column_type: self.column_type,
            nullable: self.nullable,
            char_max_len: self.char_max_len,
            numeric_precision: self.numeric_precision,
            numeric_scale: self.numeric_scale,
            datetime_precision: self.datetime_precision,
            pg_override: self.pg_override,
            zero_dates: self.zero_dates,
            charset: self.charset,
            postgis: self.postgis,
            pgvector: self.pgvector,
        }
    }
}

/// One entry of `jsb_indexes` (recorded since 0.5.0, always with every field).
#[derive(Serialize, Deserialize)]
struct StoredIndex {
    name: String,
    unique: bool,
    columns: Vec<String>,
    kind: String,
    prefix: bool,
}

/// One entry of `jsb_extras` (recorded since 0.5.0, always with every field; `default` is
/// null when the column has none).
#[derive(Serialize, Deserialize)]
struct StoredExtra {
    default: Option<String>,
    extra: String,
    comment: String,
}

/// `jsb_columns` of a table (the PostgreSQL schema and table name the types map for).
pub fn columns_to_json(cols: &[MySqlColumn], pg_schema: &str, pg_table: &str) -> Value {
    to_json(cols.iter().map(|c| StoredColumn::new(c, pg_schema, pg_table)))
}

pub fn columns_from_json(v: &Value) -> serde_json::Result<Vec<MySqlColumn>> {
    Ok(from_json::<StoredColumn>(v)?.into_iter().map(StoredColumn::into_column).collect())
}

pub fn indexes_to_json(indexes: &[IndexDef]) -> Value {
    to_json(indexes.iter().map(|i| StoredIndex {
        name: i.name.clone(),
        unique: i.unique,
        columns: i.columns.clone(),
        kind: i.kind.clone(),
        prefix: i.prefix,
    }))
}

pub fn indexes_from_json(v: &Value) -> serde_json::Result<Vec<IndexDef>> {
    Ok(from_json::<StoredIndex>(v)?
        .into_iter()
        .map(|i| IndexDef { name: i.name, unique: i.unique, columns: i.columns, kind: i.kind, prefix: i.prefix })
        .collect())
}

pub fn extras_to_json(extras: &[ColumnExtra]) -> Value {
    to_json(extras.iter().map(|x| StoredExtra {
        default: x.default.clone(),
        extra: x.extra.clone(),
        comment: x.comment.clone(),
    }))
}

pub fn extras_from_json(v: &Value) -> serde_json::Result<Vec<ColumnExtra>> {
    Ok(from_json::<StoredExtra>(v)?
        .into_iter()
        .map(|x| ColumnExtra { default: x.default, extra: x.extra, comment: x.comment })
        .collect())
}

fn to_json<T: Serialize>(entries: impl Iterator<Item = T>) -> Value {
    // plain structs of strings, numbers and booleans: serialising them cannot fail
    Value::Array(entries.map(|e| serde_json::to_value(e).unwrap_or(Value::Null)).collect())
}

/// The entries of a stored array; an error says which entry is malformed and how.
fn from_json<T: DeserializeOwned>(v: &Value) -> serde_json::Result<Vec<T>> {
    let entries = v.as_array().ok_or_else(|| serde_json::Error::custom(format!("not a JSON array: {v}")))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| T::deserialize(e).map_err(|err| serde_json::Error::custom(format!("entry {i}: {err}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn column(name: &str) -> MySqlColumn {
        MySqlColumn {
            name: name.into(),
            data_type: "varchar".into(),
            column_type: "varchar(20)".into(),
            nullable: false,
            char_max_len: Some(20),
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            pg_override: None,
            zero_dates: ZeroDates::Discard,
            charset: Some("utf8mb4".into()),
            postgis: None,
            pgvector: None,
        }
    }

    fn dated() -> MySqlColumn {
        MySqlColumn {
            name: "at".into(),
            data_type: "datetime".into(),
            column_type: "datetime(3)".into(),
            nullable: true,
            char_max_len: None,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: Some(3),
            pg_override: Some("timestamp".into()),
            zero_dates: ZeroDates::MinusInfinity,
            charset: None,
            postgis: Some("public".into()),
            pgvector: None,
        }
    }

    #[test]
    fn columns_round_trip() {
        let mut vector = column("v");
        (vector.data_type, vector.column_type, vector.pgvector) =
            ("vector".into(), "vector(3)".into(), Some("x".into()));
        let cols = vec![column("name"), dated(), vector];
        let json = columns_to_json(&cols, "shop", "t");
        assert_eq!(json[2]["pgvector"], json!("x"));
        assert_eq!(json[2]["pg_type"], json!("\"x\".\"vector\"(3)"));
        assert_eq!(columns_from_json(&json).unwrap(), cols);
        assert_eq!(columns_from_json(&json!([])).unwrap(), vec![]);
    }

    #[test]
    fn columns_as_written_decode() {
        // the text the writer produces (pinned: existing catalogues hold these keys)
        let text = r#"[{"name": "name", "data_type": "varchar", "column_type": "varchar(20)", "nullable": false,
            "char_max_len": 20, "numeric_precision": null, "numeric_scale": null, "datetime_precision": null,
            "pg_override": null, "zero_dates": "discard", "postgis": null, "charset": "utf8mb4",
            "pg_type": "character varying(20)"},
           {"name": "at", "data_type": "datetime", "column_type": "datetime(3)", "nullable": true,
            "char_max_len": null, "numeric_precision": null, "numeric_scale": null, "datetime_precision": 3,
            "pg_override": "timestamp", "zero_dates": "-infinity", "postgis": "public", "charset": null,
            "pg_type": "timestamp"}]"#;
        let stored: Value = serde_json::from_str(text).unwrap();
        assert_eq!(columns_from_json(&stored).unwrap(), vec![column("name"), dated()]);
        // and the writer writes exactly that (jsonb equality: resuming a copy compares the
        // stored columns with freshly written ones)
        assert_eq!(columns_to_json(&[column("name"), dated()], "shop", "t"), stored);
    }

    #[test]
    fn columns_of_0_1_0_decode() {
        // 0.1.0 wrote no pg_override (earliest builds), zero_dates, postgis nor charset
        let stored = json!([{"name": "id", "data_type": "int", "column_type": "int(11)", "nullable": false,
            "char_max_len": null, "numeric_precision": 10, "numeric_scale": 0, "datetime_precision": null,
            "pg_type": "integer"}]);
        let c = &columns_from_json(&stored).unwrap()[0];
        assert_eq!((c.name.as_str(), c.numeric_precision, c.numeric_scale), ("id", Some(10), Some(0)));
        assert_eq!(
            (c.pg_override.clone(), c.zero_dates, c.postgis.clone(), c.charset.clone()),
            (None, ZeroDates::Discard, None, None)
        );
    }

    #[test]
    fn malformed_columns_are_errors() {
        let good = columns_to_json(&[column("a"), column("b")], "s", "t");
        let spoil = |key: &str, value: Value| {
            let mut v = good.clone();
            match value {
                Value::Null if key != "pg_override" => {
                    v[1].as_object_mut().unwrap().remove(key);
                }
                other => v[1][key] = other,
            }
            columns_from_json(&v).unwrap_err().to_string()
        };
        for (key, value) in [
            ("name", Value::Null),
            ("nullable", Value::Null),
            ("data_type", json!(3)),
            ("char_max_len", json!(-1)),
            ("char_max_len", json!("20")),
            ("zero_dates", json!("never")),
            ("charset", json!(false)),
        ] {
            let e = spoil(key, value.clone());
            assert!(e.starts_with("entry 1: "), "{key}={value}: {e}");
        }
        assert!(spoil("zero_dates", json!("never")).contains("zero_dates \"never\""));
        assert!(spoil("name", Value::Null).contains("name"));
        assert!(columns_from_json(&json!({"name": "a"})).unwrap_err().to_string().contains("not a JSON array"));
        assert!(columns_from_json(&Value::Null).is_err());
        assert!(columns_from_json(&json!(["a"])).is_err());
    }

    fn index() -> IndexDef {
        IndexDef {
            name: "PRIMARY".into(),
            unique: true,
            columns: vec!["a".into(), "b".into()],
            kind: "BTREE".into(),
            prefix: false,
        }
    }

    #[test]
    fn indexes_round_trip_and_pinned_text() {
        let ixs = vec![
            index(),
            IndexDef {
                name: "ft".into(),
                unique: false,
                columns: vec!["c".into()],
                kind: "FULLTEXT".into(),
                prefix: true,
            },
        ];
        assert_eq!(indexes_from_json(&indexes_to_json(&ixs)).unwrap(), ixs);
        let text = r#"[{"name": "PRIMARY", "unique": true, "columns": ["a", "b"], "kind": "BTREE", "prefix": false}]"#;
        let stored: Value = serde_json::from_str(text).unwrap();
        assert_eq!(indexes_from_json(&stored).unwrap(), vec![index()]);
        assert_eq!(indexes_to_json(&[index()]), stored);
    }

    #[test]
    fn malformed_indexes_are_errors() {
        for bad in [
            json!([{"name": "PRIMARY", "unique": true, "columns": ["a"], "kind": "BTREE"}]),
            json!([{"name": "PRIMARY", "unique": "yes", "columns": ["a"], "kind": "BTREE", "prefix": false}]),
            json!([{"name": "PRIMARY", "unique": true, "columns": ["a", 1], "kind": "BTREE", "prefix": false}]),
            json!({"name": "PRIMARY"}),
        ] {
            assert!(indexes_from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extras_round_trip_and_pinned_text() {
        let xs = vec![
            ColumnExtra { default: Some("0".into()), extra: "auto_increment".into(), comment: "the id".into() },
            ColumnExtra::default(),
        ];
        assert_eq!(extras_from_json(&extras_to_json(&xs)).unwrap(), xs);
        let text = r#"[{"default": "0", "extra": "auto_increment", "comment": "the id"},
                       {"default": null, "extra": "", "comment": ""}]"#;
        let stored: Value = serde_json::from_str(text).unwrap();
        assert_eq!(extras_from_json(&stored).unwrap(), xs);
        assert_eq!(extras_to_json(&xs), stored);
    }

    #[test]
    fn malformed_extras_are_errors() {
        for bad in
            [json!([{"default": null, "extra": ""}]), json!([{"default": 3, "extra": "", "comment": ""}]), json!("[]")]
        {
            assert!(extras_from_json(&bad).is_err(), "{bad}");
        }
    }
}
