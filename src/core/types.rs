//! MySQL -> PostgreSQL type mapping (docs/type-mapping.md): from a column as described by
//! `information_schema.COLUMNS` to the PostgreSQL column type, and to the `ValueKind` that the
//! value converter (`value.rs`) uses for both the initial copy and the binlog stream.

use crate::core::error::{CoreError, CoreResult};

/// A MySQL column as read from `information_schema.COLUMNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlColumn {
    pub name: String,
    /// `DATA_TYPE`, lower case: `int`, `varchar`, `datetime`, ...
    pub data_type: String,
    /// `COLUMN_TYPE` as the server writes it: `int(10) unsigned`, `enum('a','B')`, ...
    pub column_type: String,
    pub nullable: bool,
    pub char_max_len: Option<u64>,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
    /// A `type_override` target for this column (`boolean`, ...), decided at copy time.
    pub pg_override: Option<String>,
    /// What a zero date becomes (`zero_dates`), decided at copy time.
    pub zero_dates: ZeroDates,
    /// `CHARACTER_SET_NAME` of character columns (the binlog carries their bytes in it).
    pub charset: Option<String>,
    /// The schema of PostGIS's types when PostGIS was installed in the destination at copy
    /// time: spatial columns become `geometry`; without it they are bytea (EWKB).
    pub postgis: Option<String>,
    /// The schema of pgvector's types when pgvector was installed in the destination at copy
    /// time: VECTOR(n) columns become `vector(n)`; without it they are `real[]`.
    pub pgvector: Option<String>,
}

/// The destination's extensions whose types the mapping uses, each with the schema of its
/// types: read from PostgreSQL's catalog when a table is copied or a DDL statement applied,
/// then kept with each column (`MySqlColumn::postgis`, `MySqlColumn::pgvector`), so that a
/// table keeps the types it was created with when an extension comes or goes later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    pub postgis: Option<String>,
    pub pgvector: Option<String>,
}

impl Extensions {
    /// Records on `col` the extensions its type may map to.
    pub fn apply_to(&self, col: &mut MySqlColumn) {
        col.postgis = self.postgis.clone();
        col.pgvector = self.pgvector.clone();
    }
}

/// pgvector's `vector` holds at most this many dimensions; a longer VECTOR stays `real[]`.
pub const PGVECTOR_MAX_DIMENSIONS: u64 = 16_000;

/// The `zero_dates` policy: what MySQL's zero dates (`0000-00-00`, or a zero month or day)
/// become, since PostgreSQL has no such dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroDates {
    /// The row goes to `discarded_rows` with its exact bytes (nothing is changed silently).
    #[default]
    Discard,
    /// The value becomes NULL (only in a nullable column; NOT NULL columns discard).
    Null,
    /// The value becomes `-infinity`, which sorts before every date.
    MinusInfinity,
}

impl ZeroDates {
    pub const NAMES: &'static [&'static str] = &["discard", "null", "-infinity"];

    pub fn parse(s: &str) -> Option<ZeroDates> {
        match s.to_ascii_lowercase().as_str() {
            "discard" => Some(ZeroDates::Discard),
            "null" => Some(ZeroDates::Null),
            "-infinity" => Some(ZeroDates::MinusInfinity),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ZeroDates::Discard => "discard",
            ZeroDates::Null => "null",
            ZeroDates::MinusInfinity => "-infinity",
        }
    }
}

impl MySqlColumn {
    pub fn unsigned(&self) -> bool {
        self.column_type.to_ascii_lowercase().contains("unsigned")
    }
}

