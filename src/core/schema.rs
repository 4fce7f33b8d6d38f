//! Table structure beyond column types: indexes, defaults, AUTO_INCREMENT, comments and
//! foreign keys, read from `information_schema` and turned into PostgreSQL DDL that runs
//! after the data is copied. What PostgreSQL cannot express (prefix, FULLTEXT and SPATIAL
//! indexes, expression defaults other than CURRENT_TIMESTAMP) is skipped and reported.

use crate::core::mysql_source::Flavor;
use crate::core::sql::{qualified, quote_ident, quote_literal};
use crate::core::types::{MappedType, MySqlColumn, ValueKind};
use crate::core::value;

/// An index of a MySQL table (the primary key included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
    /// `BTREE`, `HASH`, `FULLTEXT`, `SPATIAL`, ...
    pub kind: String,
    /// Some column is indexed on a prefix only (`SUB_PART`).
    pub prefix: bool,
}

/// A foreign key, recorded at copy time and created by `detach_replica`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyDef {
    pub name: String,
    pub columns: Vec<String>,
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    pub on_update: String,
    pub on_delete: String,
}

/// Column attributes beyond the type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnExtra {
    /// `COLUMN_DEFAULT` as the server reports it.
    pub default: Option<String>,
    /// `EXTRA`: `auto_increment`, `DEFAULT_GENERATED`, `on update ...`, `VIRTUAL GENERATED`...
    pub extra: String,
    pub comment: String,
}

/// Name of a PostgreSQL index for a MySQL index (MySQL names are per table, PostgreSQL's per
/// schema): `<table>_<index>`, shortened with a hash when longer than 63 bytes.
pub fn index_name(table: &str, index: &str) -> String {
    crate::core::types::enum_type_name(table, index)
}

/// The replica key (how replay finds a row): the primary key, else the first unique index
/// without prefix parts whose columns are all NOT NULL. Empty when the table has neither.
pub fn replica_key(indexes: &[IndexDef], columns: &[crate::core::types::MySqlColumn]) -> Vec<String> {
    let not_null = |c: &String| columns.iter().any(|col| &col.name == c && !col.nullable);
    let usable = |ix: &&IndexDef| ix.unique && !ix.prefix && ix.columns.iter().all(not_null);
    indexes
        .iter()
        .filter(usable)
        .find(|ix| ix.name == "PRIMARY")
        .or_else(|| indexes.iter().filter(usable).find(|ix| ix.name != "PRIMARY"))
        .map(|ix| ix.columns.clone())
        .unwrap_or_default()
}

/// The ON UPDATE and ON DELETE actions of each foreign key in a `SHOW CREATE TABLE` text,
/// by constraint name (an action not written is RESTRICT).
pub fn foreign_key_rules(ddl: &str) -> std::collections::HashMap<String, (String, String)> {
    const ACTIONS: [&str; 5] = ["SET NULL", "SET DEFAULT", "NO ACTION", "CASCADE", "RESTRICT"];
    let action = |line: &str, clause: &str| -> String {
        line.rfind(clause)
            .and_then(|at| {
                let rest = &line[at + clause.len()..];
                ACTIONS.iter().find(|a| rest.starts_with(*a)).map(|a| a.to_string())
            })
            .unwrap_or_else(|| "RESTRICT".into())
    };
    let mut out = std::collections::HashMap::new();
    for line in ddl.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("CONSTRAINT `") else { continue };
        // the name ends at the first backquote that is not doubled
        let mut name = String::new();
        let mut chars = rest.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '`' {
                if chars.peek().map(|(_, n)| *n) == Some('`') {
                    chars.next();
                    name.push('`');
                    continue;
                }
                end = Some(i + 1);
                break;
            }
            name.push(c);
        }
        let Some(end) = end else { continue };
        let tail = &rest[end..];
        let Some(refs) = tail.find(" REFERENCES ") else { continue };
        let tail = &tail[refs..];
        out.insert(name, (action(tail, " ON UPDATE "), action(tail, " ON DELETE ")));
    }
    out
}

/// Where a foreign key is created: in a replica, or in tables detached from their source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignKeyUse {
    /// DEFERRABLE INITIALLY DEFERRED: replay applies a source transaction row by row, and the
    /// order of its rows need not satisfy the key until its end. MySQL's RESTRICT becomes NO
    /// ACTION (InnoDB checks immediately anyway), which PostgreSQL can defer.
    Replica,
    /// `detach_replica`: the key as the application had it, checked immediately (RESTRICT
    /// stays RESTRICT).
    Detached,
}

