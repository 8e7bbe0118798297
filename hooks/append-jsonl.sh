#!/usr/bin/env bash
# append-jsonl.sh — a mailhook hook command: appends each event to a JSON
# Lines file (one compact JSON object per line), e.g. for jq, Vector or an
# audit trail.
#
#   command: ["/usr/local/lib/mailhook/hooks/append-jsonl.sh", "/var/lib/mailhook/output/events.jsonl"]
#
# Reads the event JSON on stdin, re-encodes it as one compact line (newlines
# inside strings stay escaped, so a line is always one event) and appends it
# to FILE while holding an exclusive flock(2) on FILE: hooks running at the
# same time never interleave their lines. If the file ends in a partial line
# (a writer died mid-line, or the disk filled), a newline is added first so
# the new event starts on its own line. mailhook delivers at least once: a
# consumer deduplicates by the event's "id".
#
# Arguments: FILE (created with mode 0640 if missing; its folder must exist).
# Environment: APPEND_JSONL_LOCK_TIMEOUT — seconds to wait for the lock
#   (default 30; then exit 75).
# Needs: bash, jq, flock (util-linux), tail and wc (coreutils).
# Exit codes: 0 appended; 1 stdin is not exactly one JSON value (permanent);
# 2 bad usage or a missing tool (permanent: fix the hook config); 75 the lock
# was not granted in time or the write failed (disk full; mailhook retries).
set -uo pipefail

die() { echo "append-jsonl: $2" >&2; exit "$1"; }

[[ $# -eq 1 && -n $1 ]] || die 2 "usage: append-jsonl.sh FILE (the JSON Lines file to append to)"
FILE=$1
for tool in jq flock tail; do
  command -v "$tool" >/dev/null || die 2 "$tool is not installed; install it (Debian: apt-get install jq util-linux coreutils)"
done

# -s slurps every value on stdin: exactly one is a valid event; two would
# become two lines and break "one line per delivery".
LINE=$(jq -c -s 'if length == 1 then .[0] else error("expected exactly one JSON value, got \(length)") end' 2>&1) \
  || die 1 "stdin is not one JSON value: ${LINE:0:300}"

umask 027
# An empty volume (a new PersistentVolumeClaim, a bind mount) has no output
# folder yet: make it rather than retrying forever.
mkdir -p "$(dirname "$FILE")" || die 75 "cannot create the folder of $FILE (check it is writable and the disk is not full)"
# fd 9 stays open for the whole append; the lock is released when it closes.
exec 9>>"$FILE" || die 75 "cannot open $FILE for appending (check the folder exists and is writable)"
flock -x -w "${APPEND_JSONL_LOCK_TIMEOUT:-30}" 9 || die 75 "timed out waiting for the lock on $FILE"

prefix=""
if [[ -s $FILE && $(tail -c 1 "$FILE" | wc -l) -eq 0 ]]; then
  prefix=$'\n'
fi
# One printf: bash writes the whole line with as few write(2) calls as it can;
# the lock makes that irrelevant for other hooks anyway.
printf '%s%s\n' "$prefix" "$LINE" >&9 || die 75 "cannot write to $FILE (disk full or I/O error?)"
