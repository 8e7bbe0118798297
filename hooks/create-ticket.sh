#!/usr/bin/env bash
# create-ticket.sh — a mailhook hook command: opens a ticket in Zammad for each
# event, through Zammad's REST API (POST /api/v1/tickets, documented at
# https://docs.zammad.org/en/latest/api/ticket/index.html).
#
#   command: ["/usr/local/lib/mailhook/hooks/create-ticket.sh"]
#   (add `attachments: content` to the hook to attach the files too)
#
# The ticket: title = the subject ("(no subject)" when empty); group =
# TICKET_GROUP; customer = the first From address, created by Zammad when new
# ("customer_id": "guess:<address>"); one article with the text body (or the
# HTML body when there is no text), sent as a customer note that is not
# internal; attachments that carry content_base64 go along as article
# attachments. On success the new ticket's id and number are printed.
#
# Environment (mailhook passes only what the hook's env: and pass_env: name):
#   TICKET_API_URL    Zammad's base URL, e.g. https://helpdesk.example.com (required)
#   TICKET_API_TOKEN_FILE  a file holding an API access token of an agent with
#                     ticket.agent, e.g. /run/secrets/zammad_token (one trailing
#                     newline is ignored). The token is read from the file, so it
#                     never sits in an environment that curl and jq inherit; it is
#                     sent as "Authorization: Token token=…" from a private
#                     temporary file, never on a command line
#   TICKET_API_TOKEN  the token itself, instead of TICKET_API_TOKEN_FILE (not
#                     both); prefer the file
#   TICKET_GROUP      the group the ticket goes to (default: Users)
#   TICKET_TIMEOUT    seconds for the whole request (default: 20)
#   TICKET_CA_FILE    a CA bundle for a private CA (optional)
#   MAILHOOK_EVENT_ID used in messages (set by mailhook)
# Needs: bash, jq, curl, mktemp.
# Exit codes: 0 ticket created (2xx); 1 the event is unusable or Zammad refused
# it with a 4xx other than 408/429, or answered a redirect (permanent: check the
# token, group and URL, then `mailhook deadletters replay`); 2 bad usage, a
# missing variable or tool (permanent); 75 connection error, timeout, 408, 429
# or 5xx (mailhook retries later).
# Delivery is at least once: if Zammad created the ticket but the answer was
# lost (a timeout), the retry creates a second ticket.
set -uo pipefail

die() { echo "create-ticket: $2" >&2; exit "$1"; }

