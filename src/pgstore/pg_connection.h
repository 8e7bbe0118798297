#pragma once
/// PgConnection: one libpq connection to the PostgreSQL store, owned (RAII:
/// PQfinish), with named prepared statements, `$N` parameters, rows read in
/// binary format (pg_rows.h) and the one write path InTransaction. Every
/// failure is a util::Error of kind kStore classified by SQLSTATE
/// (pg_error.h); no message holds the URL's password (pg_url.h).
///
/// A connection that broke (server gone, restarted, network cut) stays
/// broken: every later call fails with store.pg.connection (kBackoff) without
/// touching the socket, and the owner throws it away and connects anew — a
/// broken connection is never patched (isync). Its prepared statements die
/// with it; Prepare them again on the new one.
///
/// Not thread-safe: one PgConnection per thread at a time.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>

#include "pgstore/pg_rows.h"
#include "util/cancel_token.h"
#include "util/result.h"

struct pg_conn;  // libpq's PGconn; only src/pgstore's .cc files see libpq

namespace mailhook::pgstore {

/// Closes a connection (PQfinish): lets unique_ptr own a PGconn.
struct PgConnDeleter {
  void operator()(pg_conn* conn) const;
};
using PgConnPtr = std::unique_ptr<pg_conn, PgConnDeleter>;

/// One `$N` parameter: an integer or text (sent in text format, so the
/// server parses it as whatever type the statement gives `$N`: bigint,
/// integer, uuid, timestamptz), bytes (binary format: a bytea, no escaping
/// copy; write `$N::bytea` where the server cannot infer the type) or NULL.
/// Text and bytes are views: the data must outlive the Exec.
class PgParam {
 public:
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) PgParam(T value)
      : kind_(Kind::kInt), int_(static_cast<int64_t>(value)) {}          // NOLINT: implicit by design
  PgParam(std::string_view text) : kind_(Kind::kText), data_(text) {}    // NOLINT
  PgParam(const std::string& text) : kind_(Kind::kText), data_(text) {}  // NOLINT
  /// nullptr is NULL.
  PgParam(const char* text)  // NOLINT: implicit by design
      : kind_(text != nullptr ? Kind::kText : Kind::kNull), data_(text != nullptr ? text : "") {}

  /// Raw bytes for a bytea parameter.
  static PgParam Bytes(std::string_view data) { return PgParam(Kind::kBytes, data); }
  static PgParam Null() { return PgParam(Kind::kNull, {}); }

  enum class Kind { kInt, kText, kBytes, kNull };
  Kind kind() const { return kind_; }
  int64_t int_value() const { return int_; }
  std::string_view data() const { return data_; }

 private:
  PgParam(Kind kind, std::string_view data) : kind_(kind), data_(data) {}

  Kind kind_;
  int64_t int_ = 0;
  std::string_view data_;
};

/// How to connect, and the per-connection server settings.
struct PgConnectOptions {
  /// The whole attempt (TCP connect, TLS, authentication, the SET below) ends
  /// by then with store.pg.connection: a black-holed server cannot hold a
  /// caller longer. (Name resolution of a host name is outside it: libpq's
  /// getaddrinfo blocks.)
  std::chrono::milliseconds connect_timeout{10000};
  /// statement_timeout: the server cancels a statement running longer.
  std::chrono::milliseconds statement_timeout{30000};
  /// idle_in_transaction_session_timeout: the server ends the session of a
  /// client that sits in an open transaction (a paused or wedged replica),
  /// releasing its locks. Keep it below the lease TTL (30 s by default).
  std::chrono::milliseconds idle_in_transaction_timeout{10000};
  /// When it fires, a Connect under way gives up at once (shutdown).
  const util::CancelToken* cancel = nullptr;
};

