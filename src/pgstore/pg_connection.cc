#include "pgstore/pg_connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <vector>

#include "pgstore/libpq.h"
#include "pgstore/pg_error.h"
#include "pgstore/pg_url.h"
#include "util/log.h"

namespace mailhook::pgstore {
namespace {

using Clock = std::chrono::steady_clock;
using util::Error;
using util::Result;
using util::Status;

// libpq's texts: "LOCATION:" lines (verbose mode) are noise for an operator.
std::string WithoutLocation(std::string_view text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (line.substr(0, 9) != "LOCATION:") {
      if (!out.empty()) out += ' ';
      out.append(line);
    }
    start = end + 1;
  }
  return out;
}

// libpq prints the server's notices and warnings ("there is no transaction
// in progress", "terminating connection due to immediate shutdown") on
// stderr by default; they belong in the log, at debug: the failures that
// matter come back as Errors.
void LogNotice(void* /*arg*/, const char* message) {
  std::string text(message);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  util::Log(util::Area::kStore).debug("store.pg_notice message=\"{}\"", text);
}

Error NotPreparedError(const std::string& name) {
  return Error(util::ErrorKind::kStore, "store.pg.sql", util::RetryClass::kNeedsOperator,
               "statement \"" + name + "\" was not prepared on this connection; a bug in mailhook: report it");
}

// Drives PQconnectPoll until the connection is made, failed, timed out or
// cancelled. libpq ignores connect_timeout in this non-blocking mode (and
// counts it per address in whole seconds): the one deadline is ours.
Status PollConnect(pg_conn* conn, const PgConnectOptions& options, const std::string& url, const std::string& what) {
  const Clock::time_point deadline = Clock::now() + options.connect_timeout;
  // The first wait is for writing, as libpq's documentation prescribes.
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  // PQconnectStart already tried the first address: it may have failed.
  if (Pq().PQstatus(conn) == CONNECTION_BAD) state = PGRES_POLLING_FAILED;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) {
      std::string message = RedactPasswordsOf(url, WithoutLocation(Pq().PQerrorMessage(conn)));
      const std::string sqlstate = SqlstateInVerboseMessage(message);
      // "FATAL:  28P01: password ..." → "FATAL:  password ...": PgError names it once.
      if (size_t at = message.find(sqlstate + ": "); !sqlstate.empty() && at != std::string::npos) {
        message.erase(at, sqlstate.size() + 2);
      }
      return PgError(sqlstate, what, message);
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      return PgError(
          "", what,
          "no answer within the connect timeout of " + std::to_string(options.connect_timeout.count()) + " ms");
    }
    pollfd fds[2] = {{Pq().PQsocket(conn), static_cast<short>(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0},
                     {options.cancel != nullptr ? options.cancel->fd() : -1, POLLIN, 0}};
    const int ready =
        ::poll(fds, options.cancel != nullptr ? 2 : 1, static_cast<int>(std::min<int64_t>(left.count(), INT_MAX)));
    if (ready < 0 && errno != EINTR) return PgError("", what, std::string("poll failed: ") + std::strerror(errno));
    if (options.cancel != nullptr && (fds[1].revents & POLLIN) != 0)
      return PgError("", what, "cancelled (shutting down)");
    if (ready <= 0) continue;  // timed out or interrupted: the deadline check decides
    state = Pq().PQconnectPoll(conn);
  }
  return util::Ok();
}

// A port libpq would refuse when it starts ("5432", "5432,5433"; empty
// means the default): PQconninfoParse does not check it.
bool ValidPorts(std::string_view ports) {
  size_t start = 0;
  while (start <= ports.size()) {
    size_t end = std::min(ports.find(',', start), ports.size());
    std::string_view port = ports.substr(start, end - start);
    int value = 0;
    if (!port.empty()) {
      auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (ec != std::errc() || ptr != port.data() + port.size() || value < 1 || value > 65535) return false;
    }
    start = end + 1;
  }
  return true;
}

// A URL libpq cannot parse (a typo, a bad port) is the operator's to fix, not
// a connection failure to retry.
Status CheckUrl(const std::string& url, const std::string& what) {
  char* err = nullptr;
  PQconninfoOption* options = Pq().PQconninfoParse(url.c_str(), &err);
  std::string detail;
  if (options == nullptr) {
    detail = err != nullptr ? err : "libpq cannot parse it (or is out of memory)";
    Pq().PQfreemem(err);
  } else {
    for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (std::string_view(o->keyword) == "port" && o->val != nullptr && !ValidPorts(o->val)) {
        detail = "invalid port \"" + std::string(o->val) + "\"";
      }
    }
    Pq().PQconninfoFree(options);
  }
  if (detail.empty()) return util::Ok();
  return Error(util::ErrorKind::kStore, "store.pg.url", util::RetryClass::kNeedsOperator,
               what + ": " + RedactPasswordsOf(url, WithoutLocation(detail)) +
                   "; fix store.url (postgresql://user:password@host:port/database, see libpq's connection URIs)");
}

}  // namespace

