//! PostgreSQL text for table models: the table as the copy creates it, its secondary
//! indexes and primary key constraint names, renames that keep the naming invariants, and
//! the column changes of ALTER TABLE. Identifiers go through `quote_ident` / `qualified`.

use super::TableModel;
use crate::core::mysql_source::Flavor;
use crate::core::schema::{self, ColumnExtra, IndexDef};
use crate::core::sql::{self, qualified, quote_ident, quote_literal, ColumnOptions, PgColumn};
use crate::core::types::{enum_type_name, map_column, Charset, MappedType, MySqlColumn, ValueKind, ZeroDates};

/// PostgreSQL's name for the primary key of a table (makeObjectName: the table name cut so
/// that `_pkey` fits in 63 bytes, at a character boundary).
pub(crate) fn pkey_name(table: &str) -> String {
    let rel = sql::pg_identifier(table);
    let mut cut = rel.len().min(sql::MAX_IDENTIFIER_BYTES - 5);
    while !rel.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_pkey", rel.get(..cut).unwrap_or(rel))
}

pub(crate) fn table_ref(m: &TableModel) -> String {
    qualified(&m.pg_schema, &m.mysql_table)
}

/// A secondary index as it exists in PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PgIndex {
    pub pg_name: String,
    pub sql: String,
    pub def: IndexDef,
}

/// The secondary indexes PostgreSQL has for the model (as `finish_table` builds them), and a
/// note for each one it cannot have.
pub(crate) fn pg_indexes(m: &TableModel) -> (Vec<PgIndex>, Vec<String>) {
    let key_index = m.indexes.iter().find(|i| i.columns == m.key && i.unique).map(|i| i.name.clone());
    let postgis = m.columns.iter().any(|c| c.postgis.is_some());
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for ix in m.indexes.iter().filter(|i| Some(&i.name) != key_index.as_ref()) {
        let (ddl, skipped) = schema::index_statements(&m.pg_schema, &m.mysql_table, std::slice::from_ref(ix), postgis);
        notes.extend(skipped);
        if let Some(sql) = ddl.into_iter().next() {
            out.push(PgIndex { pg_name: schema::index_name(&m.mysql_table, &ix.name), sql, def: ix.clone() });
        }
    }
    (out, notes)
}

/// Maps every column; the first one that cannot be mapped names the column.
pub(crate) fn mapped_columns(m: &TableModel) -> Result<Vec<MappedType>, String> {
    m.columns.iter().map(|c| map_column(c, &m.pg_schema, &m.mysql_table).map_err(|e| e.to_string())).collect()
}

/// Why a table with this model cannot be replicated, if it cannot.
pub(crate) fn problem(m: &TableModel, mapped: &[MappedType]) -> Option<String> {
    if let Some((a, b)) = sql::identifier_collision(m.columns.iter().map(|c| c.name.as_str())) {
        return Some(format!(
            "columns \"{a}\" and \"{b}\" have the same first 63 bytes, the longest name PostgreSQL keeps"
        ));
    }
    if let Some((c, _)) = m.columns.iter().zip(mapped).find(|(_, mt)| mt.kind == ValueKind::Text(Charset::Other)) {
        return Some(format!(
            "column \"{}\" has character set {}, which the change stream cannot decode yet",
            c.name,
            c.charset.as_deref().unwrap_or("?")
        ));
    }
    None
}

fn comment_on_column(m: &TableModel, col: &str, comment: &str) -> String {
    let value = if comment.is_empty() { "NULL".to_string() } else { quote_literal(comment) };
    format!("COMMENT ON COLUMN {}.{} IS {value}", table_ref(m), quote_ident(col))
}

pub(crate) fn comment_on_table(m: &TableModel, comment: &str) -> String {
    let value = if comment.is_empty() { "NULL".to_string() } else { quote_literal(comment) };
    format!("COMMENT ON TABLE {} IS {value}", table_ref(m))
}

