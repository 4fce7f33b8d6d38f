//! Table models from parsed definitions: a column definition becomes the `MySqlColumn` and
//! `ColumnExtra` that `information_schema` of the flavor would report, CREATE TABLE elements
//! become a `TableModel`, and ALTER TABLE operations change one.

use super::parse::{AlterOp, ColumnSpec, DefaultSpec, ForeignKeySpec, IndexKind, IndexSpec, Position};
use super::TableModel;
use crate::core::mysql_source::Flavor;
use crate::core::options::SourceOptions;
use crate::core::schema::{self, ColumnExtra, ForeignKeyDef, IndexDef};
use crate::core::types::MySqlColumn;

/// What a column definition needs besides itself.
pub(crate) struct Env<'a> {
    pub flavor: Flavor,
    pub options: &'a SourceOptions,
    pub schema: &'a str,
    pub table: &'a str,
    /// The character set of character columns that name none.
    pub charset: Option<String>,
    pub extensions: &'a crate::core::types::Extensions,
}

/// The information_schema form of a type: (DATA_TYPE, COLUMN_TYPE, char len, precision,
/// scale, datetime precision, is character data).
struct TypeInfo {
    data_type: String,
    column_type: String,
    char_len: Option<u64>,
    precision: Option<u64>,
    scale: Option<u64>,
    dt_precision: Option<u64>,
    character: bool,
}

fn labels_text(kind: &str, labels: &[String]) -> String {
    let quoted: Vec<String> =
        labels.iter().map(|l| format!("'{}'", l.replace('\\', "\\\\").replace('\'', "''"))).collect();
    format!("{kind}({})", quoted.join(","))
}

fn int_info(c: &ColumnSpec, name: &str, flavor: Flavor) -> TypeInfo {
    // display widths MariaDB (and MySQL 5.7) shows by default
    let default_width = match (name, c.unsigned) {
        ("tinyint", false) => 4,
        ("tinyint", true) => 3,
        ("smallint", false) => 6,
        ("smallint", true) => 5,
        ("mediumint", false) => 9,
        ("mediumint", true) => 8,
        ("int", false) => 11,
        ("int", true) => 10,
        _ => 20,
    };
    let width = c.args.first().copied();
    let shown = match flavor {
        Flavor::MariaDb => Some(width.unwrap_or(default_width)),
        // MySQL 8 drops display widths, except tinyint(1) and with ZEROFILL
        Flavor::MySql if c.zerofill => Some(width.unwrap_or(default_width)),
        Flavor::MySql if name == "tinyint" && width == Some(1) => Some(1),
        Flavor::MySql => None,
    };
    let mut column_type = match shown {
        Some(w) => format!("{name}({w})"),
        None => name.to_string(),
    };
    if c.unsigned {
        column_type.push_str(" unsigned");
    }
    if c.zerofill {
        column_type.push_str(" zerofill");
    }
    let precision = Some(match name {
        "tinyint" => 3,
        "smallint" => 5,
        "mediumint" => 7,
        "int" => 10,
        _ => 19,
    });
    TypeInfo {
        data_type: name.into(),
        column_type,
        char_len: None,
        precision,
        scale: Some(0),
        dt_precision: None,
        character: false,
    }
}

fn plain(data_type: &str, column_type: String) -> TypeInfo {
    TypeInfo {
        data_type: data_type.into(),
        column_type,
        char_len: None,
        precision: None,
        scale: None,
        dt_precision: None,
        character: false,
    }
}

fn sized_text(size: Option<u64>, names: [&str; 4]) -> &str {
    match size {
        None => names[1],
        Some(n) if n <= 255 => names[0],
        Some(n) if n <= 65_535 => names[1],
        Some(n) if n <= 16_777_215 => names[2],
        Some(_) => names[3],
    }
}