void PgConnDeleter::operator()(pg_conn* conn) const { Pq().PQfinish(conn); }

PgConnection::PgConnection(PgConnPtr conn, std::string url)
    : conn_(std::move(conn)), url_(std::move(url)), redacted_url_(RedactUrl(url_)) {}

PgConnection::~PgConnection() = default;

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const std::string& url, const PgConnectOptions& options) {
  const std::string what = "connecting to " + RedactUrl(url);
  // Keywords are applied in order and the URL (dbname, expanded) comes last,
  // so a URL that sets one of these keeps its own value. A server that
  // vanished without a FIN (power loss, a cut network) is noticed by the
  // keepalives on an idle connection after about 10 + 3 × 5 s (the kernel's
  // default: two hours), and by tcp_user_timeout after 30 s while a statement
  // sent is unacknowledged (the kernel's: about 15 minutes of retries).
  const std::string timeout_s =
      std::to_string(std::max<int64_t>(2, std::chrono::ceil<std::chrono::seconds>(options.connect_timeout).count()));
  const char* const keys[] = {"fallback_application_name", "keepalives",       "keepalives_idle",
                              "keepalives_interval",       "keepalives_count", "tcp_user_timeout",
                              "connect_timeout",           "dbname",           nullptr};
  const char* const values[] = {"mailhook", "1", "10", "5", "3", "30000", timeout_s.c_str(), url.c_str(), nullptr};
  if (auto s = LoadLibpq(); !s) return s.error();
  if (auto s = CheckUrl(url, what); !s) return s.error();
  PgConnPtr conn(Pq().PQconnectStartParams(keys, values, /*expand_dbname=*/1));
  if (!conn) return PgError("", what, "libpq could not allocate a connection (out of memory)");
  // Verbose messages carry the SQLSTATE of a refused login ("FATAL:  28P01:
  // ..."), which libpq exposes in no other way for a connection attempt.
  Pq().PQsetErrorVerbosity(conn.get(), PQERRORS_VERBOSE);
  Pq().PQsetNoticeProcessor(conn.get(), LogNotice, nullptr);
  if (auto s = PollConnect(conn.get(), options, url, what); !s) return s.error();
  Pq().PQsetErrorVerbosity(conn.get(), PQERRORS_DEFAULT);
  std::unique_ptr<PgConnection> out(new PgConnection(std::move(conn), url));
  if (auto s = out->Run(
          "SET statement_timeout = " + std::to_string(options.statement_timeout.count()) +
          "; SET idle_in_transaction_session_timeout = " + std::to_string(options.idle_in_transaction_timeout.count()));
      !s) {
    return s.error();
  }
  return out;
}

bool PgConnection::broken() const { return !conn_ || Pq().PQstatus(conn_.get()) == CONNECTION_BAD; }

int PgConnection::backend_pid() const { return conn_ ? Pq().PQbackendPID(conn_.get()) : 0; }

Error PgConnection::StatementError(const pg_result* result, std::string_view what) {
  const char* state = result != nullptr ? Pq().PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state != nullptr ? state : "";
  std::string detail = result != nullptr ? Pq().PQresultErrorMessage(result) : "";
  if (detail.empty()) detail = Pq().PQerrorMessage(conn_.get());
  detail = RedactPasswordsOf(url_, WithoutLocation(detail));
  std::string sqlstate = last_sqlstate_;
  // A connection that broke is a connection failure whatever the last
  // statement reported: the owner must reconnect.
  if (broken() && ClassifySqlstate(sqlstate).code != ClassifySqlstate("").code) {
    if (!sqlstate.empty()) detail += " (SQLSTATE " + sqlstate + ")";
    sqlstate.clear();
  }
  return PgError(sqlstate, std::string(what) + " on " + redacted_url_, detail);
}

Result<PgRows> PgConnection::Checked(PgResultPtr result, std::string_view what) {
  const ExecStatusType status = result ? Pq().PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
    last_sqlstate_.clear();
    return PgRows(std::move(result));
  }
  return StatementError(result.get(), what);
}

Status PgConnection::Prepare(const std::string& name, const std::string& sql) {
  if (auto it = prepared_.find(name); it != prepared_.end()) {
    if (it->second == sql) return util::Ok();
    return Error(util::ErrorKind::kStore, "store.pg.sql", util::RetryClass::kNeedsOperator,
                 "statement \"" + name + "\" is already prepared with another SQL text; a bug in mailhook: report it");
  }
  if (broken()) return StatementError(nullptr, "preparing statement \"" + name + "\"");
  auto r = Checked(PgResultPtr(Pq().PQprepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr)),
                   "preparing statement \"" + name + "\"");
  if (!r) return r.error();
  prepared_.emplace(name, sql);
  return util::Ok();
}

