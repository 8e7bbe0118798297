# bench/lib/common.sh — shared setup for the bench/ scripts (sourced, not run).
#
# Provides: bench_build (sets MAILHOOK), bench_workdir (sets WORK, installs the
# cleanup trap), bench_dovecot (starts a private Dovecot in $WORK/dovecot and
# sources its env), bench_facts (prints machine facts as JSON for result files).
# Cleanup on any exit: every pid in a *.pid file under $WORK is TERMed (then KILLed), Dovecot
# is stopped, so is every PostgreSQL a driver started with scripts/postgres in $WORK/postgres*,
# and $WORK removed (kept with BENCH_KEEP=1).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_DIR=$ROOT/bench

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

# Builds mailhook unless MAILHOOK names a binary, with the same flags as the
# container image (docker/Dockerfile: MinSizeRel, link-time optimized, warnings not fatal), so the
# numbers are the shipped binary's. ninja makes this a no-op when current.
bench_build() {
  if [[ -n ${MAILHOOK:-} ]]; then
    [[ -x $MAILHOOK ]] || die "MAILHOOK=$MAILHOOK is not an executable"
    return
  fi
  local build_dir=${BUILD_DIR:-$ROOT/build-bench}
  say "building mailhook (MinSizeRel + LTO, $build_dir)"
  cmake -S "$ROOT" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel -DMAILHOOK_TESTS=OFF -DMAILHOOK_WERROR=OFF \
    -DMAILHOOK_LTO=ON >/dev/null \
    || die "cmake failed"
  ninja -C "$build_dir" -j"${JOBS:-2}" mailhook >&2 || die "build failed"
  MAILHOOK=$build_dir/src/mailhook
}

bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local f pid
  # The driver first (it may still be starting daemons), then every daemon,
  # including those in per-run subdirectories.
  # PostgreSQL's pid files are its own (scripts/postgres stops it below).
  for f in "$WORK/driver.pid" $(find "$WORK" -mindepth 1 -name '*.pid' ! -path "$WORK/driver.pid" \
      ! -path "$WORK/postgres*/*" 2>/dev/null); do
    [[ -f $f ]] || continue
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  [[ -d $WORK/dovecot ]] && "$ROOT/scripts/dovecot" stop "$WORK/dovecot" --kill >/dev/null 2>&1
  local pg
  for pg in "$WORK"/postgres*; do
    [[ -d $pg ]] && { "$ROOT/scripts/postgres" stop "$pg" --kill >/dev/null 2>&1 || true; }
  done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}

# A private temp dir for one run; everything started is recorded in it.
bench_workdir() {
  # On tmpfs when there is one (/dev/shm), as the figures in issue 8 were taken: on a disk,
  # Dovecot's fsync per APPEND would be what a burst measures. BENCH_TMPDIR overrides.
  local base=${BENCH_TMPDIR:-/tmp}
  [[ -z ${BENCH_TMPDIR:-} && $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs && -w /dev/shm ]] && base=/dev/shm
  WORK=$(mktemp -d "$base/mailhook-bench-$1-XXXXXX")
  # As root, Dovecot's auth and mail processes run as other users: they need +x.
  chmod 755 "$WORK"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# Arguments go to scripts/dovecot start (e.g. --extra-users N).
bench_dovecot() {
  say "starting a private Dovecot in $WORK/dovecot"
  "$ROOT/scripts/dovecot" start "$WORK/dovecot" "$@" >/dev/null || die "scripts/dovecot start failed"
  # shellcheck disable=SC1091
  source "$WORK/dovecot/env"
  export DOVECOT_IMAPS_PORT DOVECOT_IMAP_PORT DOVECOT_CA_FILE DOVECOT_DIR
}

# Runs a command in the background and waits for it: a shell waiting on a
# foreground child defers its traps until the child exits, so `kill` or
# `timeout` on this script alone would not stop anything until then. The
# child's pid goes to $WORK/driver.pid, which the cleanup stops first.
bench_run() {
  "$@" &
  echo $! >"$WORK/driver.pid"
  wait $!
}

# Facts that make a result comparable with another: what ran, on what.
bench_facts() {
  local rev dirty
  rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  dirty=$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | head -1)
  [[ -n $dirty ]] && rev="$rev+dirty-src"
  python3 - "$rev" "$MAILHOOK" "${WORK:-/tmp}" <<'PY'
import json, os, platform, subprocess, sys
rev, mailhook, work = sys.argv[1], sys.argv[2], sys.argv[3]
def out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None
cpu = None
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
mem_kb = None
try:
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1]); break
except OSError:
    pass
print(json.dumps({
    "git_rev": rev,
    "mailhook_version": (out([mailhook, "version"]) or "").splitlines()[0:1],
    "dovecot_version": out(["dovecot", "--version"]),
    "kernel": platform.release(),
    "cpus": os.cpu_count(),
    "cpu_model": cpu,
    "mem_total_mib": mem_kb // 1024 if mem_kb else None,
    "loadavg_at_start": os.getloadavg()[0],
    "work_fs": out(["stat", "-f", "-c", "%T", work]),
}))
PY
}

# Installs the Node peer's pinned packages (bench/peer/package-lock.json) into
# bench/peer/node_modules unless they are there already. Needs node and npm (Debian
# packages nodejs and npm) and the npm registry.
bench_peer() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "the Node peer needs node and npm (apt-get install nodejs npm)"
  fi
  local peer=$BENCH_DIR/peer
  # node_modules/.bench-lock: the lock file it was installed from.
  if ! cmp -s "$peer/package-lock.json" "$peer/node_modules/.bench-lock" 2>/dev/null; then
    say "installing the Node peer's packages (npm ci in $peer)"
    npm ci --prefix "$peer" --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed in $peer"
    cp "$peer/package-lock.json" "$peer/node_modules/.bench-lock"
  fi
}
