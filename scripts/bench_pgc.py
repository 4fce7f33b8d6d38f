"""pg_chameleon 2.0.21 (the Python tool) run against the benchmark's private servers, to
measure it next to pg_chameleon_rs in the same run (scripts/bench.py).

- installed from PyPI into a virtualenv (.cache/pgc-venv, built with the system python3 so a
  non-root user can run it), idempotently; run as the system user `pgcbench` (it refuses root)
  through `runuser`;
- configured in ~pgcbench/.pg_chameleon/configuration/bench.yml: the source is the harness
  MariaDB (its replication user), the destination a database of its own (`pgcbench`, owned
  by the role `pgcbench`) in the same PostgreSQL cluster as ours: pg_chameleon keeps its
  state in a schema `sch_chameleon` too, so it must not share our database;
- the knobs that exist in both tools set alike (replica_batch_size, sleep_loop,
  copy_max_memory, lock_timeout); copy_mode 'direct' (no temporary files);
- "caught up" (see `caught_up`): the source's binlog holds no row event after the position
  pg_chameleon's reader will resume from (its open batch in sch_chameleon.t_replica_batch),
  and every older batch is replayed;
- ProcSampler / pg_server_cpu / wal_lsn: CPU seconds and peak memory of processes from /proc,
  and WAL bytes (cluster-wide: phases of the two tools must not overlap).
"""
import os
import pwd
import shutil
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PGC_VERSION = "2.0.21"
# pg_chameleon 2.0.21 declares mysql-replication>=1.0.7 (it needs the 1.0 API, which names row
# columns only with binlog_row_metadata=FULL); 1.0.17 is the version this was checked with.
PGC_REQUIREMENTS = [f"pg_chameleon=={PGC_VERSION}", "mysql-replication==1.0.17"]
VENV = os.environ.get("BENCH_PGC_VENV", os.path.join(ROOT, ".cache", "pgc-venv"))
USER = "pgcbench"
HOME = f"/var/lib/{USER}"
CONFIG = "bench"
SOURCE = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROW_EVENTS = ("Write_rows", "Update_rows", "Delete_rows")


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def ensure_user():
    """The system user pg_chameleon runs as (it refuses root)."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        _run(["useradd", "--system", "--user-group", "--create-home", "--home-dir", HOME,
              "--shell", "/usr/sbin/nologin", USER])
    os.makedirs(HOME, exist_ok=True)
    pw = pwd.getpwnam(USER)
    os.chown(HOME, pw.pw_uid, pw.pw_gid)
    return pw


def ensure_installed():
    """pg_chameleon in its own virtualenv, readable and runnable by USER. The system python3
    (not a pyenv one under /root, which USER cannot reach)."""
    chameleon = os.path.join(VENV, "bin", "chameleon")
    pip = os.path.join(VENV, "bin", "pip")
    want = {r.split("==")[0].lower().replace("_", "-"): r.split("==")[1] for r in PGC_REQUIREMENTS}
    if os.path.exists(pip):
        have = {}
        for line in subprocess.run([pip, "freeze"], capture_output=True, text=True).stdout.splitlines():
            if "==" in line:
                name, version = line.split("==", 1)
                have[name.lower().replace("_", "-")] = version
        if all(have.get(n) == v for n, v in want.items()) and os.path.exists(chameleon):
            return chameleon
    else:
        os.makedirs(os.path.dirname(VENV), exist_ok=True)
        _run(["/usr/bin/python3", "-m", "venv", VENV])
    print(f"==> installing {' '.join(PGC_REQUIREMENTS)} into {VENV}")
    _run([pip, "install", "-q", *PGC_REQUIREMENTS])
    # every directory on the way must be traversable by USER
    path = VENV
    while path not in ("/", ""):
        st = os.stat(path)
        if not st.st_mode & 0o001:
            os.chmod(path, st.st_mode | 0o005)
        path = os.path.dirname(path)
    return chameleon


def _yaml_str(v):
    return "'" + str(v).replace("'", "''") + "'"


class PgChameleon:
    """pg_chameleon replicating MariaDB schema `my_schema` into `pg_schema` of database `db`."""

    def __init__(self, mariadb, postgres, my_schema, pg_schema=None,
                 db="pgcbench", replica_batch_size=10000, replay_max_rows=10000, sleep_loop=1,
                 copy_max_memory="64M", my_server_id=101):
        self.mariadb = mariadb
        self.postgres = postgres
        self.mysql_user = USER
        self.mysql_password = "pgcbench-pw"
        self.my_schema = my_schema
        self.pg_schema = pg_schema or my_schema
        self.db = db
        self.knobs = dict(replica_batch_size=replica_batch_size, replay_max_rows=replay_max_rows,
                          sleep_loop=sleep_loop, copy_max_memory=copy_max_memory, my_server_id=my_server_id)
        self.chameleon = None
        self.pw = None
        self.running = False

    # -- setup ---------------------------------------------------------------------------
    def setup(self):
        """User, virtualenv, PostgreSQL role and database, configuration, replica schema and
        source. Idempotent; the destination database is created afresh."""
        self.pw = ensure_user()
        self.chameleon = ensure_installed()
        self.stop_replica()  # one left running by an interrupted run
        # its own MySQL user, with what its documentation asks: the copy takes FLUSH TABLES
        # t WITH READ LOCK per table (LOCK TABLES and RELOAD), the reader replication rights
        with self.mariadb.root() as m, m.cursor() as cur:
            cur.execute(f"CREATE USER IF NOT EXISTS '{self.mysql_user}'@'%' IDENTIFIED BY '{self.mysql_password}'")
            cur.execute(f"GRANT SELECT, LOCK TABLES, RELOAD, REPLICATION CLIENT, REPLICATION SLAVE ON *.* "
                        f"TO '{self.mysql_user}'@'%'")
        self._kill_leftovers()
        with self.postgres.connect() as c:
            if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (USER,)).fetchone():
                c.execute(f'CREATE ROLE "{USER}" LOGIN PASSWORD \'pgcbench\'')
            c.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{self.db}" OWNER "{USER}"')
        self.write_config()
        for d in ("pid", "logs"):  # stale pid files of an earlier run would block the daemons
            path = os.path.join(HOME, ".pg_chameleon", d)
            for f in os.listdir(path) if os.path.isdir(path) else []:
                os.remove(os.path.join(path, f))
        self.run("create_replica_schema")
        self.run("add_source", "--source", SOURCE)
        return self

    def _kill_leftovers(self):
        import signal
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def config_path(self):
        return os.path.join(HOME, ".pg_chameleon", "configuration", f"{CONFIG}.yml")

    def write_config(self):
        k = self.knobs
        out_dir = os.path.join(HOME, "out")
        text = f"""---
