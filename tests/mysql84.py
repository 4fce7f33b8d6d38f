"""A MySQL 8.4 server for the end-to-end tests, where no MySQL can be installed: it speaks MySQL's
protocol as 8.4 does, answers what MySQL answers differently from MariaDB itself, forwards every
other command to a real MariaDB (which holds the tables, so discovery, snapshot and copy queries
are answered by a real server), and serves a real MySQL binlog file to COM_BINLOG_DUMP_GTID and
COM_BINLOG_DUMP as MySQL's Binlog_sender does (sql/rpl_binlog_sender.cc).

What it does as MySQL 8.4 does:
- greets as 8.4.3 with `caching_sha2_password` and authenticates the client itself: the fast
  path (SHA-256 scramble, "fast auth success" 0x01 0x03) for an account in its cache, the full
  path (0x01 0x04) otherwise: the cleartext password over TLS, or over a plain connection the
  RSA public key on request (0x02) and the password XOR the scramble encrypted with RSA-OAEP;
  a wrong password is refused with error 1045 as MySQL words it; TLS with a given certificate;
- `SHOW MASTER STATUS` is gone (a syntax error, as in 8.4); `SHOW BINARY LOG STATUS` gives
  File, Position, Binlog_Do_DB, Binlog_Ignore_DB, Executed_Gtid_Set; `SHOW BINARY LOGS` gives
  Log_name, File_size, Encrypted; `SHOW [GLOBAL] VARIABLES LIKE` and `SELECT @@var` give MySQL's
  settings (gtid_mode ON, server_uuid of the file, gtid_executed, ...); MariaDB-only variables
  and functions are errors (1193, 1305);
- the binlog: a fake ROTATE (timestamp 0, log_pos 0, LOG_EVENT_ARTIFICIAL_F; with a checksum only
  when the replica declared @master_binlog_checksum CRC32: the mysql crate's 'ALL' is not a value
  MySQL knows, so event_checksum_on() is false until the format description), the format
  description (BINLOG_IN_USE flag cleared; log_pos and created zeroed when the start skips part
  of the file), then the file's events: from the requested offset, or by GTID skipping every
  transaction of the replica's set with a heartbeat at the end of each skipped run, as MySQL
  does; then heartbeats every @master_heartbeat_period while it waits for more. A set that lacks
  transactions of the file's PREVIOUS_GTIDS (purged) is refused with error 1236.

A file written with gtid_mode OFF (ANONYMOUS_GTID events) is served the same way, by file and
offset, with `gtid_mode=OFF`. `column_types` makes the server describe columns as MySQL would
where MariaDB has no such type: information_schema.COLUMNS rows (of prepared statements, as our
reader reads them) whose COLUMN_TYPE is one of its keys get the DATA_TYPE and COLUMN_TYPE it
gives (MySQL 9's VECTOR(n) is a VARBINARY(4n) in the MariaDB behind, whose bytes are VECTOR's
own: n little-endian float32s).

The file's transactions become visible as the test says (`committed`): the server is "live",
its binary log position, executed GTID set and binlog size move with them, and a dump thread
waiting at the end sends the new ones. A trailing ROTATE of the file (to a next file the test
does not have) is never served. Everything the server saw is recorded for the tests: queries,
authentications, dump requests (command, GTID set) and the GTIDs each dump sent.

The protocol is implemented from MySQL's documentation and source, stdlib only plus
`cryptography` for RSA.
"""
import errno
import hashlib
import os
import re
import select
import socket
import ssl
import struct
import threading
import time
import zlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SERVER_VERSION = "8.4.3"

# capability flags
LONG_PASSWORD, FOUND_ROWS, LONG_FLAG, CONNECT_WITH_DB = 1, 2, 4, 8
COMPRESS, PROTOCOL_41, SSL_FLAG, TRANSACTIONS = 0x20, 0x200, 0x800, 0x2000
SECURE_CONNECTION, MULTI_STATEMENTS, MULTI_RESULTS, PS_MULTI_RESULTS = 0x8000, 1 << 16, 1 << 17, 1 << 18
PLUGIN_AUTH, CONNECT_ATTRS, PLUGIN_AUTH_LENENC = 1 << 19, 1 << 20, 1 << 21
SESSION_TRACK, DEPRECATE_EOF, ZSTD, QUERY_ATTRIBUTES = 1 << 23, 1 << 24, 1 << 26, 1 << 27
# what MySQL 8.4 offers (0xdfffffff) less what the MariaDB behind cannot give the same way
SERVER_CAPS = 0xDFFFFFFF & ~(COMPRESS | ZSTD | QUERY_ATTRIBUTES | SSL_FLAG | (1 << 25) | (1 << 28) | (1 << 29))
# what the MariaDB login keeps of the client's capabilities
NOT_FORWARDED = SSL_FLAG | COMPRESS | CONNECT_ATTRS | QUERY_ATTRIBUTES | ZSTD | PLUGIN_AUTH_LENENC | SESSION_TRACK \
    | DEPRECATE_EOF

