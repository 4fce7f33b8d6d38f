"""End to end, TLS to the source (options ssl_mode and ssl_ca): a MariaDB offering TLS with a
certificate made here by openssl (a private CA, a server certificate for localhost and
127.0.0.1) and an account created REQUIRE SSL, which the server refuses over plain TCP: the
copy and the binlog stream replicate through it value for value; a certificate that does not
name the host, a CA that did not sign it, TLS disabled against that account and TLS required
of a server without it are refused with errors that say so (and never show the password)."""
import json
import os

import psycopg
import pytest

import oracle
from conftest import load_sql
from harness import make_tls_certs
from test_replication import ALL, init, wait_for

TLS_USER, TLS_PASSWORD = "tlsonly", "tls-only-pw-5d1"


@pytest.fixture(scope="module")
def tls(servers):
    """A MariaDB with TLS (on the session server's port + 2, also listening on 127.0.0.2, a
    name its certificate does not hold), with an account that requires TLS."""
    certs = make_tls_certs(os.path.join(servers.scratch, "tls"))
    m = servers.extra_mariadb(servers.mariadb.port + 2, server_id=3, tls=certs,
                              extra_args=["--bind-address=127.0.0.1,127.0.0.2"])
    with m.root() as c, c.cursor() as cur:
        cur.execute(f"CREATE USER '{TLS_USER}'@'%' IDENTIFIED BY '{TLS_PASSWORD}' REQUIRE SSL")
        cur.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD ON *.* TO '{TLS_USER}'@'%'")
        cur.execute("SHOW GLOBAL VARIABLES LIKE 'have_ssl'")
        assert cur.fetchone()[1] == "YES"
    try:
        yield m, certs
    finally:
        m.stop()


def tls_url(m, host="127.0.0.1"):
    return f"mysql://{TLS_USER}:{TLS_PASSWORD}@{host}:{m.port}"


def add(ctx, m, name="src", host="127.0.0.1", **options):
    pg_schema = ctx.pg_schema if name == "src" else name
    ctx.pg.execute("SELECT chameleon.add_source(%s, %s, %s, %s)",
                   (name, tls_url(m, host), json.dumps({ctx.my_schema: pg_schema}), json.dumps(options)))
    ctx.sources.append(name)


def ssl_accepts(m):
    with m.root() as c, c.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Ssl_accepts'")
        return int(cur.fetchone()[1])


