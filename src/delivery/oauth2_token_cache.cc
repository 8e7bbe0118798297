#include "delivery/oauth2_token_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/known_secrets.h"
#include "util/log.h"

namespace mailhook::delivery {
namespace {

using util::Error;
using util::RetryClass;

}  // namespace

OAuth2TokenCache::OAuth2TokenCache(std::string name, config::OAuth2Refresh oauth2, bool allow_insecure,
                                   Requester requester, const util::Clock& clock)
    : name_(std::move(name)),
      oauth2_(std::move(oauth2)),
      allow_insecure_(allow_insecure),
      requester_(std::move(requester)),
      clock_(clock) {}

OAuth2TokenCache::OAuth2TokenCache(const config::Account& account, Requester requester, const util::Clock& clock)
    : OAuth2TokenCache(account.name, *account.oauth2, account.allow_insecure, std::move(requester), clock) {}

std::chrono::seconds OAuth2TokenCache::RefreshMargin(std::chrono::seconds expires_in) {
  return std::min(std::chrono::seconds(60), expires_in / 2);
}

std::chrono::milliseconds OAuth2TokenCache::FailureHold(const util::Error& error, int consecutive) {
  constexpr std::chrono::milliseconds kMax(60 * 1000);
  if (error.NeedsOperator()) return kMax;  // the watcher retries those after 60 s at the earliest
  std::chrono::milliseconds hold(2000);
  for (int i = 1; i < consecutive && hold < kMax; ++i) hold *= 2;
  return std::min(hold, kMax);
}

util::Result<util::Secret> OAuth2TokenCache::AccessToken(int stop_fd) {
  // One request at a time, under mu_: it ends by its timeouts or by stop_fd
  // (every connection of the account shares that stop), and whoever waited
  // meanwhile takes its token or its failure.
  util::MutexLock lock(mu_);
  const auto now = clock_.SteadyNow();
  if (token_ && now < renew_at_) return *token_;
  if (failure_ && now < retry_at_) return *failure_;
  return Refresh(stop_fd);
}

void OAuth2TokenCache::RememberFailure(const util::Error& error) {
  if (error.code() == "oauth2.stopped") return;  // not the endpoint's answer
  failure_ = error;
  retry_at_ = clock_.SteadyNow() + FailureHold(error, ++failures_);
  if (!error.NeedsOperator()) return;
  const bool repeated = error.message() == said_failure_;
  said_failure_ = error.message();
  util::Log(log_area_).log(repeated ? spdlog::level::debug : spdlog::level::err,
                           "oauth2.needs_operator account={} code={} retry_in_ms={} cause=\"{}\"", name_, error.code(),
                           FailureHold(error, failures_).count(), error.message());
}

bool OAuth2TokenCache::SameSource(const config::Account& account) const {
  return SameSource(account.name, account.oauth2, account.allow_insecure);
}

bool OAuth2TokenCache::SameSource(const std::string& name, const std::optional<config::OAuth2Refresh>& oauth2,
                                  bool allow_insecure) const {
  return name == name_ && oauth2 == oauth2_ && allow_insecure == allow_insecure_;
}

void OAuth2TokenCache::Reject(const util::Secret& token) {
  util::MutexLock lock(mu_);
  if (token_ && *token_ == token) token_.reset();
}

util::Result<TokenRequest> OAuth2TokenCache::BuildRequest() {
  const config::OAuth2Refresh& o = oauth2_;
  TokenRequest r;
  r.token_url = o.token_url;
  r.client_id = o.client_id;
  r.scope = o.scope;
  r.allow_insecure = allow_insecure_;
  r.ca_file = ca_file_;
  r.account = name_;
  if (o.client_secret) {
    auto secret = o.client_secret->Resolve();
    if (!secret.ok()) return secret.error();
    r.client_secret = std::move(*secret);
  }
  if (rotated_) {
    r.refresh_token = *rotated_;
  } else {
    auto refresh = o.refresh_token.Resolve();
    if (!refresh.ok()) return refresh.error();
    r.refresh_token = std::move(*refresh);
  }
  return r;
}

util::Result<util::Secret> OAuth2TokenCache::Refresh(int stop_fd) {
  token_.reset();
  auto request = BuildRequest();
  if (!request.ok()) {
    RememberFailure(request.error());
    return request.error();
  }
  request->stop_fd = stop_fd;
  auto grant = requester_(*request);
  spdlog::logger& log = util::Log(log_area_);
  if (!grant.ok()) {
    // The operator's fix lands in the configured source: read it next time.
    if (grant.error().code() == "oauth2.invalid_grant") rotated_.reset();
    RememberFailure(grant.error());
    return grant.error();
  }
  failure_.reset();
  failures_ = 0;
  said_failure_.clear();
  // Cut as the token client does: renew_at_ must not overflow the steady clock.
  const auto lifetime = std::min(grant->expires_in.value_or(kAssumedLifetime), kMaxExpiresIn);
  renew_at_ = clock_.SteadyNow() + lifetime - RefreshMargin(lifetime);
  token_ = grant->access_token;
  // Tokens come from no config source: the trace's last line of defence
  // must learn them here (util/known_secrets.h).
  util::RememberSecret(token_->reveal(), util::SecretLifetime::kRenewed);
  if (grant->refresh_token) util::RememberSecret(grant->refresh_token->reveal(), util::SecretLifetime::kRenewed);
  log.debug("oauth2.token_refreshed account={} expires_in_s={}", name_, lifetime.count());
  if (grant->refresh_token && *grant->refresh_token != request->refresh_token) KeepRotated(*grant->refresh_token);
  return *token_;
}

void OAuth2TokenCache::KeepRotated(util::Secret token) {
  spdlog::logger& log = util::Log(log_area_);
  const config::SecretRef& source = oauth2_.refresh_token;
  std::string why = "refresh_token is not given as refresh_token_file";
  if (source.kind() == config::SecretRef::Kind::kFile) {
    const std::string path = source.file().string();
    util::Status written = access(path.c_str(), W_OK) == 0
                               ? WriteSecretFileAtomically(path, token.reveal() + "\n")
                               : util::Status(Error("oauth2.refresh_token_file", RetryClass::kBackoff,
                                                    path + " is not writable by mailhook"));
    if (written.ok()) {
      rotated_.reset();  // the file holds it now, and the operator may replace it
      log.info("oauth2.refresh_token_rotated account={} stored=file path={}", name_, path);
      return;
    }
    why = written.error().message();
  }
  rotated_ = std::move(token);
  if (said_memory_) return;
  said_memory_ = true;
  log.warn(
      "oauth2.refresh_token_rotated account={} stored=memory cause=\"{}\" note=\"the server issued a new refresh "
      "token; mailhook uses it until it stops, then falls back to the configured one, which the server may have "
      "invalidated. Give refresh_token_file on a writable path to keep it\"",
      name_, why);
}

util::Status WriteSecretFileAtomically(const std::string& path, const std::string& value) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  auto fail = [&](const std::string& what) {
    const std::string cause = std::strerror(errno);
    unlink(tmp.c_str());
    return util::Status(Error("oauth2.refresh_token_file", RetryClass::kBackoff,
                              "cannot " + what + " " + tmp + " to replace " + path + ": " + cause));
  };
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail("create");
  size_t done = 0;
  while (done < value.size()) {
    ssize_t n = write(fd, value.data() + done, value.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return fail("write");
    }
    done += static_cast<size_t>(n);
  }
  if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
    close(fd);
    return fail("sync");
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  return util::Ok();
}

}  // namespace mailhook::delivery