/// How a value of the column is decoded and rendered for PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// Integer of `bits` width (8, 16, 24, 32, 64).
    Int {
        bits: u8,
        unsigned: bool,
    },
    Decimal,
    Float,
    Double,
    /// BIT(n): rendered as a string of n binary digits.
    Bit(u32),
    /// Character data, stored as UTF-8 text; the binlog has it in the column's character set.
    Text(Charset),
    /// Binary data, stored as bytea with the exact bytes.
    Binary,
    /// BINARY(n): fixed length, right-padded with 0x00 (the row binlog drops the padding).
    FixedBinary(u32),
    /// DATE, with what its zero dates become.
    Date(ZeroDates),
    /// DATETIME(n): a wall-clock timestamp.
    DateTime(ZeroDates),
    /// TIMESTAMP(n): an instant, rendered in UTC with an explicit offset.
    Timestamp(ZeroDates),
    Time,
    /// TIME overridden to PostgreSQL's interval: MySQL's whole range (-838:59:59 to
    /// 838:59:59, microseconds) kept exactly.
    Interval,
    Year,
    Json,
    /// ENUM: the labels in definition order (binlog values are 1-based indexes).
    Enum(Vec<String>),
    /// SET: the members in definition order (binlog values are bitmasks).
    Set(Vec<String>),
    /// An integer column overridden to boolean: 0 and 1 only.
    Bool,
    /// A spatial value (MySQL stores a 4-byte SRID, then WKB), rendered as EWKB: for a PostGIS
    /// geometry column in hex, otherwise as bytea.
    Spatial {
        postgis: bool,
    },
    /// MySQL 9's VECTOR(n): n little-endian float32 values, rendered as pgvector's `vector`
    /// input (`[1,2,3]`) or as a `real[]` array (`{1,2,3}`).
    Vector {
        pgvector: bool,
    },
    /// MariaDB's UUID (16 bytes in the binlog, in the order of its text form).
    Uuid,
    /// MariaDB's INET6 (16 bytes) or INET4 (4 bytes), as PostgreSQL's inet.
    Inet {
        v4: bool,
    },
}

/// The character set of a character column, as far as the binlog converter decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Utf8,
    /// MySQL's latin1 is Windows-1252 (with the five unassigned bytes kept as C1 controls).
    Latin1,
    Ascii,
    /// UCS-2 and UTF-16: big-endian code units.
    Utf16,
    Utf16Le,
    /// UTF-32: big-endian code points.
    Utf32,
    /// A character set the binlog converter cannot decode: the table is copied (the copy
    /// reads UTF-8 from the server), not replicated.
    Other,
}

impl Charset {
    pub fn from_mysql(name: Option<&str>) -> Charset {
        match name.map(|n| n.to_ascii_lowercase()).as_deref() {
            None | Some("utf8mb4") | Some("utf8mb3") | Some("utf8") => Charset::Utf8,
            Some("latin1") => Charset::Latin1,
            Some("ascii") => Charset::Ascii,
            Some("ucs2") | Some("utf16") => Charset::Utf16,
            Some("utf16le") => Charset::Utf16Le,
            Some("utf32") => Charset::Utf32,
            Some(_) => Charset::Other,
        }
    }
}

/// The PostGIS geometry subtype of a MySQL spatial type (`None` for GEOMETRY itself).
fn spatial_subtype(data_type: &str) -> Option<Option<&'static str>> {
    Some(match data_type {
        "geometry" => None,
        "point" => Some("Point"),
        "linestring" => Some("LineString"),
        "polygon" => Some("Polygon"),
        "multipoint" => Some("MultiPoint"),
        "multilinestring" => Some("MultiLineString"),
        "multipolygon" => Some("MultiPolygon"),
        "geometrycollection" | "geomcollection" => Some("GeometryCollection"),
        _ => return None,
    })
}

/// The mapped PostgreSQL type and how values are converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedType {
    /// The type as written in DDL and casts (an enum type is schema-qualified and quoted).
    pub pg_type: String,
    pub kind: ValueKind,
    /// For ENUM: the PostgreSQL enum type to create before the table (name, labels).
    pub create_enum: Option<(String, Vec<String>)>,
}

