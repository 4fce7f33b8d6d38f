"""The oracle: the MariaDB source. Compares a source table with its PostgreSQL copy value for
value, normalising only what the type table of design.md says changes form (TIMESTAMP is
compared as a UTC instant; unsigned BIGINT arrives as numeric; bytes as bytes)."""
import datetime
import decimal
import json


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
        cur.execute(f"SELECT * FROM `{schema}`.`{table.replace('`', '``')}`")
        cols = [d[0] for d in cur.description]
        pg_types = pg_types or [None] * len(cols)
        # MariaDB's JSON is text: compare it as the document jsonb holds
        rows = [tuple(_norm(json.loads(v) if t == JSONB_OID and v is not None else v) for v, t in zip(r, pg_types))
                for r in cur.fetchall()]
    return cols, rows


BPCHAR_OID = 1042
VARBIT_OID = 1562
JSONB_OID = 3802


def _pg_form(v, type_code):
    """Differences of form the type table implies, brought to MySQL's form."""
    if v is None:
        return None
    if type_code == BPCHAR_OID:  # character(n) pads with spaces where MySQL's CHAR strips them
        return v.rstrip(" ")
    if type_code == VARBIT_OID:  # bit varying(n) as MySQL's bytes
        return int(v, 2).to_bytes((len(v) + 7) // 8, "big")
    return v


def pg_rows(pg, schema, table):
    q = '"' + schema.replace('"', '""') + '"."' + table.replace('"', '""') + '"'
    cur = pg.execute(f"SELECT * FROM {q}")
    cols = [d.name for d in cur.description]
    types = [d.type_code for d in cur.description]
    return cols, types, [tuple(_norm(_pg_form(v, t)) for v, t in zip(r, types)) for r in cur.fetchall()]


def _key(row):
    return tuple((v is None, v if v is None else (len(v), v)) for v in row)


def assert_same_table(my, pg, my_schema, pg_schema, table):
    pcols, ptypes, prows = pg_rows(pg, pg_schema, table)
    mcols, mrows = mysql_rows(my, my_schema, table, ptypes if len(ptypes) == len(pcols) else None)
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


def assert_same_schema(my, pg, my_schema, pg_schema, tables):
    return {t: assert_same_table(my, pg, my_schema, pg_schema, t) for t in tables}
