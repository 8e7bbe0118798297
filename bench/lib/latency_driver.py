"""bench/latency's measuring half (run by bench/latency, which owns setup and
cleanup). Appends one message at a time and times APPEND → webhook receipt."""

import argparse
import datetime
import json
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402


class IdleProbe:
    """Our own plain IMAP session that IDLEs the way mailhook does (DONE, then a
    fresh IDLE after each new message). Used alone, before the daemon starts:
    APPEND -> its `* N EXISTS` is Dovecot's own notification delay, the floor
    any IDLE client sees. Alone, because one session's index writes start the
    notify timer of every other IDLE session on the folder, which would make
    both numbers wrong."""

    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", int(os.environ["DOVECOT_IMAP_PORT"])))
        self.f = self.sock.makefile("rb")
        self.tag = 0
        self.f.readline()  # greeting
        self._cmd(b"LOGIN alice secret1")
        self.exists = 0
        self._cmd(b"SELECT INBOX")

    def _line(self):
        line = self.f.readline()
        if not line:
            raise RuntimeError("IMAP probe connection closed")
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            self.exists = int(m.group(1))
        return line

    def _cmd(self, cmd):
        self.tag += 1
        tag = b"p%d" % self.tag
        self.sock.sendall(tag + b" " + cmd + b"\r\n")
        while True:
            line = self._line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                return

    def idle(self):
        self.tag += 1
        self.idle_tag = b"p%d" % self.tag
        self.sock.sendall(self.idle_tag + b" IDLE\r\n")
        while not self._line().startswith(b"+"):
            pass

    def wait_exists(self, count, timeout):
        """Time when EXISTS reached count, or None."""
        self.sock.settimeout(timeout)
        try:
            while self.exists < count:
                self._line()
            return time.monotonic()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.sock.settimeout(None)

    def done(self):
        self.sock.sendall(b"DONE\r\n")
        while not self._line().startswith(self.idle_tag + b" "):
            pass

    def close(self):
        try:
            self.sock.sendall(b"p0 LOGOUT\r\n")
            self.sock.close()
        except OSError:
            pass


def measure_floor(imap, count, pause_ms, run_id):
    probe = IdleProbe()
    out = []
    try:
        for i in range(count):
            probe.idle()
            time.sleep(pause_ms / 1000)
            want = probe.exists + 1
            data = benchlib.small_message(f"bench floor {run_id} #{i}", f"<floor-{run_id}-{i}@bench.mailhook.invalid>")
            t0 = time.monotonic()
            imap.append("INBOX", None, None, data)
            t = probe.wait_exists(want, 10)
            if t is not None:
                out.append((t - t0) * 1000)
            probe.done()
    finally:
        probe.close()
    return out


