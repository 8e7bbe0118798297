#pragma once
/// libpq, loaded when the PostgreSQL store is first used rather than linked.
///
/// Linked, libpq.so.5 brings Kerberos, LDAP, GnuTLS and p11-kit into every
/// daemon, ~3.2 MiB resident at start even with the default SQLite store
/// (bench/README.md, "Memory again"). So the daemon does not link it:
/// PgConnection::Connect first calls `LoadLibpq`, which dlopens it, and the
/// two files that talk to libpq (pg_connection.cc, pg_rows.cc) call it through
/// `Pq()`. The signatures are libpq-fe.h's own (decltype), so a mismatch does
/// not compile. A private header of src/pgstore: it includes libpq-fe.h.

#include <libpq-fe.h>

#include "util/result.h"

namespace mailhook::pgstore {

// Every libpq function mailhook calls. Add one here to call it.
// clang-format off
#define MAILHOOK_LIBPQ_FUNCTIONS(X) \
  X(PQbackendPID) \
  X(PQclear) \
  X(PQcmdStatus) \
  X(PQcmdTuples) \
  X(PQconnectPoll) \
  X(PQconnectStartParams) \
  X(PQconninfoFree) \
  X(PQconninfoParse) \
  X(PQerrorMessage) \
  X(PQexec) \
  X(PQexecPrepared) \
  X(PQfinish) \
  X(PQfname) \
  X(PQfreemem) \
  X(PQftype) \
  X(PQgetisnull) \
  X(PQgetlength) \
  X(PQgetvalue) \
  X(PQnfields) \
  X(PQntuples) \
  X(PQprepare) \
  X(PQresultErrorField) \
  X(PQresultErrorMessage) \
  X(PQresultStatus) \
  X(PQsetErrorVerbosity) \
  X(PQsetNoticeProcessor) \
  X(PQsocket) \
  X(PQstatus) \
  X(PQtransactionStatus)
// clang-format on

/// libpq's functions, each a pointer named as the function.
struct Libpq {
#define MAILHOOK_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  MAILHOOK_LIBPQ_FUNCTIONS(MAILHOOK_LIBPQ_MEMBER)
#undef MAILHOOK_LIBPQ_MEMBER
};

/// The shared library's name the daemon loads (its SONAME; Debian's libpq5).
inline constexpr const char* kLibpqSoname = "libpq.so.5";

/// Loads libpq (once per process; thread-safe) and looks up every function.
/// When it cannot, an Error (store.pg.libpq, kNeedsOperator) names the cause
/// and the fix: install libpq5, or use the SQLite store. Later calls return
/// the first call's outcome.
util::Status LoadLibpq();

/// The same from the library `soname`, not cached: for tests of the failure.
util::Result<Libpq> LoadLibpqFrom(const char* soname);

/// The loaded functions. Only after LoadLibpq succeeded: a connection exists
/// only after PgConnection::Connect loaded them, so every caller holds one.
const Libpq& Pq();

}  // namespace mailhook::pgstore
