"""A mixed, reproducible write load on the sample schema: multi-statement transactions of
inserts, updates (including primary key changes) and deletes, some rolled back."""
import random
import threading
import time

TABLES = ["customers", "orders", "Order Items"]


def _val(rng):
    return rng.choice([
        None, "", "plain", "O'Reilly", "tab\tnew\nline", "back\\slash", "Zażółć 🐢", "x" * rng.randint(1, 190)])


def one_transaction(cur, rng, next_order):
    """Runs one transaction of 1..8 statements; returns the next free order id."""
    n = rng.randint(1, 8)
    cur.execute("START TRANSACTION")
    for _ in range(n):
        op = rng.random()
        if op < 0.35:
            cur.execute(
                "INSERT INTO customers (name, email, notes, created, birthday, balance, tiny, utiny, small, usmall,"
                " med, umed, uint, big, ubig, status, tags) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (f"c{rng.randint(0, 10**9)}", _val(rng), _val(rng),
                 f"20{rng.randint(10, 30)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 0{rng.randint(0, 9)}:1{rng.randint(0, 9)}:00.{rng.randint(0, 999999):06d}",
                 f"19{rng.randint(50, 99)}-1{rng.randint(0, 2)}-2{rng.randint(0, 8)}",
                 f"{rng.randint(-10**9, 10**9)}.{rng.randint(0, 99):02d}",
                 rng.randint(-128, 127), rng.randint(0, 255), rng.randint(-32768, 32767), rng.randint(0, 65535),
                 rng.randint(-8388608, 8388607), rng.randint(0, 16777215), rng.randint(0, 4294967295),
                 rng.randint(-2**63, 2**63 - 1), rng.randint(0, 2**64 - 1),
                 rng.choice(["new", "active", "It's gone"]),
                 rng.choice([None, "", "vip", "beta,vip", "vip,newsletter,beta"])))
        elif op < 0.55:
            cur.execute(
                "INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s)",
                (next_order, rng.randint(1, 50), f"{rng.randint(-10**30, 10**30)}.{rng.randint(0, 10**30)}",
                 rng.choice(["new", "paid", "shipped"]), "2024-05-0%d 10:00:00" % rng.randint(1, 9), _val(rng)))
            label = _val(rng)
            cur.execute("INSERT INTO `Order Items` VALUES (%s, 1, %s, %s), (%s, 2, %s, %s)",
                        (next_order, rng.randint(1, 9), label[:10] if label is not None else None,
                         next_order, rng.randint(1, 9), "b"))
            next_order += 1
        elif op < 0.7:
            cur.execute("UPDATE customers SET balance = balance + 1.25, notes = %s, ubig = %s, status = %s, tags = %s "
                        "WHERE id %% 7 = %s AND balance < 1000000000 LIMIT 3",
                        (_val(rng), rng.randint(0, 2**64 - 1), rng.choice(["active", "It's gone"]),
                         rng.choice([None, "newsletter"]), rng.randint(0, 6)))
        elif op < 0.78:
            # primary key change
            cur.execute("SELECT MIN(order_id) FROM orders WHERE order_id < 1000000")
            low = cur.fetchone()[0]
            if low is not None:
                cur.execute("UPDATE orders SET order_id = order_id + 1000000 WHERE order_id = %s", (low,))
        elif op < 0.84:
            cur.execute("SELECT MAX(`Order ID`) FROM `Order Items`")
            top = cur.fetchone()[0]
            if top is not None:
                cur.execute("UPDATE `Order Items` SET `line` = `line` + 10, `Qty` = `Qty` + 1 "
                            "WHERE `Order ID` = %s AND `line` < 10", (top,))
        elif op < 0.92:
            cur.execute("DELETE FROM customers WHERE id %% 11 = %s LIMIT 2", (rng.randint(0, 10),))
        else:
            cur.execute("DELETE FROM `Order Items` WHERE `Order ID` %% 5 = %s LIMIT 3", (rng.randint(0, 4),))
    if rng.random() < 0.1:
        cur.execute("ROLLBACK")
    else:
        cur.execute("COMMIT")
    return next_order


def run(conn, schema, transactions, seed=1, next_order=100, pause=0.0):
    rng = random.Random(seed)
    with conn.cursor() as cur:
        cur.execute(f"USE `{schema}`")
        for _ in range(transactions):
            next_order = one_transaction(cur, rng, next_order)
            if pause:
                time.sleep(pause)
    return next_order


class Background:
    """A writer thread on the source while a `with` block runs: `run` until `stop` is set;
    what went wrong is in `errors` (subclasses define `run`)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
