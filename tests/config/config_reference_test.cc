// docs/config.md cannot drift from the loader: every key the loader accepts
// (config::keys::kCatalog, the lists the section parsers check maps against)
// has a row in the reference, and the reference has no row for a key the
// loader does not know. Keys the contract announces but the loader does not
// have yet are listed under "## Not yet implemented" and must not be in the
// catalog (once implemented, they move to a table).
//
// The reference's parseable form: a key row is a table line that starts with
// "| `<full path>` |" and has at least four non-empty cells (key, type,
// default, meaning); a not-yet-implemented entry is a list line "- `<path>`".

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/key_catalog.h"

namespace mailhook::config {
namespace {

struct Reference {
  std::vector<std::string> rows;            ///< key paths of table rows, in file order
  std::set<std::string> not_implemented;    ///< paths under "## Not yet implemented"
  bool has_not_implemented = false;         ///< the "## Not yet implemented" heading is there
  std::vector<std::string> malformed_rows;  ///< key rows with an empty or missing cell
};

std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  bool in_code = false;
  for (size_t i = 1; i < line.size(); ++i) {
    char c = line[i];
    if (c == '`') in_code = !in_code;
    if (c == '|' && !in_code && line[i - 1] != '\\') {
      cells.push_back(cell);
      cell.clear();
    } else {
      cell += c;
    }
  }
  return cells;
}

bool Blank(const std::string& s) { return s.find_first_not_of(" \t") == std::string::npos; }

Reference ReadReference(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  static const std::regex kRow(R"(^\| `([^`]+)` \|)");
  static const std::regex kItem(R"(^- `([^`]+)`)");
  Reference ref;
  bool in_nyi = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("## ")) in_nyi = line.starts_with("## Not yet implemented");
    ref.has_not_implemented = ref.has_not_implemented || in_nyi;
    std::smatch m;
    if (in_nyi) {
      if (std::regex_search(line, m, kItem)) ref.not_implemented.insert(m[1]);
      continue;
    }
    if (!std::regex_search(line, m, kRow)) continue;
    ref.rows.push_back(m[1]);
    auto cells = Cells(line);
    bool ok = cells.size() >= 4;
    for (size_t i = 0; ok && i < 4; ++i) ok = !Blank(cells[i]);
    if (!ok) ref.malformed_rows.push_back(line);
  }
  return ref;
}

std::set<std::string> CatalogPaths() {
  std::set<std::string> paths;
  for (const auto& section : keys::kCatalog) {
    for (auto key : section.keys) paths.insert(keys::FullPath(section.path, key));
  }
  return paths;
}

const std::string kReference = std::string(MAILHOOK_SOURCE_DIR) + "/docs/config.md";

TEST(ConfigReference, EveryLoaderKeyHasARow) {
  Reference ref = ReadReference(kReference);
  std::set<std::string> documented(ref.rows.begin(), ref.rows.end());
  for (const auto& path : CatalogPaths()) {
    EXPECT_TRUE(documented.contains(path))
        << "the loader accepts `" << path << "` but " << kReference << " has no row for it; add \"| `" << path
        << "` | type | default | meaning, range, example |\"";
  }
}

TEST(ConfigReference, EveryRowIsALoaderKey) {
  Reference ref = ReadReference(kReference);
  ASSERT_FALSE(ref.rows.empty()) << "no key rows found in " << kReference;
  std::set<std::string> catalog = CatalogPaths();
  std::set<std::string> seen;
  for (const auto& path : ref.rows) {
    EXPECT_TRUE(catalog.contains(path)) << kReference << " documents `" << path
                                        << "`, which the loader does not accept; remove the row, or move it "
                                           "to \"## Not yet implemented\"";
    EXPECT_TRUE(seen.insert(path).second) << "`" << path << "` has two rows in " << kReference;
  }
  for (const auto& line : ref.malformed_rows) {
    ADD_FAILURE() << "a key row needs four non-empty cells (key | type | default | meaning): " << line;
  }
}

TEST(ConfigReference, NotYetImplementedKeysAreNotInTheLoader) {
  Reference ref = ReadReference(kReference);
  // The list may be empty (every announced key built), the place for the next one stays.
  EXPECT_TRUE(ref.has_not_implemented) << "the \"## Not yet implemented\" section is missing from " << kReference;
  std::set<std::string> catalog = CatalogPaths();
  for (const auto& path : ref.not_implemented) {
    EXPECT_FALSE(catalog.contains(path)) << "`" << path
                                         << "` is listed as not yet implemented, but the loader accepts it: "
                                            "move it to a table with its type and default";
  }
}

