"""The oracle: the MariaDB source. Compares a source table with its PostgreSQL copy value for
value, normalising only what the type table of docs/type-mapping.md says changes form (TIMESTAMP is
compared as a UTC instant; unsigned BIGINT arrives as numeric; bytes as bytes; FLOAT as the
exact float it holds; spatial values as EWKB, whether bytea or PostGIS geometry)."""
import datetime
import decimal
import ipaddress
import json
import struct
import uuid

SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
           "geometrycollection", "geomcollection"}


def _f32(v):
    """A float as the 32-bit float it stands for (MySQL FLOAT, PostgreSQL real)."""
    return None if v is None else struct.unpack("<f", struct.pack("<f", v))[0]


def ewkb(internal):
    """MySQL's internal geometry (4-byte little-endian SRID + WKB) as EWKB, written here
    independently of the extension's converter."""
    if internal is None:
        return None
    internal = bytes(internal)
    srid, wkb = struct.unpack("<I", internal[:4])[0], internal[4:]
    if srid == 0:
        return wkb
    fmt = "<I" if wkb[0] == 1 else ">I"
    gtype = struct.unpack(fmt, wkb[1:5])[0] | 0x20000000
    return wkb[:1] + struct.pack(fmt, gtype) + struct.pack(fmt, srid) + wkb[5:]


def _norm(v):
    if v is None:
        return None
    if isinstance(v, datetime.timedelta):  # MySQL TIME
        us = v.days * 86_400_000_000 + v.seconds * 1_000_000 + v.microseconds
        h, rest = divmod(us, 3_600_000_000)
        m, rest = divmod(rest, 60_000_000)
        s_, us = divmod(rest, 1_000_000)
        return f"{h:02d}:{m:02d}:{s_:02d}" + (f".{us:06d}" if us else "")
    if isinstance(v, (dict, list)):  # jsonb
        return json.dumps(v, sort_keys=True)
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (int, decimal.Decimal)):
        return str(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, datetime.time):
        return v.strftime("%H:%M:%S") + (f".{v.microsecond:06d}" if v.microsecond else "")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, float):
        return repr(v)
    return str(v)


def mysql_rows(my, schema, table, pg_types=None):
    with my.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s"
                    " AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (schema, table))
        kinds = [(c, t.lower()) for c, t in cur.fetchall()]
        q = lambda c: "`" + c.replace("`", "``") + "`"  # noqa: E731
        # FLOAT's own text has 6 digits: read the float it holds (times 1 keeps -0)
        select = ", ".join(f"{q(c)} * 1e0 AS {q(c)}" if t == "float" else q(c) for c, t in kinds)
        cur.execute(f"SELECT {select} FROM {q(schema)}.{q(table)}")
        cols = [d[0] for d in cur.description]
        pg_types = pg_types or [None] * len(cols)

        def conv(v, kind, t):
            if v is None:
                return None
            if t == JSONB_OID:  # MariaDB's JSON is text: compare it as the document jsonb holds
                return json.loads(v)
            if kind == "float":
                return _f32(v)
            if kind in SPATIAL:
                return ewkb(v)
            if kind in ("inet6", "inet4"):  # PostgreSQL's inet: the address, in Python's form
                return ipaddress.ip_address(v)
            if kind == "uuid":
                return uuid.UUID(v)
            return v
        rows = [tuple(_norm(conv(v, k, t)) for v, (_, k), t in zip(r, kinds, pg_types)) for r in cur.fetchall()]
    return cols, rows


BPCHAR_OID = 1042
VARBIT_OID = 1562
JSONB_OID = 3802


FLOAT4_OID = 700


def _pg_form(v, type_code, geometry_oids=()):
    """Differences of form the type table implies, brought to MySQL's form."""
    if v is None:
        return None
    if type_code == FLOAT4_OID:
        return _f32(v)
    if type_code in geometry_oids:  # PostGIS writes EWKB in hex
        return bytes.fromhex(v)
    if type_code == BPCHAR_OID:  # character(n) pads with spaces where MySQL's CHAR strips them
        return v.rstrip(" ")
    if type_code == VARBIT_OID:  # bit varying(n) as MySQL's bytes
        return int(v, 2).to_bytes((len(v) + 7) // 8, "big")
    return v


def _pq(name):
    return '"' + name.replace('"', '""') + '"'


def pg_rows(pg, schema, table, columns=None):
    """Rows of a PostgreSQL table, all columns in table order or `columns` in that order."""
    select = ", ".join(_pq(c) for c in columns) if columns else "*"
    cur = pg.execute(f"SELECT {select} FROM {_pq(schema)}.{_pq(table)}")
    cols = [d.name for d in cur.description]
    types = [d.type_code for d in cur.description]
    rows = cur.fetchall()
    geometry = {r[0] for r in pg.execute("SELECT oid::int FROM pg_type WHERE typname = 'geometry'").fetchall()}
    return cols, types, [tuple(_norm(_pg_form(v, t, geometry)) for v, t in zip(r, types)) for r in rows]


def _key(row):
    return tuple((v is None, v if v is None else (len(v), v)) for v in row)


def pg_identifier(name):
    """The name PostgreSQL keeps: the first 63 bytes, cut at a character boundary."""
    return name.encode()[:63].decode(errors="ignore")


def mysql_columns(my, schema, table):
    with my.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
                    " ORDER BY ORDINAL_POSITION", (schema, table))
        return [pg_identifier(r[0]) for r in cur.fetchall()]


