// mailhook: IMAP IDLE → signed JSON events. main() only parses the command
// line and wires the areas together; each subcommand is one function call.

#include <malloc.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "config/check.h"
#include "config/config.h"
#include "config/config_fingerprint.h"
#include "daemon/cluster_command.h"
#include "daemon/daemon.h"
#include "daemon/deadletters_command.h"
#include "daemon/healthcheck_command.h"
#include "daemon/process_hardening.h"
#include "daemon/stop_signal.h"
#include "daemon/store_migrate_command.h"
#include "daemon/version_info.h"
#include "delivery/sink.h"
#include "mime/event.h"
#include "util/log.h"
#include "version.h"

namespace {

using namespace mailhook;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Loads and validates, printing every error; nullopt means exit 2.
std::optional<config::Config> LoadOrReport(const std::string& path) {
  config::LoadResult r = config::LoadConfig(path);
  if (!r.config || !r.errors.empty()) {
    config::PrintCheck(r, std::cerr);
    return std::nullopt;
  }
  return r.config;
}

int Run(const std::string& path) {
  // Before any thread starts: glibc gives each thread that allocates its own
  // malloc arena (up to 8 per core), each with pages of its own that stay
  // resident. The daemon's threads mostly wait on sockets; two arenas keep
  // lock contention negligible and save ~200 KiB idle (bench/memory).
  mallopt(M_ARENA_MAX, 2);
  // Before the config's secrets are read into memory.
  std::vector<std::string> dumpable = daemon::KeepSecretsOutOfCoreDumps();
  // One read for the config and the fingerprint a SIGHUP reload compares with.
  config::LoadedConfig loaded = config::LoadConfigWithFingerprint(path);
  if (!loaded.result.config || !loaded.fingerprint) {
    config::PrintCheck(loaded.result, std::cerr);
    return kExitUsage;
  }
  const config::Config& cfg = *loaded.result.config;
  util::SetupLogging(cfg.log.level, cfg.log.format);
  for (const auto& why : dumpable) util::Log(util::Area::kDaemon).warn("daemon.core_dumps_possible cause=\"{}\"", why);

  // Block the signals in every thread; one thread waits for them, so no
  // library thread is ever interrupted by a handler.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  daemon::StopSignal stop;
  daemon::StopSignal reload;  // a reusable wake-up: the daemon clears it
  std::atomic<bool> failed{false};
  std::thread signals([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        // Reload, not stop (CONTRACT.md): the daemon re-reads the file.
        util::Log(util::Area::kDaemon).info("daemon.signal signal=SIGHUP action=reload");
        reload.Fire();
        continue;
      }
      // Our own wake-up after a failed start is not a signal anyone sent.
      if (!failed.load()) {
        util::Log(util::Area::kDaemon).info("daemon.signal signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      }
      stop.Fire();
      return;
    }
  });
  daemon::ReloadOptions reloading{path, *loaded.fingerprint, &reload};
  int code = daemon::RunDaemon(cfg, MAILHOOK_VERSION, stop, reloading);
  if (!stop.fired()) {
    // RunDaemon failed on its own: wake the signal thread so it can be joined.
    failed.store(true);
    stop.Fire();
    kill(getpid(), SIGTERM);
  }
  signals.join();
  return code;
}

int Check(const std::string& path, bool connect) {
  config::LoadResult r = config::LoadConfig(path);
  int code = config::PrintCheck(r, std::cout);
  if (code != 0 || !connect) return code;
  util::SetupLogging("warn", "text");
  return daemon::CheckConnect(*r.config, std::cout) == 0 ? kExitOk : kExitRuntime;
}

int ParseMessage(const std::string& file, const std::string& mailbox, const std::string& attachments) {
  config::AttachmentMode mode = attachments == "content" ? config::AttachmentMode::kContent
                                : attachments == "none"  ? config::AttachmentMode::kNone
                                                         : config::AttachmentMode::kMetadata;
  auto json = mime::ParseFileToEventJson(file, mailbox, mode);
  if (!json.ok()) {
    std::cerr << "mailhook parse: " << json.error().message() << "\n";
    return kExitRuntime;
  }
  std::cout << *json << "\n";
  return kExitOk;
}

/// The command line: every subcommand and the values its options fill.
class CommandLine {
 public:
  CommandLine() {
    app_.require_subcommand(1);
    run_ = app_.add_subcommand("run", "run the daemon in the foreground");
    run_->add_option("-c,--config", config_path_, "config file")->required();

    check_ = app_.add_subcommand("check", "validate the config (and with --connect, log in everywhere)");
    check_->add_option("-c,--config", config_path_, "config file")->required();
    check_->add_flag(
        "--connect", connect_,
        "also log in to every account and select every folder, and log in to every smtp target (nothing sent)");

    parse_ = app_.add_subcommand("parse", "print the event `run` would emit for a message file");
    parse_
        ->add_option("file", eml_,
                     "RFC 5322 message file (.eml); bare LF line breaks are read as CRLF, as a server stores them")
        ->required()
        ->check(CLI::ExistingFile);
    parse_->add_option("--mailbox", mailbox_, "mailbox name to put in the event");
    parse_->add_option("--attachments", attachments_, "none | metadata | content")
        ->check(CLI::IsMember({"none", "metadata", "content"}));

    sink_ = app_.add_subcommand("sink", "a webhook receiver that verifies and prints events");
    sink_->add_option("--listen", listen_, "HOST:PORT")->required();
    sink_->add_option("--secret", secret_, "whsec_... signing secret to verify");

    dead_ = app_.add_subcommand("deadletters", "list, replay or drop events that could not be delivered");
    dead_->add_option("action", dl_action_, "list | replay | drop")
        ->required()
        ->check(CLI::IsMember({"list", "replay", "drop"}));
    dead_->add_option("-c,--config", config_path_, "config file")->required();
    dead_->add_option("ids", dl_ids_, "dead letter ids (none: all)");

    health_ =
        app_.add_subcommand("healthcheck", "exit 0 if a running daemon's /healthz answers 2xx within 3 s, else 1");
    auto* health_config = health_->add_option("-c,--config", config_path_, "config file (its http.listen is probed)");
    health_->add_option("--url", health_url_, "URL to probe instead, e.g. http://127.0.0.1:8025/healthz")
        ->excludes(health_config);
    health_->callback([this] {
      if (config_path_.empty() && health_url_.empty()) throw CLI::RequiredError("-c,--config or --url");
    });

    cluster_ = app_.add_subcommand("cluster", "replicas sharing a PostgreSQL store");
    cluster_->require_subcommand(1);
    cluster_status_ =
        cluster_->add_subcommand("status", "print the replicas, the accounts each holds and the age of each lease");
    cluster_status_->add_option("-c,--config", config_path_, "config file")->required();

    store_ = app_.add_subcommand("store", "the daemon's durable state");
    store_->require_subcommand(1);
    store_migrate_ = store_->add_subcommand(
        "migrate", "move a SQLite state into an empty PostgreSQL store (the daemon stopped); the source is kept");
    store_migrate_->add_option("--from", migrate_.from, "state_dir, its mailhook.db, or sqlite:PATH")->required();
    auto* to = store_migrate_->add_option("--to", migrate_.to, "postgresql:// URL of the destination");
    auto* to_file =
        store_migrate_->add_option("--to-file", migrate_.to_file, "file holding the URL (keeps its password off argv)");
    to->excludes(to_file);
    to_file->excludes(to);
    store_migrate_->callback([to, to_file] {
      if (to->count() == 0 && to_file->count() == 0) throw CLI::RequiredError("--to or --to-file");
    });

    version_ = app_.add_subcommand("version", "print versions");
  }

