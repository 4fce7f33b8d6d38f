"""The oracle: the MariaDB source. Compares a source table with its PostgreSQL copy value for
value, normalising only what the type table of design.md says changes form (TIMESTAMP is
compared as a UTC instant; unsigned BIGINT arrives as numeric; bytes as bytes)."""
import datetime
import decimal


def _norm(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (int, decimal.Decimal)):
        return str(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, float):
        return repr(v)
    return str(v)


def mysql_rows(my, schema, table):
    with my.cursor() as cur:
        cur.execute(f"SELECT * FROM `{schema}`.`{table.replace('`', '``')}`")
        cols = [d[0] for d in cur.description]
        rows = [tuple(_norm(v) for v in r) for r in cur.fetchall()]
    return cols, rows


BPCHAR_OID = 1042


def pg_rows(pg, schema, table):
    q = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
    cur = pg.execute(f"SELECT * FROM {q}")
    cols = [d.name for d in cur.description]
    # character(n) pads with spaces on output where MySQL's CHAR strips them: the one
    # difference of form the type table implies
    padded = [d.type_code == BPCHAR_OID for d in cur.description]
    return cols, [tuple(_norm(v.rstrip(" ") if p and v is not None else v) for v, p in zip(r, padded))
                  for r in cur.fetchall()]


def _key(row):
    return tuple((v is None, v if v is None else (len(v), v)) for v in row)


def assert_same_table(my, pg, my_schema, pg_schema, table):
    mcols, mrows = mysql_rows(my, my_schema, table)
    pcols, prows = pg_rows(pg, pg_schema, table)
    assert mcols == pcols, f"{table}: columns differ: MySQL {mcols} vs PostgreSQL {pcols}"
    mrows.sort(key=_key)
    prows.sort(key=_key)
    if mrows != prows:
        from collections import Counter
        cm, cp = Counter(mrows), Counter(prows)
        only_my = sorted((cm - cp).elements(), key=_key)[:5]
        only_pg = sorted((cp - cm).elements(), key=_key)[:5]
        raise AssertionError(
            f"{my_schema}.{table}: {len(mrows)} rows in MySQL, {len(prows)} in PostgreSQL; "
            f"only in MySQL (first 5): {only_my}; only in PostgreSQL (first 5): {only_pg}")
    return len(mrows)


def assert_same_schema(my, pg, my_schema, pg_schema, tables):
    return {t: assert_same_table(my, pg, my_schema, pg_schema, t) for t in tables}
