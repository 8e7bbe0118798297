#include "pgstore/pg_bodies.h"

#include <algorithm>

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using util::Status;

constexpr size_t kBodyChunkMax = size_t{1} << 20;

// Replacing a payload (as SQLite's INSERT OR REPLACE) drops its old chunks.
constexpr PgStatement kBodiesClear = {"bodies.clear", "DELETE FROM body_chunks WHERE id = $1::bigint"};
constexpr PgStatement kBodiesSize = {"bodies.size", R"sql(
    INSERT INTO bodies (id, size) VALUES ($1::bigint, $2::bigint)
    ON CONFLICT (id) DO UPDATE SET size = excluded.size)sql"};
constexpr PgStatement kBodiesChunk = {
    "bodies.chunk", "INSERT INTO body_chunks (id, seq, chunk) VALUES ($1::bigint, $2::integer, $3::bytea)"};
constexpr PgStatement kBodiesReadSize = {"bodies.read_size", "SELECT size FROM bodies WHERE id = $1::bigint"};
// One chunk per query: the payload is held once (its string) plus one chunk
// (this query's result), never a result with every chunk besides.
constexpr PgStatement kBodiesReadChunk = {"bodies.read_chunk",
                                          "SELECT chunk FROM body_chunks WHERE id = $1::bigint AND seq = $2::integer"};
constexpr PgStatement kBodiesDelete = {"bodies.delete", R"sql(
    WITH gone AS (DELETE FROM body_chunks WHERE id = $1::bigint)
    DELETE FROM bodies WHERE id = $1::bigint)sql"};
constexpr PgStatement kBodiesOrphans = {"bodies.orphans", R"sql(
    WITH gone AS (
      DELETE FROM bodies b WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = b.id)
        AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.id = b.id) RETURNING id)
    DELETE FROM body_chunks c WHERE c.id IN (SELECT id FROM gone)
      OR NOT EXISTS (SELECT 1 FROM bodies b WHERE b.id = c.id))sql"};

util::Error BodyMissing(int64_t id, const std::string& detail) {
  return util::Error(util::ErrorKind::kStore, "store.pg.sql", util::RetryClass::kBackoff,
                     "reading the payload of row " + std::to_string(id) + ": " + detail +
                         "; the PostgreSQL store lost part of a payload: check the database");
}

}  // namespace

Status PgBodies::Write(int64_t id, uint64_t size, const std::vector<std::shared_ptr<const std::string>>& pieces) {
  return conn_.InTransaction([&]() -> Status {
    if (auto s = RunStatement(conn_, kBodiesClear, {id}); !s) return s;
    if (auto s = RunStatement(conn_, kBodiesSize, {id, static_cast<int64_t>(size)}); !s) return s;
    int seq = 0;
    for (const auto& piece : pieces) {
      for (size_t done = 0; done < piece->size(); done += kBodyChunkMax) {
        const std::string_view chunk = std::string_view(*piece).substr(done, kBodyChunkMax);
        if (auto s = RunStatement(conn_, kBodiesChunk, {id, seq++, PgParam::Bytes(chunk)}); !s) return s;
      }
    }
    return util::Ok();
  });
}

util::Result<std::string> PgBodies::Read(int64_t id) {
  std::string out;
  // The size and the chunks from one snapshot (a delete between them is not
  // a loss); the chunks in order of seq, from 0 (as Write numbers them).
  Status st = InReadSnapshot(conn_, [&]() -> Status {
    auto size = FirstInt(ExecStatement(conn_, kBodiesReadSize, {id}));
    if (!size) return size.error();
    if (!*size) return BodyMissing(id, "no such payload");
    const auto want = static_cast<uint64_t>(**size);
    out.clear();
    out.reserve(want);
    for (int seq = 0; out.size() < want; ++seq) {
      auto rows = ExecStatement(conn_, kBodiesReadChunk, {id, seq});
      if (!rows) return rows.error();
      if (rows->rows() == 0) break;
      auto chunk = rows->Bytes(0, 0);
      if (!chunk) return chunk.error();
      out.append(*chunk);
    }
    if (out.size() != want) {
      return BodyMissing(id, std::to_string(out.size()) + " bytes stored of " + std::to_string(want));
    }
    return util::Ok();
  });
  if (!st) return st.error();
  return out;
}

Status PgBodies::Delete(int64_t id) { return RunStatement(conn_, kBodiesDelete, {id}); }

Status PgBodies::DeleteOrphans() { return RunStatement(conn_, kBodiesOrphans, {}); }

}  // namespace mailhook::pgstore
