#include "pgstore/pg_error.h"

#include <cctype>

namespace mailhook::pgstore {
namespace {

using util::RetryClass;

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool IsSqlstateChar(char c) { return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'A' && c <= 'Z'); }

constexpr SqlstateMeaning kConnection{
    "store.pg.connection", RetryClass::kBackoff,
    "the connection to PostgreSQL is gone or could not be made; mailhook reconnects with backoff: check that the "
    "server is up and reachable at the host and port of store.url"};

}  // namespace

SqlstateMeaning ClassifySqlstate(std::string_view s) {
  if (s.empty() || StartsWith(s, "08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "25P03") {
    return kConnection;
  }
  if (s == "40001" || s == "40P01") {
    return {"store.pg.conflict", RetryClass::kRetryNow,
            "a concurrent transaction conflicted with this one (serialization failure or deadlock): run it again"};
  }
  if (StartsWith(s, "53")) {
    return {"store.pg.resources", RetryClass::kBackoff,
            "the server is short of a resource (53300: too many connections: raise max_connections or run fewer "
            "replicas; 53100: its disk is full; 53200: out of memory)"};
  }
  if (s == "57014") {
    return {"store.pg.timeout", RetryClass::kBackoff,
            "a statement ran past statement_timeout: the server is overloaded or a lock is held too long"};
  }
  if (StartsWith(s, "58") || StartsWith(s, "XX")) {
    return {"store.pg.server", RetryClass::kBackoff,
            "the server reported a system or internal error: see the PostgreSQL server's log"};
  }
  if (StartsWith(s, "28")) {
    return {"store.pg.auth", RetryClass::kNeedsOperator,
            "authentication failed: check the user and password of store.url (or store.url_file) and the server's "
            "pg_hba.conf"};
  }
  if (s == "3D000") {
    return {"store.pg.database", RetryClass::kNeedsOperator,
            "the database does not exist: create it (createdb -O <user> <database>) or fix the database name in "
            "store.url"};
  }
  return {"store.pg.sql", RetryClass::kNeedsOperator,
          "an unexpected SQL error: a schema mismatch or a bug in mailhook; report it with this message"};
}

util::Error PgError(std::string_view sqlstate, std::string_view what, std::string_view detail) {
  const SqlstateMeaning meaning = ClassifySqlstate(sqlstate);
  std::string message(what);
  // libpq's texts end in a newline and may span lines (continuations begin
  // with a tab): one line per Error.
  std::string flat;
  for (char c : detail) {
    if (c == '\t') continue;
    flat.push_back(c == '\n' ? ' ' : c);
  }
  while (!flat.empty() && flat.back() == ' ') flat.pop_back();
  if (!flat.empty()) message += ": " + flat;
  if (!sqlstate.empty()) message += " (SQLSTATE " + std::string(sqlstate) + ")";
  message += "; " + std::string(meaning.fix);
  return util::Error(util::ErrorKind::kStore, std::string(meaning.code), meaning.retry, std::move(message));
}

std::string SqlstateInVerboseMessage(std::string_view message) {
  // "<SEVERITY>:  <SQLSTATE>: <text>": two spaces after the severity, then
  // five code characters and a colon.
  for (size_t pos = message.find(":  "); pos != std::string_view::npos; pos = message.find(":  ", pos + 1)) {
    std::string_view rest = message.substr(pos + 3);
    if (rest.size() >= 6 && rest[5] == ':') {
      bool code = true;
      for (size_t i = 0; i < 5; ++i) code = code && IsSqlstateChar(rest[i]);
      if (code) return std::string(rest.substr(0, 5));
    }
  }
  return "";
}

}  // namespace mailhook::pgstore
