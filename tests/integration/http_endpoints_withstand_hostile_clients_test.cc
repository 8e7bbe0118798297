// The daemon's HTTP endpoints withstand hostile clients: a chunked 100 MB POST
// to /metrics and 50 clients that send half a request and stall leave the
// daemon's memory bounded, and /healthz keeps answering within 3 s (the
// liveness probe's budget) while they run.

#include <dirent.h>
#include <httplib.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "../http/raw_client.h"
#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

using testing_http::RawClient;
using Clock = std::chrono::steady_clock;

// The daemon's pid: the process whose command line names its config file.
int DaemonPid(const MailhookProcess& daemon) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  int found = 0;
  while (dirent* e = readdir(proc)) {
    std::string name = e->d_name;
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream f("/proc/" + name + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (cmdline.find(std::string("run") + '\0') != std::string::npos &&
        cmdline.find(daemon.config_path()) != std::string::npos) {
      found = std::stoi(name);
    }
  }
  closedir(proc);
  return found;
}

// A field of /proc/PID/status in kB ("VmHWM", "VmRSS"), or -1.
long StatusKb(int pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
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

class HostileClientsTest : public PipelineTest {
 protected:
  void StartWithHttp() {
    StartDaemon({}, "", "http: { listen: \"127.0.0.1:0\" }");
    WaitIdle();
    port_ = daemon_.HttpPort();
    ASSERT_GT(port_, 0) << daemon_.Log();
    ASSERT_GT(port_, 0) << daemon_.Log();
    pid_ = DaemonPid(daemon_);
    ASSERT_GT(pid_, 0) << "daemon process not found";
    ASSERT_TRUE(HealthzWithin3s(port_));
    baseline_kb_ = std::max(StatusKb(pid_, "VmHWM"), StatusKb(pid_, "VmRSS"));
    ASSERT_GT(baseline_kb_, 0);
  }
  // The peak RSS since start stays within 50 MB of what it was before.
  void ExpectMemoryBounded() {
    long peak = StatusKb(pid_, "VmHWM");
    std::cerr << "measured: baseline_kb=" << baseline_kb_ << " peak_kb=" << peak << "\n";
    EXPECT_LT(peak, baseline_kb_ + 50 * 1024) << "baseline " << baseline_kb_ << " kB, peak " << peak << " kB";
  }

  int port_ = 0;
  int pid_ = 0;
  long baseline_kb_ = 0;
};

TEST_F(HostileClientsTest, ChunkedHundredMegabytePostToMetrics) {
  StartWithHttp();
  RawClient attacker(port_);
  ASSERT_TRUE(attacker.connected());
  ASSERT_TRUE(attacker.Send("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string chunk = "100000\r\n" + std::string(0x100000, 'x') + "\r\n";
  size_t sent = 0;
  if (attacker.Send(chunk)) sent += chunk.size();
  // The daemon answers from the head alone (the window: the attack is under
  // way and has been seen), and /healthz answers meanwhile.
  EXPECT_TRUE(attacker.ReadUntil("\r\n\r\n", seconds(3))) << "no answer from the head alone";
  EXPECT_EQ(attacker.Status(), 405) << attacker.received();
  EXPECT_TRUE(HealthzWithin3s(port_));
  // The rest of the 100 MB: the daemon has stopped reading, so it is cut off.
  while (sent < 100u << 20 && attacker.Send(chunk)) sent += chunk.size();
  EXPECT_LT(sent, 100u << 20) << "the daemon read the whole body";
  std::cerr << "measured: body_bytes_sent_before_cut=" << sent << "\n";
  EXPECT_TRUE(HealthzWithin3s(port_));
  ExpectMemoryBounded();
}

TEST_F(HostileClientsTest, FiftySlowClients) {
  StartWithHttp();
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(std::make_unique<RawClient>(port_));
    ASSERT_TRUE(slow.back()->connected());
    ASSERT_TRUE(slow.back()->Send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  }
  EXPECT_TRUE(HealthzWithin3s(port_));
  // The window was hit: all 50 were still stalled mid-request meanwhile.
  for (auto& c : slow) EXPECT_TRUE(c->StillWaiting());
  // And they do not hold their connections for ever: the head deadline cuts
  // them off with 408.
  for (auto& c : slow) {
    EXPECT_TRUE(c->ReadUntilClosed(seconds(15))) << "a stalled client was kept";
    EXPECT_EQ(c->Status(), 408) << c->received();
  }
  EXPECT_TRUE(HealthzWithin3s(port_));
  ExpectMemoryBounded();
}

}  // namespace
}  // namespace mailhook::testsupport
