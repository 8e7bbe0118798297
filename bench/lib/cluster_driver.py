"""bench/cluster's measuring half (run by bench/cluster, which owns Dovecot, the build and
cleanup). For each replica count R: a fresh private PostgreSQL (scripts/postgres), R `mailhook
run` replicas with the same config (own state_dir and HTTP port) on it, sharing N accounts of
one Dovecot. Once the shares settled, a burst of APPENDs round robin over the accounts:
msgs/s, duplicates, CPU per message of the replicas and of PostgreSQL, peak RSS per replica.
With the largest R (>= 2): failover rounds, each a kill -9 of replica 0 and one APPEND to an
account it ran, timed until that message's event and until every account runs again."""

import argparse
import datetime
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402
from burst_driver import wait_all  # noqa: E402
from latency_driver import stats  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_PASSWORD = "bench-cluster"  # TCP needs it (scram-sha-256), as on a production server
# PostgreSQL 15's backends report their statistics up to 10 s after they went idle
# (PGSTAT_IDLE_INTERVAL): the counters are read after this much quiet, before and after a burst.
STATS_QUIET_S = 11.0


def account(i):
    return f"acct{i:02d}"


def user(i):
    return f"user{i:02d}"


def password(i):
    return f"pass{i:02d}"  # scripts/dovecot --extra-users


def msgid_of(ev):
    return (ev.get("message") or {}).get("message_id")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Postgres:
    """A private PostgreSQL in WORK/postgres-<label> (scripts/postgres); the shell's cleanup
    stops it if this process dies first."""

    def __init__(self, work, label, statements=False):
        self.dir = os.path.join(work, f"postgres-{label}")
        self.start()
        with open(os.path.join(self.dir, "env")) as f:
            self.env = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
        self.url = self.env["POSTGRES_URL"]
        self.statements = statements
        if statements:
            # pg_stat_statements must be preloaded: a restart with it, then the extension.
            with open(os.path.join(self.env["POSTGRES_DATA"], "postgresql.conf"), "a") as f:
                f.write("shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n")
            self.stop()
            self.start()
            self.superuser("CREATE EXTENSION pg_stat_statements")

    def start(self):
        subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "start", self.dir, "--password", PG_PASSWORD],
                       check=True, stdout=subprocess.DEVNULL)

    def psql(self, sql, user, host):
        """Rows of a query in the mailhook database, as `user` on `host` (an address or the
        socket directory), each a list of its columns."""
        out = subprocess.run(
            [os.path.join(self.env["POSTGRES_BINDIR"], "psql"), "-X", "-At", "-h", host, "-p",
             self.env["POSTGRES_PORT"], "-U", user, "-d", "mailhook", "-c", sql],
            capture_output=True, text=True, env=dict(os.environ, PGPASSWORD=PG_PASSWORD), check=True)
        return [line.split("|") for line in out.stdout.splitlines() if line]

    def superuser(self, sql):
        """As the cluster's superuser, over its unix socket (trusted)."""
        return self.psql(sql, "postgres", os.path.join(self.dir, "run"))

    def reset_statements(self):
        if self.statements:
            self.superuser("SELECT pg_stat_statements_reset()")

    def top_statements(self, n=25):
        """The statements that took the most time since reset_statements (lock waits included)."""
        if not self.statements:
            return None
        rows = self.superuser(
            "SELECT calls, rows, shared_blks_hit + shared_blks_read, round(total_exec_time::numeric, 1), "
            "regexp_replace(left(query, 160), '\\s+', ' ', 'g') FROM pg_stat_statements "
            f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'mailhook') "
            f"ORDER BY total_exec_time DESC LIMIT {n}")
        return [{"calls": int(r[0]), "rows": int(r[1]), "blocks": int(r[2]), "total_ms": float(r[3]),
                 "query": "|".join(r[4:])} for r in rows]

    def postmaster(self):
        with open(os.path.join(self.env["POSTGRES_DATA"], "postmaster.pid")) as f:
            return int(f.readline())

    def cpu_s(self):
        """The postmaster and its backends (live, and reaped ones via the postmaster)."""
        return benchlib.tree_cpu_s(self.postmaster())

    STATS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "tup_fetched")
    TABLE_STATS = ("n_tup_ins", "n_tup_upd", "n_tup_del", "seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch")

    def query(self, sql):
        """As the mailhook role, over TCP (as the replicas connect)."""
        return self.psql(sql, "mailhook", "127.0.0.1")

    def counters(self):
        """pg_stat_database of the mailhook database, and pg_stat_user_tables per table, flat
        ("db.xact_commit", "outbox.n_tup_ins", …); see STATS_QUIET_S."""
        row = self.query(f"SELECT {', '.join(self.STATS)} FROM pg_stat_database WHERE datname = 'mailhook'")[0]
        out = {f"db.{k}": int(v) for k, v in zip(self.STATS, row)}
        for row in self.query(f"SELECT relname, {', '.join(f'coalesce({c}, 0)' for c in self.TABLE_STATS)} "
                              "FROM pg_stat_user_tables"):
            out.update({f"{row[0]}.{k}": int(v) for k, v in zip(self.TABLE_STATS, row[1:])})
        return out

    def version(self):
        out = subprocess.run([os.path.join(self.env["POSTGRES_BINDIR"], "postgres"), "--version"],
                             capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "stop", self.dir], check=False,
                       stdout=subprocess.DEVNULL)


