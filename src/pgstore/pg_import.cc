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

// Rows go in batches of one multi-row INSERT (a round trip per row would
// make a large state take minutes), bounded in rows and in bytes of text so
// memory stays small whatever the rows hold.
constexpr size_t kImportBatchRows = 200;
constexpr size_t kImportBatchBytes = size_t{1} << 20;

// INSERT INTO table (columns) VALUES ($1, $2), ($3, $4)...: `rows` rows.
std::string ImportInsertSql(const std::string& table, const std::vector<std::string>& columns, size_t rows) {
  std::string sql = "INSERT INTO " + table + " (";
  for (size_t i = 0; i < columns.size(); ++i) sql += (i ? ", " : "") + columns[i];
  sql += ") VALUES ";
  size_t n = 0;
  for (size_t r = 0; r < rows; ++r) {
    sql += r ? ", (" : "(";
    for (size_t i = 0; i < columns.size(); ++i) sql += (i ? ", $" : "$") + std::to_string(++n);
    sql += ")";
  }
  return sql;
}

/// Copies what the export hands over, in batches, into the open transaction.
class PgImportSink final : public store::ExportSink {
 public:
  explicit PgImportSink(PgConnection& conn) : conn_(conn) {}

  Status BeginTable(const std::string& table, const std::vector<std::string>& columns) override {
    if (auto s = Flush(); !s) return s;
    table_ = table;
    columns_ = columns;
    counts_.emplace_back(table, 0);
    return Ok();
  }

  Status Row(const std::vector<store::ExportValue>& values) override {
    for (size_t i = 0; i < values.size(); ++i) {
      if (const auto* text = std::get_if<std::string>(&values[i])) {
        const bool key = table_ == "fingerprints" && columns_[i] == "message_key";
        pending_.emplace_back(key ? PgFingerprintKey(*text) : ValidUtf8(*text));
        pending_bytes_ += text->size();
      } else {
        pending_.push_back(values[i]);
      }
    }
    if (++pending_rows_ < kImportBatchRows && pending_bytes_ < kImportBatchBytes) return Ok();
    return Flush();
  }

  // The buffered rows, as one INSERT (prepared once per table and batch size).
  Status Flush() {
    if (pending_rows_ == 0) return Ok();
    const std::string name = "import." + table_ + "." + std::to_string(pending_rows_);
    if (auto s = conn_.Prepare(name, ImportInsertSql(table_, columns_, pending_rows_)); !s) return s;
    std::vector<PgParam> params;
    params.reserve(pending_.size());
    for (const auto& value : pending_) {
      if (const auto* n = std::get_if<int64_t>(&value)) {
        params.emplace_back(*n);
      } else {
        params.emplace_back(std::get<std::string>(value));
      }
    }
    if (auto r = conn_.Exec(name, params); !r) return BatchError(r.error());
    counts_.back().second += static_cast<int64_t>(pending_rows_);
    pending_.clear();
    pending_rows_ = 0;
    pending_bytes_ = 0;
    return Ok();
  }

  Status BeginBody(int64_t id, uint64_t size) override {
    if (auto s = Flush(); !s) return s;
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
    if (auto s = Flush(); !s) return s;
    if (bodies_ == 0) counts_.emplace_back("bodies", 0);
    return RunStatement(conn_, kImportSetId, {last_outbox_id});
  }

  ImportCounts counts() const { return counts_; }

 private:
  Error BatchError(const Error& e) const {
    const int64_t first = counts_.back().second + 1;
    return e.WithMessage("copying rows " + std::to_string(first) + " to " +
                         std::to_string(first + static_cast<int64_t>(pending_rows_) - 1) + " of " + table_ + ": " +
                         e.message());
  }

  PgConnection& conn_;
  std::string table_;
  std::vector<std::string> columns_;
  std::vector<store::ExportValue> pending_;  // the batch's values, texts repaired
  size_t pending_rows_ = 0;
  size_t pending_bytes_ = 0;
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
                   "), and two states are never merged: migrate into a new, empty database (CREATE DATABASE) and "
                   "set store.url to it; if this is the state an earlier migration copied, that one is done");
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
