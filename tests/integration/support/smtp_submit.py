#!/usr/bin/env python3
"""smtp_submit.py: an independent SMTP submission client for the integration
tests (Python's smtplib, not mailhook's code), to prove the test Postfix.

  smtp_submit.py --port N --ca CA [--no-starttls] --user U --password P
                 --from ADDR --to ADDR [--to ADDR] --subject TEXT

Prints one JSON line: {"stage": ..., "code": N, "text": "..."} where stage is
where it ended: "ehlo", "starttls", "auth" (AUTH refused, or not offered:
code 0), "rcpt", "data" or "sent" (code 250). Exit 0 whatever the server
said; 2 on a usage error.
"""
import argparse
import base64
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage


def out(stage, code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    print(json.dumps({"stage": stage, "code": code, "text": text}))
    sys.exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--no-starttls", action="store_true")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", required=True)
    p.add_argument("--subject", required=True)
    a = p.parse_args()

    s = smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.test", timeout=20)
    code, text = s.ehlo()
    if code != 250:
        out("ehlo", code, text)
    if not a.no_starttls:
        # Verifies the chain against the test CA and the host name: smtplib
        # checks the certificate against the host it connected to (127.0.0.1,
        # in the test certificate's names).
        ctx = ssl.create_default_context(cafile=a.ca)
        code, text = s.starttls(context=ctx)
        if code != 220:
            out("starttls", code, text)
        s.ehlo()
    if not s.has_extn("auth"):
        # Ask anyway: the server must refuse, not just hide the extension.
        creds = base64.b64encode(("\0%s\0%s" % (a.user, a.password)).encode()).decode()
        code, text = s.docmd("AUTH", "PLAIN " + creds)
        out("auth", code, text)
    try:
        # One AUTH PLAIN: login() would try PLAIN and then LOGIN, a second
        # failure that Dovecot's auth answers more slowly.
        s.user, s.password = a.user, a.password
        s.auth("PLAIN", s.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        out("auth", e.smtp_code, e.smtp_error)
    msg = EmailMessage()
    msg["From"] = a.sender
    msg["To"] = ", ".join(a.to)
    msg["Subject"] = a.subject
    msg.set_content("sent by tests/integration/support/smtp_submit.py\n")
    try:
        refused = s.send_message(msg, from_addr=a.sender, to_addrs=a.to)
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        out("rcpt", code, text)
    except smtplib.SMTPResponseException as e:
        out("data", e.smtp_code, e.smtp_error)
    if refused:
        code, text = next(iter(refused.values()))
        out("rcpt", code, text)
    s.quit()
    out("sent", 250, "")


if __name__ == "__main__":
    main()
