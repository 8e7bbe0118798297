"""bench/soak driver: mailhook under a storm of faults for a chosen time, then a
drain with no faults, then what reached the receiver.

Setup: a private Dovecot (started by bench/soak), alice's folders INBOX, Soak1,
Soak2 watched by one `mailhook run` through a loopback TCP proxy (soak_proxy.py)
over implicit TLS, one webhook to a receiver in this process. Messages are
APPENDed on Dovecot's plain port (not through the proxy), round robin over the
folders, one every --interval seconds; each has a unique Message-ID (the marker).

Faults, one after the other at seeded random times after a warm-up (the schedule
is printed first):
  reset            the proxy RSTs every forwarding connection
  blackhole        the proxy forwards nothing for a while, connections kept open
  kill9            SIGKILL of mailhook, restarted with the same config and state
  http503          the receiver answers 503 for a while
  dovecot_restart  scripts/dovecot stop + start (appends pause meanwhile, as an
                   MTA would queue)

Counts, over messages whose APPEND was answered OK:
  delivered        a POST carrying it was answered 2xx
  lost             never answered 2xx by the end of the drain
  dup_after_2xx    answered 2xx under two or more different event ids
  redeliveries     extra 2xx answers with an id already answered 2xx (allowed:
                   at-least-once with a stable id)
An APPEND that failed with an error is "uncertain" (it may or may not be in the
folder) and counted apart. Measures; asserts nothing."""

import argparse
import base64
import collections
import datetime
import http.server
import imaplib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import benchlib
import soak_proxy

FOLDERS = ["INBOX", "Soak1", "Soak2"]
KINDS = ["reset", "blackhole", "kill9", "http503", "dovecot_restart"]


class Receiver:
    """Records every POST: (t, webhook-id, Message-ID, status); answers 503 while failing."""

    def __init__(self, secret):
        # benchlib.Receiver's signature check, on this receiver's key.
        self.key = base64.b64decode(secret.split("_", 1)[1])
        self.failing = False
        self.posts = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = benchlib.Receiver._verify(outer, self.headers, body)
                status = 503 if outer.failing else (204 if ok else 400)
                try:
                    ev = json.loads(body)
                    mid, typ = ev.get("message", {}).get("message_id"), ev.get("type")
                except (ValueError, AttributeError):
                    mid = typ = None
                # Recorded before the answer: a 2xx counts once it is sent.
                with outer.lock:
                    outer.posts.append((time.monotonic(), self.headers.get("webhook-id"), mid, status, typ))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ok_ids(self):
        """{Message-ID: [event ids of its 2xx answers, in order]}"""
        out = collections.defaultdict(list)
        with self.lock:
            for _, eid, mid, st, _ in self.posts:
                if 200 <= st < 300:
                    out[mid].append(eid)
        return out

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Daemon(benchlib.Daemon):
    """benchlib.Daemon that can be killed and started again, appending to one log."""

    def __init__(self, mailhook, work, config, secret):
        self.args = (mailhook, work, config, secret)
        self.starts = 0
        self._start()

    def _start(self):
        mailhook, work, config, secret = self.args
        self.log_path = os.path.join(work, "mailhook.log")
        self.pid_path = os.path.join(work, "mailhook.pid")
        env = dict(os.environ, BENCH_IMAP_PASSWORD="secret1", BENCH_WEBHOOK_SECRET=secret)
        self.log = open(self.log_path, "ab")
        wrapper = os.environ.get("BENCH_WRAPPER", "").split()
        self.proc = subprocess.Popen(wrapper + [mailhook, "run", "-c", config], stdout=self.log, stderr=self.log,
                                     env=env)
        self.t_start = time.monotonic()
        self.starts += 1
        with open(self.pid_path, "w") as f:
            f.write(str(self.proc.pid))

    def kill9_restart(self, down_s):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        time.sleep(down_s)
        self._start()