/// The information_schema form of the column's type.
fn type_info(c: &ColumnSpec, flavor: Flavor) -> Result<TypeInfo, String> {
    let unsigned = |t: String| if c.unsigned { format!("{t} unsigned") } else { t };
    let zf = |t: String| if c.zerofill { format!("{t} zerofill") } else { t };
    let a0 = c.args.first().copied();
    let t = c.type_name.as_str();
    let info = match t {
        "tinyint" | "int1" => int_info(c, "tinyint", flavor),
        "bool" | "boolean" => {
            let spec = ColumnSpec { args: vec![1], ..c.clone() };
            int_info(&spec, "tinyint", flavor)
        }
        "smallint" | "int2" => int_info(c, "smallint", flavor),
        "mediumint" | "int3" | "middleint" => int_info(c, "mediumint", flavor),
        "int" | "integer" | "int4" => int_info(c, "int", flavor),
        "bigint" | "int8" => int_info(c, "bigint", flavor),
        "serial" => int_info(&ColumnSpec { unsigned: true, ..c.clone() }, "bigint", flavor),
        "decimal" | "dec" | "numeric" | "fixed" => {
            let p = a0.unwrap_or(10);
            let s = c.args.get(1).copied().unwrap_or(0);
            if p > 65 || s > 30 || s > p {
                return Err(format!("bad DECIMAL({p},{s})"));
            }
            TypeInfo {
                precision: Some(p),
                scale: Some(s),
                ..plain("decimal", zf(unsigned(format!("decimal({p},{s})"))))
            }
        }
        "float" | "float4" | "float8" | "double" | "double precision" | "real" => {
            let is_double = matches!(t, "double" | "double precision" | "real" | "float8")
                || (t == "float" && c.args.len() == 1 && a0.unwrap_or(0) > 24);
            let name = if is_double { "double" } else { "float" };
            let base = match c.args.as_slice() {
                [m, d] => format!("{name}({m},{d})"),
                _ => name.to_string(),
            };
            TypeInfo {
                precision: Some(if is_double { 22 } else { 12 }),
                scale: c.args.get(1).copied(),
                ..plain(name, zf(unsigned(base)))
            }
        }
        "bit" => {
            let n = a0.unwrap_or(1);
            TypeInfo { precision: Some(n), ..plain("bit", format!("bit({n})")) }
        }
        "char" | "character" | "nchar" | "national char" | "national character" => {
            let n = a0.unwrap_or(1);
            TypeInfo { char_len: Some(n), character: true, ..plain("char", format!("char({n})")) }
        }
        "varchar"
        | "char varying"
        | "character varying"
        | "nvarchar"
        | "varcharacter"
        | "national varchar"
        | "national char varying"
        | "national character varying"
        | "nchar varying"
        | "varchar2" => {
            let n = a0.ok_or("VARCHAR needs a length")?;
            TypeInfo { char_len: Some(n), character: true, ..plain("varchar", format!("varchar({n})")) }
        }
        "long" | "long varchar" | "long char varying" | "mediumtext" => {
            TypeInfo { char_len: Some(16_777_215), character: true, ..plain("mediumtext", "mediumtext".into()) }
        }
        "tinytext" | "text" | "longtext" => {
            let name = if t == "text" { sized_text(a0, ["tinytext", "text", "mediumtext", "longtext"]) } else { t };
            TypeInfo { character: true, ..plain(name, name.into()) }
        }
        "json" if flavor == Flavor::MariaDb => TypeInfo { character: true, ..plain("longtext", "longtext".into()) },
        "json" => plain("json", "json".into()),
        "binary" => {
            let n = a0.unwrap_or(1);
            TypeInfo { char_len: Some(n), ..plain("binary", format!("binary({n})")) }
        }
        "varbinary" => {
            let n = a0.ok_or("VARBINARY needs a length")?;
            TypeInfo { char_len: Some(n), ..plain("varbinary", format!("varbinary({n})")) }
        }
        "long varbinary" | "mediumblob" => plain("mediumblob", "mediumblob".into()),
        "tinyblob" | "blob" | "longblob" => {
            let name = if t == "blob" { sized_text(a0, ["tinyblob", "blob", "mediumblob", "longblob"]) } else { t };
            plain(name, name.into())
        }
        "date" => plain("date", "date".into()),
        "datetime" | "timestamp" | "time" => {
            let n = a0.unwrap_or(0);
            if n > 6 {
                return Err(format!("bad fractional seconds {n}"));
            }
            let ct = if a0.is_some_and(|n| n > 0) { format!("{t}({n})") } else { t.to_string() };
            TypeInfo { dt_precision: Some(n), ..plain(t, ct) }
        }
        "year" => plain("year", if flavor == Flavor::MariaDb { "year(4)".into() } else { "year".into() }),
        "enum" | "set" => {
            if c.labels.is_empty() {
                return Err(format!("{} without members", t.to_ascii_uppercase()));
            }
            TypeInfo { character: true, ..plain(t, labels_text(t, &c.labels)) }
        }
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring" | "multipolygon" => {
            plain(t, t.into())
        }
        "geometrycollection" | "geomcollection" => {
            let name = if flavor == Flavor::MySql { "geomcollection" } else { "geometrycollection" };
            plain(name, name.into())
        }
        // information_schema reports the type; map_column refuses it with the column's name
        other => plain(other, other.to_string()),
    };
    Ok(info)
}