/// Parses the labels of `enum('a','b''c')` / `set(...)` as information_schema writes them
/// (a quote inside a label is doubled, a backslash too).
pub fn parse_labels(column_type: &str) -> CoreResult<Vec<String>> {
    let bad = || CoreError::unsupported_type(format!("cannot read the members of {column_type}"));
    let open = column_type.find('(').ok_or_else(bad)?;
    let body = column_type[open + 1..].strip_suffix(')').ok_or_else(bad)?;
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        match chars.next() {
            None => break,
            Some('\'') => {
                let mut label = String::new();
                loop {
                    match chars.next() {
                        None => return Err(bad()),
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            label.push('\'');
                        }
                        Some('\'') => break,
                        Some('\\') if chars.peek() == Some(&'\\') => {
                            chars.next();
                            label.push('\\');
                        }
                        Some(c) => label.push(c),
                    }
                }
                labels.push(label);
            }
            Some(',') | Some(' ') => {}
            Some(_) => return Err(bad()),
        }
    }
    Ok(labels)
}

/// Name of the PostgreSQL enum type of a column: `<table>_<column>`, shortened with a hash
/// when longer than PostgreSQL's 63-byte identifiers.
pub fn enum_type_name(table: &str, column: &str) -> String {
    let full = format!("{table}_{column}");
    if full.len() <= 63 {
        return full;
    }
    // FNV-1a: stable across builds and platforms
    let mut h: u32 = 0x811c_9dc5;
    for b in full.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    let mut cut = 54;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{h:08x}", &full[..cut])
}

fn unsupported(col: &MySqlColumn) -> CoreError {
    CoreError::unsupported_type(format!(
        "column \"{}\" has type {} which this version does not replicate yet",
        col.name, col.column_type
    ))
}

/// The n of `vector(n)` (MySQL's COLUMN_TYPE; CHARACTER_MAXIMUM_LENGTH is its byte length, 4n).
fn vector_dimensions(col: &MySqlColumn) -> Option<u64> {
    let t = col.column_type.trim().to_ascii_lowercase();
    let declared = t
        .strip_prefix("vector")
        .and_then(|r| r.trim_start().strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.trim().parse::<u64>().ok());
    declared.or(col.char_max_len.map(|bytes| bytes / 4)).filter(|&n| n > 0)
}

fn frac(col: &MySqlColumn) -> u64 {
    col.datetime_precision.unwrap_or(0).min(6)
}

/// Maps one column of the table that will be `pg_schema.pg_table`. Unsigned integers are
/// widened so that no value overflows.
pub fn map_column(col: &MySqlColumn, pg_schema: &str, pg_table: &str) -> CoreResult<MappedType> {
    let natural = map_natural(col, pg_schema, pg_table)?;
    let Some(target) = &col.pg_override else { return Ok(natural) };
    let kind = match (&natural.kind, target.eq_ignore_ascii_case("boolean") || target.eq_ignore_ascii_case("bool")) {
        (ValueKind::Int { .. }, true) => ValueKind::Bool,
        // a duration, not a time of day: every TIME value has an exact interval
        (ValueKind::Time, false) if is_interval(target) => ValueKind::Interval,
        (_, true) => {
            return Err(CoreError::unsupported_type(format!(
                "column \"{}\": type_override to boolean needs an integer column, not {}",
                col.name, col.column_type
            )))
        }
        // other targets take the natural text form through PostgreSQL's input function
        (kind, false) => kind.clone(),
    };
    Ok(MappedType { pg_type: target.clone(), kind, create_enum: None })
}

/// `interval`, with or without a precision (`interval(6)`), as a `type_override` target.
fn is_interval(target: &str) -> bool {
    let t = target.trim().to_ascii_lowercase();
    t == "interval" || (t.starts_with("interval") && t["interval".len()..].trim_start().starts_with('('))
}