MORE_RESULTS = 0x0008
UTF8MB4_0900_AI_CI = 255
UTF8MB4_GENERAL_CI = 45

# binlog event types and offsets
ROTATE_EVENT, FORMAT_DESCRIPTION_EVENT, HEARTBEAT_EVENT = 4, 15, 27
GTID_EVENT, ANONYMOUS_GTID_EVENT, PREVIOUS_GTIDS_EVENT, GTID_TAGGED_EVENT = 33, 34, 35, 42
LOG_EVENT_ARTIFICIAL_F, LOG_EVENT_BINLOG_IN_USE_F = 0x20, 0x1
HEADER_LEN = 19
# binary protocol values: fixed-width numbers by column type (TINY, SHORT, YEAR, LONG, INT24,
# FLOAT, LONGLONG, DOUBLE), and dates and times (DATE, DATETIME, TIMESTAMP, TIME: a length byte,
# then that many bytes); every other type is a length-encoded string
BINARY_FIXED_WIDTH = {0x01: 1, 0x02: 2, 0x0D: 2, 0x03: 4, 0x09: 4, 0x04: 4, 0x08: 8, 0x05: 8}
BINARY_DATES = {0x07, 0x0A, 0x0B, 0x0C}

# MariaDB's, not MySQL's: asking for them is an error on MySQL 8.4
MARIADB_ONLY_VARIABLES = {"gtid_binlog_pos", "gtid_current_pos", "gtid_slave_pos", "gtid_domain_id",
                          "gtid_binlog_state", "log_bin_compress", "gtid_strict_mode"}


# ---- packets -------------------------------------------------------------------------------

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def read_frames(sock):
    """One logical packet: (raw frames as received, last sequence id, payload)."""
    raw, payload = b"", b""
    while True:
        header = recv_exact(sock, 4)
        length = header[0] | header[1] << 8 | header[2] << 16
        body = recv_exact(sock, length) if length else b""
        raw += header + body
        payload += body
        if length < 0xFFFFFF:
            return raw, header[3], payload


def frames(seq, payload):
    """`payload` as packets from sequence id `seq`; returns (bytes, next seq)."""
    out = b""
    while True:
        chunk, payload = payload[:0xFFFFFF], payload[0xFFFFFF:]
        out += struct.pack("<I", len(chunk))[:3] + bytes([seq & 0xFF]) + chunk
        seq += 1
        if len(chunk) < 0xFFFFFF:
            return out, seq


