#!/bin/sh
# Scores `mime_parse_tool` (the `mailhook parse` pipeline) against the shared
# MIME corpus with its compare.py, for the original files (messages/) and the
# CRLF copies (messages-crlf/), and fails when either score of non-lenient
# checks drops below MIN_SCORE. Both are scored against expected-crlf/:
# `parse` reads a file as an IMAP server stores it (bare LF made CRLF), so an
# LF file must give exactly the event of its CRLF copy (checked too), and
# expected/ (Python on the LF bytes) counts attachment sizes without the CRs
# the daemon's event has.
# Usage: corpus_score.sh TOOL CORPUS_DIR MIN_SCORE
# Exit 77 (skipped) when the corpus or python3 is not there.
set -eu
tool=$1 corpus=$2 min=$3
if [ ! -f "$corpus/compare.py" ] || ! command -v python3 >/dev/null 2>&1; then
  echo "corpus or python3 missing: skipped"
  exit 77
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/lf" "$out/crlf"
for f in "$corpus"/messages/*; do
  n=$(basename "$f")
  "$tool" "$f" > "$out/lf/$n.json"
  g="$corpus/messages-crlf/$n"
  [ -f "$g" ] || g=$f
  "$tool" "$g" > "$out/crlf/$n.json"
done
status=0
for f in "$out"/lf/*.json; do
  n=$(basename "$f")
  grep -v '"created_at"' "$f" > "$out/a"
  grep -v '"created_at"' "$out/crlf/$n" > "$out/b"
  if ! cmp -s "$out/a" "$out/b"; then
    echo "$n: the LF file and its CRLF copy give different events"
    status=1
  fi
done
for variant in lf crlf; do
  expected="$corpus/expected-crlf"
  python3 "$corpus/compare.py" "$out/$variant" --expected "$expected" \
      --mapping "$corpus/mapping.mailhook.json" --worst 5 > "$out/$variant.txt"
  score=$(awk '$1 == "ALL" { sub("%", "", $5); print $5 }' "$out/$variant.txt")
  echo "$variant: ALL ${score}% (minimum ${min}%)"
  if ! awk -v s="$score" -v m="$min" 'BEGIN { exit !(s + 0 >= m + 0) }'; then
    cat "$out/$variant.txt"
    status=1
  fi
done
exit $status
