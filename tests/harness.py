"""Private MariaDB and PostgreSQL servers for the end-to-end tests and the demo.

Each server runs as its own non-root user (mysql, postgres) from a scratch directory, on a
private port that does not clash with servers on 3306/5432, and is stopped by `stop()`
(the callers use try/finally and atexit, so a failing test stops them too).
PostgreSQL preloads pg_chameleon_rs (shared_preload_libraries).
"""
import atexit
import os
import shutil
import signal
import subprocess
import time

import psycopg
import pymysql

# the PostgreSQL the servers run: Debian's 15 unless the Makefile's PG=NN points elsewhere
# (`make e2e PG=17` passes that build's bindir, .cache/pg/17/bin)
PG_BIN = os.environ.get("CHAMELEON_PG_BIN", "/usr/lib/postgresql/15/bin")
REPL_USER = "chameleon"
REPL_PASSWORD = "chameleon-pw"
# the database the launcher watches (chameleon.database_name) in clusters started here
LAUNCHER_DB = "chameleon"


class CommandFailed(RuntimeError):
    """A helper command (initdb, mariadb-install-db, openssl, ...) failed; the message carries
    its output, so a CI log says why and not only the exit status."""


def _run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise CommandFailed(f"{' '.join(cmd)} exited with {p.returncode}; its output:\n{p.stdout[-4000:]}")
    return p


def _wait_port(check, what, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            check()
            return
        except Exception as e:  # server still starting
            last = e
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout}s: {last}")


def make_tls_certs(directory, hosts=("localhost", "127.0.0.1"), ca_name="chameleon test CA"):
    """A private CA and a server certificate it signs for `hosts` (DNS names and IP addresses),
    made with openssl in `directory`; returns {"ca", "cert", "key"} paths, readable by the
    mysql user. Another call with another directory gives an unrelated CA."""
    os.makedirs(directory, exist_ok=True)
    p = {k: os.path.join(directory, f) for k, f in
         [("ca", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"), ("key", "server.key"),
          ("csr", "server.csr"), ("ext", "server.ext")]}
    san = ",".join(("IP:" if h.replace(".", "").isdigit() or ":" in h else "DNS:") + h for h in hosts)
    with open(p["ext"], "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p["ca_key"], "-out", p["ca"],
          "-days", "3", "-subj", f"/CN={ca_name}", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", p["key"], "-out", p["csr"],
          "-subj", f"/CN={hosts[0]}"])
    _run(["openssl", "x509", "-req", "-in", p["csr"], "-CA", p["ca"], "-CAkey", p["ca_key"], "-CAcreateserial",
          "-out", p["cert"], "-days", "3", "-extfile", p["ext"]])
    os.chmod(directory, 0o755)
    for k in ("ca", "cert", "key"):
        shutil.chown(p[k], "mysql", "mysql")
        os.chmod(p[k], 0o600 if k == "key" else 0o644)
    return {k: p[k] for k in ("ca", "cert", "key")}


