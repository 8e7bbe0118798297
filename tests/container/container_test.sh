#!/usr/bin/env bash
# tests/container/container_test.sh — the image and the compose demo, for real (issue 10):
#   engine (docker.io from Debian; dockerd started here when none runs) → base image
#   (make-base-image: debootstrap, no registry) → docker build → the image against a
#   private Dovecot and `mailhook sink` on loopback (--network host, --init, read-only
#   root, config folder, secrets as 0400 files owned by 10001, a named state volume):
#   an appended message arrives; health turns healthy; SIGTERM stops it with exit 0
#   within 10 s; a message appended while it is down arrives exactly once after a new
#   container starts on the same volume → the compose `demo` profile (docker-compose
#   1.29 from Debian) shows an event at its sink. Prints image size and build time.
#
#   tests/container/container_test.sh [MAILHOOK]   (the build tree's mailhook, for sink)
#
# It installs packages and starts dockerd as root, so it runs only when
# MAILHOOK_CONTAINER_TEST=1 (scripts/test sets it); otherwise it is skipped.
# Exit 0: passed; 77: skipped (no container engine can be installed or run here; the
# reason is printed); anything else: failed. Everything it starts is removed on exit;
# a dockerd it started is stopped (its data stays in /var/lib/docker, so the next
# run reuses the base image and the build cache).
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
MAILHOOK=${1:-$ROOT/build/src/mailhook}
SKIP=77
DOCKER=/usr/bin/docker  # Debian's CLI: a newer one first in PATH may lack buildx
T0=$SECONDS
ID="mailhook-ctest-$$"
WORK=$(mktemp -d "/tmp/$ID-XXXXXX")
chmod 0755 "$WORK"  # Dovecot's auth process must read its users file below
DOCKERD_PID=
SINK_PID=
WATCHDOG_PID=
COMPOSE=()
# The whole test stays within this budget, below ctest's TIMEOUT (900 s): ctest
# kills with SIGKILL, which would skip the cleanup below. Long steps run under
# `timeout` so the watchdog's TERM is handled between them.
BUDGET=840

