"""bench/memory driver: the resident memory of an idle `mailhook run` with one
account and one folder, broken down by what holds it.

The daemon watches alice's INBOX on a private Dovecot (implicit TLS) and has one
webhook. After /readyz, one warm-up message goes through (so TLS, SQLite, the
fetch path and the HTTP client have all run once), then the daemon is left idle
for --settle seconds and /proc/<pid>/smaps is read. Each mapping is put in one
class:

  binary      mailhook's own file (text, data, relro)
  libs:NAME   each shared library's file-backed pages (libcrypto, libssl, ...)
  stacks      thread stacks: anonymous rw mappings of the thread stack size
              directly above a 4 KiB guard page
  arenas      glibc malloc arenas of threads other than main: the rw part of a
              64 MiB-aligned heap reservation
  heap        the main [heap] (brk) arena
  other_anon  any other anonymous mapping (large mmap'd allocations, TLS blocks)
  other       the rest (vdso, vvar, locale files ...)

Prints one JSON line: rss and peak (VmRSS, VmHWM), threads, fds, Rss/Pss by
class, and the rollup totals (Anonymous, file-backed). Measures; asserts nothing.
"""

import argparse
import datetime
import json
import os
import re
import sys
import time

import benchlib

HEAP_MAX = 64 * 1024 * 1024  # glibc HEAP_MAX_SIZE on 64-bit: arenas are aligned to it
MAP_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$")


def read_smaps(pid):
    """[{start, end, perms, path, Rss, Pss, Anonymous, ...}] in kB, in address order."""
    maps = []
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = MAP_RE.match(line)
            if m:
                cur = {"start": int(m.group(1), 16), "end": int(m.group(2), 16), "perms": m.group(3),
                       "inode": int(m.group(4)), "path": m.group(5).strip()}
                maps.append(cur)
                continue
            key, _, rest = line.partition(":")
            parts = rest.split()
            if cur is not None and len(parts) == 2 and parts[1] == "kB":
                cur[key] = int(parts[0])
    return maps


def classify(maps, binary):
    """Class of each mapping (same order as maps)."""
    out = []
    for i, m in enumerate(maps):
        size = m["end"] - m["start"]
        prev = maps[i - 1] if i else None
        nxt = maps[i + 1] if i + 1 < len(maps) else None
        path = m["path"]
        if path == "[heap]":
            c = "heap"
        elif path and os.path.realpath(path) == os.path.realpath(binary):
            c = "binary"
        elif path.startswith("/"):
            c = "libs:" + re.sub(r"\.so.*$", "", os.path.basename(path))
        elif path == "" and m["inode"] == 0:
            guard_below = (prev is not None and prev["end"] == m["start"] and prev["perms"].startswith("---")
                           and prev["end"] - prev["start"] == 4096)
            arena = (m["start"] % HEAP_MAX == 0 and m["perms"].startswith("rw")
                     and (size == HEAP_MAX or (nxt is not None and nxt["start"] == m["end"]
                                               and nxt["perms"].startswith("---")
                                               and nxt["end"] - m["start"] == HEAP_MAX)))
            if arena:
                c = "arenas"
            elif m["perms"].startswith("rw") and guard_below and size >= 64 * 1024:
                c = "stacks"
            else:
                c = "other_anon"
        else:
            c = "other"
        out.append(c)
    return out


