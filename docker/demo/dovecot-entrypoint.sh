#!/usr/bin/env bash
# Starts Dovecot in the foreground's place and saves a sample message into
# alice's INBOX at start and every DEMO_INTERVAL seconds (0: only once).
set -euo pipefail

INTERVAL=${DEMO_INTERVAL:-60}
dovecot -F &
DOVECOT=$!
trap 'kill -TERM "$DOVECOT" 2>/dev/null || true' TERM INT

save() {
  local n=$1
  # A fresh Message-ID and Subject each time, so every event is distinct.
  sed -e "s/^Subject: .*/Subject: Hello from the mailhook demo #$n/" \
      -e "s/^Message-ID: .*/Message-ID: <demo-$n-$(date +%s)@example.com>/" \
      /usr/local/share/mailhook-demo/sample.eml \
    | doveadm save -u alice -m INBOX
  echo "demo: saved message #$n into alice's INBOX"
}

# doveadm needs the running server's sockets.
for _ in $(seq 1 100); do
  doveadm who >/dev/null 2>&1 && break
  sleep 0.1
done
n=1
save "$n"
while ((INTERVAL > 0)) && kill -0 "$DOVECOT" 2>/dev/null; do
  sleep "$INTERVAL" &
  wait $! || break
  n=$((n + 1))
  save "$n" || true
done
wait "$DOVECOT"