fn create_enum(m: &TableModel, name: &str, labels: &[String]) -> Vec<String> {
    vec![format!("DROP TYPE IF EXISTS {}", qualified(&m.pg_schema, name)), sql::create_enum(&m.pg_schema, name, labels)]
}

/// The options (default, identity) of each column, as the copy sets them; notes for
/// defaults that cannot be translated.
fn column_options(
    flavor: Flavor,
    m: &TableModel,
    mapped: &[MappedType],
    notes: &mut Vec<String>,
) -> Vec<ColumnOptions> {
    m.columns
        .iter()
        .zip(mapped)
        .zip(&m.extras)
        .map(|((c, mt), x)| {
            let identity = schema::identity(c, mt, x);
            let default = if identity {
                None
            } else {
                schema::default_clause(flavor, c, mt, x).unwrap_or_else(|note| {
                    notes.push(note);
                    None
                })
            };
            ColumnOptions { default, identity }
        })
        .collect()
}

/// CREATE TABLE as the copy does it, with keys and indexes at once (the table is empty).
pub(crate) fn create_table(
    flavor: Flavor,
    m: &TableModel,
    mapped: &[MappedType],
    comment: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut sql_out = Vec::new();
    let mut notes = sql::long_name_notes(&m.mysql_table, m.columns.iter().map(|c| c.name.as_str()));
    for (name, labels) in mapped.iter().filter_map(|mt| mt.create_enum.as_ref()) {
        sql_out.extend(create_enum(m, name, labels));
    }
    let cols: Vec<PgColumn> = m.columns.iter().zip(mapped).map(|(c, mt)| PgColumn::of(c, mt)).collect();
    let opts = column_options(flavor, m, mapped, &mut notes);
    sql_out.push(sql::create_table_with(&m.pg_schema, &m.mysql_table, &cols, &opts));
    if let Some(c) = comment.filter(|c| !c.is_empty()) {
        sql_out.push(comment_on_table(m, c));
    }
    for (c, x) in m.columns.iter().zip(&m.extras).filter(|(_, x)| !x.comment.is_empty()) {
        sql_out.push(comment_on_column(m, &c.name, &x.comment));
    }
    if !m.key.is_empty() {
        sql_out.push(sql::add_primary_key(&m.pg_schema, &m.mysql_table, &m.key));
    }
    let (indexes, skipped) = pg_indexes(m);
    sql_out.extend(indexes.into_iter().map(|i| i.sql));
    notes.extend(skipped);
    (sql_out, notes)
}

/// The enum types of the model's columns.
fn enum_types(m: &TableModel) -> Vec<String> {
    m.columns.iter().filter(|c| c.data_type == "enum").map(|c| enum_type_name(&m.mysql_table, &c.name)).collect()
}

pub(crate) fn drop_table(m: &TableModel) -> Vec<String> {
    let mut out = vec![format!("DROP TABLE IF EXISTS {}", table_ref(m))];
    out.extend(enum_types(m).iter().map(|e| format!("DROP TYPE IF EXISTS {}", qualified(&m.pg_schema, e))));
    out
}

/// Moves and renames the table of `old` to `pg_schema.table`, with its enum types,
/// secondary indexes and primary key constraint.
pub(crate) fn rename_table(old: &TableModel, pg_schema: &str, table: &str) -> Vec<String> {
    let mut out = Vec::new();
    let enums = enum_types(old);
    if old.pg_schema != pg_schema {
        out.push(format!("ALTER TABLE {} SET SCHEMA {}", table_ref(old), quote_ident(pg_schema)));
        for e in &enums {
            out.push(format!("ALTER TYPE {} SET SCHEMA {}", qualified(&old.pg_schema, e), quote_ident(pg_schema)));
        }
    }
    if old.mysql_table == table {
        return out;
    }
    out.push(format!("ALTER TABLE {} RENAME TO {}", qualified(pg_schema, &old.mysql_table), quote_ident(table)));
    for c in old.columns.iter().filter(|c| c.data_type == "enum") {
        let (from, to) = (enum_type_name(&old.mysql_table, &c.name), enum_type_name(table, &c.name));
        if from != to {
            out.push(format!("ALTER TYPE {} RENAME TO {}", qualified(pg_schema, &from), quote_ident(&to)));
        }
    }
    for ix in pg_indexes(old).0 {
        let to = schema::index_name(table, &ix.def.name);
        if ix.pg_name != to {
            out.push(format!(
                "ALTER INDEX IF EXISTS {} RENAME TO {}",
                qualified(pg_schema, &ix.pg_name),
                quote_ident(&to)
            ));
        }
    }
    let (from, to) = (pkey_name(&old.mysql_table), pkey_name(table));
    if !old.key.is_empty() && from != to {
        out.push(format!(
            "ALTER TABLE {} RENAME CONSTRAINT {} TO {}",
            qualified(pg_schema, table),
            quote_ident(&from),
            quote_ident(&to)
        ));
    }
    out
}