class Replica:
    """One `mailhook run` with its own state_dir and HTTP port; each start has its own log dir
    (WORK/<run>/r<k>/start<n>/mailhook.log), so a restart after a kill -9 keeps the first log."""

    def __init__(self, a, work, k, rx_port, secret, store_yaml):
        self.a, self.secret = a, secret
        self.dir = os.path.join(work, f"r{k}")
        os.makedirs(self.dir, exist_ok=True)
        self.http_port = benchlib.free_port()
        self.cfg = os.path.join(self.dir, "mailhook.yaml")
        accounts = [(account(i), user(i), password(i), ["INBOX"]) for i in range(1, a.accounts + 1)]
        benchlib.write_accounts_config(self.cfg, self.dir, rx_port, self.http_port, accounts, a.account_keys,
                                       top_keys=store_yaml)
        self.single = not store_yaml  # SQLite: runs every account, no cluster gauges
        self.starts = 0
        self.daemon = None

    def start(self):
        self.starts += 1
        start_dir = os.path.join(self.dir, f"start{self.starts}")
        os.makedirs(start_dir, exist_ok=True)
        self.daemon = benchlib.Daemon(self.a.mailhook, start_dir, self.cfg, self.secret)

    @property
    def pid(self):
        return self.daemon.proc.pid

    def alive(self):
        return self.daemon is not None and self.daemon.proc.poll() is None

    def kill9(self):
        os.kill(self.pid, signal.SIGKILL)

    def reap(self):
        """After a kill -9: wait for it, and drop its pid file (the pid may be reused)."""
        self.daemon.proc.wait()
        self.daemon.log.close()
        os.unlink(self.daemon.pid_path)

    def metrics(self):
        """(accounts owned, {account: IMAP connections}); (None, {}) when it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return None, {}
        m = re.search(r"^mailhook_cluster_accounts_owned (\S+)", text, re.M)
        conns = {name: float(v) for name, v in
                 re.findall(r'^mailhook_imap_connections\{account="([^"]+)"\} (\S+)', text, re.M)}
        return (int(float(m.group(1))) if m else None), conns

    def running(self):
        """The accounts with an IMAP connection here now."""
        return {name for name, v in self.metrics()[1].items() if v > 0}


class AnyAlive:
    """wait_all's `proc`: gives up only when no replica runs any more."""

    def __init__(self, replicas):
        self.replicas = replicas

    def poll(self):
        return None if any(r.alive() for r in self.replicas) else 1