  /// Parses argv; an exit code when the program should end here (help, usage).
  std::optional<int> Parse(int argc, char** argv) {
    try {
      app_.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app_.exit(e) == 0 ? kExitOk : kExitUsage;
    }
    return std::nullopt;
  }

  /// Runs the chosen subcommand; its exit code.
  int Dispatch() {
    if (*run_) return Run(config_path_);
    if (*check_) return Check(config_path_, connect_);
    if (*parse_) return ParseMessage(eml_, mailbox_, attachments_);
    if (*sink_) {
      return delivery::RunSink(listen_, secret_.empty() ? std::nullopt : std::optional<std::string>(secret_),
                               std::cout);
    }
    if (*dead_) {
      auto cfg = LoadOrReport(config_path_);
      if (!cfg) return kExitUsage;
      return daemon::RunDeadLettersCommand(*cfg, dl_action_, dl_ids_, std::cout);
    }
    if (*health_) return daemon::RunHealthcheck(config_path_, health_url_, std::cout, std::cerr);
    if (*cluster_status_) {
      auto cfg = LoadOrReport(config_path_);
      if (!cfg) return kExitUsage;
      return daemon::RunClusterStatus(*cfg, std::cout) == 0 ? kExitOk : kExitRuntime;
    }
    if (*store_migrate_) return daemon::RunStoreMigrate(migrate_, std::cout) == 0 ? kExitOk : kExitRuntime;
    if (*version_) {
      std::cout << daemon::VersionReport(MAILHOOK_VERSION);
      return kExitOk;
    }
    return kExitUsage;
  }

 private:
  CLI::App app_{"mailhook: turns new IMAP messages into signed JSON events for webhooks and hooks"};
  std::string config_path_;
  bool connect_ = false;
  std::string eml_, mailbox_ = "INBOX", attachments_ = "metadata";
  std::string listen_, secret_;
  std::string dl_action_;
  std::vector<std::string> dl_ids_;
  std::string health_url_;
  daemon::StoreMigrateArgs migrate_;
  CLI::App* run_ = nullptr;
  CLI::App* check_ = nullptr;
  CLI::App* parse_ = nullptr;
  CLI::App* sink_ = nullptr;
  CLI::App* dead_ = nullptr;
  CLI::App* health_ = nullptr;
  CLI::App* cluster_ = nullptr;
  CLI::App* cluster_status_ = nullptr;
  CLI::App* store_ = nullptr;
  CLI::App* store_migrate_ = nullptr;
  CLI::App* version_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  // A server that drops the connection must not kill us (DESIGN.md: SIGPIPE).
  signal(SIGPIPE, SIG_IGN);

  CommandLine command_line;
  if (auto done = command_line.Parse(argc, argv)) return *done;
  try {
    return command_line.Dispatch();
  } catch (const std::exception& e) {
    std::cerr << "mailhook: " << e.what() << "\n";
    return kExitRuntime;
  }
}