/// What MySQL puts in the existing rows of a NOT NULL column added without a default, as a
/// PostgreSQL constant; `None` when PostgreSQL has no such value (zero dates).
fn implicit_default(mt: &MappedType, zero_dates: ZeroDates) -> Option<String> {
    let lit = match &mt.kind {
        ValueKind::Int { .. }
        | ValueKind::Decimal
        | ValueKind::Float
        | ValueKind::Double
        | ValueKind::Year
        | ValueKind::Bool => "0".to_string(),
        ValueKind::Text(_) | ValueKind::Set(_) => String::new(),
        ValueKind::Enum(labels) => labels.first().cloned()?,
        ValueKind::Binary => "\\x".into(),
        ValueKind::FixedBinary(n) => format!("\\x{}", "00".repeat(*n as usize)),
        ValueKind::Bit(n) => "0".repeat(*n as usize),
        ValueKind::Json => "null".into(),
        ValueKind::Time | ValueKind::Interval => "00:00:00".into(),
        ValueKind::Uuid => "00000000-0000-0000-0000-000000000000".into(),
        ValueKind::Inet { v4: false } => "::".into(),
        ValueKind::Inet { v4: true } => "0.0.0.0".into(),
        ValueKind::Date(_) | ValueKind::DateTime(_) | ValueKind::Timestamp(_)
            if zero_dates == ZeroDates::MinusInfinity =>
        {
            "-infinity".into()
        }
        _ => return None,
    };
    Some(format!("{}::{}", quote_literal(&lit), mt.pg_type))
}

/// The column's PostgreSQL options: identity, and the default (or a note).
fn options_of(
    flavor: Flavor,
    c: &MySqlColumn,
    mt: &MappedType,
    x: &ColumnExtra,
    notes: &mut Vec<String>,
) -> ColumnOptions {
    let identity = schema::identity(c, mt, x);
    let default = if identity {
        None
    } else {
        schema::default_clause(flavor, c, mt, x).unwrap_or_else(|n| {
            notes.push(n);
            None
        })
    };
    ColumnOptions { default, identity }
}

fn alter_column(m: &TableModel, col: &str, what: &str) -> String {
    format!("ALTER TABLE {} ALTER COLUMN {} {what}", table_ref(m), quote_ident(col))
}

fn sequence_past_max(m: &TableModel, col: &str) -> String {
    let t = table_ref(m);
    let c = quote_ident(col);
    format!(
        "SELECT setval(pg_get_serial_sequence({}, {}), coalesce(max({c}), 0) + 1, false) FROM {t}",
        quote_literal(&t),
        quote_literal(&c)
    )
}

