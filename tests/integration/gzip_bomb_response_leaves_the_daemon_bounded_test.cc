// A webhook receiver that answers the event POST with 200 and a gzip bomb
// (Content-Encoding: gzip, ~1 MB that inflates to 1 GiB) leaves the daemon's
// memory bounded: the event is delivered (delivery.ok, the receiver said 200),
// the peak RSS stays within 50 MB of what it was before, and /healthz keeps
// answering within 3 s (the liveness probe's budget) while the bomb is being
// served (issue 7). The daemon never inflates a response: it reads at most
// kMaxResponseBodyBytes of it, as sent.

#include <httplib.h>
#include "gzip_bomb.h"

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <regex>
#include <string>

#include "../delivery/raw_receiver.h"
#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

using delivery::testing::RawReceiver;
using Clock = std::chrono::steady_clock;

constexpr size_t kMiB = 1024 * 1024;
constexpr size_t kInflatedBytes = 1024 * kMiB;
// What the receiver sends before it waits for the test's /healthz check: less
// than the daemon's 64 KiB response cap, so the daemon is still reading.
constexpr size_t kFirstPartBytes = 16 * 1024;

/// How many bytes `gz` inflates to (checks the bomb is what it claims).
size_t InflatedSize(const std::string& gz) {
  z_stream z{};
  inflateInit2(&z, 15 + 16);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  char buf[256 * 1024];
  size_t total = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof(buf);
    rc = inflate(&z, Z_NO_FLUSH);
    total += sizeof(buf) - z.avail_out;
  }
  inflateEnd(&z);
  return rc == Z_STREAM_END ? total : 0;
}

// GET /healthz with a 3 s budget for connect, send and answer.
bool HealthzWithin3s(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(seconds(3));
  c.set_read_timeout(seconds(3));
  c.set_write_timeout(seconds(3));
  auto start = Clock::now();
  auto res = c.Get("/healthz");
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  std::cerr << "measured: healthz_status=" << (res ? res->status : 0) << " took_ms=" << took.count() << "\n";
  return res && res->status == 200 && took < seconds(3);
}

// The webhook-id header of a request's header block, or "".
std::string WebhookId(const std::string& headers) {
  std::smatch m;
  if (std::regex_search(headers, m, std::regex(R"((^|\r\n)webhook-id:\s*(\S+))", std::regex::icase))) return m[2];
  return "";
}

/// A one-way gate between the receiver's connection thread and the test: the
/// receiver says "serving" once the first part of the bomb is out, then waits
/// until the test opens the gate (or the receiver stops).
class Gate {
 public:
  void Serving() {
    std::lock_guard lock(mu_);
    serving_ = true;
    cv_.notify_all();
  }
  bool WaitServing(milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return serving_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Returns when the gate is open or `stop` turns true (checked every 20 ms:
  // the receiver's destructor sets it without notifying us).
  void WaitOpen(const RawReceiver& stop) {
    std::unique_lock lock(mu_);
    while (!open_ && !stop.stopping()) cv_.wait_for(lock, milliseconds(20));
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool serving_ = false;  // guarded by mu_
  bool open_ = false;     // guarded by mu_
};

TEST_F(PipelineTest, GzipBombResponseLeavesTheDaemonBoundedAndHealthzAnswering) {
  const std::string bomb = GzipBomb(kInflatedBytes);
  ASSERT_LT(bomb.size(), 2 * kMiB);
  ASSERT_EQ(InflatedSize(bomb), kInflatedBytes);
  std::cerr << "measured: bomb_compressed_bytes=" << bomb.size() << " inflated_bytes=" << kInflatedBytes << "\n";

  Gate gate;
  std::atomic<size_t> body_bytes_sent{0};
  RawReceiver bomber([&](int fd, RawReceiver& self) {
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n";
    const std::string length = "Content-Length: " + std::to_string(bomb.size()) + "\r\n\r\n";
    if (!RawReceiver::Send(fd, head + length + bomb.substr(0, kFirstPartBytes))) return;
    body_bytes_sent = kFirstPartBytes;
    gate.Serving();
    gate.WaitOpen(self);
    // The rest, in slices; the daemon stops reading at its cap and closes,
    // so a send may fail here (or land in the socket buffers).
    for (size_t at = kFirstPartBytes; at < bomb.size() && !self.stopping(); at += 64 * 1024) {
      if (!RawReceiver::Send(fd, std::string_view(bomb).substr(at, 64 * 1024))) return;
      body_bytes_sent = std::min(at + 64 * 1024, bomb.size());
    }
  });

  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  cfg.accounts.push_back(AccountYaml(dovecot_, {}));
  cfg.webhooks.push_back(WebhookYaml({"hook", bomber.url(), kTestWebhookSecret, "timeout: 30s"}));
  cfg.extra = "http: { listen: \"127.0.0.1:0\" }";
  MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  MH_ASSERT_OK(daemon_.Start());
  WaitIdle();
  const int port = daemon_.HttpPort();
  ASSERT_GT(port, 0) << daemon_.Log();
  ASSERT_TRUE(HealthzWithin3s(port));
  const long baseline_kib = std::max(daemon_.StatusKiB("VmHWM"), daemon_.StatusKiB("VmRSS"));
  ASSERT_GT(baseline_kib, 0);

  const size_t mark = daemon_.LogMark();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));

  // The window: the daemon has the 200 head and the first part of the bomb
  // and waits for the rest; /healthz answers meanwhile.
  ASSERT_TRUE(gate.WaitServing(seconds(30))) << daemon_.Log();
  const std::string event = WebhookId(bomber.last_headers());
  ASSERT_FALSE(event.empty()) << bomber.last_headers();
  EXPECT_TRUE(HealthzWithin3s(port));
  EXPECT_EQ(daemon_.Log().find("event=" + event + " status=", mark), std::string::npos)
      << "the delivery of uid " << uid << " ended before /healthz was asked: the window was missed\n"
      << daemon_.Log().substr(mark);
  gate.Open();

  // A 200 is a delivery whatever the body: the daemon reads its 64 KiB of the
  // body as sent, drops the connection and records the event delivered.
  ASSERT_TRUE(daemon_.WaitForLog("delivery.ok webhook=hook event=" + event + " status=200", seconds(30), mark))
      << daemon_.Log().substr(mark);
  EXPECT_EQ(daemon_.Log().find("delivery.retry", mark), std::string::npos) << daemon_.Log().substr(mark);
  EXPECT_EQ(bomber.requests(), 1);
  std::cerr << "measured: body_bytes_sent=" << body_bytes_sent << "\n";
  EXPECT_TRUE(HealthzWithin3s(port));

  const long peak_kib = daemon_.StatusKiB("VmHWM");
  std::cerr << "measured: baseline_kib=" << baseline_kib << " peak_kib=" << peak_kib << "\n";
  EXPECT_LT(peak_kib, baseline_kib + 50 * 1024) << "baseline " << baseline_kib << " KiB, peak " << peak_kib << " KiB";
  RecordProperty("baseline_rss_kib", static_cast<int>(baseline_kib));
  RecordProperty("peak_rss_kib", static_cast<int>(peak_kib));

  MH_ASSERT_OK_AND_ASSIGN(int code, daemon_.Terminate());
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace mailhook::testsupport