def shares(replicas, n):
    """(settled, detail): owned sums to n, each replica within n/R ± 1, and every account has
    IMAP connections on exactly one replica."""
    owned, running = [], []
    for r in replicas:
        o, conns = r.metrics()
        running.append({name for name, v in conns.items() if v > 0})
        owned.append(len(running[-1]) if r.single and conns else o)
    union = set().union(*running)
    fair = n / len(replicas)
    ok = (None not in owned and sum(owned) == n and all(abs(o - fair) <= 1 for o in owned)
          and len(union) == n and sum(len(s) for s in running) == n)
    return ok, {"owned": owned, "running": [len(s) for s in running]}


def wait_settled(replicas, n, timeout):
    t0 = time.monotonic()
    detail = None
    while time.monotonic() - t0 < timeout:
        ok, detail = shares(replicas, n)
        if ok:
            return time.monotonic() - t0, detail
        for r in replicas:
            if not r.alive():
                raise RuntimeError(f"a replica exited while settling: {r.daemon.why()}")
        time.sleep(0.2)
    raise RuntimeError(f"shares not settled after {timeout} s: {detail}")


def append_one(i, msgid, subject):
    imap = login(i)
    imap.append("INBOX", None, None, benchlib.small_message(subject, msgid))
    imap.logout()


def login(i):
    import imaplib
    imap = imaplib.IMAP4("127.0.0.1", int(os.environ["DOVECOT_IMAP_PORT"]))
    imap.login(user(i), password(i))
    return imap


def warm_up(rx, n, label, timeout=60):
    """One message to every account, each until its event came (a message appended before
    its account's first SELECT is under the start_from: new baseline: sent again after 10 s)."""
    sent = {}  # account index -> [(msgid, appended at)]
    deadline = time.monotonic() + timeout
    while True:
        got = {msgid_of(ev) for _, ev, _ in list(rx.events)}
        missing = [i for i in range(1, n + 1) if not any(m in got for m, _ in sent.get(i, []))]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no warm-up event for {[account(i) for i in missing]} after {timeout} s")
        for i in missing:
            if not sent.get(i) or time.monotonic() - sent[i][-1][1] > 10:
                mid = f"<warmup-{label}-{account(i)}-{len(sent.get(i, []))}@bench.mailhook.invalid>"
                append_one(i, mid, f"bench warm-up {account(i)}")
                sent.setdefault(i, []).append((mid, time.monotonic()))
        time.sleep(0.2)


def appender(jobs, barrier, out):
    """Plain IMAP sessions, one per user of its share, opened before the start; then its
    messages as fast as it can. Start times go to out as (msgid, t0, t1, ok)."""
    sessions = {i: login(i) for i in sorted({j[0] for j in jobs})}
    barrier.wait()
    times = []
    for i, msgid, data in jobs:
        t0 = time.monotonic()
        typ, _ = sessions[i].append("INBOX", None, None, data)
        times.append((msgid, t0, time.monotonic(), typ == "OK"))
    for s in sessions.values():
        s.logout()
    out.put(times)


def burst(n, count, appenders, label):
    """count messages, message k to account k % n; an account's messages all go through the
    same appender (k % n % appenders), so each session APPENDs to one user."""
    jobs = [[] for _ in range(appenders)]
    for k in range(count):
        i = k % n + 1
        mid = f"<{label}-{k}@bench.mailhook.invalid>"
        jobs[(i - 1) % appenders].append((i, mid, benchlib.small_message(f"bench {label} #{k}", mid)))
    return benchlib.run_appenders(appender, [(j,) for j in jobs])


def deliveries(rx, ids):
    """{msgid: [event id, ...]} of every POST (all answered 204) carrying one of ids."""
    out = {}
    for _, ev, _ in list(rx.events):
        mid = msgid_of(ev)
        if mid in ids:
            out.setdefault(mid, []).append(ev.get("id"))
    return out


def dup_counts(rx, ids):
    per = deliveries(rx, ids)
    return {"messages_delivered_twice_or_more": sum(1 for v in per.values() if len(v) > 1),
            "of_them_under_different_event_ids": sum(1 for v in per.values() if len(set(v)) > 1),
            "extra_posts": sum(len(v) - 1 for v in per.values())}