class Appender(threading.Thread):
    """One APPEND every interval seconds, round robin over FOLDERS, on Dovecot's plain port."""

    def __init__(self, seed, interval):
        super().__init__(daemon=True, name="soak-appender")
        self.seed, self.interval = seed, interval
        self.ok = {}  # Message-ID -> (t, folder)
        self.uncertain = {}
        self.errors = 0
        self.resolved = 0  # APPENDs that failed but were found in the folder
        self.t_try = 0.0
        self.run_flag = threading.Event()  # cleared: paused
        self.run_flag.set()
        self.stop_flag = threading.Event()
        self.busy = threading.Lock()  # held during one APPEND; pause() waits for it
        self.n = 0

    def pause(self):
        self.run_flag.clear()
        with self.busy:
            pass

    def resume(self):
        self.run_flag.set()

    def append(self, imap, folder, mid):
        """APPENDs one message; returns the connection to use next (None: make a new one).
        An APPEND that failed with an error is looked up by its Message-ID on a new
        connection: found, it counts as appended; not found, it is sent again (at most 5 tries).
        Only when every try fails is it "uncertain"."""
        msg = benchlib.small_message(f"soak {self.n - 1}", mid)
        for attempt in range(5):
            try:
                if imap is None:
                    imap = benchlib.imap_login()
                if attempt and self.present(imap, folder, mid):
                    self.ok[mid] = (self.t_try, folder)
                    self.resolved += 1
                    return imap
                self.t_try = time.monotonic()
                typ, _ = imap.append(folder, None, None, msg)
                if typ == "OK":
                    self.ok[mid] = (self.t_try, folder)
                else:
                    self.errors += 1
                return imap
            except (OSError, imaplib.IMAP4.error, EOFError):
                self.errors += 1
                try:
                    imap.shutdown()
                except Exception:
                    pass
                imap = None
                self.stop_flag.wait(1.0)
        self.uncertain[mid] = (self.t_try, folder)
        return None

    @staticmethod
    def present(imap, folder, mid):
        typ, _ = imap.select(folder, readonly=True)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"SELECT {folder} failed")
        typ, data = imap.uid("SEARCH", None, "HEADER", "Message-ID", f'"{mid}"')
        imap.close()
        if typ != "OK":
            raise imaplib.IMAP4.error("SEARCH failed")
        return bool(data and data[0] and data[0].split())

    def run(self):
        imap = None
        next_t = time.monotonic()
        while not self.stop_flag.is_set():
            self.stop_flag.wait(max(0.0, next_t - time.monotonic()))
            next_t = max(next_t + self.interval, time.monotonic())  # no catch-up burst after a pause
            if self.stop_flag.is_set():
                break
            self.run_flag.wait()
            with self.busy:
                if not self.run_flag.is_set():
                    continue
                folder = FOLDERS[self.n % len(FOLDERS)]
                mid = f"<soak-{self.seed}-{self.n}@bench.invalid>"
                self.n += 1
                imap = self.append(imap, folder, mid)
        if imap is not None:
            try:
                imap.logout()
            except Exception:
                pass


def schedule(seed, warmup, duration, mean_gap):
    """[(t_start, kind, seconds)] one after the other, all ending before duration."""
    rng = random.Random(seed)
    out, t = [], warmup
    while True:
        t += max(10.0, rng.expovariate(1.0 / mean_gap))
        kind = rng.choice(KINDS)
        dur = {"reset": 0.0, "blackhole": rng.uniform(20, 90), "kill9": rng.uniform(1, 15),
               "http503": rng.uniform(10, 60), "dovecot_restart": rng.uniform(1, 10)}[kind]
        if t + dur > duration:
            return out
        out.append((round(t, 1), kind, round(dur, 1)))
        t += dur


