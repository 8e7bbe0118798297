#!/usr/bin/env bash
# save-attachments.sh — a mailhook hook command: saves the attachments of one
# event to a folder.
#
#   command: ["/usr/local/lib/mailhook/hooks/save-attachments.sh", "/var/lib/mailhook/output/attachments"]
#   (give the hook `attachments: content`, else events carry no bytes to save)
#
# Reads the event JSON on stdin (CONTRACT.md, "Event") and writes every
# attachment that has content_base64 to DIR/<event id>/<safe filename>, plus the
# event itself as DIR/<event id>/event.json. Events without attachment content
# write nothing and succeed.
#
# Filenames come from the sender, so they are made safe: only the last path
# component is kept ("../../etc/passwd" -> "passwd"), control characters are
# dropped, anything but letters, digits, space and ._-+,=@() becomes "_",
# leading dots and spaces are removed (no hidden files, no "." or ".."),
# names are cut to 120 bytes between two characters, keeping a short
# extension (a file system allows 255 bytes, some 143, and a CJK character
# takes 3 or 4), an empty name becomes attachment-<part>,
# and repeats are numbered: invoice.pdf, invoice-1.pdf, invoice-2.pdf.
# The numbering depends only on the event, so a redelivery (mailhook delivers
# at least once) overwrites the same files instead of adding copies. Files are
# written under a temporary name and renamed, so a reader never sees half a
# file. When the event carries a sha256 for an attachment, the decoded bytes
# are checked against it. The event is parsed once, however many attachments
# it has. Files are created 0600 and folders 0700: attachments are mail, and
# mail is private (give a reader the same user, or copy them on).
#
# Arguments: DIR (created if missing).
# Environment: MAILHOOK_EVENT_ID (falls back to the event's "id").
# Needs: bash, jq, base64, sha256sum, mktemp (coreutils).
# Exit codes: 0 saved (or nothing to save); 1 the event is not valid JSON, has
# no id, or an attachment's content is corrupt (permanent); 2 bad usage or a
# missing tool (permanent: fix the hook config); 75 the files could not be
# written (disk full, I/O error; mailhook retries later).
set -uo pipefail
umask 077

die() { echo "save-attachments: $2" >&2; exit "$1"; }

