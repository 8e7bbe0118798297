// Backpressure: when the state directory cannot be written (disk full), the
// watermark stops, /readyz turns false, and once space is back every message
// that arrived meanwhile is delivered — nothing is skipped.

#include <httplib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "pipeline_fixture.h"

namespace mailhook::testsupport {
namespace {

/// A small tmpfs mounted over a directory for the test's lifetime.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, const std::string& size) : dir_(dir) {
    mkdir(dir.c_str(), 0755);
    mounted_ = mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~TmpfsMount() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// Fills the file system holding `dir` until a write fails.
void Fill(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  std::string chunk(4096, 'x');
  while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())) && out.flush()) {
  }
}

TEST_F(PipelineTest, FullStateDiskPausesAndResumesWithoutSkipping) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs as the state directory";
  TmpfsMount state(daemon_.state_dir(), "4m");
  ASSERT_TRUE(state.mounted()) << "mount tmpfs failed: " << strerror(errno);

  StartDaemon({}, "", "http: { listen: \"127.0.0.1:0\" }");
  WaitIdle();
  ImapClient imap(dovecot_);
  MH_ASSERT_OK_AND_ASSIGN(uint32_t first, imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(1, seconds(20))) << daemon_.Log();

  // The disk fills up; messages keep arriving.
  std::string filler = daemon_.state_dir() + "/filler";
  Fill(filler);
  size_t mark = daemon_.LogMark();
  std::set<uint32_t> during;
  for (const char* s : {"latin1_qp.eml", "alternative.eml", "mixed_attachment.eml"}) {
    MH_ASSERT_OK_AND_ASSIGN(uint32_t uid, imap.Append("alice", "INBOX", SampleMessage(s)));
    during.insert(uid);
  }
  // The watcher backs off with the store's own disk-full error as the cause
  // (store.full: "the disk is full: free space on the volume holding
  // state_dir"), not any error that happens to mention "full".
  const std::string cause = "the disk is full: free space on the volume holding state_dir";
  ASSERT_TRUE(daemon_.WaitForLog(cause, seconds(30), mark)) << daemon_.Log();
  // The dispatcher may meet the full disk first (its lease update): wait for
  // the worker's own reconnect line, not just any line with the cause.
  ASSERT_TRUE(daemon_.WaitForLog("imap.reconnect account=test connection=worker", seconds(30), mark)) << daemon_.Log();
  std::string log = daemon_.Log().substr(mark);
  EXPECT_TRUE(
      std::regex_search(log, std::regex(R"(imap\.reconnect account=test connection=worker attempt=\d+ delay_ms=\d+ )"
                                        R"(cause="[^\n]*: database or disk is full; )" +
                                        cause + "\"")))
      << "want the imap.reconnect line with the store.full cause:\n"
      << log;

  const int port = daemon_.HttpPort();
  ASSERT_GT(port, 0) << daemon_.Log();
  httplib::Client http("127.0.0.1", port);
  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready);
  // Between attempts the watcher is backing off: not ready.
  bool saw_not_ready = ready->status == 503;
  for (int i = 0; i < 100 && !saw_not_ready; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    auto r = http.Get("/readyz");
    saw_not_ready = r && r->status == 503;
  }
  EXPECT_TRUE(saw_not_ready) << "/readyz must turn false while events cannot be stored";
  EXPECT_TRUE(daemon_.Running());

  // Space comes back: everything that arrived meanwhile is delivered, once.
  unlink(filler.c_str());
  std::set<uint32_t> delivered;
  for (size_t n = 2; delivered.size() < during.size() + 1; ++n) {
    ASSERT_TRUE(receiver_.WaitFor(n, seconds(60))) << daemon_.Log();
    delivered.clear();
    for (const auto& r : receiver_.Requests()) delivered.insert(r.Json()["uid"].get<uint32_t>());
  }
  during.insert(first);
  EXPECT_EQ(delivered, during);
  EXPECT_EQ(receiver_.count(), during.size()) << "each message exactly once";
}

}  // namespace
}  // namespace mailhook::testsupport