Result<PgRows> PgConnection::Exec(const std::string& name, std::span<const PgParam> params) {
  const std::string what = "running statement \"" + name + "\"";
  if (!IsPrepared(name)) return NotPreparedError(name);
  if (broken()) return StatementError(nullptr, what);
  const size_t n = params.size();
  std::vector<const char*> values(n, nullptr);
  std::vector<int> lengths(n, 0);
  std::vector<int> formats(n, 0);
  // Text-format values must end in NUL: integers and texts are copied (they
  // are short); bytes go as they are, in binary format.
  std::vector<std::string> texts(n);
  for (size_t i = 0; i < n; ++i) {
    const PgParam& p = params[i];
    switch (p.kind()) {
      case PgParam::Kind::kInt: texts[i] = std::to_string(p.int_value()); break;
      case PgParam::Kind::kText:
        if (p.data().find('\0') != std::string_view::npos) {
          return PgError("22021", what, "parameter $" + std::to_string(i + 1) + " is text holding a NUL byte")
              .WithMessage(what + ": parameter $" + std::to_string(i + 1) +
                           " is text holding a NUL byte, which PostgreSQL text cannot store; a bug in mailhook "
                           "(send it as bytes)");
        }
        texts[i] = std::string(p.data());
        break;
      case PgParam::Kind::kBytes:
        if (p.data().size() > static_cast<size_t>(INT_MAX)) {
          return PgError("54000", what, "parameter $" + std::to_string(i + 1) + " is over 2 GiB");
        }
        values[i] = p.data().empty() ? "" : p.data().data();  // nullptr would mean NULL
        lengths[i] = static_cast<int>(p.data().size());
        formats[i] = 1;
        continue;
      case PgParam::Kind::kNull: continue;
    }
    values[i] = texts[i].c_str();
  }
  PgResultPtr result(Pq().PQexecPrepared(conn_.get(), name.c_str(), static_cast<int>(n), values.data(), lengths.data(),
                                         formats.data(), /*resultFormat=binary*/ 1));
  return Checked(std::move(result), what);
}

Status PgConnection::Run(const std::string& sql) {
  // The start of the SQL on one line (migrations are indented, multi-line):
  // an Error is one log line.
  std::string start;
  for (char c : sql) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space && (start.empty() || start.back() == ' ')) continue;
    if (start.size() == 40) break;
    start += space ? ' ' : c;
  }
  while (!start.empty() && start.back() == ' ') start.pop_back();
  const std::string what = "running \"" + start + (start.size() == 40 ? "…" : "") + "\"";
  if (broken()) return StatementError(nullptr, what);
  auto r = Checked(PgResultPtr(Pq().PQexec(conn_.get(), sql.c_str())), what);
  if (!r) return r.error();
  return util::Ok();
}

Status PgConnection::InTransaction(const std::function<Status()>& fn) {
  if (in_transaction_) return fn();  // joins the caller's transaction
  if (auto s = Run("BEGIN"); !s) return s;
  in_transaction_ = true;
  Status s = util::Ok();
  try {
    s = RunAndCommit(fn);
  } catch (...) {
    // A throwing fn (a bug, or a test's fault hook) must not leave the
    // session inside the transaction: every later write would join it and
    // never commit.
    in_transaction_ = false;
    RollBack();
    throw;
  }
  in_transaction_ = false;
  if (!s) RollBack();
  return s;
}

Status PgConnection::RunAndCommit(const std::function<Status()>& fn) {
  Status s = fn();
  if (!s) return s;
  Fault("transaction.before_commit");
  PgResultPtr commit(Pq().PQexec(conn_.get(), "COMMIT"));
  auto r = Checked(std::move(commit), "committing");
  if (!r) return r.error();
  if (r->command() != "COMMIT") {
    // COMMIT of a transaction in which a statement failed (and fn went on)
    // answers "ROLLBACK", without an error: nothing was written.
    return PgError("25P02", "committing on " + redacted_url_, "the transaction had failed earlier and was rolled back");
  }
  return util::Ok();
}

void PgConnection::RollBack() {
  // After a COMMIT that answered ROLLBACK the session is idle already.
  if (!broken() && Pq().PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
    PgResultPtr rollback(Pq().PQexec(conn_.get(), "ROLLBACK"));  // a failure leaves the connection broken: thrown away
  }
}

}  // namespace mailhook::pgstore
