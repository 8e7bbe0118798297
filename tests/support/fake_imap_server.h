#pragma once
/// FakeImapServer: a scripted IMAP server on 127.0.0.1 for unit tests of the
/// Session class (integration tests use a real Dovecot). It answers LOGIN,
/// SELECT, CAPABILITY, NOOP, LOGOUT and hands UID commands to a callback that
/// returns the untagged lines to send before the tagged OK.

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "imap/session.h"

namespace mailhook::imap::fake {

/// Serves one connection on a thread. Thread-safe to destroy at any point.
class FakeImapServer {
 public:
  /// `on_uid(command_line)` returns the untagged response text (with CRLFs)
  /// to send before "<tag> OK"; return "BAD" to answer a tagged BAD instead.
  /// `replies` overrides the answer to a command by its upper-case verb
  /// ("LOGIN", "STARTTLS"...): "$TAG" becomes the tag and "$LINE" the whole
  /// command line; "CLOSE" as the reply closes the connection instead, and a
  /// reply ending in "$CLOSE" closes it after the text before.
  /// A bare "DONE" line is answered with replies["DONE"] ($TAG: the IDLE's
  /// tag), by default "<tag> OK idle done".
  explicit FakeImapServer(std::function<std::string(const std::string&)> on_uid,
                          std::string greeting = "* OK [CAPABILITY IMAP4rev1 IDLE] fake ready\r\n",
                          std::string capabilities = "IMAP4rev1 IDLE UIDPLUS",
                          std::map<std::string, std::string> replies = {});
  ~FakeImapServer();
  int port() const { return port_; }
  /// Waits until the one connection has ended (or none came for 10 s).
  void Join();
  /// Every command line the client sent, for assertions (after the client closed).
  std::string transcript() const { return transcript_; }

 private:
  void Serve();
  std::function<std::string(const std::string&)> on_uid_;
  std::string greeting_;
  std::string capabilities_;
  std::map<std::string, std::string> replies_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::string transcript_;
  std::thread thread_;
};

/// Options for a Session to a fake server on 127.0.0.1:`port`: no TLS, user
/// "alice", password "pw" (kFakePassword), 3 s timeout. (Only for targets that
/// link mh_imap.)
inline constexpr const char* kFakePassword = "pw";
inline SessionOptions FakeSessionOptions(int port) {
  SessionOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<uint16_t>(port);
  o.tls = config::TlsMode::kNone;
  o.username = "alice";
  o.password = util::Secret(kFakePassword);
  o.timeout = std::chrono::milliseconds(3000);
  return o;
}

/// A FakeImapServer in a child process, so that its memory (a 16 MB
/// response, built and copied) is not counted in the test's own RSS. Every
/// UID command is answered with `make_reply()`, built in the child.
class FakeImapServerProcess {
 public:
  explicit FakeImapServerProcess(const std::function<std::string()>& make_reply,
                                 std::string greeting = "* OK [CAPABILITY IMAP4rev1 IDLE] fake ready\r\n",
                                 std::string capabilities = "IMAP4rev1 IDLE UIDPLUS");
  ~FakeImapServerProcess();  ///< waits for the child
  int port() const { return port_; }

 private:
  int pid_ = -1;
  int port_ = 0;
};

}  // namespace mailhook::imap::fake