[[ $# -eq 1 && -n $1 ]] || die 2 "usage: save-attachments.sh DIR (the folder to save attachments under)"
DIR=$1
for tool in jq base64 sha256sum mktemp cut split; do
  command -v "$tool" >/dev/null || die 2 "$tool is not installed; install it (Debian: apt-get install jq coreutils)"
done

WORK=$(mktemp -d) || die 75 "cannot create a temporary directory (is /tmp full?)"
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/event.json" || die 75 "cannot buffer the event in $WORK (is /tmp full?)"
jq -e 'type == "object"' "$WORK/event.json" >/dev/null 2>&1 || die 1 "stdin is not a JSON object (expected a mailhook event)"

ID=${MAILHOOK_EVENT_ID:-$(jq -r '.id // empty' "$WORK/event.json")}
# The id becomes a directory name: the same rules as filenames, strictly ASCII.
SAFE_ID=$(printf '%s' "$ID" | LC_ALL=C tr -c 'A-Za-z0-9_.-' '_' | sed 's/^[._]*//' | cut -c1-120)
[[ -n $SAFE_ID ]] || die 1 "the event has no usable id"

# One line per attachment with content: "<index>\t<safe name>\t<sha256 or ->\t<base64>".
# All naming happens here in one pass so that collisions can be numbered, and
# the contents come out in the same pass: the event (megabytes with content)
# is parsed once, not once per attachment.
jq -r '
  def bytes: if . < 128 then 1 elif . < 2048 then 2 elif . < 65536 then 3 else 4 end;
  def utf8_length: explode | map(bytes) | add // 0;
  # The longest prefix of at most $max UTF-8 bytes, cut between characters
  # ($max characters always hold at least $max bytes: cut those first).
  def utf8_cut($max):
    .[0:$max] | explode
    | reduce .[] as $c ({n: 0, out: []};
        if .n < 0 or .n + ($c | bytes) > $max then .n = -1 else .n += ($c | bytes) | .out += [$c] end)
    | .out | implode;
  # At most $max bytes; a short extension survives the cut.
  def fit($max):
    if utf8_length <= $max then .
    else (capture("^(?<stem>.+?)(?<ext>\\.[^.]{1,15})$") // {stem: ., ext: ""}) as $p
         | ($p.stem | utf8_cut($max - ($p.ext | utf8_length))) + $p.ext
    end;
  def safe($part):
    (. // "")
    | split("/") | last // "" | split("\\") | last // ""
    | gsub("[\u0000-\u001f\u007f]"; "")
    | gsub("[^\\p{L}\\p{N} ._+,=@()-]"; "_")
    | sub("^[. ]+"; "")
    | fit(120)
    | sub("[ ]+$"; "")
    | if . == "" then "attachment-" + ($part // "x" | tostring | gsub("[^0-9.]"; "_")) else . end;
  def numbered($n):
    if $n == 0 then .
    else (capture("^(?<stem>.+)(?<ext>\\.[^.]*)$") // {stem: ., ext: ""}) | "\(.stem)-\($n)\(.ext)"
    end;
  [ (.message.attachments // []) | to_entries[]
    | select(.value.content_base64 != null and .value.content_base64 != "")
    | .value.part as $p
    | {index: .key, name: (.value.filename | safe($p)), sha: (.value.sha256 // "-"),
       # Line breaks (MIME style) would be escaped by @tsv: drop them
       # (split/join: jq 1.6 gsub is slow on many matches).
       data: (.value.content_base64 | split("\n") | join("") | split("\r") | join(""))} ]
  | reduce .[] as $a ({taken: {"event.json": true}, out: []};
      . as $s
      | (first(range(0; 100000) as $n | ($a.name | numbered($n)) as $c
               | select(($s.taken[$c | ascii_downcase] // false) | not) | $c)) as $final
      | .taken[$final | ascii_downcase] = true
      | .out += [[$a.index, $final, $a.sha, $a.data]])
  | .out[] | @tsv
' "$WORK/event.json" >"$WORK/all" 2>"$WORK/jq.err" || die 1 "cannot read the attachments: $(tail -c 300 "$WORK/jq.err")"

[[ -s $WORK/all ]] || exit 0
# The names for the loop, and each content in a file of its own (b64.000000, …).
cut -f1-3 "$WORK/all" >"$WORK/list" && cut -f4 "$WORK/all" | split -l 1 -a 6 -d - "$WORK/b64." \
  && rm -f "$WORK/all" || die 75 "cannot split the attachments in $WORK (is /tmp full?)"

TARGET=$DIR/$SAFE_ID
mkdir -p "$TARGET" || die 75 "cannot create $TARGET (check that the folder exists, is writable and the disk is not full)"

# write_atomically SRC NAME: copy into TARGET under a temporary name, then rename.
write_atomically() {
  local tmp
  tmp=$(mktemp "$TARGET/.partial.XXXXXX") || die 75 "cannot create a file in $TARGET (disk full or not writable?)"
  if ! cat "$1" >"$tmp"; then
    rm -f "$tmp"
    die 75 "cannot write $TARGET/$2 (disk full or I/O error?)"
  fi
  mv -f "$tmp" "$TARGET/$2" || { rm -f "$tmp"; die 75 "cannot rename into $TARGET/$2"; }
}

saved=0
while IFS=$'\t' read -r index name sha; do
  base64 -d <"$WORK/b64.$(printf '%06d' "$saved")" >"$WORK/bytes" 2>/dev/null \
    || die 1 "attachment $index ($name): content_base64 is not valid base64"
  if [[ $sha != "-" ]]; then
    got=$(sha256sum "$WORK/bytes" | cut -d' ' -f1)
    [[ ${got,,} == "${sha,,}" ]] || die 1 "attachment $index ($name): sha256 mismatch (event says $sha, content is $got)"
  fi
  write_atomically "$WORK/bytes" "$name"
  saved=$((saved + 1))
done <"$WORK/list"

write_atomically "$WORK/event.json" event.json
echo "save-attachments: saved $saved attachment(s) to $TARGET"
