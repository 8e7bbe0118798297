#!/usr/bin/env python3
"""Verify a mailhook webhook signature (Standard Webhooks), standard library only.

Usage: WEBHOOK_SECRET=whsec_... WEBHOOK_ID=... WEBHOOK_TIMESTAMP=... \
       WEBHOOK_SIGNATURE=... python3 verify.py < body.json
The body on stdin must be the exact bytes received. Exit 0: valid; 1: invalid; 2: usage.
In a receiver, call verify() with the request's headers and raw body.
"""
import base64
import hashlib
import hmac
import os
import sys
import time

TOLERANCE_SECONDS = 5 * 60  # Standard Webhooks: reject timestamps further than 5 minutes away


def decode_secret(secret: str) -> bytes:
    key = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    return base64.b64decode(key + "=" * (-len(key) % 4), validate=True)


def verify(secret: str, msg_id: str, timestamp: str, signature_header: str, body: bytes, now=None) -> bool:
    now = time.time() if now is None else now
    try:
        if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
            return False
        key = decode_secret(secret)
    except ValueError:
        return False
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    # Several space-separated "v1,<base64>" while the sender rotates secrets.
    for candidate in signature_header.split():
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected.encode()):
            return True
    return False


def main() -> int:
    try:
        env = {k: os.environ[k] for k in ("WEBHOOK_SECRET", "WEBHOOK_ID", "WEBHOOK_TIMESTAMP", "WEBHOOK_SIGNATURE")}
    except KeyError as missing:
        print(f"usage: set {missing} (see the docstring)", file=sys.stderr)
        return 2
    body = sys.stdin.buffer.read()
    if verify(env["WEBHOOK_SECRET"], env["WEBHOOK_ID"], env["WEBHOOK_TIMESTAMP"], env["WEBHOOK_SIGNATURE"], body):
        print("verified " + env["WEBHOOK_ID"])
        return 0
    print("invalid signature or timestamp", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
