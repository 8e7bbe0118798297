#pragma once
/// Metrics: a tiny thread-safe Prometheus registry. Counters, gauges and
/// histograms are keyed by name plus a sorted label set and rendered in the
/// Prometheus text exposition format (version 0.0.4) by Render().

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mailhook::util {

/// Label name -> value, e.g. {{"webhook","tickets"},{"outcome","success"}}.
using Labels = std::map<std::string, std::string>;

/// The process-wide registry. All methods are thread-safe.
class Metrics {
 public:
  /// The one registry the daemon uses.
  static Metrics& Global();

  /// Declares a metric's HELP text and type ("counter", "gauge", "histogram");
  /// histograms also take their bucket upper bounds. Undeclared metrics are
  /// rendered as untyped.
  void Describe(const std::string& name, const std::string& type, const std::string& help,
                std::vector<double> buckets = {});

  void Inc(const std::string& name, const Labels& labels = {}, double delta = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  void Observe(const std::string& name, const Labels& labels, double value);

  /// Current value of a counter or gauge (0 when never touched); for tests.
  double Value(const std::string& name, const Labels& labels = {}) const;

  /// The text exposition of every metric.
  std::string Render() const;

  /// Forgets all values (tests only).
  void Reset();

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // cumulative per bound at render time
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    std::string type = "untyped";
    std::string help;
    std::vector<double> buckets;
    std::map<Labels, double> values;
    std::map<Labels, Histogram> histograms;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // guarded by mu_
};

/// Describes, on Metrics::Global(), every metric named in the outside contract
/// (mailhook_messages_total, mailhook_deliveries_total{webhook,outcome},
/// mailhook_delivery_seconds, mailhook_imap_reconnects_total,
/// mailhook_imap_connected, mailhook_outbox_pending, mailhook_deadletters).
/// Idempotent and thread-safe; call at start-up so that /metrics shows every
/// family (HELP/TYPE) before its first value.
void DescribeStandardMetrics();

}  // namespace mailhook::util