/// `ALTER TABLE` adding a recorded foreign key, NOT VALID (validated separately).
pub fn foreign_key_ddl(
    schema: &str,
    table: &str,
    fk: &ForeignKeyDef,
    ref_schema: &str,
    ref_table: &str,
    usage: ForeignKeyUse,
) -> String {
    let cols = |c: &[String]| c.iter().map(|x| quote_ident(x)).collect::<Vec<_>>().join(", ");
    let action = |a: &str| match a.to_ascii_uppercase().as_str() {
        "CASCADE" => "CASCADE",
        "SET NULL" => "SET NULL",
        "SET DEFAULT" => "SET DEFAULT",
        "RESTRICT" if usage == ForeignKeyUse::Detached => "RESTRICT",
        _ => "NO ACTION",
    };
    let deferred = match usage {
        ForeignKeyUse::Replica => " DEFERRABLE INITIALLY DEFERRED",
        ForeignKeyUse::Detached => "",
    };
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) ON UPDATE {} ON DELETE {}{deferred} NOT VALID",
        qualified(schema, table),
        quote_ident(&fk.name),
        cols(&fk.columns),
        qualified(ref_schema, ref_table),
        cols(&fk.ref_columns),
        action(&fk.on_update),
        action(&fk.on_delete)
    )
}

/// The DDL for the secondary indexes of a table, and a note for each index skipped. SPATIAL
/// indexes become GiST indexes when the columns are PostGIS geometry.
pub fn index_statements(schema: &str, table: &str, indexes: &[IndexDef], postgis: bool) -> (Vec<String>, Vec<String>) {
    let mut ddl = Vec::new();
    let mut skipped = Vec::new();
    for ix in indexes.iter().filter(|i| i.name != "PRIMARY") {
        let kind = ix.kind.to_ascii_uppercase();
        if kind == "SPATIAL" && postgis {
            let cols: Vec<String> = ix.columns.iter().map(|c| quote_ident(c)).collect();
            ddl.push(format!(
                "CREATE INDEX {} ON {} USING gist ({})",
                quote_ident(&index_name(table, &ix.name)),
                qualified(schema, table),
                cols.join(", ")
            ));
            continue;
        }
        if kind == "FULLTEXT" || kind == "SPATIAL" {
            skipped.push(format!("index {} ({kind}) has no PostgreSQL equivalent: skipped", ix.name));
            continue;
        }
        if ix.prefix {
            skipped.push(format!("index {} uses a column prefix, which PostgreSQL cannot index: skipped", ix.name));
            continue;
        }
        let cols: Vec<String> = ix.columns.iter().map(|c| quote_ident(c)).collect();
        ddl.push(format!(
            "CREATE {}INDEX {} ON {} ({})",
            if ix.unique { "UNIQUE " } else { "" },
            quote_ident(&index_name(table, &ix.name)),
            qualified(schema, table),
            cols.join(", ")
        ));
    }
    (ddl, skipped)
}

fn is_current_timestamp(expr: &str) -> bool {
    let e = expr.trim().to_ascii_lowercase();
    let e = e.trim_end_matches(')').trim_end_matches(|c: char| c.is_ascii_digit()).trim_end_matches('(');
    matches!(e, "current_timestamp" | "now" | "localtime" | "localtimestamp")
}

/// The PostgreSQL DEFAULT clause of a column, or `Err(note)` when it cannot be expressed.
/// `Ok(None)`: no default.
pub fn default_clause(
    flavor: Flavor,
    col: &MySqlColumn,
    mapped: &MappedType,
    extra: &ColumnExtra,
) -> Result<Option<String>, String> {
    let Some(raw) = extra.default.as_deref() else { return Ok(None) };
    let generated = extra.extra.to_ascii_uppercase().contains("DEFAULT_GENERATED");
    // MariaDB (10.2.7+) quotes literals and writes NULL and expressions bare; MySQL writes
    // literals bare and marks expressions DEFAULT_GENERATED.
    let literal: Option<String> = match flavor {
        Flavor::MariaDb => {
            if raw.eq_ignore_ascii_case("NULL") {
                return Ok(None);
            }
            if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                Some(inner.replace("''", "'").replace("\\\\", "\\"))
            } else if raw.parse::<f64>().is_ok() {
                Some(raw.to_string())
            } else {
                None
            }
        }
        Flavor::MySql => (!generated).then(|| raw.to_string()),
    };
    match literal {
        Some(lit) => {
            let text = match &mapped.kind {
                // BIT defaults are written b'101'; rare, and easy to get wrong
                ValueKind::Bit(_) | ValueKind::Binary => {
                    return Err(format!("default of {} column \"{}\" not translated", col.data_type, col.name))
                }
                kind => value::from_text(kind, lit.as_bytes())
                    .map_err(|e| format!("default of column \"{}\" not translated: {e}", col.name))?
                    .ok_or_else(|| format!("zero-date default of column \"{}\" not translated", col.name))?,
            };
            Ok(Some(format!("{}::{}", quote_literal(&text), mapped.pg_type)))
        }
        None if is_current_timestamp(raw)
            && matches!(mapped.kind, ValueKind::DateTime(_) | ValueKind::Timestamp(_)) =>
        {
            Ok(Some(if matches!(mapped.kind, ValueKind::DateTime(_)) {
                "LOCALTIMESTAMP".into()
            } else {
                "CURRENT_TIMESTAMP".into()
            }))
        }
        None => Err(format!("default expression {raw} of column \"{}\" not translated", col.name)),
    }
}

