"""bench/scale's measuring half (run by bench/scale, which owns setup, the Dovecot settings
for many sessions, and cleanup). Creates the folders, starts the watcher on all of them,
and measures the time until it is ready, its RSS, connections, threads and fds, and the time
until one new message in every folder has become a webhook."""

import argparse
import datetime
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402
from latency_driver import stats  # noqa: E402


def user(i):
    return f"bench{i:03d}"


def folders(m):
    return ["INBOX"] + [f"F{k:02d}" for k in range(1, m)]


def create_folders(n, m):
    import imaplib
    for i in range(1, n + 1):
        imap = imaplib.IMAP4("127.0.0.1", int(os.environ["DOVECOT_IMAP_PORT"]))
        imap.login(user(i), "secret1")
        for f in folders(m)[1:]:
            typ, data = imap.create(f)
            if typ != "OK" and b"exists" not in b" ".join(data).lower():
                raise RuntimeError(f"CREATE {f} for {user(i)}: {data}")
        imap.logout()


def appender(jobs, label, barrier, out):
    """Logs in as each user of its share and APPENDs one message to each of its folders."""
    import imaplib
    barrier.wait()
    times = []
    for u, fl in jobs:
        imap = imaplib.IMAP4("127.0.0.1", int(os.environ["DOVECOT_IMAP_PORT"]))
        imap.login(u, "secret1")
        for f in fl:
            msgid = f"<{label}-{u}-{f}@bench.mailhook.invalid>"
            data = benchlib.small_message(f"bench scale {u}/{f}", msgid)
            t0 = time.monotonic()
            typ, _ = imap.append(f, None, None, data)
            times.append((msgid, t0, typ == "OK"))
        imap.logout()
    out.put(times)


def deliver_round(n, m, label, appenders):
    jobs = [(user(i), folders(m)) for i in range(1, n + 1)]
    k = min(appenders, len(jobs))
    return benchlib.run_appenders(appender, [(jobs[j::k], label) for j in range(k)])


def dovecot_facts():
    """Dovecot's processes and their summed RSS (MiB), to see the server's side of the sessions."""
    with open(os.path.join(os.environ["DOVECOT_DIR"], "run", "master.pid")) as f:
        master = int(f.read().strip())
    procs = rss = imap = 0
    for p in benchlib.descendants(master):
        try:
            with open(f"/proc/{p}/status") as f:
                st = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        procs += 1
        rss += int(st.get("VmRSS", "0 kB").split()[0])
        if st.get("Name", "").strip() == "imap":
            imap += 1
    return {"processes": procs, "imap_processes": imap, "rss_mib": round(rss / 1024, 1)}