/// The COLUMN_DEFAULT and EXTRA of a default as the flavor reports them.
fn default_form(d: &DefaultSpec, flavor: Flavor) -> (Option<String>, bool) {
    match (d, flavor) {
        (DefaultSpec::Null, Flavor::MariaDb) => (Some("NULL".into()), false),
        (DefaultSpec::Null, Flavor::MySql) => (None, false),
        (DefaultSpec::Str(s), Flavor::MariaDb) => {
            (Some(format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))), false)
        }
        (DefaultSpec::Str(s), Flavor::MySql) => (Some(s.clone()), false),
        (DefaultSpec::Num(n), _) => (Some(n.clone()), false),
        (DefaultSpec::CurrentTimestamp(p), Flavor::MariaDb) => {
            (Some(format!("current_timestamp({})", p.map(|n| n.to_string()).unwrap_or_default())), false)
        }
        (DefaultSpec::CurrentTimestamp(p), Flavor::MySql) => {
            (Some(p.map(|n| format!("CURRENT_TIMESTAMP({n})")).unwrap_or_else(|| "CURRENT_TIMESTAMP".into())), true)
        }
        (DefaultSpec::Expr(e), Flavor::MariaDb) => (Some(e.clone()), false),
        (DefaultSpec::Expr(e), Flavor::MySql) => (Some(e.clone()), true),
    }
}

/// The extra of a column without its default part.
fn extra_words(c: &ColumnSpec, flavor: Flavor) -> Vec<String> {
    let mut words = Vec::new();
    if c.auto_increment || c.serial || c.type_name == "serial" {
        words.push("auto_increment".to_string());
    }
    if let Some(u) = &c.on_update {
        words.push(match flavor {
            Flavor::MariaDb => format!("on update {}", u.to_ascii_lowercase()),
            Flavor::MySql => format!("on update {}", u.to_ascii_uppercase()),
        });
    }
    if let Some(g) = &c.generated {
        words.push(format!("{g} GENERATED"));
    }
    words
}

/// The column as information_schema would report it, and its extra attributes.
pub(crate) fn column(c: &ColumnSpec, env: &Env) -> Result<(MySqlColumn, ColumnExtra), String> {
    let info = type_info(c, env.flavor).map_err(|e| format!("column \"{}\": {e}", c.name))?;
    let charset = if info.character {
        c.charset.clone().or_else(|| c.implied_charset.clone()).or_else(|| env.charset.clone())
    } else {
        None
    };
    let serial = c.serial || c.type_name == "serial";
    let nullable = !(c.primary_key || serial || c.nullable == Some(false));
    let mut col = MySqlColumn {
        name: c.name.clone(),
        data_type: info.data_type,
        column_type: info.column_type.clone(),
        nullable,
        char_max_len: info.char_len,
        numeric_precision: info.precision,
        numeric_scale: info.scale,
        datetime_precision: info.dt_precision,
        pg_override: env.options.override_for(env.schema, env.table, &info.column_type),
        zero_dates: env.options.zero_dates,
        charset,
        postgis: None,
        pgvector: None,
    };
    env.extensions.apply_to(&mut col);
    let mut extra_list = Vec::new();
    let default = match &c.default {
        Some(d) => {
            let (text, generated) = default_form(d, env.flavor);
            if generated {
                extra_list.push("DEFAULT_GENERATED".to_string());
            }
            text
        }
        // MariaDB reports NULL as the default of a nullable column without one
        None if env.flavor == Flavor::MariaDb && nullable && c.generated.is_none() && !c.auto_increment => {
            Some("NULL".into())
        }
        None => None,
    };
    extra_list.extend(extra_words(c, env.flavor));
    let extra = ColumnExtra { default, extra: extra_list.join(" "), comment: c.comment.clone().unwrap_or_default() };
    Ok((col, extra))
}

/// Whether the column holds character data (its charset follows the table's).
pub(crate) fn is_character(col: &MySqlColumn) -> bool {
    matches!(
        col.data_type.as_str(),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "enum" | "set"
    )
}