def throughput(a, replicas, pg, rx, label):
    """The burst over every account: msgs/s, duplicates, CPU of the replicas, PostgreSQL and
    Dovecot over first APPEND -> last event, latency, peak RSS per replica."""
    log(f"  {len(replicas)} x mailhook: {a.count} APPENDs round robin over {a.accounts} accounts, {a.appenders} appenders")
    cpu0 = [benchlib.proc_cpu_s(r.pid) for r in replicas]
    pg0, dov0, stat0 = pg.cpu_s() if pg else 0, benchlib.dovecot_cpu_s(), pg.counters() if pg else {}
    if pg:
        pg.reset_statements()
    sent = burst(a.accounts, a.count, a.appenders, label)
    t_first = min(s[1] for s in sent)
    t_last_append = max(s[2] for s in sent)
    ids = {s[0] for s in sent}
    got = wait_all(rx, ids, a.idle_timeout, AnyAlive(replicas))
    t_end = max(got.values()) if got else t_last_append
    cpu = sum(benchlib.proc_cpu_s(r.pid) for r in replicas) - sum(cpu0)
    pg_cpu, dov_cpu = (pg.cpu_s() - pg0 if pg else None), benchlib.dovecot_cpu_s() - dov0
    time.sleep(STATS_QUIET_S if pg else 1.0)  # late duplicates, if any; the backends' statistics
    stat1 = pg.counters() if pg else {}
    statements = pg.top_statements() if pg else None
    n = len(got)
    per_msg = lambda c: round(c * 1000 / n, 3) if n and c is not None else None  # noqa: E731
    return {
        "sent": len(sent),
        "append_failed": sum(1 for s in sent if not s[3]),
        "received": n,
        "append_s": round(t_last_append - t_first, 3),
        "append_msgs_per_s": round(len(sent) / (t_last_append - t_first), 1),
        "elapsed_s": round(t_end - t_first, 3),
        "msgs_per_s": round(n / (t_end - t_first), 1) if n else 0,
        "duplicates": dup_counts(rx, ids),
        "mailhook_cpu_s": round(cpu, 2),
        "mailhook_cpu_ms_per_msg": per_msg(cpu),
        "postgres_cpu_s": round(pg_cpu, 2) if pg else None,
        "postgres_cpu_ms_per_msg": per_msg(pg_cpu),
        "dovecot_cpu_s": round(dov_cpu, 2),
        "postgres_per_msg": {k: round((v - stat0.get(k, 0)) / n, 2) for k, v in stat1.items()
                             if n and v != stat0.get(k, 0)},
        "postgres_top_statements": statements,
        "latency": stats([(got[s[0]] - s[1]) * 1000 for s in sent if s[0] in got]),
        "replicas": [{"peak_rss_kib": r.daemon.status("VmHWM"), "rss_kib": r.daemon.status("VmRSS")}
                     for r in replicas],
    }