/// Whether the column is AUTO_INCREMENT and can become an identity column.
pub fn identity(col: &MySqlColumn, mapped: &MappedType, extra: &ColumnExtra) -> bool {
    extra.extra.to_ascii_lowercase().contains("auto_increment")
        && matches!(mapped.pg_type.as_str(), "smallint" | "integer" | "bigint")
        && !col.nullable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::{col, map_column};

    fn ix(name: &str, unique: bool, cols: &[&str], kind: &str, prefix: bool) -> IndexDef {
        IndexDef {
            name: name.into(),
            unique,
            columns: cols.iter().map(|c| c.to_string()).collect(),
            kind: kind.into(),
            prefix,
        }
    }

    #[test]
    fn replica_key_prefers_primary_then_not_null_unique() {
        let mut a = col("a", "int", "int");
        a.nullable = false;
        let b = col("b", "int", "int"); // nullable
        let mut c = col("c", "varchar", "varchar(9)");
        c.nullable = false;
        let cols = [a, b, c];
        let with_pk = [ix("uq_c", true, &["c"], "BTREE", false), ix("PRIMARY", true, &["a"], "BTREE", false)];
        assert_eq!(replica_key(&with_pk, &cols), vec!["a"]);
        let nullable_first = [ix("uq_b", true, &["b"], "BTREE", false), ix("uq_c", true, &["c"], "BTREE", false)];
        assert_eq!(replica_key(&nullable_first, &cols), vec!["c"]);
        let prefix_only = [ix("uq_c", true, &["c"], "BTREE", true), ix("k", false, &["a"], "BTREE", false)];
        assert!(replica_key(&prefix_only, &cols).is_empty());
    }

    #[test]
    fn indexes_after_data() {
        let (ddl, skipped) = index_statements(
            "shop",
            "Orders",
            &[
                ix("PRIMARY", true, &["id"], "BTREE", false),
                ix("by customer", false, &["customer_id", "placed"], "BTREE", false),
                ix("uq_ref", true, &["ref"], "BTREE", false),
                ix("ft", false, &["note"], "FULLTEXT", false),
                ix("pfx", false, &["name"], "BTREE", true),
                ix("where", false, &["shape"], "SPATIAL", false),
            ],
            false,
        );
        assert_eq!(
            ddl,
            vec![
                "CREATE INDEX \"Orders_by customer\" ON \"shop\".\"Orders\" (\"customer_id\", \"placed\")",
                "CREATE UNIQUE INDEX \"Orders_uq_ref\" ON \"shop\".\"Orders\" (\"ref\")",
            ]
        );
        assert_eq!(skipped.len(), 3);
        assert!(skipped[0].contains("FULLTEXT") && skipped[1].contains("prefix") && skipped[2].contains("SPATIAL"));
        let (ddl, skipped) = index_statements("s", "t", &[ix("where", false, &["shape"], "SPATIAL", false)], true);
        assert_eq!(ddl, vec!["CREATE INDEX \"t_where\" ON \"s\".\"t\" USING gist (\"shape\")"]);
        assert!(skipped.is_empty());
    }

    #[test]
    fn foreign_key_actions_from_show_create_table() {
        let ddl = "CREATE TABLE `Order Items` (\n  `Order ID` bigint(20) NOT NULL,\n  PRIMARY KEY (`Order ID`),\n  \
                   CONSTRAINT `fk_order` FOREIGN KEY (`Order ID`) REFERENCES `orders` (`order_id`) ON DELETE CASCADE,\n  \
                   CONSTRAINT `odd``name` FOREIGN KEY (`a`) REFERENCES `p` (`x`) ON DELETE SET NULL ON UPDATE NO ACTION,\n  \
                   CONSTRAINT `plain` FOREIGN KEY (`b`) REFERENCES `p` (`y`)\n) ENGINE=InnoDB";
        let r = foreign_key_rules(ddl);
        assert_eq!(r["fk_order"], ("RESTRICT".to_string(), "CASCADE".to_string()));
        assert_eq!(r["odd`name"], ("NO ACTION".to_string(), "SET NULL".to_string()));
        assert_eq!(r["plain"], ("RESTRICT".to_string(), "RESTRICT".to_string()));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn foreign_keys_are_deferred_and_not_valid() {
        let fk = ForeignKeyDef {
            name: "fk_Parent".into(),
            columns: vec!["a".into(), "b c".into()],
            ref_schema: "src".into(),
            ref_table: "Parent".into(),
            ref_columns: vec!["x".into(), "y".into()],
            on_update: "RESTRICT".into(),
            on_delete: "CASCADE".into(),
        };
        assert_eq!(
            foreign_key_ddl("s", "child", &fk, "s", "Parent", ForeignKeyUse::Replica),
            "ALTER TABLE \"s\".\"child\" ADD CONSTRAINT \"fk_Parent\" FOREIGN KEY (\"a\", \"b c\") REFERENCES \"s\".\"Parent\" (\"x\", \"y\") \
             ON UPDATE NO ACTION ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED NOT VALID"
        );
        // detached: the application's own key, RESTRICT kept, checked immediately
        assert_eq!(
            foreign_key_ddl("s", "child", &fk, "s", "Parent", ForeignKeyUse::Detached),
            "ALTER TABLE \"s\".\"child\" ADD CONSTRAINT \"fk_Parent\" FOREIGN KEY (\"a\", \"b c\") REFERENCES \"s\".\"Parent\" (\"x\", \"y\") \
             ON UPDATE RESTRICT ON DELETE CASCADE NOT VALID"
        );
    }

    fn dflt(
        flavor: Flavor,
        data_type: &str,
        column_type: &str,
        raw: Option<&str>,
        extra: &str,
    ) -> Result<Option<String>, String> {
        let c = col("c", data_type, column_type);
        let m = map_column(&c, "s", "t").unwrap();
        default_clause(
            flavor,
            &c,
            &m,
            &ColumnExtra { default: raw.map(str::to_string), extra: extra.into(), comment: String::new() },
        )
    }

    #[test]
    fn defaults() {
        assert_eq!(
            dflt(Flavor::MariaDb, "varchar", "varchar(10)", Some("'it''s'"), ""),
            Ok(Some("'it''s'::character varying(1)".into()))
        );
        assert_eq!(dflt(Flavor::MariaDb, "int", "int(11)", Some("42"), ""), Ok(Some("'42'::integer".into())));
        assert_eq!(dflt(Flavor::MariaDb, "int", "int(11)", Some("NULL"), ""), Ok(None));
        assert_eq!(dflt(Flavor::MariaDb, "int", "int(11)", None, ""), Ok(None));
        assert_eq!(
            dflt(Flavor::MariaDb, "datetime", "datetime", Some("current_timestamp()"), ""),
            Ok(Some("LOCALTIMESTAMP".into()))
        );
        assert_eq!(
            dflt(Flavor::MySql, "timestamp", "timestamp", Some("CURRENT_TIMESTAMP"), "DEFAULT_GENERATED"),
            Ok(Some("CURRENT_TIMESTAMP".into()))
        );
        assert_eq!(
            dflt(Flavor::MySql, "varchar", "varchar(10)", Some("abc"), ""),
            Ok(Some("'abc'::character varying(1)".into()))
        );
        assert!(dflt(Flavor::MariaDb, "date", "date", Some("'0000-00-00'"), "").unwrap_err().contains("zero date"));
        assert!(dflt(Flavor::MariaDb, "int", "int(11)", Some("(1 + 1)"), "").is_err());
        assert_eq!(
            dflt(Flavor::MariaDb, "enum", "enum('a','b')", Some("'b'"), ""),
            Ok(Some("'b'::\"s\".\"t_c\"".into()))
        );
    }

    #[test]
    fn identity_columns() {
        let mut c = col("id", "int", "int(11)");
        c.nullable = false;
        let m = map_column(&c, "s", "t").unwrap();
        let e = ColumnExtra { extra: "auto_increment".into(), ..Default::default() };
        assert!(identity(&c, &m, &e));
        let u = col("id", "bigint", "bigint(20) unsigned");
        let mu = map_column(&u, "s", "t").unwrap();
        assert!(!identity(&u, &mu, &e));
    }
}
