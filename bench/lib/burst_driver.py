"""bench/burst's measuring half (run by bench/burst, which owns setup and cleanup).
For each watcher in turn (fresh state, a fresh empty folder, a fresh receiver), appends
COUNT messages as fast as parallel appenders can, and measures: throughput (first APPEND
-> last webhook received), the watcher's CPU per message, Dovecot's CPU over the same
window, latency per message (APPEND -> received) and the watcher's peak RSS."""

import argparse
import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402
from latency_driver import stats  # noqa: E402


def appender(folder, label, indices, barrier, out):
    """One plain IMAP session APPENDing its share as fast as it can; start times go to out."""
    imap = benchlib.imap_login()
    msgs = [(f"<{label}-{i}@bench.mailhook.invalid>", benchlib.small_message(f"bench {label} #{i}",
             f"<{label}-{i}@bench.mailhook.invalid>")) for i in indices]
    barrier.wait()
    times = []
    for msgid, data in msgs:
        t0 = time.monotonic()
        typ, _ = imap.append(folder, None, None, data)
        times.append((msgid, t0, time.monotonic(), typ == "OK"))
    imap.logout()
    out.put(times)


def burst(folder, label, count, appenders):
    """Appends count messages with `appenders` parallel sessions; [(msgid, t0, t1, ok)]."""
    return benchlib.run_appenders(appender, [(folder, label, range(k, count, appenders)) for k in range(appenders)])


def wait_all(rx, want, idle_timeout, proc):
    """Waits until every message id in want has an event, or nothing new came for
    idle_timeout seconds (or the watcher died). Returns {msgid: t_recv}."""
    got = {}
    seen = 0
    last_progress = time.monotonic()
    while True:
        with rx.cond:
            for t, ev, _ in rx.events[seen:]:
                mid = (ev.get("message") or {}).get("message_id")
                if mid in want and mid not in got:
                    got[mid] = t
                    last_progress = time.monotonic()
            seen = len(rx.events)
            if len(got) == len(want):
                return got
            if time.monotonic() - last_progress > idle_timeout or proc.poll() is not None:
                return got
            rx.cond.wait(0.5)


