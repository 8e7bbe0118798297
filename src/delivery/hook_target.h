#pragma once
/// HookTarget: runs one configured hook command per outbox row (CONTRACT.md,
/// "Hook commands"): argv without a shell, the event JSON on stdin and
/// MAILHOOK_EVENT_ID, MAILHOOK_ACCOUNT, MAILHOOK_MAILBOX, MAILHOOK_UID in the
/// environment, in its own process group (util::RunProcess). Beside those the
/// command gets only the base environment (PATH, HOME, LANG, LC_*, TZ, TMPDIR,
/// MAILHOOK_*), the hook's `pass_env` names and its `env:` map: never the
/// daemon's whole environment, which holds the config's secrets.
///
/// Outcomes: exit 0 is success; exit 75 (EX_TEMPFAIL), a timeout (the whole
/// group is SIGKILLed) and a failure to fork/pipe are retried; any other exit
/// code, death by a signal and a missing or non-executable program are
/// permanent. Outcome::error holds the exit code and the tail of stderr, never
/// the event; the hook's stdout is discarded.
///
/// Thread-safe: Deliver may run on several threads at once (one child each).
/// The call's cancel token kills its child's group (the token's fd is in the
/// child's poll set); the call returns with cancelled=true. Never throws.

#include <memory>
#include <string>

#include "config/config.h"
#include "delivery/target.h"
#include "util/subprocess.h"

namespace mailhook::delivery {

/// One hook command from the config.
class HookTarget : public Target {
 public:
  /// How much of the end of stderr goes into Outcome::error.
  static constexpr size_t kStderrTail = 500;
  /// The contract's "retry later" exit code (sysexits.h EX_TEMPFAIL).
  static constexpr int kExitTempFail = 75;

  /// The hook's env values, resolved.
  using Env = std::vector<std::pair<std::string, util::Secret>>;

  /// Resolves the hook's env values (reads files, runs any command: here, when
  /// the dispatcher builds its targets, never while the config is read).
  static util::Result<std::unique_ptr<HookTarget>> Create(const config::Hook& hook);
  HookTarget(config::Hook hook, Env env);
  ~HookTarget() override;
  HookTarget(const HookTarget&) = delete;
  HookTarget& operator=(const HookTarget&) = delete;

  Outcome Deliver(const store::Delivery& delivery, const util::CancelToken& cancel) override;

  const std::string& name() const { return hook_.name; }

 private:
  /// What a finished run means: success, retry (75, timeout, shutdown) or
  /// permanent, with the stderr tail (its env secrets redacted).
  Outcome FromProcessResult(const util::ProcessResult& r) const;
  const config::Hook hook_;
  const Env env_;  // hook_.env resolved
};

}  // namespace mailhook::delivery