/// An index of the model from a parsed one; `None` for an index on an expression.
pub(crate) fn index(spec: &IndexSpec, existing: &[IndexDef]) -> Option<IndexDef> {
    let columns: Option<Vec<String>> = spec.columns.iter().cloned().collect();
    let columns = columns?;
    let first = columns.first()?.clone();
    let name = match spec.kind {
        IndexKind::Primary => "PRIMARY".to_string(),
        _ => spec.name.clone().or_else(|| spec.constraint.clone()).unwrap_or_else(|| unique_name(&first, existing)),
    };
    let kind = match spec.kind {
        IndexKind::Fulltext => "FULLTEXT".to_string(),
        IndexKind::Spatial => "SPATIAL".to_string(),
        _ => spec.using.clone().unwrap_or_else(|| "BTREE".into()),
    };
    Some(IndexDef {
        name,
        unique: matches!(spec.kind, IndexKind::Primary | IndexKind::Unique),
        columns,
        kind,
        prefix: spec.prefix,
    })
}

/// MySQL's name for an unnamed index: its first column, then `_2`, `_3`... when taken.
fn unique_name(base: &str, existing: &[IndexDef]) -> String {
    let taken = |n: &str| existing.iter().any(|i| i.name.eq_ignore_ascii_case(n));
    if !taken(base) && !base.eq_ignore_ascii_case("PRIMARY") {
        return base.to_string();
    }
    (2..).map(|k| format!("{base}_{k}")).find(|n| !taken(n)).unwrap_or_default()
}

/// A foreign key of the model (the referenced schema defaults to the table's own), and the
/// index InnoDB creates for it when no index starts with its columns.
pub(crate) fn foreign_key(spec: &ForeignKeySpec, model: &TableModel, n: usize) -> (ForeignKeyDef, Option<IndexDef>) {
    let name = spec.constraint.clone().unwrap_or_else(|| format!("{}_ibfk_{n}", model.mysql_table));
    let fk = ForeignKeyDef {
        name: name.clone(),
        columns: spec.columns.clone(),
        ref_schema: spec.ref_table.schema.clone().unwrap_or_else(|| model.mysql_schema.clone()),
        ref_table: spec.ref_table.table.clone(),
        ref_columns: spec.ref_columns.clone(),
        on_update: spec.on_update.clone().unwrap_or_else(|| "RESTRICT".into()),
        on_delete: spec.on_delete.clone().unwrap_or_else(|| "RESTRICT".into()),
    };
    let covered = model.indexes.iter().any(|i| {
        i.columns.len() >= fk.columns.len() && i.columns.iter().zip(&fk.columns).all(|(a, b)| a.eq_ignore_ascii_case(b))
    });
    let index = (!covered && !fk.columns.is_empty()).then(|| IndexDef {
        name: spec
            .index_name
            .clone()
            .or(spec.constraint.clone())
            .unwrap_or_else(|| unique_name(&fk.columns[0], &model.indexes)),
        unique: false,
        columns: fk.columns.clone(),
        kind: "BTREE".into(),
        prefix: false,
    });
    (fk, index)
}

/// Adds an index to the model (PRIMARY KEY columns become NOT NULL, as in MySQL).
pub(crate) fn add_index(model: &mut TableModel, ix: IndexDef) -> Result<(), String> {
    if model.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(&ix.name)) {
        return Err(format!("index {} already exists", ix.name));
    }
    for c in &ix.columns {
        if !model.columns.iter().any(|col| col.name.eq_ignore_ascii_case(c)) {
            return Err(format!("index {} names a column {c} the table does not have", ix.name));
        }
    }
    if ix.name == "PRIMARY" {
        for col in model.columns.iter_mut().filter(|col| ix.columns.iter().any(|c| c.eq_ignore_ascii_case(&col.name))) {
            col.nullable = false;
        }
        model.indexes.insert(0, ix);
    } else {
        model.indexes.push(ix);
    }
    Ok(())
}

/// Column index by name (MySQL column names are case-insensitive).
pub(crate) fn find_column(model: &TableModel, name: &str) -> Option<usize> {
    model.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name))
}

/// Inserts a column at its MySQL position.
pub(crate) fn insert_column(
    model: &mut TableModel,
    col: MySqlColumn,
    extra: ColumnExtra,
    pos: &Option<Position>,
) -> Result<usize, String> {
    let at = match pos {
        None => model.columns.len(),
        Some(Position::First) => 0,
        Some(Position::After(a)) => {
            find_column(model, a).ok_or_else(|| format!("AFTER names an unknown column {a}"))? + 1
        }
    };
    model.columns.insert(at, col);
    model.extras.insert(at, extra);
    Ok(at)
}

