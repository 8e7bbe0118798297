#include "store/row_mapper.h"

#include <utility>

namespace mailhook::store {

std::string RowColumns(const char* at_column, bool payload) {
  return std::string("id, event_id, target, account, folder, uidvalidity, uid, attempts, created_at, ") + at_column +
         ", last_error" + (payload ? ", payload" : "");
}

util::Result<RowFields> MapRow(const Stmt& s, bool payload, Bodies* bodies) {
  RowFields f;
  f.id = s.Int(0);
  f.item.event_id = s.Text(1);
  f.item.target = s.Text(2);
  f.item.account = s.Text(3);
  f.item.folder = s.Text(4);
  f.item.uidvalidity = static_cast<uint32_t>(s.Int(5));
  f.item.uid = static_cast<uint32_t>(s.Int(6));
  f.attempts = static_cast<int>(s.Int(7));
  f.created_at = FromMs(s.Int(8));
  f.at = FromMs(s.Int(9));
  f.last_error = s.Text(10);
  if (payload) {
    f.item.payload = s.Text(11);
    if (f.item.payload.empty()) {
      util::Result<std::string> body = bodies->Read(f.id);
      if (!body.ok()) return body.error();
      f.item.payload = std::move(*body);
    }
  }
  return f;
}

Delivery ToDelivery(RowFields f) {
  return Delivery{f.id, std::move(f.item), f.attempts, f.created_at, f.at, std::move(f.last_error)};
}

DeadLetter ToDeadLetter(RowFields f) {
  return DeadLetter{f.id, std::move(f.item), f.attempts, f.created_at, f.at, std::move(f.last_error)};
}

DeadLetterInfo ToDeadLetterInfo(RowFields f) {
  OutboxItem& i = f.item;
  return DeadLetterInfo{f.id,
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
}

}  // namespace mailhook::store
