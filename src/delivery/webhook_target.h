#pragma once
/// WebhookTarget: HTTP POST of an event to one configured webhook, signed per
/// Standard Webhooks (delivery/signing.h).
///
/// HTTPS verifies the server certificate against the system store (or the
/// webhook's ca_file) and checks the host name; redirects are not followed (a 3xx
/// is a permanent failure); keep-alive connections are pooled and reused.
/// Custom headers from the config are sent but never logged.
///
/// Thread-safe: Deliver may run on several threads at once (each takes its own
/// pooled connection). Never throws.

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "delivery/target.h"
#include "util/result.h"

namespace httplib {
class Client;
}

namespace mailhook::delivery {

/// An http(s) URL split for httplib.
struct ParsedUrl {
  std::string origin;  ///< "https://host:port"
  std::string path;    ///< "/hooks/email?x=1"; "/" when empty
  bool https = false;
};

/// Splits http(s)://host[:port][/path]; an Error names the bad URL's problem.
util::Result<ParsedUrl> ParseUrl(const std::string& url);

/// One webhook from the config.
class WebhookTarget : public Target {
 public:
  /// Validates the URL and secrets; `version` goes into the User-Agent.
  static util::Result<std::unique_ptr<WebhookTarget>> Create(const config::Webhook& webhook,
                                                             const std::string& version);
  ~WebhookTarget() override;

  Outcome Deliver(const store::Delivery& delivery) override;
  void Cancel() override;

  const std::string& name() const { return webhook_.name; }

 private:
  WebhookTarget(config::Webhook webhook, ParsedUrl url, std::string user_agent);
  std::unique_ptr<httplib::Client> TakeClient();
  void ReturnClient(std::unique_ptr<httplib::Client> client);

  const config::Webhook webhook_;
  const ParsedUrl url_;
  const std::string user_agent_;

  std::mutex mu_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;  // guarded by mu_
  std::set<httplib::Client*> in_flight_;                // guarded by mu_
  std::set<httplib::Client*> cancelled_;                // guarded by mu_
};

}  // namespace mailhook::delivery