[[ $# -eq 0 ]] || die 2 "usage: create-ticket.sh (no arguments; configure it with TICKET_* variables)"
for tool in jq curl mktemp; do
  command -v "$tool" >/dev/null || die 2 "$tool is not installed; install it (Debian: apt-get install jq curl)"
done
[[ -n ${TICKET_API_URL:-} ]] || die 2 "TICKET_API_URL is not set; set it to Zammad's base URL (https://helpdesk.example.com)"
declare +x api_token  # never exported, even if the environment had the name
if [[ -n ${TICKET_API_TOKEN_FILE:-} ]]; then
  [[ -z ${TICKET_API_TOKEN:-} ]] || die 2 "both TICKET_API_TOKEN_FILE and TICKET_API_TOKEN are set; keep TICKET_API_TOKEN_FILE"
  [[ -r $TICKET_API_TOKEN_FILE && -f $TICKET_API_TOKEN_FILE ]] \
    || die 2 "TICKET_API_TOKEN_FILE ($TICKET_API_TOKEN_FILE) is not a readable file; check the path and its owner"
  api_token=$(<"$TICKET_API_TOKEN_FILE")  # drops trailing newlines
  api_token=${api_token%$'\r'}
else
  api_token=${TICKET_API_TOKEN:-}
fi
# Not exported: the token stays in this shell, out of curl's and jq's environment.
unset TICKET_API_TOKEN
[[ -n $api_token ]] || die 2 "no token: set TICKET_API_TOKEN_FILE to a file holding a Zammad access token (Profile > Token Access)"
[[ $api_token != *[$'\r\n']* ]] || die 2 "the token contains a line break; put only the token in the file"
case $TICKET_API_URL in
  http://* | https://*) ;;
  *) die 2 "TICKET_API_URL must start with http:// or https://" ;;
esac

WORK=$(mktemp -d) || die 75 "cannot create a temporary directory (is /tmp full?)"
trap 'rm -rf "$WORK"' EXIT
chmod 700 "$WORK"
cat >"$WORK/event.json" || die 75 "cannot buffer the event (is /tmp full?)"

jq --arg group "${TICKET_GROUP:-Users}" '
  .message as $m
  | ($m.from // [] | map(.address // empty) | first // null) as $from
  | if $from == null then error("the event has no From address to use as the customer") else . end
  | (if ($m.text // "") != "" then {body: $m.text, content_type: "text/plain"}
     elif ($m.html // "") != "" then {body: $m.html, content_type: "text/html"}
     else {body: "(no text body)", content_type: "text/plain"} end) as $body
  | (($m.subject // "") | if . == "" then "(no subject)" else . end) as $title
  | {
      title: $title,
      group: $group,
      customer_id: ("guess:" + $from),
      article: ({
        subject: $title,
        type: "note",
        sender: "Customer",
        internal: false,
        from: $from,
        message_id: $m.message_id,
        attachments: [ $m.attachments // [] | .[]
                       | select(.content_base64 != null and .content_base64 != "")
                       | {filename: (.filename // "attachment-\(.part)"),
                          data: .content_base64,
                          "mime-type": (.content_type // "application/octet-stream")} ]
      } + $body)
    }
' "$WORK/event.json" >"$WORK/body.json" 2>"$WORK/jq.err" \
  || die 1 "cannot build the ticket from the event: $(tail -c 300 "$WORK/jq.err")"

# The token goes to curl in a file (-H @file): a command line is readable by
# every local user in /proc.
(umask 077; printf 'Authorization: Token token=%s\n' "$api_token" >"$WORK/headers") \
  || die 75 "cannot write a temporary file"

URL=${TICKET_API_URL%/}/api/v1/tickets
CA=()
[[ -n ${TICKET_CA_FILE:-} ]] && CA=(--cacert "$TICKET_CA_FILE")
STATUS=$(curl --silent --show-error --proto =http,https --max-redirs 0 \
  --max-time "${TICKET_TIMEOUT:-20}" "${CA[@]}" \
  -X POST -H @"$WORK/headers" -H 'Content-Type: application/json' -H 'Accept: application/json' \
  -H "User-Agent: mailhook-create-ticket" \
  --data-binary @"$WORK/body.json" -o "$WORK/response" -w '%{http_code}' "$URL" 2>"$WORK/curl.err")
CURL_EXIT=$?
if ((CURL_EXIT != 0)); then
  # Connection refused, DNS, TLS, timeout: Zammad may be back later.
  die 75 "request to $URL failed (curl exit $CURL_EXIT): $(tail -c 300 "$WORK/curl.err" | tr '\n' ' ')"
fi

answer() { head -c 300 "$WORK/response" | tr '\n\r' '  '; }
case $STATUS in
  2??)
    echo "create-ticket: event ${MAILHOOK_EVENT_ID:-?} -> ticket $(jq -r '"id=\(.id) number=\(.number)"' "$WORK/response" 2>/dev/null || echo '(unparsed answer)')"
    exit 0 ;;
  408 | 429 | 5??) die 75 "Zammad answered HTTP $STATUS (temporary): $(answer)" ;;
  401 | 403) die 1 "Zammad answered HTTP $STATUS: the token is wrong or lacks the ticket.agent permission: $(answer)" ;;
  3??) die 1 "Zammad answered HTTP $STATUS (a redirect; set TICKET_API_URL to the final https:// URL)" ;;
  *) die 1 "Zammad answered HTTP $STATUS (permanent): $(answer)" ;;
esac
