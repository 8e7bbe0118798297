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

    name = "mailhook run"

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
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"no /{pattern}/ in the {self.name} log after {timeout} s:\n{self.tail()}")

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
        return f"{self.name} is {state}; last log lines:\n{self.tail()}"

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


def run_appenders(target, shares):
    """Runs target(*share, barrier, queue) in one forked process per share; they start
    together at the barrier, and each puts one list on the queue. The lists, concatenated."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(shares))
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*share, barrier, q)) for share in shares]
    for p in procs:
        p.start()
    out = []
    for _ in procs:
        out.extend(q.get())
    for p in procs:
        p.join()
    return out


def write_result(path, result):
    """The result as indented JSON; through a temp file, so a killed run leaves no half-written one."""
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)


def percentile(sorted_vals, p):
    """Nearest-rank percentile (no interpolation: every figure is a measured value)."""
    if not sorted_vals:
        return None
    import math
    k = max(1, math.ceil(p / 100 * len(sorted_vals)))
    return sorted_vals[k - 1]


def write_accounts_config(path, work, receiver_port, http_port, accounts, account_keys="", attachments="metadata",
                          log_level=os.environ.get("BENCH_LOG_LEVEL", "info"), top_keys=""):
    """A config with several accounts: accounts is a list of (name, username, password, folders);
    secret1 (alice's) goes in as ${BENCH_IMAP_PASSWORD}, which Daemon sets, any other password
    (scripts/dovecot --extra-users: user01/pass01 …) as is.
    account_keys is YAML added to every account as is (e.g. "notify: off"), for keys only a
    newer mailhook knows; empty by default so the config suits the binary under test.
    top_keys is YAML appended at the top level as is (e.g. a store: section)."""
    extra = "".join(f"    {line.strip()}\n" for line in account_keys.split(";") if line.strip())
    with open(path, "w") as f:
        f.write(f"# Written by bench/ for one run.\nstate_dir: {work}/state\n"
                f"log: {{ level: {log_level}, format: text }}\n"
                f"http: {{ listen: \"127.0.0.1:{http_port}\" }}\n\naccounts:\n")
        for name, user, password, folders in accounts:
            password = "${BENCH_IMAP_PASSWORD}" if password == "secret1" else json.dumps(password)
            f.write(f"""  - name: {name}
    host: 127.0.0.1
    port: {os.environ["DOVECOT_IMAPS_PORT"]}
    tls: implicit
    ca_file: {os.environ["DOVECOT_CA_FILE"]}
    username: {user}
    password: {password}
    folders: {json.dumps(folders)}
    start_from: new
{extra}""")
        f.write(f"""
webhooks:
  - name: bench
    url: http://127.0.0.1:{receiver_port}/events
    secret: ${{BENCH_WEBHOOK_SECRET}}
    attachments: {attachments}
    retry_schedule: [1s, 2s, 5s]
""")
        if top_keys:
            f.write("\n" + top_keys.rstrip("\n") + "\n")


class Peer:
    """The Node watcher (bench/peer/peer.js: imapflow + mailparser, one connection per
    folder) as a child, with the parts of Daemon's interface the drivers use. Its pid goes
    to WORK/peer.pid for the shell trap."""

    name = "the Node peer"

    def __init__(self, work, accounts, receiver_port, secret):
        self.log_path = os.path.join(work, "peer.log")
        self.pid_path = os.path.join(work, "peer.pid")
        cfg = os.path.join(work, "peer.json")
        with open(cfg, "w") as f:
            json.dump({"url": f"http://127.0.0.1:{receiver_port}/events", "secret": secret, "accounts": [
                {"name": n, "host": "127.0.0.1", "port": int(os.environ["DOVECOT_IMAPS_PORT"]),
                 "ca_file": os.environ["DOVECOT_CA_FILE"], "username": u, "password": p, "folders": fl}
                for n, u, p, fl in accounts]}, f)
        script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peer", "peer.js")
        self.log = open(self.log_path, "wb")
        wrapper = os.environ.get("BENCH_WRAPPER", "").split()
        self.proc = subprocess.Popen(wrapper + ["node", script, cfg], stdout=self.log, stderr=self.log)
        with open(self.pid_path, "w") as f:
            f.write(str(self.proc.pid))

    log_text = Daemon.log_text
    wait_log = Daemon.wait_log
    status = Daemon.status
    why = Daemon.why
    tail = Daemon.tail
    stop = Daemon.stop

    def wait_ready(self, _http_port, timeout):
        self.wait_log(r"peer\.ready", timeout)


def proc_cpu_s(pid, children=False):
    """utime+stime of a process in seconds (with its reaped children's when asked)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(pid):
    """pid and every live process below it."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def dovecot_master_pid():
    with open(os.path.join(os.environ["DOVECOT_DIR"], "run", "master.pid")) as f:
        return int(f.read().split()[0])


def dovecot_cpu_s():
    """CPU seconds of this test's Dovecot (see tree_cpu_s)."""
    return tree_cpu_s(dovecot_master_pid())


def dovecot_cpu_by_process():
    """{pid: (name, CPU seconds with reaped children)} of this test's Dovecot, where name is
    the process's comm (imap, imap-login, auth, …): two snapshots give where its CPU went,
    and the sum of one is dovecot_cpu_s()."""
    out = {}
    for p in descendants(dovecot_master_pid()):
        try:
            with open(f"/proc/{p}/comm") as f:
                name = f.read().strip()
            out[p] = (name, proc_cpu_s(p, children=True))
        except (OSError, ValueError, IndexError):
            pass
    return out


def snapshot_cpu_s(snapshot):
    """The total of a dovecot_cpu_by_process() snapshot: dovecot_cpu_s() at that moment."""
    return sum(cpu for _, cpu in snapshot.values())


def cpu_by_name(before, after):
    """CPU seconds per process name between two dovecot_cpu_by_process() snapshots; a process
    that ended meanwhile counts under its parent (as a reaped child), new ones from zero."""
    out = {}
    for p, (name, cpu) in after.items():
        delta = cpu - (before[p][1] if p in before else 0.0)
        out[name] = round(out.get(name, 0.0) + delta, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def session_cpu(before, after, name="imap"):
    """CPU seconds of each live `name` process between two snapshots, largest first: one per
    IMAP session, so a watcher's sessions show apart."""
    return sorted((round(cpu - (before[p][1] if p in before else 0.0), 2)
                   for p, (n, cpu) in after.items() if n == name), reverse=True)


def tree_cpu_s(master):
    """CPU seconds of a server: its master process and every live process below it, each
    with its reaped children (so a process that exited still counts, via its parent)."""
    total = 0.0
    for p in descendants(master):
        try:
            total += proc_cpu_s(p, children=True)
        except (OSError, ValueError, IndexError):
            pass
    return total


def proc_facts(pid, imap_port=None):
    """rss/hwm (KiB), threads, fds, and ESTABLISHED TCP sockets (all, and those to imap_port)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    inodes = set()
    fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    est = est_imap = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] != "01" or cols[9] not in inodes:  # 01 = ESTABLISHED
                        continue
                    est += 1
                    if imap_port is not None and int(cols[2].rsplit(":", 1)[1], 16) == imap_port:
                        est_imap += 1
        except OSError:
            pass
    return {"rss_kib": out.get("VmRSS"), "peak_rss_kib": out.get("VmHWM"), "threads": out.get("Threads"),
            "fds": fds, "established": est, "established_imap": est_imap}
