#include "config/secret_source.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "util/strings.h"
#include "util/subprocess.h"

namespace mailhook::config {
namespace {

util::Error SecretError(std::string message) {
  return util::Error("config.secret", util::RetryClass::kNeedsOperator, std::move(message));
}

/// Why a secret file is unreadable, with its owner and mode against ours: the
/// usual case is a Docker/Kubernetes secret mounted root-only while the image
/// runs as uid/gid 10001.
std::string PermissionHint(const std::filesystem::path& path) {
  std::string us = "mailhook runs as uid " + std::to_string(getuid()) + " gid " + std::to_string(getgid());
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return " (" + us + " and cannot see the file: check the directory permissions)";
  }
  char mode[8];
  snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return " (" + us + "; the file is owned by uid " + std::to_string(st.st_uid) + " gid " + std::to_string(st.st_gid) +
         " with mode " + mode + ": make it readable for mailhook, e.g. chown " + std::to_string(getuid()) + ":" +
         std::to_string(getgid()) + " \"" + path.string() +
         "\" && chmod 0400 it; the container image runs as uid/gid 10001, so chown 10001:10001 the file on the host)";
}

}  // namespace

util::Result<util::Secret> ReadSecretFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return SecretError("cannot read \"" + path.string() + "\": " + strerror(err) +
                       (err == EACCES ? PermissionHint(path) : " (check the path and that mailhook may read it)"));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string value = buf.str();
  if (in.bad()) return SecretError("cannot read \"" + path.string() + "\": read error");
  // Exactly one newline: a secret may legitimately end in other whitespace.
  if (value.ends_with("\r\n")) {
    value.resize(value.size() - 2);
  } else if (value.ends_with('\n')) {
    value.pop_back();
  }
  if (value.empty()) return SecretError("\"" + path.string() + "\" is empty; put the secret in it");
  return util::Secret(std::move(value));
}

util::Result<util::Secret> RunSecretCommand(const std::vector<std::string>& argv) {
  util::ProcessSpec spec;
  spec.argv = argv;
  spec.timeout = kSecretCommandTimeout;
  spec.max_output = 64 * 1024;
  auto run = util::RunProcess(spec);
  if (!run.ok()) return SecretError(run.error().message());
  const std::string name = argv.empty() ? std::string() : argv[0];
  // Neither stdout nor stderr goes into the message: either may hold the secret.
  if (run->timed_out) {
    return SecretError("command \"" + name + "\" did not finish within " +
                       std::to_string(kSecretCommandTimeout.count()) +
                       "s and was killed; run it by hand to see why it hangs (a prompt?)");
  }
  if (run->exit_code != 0) {
    std::string how = run->exit_code < 0 ? "was killed by signal " + std::to_string(-run->exit_code)
                                         : "exited with status " + std::to_string(run->exit_code);
    return SecretError("command \"" + name + "\" " + how + "; run it by hand to see why");
  }
  if (run->stdout_truncated) {
    return SecretError("command \"" + name + "\" printed more than 64 KiB; it must print only the secret");
  }
  std::string_view secret = util::Trim(run->stdout_data);
  if (secret.empty())
    return SecretError("command \"" + name + "\" printed nothing; it must print the secret on stdout");
  return util::Secret(std::string(secret));
}

}  // namespace mailhook::config
