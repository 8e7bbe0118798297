#pragma once
/// FakeImapServer: a scripted IMAP server on 127.0.0.1 for unit tests of the
/// Session class (integration tests use a real Dovecot). It answers LOGIN,
/// SELECT, CAPABILITY, NOOP, LOGOUT and hands UID commands to a callback that
/// returns the untagged lines to send before the tagged OK.

#include <functional>
#include <string>
#include <thread>

namespace mailhook::imap::fake {

/// Serves one connection on a thread. Thread-safe to destroy at any point.
class FakeImapServer {
 public:
  /// `on_uid(command_line)` returns the untagged response text (with CRLFs)
  /// to send before "<tag> OK"; return "BAD" to answer a tagged BAD instead.
  explicit FakeImapServer(std::function<std::string(const std::string&)> on_uid,
                          std::string greeting = "* OK [CAPABILITY IMAP4rev1 IDLE] fake ready\r\n",
                          std::string capabilities = "IMAP4rev1 IDLE UIDPLUS");
  ~FakeImapServer();
  int port() const { return port_; }
  /// Every command line the client sent, for assertions (after the client closed).
  std::string transcript() const { return transcript_; }

 private:
  void Serve();
  std::function<std::string(const std::string&)> on_uid_;
  std::string greeting_;
  std::string capabilities_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::string transcript_;
  std::thread thread_;
};

}  // namespace mailhook::imap::fake
