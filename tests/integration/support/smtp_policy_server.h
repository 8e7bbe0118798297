#pragma once
/// SmtpPolicyServer: a scriptable Postfix policy delegation server
/// (https://www.postfix.org/SMTPD_POLICY_README.html) on 127.0.0.1, so a test
/// Postfix answers RCPT TO with the reply code a test asks for: 451 on the
/// first attempt for an address and 250 later (greylisting), or 550 always.

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "util/result.h"

namespace mailhook::testsupport {

/// Where Postfix asks: at each RCPT TO (smtpd_recipient_restrictions) or
/// after the message's final "." (smtpd_end_of_data_restrictions; the
/// request names the recipient only when the message has exactly one).
enum class PolicyStage { kRcpt, kEndOfData };

/// One policy server. Start() and the destructor are called from one thread
/// (the test); the rules and counters are thread-safe. Postfix keeps a policy
/// connection open across requests and may open several: each connection is
/// served by its own thread, all joined by the destructor.
class SmtpPolicyServer {
 public:
  SmtpPolicyServer() = default;
  ~SmtpPolicyServer();
  SmtpPolicyServer(const SmtpPolicyServer&) = delete;
  SmtpPolicyServer& operator=(const SmtpPolicyServer&) = delete;

  /// Listens on a free port of 127.0.0.1.
  util::Status Start();
  int port() const { return port_; }

  /// The first request at `stage` for `address` (compared without case) is
  /// answered `reply` (an access(5) action, e.g. "451 4.7.1 ..."); later ones
  /// DUNNO (Postfix goes on: 250 for an authenticated client). At kEndOfData
  /// the whole message was sent before the 451.
  void DeferFirstAttemptFor(const std::string& address, const std::string& reply = "451 4.7.1 try again later",
                            PolicyStage stage = PolicyStage::kRcpt);
  /// Every request at `stage` for `address` is answered `reply`.
  void RejectRecipient(const std::string& address, const std::string& reply = "550 5.1.1 no such user",
                       PolicyStage stage = PolicyStage::kRcpt);

  /// Requests seen so far at `stage` (all recipients), and for one address.
  int requests(PolicyStage stage = PolicyStage::kRcpt) const;
  int requests_for(const std::string& address, PolicyStage stage = PolicyStage::kRcpt) const;
  /// Requests answered with a DeferFirstAttemptFor reply (both stages).
  int deferred() const;
  /// Waits until requests_for(address, stage) >= n.
  bool WaitForRequests(const std::string& address, int n, std::chrono::milliseconds timeout,
                       PolicyStage stage = PolicyStage::kRcpt) const;

 private:
  void AcceptLoop();
  void Serve(int fd);
  std::string Decide(const std::map<std::string, std::string>& request);

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<int> connections_;
  std::vector<std::thread> servers_;
  using Key = std::pair<PolicyStage, std::string>;  // stage, lowercase address
  std::map<Key, std::string> defer_first_;          // -> reply
  std::map<Key, std::string> reject_;               // -> reply
  std::map<Key, int> seen_;                         // -> requests
  std::map<PolicyStage, int> requests_;
  int deferred_ = 0;
};

}  // namespace mailhook::testsupport
