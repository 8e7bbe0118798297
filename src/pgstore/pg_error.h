#pragma once
/// What a PostgreSQL failure means for mailhook: SQLSTATE (and a broken
/// connection, which has none) → a util::Error of kind kStore with a stable
/// code, a retry class and a message naming the cause and the fix.
///
/// | SQLSTATE | code | retry |
/// | --- | --- | --- |
/// | none (no answer: connection broken, refused, timed out), 08xxx, 57P01-57P03, 25P03 | store.pg.connection |
/// kBackoff (reconnect) | | 40001, 40P01 | store.pg.conflict | kRetryNow (run the transaction again) | | 53xxx |
/// store.pg.resources | kBackoff | | 57014 | store.pg.timeout | kBackoff | | 58xxx, XXxxx | store.pg.server | kBackoff
/// | | 28xxx | store.pg.auth | kNeedsOperator | | 3D000 | store.pg.database | kNeedsOperator | | anything else |
/// store.pg.sql | kNeedsOperator |

#include <string>
#include <string_view>

#include "util/result.h"

namespace mailhook::pgstore {

/// The meaning of one SQLSTATE: Error code, retry class and what to do.
struct SqlstateMeaning {
  std::string_view code;
  util::RetryClass retry;
  std::string_view fix;
};

/// Classifies `sqlstate` (five characters; "" = no server answer). Pure.
SqlstateMeaning ClassifySqlstate(std::string_view sqlstate);

/// The Error for a failure: "<what>: <detail> (SQLSTATE <s>); <fix>". `what`
/// says what was being done ("connecting to postgresql://u:<redacted>@h/db");
/// `detail` is the server's or libpq's text. Neither may hold a password:
/// the connection redacts them first (pg_url.h).
util::Error PgError(std::string_view sqlstate, std::string_view what, std::string_view detail);

/// The SQLSTATE inside a libpq message built with PQERRORS_VERBOSE
/// ("FATAL:  28P01: password authentication failed ..."), or "" when it has
/// none (a client-side failure: refused, timed out). libpq exposes no SQLSTATE
/// for a failed connection attempt but this; the severity word may be
/// translated, the code is not.
std::string SqlstateInVerboseMessage(std::string_view message);

}  // namespace mailhook::pgstore
