"""bench/big_attachment's measuring half (run by bench/big_attachment, which owns
setup and cleanup). Peak memory of `mailhook parse` and of `mailhook run` for
one message with a large random attachment."""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import benchlib  # noqa: E402


def make_message(path, size):
    """multipart/mixed: a short text part and `size` random bytes as base64
    (76-character lines, CRLF, RFC 2045 §6.8). Returns (sha256 hex, file bytes)."""
    raw = os.urandom(size)
    digest = hashlib.sha256(raw).hexdigest()
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    del raw
    head = ("Message-ID: <big-attachment@bench.mailhook.invalid>\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
            "From: Bench <bench@example.com>\r\n"
            "To: alice@example.com\r\n"
            "Subject: bench big attachment\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="bench-boundary"\r\n'
            "\r\n"
            "--bench-boundary\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "\r\n"
            "A large attachment follows.\r\n"
            "--bench-boundary\r\n"
            'Content-Type: application/octet-stream; name="random.bin"\r\n'
            'Content-Disposition: attachment; filename="random.bin"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            "\r\n").encode()
    tail = b"--bench-boundary--\r\n"
    with open(path, "wb") as f:
        f.write(head)
        f.write(b64)
        f.write(tail)
    return digest, len(head) + len(b64) + len(tail)


def time_v(cmd, stdout_path):
    """Runs cmd under /usr/bin/time -v; returns (exit code, peak RSS kB, wall s)."""
    with open(stdout_path, "wb") as out:
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=out, stderr=subprocess.PIPE)
    err = p.stderr.decode(errors="replace")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    w = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", err)
    wall = None
    if w:
        wall = int(w.group(1) or 0) * 3600 + int(w.group(2)) * 60 + float(w.group(3))
    if not m:
        raise RuntimeError(f"no peak RSS from /usr/bin/time:\n{err[-2000:]}")
    return p.returncode, int(m.group(1)), wall


def check_attachment(ev, size, digest):
    """What the event says about the attachment, compared with what was sent."""
    atts = ev.get("message", {}).get("attachments", [])
    big = [x for x in atts if x.get("filename") == "random.bin"]
    if not big:
        return {"found": False}
    a = big[0]
    content = a.get("content_base64")
    r = {"found": True, "size": a.get("size"), "size_error_bytes": (a.get("size") or 0) - size,
         "sha256": "absent" if not a.get("sha256") else ("ok" if a["sha256"] == digest else "WRONG"),
         "content_base64_chars": len(content) if content else 0}
    if content:
        r["content_ok"] = hashlib.sha256(base64.b64decode(content)).hexdigest() == digest
    return r


def describe(chk):
    if not chk.get("found"):
        return "[attachment missing from event]"
    size = "size exact" if chk["size_error_bytes"] == 0 else f"size off by {chk['size_error_bytes']:+d}"
    content = "no content" if not chk["content_base64_chars"] else \
        f"content {'ok' if chk.get('content_ok') else 'WRONG'}"
    return f"[{size}, sha256 {chk['sha256']}, {content}]"


def parse_runs(mailhook, work, eml, small, size, digest):
    out = {}
    for label, path, mode in (("small_message_metadata", small, "metadata"),
                              ("metadata", eml, "metadata"),
                              ("content", eml, "content")):
        print(f"  mailhook parse {os.path.basename(path)} --attachments {mode}", file=sys.stderr)
        js = os.path.join(work, f"parse-{label}.json")
        rc, rss, wall = time_v([mailhook, "parse", path, "--attachments", mode], js)
        r = {"exit": rc, "peak_rss_kib": rss, "peak_rss_mib": round(rss / 1024, 1), "wall_s": wall,
             "stdout_bytes": os.path.getsize(js)}
        if rc == 0 and path == eml:
            with open(js, "rb") as f:
                r["check"] = check_attachment(json.load(f), size, digest)
        os.unlink(js)
        out[label] = r
    return out