/// ALTER TABLE ... ADD COLUMN for column `at` of the model (already in it).
pub(crate) fn add_column(
    flavor: Flavor,
    m: &TableModel,
    at: usize,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let (Some(c), Some(x)) = (m.columns.get(at), m.extras.get(at)) else { return Err("column out of range".into()) };
    let mt = map_column(c, &m.pg_schema, &m.mysql_table).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    if let Some((name, labels)) = &mt.create_enum {
        out.extend(create_enum(m, name, labels));
    }
    let mut opts = options_of(flavor, c, &mt, x, notes);
    let mut pg = PgColumn::of(c, &mt);
    let mut after = Vec::new();
    if !c.nullable && opts.default.is_none() && !opts.identity {
        match implicit_default(&mt, c.zero_dates) {
            Some(fill) => {
                opts.default = Some(fill);
                after.push(alter_column(m, &c.name, "DROP DEFAULT"));
            }
            None => {
                // MySQL gives existing rows a zero date: only an empty table can follow
                pg.nullable = true;
                after.push(alter_column(m, &c.name, "SET NOT NULL"));
                notes.push(format!("column \"{}\" is NOT NULL without a default: the existing rows got MySQL's zero value, which PostgreSQL cannot hold", c.name));
            }
        }
    }
    if opts.identity {
        notes.push(format!(
            "AUTO_INCREMENT column \"{}\" added: PostgreSQL numbers the existing rows in its own order",
            c.name
        ));
    }
    if opts.default.as_deref().is_some_and(|d| d.contains("TIMESTAMP")) {
        notes.push(format!(
            "column \"{}\": existing rows get the time of replay, not the time of the ALTER on the source",
            c.name
        ));
    }
    out.push(format!("ALTER TABLE {} ADD COLUMN {}", table_ref(m), sql::column_definition(&pg, &opts)));
    if opts.identity {
        after.push(sequence_past_max(m, &c.name));
    }
    out.extend(after);
    if !x.comment.is_empty() {
        out.push(comment_on_column(m, &c.name, &x.comment));
    }
    Ok(out)
}

pub(crate) fn drop_column(m: &TableModel, c: &MySqlColumn) -> Vec<String> {
    let mut out = vec![format!("ALTER TABLE {} DROP COLUMN {}", table_ref(m), quote_ident(&c.name))];
    if c.data_type == "enum" {
        out.push(format!("DROP TYPE IF EXISTS {}", qualified(&m.pg_schema, &enum_type_name(&m.mysql_table, &c.name))));
    }
    out
}

/// Renames a column (and its enum type).
pub(crate) fn rename_column(m: &TableModel, old: &MySqlColumn, new_name: &str) -> Vec<String> {
    let mut out = vec![format!(
        "ALTER TABLE {} RENAME COLUMN {} TO {}",
        table_ref(m),
        quote_ident(&old.name),
        quote_ident(new_name)
    )];
    let (from, to) = (enum_type_name(&m.mysql_table, &old.name), enum_type_name(&m.mysql_table, new_name));
    if old.data_type == "enum" && from != to {
        out.push(format!("ALTER TYPE {} RENAME TO {}", qualified(&m.pg_schema, &from), quote_ident(&to)));
    }
    out
}

fn labels(mt: &MappedType) -> Option<&Vec<String>> {
    match &mt.kind {
        ValueKind::Enum(l) => Some(l),
        _ => None,
    }
}

/// The column type change, enum types included.
fn change_type(m: &TableModel, name: &str, old: &MappedType, new: &MappedType) -> Vec<String> {
    let col = quote_ident(name);
    let mut out = vec![alter_column(m, name, "DROP DEFAULT")];
    match (&new.create_enum, labels(old).is_some()) {
        (Some((canonical, labels)), true) => {
            let tmp = enum_type_name(&m.mysql_table, &format!("{name}$new"));
            let tmp_q = qualified(&m.pg_schema, &tmp);
            out.extend(create_enum(m, &tmp, labels));
            out.push(alter_column(m, name, &format!("TYPE {tmp_q} USING {col}::text::{tmp_q}")));
            out.push(format!("DROP TYPE {}", qualified(&m.pg_schema, canonical)));
            out.push(format!("ALTER TYPE {tmp_q} RENAME TO {}", quote_ident(canonical)));
        }
        (Some((canonical, labels)), false) => {
            out.extend(create_enum(m, canonical, labels));
            out.push(alter_column(m, name, &format!("TYPE {0} USING {col}::text::{0}", new.pg_type)));
        }
        (None, true) => {
            out.push(alter_column(m, name, &format!("TYPE {0} USING {col}::text::{0}", new.pg_type)));
            out.push(format!("DROP TYPE IF EXISTS {}", old.pg_type));
        }
        (None, false) => {
            let cast = match (&old.kind, new.kind == ValueKind::Bool) {
                (ValueKind::Int { .. }, true) => format!("{col}::integer::boolean"),
                _ => format!("{col}::{}", new.pg_type),
            };
            out.push(alter_column(m, name, &format!("TYPE {} USING {cast}", new.pg_type)));
        }
    }
    out
}

