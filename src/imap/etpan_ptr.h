#pragma once
/// unique_ptr aliases for the libetpan objects we own. Wrap a pointer at the
/// call that hands ownership over; borrowed sub-objects stay raw pointers.
/// Private to src/imap (it includes libetpan; see imap/session.h for the
/// session's own handle, whose closer is declared there without libetpan).

#include <memory>

#include <libetpan/libetpan.h>

namespace mailhook::imap {

template <auto Fn>
struct EtpanDeleter {
  template <typename T>
  void operator()(T* p) const {
    if (p) Fn(p);
  }
};

using FetchResultPtr = std::unique_ptr<clist, EtpanDeleter<mailimap_fetch_list_free>>;
using SearchResultPtr = std::unique_ptr<clist, EtpanDeleter<mailimap_search_result_free>>;
using SetPtr = std::unique_ptr<mailimap_set, EtpanDeleter<mailimap_set_free>>;
using FetchTypePtr = std::unique_ptr<mailimap_fetch_type, EtpanDeleter<mailimap_fetch_type_free>>;
using SearchKeyPtr = std::unique_ptr<mailimap_search_key, EtpanDeleter<mailimap_search_key_free>>;
using FlagListPtr = std::unique_ptr<mailimap_flag_list, EtpanDeleter<mailimap_flag_list_free>>;
using StoreAttPtr = std::unique_ptr<mailimap_store_att_flags, EtpanDeleter<mailimap_store_att_flags_free>>;
/// A stream not (yet) handed to mailimap_connect, which takes it over.
using StreamPtr = std::unique_ptr<mailstream, EtpanDeleter<mailstream_close>>;

}  // namespace mailhook::imap