def lenenc_int(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def read_lenenc(p, pos):
    first = p[pos]
    if first < 251:
        return first, pos + 1
    if first == 0xFC:
        return struct.unpack_from("<H", p, pos + 1)[0], pos + 3
    if first == 0xFD:
        return int.from_bytes(p[pos + 1:pos + 4], "little"), pos + 4
    return struct.unpack_from("<Q", p, pos + 1)[0], pos + 9


def lenenc_str(b):
    return lenenc_int(len(b)) + b


def cstring(p, pos):
    end = p.index(b"\0", pos)
    return p[pos:end], end + 1


def ok_packet(status=2):
    return b"\x00\x00\x00" + struct.pack("<HH", status, 0)


def err_packet(code, state, message):
    return b"\xff" + struct.pack("<H", code) + b"#" + state.encode() + message.encode()


def eof_packet(status=2):
    return b"\xfe" + struct.pack("<HH", 0, status)


def column_def(name):
    # catalog, schema, table, org_table, name, org_name, fixed fields: utf8mb4, VAR_STRING
    return (lenenc_str(b"def") + lenenc_str(b"") * 3 + lenenc_str(name.encode()) + lenenc_str(b"") + b"\x0c"
            + struct.pack("<HIBHB", UTF8MB4_GENERAL_CI, 1024, 0xFD, 0, 0x1F) + b"\0\0")


def result_set(columns, rows, status=2):
    """The payloads of a text result set (classic EOF packets: our client does not ask for
    CLIENT_DEPRECATE_EOF)."""
    out = [lenenc_int(len(columns))] + [column_def(c) for c in columns] + [eof_packet(status)]
    for row in rows:
        out.append(b"".join(b"\xfb" if v is None else lenenc_str(str(v).encode()) for v in row))
    out.append(eof_packet(status))
    return out


# ---- caching_sha2_password and mysql_native_password ---------------------------------------

def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def sha2_fast_auth_matches(password, nonce, scramble):
    """The server's check of the fast path: XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), nonce))."""
    stage2 = sha256(sha256(password.encode()))
    candidate = xor(scramble, sha256(stage2, nonce))
    return len(scramble) == 32 and sha256(candidate) == stage2


def native_scramble(password, nonce):
    s1 = hashlib.sha1(password.encode()).digest()
    return xor(s1, hashlib.sha1(nonce + hashlib.sha1(s1).digest()).digest())


# ---- GTID sets ------------------------------------------------------------------------------

def uuid_text(b):
    h = b.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def gtid_add(gset, sid, a, b=None):
    """Adds [a, b] to `gset` ({sid: sorted disjoint [lo, hi]}), merging."""
    b = a if b is None else b
    iv = sorted(gset.get(sid, []) + [[a, b]])
    merged = []
    for lo, hi in iv:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    gset[sid] = merged


def gtid_contains(gset, sid, gno):
    return any(lo <= gno <= hi for lo, hi in gset.get(sid, []))


def gtid_text(gset):
    """As MySQL 8.4 prints a GTID set: one uuid per line, its untagged intervals first, then
    each tag with its intervals (`uuid:1-13:mytag:1-2`)."""
    by_uuid = {}
    for sid in sorted(gset):
        uuid, _, tag = sid.partition(":")
        by_uuid.setdefault(uuid, []).append((tag, gset[sid]))
    blocks = []
    for uuid in sorted(by_uuid):
        parts = [uuid]
        for tag, iv in sorted(by_uuid[uuid]):
            if tag:
                parts.append(tag)
            parts += [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in iv]
        blocks.append(":".join(parts))
    return ",\n".join(blocks)


def read_varlen(data, pos):
    """mysql::serialization's variable-length unsigned integer (tag lengths of tagged sets)."""
    first = data[pos]
    ones = 0
    while ones < 8 and first & (1 << ones):
        ones += 1
    if ones == 8:
        return int.from_bytes(data[pos + 1:pos + 9], "little"), pos + 9
    n = ones + 1
    return int.from_bytes(data[pos:pos + n], "little") >> n, pos + n


def decode_sid_block(data):
    """COM_BINLOG_DUMP_GTID's encoded GTID set, untagged or tagged (format byte 1, 8.4)."""
    raw = struct.unpack_from("<Q", data, 0)[0]
    tagged = raw >> 56 == 1
    n = (raw >> 8) & 0xFFFFFFFFFFFF if tagged else raw & 0x00FFFFFFFFFFFFFF
    pos, gset = 8, {}
    for _ in range(n):
        uuid = uuid_text(data[pos:pos + 16])
        pos += 16
        sid = uuid
        if tagged:
            tlen, pos = read_varlen(data, pos)
            if tlen:
                sid = f"{uuid}:{data[pos:pos + tlen].decode()}"
                pos += tlen
        count = struct.unpack_from("<Q", data, pos)[0]
        pos += 8
        for _ in range(count):
            start, end = struct.unpack_from("<QQ", data, pos)
            pos += 16
            gtid_add(gset, sid, start, end - 1)
    return gset


# ---- the binlog file -------------------------------------------------------------------------

def crc32(b):
    return struct.pack("<I", zlib.crc32(b) & 0xFFFFFFFF)


class BinlogFile:
    """A real binlog file's events, its PREVIOUS_GTIDS set and its transactions (GTID and
    byte range)."""

    def __init__(self, path, name):
        with open(path, "rb") as f:
            self.bytes = f.read()
        assert self.bytes[:4] == b"\xfebin", path
        self.name = name
        self.events = []  # (offset, type, raw)
        pos = 4
        while pos + HEADER_LEN <= len(self.bytes):
            size = struct.unpack_from("<I", self.bytes, pos + 9)[0]
            self.events.append((pos, self.bytes[pos + 4], self.bytes[pos:pos + size]))
            pos += size
        self.previous = {}
        self.transactions = []  # (sid, gno, start offset, end offset)
        self.server_id = struct.unpack_from("<I", self.events[0][2], 5)[0]
        for i, (off, etype, raw) in enumerate(self.events):
            if etype == PREVIOUS_GTIDS_EVENT:
                self.previous = self._previous_gtids(raw[HEADER_LEN:-4])
            if etype in (GTID_EVENT, GTID_TAGGED_EVENT, ANONYMOUS_GTID_EVENT):
                sid, gno = self._gtid(etype, raw[HEADER_LEN:-4]) if etype != ANONYMOUS_GTID_EVENT else (None, None)
                end = next((o for o, t, _ in self.events[i + 1:]
                            if t in (GTID_EVENT, GTID_TAGGED_EVENT, ANONYMOUS_GTID_EVENT, ROTATE_EVENT)),
                           len(self.bytes))
                self.transactions.append((sid, gno, off, end))
        # a trailing ROTATE names a next file this server does not have: never served
        last_off, last_type, _ = self.events[-1]
        self.end = last_off if last_type == ROTATE_EVENT else len(self.bytes)
        sids = [t[0] for t in self.transactions if t[0]] + list(self.previous)
        # a file without GTIDs: the server's uuid is its own
        self.uuid = sids[0].split(":")[0] if sids else "a1b2c3d4-0000-4000-8000-00000000fa4e"

    @staticmethod
    def _gtid(etype, body):
        if etype == GTID_EVENT:
            return uuid_text(body[1:17]), struct.unpack_from("<q", body, 17)[0]
        # GTID_TAGGED_LOG_EVENT (mysql::serialization, version byte 2): payload size, last
        # non-ignorable field id, then (field id, value) pairs: 0 flags, 1 uuid (16 varlen
        # bytes), 2 gno (zig-zag signed), 3 tag (length, bytes), ...
        _, pos = read_varlen(body, 1)
        _, pos = read_varlen(body, pos)
        uuid = gno = tag = None
        while pos < len(body) and tag is None:
            field, pos = read_varlen(body, pos)
            if field == 0:
                _, pos = read_varlen(body, pos)
            elif field == 1:
                raw = []
                for _ in range(16):
                    v, pos = read_varlen(body, pos)
                    raw.append(v)
                uuid = uuid_text(bytes(raw))
            elif field == 2:
                v, pos = read_varlen(body, pos)
                gno = v >> 1
            elif field == 3:
                n, pos = read_varlen(body, pos)
                tag = body[pos:pos + n].decode()
                pos += n
            else:
                raise ValueError(f"tagged GTID event: field {field} before the tag")
        return f"{uuid}:{tag}", gno

    @staticmethod
    def _previous_gtids(body):
        return decode_sid_block(body)


# ---- the server -------------------------------------------------------------------------------

class MySQL84:
    """Listens on 127.0.0.1:`port`; `users` {name: password} are the accounts it accepts (the
    same accounts, same passwords, log in to the MariaDB on `mariadb_port`). `tls`: the
    make_tls_certs() paths (TLS offered) or None. `committed`: how many of the file's
    transactions are written so far."""

    def __init__(self, port, mariadb_port, binlog_path, binlog_name, users, tls=None, committed=0,
                 row_metadata="FULL", gtid_mode="ON", column_types=None):
        self.port = port
        self.mariadb_port = mariadb_port
        self.binlog = BinlogFile(binlog_path, binlog_name)
        self.users = dict(users)
        self.committed = committed
        self.row_metadata = row_metadata
        self.gtid_mode = gtid_mode
        self.column_types = dict(column_types or {})  # MariaDB's COLUMN_TYPE -> MySQL's (DATA_TYPE, COLUMN_TYPE)
        self.cache = set()  # caching_sha2_password's cache: accounts authenticated in full once
        self.auths = []  # (user, "fast" | "full over TLS" | "full with RSA" | "refused")
        self.queries = []
        self.dumps = []  # {"command", "gtid_set" | "file"/"pos", "sent": [gtids]}
        self.errors = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tls_context = None
        if tls:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(tls["cert"], tls["key"])
        self.lock = threading.Lock()
        self.stopping = False
        self.next_id = 100
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind(("127.0.0.1", port))
        except OSError as e:
            # the private ports are inside Linux's ephemeral range: a client connection of
            # the test run may hold this one; then a port the kernel picks (url() says which)
            if e.errno != errno.EADDRINUSE:
                raise
            self.listener.bind(("127.0.0.1", 0))
            self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        self.sessions = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def url(self, user, password):
        return f"mysql://{user}:{password}@127.0.0.1:{self.port}"

    # what the server holds now
    def visible_end(self):
        """The end of the last committed transaction (of the events before the first one when
        none is)."""
        if self.committed >= len(self.binlog.transactions):
            return self.binlog.end
        return self.binlog.transactions[self.committed][2]

    def executed(self):
        gset = {sid: [list(iv) for iv in ivs] for sid, ivs in self.binlog.previous.items()}
        for sid, gno, _, _ in self.binlog.transactions[:self.committed]:
            if sid is not None:
                gtid_add(gset, sid, gno)
        return gset

    def variables(self):
        return {
            "version": SERVER_VERSION, "version_comment": "MySQL Community Server - GPL", "log_bin": "ON",
            "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": self.row_metadata,
            "binlog_checksum": "CRC32", "gtid_mode": self.gtid_mode,
            "enforce_gtid_consistency": self.gtid_mode,
            "server_uuid": self.binlog.uuid, "server_id": str(self.binlog.server_id),
            "gtid_executed": gtid_text(self.executed()), "gtid_purged": gtid_text(self.binlog.previous),
            "binlog_transaction_compression": "OFF", "log_replica_updates": "ON",
            "default_authentication_plugin": None,
        }

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.next_id += 1
                cid = self.next_id
            session = Session(self, sock, cid)
            t = threading.Thread(target=session.run, daemon=True)
            self.sessions.append((session, t))
            t.start()

    def stop(self):
        """Closes the listener and every connection, and waits for their threads."""
        self.stopping = True
        for s in [self.listener] + [sock for session, _ in self.sessions
                                    for sock in (session.client, session.backend) if sock is not None]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.listener.close()
        self.accepter.join(5)
        for _, t in self.sessions:
            t.join(5)


class Session:
    """One client connection."""

    def __init__(self, server, sock, cid):
        self.server = server
        self.client = sock
        self.cid = cid
        self.backend = None
        self.status = 2
        self.tls = False
        self.vars = {}

    def run(self):
        try:
            if self.handshake():
                self.serve()
        except (EOFError, OSError, ssl.SSLError):
            pass
        except Exception as e:  # recorded for the tests: a bug of this server must not pass silently
            self.server.errors.append(repr(e))
        finally:
            for s in (self.client, self.backend):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    def send(self, seq, payload):
        out, nxt = frames(seq, payload)
        self.client.sendall(out)
        return nxt

    def send_all(self, seq, payloads):
        out = b""
        for p in payloads:
            chunk, seq = frames(seq, p)
            out += chunk
        self.client.sendall(out)
        return seq

    # -- connection and authentication
    def handshake(self):
        srv = self.server
        nonce = bytes(33 + b % 94 for b in os.urandom(20))
        caps = SERVER_CAPS | (SSL_FLAG if srv.tls_context else 0)
        greeting = (b"\x0a" + SERVER_VERSION.encode() + b"\0" + struct.pack("<I", self.cid) + nonce[:8] + b"\0"
                    + struct.pack("<HBHH", caps & 0xFFFF, UTF8MB4_0900_AI_CI, 2, caps >> 16) + bytes([21])
                    + b"\0" * 10 + nonce[8:] + b"\0" + b"caching_sha2_password\0")
        self.send(0, greeting)
        _, seq, p = read_frames(self.client)
        if len(p) == 32 and struct.unpack_from("<I", p, 0)[0] & SSL_FLAG and srv.tls_context:
            self.client = srv.tls_context.wrap_socket(self.client, server_side=True)
            self.tls = True
            _, seq, p = read_frames(self.client)
        client_caps = struct.unpack_from("<I", p, 0)[0]
        user, pos = cstring(p, 32)
        user = user.decode()
        if client_caps & PLUGIN_AUTH_LENENC:
            n, pos = read_lenenc(p, pos)
        else:
            n, pos = p[pos], pos + 1
        auth, pos = p[pos:pos + n], pos + n
        db = None
        if client_caps & CONNECT_WITH_DB and pos < len(p):
            db, pos = cstring(p, pos)
            db = db.decode() or None
        seq += 1
        password = srv.users.get(user)
        host = "127.0.0.1"
        denied = err_packet(1045, "28000", f"Access denied for user '{user}'@'{host}' (using password: "
                                           f"{'YES' if auth else 'NO'})")
        if password is None or not auth:
            srv.auths.append((user, "refused"))
            self.send(seq, denied)
            return False
        if user in srv.cache:
            if not sha2_fast_auth_matches(password, nonce, auth):
                srv.auths.append((user, "refused"))
                self.send(seq, denied)
                return False
            seq = self.send(seq, b"\x01\x03")
            how = "fast"
        else:
            seq = self.send(seq, b"\x01\x04")  # perform full authentication
            _, seq, p = read_frames(self.client)
            seq += 1
            if self.tls:
                given = p.rstrip(b"\0")
                how = "full over TLS"
            elif p == b"\x02":
                pem = srv.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
                seq = self.send(seq, b"\x01" + pem)
                _, seq, p = read_frames(self.client)
                seq += 1
                try:
                    plain = srv.key.decrypt(p, padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()),
                                                            algorithm=hashes.SHA1(), label=None))
                except ValueError:
                    plain = b""
                given = bytes(c ^ nonce[i % len(nonce)] for i, c in enumerate(plain)).rstrip(b"\0")
                how = "full with RSA"
            else:
                # a cleartext password on a plain connection: MySQL refuses it
                given = None
                how = "refused"
            if given != password.encode():
                srv.auths.append((user, "refused"))
                self.send(seq, denied)
                return False
            srv.cache.add(user)
        err = self.login_backend(user, password, db, client_caps)
        if err is not None:
            srv.auths.append((user, "refused by MariaDB"))
            self.send(seq, err)
            return False
        srv.auths.append((user, how))
        self.send(seq, ok_packet(self.status))
        return True

    def login_backend(self, user, password, db, client_caps):
        """Logs in to MariaDB as `user` with the client's capabilities; the MariaDB error
        packet when refused."""
        b = socket.create_connection(("127.0.0.1", self.server.mariadb_port))
        self.backend = b
        _, seq, hs = read_frames(b)
        _, pos = cstring(hs, 1)
        s1 = hs[pos + 4:pos + 12]
        pos += 13 + 2 + 1 + 2 + 2
        auth_len = hs[pos]
        pos += 11
        s2 = hs[pos:pos + max(13, auth_len - 8)].rstrip(b"\0")
        nonce = (s1 + s2)[:20]
        caps = (client_caps & ~NOT_FORWARDED) | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | LONG_PASSWORD
        caps = caps | CONNECT_WITH_DB if db else caps & ~CONNECT_WITH_DB
        scramble = native_scramble(password, nonce)
        resp = (struct.pack("<IIB", caps, 1 << 24, UTF8MB4_GENERAL_CI) + b"\0" * 23 + user.encode() + b"\0"
                + bytes([len(scramble)]) + scramble + (db.encode() + b"\0" if db else b"")
                + b"mysql_native_password\0")
        out, seq = frames(seq + 1, resp)
        b.sendall(out)
        while True:
            _, seq, p = read_frames(b)
            if p[0] == 0x00:
                return None
            if p[0] == 0xFF:
                return p
            if p[0] == 0xFE:  # auth switch
                plugin, pos = cstring(p, 1)
                if plugin != b"mysql_native_password":
                    return err_packet(1045, "28000", f"MariaDB asked for {plugin.decode()}")
                out, seq = frames(seq + 1, native_scramble(password, p[pos:pos + 20]))
                b.sendall(out)
                continue
            return err_packet(2027, "HY000", "unexpected MariaDB login packet")

    # -- commands
    def serve(self):
        while True:
            _, _, p = read_frames(self.client)
            if not p:
                continue
            cmd = p[0]
            if cmd == 0x01:  # COM_QUIT
                return
            if cmd == 0x03:
                sql = p[1:].decode("utf-8", "replace")
                self.server.queries.append(sql)
                answer = self.intercept(sql)
                if answer is not None:
                    self.send_all(1, answer)
                    continue
            if cmd == 0x16 and re.search(r"\bBINLOG_GTID_POS\s*\(", p[1:].decode("utf-8", "replace"), re.I):
                self.server.queries.append(p[1:].decode())
                self.send(1, err_packet(1305, "42000", "FUNCTION BINLOG_GTID_POS does not exist"))
                continue
            if cmd == 0x15:  # COM_REGISTER_SLAVE
                self.send(1, ok_packet(self.status))
                continue
            if cmd in (0x12, 0x1E):
                self.dump(cmd, p)
                return
            out, _ = frames(0, p)
            self.backend.sendall(out)
            self.relay(cmd)

    def relay_one(self):
        raw, _, p = read_frames(self.backend)
        self.client.sendall(raw)
        return p

    def relay(self, cmd):
        """Passes MariaDB's whole answer to `cmd` on."""
        if cmd in (0x18, 0x19):  # COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE: no answer
            return
        p = self.relay_one()
        if cmd == 0x16:  # COM_STMT_PREPARE
            if p[0] == 0x00:
                ncols, nparams = struct.unpack_from("<HH", p, 5)
                for n in (nparams, ncols):
                    if n:
                        for _ in range(n + 1):
                            self.relay_one()
            return
        if cmd not in (0x03, 0x17):  # one OK or ERR
            if p[0] == 0x00:
                self.status = self.ok_status(p)
            return
        if cmd == 0x17 and self.server.column_types and p[0] not in (0x00, 0xFF, 0xFB):
            return self.relay_rewritten(p)
        while True:  # COM_QUERY, COM_STMT_EXECUTE: result sets
            if p[0] == 0x00:
                self.status = self.ok_status(p)
                if not self.status & MORE_RESULTS:
                    return
                p = self.relay_one()
                continue
            if p[0] in (0xFF, 0xFB):
                return
            n, _ = read_lenenc(p, 0)
            for _ in range(n + 1):  # column definitions and their EOF
                self.relay_one()
            while True:
                r = self.relay_one()
                if r[0] == 0xFE and len(r) < 9:
                    self.status = struct.unpack_from("<H", r, 3)[0]
                    break
                if r[0] == 0xFF:
                    return
            if not self.status & MORE_RESULTS:
                return
            p = self.relay_one()

    def relay_rewritten(self, first):
        """The rest of a binary result set (its column count already passed on) with the rows of
        information_schema.COLUMNS of a COLUMN_TYPE in `column_types` given MySQL's DATA_TYPE
        and COLUMN_TYPE. Column definitions and rows are read before they are passed on."""
        n, _ = read_lenenc(first, 0)
        types, names = [], []
        for _ in range(n):
            p = self.relay_one()
            pos = 0
            fields = []
            for _ in range(6):  # catalog, schema, table, org_table, name, org_name
                ln, pos = read_lenenc(p, pos)
                fields.append(p[pos:pos + ln])
                pos += ln
            _, pos = read_lenenc(p, pos)
            types.append(p[pos + 6])
            names.append(fields[5].decode().upper() or fields[4].decode().upper())
        self.relay_one()  # EOF
        while True:
            raw, seq, r = read_frames(self.backend)
            if r[0] == 0xFE and len(r) < 9:
                self.client.sendall(raw)
                self.status = struct.unpack_from("<H", r, 3)[0]
                return
            if r[0] == 0xFF:
                self.client.sendall(raw)
                return
            row = self.binary_row(r, types)
            columns_query = names[:1] == ["COLUMN_NAME"] and names[2:3] == ["COLUMN_TYPE"]
            given = columns_query and row[2] is not None and self.server.column_types.get(row[2].decode())
            if given:
                row[1], row[2] = given[0].encode(), given[1].encode()
                out, _ = frames(seq, self.encode_binary_row(row, types))
                self.client.sendall(out)
            else:
                self.client.sendall(raw)

    @staticmethod
    def binary_row(p, types):
        """A binary protocol row: its values as bytes (strings as they are, numbers in their
        fixed-length little-endian form), None for NULL."""
        n = len(types)
        bitmap = p[1:1 + (n + 9) // 8]
        pos = 1 + len(bitmap)
        out = []
        fixed = BINARY_FIXED_WIDTH
        for i, t in enumerate(types):
            if bitmap[(i + 2) // 8] & (1 << ((i + 2) % 8)):
                out.append(None)
            elif t in fixed:
                out.append(p[pos:pos + fixed[t]])
                pos += fixed[t]
            elif t in BINARY_DATES:
                ln = p[pos]
                out.append(p[pos:pos + 1 + ln])
                pos += 1 + ln
            else:
                ln, pos = read_lenenc(p, pos)
                out.append(p[pos:pos + ln])
                pos += ln
        return out

    @staticmethod
    def encode_binary_row(row, types):
        n = len(types)
        bitmap = bytearray((n + 9) // 8)
        body = b""
        for i, (v, t) in enumerate(zip(row, types)):
            if v is None:
                bitmap[(i + 2) // 8] |= 1 << ((i + 2) % 8)
            elif t in BINARY_FIXED_WIDTH or t in BINARY_DATES:  # kept with their length byte
                body += v
            else:
                body += lenenc_str(v)
        return b"\x00" + bytes(bitmap) + body

    @staticmethod
    def ok_status(p):
        _, pos = read_lenenc(p, 1)
        _, pos = read_lenenc(p, pos)
        return struct.unpack_from("<H", p, pos)[0]

    def intercept(self, sql):
        """MySQL 8.4's own answer to `sql`, or None to let MariaDB answer."""
        srv = self.server
        q = " ".join(sql.strip().rstrip(";").split())
        up = q.upper()
        if up in ("SELECT VERSION()", "SELECT @@VERSION"):
            return result_set([q[7:]], [[SERVER_VERSION]], self.status)
        if up in ("SHOW MASTER STATUS", "SHOW MASTER LOGS"):
            return [err_packet(1064, "42000", "You have an error in your SQL syntax; check the manual that "
                                              "corresponds to your MySQL server version for the right syntax to "
                                              f"use near '{q.split(' ', 1)[1]}' at line 1")]
        if up == "SHOW BINARY LOG STATUS":
            row = [srv.binlog.name, srv.visible_end(), "", "", gtid_text(srv.executed())]
            return result_set(["File", "Position", "Binlog_Do_DB", "Binlog_Ignore_DB", "Executed_Gtid_Set"], [row],
                              self.status)
        if up == "SHOW BINARY LOGS":
            return result_set(["Log_name", "File_size", "Encrypted"], [[srv.binlog.name, srv.visible_end(), "No"]],
                              self.status)
        m = re.fullmatch(r"SHOW (?:GLOBAL |SESSION )?VARIABLES LIKE '([^']*)'", q, re.I)
        if m:
            pattern = "^" + re.escape(m.group(1).lower()).replace("%", ".*").replace("_", ".") + "$"
            rows = [[k, v] for k, v in sorted(srv.variables().items()) if v is not None and re.match(pattern, k)]
            return result_set(["Variable_name", "Value"], rows, self.status)
        m = re.fullmatch(r"SHOW (?:GLOBAL |SESSION )?STATUS LIKE '([^']*)'", q, re.I)
        if m and m.group(1).lower().startswith("binlog_snapshot"):  # MariaDB's
            return result_set(["Variable_name", "Value"], [], self.status)
        m = re.fullmatch(r"SELECT ((?:@@[\w.]+)(?:\s*,\s*@@[\w.]+)*)", q, re.I)
        if m:
            names = [re.sub(r"^@@(global\.|session\.)?", "", v.strip(), flags=re.I).lower()
                     for v in m.group(1).split(",")]
            for name in names:
                if name in MARIADB_ONLY_VARIABLES:
                    return [err_packet(1193, "HY000", f"Unknown system variable '{name}'")]
            values = srv.variables()
            if all(n in values and values[n] is not None for n in names):
                return result_set([v.strip() for v in m.group(1).split(",")], [[values[n] for n in names]],
                                  self.status)
            return None
        m = re.fullmatch(r"SET @(master|source)_(binlog_checksum|heartbeat_period)\s*=\s*'?([^']*)'?", q, re.I)
        if m:
            self.vars[m.group(2).lower()] = m.group(3)
            return [ok_packet(self.status)]
        return None

    # -- the binlog dump thread
    def dump(self, cmd, p):
        srv = self.server
        binlog = srv.binlog
        if cmd == 0x12:
            pos, _flags, _server_id = struct.unpack_from("<IHI", p, 1)
            name = p[11:].decode()
            request = {"command": "COM_BINLOG_DUMP", "file": name, "pos": pos, "sent": []}
            exclude = None
        else:
            _flags, _server_id, name_len = struct.unpack_from("<HII", p, 1)
            name = p[11:11 + name_len].decode()
            pos, size = struct.unpack_from("<QI", p, 11 + name_len)
            exclude = decode_sid_block(p[23 + name_len:23 + name_len + size]) if size else {}
            request = {"command": "COM_BINLOG_DUMP_GTID", "gtid_set": gtid_text(exclude), "file": name,
                       "pos": pos, "sent": []}
        srv.dumps.append(request)
        try:
            self.send_binlog(request, exclude, name, pos)
        finally:
            request["closed"] = True

    def send_binlog(self, request, exclude, name, pos):
        srv = self.server
        binlog = srv.binlog
        seq = 1
        if exclude is not None:
            missing = {}
            for sid, ivs in binlog.previous.items():
                for lo, hi in ivs:
                    for g in range(lo, hi + 1):
                        if not gtid_contains(exclude, sid, g):
                            gtid_add(missing, sid, g)
            if missing:
                self.send(seq, err_packet(1236, "HY000", (
                    "Cannot replicate because the source purged required binary logs. Replicate the missing "
                    "transactions from elsewhere, or provision a new replica from backup. Consider increasing the "
                    "source's binary log expiration period. The GTID set sent by the replica is "
                    f"'{gtid_text(exclude)}', and the missing transactions are '{gtid_text(missing)}'")))
                return
            start = 4
        else:
            if name != binlog.name or pos < 4 or pos > srv.visible_end():
                why = ("Could not find first log file name in binary log index file" if name != binlog.name
                       else "Client requested source to start replication from position > file size")
                self.send(seq, err_packet(1236, "HY000", why))
                return
            start = pos
        # the fake rotate: a checksum only if the replica declared one MySQL knows
        declared = self.vars.get("binlog_checksum", "").upper()
        body = struct.pack("<Q", start) + binlog.name.encode()
        with_crc = declared == "CRC32"
        size = HEADER_LEN + len(body) + (4 if with_crc else 0)
        rotate = struct.pack("<IBIIIH", 0, ROTATE_EVENT, binlog.server_id, size, 0, LOG_EVENT_ARTIFICIAL_F) + body
        if with_crc:
            rotate += crc32(rotate)
        seq = self.send(seq, b"\x00" + rotate)
        # the format description
        _, _, fde = binlog.events[0]
        fde = bytearray(fde)
        fde[17] &= ~LOG_EVENT_BINLOG_IN_USE_F
        first_skipped = exclude is not None and binlog.transactions and \
            gtid_contains(exclude, binlog.transactions[0][0], binlog.transactions[0][1])
        if start > 4 or first_skipped:
            fde[13:17] = b"\0\0\0\0"
            fde[HEADER_LEN + 52:HEADER_LEN + 56] = b"\0\0\0\0"
        fde[-4:] = crc32(bytes(fde[:-4]))
        seq = self.send(seq, b"\x00" + bytes(fde))
        period = int(self.vars.get("heartbeat_period", "0") or 0) / 1e9
        index = 1
        if exclude is None:
            index = next((i for i, (off, _, _) in enumerate(binlog.events) if off >= start), len(binlog.events))
        excluded, skipped_to = False, 0
        position = start if start > 4 else binlog.events[0][0] + len(binlog.events[0][2])
        last_beat = time.time()
        while not srv.stopping:
            end = srv.visible_end()
            while index < len(binlog.events) and binlog.events[index][0] < end:
                off, etype, raw = binlog.events[index]
                index += 1
                position = off + len(raw)
                if exclude is not None:
                    if etype in (GTID_EVENT, GTID_TAGGED_EVENT):
                        sid, gno = next((s, g) for s, g, o, _ in binlog.transactions if o == off)
                        excluded = gtid_contains(exclude, sid, gno)
                    elif etype == ROTATE_EVENT:
                        excluded = False
                    if excluded:
                        skipped_to = position
                        continue
                if skipped_to:
                    seq = self.send(seq, b"\x00" + self.heartbeat(skipped_to))
                    skipped_to = 0
                if etype in (GTID_EVENT, GTID_TAGGED_EVENT):
                    sid, gno = next((s, g) for s, g, o, _ in binlog.transactions if o == off)
                    request["sent"].append(f"{sid}:{gno}")
                seq = self.send(seq, b"\x00" + raw)
                last_beat = time.time()
            if skipped_to:
                seq = self.send(seq, b"\x00" + self.heartbeat(skipped_to))
                skipped_to = 0
                last_beat = time.time()
            if self.client_gone():
                return
            if period and time.time() - last_beat >= period:
                seq = self.send(seq, b"\x00" + self.heartbeat(position))
                last_beat = time.time()

    def client_gone(self):
        """Waits a moment for the replica; True when it closed the connection (it sends
        nothing once the dump started)."""
        readable, _, _ = select.select([self.client], [], [], 0.05)
        if not readable:
            return False
        try:
            return not self.client.recv(1)
        except (OSError, ssl.SSLError):
            return True

    def heartbeat(self, log_pos):
        binlog = self.server.binlog
        name = binlog.name.encode()
        event = struct.pack("<IBIIIH", 0, HEARTBEAT_EVENT, binlog.server_id, HEADER_LEN + len(name) + 4, log_pos, 0) \
            + name
        return event + crc32(event)