def run_one(kind, a, run_id):
    work = os.path.join(a.work, kind)
    os.makedirs(work, exist_ok=True)
    secret = benchlib.new_secret()
    rx = benchlib.Receiver(secret)
    accounts = [(user(i), user(i), "secret1", folders(a.folders)) for i in range(1, a.accounts + 1)]
    http_port = benchlib.free_port()
    imap_port = int(os.environ["DOVECOT_IMAPS_PORT"])
    w = None
    try:
        t_start = time.monotonic()
        if kind == "mailhook":
            cfg = os.path.join(work, "mailhook.yaml")
            benchlib.write_accounts_config(cfg, work, rx.port, http_port, accounts, a.account_keys)
            w = benchlib.Daemon(a.mailhook, work, cfg, secret)
        else:
            w = benchlib.Peer(work, accounts, rx.port, secret)
        w.wait_ready(http_port, a.ready_timeout)
        t_ready = time.monotonic() - t_start
        print(f"  {kind}: ready after {t_ready:.1f} s", file=sys.stderr)
        time.sleep(a.settle)  # sessions enter IDLE; the numbers then are the steady state
        at_ready = benchlib.proc_facts(w.proc.pid, imap_port)
        dov_ready = dovecot_facts()

        want_n = a.accounts * a.folders
        print(f"  {kind}: one message to each of the {want_n} folders", file=sys.stderr)
        label = f"{kind}-{run_id}"
        sent = deliver_round(a.accounts, a.folders, label, a.appenders)
        want = {s[0]: s[1] for s in sent}
        got = {}
        seen = 0
        deadline = time.monotonic() + a.deliver_timeout
        with rx.cond:
            while len(got) < len(want) and time.monotonic() < deadline and w.proc.poll() is None:
                for t, ev, _ in rx.events[seen:]:
                    mid = (ev.get("message") or {}).get("message_id")
                    if mid in want:
                        got.setdefault(mid, t)
                seen = len(rx.events)
                if len(got) < len(want):
                    rx.cond.wait(0.5)
        t_first = min(want.values())
        t_all = (max(got.values()) - t_first) if got else None
        after = benchlib.proc_facts(w.proc.pid, imap_port) if w.proc.poll() is None else {}
        log = w.log_text()
        res = {
            "watcher": kind,
            "folders_watched": want_n,
            "ready_s": round(t_ready, 2),
            "at_ready": at_ready,
            "dovecot_at_ready": dov_ready,
            "sent": len(sent),
            "append_failed": sum(1 for s in sent if not s[2]),
            "append_s": round(max(s[1] for s in sent) - t_first, 2),
            "delivered": len(got),
            "all_delivered_s": round(t_all, 2) if t_all is not None and len(got) == len(want) else None,
            "last_delivered_s": round(t_all, 2) if t_all is not None else None,
            "latency": stats([(got[m] - want[m]) * 1000 for m in got]),
            # Folders whose message took longer than 10 s: a missed IDLE push shows up here (Dovecot
            # repeats one only at imap_idle_notify_interval, 2 min), not in the median.
            "late_over_10s": sorted(m for m in got if got[m] - want[m] > 10)[:50],
            "late_over_10s_count": sum(1 for m in got if got[m] - want[m] > 10),
            "after_delivery": after,
            "log_warnings": len(re.findall(r"(?im)\b(warn(ing)?|error)\b", log)),
        }
        return res
    finally:
        if w:
            w.stop()
        rx.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--folders", type=int, default=20)
    ap.add_argument("--notify", default="on")
    ap.add_argument("--watchers", default="mailhook")
    ap.add_argument("--account-keys", default="")
    ap.add_argument("--appenders", type=int, default=4)
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after ready before measuring")
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    ap.add_argument("--deliver-timeout", type=float, default=120.0)
    ap.add_argument("--inotify", default="")
    ap.add_argument("--inotify-note", default="")
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    run_id = datetime.datetime.now().strftime("%H%M%S")
    print(f"  creating {a.accounts} × {a.folders - 1} folders", file=sys.stderr)
    create_folders(a.accounts, a.folders)
    runs = [run_one(kind, a, run_id) for kind in a.watchers.split(",")]
    dlog = os.path.join(os.environ["DOVECOT_DIR"], "dovecot.log")
    dlog_text = open(dlog, errors="replace").read() if os.path.exists(dlog) else ""
    result = {
        "benchmark": "scale",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "facts": json.loads(a.facts),
        "accounts": a.accounts,
        "folders_per_account": a.folders,
        "dovecot": {"notify": a.notify, "mailbox_list_index": a.notify == "on",
                    "inotify_max_user_instances": a.inotify, "inotify_note": a.inotify_note or None,
                    "log_inotify_lines": len(re.findall(r"(?i)inotify", dlog_text)),
                    "log_limit_lines": len(re.findall(r"(?i)\[LIMIT\]|client_limit|process_limit", dlog_text))},
        "account_keys": a.account_keys or None,
        "method": {
            "ready": "from starting the process until /readyz answers 200 (mailhook: every watcher connected) "
                     "or the peer prints peer.ready (every folder open, IDLE sent)",
            "facts": f"{a.settle} s after ready and again after the delivery round: VmRSS, VmHWM, Threads from "
                     "/proc/<pid>/status, open fds, ESTABLISHED TCP sockets of the process (all, and to Dovecot's "
                     "imaps port)",
            "delivery": f"{a.appenders} python sessions APPEND one small message to every folder (plain port); "
                        "all_delivered_s = last webhook received - first APPEND",
        },
        "runs": runs,
    }
    benchlib.write_result(a.out, result)
    line = {"benchmark": "scale", "accounts": a.accounts, "folders": a.folders, "notify": a.notify,
            "result": a.out}
    for r in runs:
        f = r["at_ready"]
        line[r["watcher"]] = {
            "rss_mib": round(f["rss_kib"] / 1024, 1), "peak_rss_mib": round(
                (r["after_delivery"].get("peak_rss_kib") or f["peak_rss_kib"]) / 1024, 1),
            "imap_connections": f["established_imap"], "threads": f["threads"], "fds": f["fds"],
            "ready_s": r["ready_s"], "delivered": f"{r['delivered']}/{r['sent']}",
            "all_delivered_s": r["all_delivered_s"], "append_s": r["append_s"],
            "latency_p50_ms": r["latency"].get("p50_ms"), "latency_p99_ms": r["latency"].get("p99_ms"),
            "late_over_10s": r["late_over_10s_count"]}
    print(json.dumps(line))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"bench/scale: {e}", file=sys.stderr)
        sys.exit(1)
