//! SQL text built from source identifiers: quoting (every identifier from the source
//! reaches SQL only quoted), table DDL for the initial copy, and the parameterised
//! statements replay prepares per table and operation.

/// Quotes an identifier as PostgreSQL does (always, so case and odd characters survive).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(table))
}

/// Quotes a string literal (standard_conforming_strings on).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quotes a MySQL identifier with backquotes.
pub fn quote_mysql_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A destination column: name and PostgreSQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    pub name: String,
    pub pg_type: String,
    pub nullable: bool,
}

pub fn create_table(schema: &str, table: &str, cols: &[PgColumn]) -> String {
    let body: Vec<String> = cols
        .iter()
        .map(|c| {
            format!(
                "{} {}{}",
                quote_ident(&c.name),
                c.pg_type,
                if c.nullable { "" } else { " NOT NULL" }
            )
        })
        .collect();
    format!("CREATE TABLE {} ({})", qualified(schema, table), body.join(", "))
}

pub fn create_enum(schema: &str, name: &str, labels: &[String]) -> String {
    let labels: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
    format!("CREATE TYPE {} AS ENUM ({})", qualified(schema, name), labels.join(", "))
}

pub fn add_primary_key(schema: &str, table: &str, key: &[String]) -> String {
    let cols: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
    format!("ALTER TABLE {} ADD PRIMARY KEY ({})", qualified(schema, table), cols.join(", "))
}

/// `INSERT` with one text parameter per column, cast to the column type.
pub fn insert_statement(schema: &str, table: &str, cols: &[PgColumn]) -> String {
    let names: Vec<String> = cols.iter().map(|c| quote_ident(&c.name)).collect();
    let params: Vec<String> =
        cols.iter().enumerate().map(|(i, c)| format!("${}::{}", i + 1, c.pg_type)).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        qualified(schema, table),
        names.join(", "),
        params.join(", ")
    )
}

fn key_predicate(key: &[&PgColumn], first_param: usize) -> String {
    key.iter()
        .enumerate()
        .map(|(i, c)| format!("{} = ${}::{}", quote_ident(&c.name), first_param + i, c.pg_type))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `UPDATE` setting every column ($1..$n) where the old key matches ($n+1..).
pub fn update_statement(schema: &str, table: &str, cols: &[PgColumn], key: &[&PgColumn]) -> String {
    let sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = ${}::{}", quote_ident(&c.name), i + 1, c.pg_type))
        .collect();
    format!(
        "UPDATE {} SET {} WHERE {}",
        qualified(schema, table),
        sets.join(", "),
        key_predicate(key, cols.len() + 1)
    )
}

pub fn delete_statement(schema: &str, table: &str, key: &[&PgColumn]) -> String {
    format!("DELETE FROM {} WHERE {}", qualified(schema, table), key_predicate(key, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, t: &str) -> PgColumn {
        PgColumn { name: name.into(), pg_type: t.into(), nullable: true }
    }

    #[test]
    fn quoting_is_total() {
        assert_eq!(quote_ident("Mixed Case"), "\"Mixed Case\"");
        assert_eq!(quote_ident("a\"; DROP TABLE x; --"), "\"a\"\"; DROP TABLE x; --\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_mysql_ident("we`ird"), "`we``ird`");
    }

    #[test]
    fn statements() {
        let cols = vec![c("id", "integer"), c("Name", "text")];
        assert_eq!(
            insert_statement("s", "t", &cols),
            "INSERT INTO \"s\".\"t\" (\"id\", \"Name\") VALUES ($1::integer, $2::text)"
        );
        assert_eq!(
            update_statement("s", "t", &cols, &[&cols[0]]),
            "UPDATE \"s\".\"t\" SET \"id\" = $1::integer, \"Name\" = $2::text WHERE \"id\" = $3::integer"
        );
        assert_eq!(delete_statement("s", "t", &[&cols[0]]), "DELETE FROM \"s\".\"t\" WHERE \"id\" = $1::integer");
        let mut nn = c("id", "integer");
        nn.nullable = false;
        assert_eq!(create_table("s", "t", &[nn]), "CREATE TABLE \"s\".\"t\" (\"id\" integer NOT NULL)");
    }
}