class MariaDB:
    def __init__(self, scratch, port, binlog=True, server_id=1, buffer_pool="256M", log_basename="mysql-bin",
                 extra_args=(), tls=None):
        """`tls`: make_tls_certs()'s paths: the server offers TLS with that certificate
        (default: no TLS)."""
        self.dir = os.path.join(scratch, f"mariadb-{port}")
        self.buffer_pool = buffer_pool
        self.port = port
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.binlog = binlog
        self.server_id = server_id
        self.log_basename = log_basename
        self.extra_args = list(extra_args)
        self.tls = tls
        self.proc = None

    def _kill_leftover(self):
        """A server left by an earlier run that was killed (its pid file is in our dir). The pid
        may since have gone to another process (pid_max is 32768 here), so only a mariadbd
        whose command line names our data directory is killed."""
        pidfile = os.path.join(self.dir, "mariadb.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            if "mariadbd" not in cmdline or f"--datadir={self.dir}/data" not in cmdline:
                return
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        except (OSError, ValueError):
            pass

    def _install(self):
        """A fresh data directory, and a private tmpdir: a server's internal temporary tables
        (information_schema queries, the bootstrap's) never meet another server's files in
        /tmp, nor files a killed server left there."""
        for d in ("data", "tmp"):
            path = os.path.join(self.dir, d)
            if os.path.exists(path):
                shutil.rmtree(path)
            os.makedirs(path)
            shutil.chown(path, "mysql", "mysql")
        _run(["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={self.dir}/data",
              f"--tmpdir={self.dir}/tmp", "--auth-root-authentication-method=normal", "--skip-test-db",
              "--skip-name-resolve"])

    def start(self):
        if os.path.exists(self.dir):
            self._kill_leftover()
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        shutil.chown(self.dir, "mysql", "mysql")
        try:
            self._install()
        except CommandFailed as e:
            # MariaDB 10.11.19's bootstrap failed once in CI, an information_schema query
            # into a temporary table; it is not what these tests test, so it gets one more try
            print(f"warning: retrying MariaDB's bootstrap after: {e}", flush=True)
            self._install()
        args = ["mariadbd", "--no-defaults", "--user=mysql", f"--datadir={self.dir}/data",
                f"--tmpdir={self.dir}/tmp",
                f"--port={self.port}", f"--socket={self.socket}", "--bind-address=127.0.0.1",
                f"--pid-file={self.dir}/mariadb.pid", f"--log-error={self.dir}/mariadb.err",
                "--skip-name-resolve", f"--server-id={self.server_id}", f"--innodb-buffer-pool-size={self.buffer_pool}",
                "--innodb-flush-log-at-trx-commit=2", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci", "--max-connections=200",
                "--max-allowed-packet=64M"]
        if self.binlog:
            args += [f"--log-bin={self.dir}/data/{self.log_basename}", "--binlog-format=ROW", "--binlog-row-image=FULL",
                     "--binlog-row-metadata=FULL", "--sync-binlog=0"]
        if self.tls:
            args += [f"--ssl-ca={self.tls['ca']}", f"--ssl-cert={self.tls['cert']}", f"--ssl-key={self.tls['key']}"]
        self.args = args + self.extra_args
        self._launch()
        with self.root() as c, c.cursor() as cur:
            cur.execute(f"CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}'")
            cur.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD ON *.* TO '{REPL_USER}'@'%'")
        return self

    def _launch(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        _wait_port(lambda: self.root().close(), f"MariaDB on port {self.port}")

    def restart(self, down_seconds=0.0):
        """Clean shutdown and start on the same data (the binlog moves to a new file)."""
        self.stop()
        time.sleep(down_seconds)
        self._launch()

    def root(self, db=None, **kw):
        if self.tls:
            # over the unix socket TLS adds nothing, and a server offering only old TLS
            # versions would refuse pymysql's attempt
            kw.setdefault("ssl_disabled", True)
        # TIMESTAMP values are compared as UTC instants
        return pymysql.connect(unix_socket=self.socket, user="root", database=db, autocommit=True,
                               charset="utf8mb4", init_command="SET time_zone = '+00:00'", **kw)

    def url(self, user=REPL_USER, password=REPL_PASSWORD):
        return f"mysql://{user}:{password}@127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


class Postgres:
    def __init__(self, scratch, port, shared_buffers="256MB"):
        self.dir = os.path.join(scratch, f"postgres-{port}")
        self.shared_buffers = shared_buffers
        self.data = os.path.join(self.dir, "data")
        self.port = port
        self.started = False

    def _as_postgres(self, *cmd):
        return _run(["runuser", "-u", "postgres", "--", *cmd])

    def start(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            # left by an earlier run that was killed
            subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", self.data,
                            "-m", "immediate", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                          "--encoding=UTF8", "--locale=C.UTF-8")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"""
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.dir}'
shared_preload_libraries = 'pg_chameleon_rs'
chameleon.database_name = '{LAUNCHER_DB}'
chameleon.launcher_naptime = 500
max_worker_processes = 32
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = {self.shared_buffers}
max_wal_size = 4GB
log_min_messages = log
""")
        self._as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "postgres.log"),
                          "-w", "-t", "60", "start")
        self.started = True
        return self

    def restart(self):
        self._as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "postgres.log"),
                          "-m", "fast", "-w", "-t", "60", "restart")

    def connect(self, db="postgres", autocommit=True, wait=60, **kw):
        """Connects, waiting up to `wait` seconds while the server starts or recovers from a
        crash (tests kill workers on purpose: PostgreSQL then restarts every backend)."""
        deadline = time.time() + wait
        while True:
            try:
                return psycopg.connect(host=self.dir, port=self.port, user="postgres", dbname=db,
                                       autocommit=autocommit, **kw)
            except psycopg.OperationalError as e:
                transient = any(m in str(e) for m in (
                    "not yet accepting connections", "starting up", "shutting down", "in recovery mode",
                    "No such file or directory", "Connection refused"))
                if not transient or time.time() > deadline:
                    raise
                time.sleep(0.3)

    def create_database(self, name):
        with self.connect() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
        with self.connect(name) as c:
            c.execute("CREATE EXTENSION pg_chameleon_rs")
        return name

    def log_tail(self, n=60):
        try:
            with open(os.path.join(self.dir, "postgres.log")) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.started:
            try:
                self._as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")
            except CommandFailed:
                self._as_postgres(f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "stop")
            self.started = False


class Servers:
    """Both servers under one scratch directory; stopped at exit whatever happens."""

    def __init__(self, scratch, mysql_port, pg_port, buffers_mb=256):
        """`buffers_mb`: InnoDB buffer pool and PostgreSQL shared_buffers, each."""
        self.scratch = scratch
        os.makedirs(scratch, exist_ok=True)
        os.chmod(scratch, 0o755)
        self.mariadb = MariaDB(scratch, mysql_port, buffer_pool=f"{buffers_mb}M")
        self.postgres = Postgres(scratch, pg_port, shared_buffers=f"{buffers_mb}MB")
        self.extra = []
        atexit.register(self.stop)
        # a run killed with SIGTERM (CI timeout, Ctrl-C in a wrapper) still stops its servers
        previous = signal.getsignal(signal.SIGTERM)

        def on_term(signum, frame):
            self.stop()
            if callable(previous):
                previous(signum, frame)
            raise SystemExit(128 + signum)
        signal.signal(signal.SIGTERM, on_term)

    def start(self):
        try:
            self.mariadb.start()
            self.postgres.start()
        except Exception:
            self.stop()
            raise
        return self

    def extra_mariadb(self, port, **kw):
        m = MariaDB(self.scratch, port, **kw)
        self.extra.append(m)
        return m.start()

    def stop(self):
        for s in [*self.extra, self.mariadb, self.postgres]:
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                print(f"warning: stopping {s}: {e}")
