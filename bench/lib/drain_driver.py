"""bench/drain's measuring half (run by bench/drain, which owns Dovecot, the build and
cleanup). A receiver outage leaves a backlog: per store (SQLite, PostgreSQL), N events wait in
the outbox when `mailhook run` starts, and the daemon delivers them to a receiver that answers
at once. Reports deliveries/s, the CPU per delivery of mailhook and of PostgreSQL, and how often
the gauges counted the outbox (PostgreSQL's pg_stat counters)."""

import argparse
import datetime
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402
from burst_driver import wait_all  # noqa: E402
from cluster_driver import STATS_QUIET_S, Postgres, log  # noqa: E402

TARGET = "webhook:bench"


def rows(count, now_ms):
    """The outbox rows the daemon would have committed: small events of one folder, all due."""
    for i in range(1, count + 1):
        event_id = f"evt_drain_{i:07d}"
        payload = json.dumps({"id": event_id, "type": "message.received",
                              "message": {"message_id": f"<drain-{i}@bench.mailhook.invalid>"}})
        yield (event_id, TARGET, "bench", "INBOX", 1, i, payload, now_ms, now_ms)


INSERT = ("INSERT INTO outbox (event_id, target, account, folder, uidvalidity, uid, payload, created_at, "
          "next_attempt_at) ")


def fill_sqlite(state_dir, count):
    db = sqlite3.connect(os.path.join(state_dir, "mailhook.db"))
    db.executemany(INSERT + "VALUES (?,?,?,?,?,?,?,?,?)", rows(count, int(time.time() * 1000)))
    db.commit()
    db.close()


def fill_postgres(pg, count):
    """The same rows as rows(), made by the server (generate_series)."""
    now_ms = int(time.time() * 1000)
    pg.query(INSERT +
             f"SELECT 'evt_drain_' || lpad(g::text, 7, '0'), '{TARGET}', 'bench', 'INBOX', 1, g, "
             "json_build_object('id', 'evt_drain_' || lpad(g::text, 7, '0'), 'type', 'message.received', "
             "'message', json_build_object('message_id', '<drain-' || g || '@bench.mailhook.invalid>'))::text, "
             f"{now_ms}, {now_ms} FROM generate_series(1, {count}) g")
    pg.query("VACUUM ANALYZE outbox")


def outbox_counters(pg):
    """pg_stat_user_tables of the outbox (scans, rows they read, rows written) and the
    database's commits, so far."""
    return {k: v for k, v in pg.counters().items() if k.startswith("outbox.") or k == "db.xact_commit"}


def run_one(a, store, facts):
    work = os.path.join(a.work, store)
    os.makedirs(work, exist_ok=True)
    secret = benchlib.new_secret()
    rx = benchlib.Receiver(secret)
    pg = Postgres(work, "drain") if store == "postgresql" else None
    daemon = None
    try:
        if pg:
            facts.setdefault("postgres_version", pg.version())
        http_port = benchlib.free_port()
        cfg = os.path.join(work, "mailhook.yaml")
        top = f"store:\n  url: {json.dumps(pg.url)}\n" if pg else ""
        benchlib.write_accounts_config(cfg, work, rx.port, http_port, [("bench", "alice", "secret1", ["INBOX"])],
                                       top_keys=top)
        # A first start makes the schema (and the folder's baseline); then the backlog goes in.
        daemon = benchlib.Daemon(a.mailhook, work, cfg, secret)
        daemon.wait_ready(http_port, 60)
        daemon.stop()
        log(f"  {store}: {a.count} events into the outbox")
        if pg:
            fill_postgres(pg, a.count)
            time.sleep(STATS_QUIET_S)
            before = outbox_counters(pg)
            pg_cpu0 = pg.cpu_s()
        else:
            fill_sqlite(os.path.join(work, "state"), a.count)
        want = {f"<drain-{i}@bench.mailhook.invalid>" for i in range(1, a.count + 1)}
        t0 = time.monotonic()
        daemon = benchlib.Daemon(a.mailhook, work, cfg, secret)
        got = wait_all(rx, want, a.idle_timeout, daemon.proc)
        t_end = max(got.values()) if got else time.monotonic()
        cpu = benchlib.proc_cpu_s(daemon.proc.pid) if daemon.proc.poll() is None else None
        res = {"store": store, "events": a.count, "received": len(got), "elapsed_s": round(t_end - t0, 2),
               "deliveries_per_s": round(len(got) / (t_end - t0), 1) if got else 0,
               "mailhook_cpu_ms_per_delivery": round(cpu * 1000 / len(got), 3) if cpu and got else None,
               "bad_signatures": sum(1 for _, _, ok in rx.events if not ok)}
        if pg:
            pg_cpu = pg.cpu_s() - pg_cpu0
            daemon.stop()
            time.sleep(STATS_QUIET_S)
            after = outbox_counters(pg)
            res["postgres_cpu_ms_per_delivery"] = round(pg_cpu * 1000 / len(got), 3) if got else None
            res["postgres_counters"] = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        return res
    finally:
        if daemon:
            daemon.stop()
        rx.stop()
        if pg:
            pg.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--idle-timeout", type=float, default=60.0)
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    facts = json.loads(a.facts)
    runs = [run_one(a, store, facts) for store in a.stores.split(",")]
    result = {
        "benchmark": "drain",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "facts": facts,
        "method": {
            "setup": "per store: `mailhook run` (one account, alice INBOX, one webhook to a python receiver that "
                     "answers 204 at once) starts once to make the schema and stops; then --count small events "
                     "(one folder, all due) are inserted into its outbox as the daemon would have committed them "
                     "(a receiver outage's backlog); PostgreSQL: a fresh private one (scripts/postgres), "
                     "VACUUM ANALYZE after the insert",
            "deliveries_per_s": "received / (daemon start -> last event received); events matched by Message-ID",
            "cpu": "utime+stime over the same window: mailhook's process; PostgreSQL's postmaster and every "
                   "process below it with their reaped children",
            "postgres_counters": "changes of pg_stat_database.xact_commit and pg_stat_user_tables for outbox over "
                                 "the drain (read 11 s after the insert and 11 s after the daemon stopped): "
                                 "seq_scan counts the outbox counts (count(*)), idx_scan the claims",
        },
        "runs": runs,
    }
    benchlib.write_result(a.out, result)
    for r in runs:
        log(f"  {r['store']}: {r['received']}/{r['events']} in {r['elapsed_s']} s = {r['deliveries_per_s']}/s, "
            f"mailhook {r['mailhook_cpu_ms_per_delivery']} ms/delivery"
            + (f", PostgreSQL {r['postgres_cpu_ms_per_delivery']} ms/delivery, outbox seq scans "
               f"{r['postgres_counters'].get('outbox.seq_scan', 0)}" if "postgres_counters" in r else ""))
    line = {"benchmark": "drain", "count": a.count, "result": a.out}
    for r in runs:
        line[r["store"]] = {k: r.get(k) for k in ("received", "deliveries_per_s", "mailhook_cpu_ms_per_delivery",
                                                  "postgres_cpu_ms_per_delivery")}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