fn map_natural(col: &MySqlColumn, pg_schema: &str, pg_table: &str) -> CoreResult<MappedType> {
    let u = col.unsigned();
    let cs = Charset::from_mysql(col.charset.as_deref());
    // NULL cannot go into a NOT NULL column: such zero dates are discarded
    let zero = match col.zero_dates {
        ZeroDates::Null if !col.nullable => ZeroDates::Discard,
        z => z,
    };
    if let Some(subtype) = spatial_subtype(&col.data_type) {
        return Ok(match &col.postgis {
            Some(schema) => MappedType {
                pg_type: format!(
                    "{}{}",
                    crate::core::sql::qualified(schema, "geometry"),
                    subtype.map(|s| format!("({s})")).unwrap_or_default()
                ),
                kind: ValueKind::Spatial { postgis: true },
                create_enum: None,
            },
            None => {
                MappedType { pg_type: "bytea".into(), kind: ValueKind::Spatial { postgis: false }, create_enum: None }
            }
        });
    }
    if col.data_type == "enum" {
        let labels = parse_labels(&col.column_type)?;
        let name = enum_type_name(pg_table, &col.name);
        return Ok(MappedType {
            pg_type: crate::core::sql::qualified(pg_schema, &name),
            kind: ValueKind::Enum(labels.clone()),
            create_enum: Some((name, labels)),
        });
    }
    let (pg_type, kind) = match col.data_type.as_str() {
        "tinyint" => ("smallint".to_string(), ValueKind::Int { bits: 8, unsigned: u }),
        "smallint" if u => ("integer".into(), ValueKind::Int { bits: 16, unsigned: true }),
        "smallint" => ("smallint".into(), ValueKind::Int { bits: 16, unsigned: false }),
        "mediumint" => ("integer".into(), ValueKind::Int { bits: 24, unsigned: u }),
        "int" | "integer" if u => ("bigint".into(), ValueKind::Int { bits: 32, unsigned: true }),
        "int" | "integer" => ("integer".into(), ValueKind::Int { bits: 32, unsigned: false }),
        "bigint" if u => ("numeric(20,0)".into(), ValueKind::Int { bits: 64, unsigned: true }),
        "bigint" => ("bigint".into(), ValueKind::Int { bits: 64, unsigned: false }),
        "decimal" | "numeric" => {
            let p = col.numeric_precision.unwrap_or(10);
            let s = col.numeric_scale.unwrap_or(0);
            (format!("numeric({p},{s})"), ValueKind::Decimal)
        }
        "float" => ("real".into(), ValueKind::Float),
        "double" | "real" => ("double precision".into(), ValueKind::Double),
        "bit" => {
            let n = col.numeric_precision.unwrap_or(1).clamp(1, 64) as u32;
            (format!("bit varying({n})"), ValueKind::Bit(n))
        }
        "char" => {
            let n = col.char_max_len.unwrap_or(1).max(1);
            (format!("character({n})"), ValueKind::Text(cs))
        }
        "varchar" => {
            let n = col.char_max_len.unwrap_or(1).max(1);
            (format!("character varying({n})"), ValueKind::Text(cs))
        }
        "tinytext" | "text" | "mediumtext" | "longtext" => ("text".into(), ValueKind::Text(cs)),
        "binary" => ("bytea".into(), ValueKind::FixedBinary(col.char_max_len.unwrap_or(1).clamp(1, 255) as u32)),
        "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => ("bytea".into(), ValueKind::Binary),
        "date" => ("date".into(), ValueKind::Date(zero)),
        "datetime" => (format!("timestamp({}) without time zone", frac(col)), ValueKind::DateTime(zero)),
        "timestamp" => (format!("timestamp({}) with time zone", frac(col)), ValueKind::Timestamp(zero)),
        "time" => (format!("time({}) without time zone", frac(col)), ValueKind::Time),
        "year" => ("smallint".into(), ValueKind::Year),
        "json" => ("jsonb".into(), ValueKind::Json),
        "vector" => match (&col.pgvector, vector_dimensions(col)) {
            (Some(schema), Some(n)) if n <= PGVECTOR_MAX_DIMENSIONS => (
                format!("{}({n})", crate::core::sql::qualified(schema, "vector")),
                ValueKind::Vector { pgvector: true },
            ),
            _ => ("real[]".into(), ValueKind::Vector { pgvector: false }),
        },
        "set" => ("text".into(), ValueKind::Set(parse_labels(&col.column_type)?)),
        // MariaDB's own types (10.5+, 10.7+, 10.10+)
        "uuid" => ("uuid".into(), ValueKind::Uuid),
        "inet6" => ("inet".into(), ValueKind::Inet { v4: false }),
        "inet4" => ("inet".into(), ValueKind::Inet { v4: true }),
        _ => return Err(unsupported(col)),
    };
    Ok(MappedType { pg_type, kind, create_enum: None })
}