def run_one(kind, a, imap, run_id):
    """One watcher (mailhook | peer | none) through one burst; a result dict."""
    folder = f"burst-{kind}-{run_id}"
    typ, data = imap.create(folder)
    if typ != "OK":
        raise RuntimeError(f"CREATE {folder}: {data}")
    work = os.path.join(a.work, kind)
    os.makedirs(work, exist_ok=True)
    secret = benchlib.new_secret()
    rx = benchlib.Receiver(secret)
    w = None
    try:
        if kind != "none":
            http_port = benchlib.free_port()
            accounts = [("bench", "alice", "secret1", [folder])]
            if kind == "mailhook":
                cfg = os.path.join(work, "mailhook.yaml")
                benchlib.write_accounts_config(cfg, work, rx.port, http_port, accounts, a.account_keys)
                w = benchlib.Daemon(a.mailhook, work, cfg, secret)
            else:
                w = benchlib.Peer(work, accounts, rx.port, secret)
            w.wait_ready(http_port, 60)
            # Warm-up: the whole path works, the HTTP connection is made; not counted.
            wid = f"<warmup-{kind}-{run_id}@bench.mailhook.invalid>"
            imap.append(folder, None, None, benchlib.small_message("bench warm-up", wid))
            if rx.wait_for(lambda ev: (ev.get("message") or {}).get("message_id") == wid, 30) is None:
                raise RuntimeError(f"{kind}: the warm-up message never arrived; {w.why()}")
            time.sleep(1.0)  # back in IDLE
        print(f"  {kind}: {a.count} APPENDs to {folder} with {a.appenders} appenders", file=sys.stderr)
        cpu0 = benchlib.proc_cpu_s(w.proc.pid) if w else None
        by0 = benchlib.dovecot_cpu_by_process()
        sent = burst(folder, f"{kind}-{run_id}", a.count, a.appenders)
        t_first = min(s[1] for s in sent)
        t_last_append = max(s[2] for s in sent)
        got = {}
        if w:
            got = wait_all(rx, {s[0] for s in sent}, a.idle_timeout, w.proc)
        t_end = max(got.values()) if got else t_last_append
        by1 = benchlib.dovecot_cpu_by_process()
        cpu1 = benchlib.proc_cpu_s(w.proc.pid) if w and w.proc.poll() is None else None
        facts = benchlib.proc_facts(w.proc.pid) if w and w.proc.poll() is None else {}
        lat = [(got[s[0]] - s[1]) * 1000 for s in sent if s[0] in got]
        n = len(got)
        res = {
            "watcher": kind,
            "folder": folder,
            "sent": len(sent),
            "append_failed": sum(1 for s in sent if not s[3]),
            "received": n,
            "append_s": round(t_last_append - t_first, 3),
            "append_msgs_per_s": round(len(sent) / (t_last_append - t_first), 1),
            "dovecot_cpu_s": round(benchlib.snapshot_cpu_s(by1) - benchlib.snapshot_cpu_s(by0), 2),
            "dovecot_cpu_s_by_process": benchlib.cpu_by_name(by0, by1),
            "dovecot_cpu_s_per_imap_session": benchlib.session_cpu(by0, by1),
        }
        if w:
            elapsed = t_end - t_first
            cpu = (cpu1 - cpu0) if cpu1 is not None else None
            res.update({
                "elapsed_s": round(elapsed, 3),
                "msgs_per_s": round(n / elapsed, 1) if n else 0,
                "cpu_s": round(cpu, 2) if cpu is not None else None,
                "cpu_ms_per_msg": round(cpu * 1000 / n, 3) if cpu is not None and n else None,
                "latency": stats(lat),
                "peak_rss_kib": facts.get("peak_rss_kib"),
                "rss_kib_after": facts.get("rss_kib"),
                "threads": facts.get("threads"),
            })
        return res
    finally:
        if w:
            w.stop()
        rx.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--appenders", type=int, default=4)
    ap.add_argument("--watchers", default="none,mailhook,peer")
    ap.add_argument("--account-keys", default="")
    ap.add_argument("--idle-timeout", type=float, default=60.0,
                    help="give up waiting once no event came for this long, seconds")
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    run_id = datetime.datetime.now().strftime("%H%M%S")
    imap = benchlib.imap_login()
    runs = []
    try:
        for kind in a.watchers.split(","):
            runs.append(run_one(kind, a, imap, run_id))
    finally:
        try:
            imap.logout()
        except Exception:
            pass
    result = {
        "benchmark": "burst",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "facts": json.loads(a.facts),
        "method": {
            "path": f"{a.appenders} python imaplib sessions APPEND (plain port) {a.count} small messages as fast as "
                    "they can to a fresh empty folder -> Dovecot -> the watcher (IDLE over implicit TLS, "
                    "start_from: new) -> signed POST -> python receiver (monotonic clock shared with the appenders)",
            "watchers": "none: APPENDs alone (Dovecot's cost of the APPENDs); mailhook: `mailhook run`, "
                        "attachments: metadata; peer: bench/peer/peer.js (imapflow + mailparser, whole message "
                        "fetched and parsed, one POST at a time); each with fresh state and one warm-up message",
            "msgs_per_s": "received / (last webhook received - first APPEND started)",
            "cpu": "utime+stime from /proc/<pid>/stat, first APPEND -> last webhook",
            "dovecot_cpu": "utime+stime (+ reaped children) of the test Dovecot's master and all processes "
                           "below it over the same window; includes the APPENDs (see the 'none' run)",
            "dovecot_cpu_by_process": "the same per process name (comm); the appenders' sessions end "
                                      "within the window, so their imap processes count under 'dovecot' "
                                      "(the master, as reaped children); per_imap_session: each live "
                                      "imap process, i.e. the watcher's own sessions",
            "latency": "webhook received - right before that message's APPEND",
            "peak_rss": "VmHWM of the watcher at the end",
            "percentiles": "nearest rank",
        },
        "runs": runs,
    }
    benchlib.write_result(a.out, result)
    line = {"benchmark": "burst", "count": a.count, "result": a.out}
    for r in runs:
        k = r["watcher"]
        if k == "none":
            line["append_only_msgs_per_s"] = r["append_msgs_per_s"]
            line["append_only_dovecot_cpu_s"] = r["dovecot_cpu_s"]
            continue
        line[k] = {"received": r["received"], "msgs_per_s": r["msgs_per_s"], "cpu_ms_per_msg": r["cpu_ms_per_msg"],
                   "dovecot_cpu_s": r["dovecot_cpu_s"], "p50_ms": r["latency"].get("p50_ms"),
                   "p99_ms": r["latency"].get("p99_ms"), "peak_rss_mib": round(r["peak_rss_kib"] / 1024, 1)
                   if r.get("peak_rss_kib") else None}
    print(json.dumps(line))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"bench/burst: {e}", file=sys.stderr)
        sys.exit(1)