# written by scripts/bench_pgc.py for the benchmark
pid_dir: '~/.pg_chameleon/pid/'
log_dir: '~/.pg_chameleon/logs/'
log_dest: file
log_level: info
log_days_keep: 10
rollbar_key: ''
rollbar_env: ''
type_override: {{}}
pg_conn:
  host: "127.0.0.1"
  port: "{self.postgres.port}"
  user: "{USER}"
  password: "pgcbench"
  database: "{self.db}"
  charset: "utf8"
sources:
  {SOURCE}:
    db_conn:
      host: "127.0.0.1"
      port: "{self.mariadb.port}"
      user: {_yaml_str(self.mysql_user)}
      password: {_yaml_str(self.mysql_password)}
      charset: 'utf8mb4'
      connect_timeout: 10
    schema_mappings:
      {self.my_schema}: {self.pg_schema}
    limit_tables:
    skip_tables:
    grant_select_to:
    lock_timeout: "120s"
    my_server_id: {k['my_server_id']}
    replica_batch_size: {k['replica_batch_size']}
    replay_max_rows: {k['replay_max_rows']}
    batch_retention: '1 day'
    copy_max_memory: "{k['copy_max_memory']}"
    copy_mode: 'direct'
    out_dir: {out_dir}
    sleep_loop: {k['sleep_loop']}
    on_error_replay: exit
    on_error_read: exit
    auto_maintenance: "disabled"
    gtid_enable: false
    type: mysql
    skip_events:
      insert:
      delete:
      update:
    keep_existing_schema: No
    net_read_timeout: 600