def write_config(path, work, proxy_port, receiver_port, http_port, idle_refresh, retry):
    extra = f"    idle_refresh: {idle_refresh}\n" if idle_refresh != "default" else ""
    with open(path, "w") as f:
        f.write(f"""# Written by bench/soak for one run: the defaults, plus what a soak needs.
state_dir: {work}/state
log: {{ level: {os.environ.get("BENCH_LOG_LEVEL", "info")}, format: text }}
http: {{ listen: "127.0.0.1:{http_port}" }}

accounts:
  - name: soak
    host: 127.0.0.1
    port: {proxy_port}
    tls: implicit
    ca_file: {os.environ["DOVECOT_CA_FILE"]}
    username: alice
    password: ${{BENCH_IMAP_PASSWORD}}
    folders: {json.dumps(FOLDERS)}
    start_from: new
{extra}
webhooks:
  - name: soak
    url: http://127.0.0.1:{receiver_port}/events
    secret: ${{BENCH_WEBHOOK_SECRET}}
    retry_schedule: {retry}
""")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def dovecot(cmd):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = [os.path.join(root, "scripts", "dovecot"), cmd, os.environ["DOVECOT_DIR"]]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


class Soak:
    def __init__(self, a):
        self.a = a
        self.secret = benchlib.new_secret()
        self.rx = Receiver(self.secret)
        self.proxy = soak_proxy.Proxy(int(os.environ["DOVECOT_IMAPS_PORT"]))
        self.http_port = benchlib.free_port()
        self.cfg = os.path.join(a.work, "mailhook.yaml")
        write_config(self.cfg, a.work, self.proxy.port, self.rx.port, self.http_port, a.idle_refresh, a.retry_schedule)
        self.app = Appender(a.seed, a.interval)
        self.faults = []  # (t, kind, seconds, note)
        self.rss = []  # (t, pid, kib)
        self.t0 = None
        self.d = None

    def fault(self, kind, dur):
        note = ""
        if kind == "reset":
            note = f"{self.proxy.reset()} connections reset"
        elif kind == "blackhole":
            n = self.proxy.hole_start()
            time.sleep(dur)
            self.proxy.hole_end()
            note = f"{n} connections black-holed"
        elif kind == "kill9":
            self.proxy.mark_kill()
            self.sample_rss()
            self.d.kill9_restart(dur)
            note = f"pid now {self.d.proc.pid}"
        elif kind == "http503":
            self.rx.failing = True
            time.sleep(dur)
            self.rx.failing = False
        elif kind == "dovecot_restart":
            self.app.pause()
            t = time.monotonic()
            dovecot("stop")
            time.sleep(dur)
            dovecot("start")
            self.app.resume()
            note = f"appends paused {time.monotonic() - t:.1f} s"
        return note

    def sample_rss(self):
        if self.d.proc.poll() is None:
            self.rss.append((round(time.monotonic() - self.t0, 1), self.d.proc.pid, rss_kib(self.d.proc.pid)))

    def wait_until(self, t_rel):
        while True:
            left = self.t0 + t_rel - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 10.0))
            if not self.rss or time.monotonic() - self.t0 - self.rss[-1][0] >= 30:
                self.sample_rss()

    def run(self):
        a = self.a
        duration = a.minutes * 60
        warmup = 60.0 if duration >= 300 else 30.0
        plan = schedule(a.seed, warmup, duration, a.mean_gap)
        print(f"soak: seed {a.seed}, {a.minutes} min, warm-up {warmup:.0f} s, one APPEND every {a.interval} s over "
              f"{len(FOLDERS)} folders, idle_refresh {a.idle_refresh}, retry_schedule {a.retry_schedule}", flush=True)
        print(f"fault schedule ({len(plan)} faults; seconds from the start):", flush=True)
        for t, kind, dur in plan:
            print(f"  {t:7.1f}  {kind:<16} {dur:5.1f} s", flush=True)
        imap = benchlib.imap_login()
        for f in FOLDERS[1:]:
            imap.create(f)
        imap.logout()
        self.d = Daemon(a.mailhook, a.work, self.cfg, self.secret)
        self.d.wait_ready(self.http_port, 60)
        self.t0 = time.monotonic()
        self.app.start()
        self.wait_until(warmup)
        self.sample_rss()
        rss_warm = self.rss[-1]
        log(f"warm-up done: RSS {rss_warm[2]} KiB")
        for t, kind, dur in plan:
            self.wait_until(t)
            t_real = round(time.monotonic() - self.t0, 1)
            log(f"fault {kind} ({dur} s)")
            note = self.fault(kind, dur)
            self.faults.append((t_real, kind, dur, note))
            log(f"fault {kind} done: {note}")
        self.wait_until(duration)
        self.app.stop_flag.set()
        self.app.join()
        t_end = round(time.monotonic() - self.t0, 1)
        log(f"appends stopped ({len(self.app.ok)} OK); draining (at most {a.drain_max} s)")
        drained = self.drain(a.drain_max)
        time.sleep(5)  # late redeliveries
        self.sample_rss()
        return self.result(plan, rss_warm, t_end, drained)

    def drain(self, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            got = self.rx.ok_ids()
            if all(mid in got for mid in self.app.ok):
                return round(time.monotonic() - self.t0, 1)
            time.sleep(1)
            if time.monotonic() - self.t0 - self.rss[-1][0] >= 30:
                self.sample_rss()
        return None

    def result(self, plan, rss_warm, t_end, drained):
        got = self.rx.ok_ids()
        ok = self.app.ok
        delivered = [m for m in ok if m in got]
        lost = sorted(m for m in ok if m not in got)
        dup = {m: sorted(set(got[m])) for m in ok if len(set(got[m])) > 1}
        redeliveries = sum(len(v) - len(set(v)) for m, v in got.items() if m in ok)
        unc = self.app.uncertain
        with self.rx.lock:
            statuses = collections.Counter(str(p[3]) for p in self.rx.posts)
            foreign = sum(1 for p in self.rx.posts if p[2] not in ok and p[2] not in unc)
            # A message whose reading failed limits.max_attempts times (a connection lost during
            # its FETCH counts as an attempt) arrives as message.unprocessable, without content.
            types = collections.Counter(p[4] for p in self.rx.posts if 200 <= p[3] < 300)
            unprocessable = sorted({p[2] for p in self.rx.posts if 200 <= p[3] < 300 and p[4] != "message.received"})
        lat = sorted(got_t - ok[m][0] for m, got_t in self.first_ok_times().items() if m in ok)
        logtext = self.d.log_text()
        # Event names only ("<time> <level> <component> <event> key=value ..."), not words in values.
        events = collections.Counter(m.group(1) + " " + m.group(2)
                                     for m in re.finditer(r"^\S+ ([A-Z]) \S+ ([a-z_]+\.[a-z_.]+)", logtext, re.M))
        per_kind = collections.Counter(k for _, k, _, _ in self.faults)
        black_open = self.proxy.black_open()
        det = sorted(self.proxy.detections)
        rss_end = self.rss[-1]
        return {
            "benchmark": "soak",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "facts": json.loads(self.a.facts),
            "method": {"minutes": self.a.minutes, "seed": self.a.seed, "interval_s": self.a.interval,
                       "folders": FOLDERS, "mean_gap_s": self.a.mean_gap, "idle_refresh": self.a.idle_refresh,
                       "retry_schedule": self.a.retry_schedule, "drain_max_s": self.a.drain_max,
                       "schedule": plan},
            "appended_ok": len(ok),
            "delivered": len(delivered),
            "lost": len(lost),
            "lost_ids": lost[:50],
            "dup_after_2xx": len(dup),
            "dup_after_2xx_detail": dict(list(dup.items())[:20]),
            "redeliveries_same_id": redeliveries,
            "uncertain_appends": len(unc),
            "uncertain_delivered": sum(1 for m in unc if m in got),
            "append_errors": self.app.errors,
            "append_errors_found_in_folder": self.app.resolved,
            "posts_by_status": dict(statuses),
            "posts_not_ours": foreign,
            "events_2xx_by_type": dict(types),
            "delivered_not_as_received": unprocessable,
            "latency_s": {"p50": benchlib.percentile(lat, 50), "p90": benchlib.percentile(lat, 90),
                          "p99": benchlib.percentile(lat, 99), "max": lat[-1] if lat else None},
            "appends_stopped_at_s": t_end,
            "all_delivered_at_s": drained,
            "faults_injected": dict(per_kind),
            "faults": self.faults,
            "blackhole": {"detection_s": det, "closed_by_kill9": self.proxy.closed_by_kill,
                          "still_open_at_end_s": black_open},
            "proxy": {"accepted": self.proxy.accepted, "reset": self.proxy.resets,
                      "upstream_refused": self.proxy.upstream_failures},
            "mailhook_starts": self.d.starts,
            "rss_kib": {"after_warmup": rss_warm[2], "warmup_pid": rss_warm[1], "end": rss_end[2],
                        "end_pid": rss_end[1],
                        "end_process_age_s": round(time.monotonic() - self.d.t_start, 1),
                        "max": max(r[2] for r in self.rss if r[2]), "per_process": self.per_process(),
                        "samples": self.rss},
            "log_events": dict(events.most_common()),
        }

    def per_process(self):
        """[{pid, first and last sample}]: kill -9 starts a new process, whose RSS starts again."""
        out = {}
        for t, pid, kib in self.rss:
            e = out.setdefault(pid, {"pid": pid, "first_s": t, "first_kib": kib})
            e.update(last_s=t, last_kib=kib)
        return list(out.values())

    def first_ok_times(self):
        out = {}
        with self.rx.lock:
            for t, _, mid, st, _ in self.rx.posts:
                if 200 <= st < 300 and mid not in out:
                    out[mid] = t
        return out

    def stop(self):
        self.app.stop_flag.set()
        self.app.run_flag.set()
        if self.d is not None:
            self.d.stop()
        self.proxy.stop()
        self.rx.stop()


def report(r):
    k = r["rss_kib"]
    lines = [
        f"appended (APPEND OK) {r['appended_ok']}; delivered {r['delivered']}; lost {r['lost']}; "
        f"duplicated after 2xx (different ids) {r['dup_after_2xx']}; redeliveries of the same id "
        f"{r['redeliveries_same_id']}; 2xx events by type {r['events_2xx_by_type']}",
        f"uncertain APPENDs (failed with an error) {r['uncertain_appends']}, of them delivered "
        f"{r['uncertain_delivered']}; POSTs by status {r['posts_by_status']}",
        f"latency APPEND -> first 2xx: {r['latency_s']}",
        f"faults injected: {r['faults_injected']}; mailhook started {r['mailhook_starts']} times",
        f"black holes: detection (s) {r['blackhole']['detection_s']}, ended by kill -9 "
        f"{r['blackhole']['closed_by_kill9']}, still open at the end {r['blackhole']['still_open_at_end_s']}",
        f"RSS after warm-up {k['after_warmup']} KiB (pid {k['warmup_pid']}); at the end {k['end']} KiB "
        f"(pid {k['end_pid']}, up {k['end_process_age_s']} s); max {k['max']} KiB",
        f"all delivered at {r['all_delivered_at_s']} s (appends stopped at {r['appends_stopped_at_s']} s)",
    ]
    if r["lost"]:
        lines.append(f"LOST: {r['lost_ids']}")
    if r["dup_after_2xx"]:
        lines.append(f"DUPLICATED: {r['dup_after_2xx_detail']}")
    print("\n".join(lines), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interval", type=float, default=1.5)
    ap.add_argument("--mean-gap", type=float, default=40)
    ap.add_argument("--idle-refresh", default="2m")
    ap.add_argument("--retry-schedule", default="[5s, 15s, 30s, 1m, 2m, 2m, 2m, 2m, 2m, 2m]")
    ap.add_argument("--drain-max", type=float, default=360)
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    s = Soak(a)
    try:
        r = s.run()
    finally:
        s.stop()
    benchlib.write_result(a.out, r)
    report(r)
    print(f"written: {a.out}")


if __name__ == "__main__":
    try:
        main()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"bench/soak: {e}", file=sys.stderr)
        sys.exit(1)
