#pragma once
/// FakeSmtpServer: a scripted SMTP submission server on 127.0.0.1 for unit
/// tests of the SMTP client (src/smtp), with STARTTLS or implicit TLS from a
/// throwaway test CA (TestCertificates). Integration tests use a real
/// Postfix instead.

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "temp_dir.h"

namespace mailhook::testsupport {

/// A CA and a certificate for 127.0.0.1 signed by it, made once per process
/// with the openssl CLI (EC keys: fast).
class TestCertificates {
 public:
  static const TestCertificates& Get();
  bool ok() const { return ok_; }
  std::string ca_file() const { return dir_ / "ca.pem"; }
  std::string cert_file() const { return dir_ / "good.pem"; }
  std::string key_file() const { return dir_ / "good.key"; }

 private:
  TestCertificates();
  TempDir dir_{"mh_smtp_tls_"};
  bool ok_ = false;
};

/// What the fake server says.
struct FakeSmtpScript {
  std::string greeting = "220 fake.test ESMTP ready\r\n";
  /// The EHLO answer; after TLS the same without its STARTTLS line.
  std::string ehlo =
      "250-fake.test hello\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250-STARTTLS\r\n"
      "250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN XOAUTH2\r\n";
  bool implicit_tls = false;  ///< TLS from the first byte (port 465 style)
  /// Waits this long before every reply (the greeting too): a slow server
  /// that still answers each single step within the client's timeout.
  std::chrono::milliseconds reply_delay{0};
  /// Overrides, tried in order: a received line starting with the first
  /// string (case-insensitive; "." is the end of DATA) is answered with the
  /// second. Special answers: "HANG" (read on, answer nothing), "CLOSE"
  /// (close the connection), "ENDLESS" ("250-" lines until the client goes).
  std::vector<std::pair<std::string, std::string>> replies;
};

/// Serves one connection on a thread. Thread-safe to destroy at any point.
class FakeSmtpServer {
 public:
  explicit FakeSmtpServer(FakeSmtpScript script);
  ~FakeSmtpServer();
  FakeSmtpServer(const FakeSmtpServer&) = delete;
  FakeSmtpServer& operator=(const FakeSmtpServer&) = delete;

  int port() const { return port_; }
  /// Waits until the connection has ended (or none came for 10 s).
  void Join();
  /// Every command line received (AUTH continuations included), without CRLF.
  std::vector<std::string> commands() const;
  /// The lines received before TLS started.
  std::vector<std::string> clear_commands() const;
  /// The DATA bytes as received, ".\r\n" included.
  std::string data() const;

 private:
  struct Conn;
  void Serve();
  bool Dialogue(Conn& c);
  std::string Choose(const std::string& line, const std::string& fallback) const;
  /// Answers `line` (Choose); false when the connection is to end.
  bool Reply(Conn& c, const std::string& line, const std::string& fallback);
  bool Act(Conn& c, const std::string& reply);
  void Record(const std::string& line, bool encrypted);

  FakeSmtpScript script_;
  int listen_fd_ = -1;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<std::string> commands_;
  std::vector<std::string> clear_;
  std::string data_;
  std::thread thread_;
};

}  // namespace mailhook::testsupport