fillfactor: {{}}
"""
        for d in ("configuration", "logs", "pid"):
            os.makedirs(os.path.join(HOME, ".pg_chameleon", d), exist_ok=True)
        os.makedirs(out_dir, exist_ok=True)
        with open(self.config_path(), "w") as f:
            f.write(text)
        for dirpath, dirnames, filenames in os.walk(HOME):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in filenames)]:
                os.chown(name, self.pw.pw_uid, self.pw.pw_gid)

    # -- commands ------------------------------------------------------------------------
    def run(self, command, *args, check=True, timeout=3600):
        cmd = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", USER, "--", self.chameleon, command, "--config", CONFIG, *args]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, cwd=HOME, env={"HOME": HOME, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        # pg_chameleon exits 0 after many errors (it prints them): look at the text too
        failed = p.returncode != 0 or any(m in p.stdout for m in ("Traceback", "FATAL", "ERROR -"))
        if check and failed:
            raise RuntimeError(f"chameleon {command} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{self.log_tail()}")
        return p.stdout

    def log_tail(self, n=40):
        logs = os.path.join(HOME, ".pg_chameleon", "logs")
        out = []
        for f in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            with open(os.path.join(logs, f), errors="replace") as fh:
                lines = fh.readlines()[-n:]
            out.append(f"--- {f}\n" + "".join(lines))
        return "\n".join(out)

    def connect(self):
        return self.postgres.connect(self.db)

    def status(self):
        with self.connect() as c:
            row = c.execute("SELECT enm_status::text FROM sch_chameleon.t_sources WHERE t_source = %s",
                            (SOURCE,)).fetchone()
        return row[0] if row else None

    def init_replica(self):
        """The initial copy, in the foreground (--debug: no daemon, logs on stdout); returns its
        wall-clock seconds (the command's whole run, as a user sees it)."""
        t0 = time.time()
        out = self.run("init_replica", "--source", SOURCE, "--debug")
        elapsed = time.time() - t0
        status = self.status()
        if status != "initialised":
            raise RuntimeError(f"pg_chameleon init_replica ended with status {status!r}:\n{out[-3000:]}")
        return elapsed

    def start_replica(self):
        """Starts the replica daemon (read and replay processes) and waits until it runs."""
        self.run("start_replica", "--source", SOURCE)
        self.running = True
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.status() == "running" and len(self.pids()) >= 3:
                return
            time.sleep(0.1)
        raise RuntimeError(f"pg_chameleon did not start: status {self.status()}\n{self.log_tail()}")

    def stop_replica(self):
        if self.chameleon is None or not os.path.exists(self.config_path()):
            return
        self.run("stop_replica", "--source", SOURCE, check=False, timeout=120)
        self.running = False
        deadline = time.time() + 30
        while self.pids() and time.time() < deadline:
            time.sleep(0.1)

    def pids(self):
        """Processes of USER: the daemon and its read and replay processes."""
        uid = self.pw.pw_uid if self.pw else pwd.getpwnam(USER).pw_uid
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.stat(f"/proc/{d}").st_uid == uid:
                        out.append(int(d))
                except OSError:
                    pass
        return out

    def backend_pids(self):
        """PostgreSQL backends serving pg_chameleon (its replay runs in PL/pgSQL there)."""
        return pids_by_cmdline(postmaster_pid(self.postgres), f"postgres: {USER} {self.db} ")

    # -- caught up -----------------------------------------------------------------------
    def caught_up(self, my):
        """True when pg_chameleon has applied every row event the source's binlog holds.

        The reader resumes from the position of the open batch (the latest one neither
        processed nor replayed, sch_chameleon.t_replica_batch); a read cycle that stored rows
        adds the next open batch at its end position only after storing them. So: (1) the
        binlog after the open batch's position holds no row event (the reader has stored
        everything; the transaction's own Xid/Gtid events may follow), and (2) every other batch
        of the source is replayed (processed batches are replayed in order by
        fn_replay_mysql; a batch just closed but not yet flagged processed counts as pending).
        """
        with self.connect() as c:
            row = c.execute(
                """SELECT b.i_id_batch, b.t_binlog_name, b.i_binlog_position,
                          (SELECT count(*) FROM sch_chameleon.t_replica_batch o
                            WHERE o.i_id_source = b.i_id_source AND NOT o.b_replayed AND o.i_id_batch <> b.i_id_batch)
                     FROM sch_chameleon.t_replica_batch b JOIN sch_chameleon.t_sources s USING (i_id_source)
                    WHERE s.t_source = %s AND NOT b.b_processed AND NOT b.b_replayed
                    ORDER BY b.ts_created DESC, b.i_id_batch DESC LIMIT 1""", (SOURCE,)).fetchone()
        if row is None:
            return False
        _, log_file, log_pos, pending = row
        if pending:
            return False
        return not row_events_after(my, log_file, log_pos)

    def wait_caught_up(self, my, timeout=3600, poll=0.1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.caught_up(my):
                return time.time()
            if self.running and not self.pids():
                raise RuntimeError(f"pg_chameleon's replica daemon died:\n{self.log_tail()}")
            time.sleep(poll)
        raise TimeoutError(f"pg_chameleon not caught up after {timeout}s\n{self.log_tail()}")

    def replayed_events(self, since=None):
        """Row events replayed (sum of i_replayed) in batches created since `since` (epoch s)."""
        with self.connect() as c:
            return int(c.execute(
                """SELECT coalesce(sum(i_replayed), 0) FROM sch_chameleon.t_replica_batch
                    WHERE ts_created >= coalesce(to_timestamp(%s)::timestamp, '-infinity')""",
                (since,)).fetchone()[0])


def row_events_after(my, log_file, log_pos, limit=2000):
    """Whether the source's binlog holds row events at or after (log_file, log_pos)."""
    with my.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        files = [r[0] for r in cur.fetchall()]
        if log_file not in files:
            return True
        for f in files[files.index(log_file):]:
            start = log_pos if f == log_file else 4
            cur.execute(f"SHOW BINLOG EVENTS IN %s FROM {int(start)} LIMIT {limit}", (f,))
            events = cur.fetchall()
            if any(str(e[2]).startswith(ROW_EVENTS) for e in events):
                return True
            if len(events) >= limit:  # more to scan: say not yet, the next poll looks again
                return True
    return False


# -- processes, CPU, memory, WAL ---------------------------------------------------------------
def proc_cpu(pid):
    """(own CPU seconds, CPU seconds of its reaped children) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, (int(fields[13]) + int(fields[14])) / CLK_TCK


def proc_mem_kb(pid):
    """(VmHWM, RssAnon) in kB."""
    hwm = anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("RssAnon:"):
                anon = int(line.split()[1])
    return hwm, anon


def postmaster_pid(postgres):
    with open(os.path.join(postgres.data, "postmaster.pid")) as f:
        return int(f.readline())


def _children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    data = f.read()
                if int(data[data.rindex(")") + 2:].split()[1]) == ppid:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def pids_by_cmdline(ppid, prefix):
    """Children of ppid whose process title starts with prefix."""
    out = []
    for pid in _children(ppid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith(prefix):
                out.append(pid)
        except OSError:
            pass
    return out


def pg_server_cpu(postgres):
    """CPU seconds used so far by the PostgreSQL server: the postmaster, its live children and
    the children it has reaped (backends and workers that ended). Differences of two calls
    give a phase's server CPU, whoever connected."""
    pm = postmaster_pid(postgres)
    own, reaped = proc_cpu(pm)
    total = own + reaped
    for pid in _children(pm):
        try:
            total += sum(proc_cpu(pid))
        except OSError:
            pass
    return total


def process_cpu(pid):
    try:
        return sum(proc_cpu(pid))
    except OSError:
        return 0.0


def durable(postgres):
    """Turns PostgreSQL's fsync, synchronous_commit and full_page_writes back on (the harness
    turns them off for speed; production keeps them on)."""
    with postgres.connect() as c:
        for setting in ("fsync = on", "synchronous_commit = on", "full_page_writes = on"):
            c.execute(f"ALTER SYSTEM SET {setting}")
        c.execute("SELECT pg_reload_conf()")


def wal_lsn(pg):
    return pg.execute("SELECT pg_current_wal_lsn()").fetchone()[0]


def wal_bytes(pg, since):
    return int(pg.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (since,)).fetchone()[0])


class ProcSampler:
    """Samples every `interval` s the processes `pids()` returns: CPU seconds used during the
    sampling (processes already there at start count from then; later ones from their start;
    a process that ends loses at most its last interval), and the peak VmHWM and RssAnon of a
    single process and the peak of their sum."""

    def __init__(self, pids, interval=0.1):
        self.pids_fn = pids
        self.interval = interval
        self.first = {}
        self.last = {}
        self.hwm = {}
        self.anon_peak = 0
        self.anon_sum_peak = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self, initial=False):
        anon_sum = 0
        for pid in self.pids_fn():
            try:
                cpu = sum(proc_cpu(pid))
                hwm, anon = proc_mem_kb(pid)
            except (OSError, ValueError):
                continue
            if pid not in self.first:
                self.first[pid] = cpu if initial else 0.0
            self.last[pid] = cpu
            self.hwm[pid] = max(self.hwm.get(pid, 0), hwm)
            self.anon_peak = max(self.anon_peak, anon)
            anon_sum += anon
        self.anon_sum_peak = max(self.anon_sum_peak, anon_sum)

    def _loop(self):
        while not self.stop_event.wait(self.interval):
            self._sample()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self._sample(initial=True)
        self.thread.start()
        return self

    def stop(self):
        if not self.stop_event.is_set():
            self.stop_event.set()
            self.thread.join()
            self._sample()
        return self

    @property
    def cpu_s(self):
        return sum(self.last[p] - self.first[p] for p in self.last)

    @property
    def processes(self):
        return len(self.last)

    @property
    def peak_hwm_mb(self):
        return max(self.hwm.values(), default=0) / 1024

    @property
    def sum_hwm_mb(self):
        return sum(self.hwm.values()) / 1024

    @property
    def peak_anon_mb(self):
        return self.anon_peak / 1024

    @property
    def sum_anon_mb(self):
        return self.anon_sum_peak / 1024

    def summary(self):
        return (f"{self.cpu_s:.1f} CPU s in {self.processes} processes; peak RSS {self.peak_hwm_mb:.0f} MB "
                f"(private {self.peak_anon_mb:.0f} MB; all together {self.sum_anon_mb:.0f} MB private)")
