#include "pgstore/pg_row_mapper.h"

#include <utility>

#include "pgstore/pg_statement.h"

namespace mailhook::pgstore {
namespace {

// The fields both tables have; `at` is the table's own time.
struct PgRowFields {
  int64_t id = 0;
  store::OutboxItem item;
  int attempts = 0;
  store::TimePoint created_at;
  store::TimePoint at;
  std::string last_error;
};

// Reads the integer column into `out` unless an earlier read failed.
template <typename T>
void ReadInt(const PgRows& rows, int row, int column, T& out, util::Status& status) {
  if (!status) return;
  auto v = rows.Int64(row, column);
  if (!v)
    status = v.error();
  else
    out = static_cast<T>(*v);
}

void ReadText(const PgRows& rows, int row, int column, std::string& out, util::Status& status) {
  if (!status) return;
  auto v = rows.Text(row, column);
  if (!v)
    status = v.error();
  else
    out.assign(*v);
}

util::Result<PgRowFields> MapPgRow(const PgRows& rows, int row, store::Bodies* bodies) {
  PgRowFields f;
  int64_t created_at = 0;
  int64_t at = 0;
  util::Status st = util::Ok();
  ReadInt(rows, row, 0, f.id, st);
  ReadText(rows, row, 1, f.item.event_id, st);
  ReadText(rows, row, 2, f.item.target, st);
  ReadText(rows, row, 3, f.item.account, st);
  ReadText(rows, row, 4, f.item.folder, st);
  ReadInt(rows, row, 5, f.item.uidvalidity, st);
  ReadInt(rows, row, 6, f.item.uid, st);
  ReadInt(rows, row, 7, f.attempts, st);
  ReadInt(rows, row, 8, created_at, st);
  ReadInt(rows, row, 9, at, st);
  ReadText(rows, row, 10, f.last_error, st);
  if (bodies != nullptr) ReadText(rows, row, 11, f.item.payload, st);
  if (!st) return st.error();
  f.created_at = PgTime(created_at);
  f.at = PgTime(at);
  if (bodies != nullptr && f.item.payload.empty()) {
    auto body = bodies->Read(f.id);
    if (!body) return body.error();
    f.item.payload = std::move(*body);
  }
  return f;
}

template <typename Row, typename To>
util::Result<std::vector<Row>> MapAll(const PgRows& rows, store::Bodies* bodies, To to) {
  std::vector<Row> out;
  out.reserve(static_cast<size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i) {
    auto f = MapPgRow(rows, i, bodies);
    if (!f) return f.error();
    out.push_back(to(std::move(*f)));
  }
  return out;
}

}  // namespace

std::string PgRowColumns(const char* at_column, bool payload) {
  return std::string("id, event_id, target, account, folder, uidvalidity, uid, attempts, created_at, ") + at_column +
         ", last_error" + (payload ? ", payload" : "");
}

util::Result<std::vector<store::Delivery>> MapDeliveries(const PgRows& rows, store::Bodies& bodies) {
  return MapAll<store::Delivery>(rows, &bodies, [](PgRowFields f) {
    return store::Delivery{f.id, std::move(f.item), f.attempts, f.created_at, f.at, std::move(f.last_error)};
  });
}

util::Result<std::vector<store::DeadLetter>> MapDeadLetters(const PgRows& rows, store::Bodies& bodies) {
  return MapAll<store::DeadLetter>(rows, &bodies, [](PgRowFields f) {
    return store::DeadLetter{f.id, std::move(f.item), f.attempts, f.created_at, f.at, std::move(f.last_error)};
  });
}

util::Result<std::vector<store::DeadLetterInfo>> MapDeadLetterInfos(const PgRows& rows) {
  return MapAll<store::DeadLetterInfo>(rows, nullptr, [](PgRowFields f) {
    store::OutboxItem& i = f.item;
    return store::DeadLetterInfo{f.id,
                                 std::move(i.event_id),
                                 std::move(i.target),
                                 std::move(i.account),
                                 std::move(i.folder),
                                 i.uidvalidity,
                                 i.uid,
                                 f.attempts,
                                 f.created_at,
                                 f.at,
                                 std::move(f.last_error)};
  });
}

}  // namespace mailhook::pgstore