def stats(vals):
    s = sorted(vals)
    if not s:
        return {"n": 0}
    r = lambda v: round(v, 1)  # noqa: E731
    return {"n": len(s), "min_ms": r(s[0]), "p50_ms": r(benchlib.percentile(s, 50)),
            "p90_ms": r(benchlib.percentile(s, 90)), "p99_ms": r(benchlib.percentile(s, 99)),
            "max_ms": r(s[-1]), "mean_ms": r(sum(s) / len(s))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--floor-count", type=int, default=30)
    ap.add_argument("--pause-ms", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=15.0, help="per message, seconds")
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    ap.add_argument("--watcher", choices=["mailhook", "peer"], default="mailhook",
                    help="peer: the Node watcher in bench/peer instead of mailhook")
    a = ap.parse_args()

    run_id = datetime.datetime.now().strftime("%H%M%S")
    imap = benchlib.imap_login()
    d = rx = None
    try:
        # Phase 1: Dovecot alone. These messages predate the daemon, and
        # start_from: new leaves them out.
        floor_ms = []
        if a.floor_count > 0:
            print(f"  floor: {a.floor_count} messages to our own IDLE session, no daemon running", file=sys.stderr)
            floor_ms = measure_floor(imap, a.floor_count, a.pause_ms, run_id)

        # Phase 2: the daemon, and nothing else on the folder.
        secret = benchlib.new_secret()
        rx = benchlib.Receiver(secret)
        http_port = benchlib.free_port()
        if a.watcher == "peer":
            d = benchlib.Peer(a.work, [("bench", "alice", "secret1", ["INBOX"])], rx.port, secret)
        else:
            cfg = os.path.join(a.work, "mailhook.yaml")
            benchlib.write_config(cfg, a.work, rx.port, http_port)
            d = benchlib.Daemon(a.mailhook, a.work, cfg, secret)
            d.wait_log(r"imap\.connected", 30)
        d.wait_ready(http_port, 30)

        def append_and_wait(label, i):
            subject = f"bench {label} {run_id} #{i}"
            msgid = f"<{label}-{run_id}-{i}@bench.mailhook.invalid>"
            data = benchlib.small_message(subject, msgid)
            t0 = time.monotonic()  # right before APPEND
            imap.append("INBOX", None, None, data)
            t1 = time.monotonic()
            got = rx.wait_for(lambda ev: ev.get("message", {}).get("message_id") == msgid, a.timeout)
            return t0, t1, got

        # Warm-up: proves the whole path works and leaves the daemon back in IDLE
        # with its HTTP connection made; not counted.
        print(f"  warm-up: {a.warmup} messages", file=sys.stderr)
        for i in range(a.warmup):
            if append_and_wait("warmup", i)[2] is None:
                raise RuntimeError(f"warm-up message {i} never arrived; {d.why()}")
            time.sleep(a.pause_ms / 1000)

        print(f"  measuring: {a.count} messages, one at a time, next APPEND {a.pause_ms} ms after "
              "the previous event arrived", file=sys.stderr)
        samples = []
        lost = []
        bad_sig = 0
        t_start = time.monotonic()
        for i in range(a.count):
            t0, t1, got = append_and_wait("latency", i)
            if got is None:
                lost.append(i)
                if d.proc.poll() is not None:
                    raise RuntimeError(f"message {i} never arrived; {d.why()}")
            else:
                t_recv, ev, ok = got
                bad_sig += 0 if ok else 1
                samples.append({"i": i, "uid": ev.get("uid"), "latency_ms": (t_recv - t0) * 1000,
                                "append_ms": (t1 - t0) * 1000})
            if (i + 1) % 50 == 0:
                print(f"    {i + 1}/{a.count}", file=sys.stderr)
            time.sleep(a.pause_ms / 1000)
        elapsed = time.monotonic() - t_start
        time.sleep(1.0)  # stragglers of lost ones, and duplicates: count every event we got
        ids = [ev.get("id") for _, ev, _ in rx.events]
        duplicates = len(ids) - len(set(ids))
        late = len({ev.get("message", {}).get("message_id") for _, ev, _ in rx.events}) - a.warmup - len(samples)

        lat = stats([s["latency_ms"] for s in samples])
        floor = stats(floor_ms)
        app = stats([s["append_ms"] for s in samples])
        share = None
        if lat.get("n") and floor.get("n"):
            share = round(lat["p50_ms"] - floor["p50_ms"], 1)
        result = {
            "benchmark": "latency",
            "watcher": a.watcher,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "facts": json.loads(a.facts),
            "method": {
                "path": "python imaplib APPEND (plain port) -> Dovecot -> " + (
                    "mailhook run (IDLE over implicit TLS, ca_file, start_from: new, attachments: metadata)"
                    if a.watcher == "mailhook" else "bench/peer/peer.js (imapflow IDLE over implicit TLS, "
                    "whole message fetched, mailparser)") + " -> signed POST -> python receiver "
                        "(same process, monotonic clock; timestamp when the body had been read)",
                "pacing": f"closed loop: next APPEND {a.pause_ms} ms after the previous event arrived",
                "latency": "receipt time minus the time right before APPEND",
                "dovecot_floor": "separate phase before the daemon starts: APPEND -> '* N EXISTS' on our own "
                                 "plain IDLE session (DONE + fresh IDLE per message, as mailhook does). "
                                 "Dovecot batches IDLE notifications (~0.5 s): the floor for any IDLE client",
                "mailhook_share_p50": "latency p50 minus floor p50",
                "warmup_messages": a.warmup,
                "percentiles": "nearest rank",
            },
            "sent": a.count,
            "received": len(samples),
            "lost": lost,
            "arrived_after_timeout": max(0, late),
            "bad_signatures": bad_sig,
            "duplicate_events": duplicates,
            "elapsed_s": round(elapsed, 1),
            "peak_rss_kib": d.status("VmHWM") if d.proc.poll() is None else None,
            "latency": lat,
            "dovecot_floor": floor,
            "mailhook_share_p50_ms": share,
            "append_roundtrip": app,
            "samples": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in s.items()} for s in samples],
            "floor_samples_ms": [round(v, 2) for v in floor_ms],
        }
        benchlib.write_result(a.out, result)

        def line(name, st):
            if not st.get("n"):
                return f"  {name:<26} (no samples)"
            return (f"  {name:<26} p50 {st['p50_ms']:6.1f}  p90 {st['p90_ms']:6.1f}  p99 {st['p99_ms']:6.1f}  "
                    f"max {st['max_ms']:6.1f}  min {st['min_ms']:6.1f}  (n={st['n']})")
        print(f"""
{a.watcher} latency: APPEND -> signed webhook received, one message at a time
  received {len(samples)}/{a.count}, bad signatures {bad_sig}, duplicate events {duplicates}, {elapsed:.0f} s
  (ms)
{line('APPEND -> webhook', lat)}
{line('floor: APPEND -> EXISTS', floor)}
{line('APPEND round trip', app)}
  {a.watcher}'s share (p50 - floor p50): {share} ms
  Note: Dovecot batches IDLE notifications (~0.5 s after a change); that is the
  floor for any IDLE client, measured above on our own IDLE session, alone.
  Result: {a.out}
""")
    finally:
        try:
            imap.logout()
        except Exception:
            pass
        if d:
            d.stop()
        if rx:
            rx.stop()


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"bench/latency: {e}", file=sys.stderr)
        sys.exit(1)