def daemon_run(mailhook, work, eml, size, digest, mode, timeout):
    """`mailhook run` with one webhook in `mode`; VmHWM before and after the event."""
    sub = os.path.join(work, f"daemon-{mode}")
    os.makedirs(sub, exist_ok=True)
    secret = benchlib.new_secret()
    rx = benchlib.Receiver(secret)
    http_port = benchlib.free_port()
    cfg = os.path.join(sub, "mailhook.yaml")
    benchlib.write_config(cfg, sub, rx.port, http_port, attachments=mode)
    d = benchlib.Daemon(mailhook, sub, cfg, secret)
    imap = None
    try:
        d.wait_log(r"imap\.connected", 30)
        d.wait_ready(http_port, 30)
        imap = benchlib.imap_login()
        # One small message first, so "before" is a daemon that has already
        # fetched, stored and delivered once (TLS, SQLite and HTTP warmed up).
        imap.append("INBOX", None, None, benchlib.small_message("bench warm-up", f"<warm-{mode}@bench.invalid>"))
        if rx.wait_for(lambda ev: ev.get("message", {}).get("subject") == "bench warm-up", 30) is None:
            raise RuntimeError(f"warm-up event never arrived; {d.why()}")
        before = {"VmHWM_kib": d.status("VmHWM"), "VmRSS_kib": d.status("VmRSS")}
        with open(eml, "rb") as f:
            data = f.read()
        print(f"  mailhook run, attachments: {mode}: APPEND {len(data) / 2**20:.1f} MiB", file=sys.stderr)
        t0 = time.monotonic()
        imap.append("INBOX", None, None, data)
        t1 = time.monotonic()
        del data
        got = rx.wait_for(lambda ev: ev.get("message", {}).get("subject") == "bench big attachment", timeout)
        if got is None:
            raise RuntimeError(f"big-attachment event never arrived in {timeout} s; {d.why()}")
        t_recv, ev, sig_ok = got
        after = {"VmHWM_kib": d.status("VmHWM"), "VmRSS_kib": d.status("VmRSS")}
        return {
            "attachments": mode,
            "before": before,
            "after_event": after,
            "peak_rss_mib": round(after["VmHWM_kib"] / 1024, 1),
            "peak_growth_mib": round((after["VmHWM_kib"] - before["VmHWM_kib"]) / 1024, 1),
            "append_s": round(t1 - t0, 2),
            "append_to_event_s": round(t_recv - t0, 2),
            "event_bytes": len(json.dumps(ev)),
            "signature_ok": sig_ok,
            "check": check_attachment(ev, size, digest),
        }
    finally:
        if imap:
            try:
                imap.logout()
            except Exception:
                pass
        d.stop()
        rx.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mailhook", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mib", type=int, default=50)
    ap.add_argument("--daemon-modes", default="metadata,content")
    ap.add_argument("--facts", default="{}")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    size = a.mib * 1024 * 1024
    eml = os.path.join(a.work, "big.eml")
    print(f"  generating a message with a {a.mib} MiB random attachment (base64)", file=sys.stderr)
    digest, eml_bytes = make_message(eml, size)
    small = os.path.join(a.work, "small.eml")
    with open(small, "wb") as f:
        f.write(benchlib.small_message("bench small", "<small@bench.invalid>"))

    parse = parse_runs(a.mailhook, a.work, eml, small, size, digest)
    daemon = [daemon_run(a.mailhook, a.work, eml, size, digest, m, 180)
              for m in a.daemon_modes.split(",") if m]

    result = {
        "benchmark": "big_attachment",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "facts": json.loads(a.facts),
        "message": {"attachment_bytes": size, "eml_bytes": eml_bytes, "encoding": "base64, 76-char CRLF lines",
                    "attachment_sha256": digest},
        "method": {
            "parse": "/usr/bin/time -v 'Maximum resident set size' of `mailhook parse FILE --attachments MODE` "
                     "(stdout to a file)",
            "daemon": "VmHWM of the `mailhook run` process from /proc/<pid>/status after one warm-up event "
                      "(before) and after the big event reached the receiver (after); Dovecot over implicit TLS, "
                      "webhook with max_attachment_bytes 100 MiB",
            "parse_limits": "parse keeps content up to its built-in 10 MiB max_content_bytes and hashes a "
                            "body only up to twice that; above it the size is still exact (decoded piece by "
                            "piece) but there is no sha256 or content",
        },
        "parse": parse,
        "daemon": daemon,
    }
    benchlib.write_result(a.out, result)

    mib = lambda kib: f"{kib / 1024:7.1f} MiB"  # noqa: E731
    print(f"\nmailhook big attachment: {a.mib} MiB random attachment, message file {eml_bytes / 2**20:.1f} MiB")
    print("  mailhook parse (peak RSS, /usr/bin/time -v)")
    for label, r in parse.items():
        chk_s = "" if r.get("check") is None else "  " + describe(r["check"])
        print(f"    {label:<24} {mib(r['peak_rss_kib'])}  {r['wall_s']:.2f} s  exit {r['exit']}{chk_s}")
    print("  mailhook run (VmHWM of the daemon)")
    for r in daemon:
        chk_s = describe(r["check"])
        print(f"    attachments: {r['attachments']:<10} before {mib(r['before']['VmHWM_kib'])}  "
              f"after {mib(r['after_event']['VmHWM_kib'])}  (+{r['peak_growth_mib']:.1f} MiB)  "
              f"APPEND {r['append_s']:.1f} s, ->event {r['append_to_event_s']:.1f} s  {chk_s}")
    print("  parse keeps content up to 10 MiB and hashes a body only up to twice that; larger\n"
          "  attachments get their exact size but no sha256. The daemon runs use\n"
          "  max_attachment_bytes: 100 MiB, so content mode really carries the content.")
    print(f"  Result: {a.out}")


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"bench/big_attachment: {e}", file=sys.stderr)
        sys.exit(1)
