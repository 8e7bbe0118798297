// The log lines the documentation quotes still exist: every event name in a
// ```log block of docs/troubleshooting.md and docs/events.md, and every
// backticked event name in their text (`imap.folder_polled`, `delivery.dead
// webhook=…`), occurs in src/ as the start of a string literal (a log format
// or an error code), so a renamed or removed log line fails the suite
// instead of leaving the docs pointing at nothing.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace {

const std::string kSourceDir = MAILHOOK_SOURCE_DIR;

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// area.event, with the areas the daemon logs under (util/log.h) and the
// prefixes of its error codes; "message." names are event types, not log lines.
const std::regex kEventName(
    R"(\b((?:imap|mime|store|delivery|http|daemon|tls|sink|post_action|subprocess)\.[a-z_]+)\b)");

/// Event names quoted in a Markdown file: in ```log blocks, the first name on
/// each line; in text, a backticked span that starts with a name.
std::set<std::string> QuotedEvents(const std::string& markdown) {
  std::set<std::string> names;
  std::istringstream in(markdown);
  std::string line;
  bool in_log = false, in_other_block = false;
  static const std::regex kSpan(R"(`([^`]+)`)");
  while (std::getline(in, line)) {
    if (line.starts_with("```")) {
      if (in_log || in_other_block) {
        in_log = in_other_block = false;
      } else {
        in_log = line == "```log";
        in_other_block = !in_log;
      }
      continue;
    }
    std::smatch m;
    if (in_log) {
      if (std::regex_search(line, m, kEventName)) names.insert(m[1]);
      continue;
    }
    if (in_other_block) continue;
    for (auto it = std::sregex_iterator(line.begin(), line.end(), kSpan); it != std::sregex_iterator(); ++it) {
      std::string span = (*it)[1];
      if (std::regex_search(span, m, kEventName) && m.position(0) == 0 &&
          (m.length(0) == static_cast<long>(span.size()) || span[m.length(0)] == ' ')) {
        names.insert(m[1]);
      }
    }
  }
  return names;
}

/// Every source file's text, concatenated.
std::string AllSources() {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(kSourceDir + "/src")) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && (ext == ".cc" || ext == ".h")) all += ReadAll(entry.path());
  }
  return all;
}

/// `name` starts a string literal: "name" or "name key=…".
bool InSources(const std::string& sources, const std::string& name) {
  return sources.find("\"" + name + "\"") != std::string::npos || sources.find("\"" + name + " ") != std::string::npos;
}

void CheckDoc(const std::string& relative, size_t at_least) {
  const std::string path = kSourceDir + "/" + relative;
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  std::set<std::string> names = QuotedEvents(ReadAll(path));
  EXPECT_GE(names.size(), at_least) << "fewer event names than expected found in " << relative
                                    << "; did the ```log blocks change form?";
  const std::string sources = AllSources();
  for (const auto& name : names) {
    EXPECT_TRUE(InSources(sources, name))
        << relative << " quotes the log event `" << name << "`, which no longer occurs in src/; update the doc";
  }
}

TEST(DocsLogEvents, TroubleshootingQuotesOnlyExistingEvents) { CheckDoc("docs/troubleshooting.md", 15); }

TEST(DocsLogEvents, EventsReferenceQuotesOnlyExistingEvents) { CheckDoc("docs/events.md", 0); }

TEST(DocsLogEvents, ReaderFindsLogBlockAndInlineNames) {
  std::set<std::string> names = QuotedEvents(
      "text `imap.folder_polled` and `delivery.dead webhook=x` but not `config.md` or `message.received`\n"
      "```log\n2026-01-01T00:00:00.000Z E imap imap.needs_operator account=a cause=\"tls.verify\"\n```\n"
      "```sh\nmailhook check # imap.not_a_log_block\n```\n");
  EXPECT_EQ(names, (std::set<std::string>{"imap.folder_polled", "delivery.dead", "imap.needs_operator"}));
  // The check itself: a name that is not in src/ is reported.
  EXPECT_FALSE(InSources(AllSources(), "imap.no_such_event_for_the_docs_test"));
}

}  // namespace
