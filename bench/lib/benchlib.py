"""Shared pieces of the bench/ drivers: a webhook receiver that timestamps each
POST when its body has been read, the daemon's config and process, and an IMAP
appender on the plain port. Clocks are time.monotonic() in this one process, so
append and receipt times are directly comparable."""

import base64
import hashlib
import hmac
import http.server
import imaplib
import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.request


class Receiver:
    """HTTP server on 127.0.0.1:<any port>; every POST is timestamped on receipt
    (after its body was read, before parsing), its Standard Webhooks signature
    checked, and answered 204. Events are kept in arrival order."""

    def __init__(self, secret):
        self.secret = secret
        self.key = base64.b64decode(secret.split("_", 1)[1])
        self.events = []  # (t_recv, event dict, signature ok)
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                t = time.monotonic()  # receipt: the whole event is here
                ok = outer._verify(self.headers, body)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    ev = json.loads(body)
                except ValueError:
                    ev = {"_unparsable": body[:200].decode("utf-8", "replace")}
                with outer.cond:
                    outer.events.append((t, ev, ok))
                    outer.cond.notify_all()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _verify(self, headers, body):
        msg_id, ts, sig = (headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        if not (msg_id and ts and sig):
            return False
        mac = hmac.new(self.key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
        want = base64.b64encode(mac).decode()
        return any(s.split(",", 1)[-1] == want for s in sig.split())

    def wait_for(self, pred, timeout):
        """First (t, event, ok) for which pred(event) is true, or None after timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.events:
                    if pred(item[1]):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def new_secret():
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def write_config(path, work, receiver_port, http_port, attachments="metadata", log_level=os.environ.get("BENCH_LOG_LEVEL", "info")):
    with open(path, "w") as f:
        f.write(f"""# Written by bench/ for one run.
state_dir: {work}/state
log: {{ level: {log_level}, format: text }}
http: {{ listen: "127.0.0.1:{http_port}" }}

accounts:
  - name: bench
    host: 127.0.0.1
    port: {os.environ["DOVECOT_IMAPS_PORT"]}
    tls: implicit
    ca_file: {os.environ["DOVECOT_CA_FILE"]}
    username: alice
    password: ${{BENCH_IMAP_PASSWORD}}
    folders: [INBOX]
    start_from: new

webhooks:
  - name: bench
    url: http://127.0.0.1:{receiver_port}/events
    secret: ${{BENCH_WEBHOOK_SECRET}}
    attachments: {attachments}
    max_attachment_bytes: 104857600
    retry_schedule: [1s, 2s, 5s]
""")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """`mailhook run` as a child; its pid goes to WORK/mailhook.pid so the shell
    trap can stop it even if this process dies first."""

    def __init__(self, mailhook, work, config, secret):
        self.log_path = os.path.join(work, "mailhook.log")
        self.pid_path = os.path.join(work, "mailhook.pid")
        env = dict(os.environ, BENCH_IMAP_PASSWORD="secret1", BENCH_WEBHOOK_SECRET=secret)
        self.log = open(self.log_path, "wb")
        # BENCH_WRAPPER (e.g. "gdb -batch -ex run -ex bt --args") runs the daemon
        # under a tool; the figures are then the tool's, not mailhook's.
        wrapper = os.environ.get("BENCH_WRAPPER", "").split()
        self.proc = subprocess.Popen(wrapper + [mailhook, "run", "-c", config], stdout=self.log,
                                     stderr=self.log, env=env)
        with open(self.pid_path, "w") as f:
            f.write(str(self.proc.pid))

    def log_text(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout):
        """Waits until the log matches pattern; raises if the daemon exits or time runs out.
        The log is a file written by another process: polling it is the only way to watch it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rx.search(self.log_text()):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"mailhook run exited ({self.proc.returncode}):\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"no /{pattern}/ in the mailhook log after {timeout} s:\n{self.tail()}")

    def wait_ready(self, http_port, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"mailhook run exited ({self.proc.returncode}):\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"/readyz not 200 after {timeout} s:\n{self.tail()}")

    def status(self, key):
        """A /proc/<pid>/status field in kB (VmHWM, VmRSS, ...)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return None

    def why(self):
        """A line on the daemon's state, for a failure message."""
        rc = self.proc.poll()
        state = "running" if rc is None else f"EXITED with {rc}" + (" (signal %d)" % -rc if rc < 0 else "")
        return f"mailhook run is {state}; last log lines:\n{self.tail()}"

    def tail(self, n=30):
        return "\n".join(self.log_text().splitlines()[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def imap_login():
    imap = imaplib.IMAP4("127.0.0.1", int(os.environ["DOVECOT_IMAP_PORT"]))
    imap.login("alice", "secret1")
    return imap


def small_message(subject, msgid):
    return (f"Message-ID: {msgid}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
            "From: Bench <bench@example.com>\r\n"
            "To: alice@example.com\r\n"
            f"Subject: {subject}\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "\r\n"
            f"Latency probe {subject}.\r\n").encode()


def percentile(sorted_vals, p):
    """Nearest-rank percentile (no interpolation: every figure is a measured value)."""
    if not sorted_vals:
        return None
    import math
    k = max(1, math.ceil(p / 100 * len(sorted_vals)))
    return sorted_vals[k - 1]