/// CHANGE / MODIFY of a column: `old` as it was, `new` as it is now in `m` (renamed
/// already when the name changes).
pub(crate) fn change_column(
    flavor: Flavor,
    m: &TableModel,
    old: (&MySqlColumn, &ColumnExtra),
    new: (&MySqlColumn, &ColumnExtra),
    notes: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let (oc, ox) = old;
    let (nc, nx) = new;
    let mut out = Vec::new();
    if oc.name != nc.name {
        out.extend(rename_column(m, oc, &nc.name));
    }
    let renamed = MySqlColumn { name: nc.name.clone(), ..oc.clone() };
    let om = map_column(&renamed, &m.pg_schema, &m.mysql_table).map_err(|e| e.to_string())?;
    let nm = map_column(nc, &m.pg_schema, &m.mysql_table).map_err(|e| e.to_string())?;
    let old_opts = options_of(flavor, &renamed, &om, ox, &mut Vec::new());
    let new_opts = options_of(flavor, nc, &nm, nx, notes);
    let type_changed = om.pg_type != nm.pg_type || labels(&om) != labels(&nm);
    if old_opts.identity && (!new_opts.identity || type_changed) {
        out.push(alter_column(m, &nc.name, "DROP IDENTITY IF EXISTS"));
    }
    if type_changed {
        out.extend(change_type(m, &nc.name, &om, &nm));
    }
    if oc.nullable != nc.nullable {
        out.push(alter_column(m, &nc.name, if nc.nullable { "DROP NOT NULL" } else { "SET NOT NULL" }));
    }
    if type_changed || old_opts.default != new_opts.default {
        match &new_opts.default {
            Some(d) => out.push(alter_column(m, &nc.name, &format!("SET DEFAULT {d}"))),
            None if !type_changed && old_opts.default.is_some() => out.push(alter_column(m, &nc.name, "DROP DEFAULT")),
            None => {}
        }
    }
    if new_opts.identity && (!old_opts.identity || type_changed) {
        out.push(alter_column(m, &nc.name, "ADD GENERATED BY DEFAULT AS IDENTITY"));
        out.push(sequence_past_max(m, &nc.name));
    }
    if ox.comment != nx.comment {
        out.push(comment_on_column(m, &nc.name, &nx.comment));
    }
    Ok(out)
}

/// SET DEFAULT / DROP DEFAULT after ALTER COLUMN.
pub(crate) fn set_default(
    flavor: Flavor,
    m: &TableModel,
    c: &MySqlColumn,
    x: &ColumnExtra,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let mt = map_column(c, &m.pg_schema, &m.mysql_table).map_err(|e| e.to_string())?;
    let opts = options_of(flavor, c, &mt, x, notes);
    if opts.identity {
        return Ok(Vec::new());
    }
    Ok(vec![match opts.default {
        Some(d) => alter_column(m, &c.name, &format!("SET DEFAULT {d}")),
        None => alter_column(m, &c.name, "DROP DEFAULT"),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkey_names_follow_postgres() {
        assert_eq!(pkey_name("users"), "users_pkey");
        let long = "t".repeat(70);
        assert_eq!(pkey_name(&long), format!("{}_pkey", "t".repeat(58)));
        let multi = format!("{}é", "a".repeat(57));
        assert_eq!(pkey_name(&multi), format!("{}_pkey", "a".repeat(57)));
    }
}
