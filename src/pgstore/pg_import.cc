#include "pgstore/pg_import.h"

#include "pgstore/pg_fingerprints.h"
#include "pgstore/pg_schema.h"
#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

using util::Error;
using util::Ok;
using util::Status;

// Every table of the store's state (pg_schema.cc), locked and checked empty
// before the copy; not the cluster's (replicas, account_leases).
constexpr const char* kStateTables[] = {"watermarks",   "outbox",    "dead_letters",   "delivered",
                                        "post_actions", "bodies",    "body_chunks",    "attempts",
                                        "fingerprints", "smtp_sent", "smtp_recipients"};

constexpr PgStatement kImportBody = {"import.body", "INSERT INTO bodies (id, size) VALUES ($1::bigint, $2::bigint)"};
constexpr PgStatement kImportChunk = {
    "import.chunk", "INSERT INTO body_chunks (id, seq, chunk) VALUES ($1::bigint, $2::integer, $3::bytea)"};
// The next id the identity hands out is past every copied one (is_called:
// `last` itself was used); an empty source leaves it at 1.
constexpr PgStatement kImportSetId = {"import.set_id", R"sql(
    SELECT setval(pg_get_serial_sequence('outbox', 'id'), greatest($1::bigint, 1), $1::bigint > 0))sql"};

/// Copies what the export hands over, row by row, into the open transaction.
class PgImportSink final : public store::ExportSink {
 public:
  explicit PgImportSink(PgConnection& conn) : conn_(conn) {}

  Status BeginTable(const std::string& table, const std::vector<std::string>& columns) override {
    table_ = table;
    columns_ = columns;
    statement_ = "import." + table;
    std::string sql = "INSERT INTO " + table + " (";
    std::string values;
    for (size_t i = 0; i < columns.size(); ++i) {
      sql += (i ? ", " : "") + columns[i];
      values += (i ? ", $" : "$") + std::to_string(i + 1);
    }
    sql += ") VALUES (" + values + ")";
    counts_.emplace_back(table, 0);
    return conn_.Prepare(statement_, sql);
  }

  Status Row(const std::vector<store::ExportValue>& values) override {
    texts_.assign(values.size(), std::string());
    params_.clear();
    for (size_t i = 0; i < values.size(); ++i) {
      if (const auto* n = std::get_if<int64_t>(&values[i])) {
        params_.emplace_back(*n);
        continue;
      }
      const std::string& text = std::get<std::string>(values[i]);
      texts_[i] = table_ == "fingerprints" && columns_[i] == "message_key" ? PgFingerprintKey(text) : ValidUtf8(text);
      params_.emplace_back(texts_[i]);
    }
    if (auto r = conn_.Exec(statement_, params_); !r) return RowError(r.error());
    ++counts_.back().second;
    return Ok();
  }

  Status BeginBody(int64_t id, uint64_t size) override {
    if (bodies_ == 0) counts_.emplace_back("bodies", 0);
    ++bodies_;
    ++counts_.back().second;
    body_id_ = id;
    seq_ = 0;
    return RunStatement(conn_, kImportBody, {id, static_cast<int64_t>(size)});
  }

  Status BodyPiece(std::string_view piece) override {
    return RunStatement(conn_, kImportChunk, {body_id_, seq_++, PgParam::Bytes(piece)});
  }

  Status End(int64_t last_outbox_id) override {
    if (bodies_ == 0) counts_.emplace_back("bodies", 0);
    return RunStatement(conn_, kImportSetId, {last_outbox_id});
  }

  ImportCounts counts() const { return counts_; }

 private:
  Error RowError(const Error& e) const {
    return e.WithMessage("copying row " + std::to_string(counts_.back().second + 1) + " of " + table_ + ": " +
                         e.message());
  }

  PgConnection& conn_;
  std::string table_, statement_;
  std::vector<std::string> columns_;
  std::vector<std::string> texts_;  // the repaired texts params_ point into
  std::vector<PgParam> params_;
  ImportCounts counts_;
  int64_t bodies_ = 0;
  int64_t body_id_ = 0;
  int seq_ = 0;
};

// Other writers (a replica started too early) wait until the copy commits,
// and the check below cannot be overtaken by them.
Status LockStateTables(PgConnection& conn) {
  std::string sql = "LOCK TABLE ";
  for (size_t i = 0; i < std::size(kStateTables); ++i) sql += std::string(i ? ", " : "") + kStateTables[i];
  return conn.Run(sql + " IN EXCLUSIVE MODE");
}

// The tables that already hold rows: never merge two states.
Status CheckEmpty(PgConnection& conn) {
  std::string sql;
  for (const char* table : kStateTables) {
    sql += std::string(sql.empty() ? "" : " UNION ALL ") + "SELECT '" + table + "'::text WHERE EXISTS (SELECT 1 FROM " +
           table + ")";
  }
  if (auto s = conn.Prepare("import.nonempty", sql); !s) return s;
  auto rows = conn.Exec("import.nonempty");
  if (!rows) return rows.error();
  if (rows->rows() == 0) return Ok();
  std::string names;
  for (int r = 0; r < rows->rows(); ++r) {
    auto name = rows->Text(r, 0);
    if (!name) return name.error();
    names += (r ? ", " : "") + std::string(*name);
  }
  return Error(util::ErrorKind::kStore, "store.migrate.not_empty", util::RetryClass::kNeedsOperator,
               "the PostgreSQL store at " + conn.redacted_url() + " already holds mailhook state (" + names +
                   "); two states are never merged, nothing was copied: migrate into a database no mailhook has "
                   "used yet (create a new one), or, if this state is disposable, drop its tables first");
}

}  // namespace

util::Result<ImportCounts> ImportState(PgConnection& conn,
                                       const std::function<util::Status(store::ExportSink&)>& export_fn) {
  if (auto s = MigratePg(conn); !s) return s.error();
  PgImportSink sink(conn);
  Status copied = conn.InTransaction([&]() -> Status {
    if (auto s = LockStateTables(conn); !s) return s;
    if (auto s = CheckEmpty(conn); !s) return s;
    return export_fn(sink);
  });
  if (!copied) return copied.error();
  return sink.counts();
}

}  // namespace mailhook::pgstore