def breakdown(pid, binary):
    maps = read_smaps(pid)
    classes = classify(maps, binary)
    by = {}
    for m, c in zip(maps, classes):
        key = c if not c.startswith("libs:") else c
        e = by.setdefault(key, {"rss_kib": 0, "pss_kib": 0, "mappings": 0})
        e["rss_kib"] += m.get("Rss", 0)
        e["pss_kib"] += m.get("Pss", 0)
        e["mappings"] += 1
    # Libraries under 256 KiB each are summed, to keep the line short.
    libs_small = {"rss_kib": 0, "pss_kib": 0, "mappings": 0}
    for k in [k for k in by if k.startswith("libs:")]:
        if by[k]["rss_kib"] < 256:
            for f in libs_small:
                libs_small[f] += by[k][f]
            del by[k]
    by["libs:other"] = libs_small
    stacks = [m for m, c in zip(maps, classes) if c == "stacks"]
    arenas = [m for m, c in zip(maps, classes) if c == "arenas"]
    return {
        "classes": dict(sorted(by.items(), key=lambda kv: -kv[1]["rss_kib"])),
        "stacks": {"count": len(stacks), "size_kib": sorted({(m["end"] - m["start"]) // 1024 for m in stacks}),
                   "touched_kib": [m.get("Rss", 0) for m in stacks]},
        "arenas": {"count": len(arenas), "touched_kib": [m.get("Rss", 0) for m in arenas]},
    }


def rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                out[key] = int(parts[0])
    return {k: out.get(k) for k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Anonymous", "Private_Dirty",
                                    "Shared_Clean", "Private_Clean")}


def burst(d, rx, imap, n):
    """APPENDs n small messages back to back; the peak and the classes once
    every event has arrived (what a burst adds to the idle figure)."""
    t0 = time.monotonic()
    for i in range(n):
        imap.append("INBOX", None, None, benchlib.small_message(f"bench burst {i}", f"<burst-{i}@bench.invalid>"))
    last = f"bench burst {n - 1}"
    if rx.wait_for(lambda ev: ev.get("message", {}).get("subject") == last, 120) is None:
        raise RuntimeError(f"the burst's last event never arrived; {d.why()}")
    got = sum(1 for _, ev, _ in rx.events if ev.get("message", {}).get("subject", "").startswith("bench burst "))
    return {
        "messages": n,
        "events": got,
        "seconds": round(time.monotonic() - t0, 2),
        "rss_kib": d.status("VmRSS"),
        "peak_rss_kib": d.status("VmHWM"),
        "classes": {k: v["rss_kib"] for k, v in breakdown(d.proc.pid, d_binary(d))["classes"].items()},
    }


def d_binary(d):
    return os.readlink(f"/proc/{d.proc.pid}/exe")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--burst", type=int, default=0)
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    secret = benchlib.new_secret()
    rx = benchlib.Receiver(secret)
    http_port = benchlib.free_port()
    cfg = os.path.join(a.work, "mailhook.yaml")
    benchlib.write_config(cfg, a.work, rx.port, http_port)
    d = benchlib.Daemon(a.mailhook, a.work, cfg, secret)
    imap = None
    try:
        d.wait_log(r"imap\.connected", 30)
        d.wait_ready(http_port, 30)
        ready = {"VmRSS_kib": d.status("VmRSS"), "VmHWM_kib": d.status("VmHWM")}
        imap = benchlib.imap_login()
        imap.append("INBOX", None, None, benchlib.small_message("bench warm-up", "<warm-memory@bench.invalid>"))
        if rx.wait_for(lambda ev: ev.get("message", {}).get("subject") == "bench warm-up", 30) is None:
            raise RuntimeError(f"warm-up event never arrived; {d.why()}")
        # Idle: the daemon is back in IDLE and the dispatcher asleep.
        time.sleep(a.settle)
        pid = d.proc.pid
        result = {
            "benchmark": "memory",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "facts": json.loads(a.facts),
            "rss_kib": d.status("VmRSS"),
            "peak_rss_kib": d.status("VmHWM"),
            "at_ready": ready,
            "threads": len(os.listdir(f"/proc/{pid}/task")),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "rollup_kib": rollup(pid),
            **breakdown(pid, a.mailhook),
        }
        if a.burst > 0:
            result["after_burst"] = burst(d, rx, imap, a.burst)
    finally:
        if imap:
            try:
                imap.logout()
            except Exception:
                pass
        d.stop()
        rx.stop()
    benchlib.write_result(a.out, result)
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"bench/memory: {e}", file=sys.stderr)
        sys.exit(1)