#[cfg(any(test, feature = "pg_test"))]
pub(crate) fn col(name: &str, data_type: &str, column_type: &str) -> MySqlColumn {
    MySqlColumn {
        name: name.into(),
        data_type: data_type.into(),
        column_type: column_type.into(),
        nullable: true,
        char_max_len: None,
        numeric_precision: None,
        numeric_scale: None,
        datetime_precision: None,
        pg_override: None,
        zero_dates: ZeroDates::Discard,
        charset: None,
        postgis: None,
        pgvector: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(data_type: &str, column_type: &str) -> String {
        map_column(&col("c", data_type, column_type), "s", "t").unwrap().pg_type
    }

    #[test]
    fn spatial_types_are_postgis_geometry_or_bytea() {
        assert_eq!(pg("point", "point"), "bytea");
        let mut c = col("g", "multipolygon", "multipolygon");
        c.postgis = Some("public".into());
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "\"public\".\"geometry\"(MultiPolygon)");
        c.data_type = "geometry".into();
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "\"public\".\"geometry\"");
        assert_eq!(map_column(&c, "s", "t").unwrap().kind, ValueKind::Spatial { postgis: true });
    }

    #[test]
    fn vectors_are_pgvector_when_installed_else_real_arrays() {
        let mut c = col("v", "vector", "vector(3)");
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "real[]");
        assert_eq!(map_column(&c, "s", "t").unwrap().kind, ValueKind::Vector { pgvector: false });
        c.pgvector = Some("ext".into());
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "\"ext\".\"vector\"(3)");
        assert_eq!(map_column(&c, "s", "t").unwrap().kind, ValueKind::Vector { pgvector: true });
        // the dimension from the byte length where COLUMN_TYPE does not say it
        c.column_type = "vector".into();
        c.char_max_len = Some(4 * 768);
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "\"ext\".\"vector\"(768)");
        // beyond what pgvector's vector holds (MySQL allows 16383)
        c.column_type = "vector(16383)".into();
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "real[]");
        c.column_type = "VECTOR(16000)".into();
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "\"ext\".\"vector\"(16000)");
    }

    #[test]
    fn integers_are_widened_when_unsigned() {
        assert_eq!(pg("tinyint", "tinyint(3) unsigned"), "smallint");
        assert_eq!(pg("smallint", "smallint(5) unsigned"), "integer");
        assert_eq!(pg("smallint", "smallint(6)"), "smallint");
        assert_eq!(pg("mediumint", "mediumint(8) unsigned"), "integer");
        assert_eq!(pg("int", "int(11)"), "integer");
        assert_eq!(pg("int", "int(10) unsigned"), "bigint");
        assert_eq!(pg("bigint", "bigint(20)"), "bigint");
        assert_eq!(pg("bigint", "bigint(20) unsigned"), "numeric(20,0)");
    }

    #[test]
    fn strings_decimals_and_times() {
        let mut c = col("c", "varchar", "varchar(40)");
        c.char_max_len = Some(40);
        assert_eq!(map_column(&c, "s", "t").unwrap().pg_type, "character varying(40)");
        let mut d = col("d", "decimal", "decimal(65,30)");
        d.numeric_precision = Some(65);
        d.numeric_scale = Some(30);
        assert_eq!(map_column(&d, "s", "t").unwrap().pg_type, "numeric(65,30)");
        let mut t = col("t", "datetime", "datetime(6)");
        t.datetime_precision = Some(6);
        assert_eq!(map_column(&t, "s", "t").unwrap().pg_type, "timestamp(6) without time zone");
        assert_eq!(pg("timestamp", "timestamp"), "timestamp(0) with time zone");
        assert_eq!(pg("longblob", "longblob"), "bytea");
        assert_eq!(pg("json", "json"), "jsonb");
        assert_eq!(pg("vector", "vector(3)"), "real[]");
    }

    #[test]
    fn unsupported_names_the_column() {
        let e = map_column(&col("shape", "raster", "raster"), "s", "t").unwrap_err();
        assert!(e.to_string().contains("\"shape\""));
    }

    #[test]
    fn overrides() {
        let mut c = col("active", "tinyint", "tinyint(1)");
        c.pg_override = Some("boolean".into());
        let m = map_column(&c, "s", "t").unwrap();
        assert_eq!((m.pg_type.as_str(), m.kind), ("boolean", ValueKind::Bool));
        let mut v = col("name", "varchar", "varchar(10)");
        v.pg_override = Some("boolean".into());
        assert!(map_column(&v, "s", "t").is_err());
        v.pg_override = Some("text".into());
        assert_eq!(map_column(&v, "s", "t").unwrap().pg_type, "text");
    }

    #[test]
    fn mariadb_types_and_time_as_interval() {
        assert_eq!(map_column(&col("u", "uuid", "uuid"), "s", "t").unwrap().kind, ValueKind::Uuid);
        assert_eq!(pg("uuid", "uuid"), "uuid");
        assert_eq!(pg("inet6", "inet6"), "inet");
        assert_eq!(map_column(&col("a", "inet4", "inet4"), "s", "t").unwrap().kind, ValueKind::Inet { v4: true });
        let mut t = col("d", "time", "time(6)");
        for target in ["interval", "INTERVAL(6)", "interval (3)"] {
            t.pg_override = Some(target.into());
            assert_eq!(map_column(&t, "s", "t").unwrap().kind, ValueKind::Interval, "{target}");
        }
        t.pg_override = Some("text".into());
        assert_eq!(map_column(&t, "s", "t").unwrap().kind, ValueKind::Time);
        t.pg_override = Some("intervalx".into());
        assert_eq!(map_column(&t, "s", "t").unwrap().kind, ValueKind::Time);
    }

    #[test]
    fn enums_and_sets() {
        assert_eq!(parse_labels("enum('a','b''c','', 'd,e')").unwrap(), vec!["a", "b'c", "", "d,e"]);
        assert_eq!(parse_labels(r#"enum('It''s','b\\c','d"e')"#).unwrap(), vec!["It's", r"b\c", "d\"e"]);
        assert!(parse_labels("enum('a").is_err());
        let m = map_column(&col("Status", "enum", "enum('new','It''s')"), "shop", "Orders").unwrap();
        assert_eq!(m.pg_type, "\"shop\".\"Orders_Status\"");
        assert_eq!(m.create_enum, Some(("Orders_Status".to_string(), vec!["new".to_string(), "It's".to_string()])));
        assert_eq!(pg("set", "set('x','y')"), "text");
        let long = enum_type_name(&"t".repeat(60), "column");
        assert!(long.len() <= 63 && long != enum_type_name(&"t".repeat(60), "column2"));
        assert_eq!(long, enum_type_name(&"t".repeat(60), "column"));
    }
}