def replicate_and_compare(ctx, m, **options):
    my = m.root()
    load_sql(my, ctx.my_schema, "shop.sql")
    add(ctx, m, **options)
    before = ssl_accepts(m)
    init(ctx)
    oracle.assert_same_schema(my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    ctx.one("SELECT chameleon.start_replica('src')")
    with my.cursor() as cur:
        cur.execute(f"USE `{ctx.my_schema}`")
        cur.execute("INSERT INTO customers (name, email) VALUES ('tls', 'tls@example.com')")
        cur.execute("UPDATE orders SET amount = amount + 1, note = 'over TLS'")
        cur.execute("DELETE FROM `Order Items` ORDER BY `Order ID`, line LIMIT 1")
    wait_for(ctx)
    oracle.assert_same_schema(my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
    assert ctx.one("SELECT count(*) FROM chameleon.errors") == 0
    # every connection (checks, snapshot, copy workers, binlog stream) was a TLS one: the
    # account is refused over plain TCP, and the server counted the handshakes
    assert ssl_accepts(m) - before >= 3
    my.close()


def test_require_ssl_account_replicates_with_preferred_by_default(ctx, tls):
    m, _ = tls
    replicate_and_compare(ctx, m)


def test_verify_identity_with_ca_as_pem_text_replicates(ctx, tls):
    m, certs = tls
    with open(certs["ca"]) as f:
        pem = f.read()
    replicate_and_compare(ctx, m, ssl_mode="verify_identity", ssl_ca=pem)
    assert "tls-only" not in ctx.one("SELECT mysql_url FROM chameleon.sources")


def refused(ctx, source):
    """init_replica's error (message and hint); the source stays ready with it as last_error."""
    with pytest.raises(psycopg.Error) as e:
        ctx.one("SELECT chameleon.init_replica(%s, wait => true)", (source,))
    # the worker's hint comes back as the error's HINT, not inside its message
    assert " HINT: " not in e.value.diag.message_primary, e.value.diag.message_primary
    assert e.value.diag.message_hint, "every refusal here says what to do"
    text = f"{e.value.diag.message_primary} HINT: {e.value.diag.message_hint}"
    status, last = ctx.sql("SELECT status, last_error FROM chameleon.sources WHERE name = %s", (source,))[0]
    assert status == "ready" and last, (status, last)
    assert TLS_PASSWORD not in text and TLS_PASSWORD not in last, text
    assert f'source "{source}"' in text, text
    return text


def test_tls_refusals_say_why(ctx, tls, servers):
    m, certs = tls
    # the certificate names localhost and 127.0.0.1, not 127.0.0.2
    add(ctx, m, "wrong_host", host="127.0.0.2", ssl_mode="verify_identity", ssl_ca=certs["ca"])
    text = refused(ctx, "wrong_host")
    assert "127.0.0.2" in text and "TLS failed" in text and "ssl_mode verify_identity" in text, text
    assert "NotValidForName" in text or "not valid for name" in text, text
    # a CA that did not sign the server's certificate (a file of the server)
    other = make_tls_certs(os.path.join(servers.scratch, "tls-other"), ca_name="another CA")
    add(ctx, m, "wrong_ca", ssl_mode="verify_ca", ssl_ca=other["ca"])
    text = refused(ctx, "wrong_ca")
    assert "TLS failed" in text and ("UnknownIssuer" in text or "unknown issuer" in text) and "ssl_ca must hold the CA" in text, text
    # plain TCP for an account created REQUIRE SSL
    add(ctx, m, "plain", ssl_mode="disabled")
    text = refused(ctx, "plain")
    assert "Access denied" in text and "REQUIRE SSL" in text and "ssl_mode" in text, text
    # TLS required of a server that does not offer it (the session's server)
    ctx.pg.execute("SELECT chameleon.add_source('no_tls', %s, '{\"x\": \"y\"}', '{\"ssl_mode\": \"required\"}')",
                   (servers.mariadb.url(),))
    ctx.sources.append("no_tls")
    text = refused(ctx, "no_tls")
    assert "does not offer TLS" in text and "ssl_mode required" in text, text


def test_verify_ca_ignores_the_host_name(ctx, tls):
    m, certs = tls
    load_sql(m.root(), ctx.my_schema, "shop.sql")
    add(ctx, m, host="127.0.0.2", ssl_mode="verify_ca", ssl_ca=certs["ca"])
    init(ctx)
    with m.root() as my:
        oracle.assert_same_schema(my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)


def test_preferred_falls_back_to_plain_tcp_when_the_server_speaks_only_old_tls(ctx, servers):
    """A server offering only TLS 1.1 (as old MySQL 5.x builds do; rustls speaks 1.2 and 1.3):
    `preferred` copies over plain TCP; `required` is refused, saying why."""
    certs = make_tls_certs(os.path.join(servers.scratch, "tls-old"))
    m = servers.extra_mariadb(servers.mariadb.port + 3, server_id=4, tls=certs,
                              extra_args=["--tls-version=TLSv1.1", "--ssl-cipher=DEFAULT:@SECLEVEL=0"])
    try:
        with m.root() as my:
            load_sql(my, ctx.my_schema, "shop.sql")
            ctx.add_source(url=m.url())
            init(ctx)
            oracle.assert_same_schema(my, ctx.pg, ctx.my_schema, ctx.pg_schema, ALL)
        ctx.pg.execute("SELECT chameleon.add_source('strict', %s, %s, '{\"ssl_mode\": \"required\"}')",
                       (m.url(), json.dumps({ctx.my_schema: "strict"})))
        ctx.sources.append("strict")
        with pytest.raises(psycopg.Error) as e:
            ctx.one("SELECT chameleon.init_replica('strict', wait => true)")
        assert " HINT: " not in e.value.diag.message_primary, e.value.diag.message_primary
        text = f"{e.value.diag.message_primary} HINT: {e.value.diag.message_hint}"
        assert "TLS versions or ciphers" in e.value.diag.message_hint, text
        assert "TLS failed" in text and "ssl_mode required" in text and "TLS versions or ciphers" in text, text
    finally:
        m.stop()