/// Renames a column everywhere in the model (indexes, key, foreign keys).
pub(crate) fn rename_column_refs(model: &mut TableModel, old: &str, new: &str) {
    for ix in model.indexes.iter_mut() {
        for c in ix.columns.iter_mut().filter(|c| c.eq_ignore_ascii_case(old)) {
            *c = new.to_string();
        }
    }
    for fk in model.foreign_keys.iter_mut() {
        for c in fk.columns.iter_mut().filter(|c| c.eq_ignore_ascii_case(old)) {
            *c = new.to_string();
        }
    }
}

/// Drops a column from the model: MySQL removes it from its indexes (an index left without
/// columns goes).
pub(crate) fn remove_column(model: &mut TableModel, at: usize) -> Option<(MySqlColumn, ColumnExtra)> {
    if at >= model.columns.len() {
        return None;
    }
    let col = model.columns.remove(at);
    let extra = model.extras.remove(at);
    for ix in model.indexes.iter_mut() {
        ix.columns.retain(|c| !c.eq_ignore_ascii_case(&col.name));
    }
    model.indexes.retain(|ix| !ix.columns.is_empty());
    model.foreign_keys.retain(|fk| !fk.columns.iter().any(|c| c.eq_ignore_ascii_case(&col.name)));
    Some((col, extra))
}

/// The replica key after a change.
pub(crate) fn refresh_key(model: &mut TableModel) {
    model.key = schema::replica_key(&model.indexes, &model.columns);
}

/// Whether an op only changes things the replica does not have.
pub(crate) fn is_ignored(op: &AlterOp) -> bool {
    matches!(op, AlterOp::Ignored(_))
}

#[cfg(test)]
mod tests {
    use super::super::normalize::lex;
    use super::super::parse::{column as parse_column, P};
    use super::*;

    fn col(def: &str, flavor: Flavor) -> (MySqlColumn, ColumnExtra) {
        let toks = lex(def);
        let spec = parse_column(&mut P::new(&toks)).unwrap();
        let options = SourceOptions::default();
        let env = Env {
            flavor,
            options: &options,
            schema: "s",
            table: "t",
            charset: Some("utf8mb4".into()),
            extensions: &Default::default(),
        };
        column(&spec, &env).unwrap()
    }

    #[test]
    fn information_schema_forms() {
        let (c, x) = col("id int unsigned NOT NULL AUTO_INCREMENT", Flavor::MariaDb);
        assert_eq!((c.data_type.as_str(), c.column_type.as_str(), c.nullable), ("int", "int(10) unsigned", false));
        assert_eq!((x.default, x.extra.as_str()), (None, "auto_increment"));
        let (c, _) = col("id int unsigned NOT NULL", Flavor::MySql);
        assert_eq!(c.column_type, "int unsigned");
        let (c, x) = col("ok BOOLEAN DEFAULT TRUE", Flavor::MySql);
        assert_eq!((c.column_type.as_str(), x.default.as_deref()), ("tinyint(1)", Some("1")));
        let (c, x) = col("name varchar(20) DEFAULT 'it''s'", Flavor::MariaDb);
        assert_eq!(
            (c.char_max_len, c.charset.as_deref(), x.default.as_deref()),
            (Some(20), Some("utf8mb4"), Some("'it''s'"))
        );
        let (c, _) = col("e enum('a','b''c') CHARACTER SET latin1", Flavor::MariaDb);
        assert_eq!((c.column_type.as_str(), c.charset.as_deref()), ("enum('a','b''c')", Some("latin1")));
        let (c, _) = col("d DEC(5)", Flavor::MariaDb);
        assert_eq!((c.column_type.as_str(), c.numeric_precision, c.numeric_scale), ("decimal(5,0)", Some(5), Some(0)));
        let (c, x) =
            col("t timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)", Flavor::MySql);
        assert_eq!((c.column_type.as_str(), c.datetime_precision), ("timestamp(3)", Some(3)));
        assert_eq!(
            (x.default.as_deref(), x.extra.as_str()),
            (Some("CURRENT_TIMESTAMP(3)"), "DEFAULT_GENERATED on update CURRENT_TIMESTAMP(3)")
        );
        let (c, x) = col("s SERIAL", Flavor::MariaDb);
        assert_eq!(
            (c.column_type.as_str(), c.nullable, x.extra.as_str()),
            ("bigint(20) unsigned", false, "auto_increment")
        );
        let (c, _) = col("l LONG VARCHAR", Flavor::MariaDb);
        assert_eq!(c.data_type, "mediumtext");
        let (c, _) = col("j json", Flavor::MariaDb);
        assert_eq!(c.data_type, "longtext");
        let (c, _) = col("b varbinary(16)", Flavor::MariaDb);
        assert_eq!(c.charset, None);
    }
}