// The parser of the reference itself: a row with a missing cell is caught,
// and a not-yet-implemented entry is not read as a key row.
TEST(ConfigReference, ReaderRecognisesRowsAndTheNotImplementedList) {
  std::string path = ::testing::TempDir() + "/config-reference-sample.md";
  {
    std::ofstream out(path);
    out << "## Top\n| key | type | default | meaning |\n| --- | --- | --- | --- |\n"
        << "| `state_dir` | path | `/var/lib/mailhook` | where state lives |\n"
        << "| `log.level` | string | | missing default |\n"
        << "## Not yet implemented\n- `store.url` — PostgreSQL\n| `smtp[].host` | a | b | c |\n";
  }
  Reference ref = ReadReference(path);
  EXPECT_EQ(ref.rows, (std::vector<std::string>{"state_dir", "log.level"}));
  ASSERT_EQ(ref.malformed_rows.size(), 1u);
  EXPECT_NE(ref.malformed_rows[0].find("log.level"), std::string::npos);
  EXPECT_EQ(ref.not_implemented, (std::set<std::string>{"store.url"}));
}

/// A valid config with the key `zz_not_a_key` in the map named by `section`
/// (a catalog path); empty when the test does not know the section.
std::string ConfigWithUnknownKey(std::string_view section) {
  const std::string k = "zz_not_a_key: 1";
  auto in = [&](std::string_view s) { return section == s ? ", " + k : std::string(); };
  std::string yaml = section.empty() ? k + "\n" : "";
  yaml += "log: { level: info" + in("log") + " }\n";
  yaml += section == "http" ? "http: { " + k + " }\n" : "";
  yaml += "limits: { max_parts: 10" + in("limits") + " }\n";
  yaml += section == "store" ? "store: { " + k + " }\n" : "";
  const bool oauth = section == "accounts[].oauth2";
  yaml += "accounts:\n  - { name: a, host: h, username: u" +
          std::string(oauth ? ", auth: xoauth2, oauth2: { token: t, " + k + " }" : ", password: p") +
          ", folders: [INBOX, { name: X" + in("accounts[].folders[]") + " }]" + ", on_delivered: { mark_seen: true" +
          in("accounts[].on_delivered") + " }" + ", limits: { max_parts: 10" + in("accounts[].limits") + " }" +
          in("accounts[]") + " }\n";
  yaml += "webhooks:\n  - { name: w, url: \"http://127.0.0.1:9/\", headers: { X-A: { value: v" +
          in("webhooks[].headers.*") + " } }, match: { accounts: [a]" + in("webhooks[].match") + " }" +
          in("webhooks[]") + " }\n";
  yaml += "hooks:\n  - { name: h, command: [/bin/true], env: { A: { command: [/bin/echo, x]" + in("hooks[].env.*") +
          " } }, match: { accounts: [a]" + in("hooks[].match") + " }" + in("hooks[]") + " }\n";
  const bool smtp_oauth = section == "smtp[].oauth2";
  yaml += "smtp:\n  - { name: s, host: h, username: u, from: s@example.com, mode: reply, text: t" +
          std::string(smtp_oauth ? ", auth: xoauth2, oauth2: { token: t, " + k + " }" : ", password: p") +
          ", rate_limit: { per_sender: 2" + in("smtp[].rate_limit") + " }, match: { accounts: [a]" +
          in("smtp[].match") + " }" + in("smtp[]") + " }\n";
  return yaml;
}

// The parsers check maps against the catalog itself, not copies: for every
// section, an unknown key is reported with exactly the catalog's key list.
TEST(ConfigReference, TheLoaderChecksEverySectionAgainstTheCatalog) {
  LoadResult valid = LoadConfigFromString(ConfigWithUnknownKey("no such section"), "valid.yml");
  ASSERT_TRUE(valid.errors.empty()) << valid.errors[0].ToString();
  for (const auto& section : keys::kCatalog) {
    SCOPED_TRACE("section \"" + std::string(section.path) + "\"");
    LoadResult r = LoadConfigFromString(ConfigWithUnknownKey(section.path), "unknown.yml");
    ASSERT_EQ(r.errors.size(), 1u) << (r.errors.empty() ? "no error" : r.errors[1].ToString());
    const std::string& message = r.errors[0].message;
    const std::string marker = "known keys are:";
    ASSERT_NE(message.find("zz_not_a_key"), std::string::npos) << message;
    ASSERT_NE(message.find(marker), std::string::npos) << message;
    std::string expected;
    for (auto key : section.keys) expected += " " + std::string(key);
    EXPECT_EQ(message.substr(message.find(marker) + marker.size()), expected);
  }
}

}  // namespace
}  // namespace mailhook::config