def seconds(duration):
    """A config duration ("5s", "500ms", "1m", "2h") in seconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration.strip())
    if not m:
        raise RuntimeError(f"--lease-ttl {duration!r}: want a number with ms, s, m or h")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def failover_round(a, replicas, rx, k, rng):
    """Kill -9 of replica 0, one APPEND to an account it ran, right away; the times from the
    kill until that message's event, until that account and until every account has IMAP
    connections on a survivor. Then replica 0 starts again and the shares settle.
    The kill waits a random part of a keeper round (TTL/3) first: a settle ends when the last
    lease moved, which is also when the victim renewed, and a kill at once would always find
    the leases fresh (the slowest case)."""
    victim, survivors = replicas[0], replicas[1:]
    pause = rng.uniform(0, seconds(a.lease_ttl) / 3)
    time.sleep(pause)
    mine = sorted(victim.running())
    if not mine:
        raise RuntimeError("replica 0 runs no account")
    moved = mine[k % len(mine)]
    i = int(moved[len("acct"):])
    mid = f"<failover-{k}-{moved}@bench.mailhook.invalid>"
    data = benchlib.small_message(f"bench failover {k}", mid)
    imap = login(i)  # open before the kill: the APPEND goes out right after it
    t_kill = time.monotonic()
    victim.kill9()
    imap.append("INBOX", None, None, data)
    t_appended = time.monotonic()
    imap.logout()
    victim.reap()
    t_event = t_moved = t_all = None
    deadline = t_kill + a.failover_timeout
    while time.monotonic() < deadline and None in (t_event, t_all):
        if t_event is None:
            hit = rx.wait_for(lambda ev: msgid_of(ev) == mid, 0)
            t_event = hit[0] if hit else None
        if t_all is None:
            now, running = time.monotonic(), [r.running() for r in survivors]
            if t_moved is None and any(moved in s for s in running):
                t_moved = now
            if len(set().union(*running)) == a.accounts:
                t_all = now
        time.sleep(0.05)
    since = lambda t: round(t - t_kill, 3) if t is not None else None  # noqa: E731
    res = {"round": k + 1, "paused_before_kill_s": round(pause, 3), "account": moved, "victim_accounts": len(mine), "append_s": since(t_appended),
           "kill_to_event_s": since(t_event), "kill_to_account_connected_s": since(t_moved),
           "kill_to_all_accounts_running_s": since(t_all)}
    victim.start()
    victim.daemon.wait_ready(victim.http_port, 60)
    res["resettle_after_restart_s"] = round(wait_settled(replicas, a.accounts, a.settle_timeout)[0], 1)
    res["duplicates"] = dup_counts(rx, {mid})
    log(f"    round {k + 1}: {moved} (of {len(mine)}): kill -> event {res['kill_to_event_s']} s, "
        f"-> all accounts running {res['kill_to_all_accounts_running_s']} s; "
        f"settled again {res['resettle_after_restart_s']} s after the restart")
    return res


def summary(rounds, key):
    vals = sorted(r[key] for r in rounds if r[key] is not None)
    if not vals:
        return {"n": 0}
    return {"n": len(vals), "min_s": vals[0], "median_s": round(statistics.median(vals), 3), "max_s": vals[-1]}


def run_one(a, spec, label, with_failover, facts):
    """R replicas on a fresh PostgreSQL (spec "sqlite": one daemon on SQLite, the default
    store, as the baseline): settle, warm up, the burst, and failover if asked."""
    r_count = 1 if spec == "sqlite" else int(spec)
    pg = None if spec == "sqlite" else Postgres(a.work, label, a.pg_statements)
    if pg:
        facts.setdefault("postgres_version", pg.version())
    secret = benchlib.new_secret()
    rx = benchlib.Receiver(secret)
    store = f"store:\n  url: {json.dumps(pg.url)}\n  lease_ttl: {a.lease_ttl}\n" if pg else ""
    replicas = [Replica(a, os.path.join(a.work, label), k, rx.port, secret, store) for k in range(r_count)]
    try:
        t0 = time.monotonic()
        for r in replicas:
            r.start()
        for r in replicas:
            r.daemon.wait_ready(r.http_port, 60)
        _, detail = wait_settled(replicas, a.accounts, a.settle_timeout)
        tag = f"R={r_count}" if pg else "SQLite"
        res = {"replicas_n": r_count, "store": "postgresql" if pg else "sqlite", "settled_after_start_s": round(time.monotonic() - t0, 1),
               "owned": detail["owned"]}
        log(f"  {tag}: settled {res['settled_after_start_s']} s after the start: owned {detail['owned']}")
        warm_up(rx, a.accounts, label)
        time.sleep(STATS_QUIET_S if pg else 1.0)  # back in IDLE; the warm-up's statistics reported
        res.update(throughput(a, replicas, pg, rx, label))
        log(f"  {tag}: {res['received']}/{res['sent']} in {res['elapsed_s']} s = {res['msgs_per_s']} msgs/s")
        if with_failover:
            log(f"  {tag}: {a.failover_rounds} failover rounds (lease_ttl {a.lease_ttl})")
            rng = random.Random(a.seed)
            rounds = [failover_round(a, replicas, rx, k, rng) for k in range(a.failover_rounds)]
            res["failover"] = {"lease_ttl": a.lease_ttl, "rounds": rounds,
                               "kill_to_event": summary(rounds, "kill_to_event_s"),
                               "kill_to_all_accounts_running": summary(rounds, "kill_to_all_accounts_running_s")}
        return res
    finally:
        for r in replicas:
            if r.alive():
                r.daemon.proc.send_signal(signal.SIGTERM)
        for r in replicas:
            if r.daemon:
                r.daemon.stop()
        rx.stop()
        if pg:
            pg.stop()


def unit(v, suffix=""):
    return "–" if v is None else f"{v}{suffix}"


def report(runs):
    """The table on stderr, as the other benches print theirs."""
    log("\n| replicas | msgs/s (APPENDs alone) | received / sent | duplicates | mailhook CPU/msg | "
        "PostgreSQL CPU/msg | PostgreSQL commits/msg | Dovecot CPU | latency p50 / p99 | peak RSS per replica |")
    log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in runs:
        lat = r["latency"]
        rss = ", ".join(f"{x['peak_rss_kib'] / 1024:.1f}" for x in r["replicas"] if x["peak_rss_kib"])
        name = r["replicas_n"] if r["store"] == "postgresql" else "1, SQLite"
        log(f"| {name} | {r['msgs_per_s']} ({r['append_msgs_per_s']}) | {r['received']} / {r['sent']} | "
            f"{r['duplicates']['messages_delivered_twice_or_more']} | {r['mailhook_cpu_ms_per_msg']} ms | "
            f"{unit(r['postgres_cpu_ms_per_msg'], ' ms')} | {unit(r['postgres_per_msg'].get('db.xact_commit'))} | "
            f"{r['dovecot_cpu_s']} s | {lat.get('p50_ms')} / "
            f"{lat.get('p99_ms')} ms | {rss} MiB |")
    for r in runs:
        f = r.get("failover")
        if not f:
            continue
        log(f"\nfailover, {r['replicas_n']} replicas, lease_ttl {f['lease_ttl']}, {len(f['rounds'])} rounds "
            "(min / median / max, s from the kill -9):")
        for key, what in (("kill_to_event", "the moved account's first event"),
                          ("kill_to_all_accounts_running", "every account running on the survivors")):
            s = f[key]
            log(f"  {what}: " + (f"{s['min_s']} / {s['median_s']} / {s['max_s']}" if s["n"] else "never"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--accounts", type=int, default=30)
    ap.add_argument("--count", type=int, default=1500)
    ap.add_argument("--appenders", type=int, default=4)
    ap.add_argument("--replicas-list", default="1,3")
    ap.add_argument("--failover-rounds", type=int, default=3)
    ap.add_argument("--lease-ttl", default="5s")
    ap.add_argument("--seed", type=int, default=1, help="of the pauses before the kills")
    ap.add_argument("--account-keys", default="")
    ap.add_argument("--pg-statements", action="store_true",
                    help="PostgreSQL with pg_stat_statements: the burst's top statements in the result")
    ap.add_argument("--settle-timeout", type=float, default=120.0)
    ap.add_argument("--failover-timeout", type=float, default=90.0)
    ap.add_argument("--idle-timeout", type=float, default=60.0,
                    help="give up waiting once no event came for this long, seconds")
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    counts = a.replicas_list.split(",")
    biggest = max([int(c) for c in counts if c != "sqlite"] or [0])
    facts = json.loads(a.facts)
    runs = []
    run_id = datetime.datetime.now().strftime("%H%M%S")
    failover_left = a.failover_rounds > 0 and biggest >= 2
    for r_count in counts:
        failover = failover_left and r_count == str(biggest)  # once, even if the list repeats it
        failover_left = failover_left and not failover
        runs.append(run_one(a, r_count, f"{'' if r_count == 'sqlite' else 'r'}{r_count}-{run_id}", failover, facts))
    result = {
        "benchmark": "cluster",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "facts": facts,
        "method": {
            "setup": f"per replica count R: a fresh private PostgreSQL (scripts/postgres: fsync off, on the work "
                     f"dir's file system), one Dovecot with {a.accounts} users (user01…, scripts/dovecot "
                     "--extra-users), R `mailhook run` with the same config (own state_dir and http.listen): "
                     f"{a.accounts} accounts (INBOX, implicit TLS, start_from: new), one webhook to a python "
                     f"receiver, store: url postgresql://…@127.0.0.1 (scram-sha-256), lease_ttl {a.lease_ttl}",
            "settled": "sum of mailhook_cluster_accounts_owned == accounts, each replica within accounts/R ± 1, "
                       "and every account with mailhook_imap_connections > 0 on exactly one replica; then one "
                       "warm-up message per account, each waited for",
            "burst": f"{a.count} small messages, message k to account k % {a.accounts}, {a.appenders} python "
                     "imaplib appenders (plain port), each holding the sessions of its accounts",
            "msgs_per_s": "received / (last event received - first APPEND started); events matched by Message-ID",
            "duplicates": "Message-IDs POSTed more than once (every POST is answered 204)",
            "cpu": "utime+stime from /proc/<pid>/stat over first APPEND -> last event: mailhook summed over the "
                   "replicas; PostgreSQL = the postmaster and every process below it with their reaped "
                   "children; Dovecot likewise from its master",
            "postgres_top_statements": "with --pg-statements: pg_stat_statements (reset before the burst, read "
                                       "with postgres_per_msg), the 25 statements that took the most time, lock "
                                       "waits included; blocks = shared buffers hit + read",
            "postgres_per_msg": "per message received, the changes over the burst (read 11 s after the last "
                                "event, and 11 s after the warm-up: PostgreSQL 15's backends report theirs up to "
                                "10 s after they went idle) of pg_stat_database of the mailhook database (db.*: commits, rollbacks, "
                                "rows inserted/updated/deleted/fetched) and of pg_stat_user_tables (<table>.*: "
                                "rows inserted/updated/deleted, scans and rows they read); includes the lease "
                                "keepers' rounds meanwhile; counters that did not change are left out",
            "peak_rss": "VmHWM of each replica after the burst",
            "failover": "with the largest R (>= 2), per round: after a pause drawn from [0, lease_ttl/3) "
                        "(seeded), an account with IMAP connections on replica 0, kill -9 of replica 0, at once one APPEND to that account (session opened before the "
                        "kill); times from the kill until its event arrived, until a survivor had connections "
                        "for that account, and until every account had connections on a survivor (metrics "
                        "polled every ~50 ms); then replica 0 starts again with the same state_dir and the "
                        "shares settle before the next round",
            "percentiles": "nearest rank",
        },
        "runs": runs,
    }
    benchlib.write_result(a.out, result)
    report(runs)
    line = {"benchmark": "cluster", "accounts": a.accounts, "count": a.count, "result": a.out}
    for r in runs:
        line["sqlite" if r["store"] == "sqlite" else f"r{r['replicas_n']}"] = {"msgs_per_s": r["msgs_per_s"], "received": r["received"],
                                       "duplicates": r["duplicates"]["messages_delivered_twice_or_more"],
                                       "cpu_ms_per_msg": r["mailhook_cpu_ms_per_msg"],
                                       "postgres_cpu_ms_per_msg": r["postgres_cpu_ms_per_msg"]}
        if r.get("failover"):
            line["failover"] = {"lease_ttl": a.lease_ttl, "kill_to_event_s": r["failover"]["kill_to_event"],
                                "kill_to_all_running_s": r["failover"]["kill_to_all_accounts_running"]}
    print(json.dumps(line))


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"bench/cluster: {e}", file=sys.stderr)
        sys.exit(1)
