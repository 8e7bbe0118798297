// Measures what libetpan (and our conversion) costs to parse a BODYSTRUCTURE
// of N parts: the numbers behind SessionOptions::kDefaultMaxResponseBytes.
//   imap_bodystructure_memory [N...]   (default: 10000 100000 200000 300000)
// Each N runs in its own child process; the response is built and served by
// another process, so only the client's memory is counted. MAILHOOK_NEST=d
// builds N multipart levels instead, in chains d deep.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fake_imap_server.h"
#include "imap/session.h"

using mailhook::imap::Session;
using mailhook::imap::SessionOptions;

namespace {

// Dovecot's entry for an empty text/plain part; MAILHOOK_PART replaces it
// (e.g. the smallest legal one: ("a" "b" NIL NIL NIL "7bit" 0)).
const std::string kTextPart =
    std::getenv("MAILHOOK_PART")
        ? std::getenv("MAILHOOK_PART")
        : "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

long MaxRssKb() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_maxrss;
}

int Measure(size_t parts) {
  size_t bytes = 0;
  // The server and its copies of the response live in another process.
  mailhook::imap::fake::FakeImapServerProcess server([&] {
    std::string reply = "* 1 FETCH (UID 1 BODYSTRUCTURE (";
    if (const char* nest = std::getenv("MAILHOOK_NEST")) {
      // N multipart levels in all, in chains of MAILHOOK_NEST levels around
      // one part each: libetpan's parser recurses once per level, and a
      // level costs only 10 bytes of response.
      const size_t depth = std::max<size_t>(1, std::strtoull(nest, nullptr, 10));
      for (size_t done = 0; done < parts; done += depth) {
        reply += std::string(depth, '(') + kTextPart;
        for (size_t i = 0; i < depth; ++i) reply += " \"m\")";
      }
      return reply + " \"mixed\"))\r\n";
    }
    reply.reserve(parts * kTextPart.size() + 128);
    for (size_t i = 0; i < parts; ++i) reply += kTextPart;
    return reply + " \"mixed\" (\"boundary\" \"b\") NIL NIL NIL))\r\n";
  });
  // As built in the server process.
  const size_t depth =
      std::getenv("MAILHOOK_NEST") ? std::max<size_t>(1, std::strtoull(std::getenv("MAILHOOK_NEST"), nullptr, 10)) : 0;
  bytes = depth ? parts * 6 + (parts + depth - 1) / depth * kTextPart.size() + 80 : parts * kTextPart.size() + 80;
  SessionOptions o = mailhook::imap::fake::FakeSessionOptions(server.port());
  o.timeout = SessionOptions{}.timeout;  // a large response may take longer than the fake's 3 s
  o.max_response_bytes = 0;              // unbounded: this measures what the bound protects
  auto s = Session::Open(o);
  if (!s.ok() || !(*s)->Select("INBOX").ok()) return 1;
  const long base = MaxRssKb();
  auto start = std::chrono::steady_clock::now();
  auto metas = (*s)->FetchMeta({1});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!metas.ok() || metas->size() != 1) return 1;
  const long peak = MaxRssKb() - base;
  std::printf("parts=%zu response_bytes=%zu peak_growth_kib=%ld bytes_per_response_byte=%.2f seconds=%.2f\n", parts,
              bytes, peak, peak * 1024.0 / static_cast<double>(bytes), secs);
  std::fflush(stdout);  // the child ends with _exit
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<size_t> ns = {10000, 100000, 200000, 300000};
  if (argc > 1) {
    ns.clear();
    for (int i = 1; i < argc; ++i) ns.push_back(std::strtoull(argv[i], nullptr, 10));
  }
  for (size_t n : ns) {
    pid_t pid = fork();
    if (pid == 0) _exit(Measure(n));
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::printf("parts=%zu failed\n", n);
    std::fflush(stdout);
  }
  return 0;
}