def assert_same_table(my, pg, my_schema, pg_schema, table, any_column_order=False):
    """`any_column_order`: columns added by DDL replication (AFTER, FIRST) are at the end of
    the PostgreSQL table, which cannot reorder them; values are compared in MySQL's order."""
    order = None
    if any_column_order:
        order = mysql_columns(my, my_schema, table)
    pcols, ptypes, prows = pg_rows(pg, pg_schema, table, columns=order)
    mcols, mrows = mysql_rows(my, my_schema, table, ptypes if len(ptypes) == len(pcols) else None)
    mcols = [pg_identifier(c) for c in mcols]
    assert mcols == pcols, f"{table}: columns differ: MySQL {mcols} vs PostgreSQL {pcols}"
    mrows.sort(key=_key)
    prows.sort(key=_key)
    if mrows != prows:
        from collections import Counter
        cm, cp = Counter(mrows), Counter(prows)
        only_my = sorted((cm - cp).elements(), key=_key)[:5]
        only_pg = sorted((cp - cm).elements(), key=_key)[:5]
        # name the differing columns of rows that share their first value (the key, usually)
        by_key = {r[0]: r for r in only_pg}
        diffs = []
        for r in only_my:
            p = by_key.get(r[0])
            if p is not None:
                diffs += [f"{mcols[i]}: MySQL {str(a)[:80]!r} vs PostgreSQL {str(b)[:80]!r}"
                          for i, (a, b) in enumerate(zip(r, p)) if a != b]
        if diffs:
            raise AssertionError(f"{my_schema}.{table}: differing values: " + "; ".join(diffs[:10]))
        raise AssertionError(
            f"{my_schema}.{table}: {len(mrows)} rows in MySQL, {len(prows)} in PostgreSQL; "
            f"only in MySQL (first 5): {only_my}; only in PostgreSQL (first 5): {only_pg}")
    return len(mrows)


def assert_same_schema(my, pg, my_schema, pg_schema, tables, any_column_order=False):
    return {t: assert_same_table(my, pg, my_schema, pg_schema, t, any_column_order) for t in tables}


def pg_column_names(pg, schema, table):
    return [r[0] for r in pg.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
        " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (schema, pg_identifier(table))).fetchall()]


def assert_same_structure(my, pg, my_schema, pg_schema, table):
    """Same columns (any order), nullability, primary key, and the source's plain indexes
    (by the names the replica gives them: <table>_<index>), after DDL replication."""
    with my.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, IS_NULLABLE = 'YES' FROM information_schema.COLUMNS"
                    " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (my_schema, table))
        mcols = {pg_identifier(c): bool(n) for c, n in cur.fetchall()}
        cur.execute("SELECT INDEX_NAME, NON_UNIQUE = 0, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX),"
                    " MAX(SUB_PART IS NOT NULL), MAX(INDEX_TYPE) FROM information_schema.STATISTICS"
                    " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s GROUP BY INDEX_NAME, NON_UNIQUE", (my_schema, table))
        mindexes = {name: (bool(u), cols.split(",")) for name, u, cols, prefix, kind in cur.fetchall()
                    if not prefix and kind == "BTREE"}
    pt = pg_identifier(table)
    pcols = dict(pg.execute(
        "SELECT attname, NOT attnotnull FROM pg_attribute WHERE attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
        " AND attnum > 0 AND NOT attisdropped", (pg_schema, pt)).fetchall())
    assert mcols == pcols, f"{my_schema}.{table}: columns (name: nullable) differ: MySQL {mcols} vs PostgreSQL {pcols}"
    pindexes = {}
    for name, unique, primary, cols in pg.execute(
            "SELECT c.relname, i.indisunique, i.indisprimary, array_agg(a.attname ORDER BY k.ord) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass"
            " GROUP BY c.relname, i.indisunique, i.indisprimary", (pg_schema, pt)).fetchall():
        pindexes["PRIMARY" if primary else name] = (unique, list(cols))
    if "PRIMARY" in mindexes:
        assert pindexes.get("PRIMARY") == mindexes["PRIMARY"], \
            f"{my_schema}.{table}: primary key differs: MySQL {mindexes['PRIMARY']} vs PostgreSQL {pindexes.get('PRIMARY')}"
    for name, (unique, cols) in mindexes.items():
        if name == "PRIMARY":
            continue
        pname = pg_identifier(f"{table}_{name}") if len(f"{table}_{name}".encode()) <= 63 else None
        if pname is None or ("PRIMARY" in pindexes and pindexes["PRIMARY"][1] == cols and "PRIMARY" not in mindexes):
            continue
        assert pindexes.get(pname) == (unique, cols), \
            f"{my_schema}.{table}: index {name} differs: MySQL {(unique, cols)} vs PostgreSQL {pindexes.get(pname)}"
    extra = set(pindexes) - {"PRIMARY"} - {pg_identifier(f"{table}_{n}") for n in mindexes}
    assert not extra, f"{my_schema}.{table}: PostgreSQL has indexes the source does not: {extra}"