/// One open connection; see the file comment.
class PgConnection {
 public:
  /// Connects to `url` (a libpq URI "postgresql://user:pw@host:port/db?..."
  /// or a key/value string); application_name is "mailhook" unless the URL
  /// sets one. TCP keepalives (an idle connection) and tcp_user_timeout (a
  /// statement sent, unacknowledged) notice a server that vanished without a
  /// word (power loss, a cut network) within about 30 s unless the URL sets
  /// them: no call hangs on a dead server for TCP's 15 minutes of retries.
  /// Failures: store.pg.connection (refused, timed out,
  /// cancelled: kBackoff), store.pg.auth, store.pg.database, store.pg.libpq
  /// (libpq cannot be loaded: libpq.h) (kNeedsOperator)…
  static util::Result<std::unique_ptr<PgConnection>> Connect(const std::string& url,
                                                             const PgConnectOptions& options = {});

  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  /// Prepares `sql` (with `$1`… parameters) under `name` on this connection.
  /// Preparing the same name with the same SQL again is a no-op; another SQL
  /// under a used name is an Error (a bug).
  util::Status Prepare(const std::string& name, const std::string& sql);
  bool IsPrepared(const std::string& name) const { return prepared_.count(name) != 0; }
  /// Statements prepared on this connection so far (each name once).
  int64_t prepared_count() const { return static_cast<int64_t>(prepared_.size()); }

  /// Runs the prepared statement `name` with `params` ($1 = params[0]).
  util::Result<PgRows> Exec(const std::string& name, std::span<const PgParam> params = {});
  util::Result<PgRows> Exec(const std::string& name, std::initializer_list<PgParam> params) {
    return Exec(name, std::span<const PgParam>(params.begin(), params.size()));
  }
  /// Runs SQL without parameters, for DDL and session commands (several
  /// statements separated by ';' are allowed: migrations).
  util::Status Run(const std::string& sql);

  /// Runs fn inside BEGIN ... COMMIT (READ COMMITTED); rolls back when fn or
  /// the commit fails, so a failed write changes nothing. Nested calls join
  /// the outer transaction. A store.pg.conflict (kRetryNow) is returned, not
  /// retried here: the caller runs fn again. A store.pg.connection from the
  /// COMMIT itself leaves the outcome unknown (the server may have committed
  /// before the connection broke): writes must be safe to repeat (ON CONFLICT).
  /// An exception out of fn (or of the fault hook) rolls back too, then goes on.
  util::Status InTransaction(const std::function<util::Status()>& fn);
  bool in_transaction() const { return in_transaction_; }

  /// Test-only fault injection, as store::Db's: called at named points inside
  /// write transactions ("transaction.before_commit": fn succeeded, COMMIT
  /// not sent yet; and those PgStore fires through Fault).
  void SetFaultHookForTesting(std::function<void(std::string_view point)> hook) { fault_hook_ = std::move(hook); }
  void Fault(std::string_view point) const {
    if (fault_hook_) fault_hook_(point);
  }

  /// True once the connection failed: throw it away and Connect anew.
  bool broken() const;
  /// The SQLSTATE of the last failed statement ("" for none or a client-side
  /// failure), for callers that decide on one (23505 unique_violation).
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  /// The URL with its password redacted, for messages and logs.
  const std::string& redacted_url() const { return redacted_url_; }
  /// The server's backend process id (pg_terminate_backend in tests).
  int backend_pid() const;

 private:
  PgConnection(PgConnPtr conn, std::string url);
  /// The Error for a failed statement: its SQLSTATE, or a broken connection.
  util::Error StatementError(const pg_result* result, std::string_view what);
  /// Checks a result: ok for `expect_tuples` rows or a command, else the Error.
  util::Result<PgRows> Checked(PgResultPtr result, std::string_view what);
  /// fn, then (when it succeeded) the fault point and COMMIT.
  util::Status RunAndCommit(const std::function<util::Status()>& fn);
  /// Ends the open transaction after a failure (ROLLBACK unless already idle).
  void RollBack();

  PgConnPtr conn_;
  std::string url_;  ///< with the password: only to redact it from messages
  std::string redacted_url_;
  std::unordered_map<std::string, std::string> prepared_;
  std::string last_sqlstate_;
  bool in_transaction_ = false;
  std::function<void(std::string_view)> fault_hook_;
};

}  // namespace mailhook::pgstore
