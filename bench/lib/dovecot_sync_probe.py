"""What a watcher's pattern of commands costs Dovecot while mail arrives (issue 8: "Dovecot CPU
during the burst <= the peer's"). Not run by any bench script; run it by hand against a private
Dovecot:

    scripts/dovecot start /dev/shm/probe
    DOVECOT_DIR=/dev/shm/probe python3 bench/lib/dovecot_sync_probe.py 2000 mailhook 0.07
    DOVECOT_DIR=/dev/shm/probe python3 bench/lib/dovecot_sync_probe.py 2000 peer 0.5
    scripts/dovecot stop /dev/shm/probe

4 appenders put COUNT small messages into a new folder while one watcher session (plain port)
looks every GAP seconds, in one of these patterns, until it has seen them all:
  mailhook    NOOP, UID SEARCH UID n:*, then per 25 new UIDs a meta FETCH (UID FLAGS RFC822.SIZE
              BODYSTRUCTURE BODY.PEEK[HEADER]) and a FETCH (UID BODY.PEEK[]): the daemon's sync
  nostruct    the same without BODYSTRUCTURE
  size        the same with only (UID FLAGS RFC822.SIZE) in the meta FETCH
  peer        one UID FETCH n:* (UID FLAGS BODY.PEEK[]) per look: the Node peer's
Prints the CPU seconds of the watcher's own imap process (utime+stime) and its command count."""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402

META = {"mailhook": "(UID FLAGS RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER])",
        "nostruct": "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER])",
        "size": "(UID FLAGS RFC822.SIZE)"}


def load_dovecot_env():
    """DOVECOT_DIR/env (what scripts/dovecot start printed) into os.environ, for benchlib."""
    with open(os.path.join(os.environ["DOVECOT_DIR"], "env")) as f:
        os.environ.update(line.strip().split("=", 1) for line in f if "=" in line)


def imap_pids():
    return {p for p, (name, _) in benchlib.dovecot_cpu_by_process().items() if name == "imap"}


class Watcher:
    def __init__(self, folder, pattern, gap):
        before = imap_pids()
        self.c = benchlib.imap_login()
        self.c.select(folder)
        time.sleep(0.2)
        self.pid = (imap_pids() - before).pop()  # this session's imap process
        self.pattern, self.gap = pattern, gap
        self.last, self.seen, self.commands = 0, 0, 0
        self.stop = False

    def look(self):
        if self.pattern == "peer":
            _, data = self.c.uid("FETCH", f"{self.last + 1}:*", "(UID FLAGS BODY.PEEK[])")
            self.commands += 1
            text = b" ".join(x[0] if isinstance(x, tuple) else x for x in data if x)
            uids = [u for u in map(int, re.findall(rb"UID (\d+)", text)) if u > self.last]
        else:
            self.c.noop()
            _, data = self.c.uid("SEARCH", f"UID {self.last + 1}:*")
            self.commands += 2
            uids = [u for u in map(int, data[0].split()) if u > self.last]
            for i in range(0, len(uids), 25):
                batch = ",".join(map(str, uids[i:i + 25]))
                self.c.uid("FETCH", batch, META[self.pattern])
                self.c.uid("FETCH", batch, "(UID BODY.PEEK[])")
                self.commands += 2
        self.seen += len(uids)
        self.last = max(uids, default=self.last)

    def run(self):
        while True:
            done = self.stop
            self.look()
            if done:
                return
            time.sleep(self.gap)


def main():
    count, pattern, gap = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    load_dovecot_env()
    folder = f"probe-{pattern}-{os.getpid()}"
    benchlib.imap_login().create(folder)
    w = Watcher(folder, pattern, gap)
    cpu0 = benchlib.proc_cpu_s(w.pid)
    t = threading.Thread(target=w.run)
    t.start()

    def append(k):
        a = benchlib.imap_login()
        for i in range(count // 4):
            a.append(folder, None, None, benchlib.small_message(f"probe {k}-{i}", f"<probe-{k}-{i}@x>"))

    appenders = [threading.Thread(target=append, args=(k,)) for k in range(4)]
    for a in appenders:
        a.start()
    for a in appenders:
        a.join()
    time.sleep(gap + 0.2)
    w.stop = True
    t.join()
    print(f"{pattern} every {gap} s: saw {w.seen}, {w.commands} commands, "
          f"its imap process {benchlib.proc_cpu_s(w.pid) - cpu0:.2f} s of CPU")


if __name__ == "__main__":
    main()
