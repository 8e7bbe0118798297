// `mailhook parse` of part bombs: the real binary on generated messages, run
// under limits (CPU seconds, address space) with its peak RSS read back from
// wait4(). Not a benchmark: each bound is far above what a linear, capped
// parse needs and far below what building every part costs.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;  // ASan reserves terabytes of shadow: no RLIMIT_AS
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// A capped parse of a few MB needs ~20 MB; under ASan (shadow memory, a
// redzone around each of the many small allocations) the same parse peaks
// near 110 MB, with or without the freed-memory quarantine. Building every
// part of these bombs costs several times either.
constexpr long kMaxRssKb = (kSanitized ? 300 : 100) * 1024;
constexpr rlim_t kCpuSeconds = 20;  // a linear parse needs well under a second

struct ParseRun {
  int status = -1;
  long max_rss_kb = 0;
  std::string out;
};

ParseRun ParseFile(const std::string& path) {
  const std::string out_path = path + ".json";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
    rlimit cpu{kCpuSeconds, kCpuSeconds};
    setrlimit(RLIMIT_CPU, &cpu);
    if (!kSanitized) {
      rlimit as{rlim_t{1} << 30, rlim_t{1} << 30};
      setrlimit(RLIMIT_AS, &as);
    }
    execl(MAILHOOK_BINARY, "mailhook", "parse", path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ParseRun run;
  rusage ru{};
  if (pid < 0 || wait4(pid, &run.status, 0, &ru) != pid) return run;
  run.max_rss_kb = ru.ru_maxrss;
  std::ifstream in(out_path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  run.out = buf.str();
  return run;
}

std::string WriteFile(const std::string& name, const std::string& data) {
  const std::string path = testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".eml";
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

void ExpectTruncated(const ParseRun& run, size_t listed, uint64_t omitted) {
  ASSERT_TRUE(WIFEXITED(run.status)) << "killed by signal " << (WIFSIGNALED(run.status) ? WTERMSIG(run.status) : 0)
                                     << " (SIGXCPU = over " << kCpuSeconds << " s of CPU)";
  ASSERT_EQ(WEXITSTATUS(run.status), 0);
  EXPECT_LT(run.max_rss_kb, kMaxRssKb);
  nlohmann::json event = nlohmann::json::parse(run.out);
  const nlohmann::json& m = event["message"];
  EXPECT_EQ(m["attachments"].size(), listed);
  ASSERT_TRUE(m["truncated"].is_object()) << m["truncated"].dump();
  EXPECT_EQ(m["truncated"]["attachments_omitted"], omitted);
  EXPECT_EQ(m["truncated"]["text"], false);
  EXPECT_EQ(m["truncated"]["html"], false);
  std::cerr << "parse: peak RSS " << run.max_rss_kb / 1024 << " MB, " << run.out.size() << " bytes of event\n";
}

TEST(ParseBomb, ThreeHundredThousandEmptyParts) {
  std::string msg = "From: bomb@example.com\r\nSubject: bomb\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (int i = 0; i < 300'000; ++i) msg += "--b\r\n\r\n";
  msg += "--b--\r\n";
  const std::string path = WriteFile("empty_parts", msg);
  ParseRun run = ParseFile(path);
  // The first empty part is the text body; 999 more are listed, the rest counted.
  ExpectTruncated(run, 999, 300'000 - 1000);
  std::remove(path.c_str());
  std::remove((path + ".json").c_str());
}

TEST(ParseBomb, TwoThousandSmallTextAttachments) {
  std::string msg = "From: bomb@example.com\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n";
  for (int i = 0; i < 2'000; ++i) {
    const std::string name = "note" + std::to_string(i) + ".txt";
    msg += "--b\r\nContent-Type: text/plain; name=" + name + "\r\nContent-Disposition: attachment; filename=" + name +
           "\r\n\r\nsmall text number " + std::to_string(i) + "\r\n";
  }
  msg += "--b--\r\n";
  const std::string path = WriteFile("text_attachments", msg);
  ParseRun run = ParseFile(path);
  ExpectTruncated(run, 1000, 1000);
  std::remove(path.c_str());
  std::remove((path + ".json").c_str());
}

}  // namespace