say() { printf '[container %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() {
  echo "container test: FAILED: $*" >&2
  exit 1
}
skip() {
  echo "container test: SKIPPED: $*"
  exit "$SKIP"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0 && rc != SKIP)) && [[ -x $DOCKER ]]; then
    local c
    for c in "$ID-1" "$ID-2"; do
      "$DOCKER" logs "$c" >/dev/null 2>&1 || continue
      echo "--- docker logs $c (last 40 lines)" >&2
      "$DOCKER" logs "$c" 2>&1 | tail -40 >&2 || true
    done
    [[ -s $WORK/events.jsonl ]] && { echo "--- sink events" >&2; cut -c1-300 "$WORK/events.jsonl" >&2; }
  fi
  if [[ -n $WATCHDOG_PID ]]; then
    pkill -P "$WATCHDOG_PID" 2>/dev/null || true  # its sleep
    kill "$WATCHDOG_PID" 2>/dev/null || true
  fi
  ((rc == 130)) && echo "container test: stopped (a signal, or over its ${BUDGET} s budget)" >&2
  if ((${#COMPOSE[@]})); then timeout 60 "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; fi
  if [[ -x $DOCKER ]] && timeout 10 "$DOCKER" info >/dev/null 2>&1; then
    timeout 30 "$DOCKER" rm -f "$ID-1" "$ID-2" "$ID-root" >/dev/null 2>&1 || true
    timeout 30 "$DOCKER" volume rm -f "$ID-state" >/dev/null 2>&1 || true
    # The legacy builder leaves the build stage as an untagged ~470 MB image per
    # source change; keep the newest (the next build's cache), drop older ones.
    timeout 60 "$DOCKER" image prune -f --filter label=mailhook.stage=build --filter until=24h >/dev/null 2>&1 || true
  fi
  if [[ -n $SINK_PID ]]; then kill "$SINK_PID" 2>/dev/null || true; fi
  "$ROOT/scripts/dovecot" stop "$WORK/dovecot" --kill >/dev/null 2>&1 || true
  if [[ -n $DOCKERD_PID ]]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -rf "$WORK"
  say "done (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ ${MAILHOOK_CONTAINER_TEST:-} == 1 ]] \
  || skip "set MAILHOOK_CONTAINER_TEST=1 to run it (scripts/test does): it installs packages and starts dockerd as root"
((EUID == 0)) || skip "needs root (apt-get, dockerd, secrets chowned to uid 10001)"
[[ -x $MAILHOOK ]] || die "no $MAILHOOK (build the mailhook target first)"
for tool in curl python3 openssl; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps installs it)"
done
# Detached from stdout/stderr: ctest waits until every holder of its pipe is gone.
( sleep "$BUDGET" && kill -TERM $$ ) </dev/null >/dev/null 2>&1 &
WATCHDOG_PID=$!

# --- the engine ------------------------------------------------------------------
install_packages() {  # PACKAGE...; false when apt cannot install them
  ((EUID == 0)) && command -v apt-get >/dev/null || return 1
  apt-get install -y --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1 \
    || { apt-get update >>"$WORK/apt.log" 2>&1 && apt-get install -y --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1; }
}

# A running engine is used as it is; docker.io is installed only when there is none.
if [[ ! -x $DOCKER ]] || { ! timeout 10 "$DOCKER" info >/dev/null 2>&1 && [[ ! -x /usr/sbin/dockerd ]]; }; then
  say "installing docker.io from Debian"
  install_packages docker.io || skip "cannot install docker.io: $(tail -1 "$WORK/apt.log" 2>/dev/null)"
fi
if ! timeout 10 "$DOCKER" info >/dev/null 2>&1; then
  ((EUID == 0)) || skip "no Docker daemon runs and starting one needs root"
  say "starting dockerd (data in /var/lib/docker)"
  /usr/sbin/dockerd --data-root /var/lib/docker >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 1 300); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || skip "dockerd cannot run here: $(tail -3 "$WORK/dockerd.log" | tr '\n' ' ')"
    sleep 0.2
  done
  "$DOCKER" info >/dev/null 2>&1 || skip "dockerd did not answer within 60 s: $(tail -3 "$WORK/dockerd.log" | tr '\n' ' ')"
fi

# --- base image and build --------------------------------------------------------------
start=$SECONDS
if ! "$DOCKER" image inspect debian:bookworm-slim >/dev/null 2>&1 && ! command -v debootstrap >/dev/null; then
  install_packages debootstrap || die "cannot install debootstrap: $(tail -1 "$WORK/apt.log")"
fi
timeout 300 "$ROOT/tests/container/make-base-image" "$DOCKER"
BASE_TIME=$((SECONDS - start))
say "building docker/Dockerfile"
start=$SECONDS
timeout 600 "$DOCKER" build --pull=false -f docker/Dockerfile -t mailhook:latest . >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log" >&2; die "docker build failed (or ran past 600 s)"; }
BUILD_TIME=$((SECONDS - start))
IMAGE_BYTES=$("$DOCKER" image inspect -f '{{.Size}}' mailhook:latest)
say "image mailhook:latest: $((IMAGE_BYTES / 1000000)) MB, built in ${BUILD_TIME} s (base image: ${BASE_TIME} s)"

# --- a Dovecot and a receiver on loopback ------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
"$ROOT/scripts/dovecot" start "$WORK/dovecot" >/dev/null
# shellcheck disable=SC1091
source "$WORK/dovecot/env"
SINK_PORT=$(free_port)
HTTP_PORT=$(free_port)
SECRET="whsec_$(openssl rand -base64 32)"
"$MAILHOOK" sink --listen "127.0.0.1:$SINK_PORT" --secret "$SECRET" >"$WORK/events.jsonl" 2>"$WORK/sink.log" &
SINK_PID=$!

# IMAP APPEND of a small message with a unique subject.
append() {
  python3 - "$DOVECOT_IMAP_PORT" "$1" <<'PY'
import imaplib, sys, time
port, subject = int(sys.argv[1]), sys.argv[2]
msg = (f"From: a@example.com\r\nTo: alice@example.com\r\nSubject: {subject}\r\n"
       f"Message-ID: <{subject}.{time.time_ns()}@example.com>\r\n\r\nbody of {subject}\r\n").encode()
imap = imaplib.IMAP4("127.0.0.1", port)
imap.login("alice", "secret1")
typ, _ = imap.append("INBOX", None, None, msg)
assert typ == "OK", typ
imap.logout()
PY
}
count() { grep -c "\"subject\":\"$1\"" "$WORK/events.jsonl" || true; }
wait_count() {  # SUBJECT N SECONDS: until the sink has N events with that subject
  local deadline=$((SECONDS + $3))
  until (($(count "$1") >= $2)); do
    ((SECONDS < deadline)) || die "the sink has $(count "$1") of $2 events \"$1\" after $3 s"
    sleep 0.2
  done
}
wait_health() {  # CONTAINER STATUS SECONDS
  local deadline=$((SECONDS + $3)) status
  until status=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$1") && [[ $status == "$2" ]]; do
    [[ $("$DOCKER" inspect -f '{{.State.Running}}' "$1") == true ]] || die "$1 exited while waiting for \"$2\""
    ((SECONDS < deadline)) || die "$1: health is \"$status\", not \"$2\", after $3 s"
    sleep 0.2
  done
}

# --- the config folder, secrets as files, a state volume ---------------------------------
mkdir -m 0755 "$WORK/config"
install -m 0644 "$DOVECOT_CA_FILE" "$WORK/config/ca.pem"
# http.listen on loopback: with --network host that is the host's loopback,
# and the start-up warning for a loopback listen in a container is checked.
cat >"$WORK/config/mailhook.yml" <<YML
state_dir: /var/lib/mailhook
log: { level: info, format: json }
http: { listen: "127.0.0.1:$HTTP_PORT" }
accounts:
  - name: support
    host: 127.0.0.1
    port: $DOVECOT_IMAPS_PORT
    tls: implicit
    ca_file: /etc/mailhook/ca.pem
    username: alice
    password_file: /run/secrets/imap_password
    folders: [INBOX]
webhooks:
  - name: sink
    url: http://127.0.0.1:$SINK_PORT/events
    secret_file: /run/secrets/webhook_secret
    retry_schedule: [1s, 2s, 5s]
# A ready-made hook from the image (not hidden by the mounted config folder),
# writing to the state volume (the root filesystem is read-only).
hooks:
  - name: log
    command: ["/usr/local/lib/mailhook/hooks/append-jsonl.sh", "/var/lib/mailhook/output/events.jsonl"]
    retry_schedule: [1s, 2s, 5s]
YML
chmod 0644 "$WORK/config/mailhook.yml"
mkdir "$WORK/secrets"
printf 'secret1\n' >"$WORK/secrets/imap_password"
printf '%s\n' "$SECRET" >"$WORK/secrets/webhook_secret"
chown -R 10001:10001 "$WORK/secrets"
chmod 0500 "$WORK/secrets"
chmod 0400 "$WORK/secrets"/*
"$DOCKER" volume create "$ID-state" >/dev/null

run_container() {  # NAME
  "$DOCKER" run -d --name "$1" --init --network host --read-only --tmpfs /tmp \
    --cap-drop ALL --security-opt no-new-privileges \
    --health-interval 1s --health-start-period 30s --health-retries 3 \
    -v "$WORK/config:/etc/mailhook:ro" -v "$WORK/secrets:/run/secrets:ro" -v "$ID-state:/var/lib/mailhook" \
    mailhook:latest >/dev/null
}
wait_ready() {  # NAME: /readyz answers 200 (every folder watched)
  local deadline=$((SECONDS + 60))
  until curl -fsS -o /dev/null "http://127.0.0.1:$HTTP_PORT/readyz" 2>/dev/null; do
    [[ $("$DOCKER" inspect -f '{{.State.Running}}' "$1") == true ]] || die "$1 exited"
    ((SECONDS < deadline)) || die "$1: /readyz did not answer 200 within 60 s"
    sleep 0.2
  done
}

# --- secrets only root may read: exit 2 with the cause and the fix ------------------------------
mkdir "$WORK/root-secrets"
cp "$WORK/secrets"/* "$WORK/root-secrets/"
chown -R 0:0 "$WORK/root-secrets"
chmod 0400 "$WORK/root-secrets"/*
"$DOCKER" run -d --name "$ID-root" --network none -v "$WORK/config:/etc/mailhook:ro" \
  -v "$WORK/root-secrets:/run/secrets:ro" mailhook:latest >/dev/null
# Bounded: should the check regress, the daemon would start and run forever.
rc=$(timeout 60 "$DOCKER" wait "$ID-root") || die "root-only secrets: the container still runs after 60 s"
"$DOCKER" logs "$ID-root" >"$WORK/root-secrets.log" 2>&1
"$DOCKER" rm -f "$ID-root" >/dev/null
((rc == 2)) || die "root-only secrets: exit $rc, expected 2: $(cat "$WORK/root-secrets.log")"
grep -q 'Permission denied.*uid 10001 gid 10001.*chown 10001:10001' "$WORK/root-secrets.log" \
  || die "root-only secrets: the error does not name the uid and the chown: $(cat "$WORK/root-secrets.log")"
say "root-only secrets: exit 2, the error names uid/gid 10001 and the chown"

# --- first container: an event, healthy, SIGTERM → exit 0 ----------------------------------
say "running $ID-1 (--network host, --init, read-only, secrets 0400 owned by 10001)"
run_container "$ID-1"
wait_ready "$ID-1"
[[ $("$DOCKER" exec "$ID-1" id) == "uid=10001(mailhook) gid=10001(mailhook) groups=10001(mailhook)" ]] \
  || die "the container does not run as uid/gid 10001: $("$DOCKER" exec "$ID-1" id)"
# (Logs to a file first: `docker logs | grep -q` fails under pipefail when
# grep stops reading early.)
"$DOCKER" logs "$ID-1" >"$WORK/run-1.log" 2>&1
grep -q 'daemon.http_loopback_in_container' "$WORK/run-1.log" \
  || die "no daemon.http_loopback_in_container warning for a loopback http.listen in a container"
append first
wait_count first 1 60
say "event \"first\" arrived at the sink"
deadline=$((SECONDS + 30))
until "$DOCKER" exec "$ID-1" grep -q '"subject":"first"' /var/lib/mailhook/output/events.jsonl 2>/dev/null; do
  ((SECONDS < deadline)) || die "the ready-made hook append-jsonl.sh wrote no event to the state volume in 30 s"
  sleep 0.2
done
say "the image's append-jsonl.sh hook wrote the event to /var/lib/mailhook/output"
wait_health "$ID-1" healthy 60
say "health: healthy"
start_ms=$(date +%s%3N)
"$DOCKER" stop -t 10 "$ID-1" >/dev/null
STOP_MS=$(($(date +%s%3N) - start_ms))
EXIT_CODE=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$ID-1")
((EXIT_CODE == 0)) || die "docker stop (SIGTERM): exit code $EXIT_CODE, expected 0"
((STOP_MS < 10000)) || die "docker stop took ${STOP_MS} ms (the 10 s grace ran out)"
say "docker stop: exit 0 after ${STOP_MS} ms"

# --- a message while it is down; a new container on the same volume --------------------------
append while-down
run_container "$ID-2"
wait_count while-down 1 60
# A barrier: events leave a folder in UID order, so once "after" arrived, a
# redelivery of the earlier ones would have arrived before it.
append after
wait_count after 1 60
[[ $(count first) == 1 && $(count while-down) == 1 && $(count after) == 1 ]] \
  || die "expected each event once: first=$(count first) while-down=$(count while-down) after=$(count after)"
say "the message appended while stopped arrived once; nothing was delivered twice"
"$DOCKER" rm -f "$ID-2" >/dev/null

# --- the compose demo profile ---------------------------------------------------------------
if ! command -v docker-compose >/dev/null; then
  say "installing docker-compose (1.29) from Debian"
  install_packages docker-compose || say "compose demo not run: cannot install docker-compose"
fi
if command -v docker-compose >/dev/null; then
  DEMO_HTTP=$(free_port)
  DEMO_IMAP=$(free_port)
  export MAILHOOK_DEMO_HTTP_PORT=$DEMO_HTTP MAILHOOK_DEMO_IMAP_PORT=$DEMO_IMAP
  COMPOSE=(docker-compose -f docker/compose.yml -p "$ID" --profile demo)
  say "compose demo: $(docker-compose version --short), ports 127.0.0.1:$DEMO_HTTP and :$DEMO_IMAP"
  start=$SECONDS
  # mailhook:latest is the image built above; only the demo Dovecot is built here.
  timeout 300 "${COMPOSE[@]}" build demo-dovecot >"$WORK/compose-build.log" 2>&1 \
    || { tail -30 "$WORK/compose-build.log" >&2; die "compose build demo-dovecot failed"; }
  timeout 120 "${COMPOSE[@]}" up -d >"$WORK/compose-up.log" 2>&1 \
    || { cat "$WORK/compose-up.log" >&2; die "compose up failed"; }
  deadline=$((SECONDS + 90))
  until "${COMPOSE[@]}" logs --no-color demo-sink >"$WORK/demo-sink.log" 2>&1 \
    && grep -q '"type":"message.received"' "$WORK/demo-sink.log"; do
    if ((SECONDS >= deadline)); then
      "${COMPOSE[@]}" logs --no-color --tail 30 >&2 || true
      die "no event at the demo sink within 90 s"
    fi
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$DEMO_HTTP/healthz" || die "the demo's published /healthz does not answer"
  say "compose demo: an event reached demo-sink in $((SECONDS - start)) s; published /healthz answers"
  timeout 60 "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1
  COMPOSE=()
fi

say "PASSED: image $((IMAGE_BYTES / 1000000)) MB ($IMAGE_BYTES bytes), build ${BUILD_TIME} s, base image ${BASE_TIME} s, stop ${STOP_MS} ms, total $((SECONDS - T0)) s"
