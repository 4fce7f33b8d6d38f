//! The statements set-based replay runs per table: each takes one `text[]` parameter per
//! column (or key column), unnested side by side into rows, every value cast to its column's
//! type as the one-row statements do (the same input functions, the same errors).
//!
//! The caller compares the rows each statement touches with the number of keys it names
//! (core::netchange): a delete or an update matches exactly one row per key, the absent
//! check counts none.

use crate::core::sql::{qualified, quote_ident, PgColumn};

/// `unnest($first::text[], ...) AS u(v1, ...)`: the parameters `first..first + n` as rows.
fn unnested(n: usize, first: usize) -> String {
    let arrays: Vec<String> = (0..n).map(|i| format!("${}::text[]", first + i)).collect();
    let names: Vec<String> = (1..=n).map(|i| format!("v{i}")).collect();
    format!("unnest({}) AS u({})", arrays.join(", "), names.join(", "))
}

/// `d.k1 = u.v1::type AND ...`: the key columns against the unnested values `v1..`.
fn key_match(key: &[&PgColumn]) -> String {
    key.iter()
        .enumerate()
        .map(|(i, c)| format!("d.{} = u.v{}::{}", quote_ident(&c.name), i + 1, c.pg_type))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// Inserts rows: one array per column.
pub fn insert_rows(schema: &str, table: &str, cols: &[PgColumn]) -> String {
    let names: Vec<String> = cols.iter().map(|c| quote_ident(&c.name)).collect();
    let values: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("u.v{}::{}", i + 1, c.pg_type)).collect();
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {}",
        qualified(schema, table),
        names.join(", "),
        values.join(", "),
        unnested(cols.len(), 1)
    )
}

/// Sets every column of the rows whose key (columns `key_at` of the row) matches: one array
/// per column. The key is not changed (a net update keeps its key).
pub fn update_rows(schema: &str, table: &str, cols: &[PgColumn], key_at: &[usize]) -> String {
    let sets: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = u.v{}::{}", quote_ident(&c.name), i + 1, c.pg_type))
        .collect();
    let matches: Vec<String> = key_at
        .iter()
        .map(|&i| format!("d.{} = u.v{}::{}", quote_ident(&cols[i].name), i + 1, cols[i].pg_type))
        .collect();
    format!(
        "UPDATE {} AS d SET {} FROM {} WHERE {}",
        qualified(schema, table),
        sets.join(", "),
        unnested(cols.len(), 1),
        matches.join(" AND ")
    )
}

/// Deletes the rows of the keys: one array per key column.
pub fn delete_keys(schema: &str, table: &str, key: &[&PgColumn]) -> String {
    format!("DELETE FROM {} AS d USING {} WHERE {}", qualified(schema, table), unnested(key.len(), 1), key_match(key))
}

/// Counts the rows holding any of the keys: one array per key column.
pub fn count_keys(schema: &str, table: &str, key: &[&PgColumn]) -> String {
    format!(
        "SELECT count(*) FROM {} AS d, {} WHERE {}",
        qualified(schema, table),
        unnested(key.len(), 1),
        key_match(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, t: &str) -> PgColumn {
        PgColumn { name: name.into(), pg_type: t.into(), nullable: true }
    }

    #[test]
    fn statements() {
        let cols = vec![c("id", "integer"), c("Na\"me", "text"), c("k2", "bigint")];
        assert_eq!(
            insert_rows("s", "t", &cols),
            "INSERT INTO \"s\".\"t\" (\"id\", \"Na\"\"me\", \"k2\") SELECT u.v1::integer, u.v2::text, u.v3::bigint \
             FROM unnest($1::text[], $2::text[], $3::text[]) AS u(v1, v2, v3)"
        );
        assert_eq!(
            update_rows("s", "t", &cols, &[0, 2]),
            "UPDATE \"s\".\"t\" AS d SET \"id\" = u.v1::integer, \"Na\"\"me\" = u.v2::text, \"k2\" = u.v3::bigint \
             FROM unnest($1::text[], $2::text[], $3::text[]) AS u(v1, v2, v3) \
             WHERE d.\"id\" = u.v1::integer AND d.\"k2\" = u.v3::bigint"
        );
        let key = [&cols[0], &cols[2]];
        assert_eq!(
            delete_keys("s", "t", &key),
            "DELETE FROM \"s\".\"t\" AS d USING unnest($1::text[], $2::text[]) AS u(v1, v2) \
             WHERE d.\"id\" = u.v1::integer AND d.\"k2\" = u.v2::bigint"
        );
        assert_eq!(
            count_keys("s", "t", &key[..1]),
            "SELECT count(*) FROM \"s\".\"t\" AS d, unnest($1::text[]) AS u(v1) WHERE d.\"id\" = u.v1::integer"
        );
    }
}
