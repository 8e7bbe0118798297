#include "util/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace mailhook::util {
namespace {

// Prometheus client libraries' default buckets, for histograms observed
// before (or without) Describe().
const std::vector<double> kDefaultBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,    2.5,   5,    10};

// Text format 0.0.4 writes floats as Go's strconv does: shortest round-trip
// form, and "+Inf", "-Inf", "NaN" for the special values.
std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  return std::string(buf, end);
}

// Label values escape backslash, double quote and line feed (text format
// 0.0.4, "label_value can be any sequence of UTF-8 characters, but the
// backslash, the double-quote and the line feed characters have to be
// escaped").
std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

// HELP text escapes only backslash and line feed (same section of the format).
std::string EscapeHelp(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

// "{a="1",b="2"}" with an optional trailing le label; "" for no labels.
std::string FormatLabels(const Labels& labels, const std::string* le = nullptr) {
  if (labels.empty() && le == nullptr) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (le != nullptr) {
    if (!first) out += ',';
    out += "le=\"" + *le + "\"";
  }
  out += '}';
  return out;
}

std::vector<double> NormalizeBuckets(std::vector<double> b) {
  // +Inf is always implied; a finite, sorted, unique list keeps the
  // cumulative counts monotonic.
  b.erase(std::remove_if(b.begin(), b.end(), [](double x) { return !std::isfinite(x); }),
          b.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

}  // namespace

Metrics& Metrics::Global() {
  // Leaked on purpose: threads that are still running during static
  // destruction at exit may record a value; they must not touch a dead object.
  static Metrics* global = new Metrics;
  return *global;
}

void Metrics::Describe(const std::string& name, const std::string& type,
                       const std::string& help, std::vector<double> buckets) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  if (type == "histogram") {
    f.buckets = NormalizeBuckets(buckets.empty() ? kDefaultBuckets : std::move(buckets));
  }
}

void Metrics::Inc(const std::string& name, const Labels& labels, double delta) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  if (f.type == "histogram") return;  // a caller bug; Observe() is the way in
  // A counter only goes up (a decrease reads as a process restart to
  // Prometheus' rate()); ignore negative deltas rather than corrupt rates.
  if (f.type == "counter" && delta < 0) return;
  f.values[labels] += delta;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  if (f.type == "histogram") return;
  f.values[labels] = value;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard lock(mu_);
  Family& f = families_[name];
  if (f.type == "untyped" && f.values.empty()) {
    f.type = "histogram";
  }
  if (f.type != "histogram") return;
  if (f.buckets.empty()) f.buckets = kDefaultBuckets;
  auto [it, inserted] = f.histograms.try_emplace(labels);
  Histogram& h = it->second;
  if (inserted) {
    h.bounds = f.buckets;
    h.counts.assign(h.bounds.size(), 0);
  }
  // Store per-bucket counts; Render() makes them cumulative ("le" means
  // "less than or equal").
  // NaN compares false with every bound: it belongs only to +Inf.
  if (!std::isnan(value)) {
    auto pos = std::lower_bound(h.bounds.begin(), h.bounds.end(), value);
    if (pos != h.bounds.end()) ++h.counts[pos - h.bounds.begin()];
  }
  h.sum += value;
  ++h.count;
}

double Metrics::Value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mu_);
  auto f = families_.find(name);
  if (f == families_.end()) return 0;
  auto v = f->second.values.find(labels);
  return v == f->second.values.end() ? 0 : v->second;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, value] : f.values) {
      out += name + FormatLabels(labels) + " " + FormatDouble(value) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.bounds.size(); ++i) {
        cumulative += h.counts[i];
        std::string le = FormatDouble(h.bounds[i]);
        out += name + "_bucket" + FormatLabels(labels, &le) + " " + std::to_string(cumulative) +
               "\n";
      }
      std::string inf = "+Inf";
      out += name + "_bucket" + FormatLabels(labels, &inf) + " " + std::to_string(h.count) + "\n";
      out += name + "_sum" + FormatLabels(labels) + " " + FormatDouble(h.sum) + "\n";
      out += name + "_count" + FormatLabels(labels) + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

void Metrics::Reset() {
  std::lock_guard lock(mu_);
  for (auto& [name, f] : families_) {
    f.values.clear();
    f.histograms.clear();
  }
}

void DescribeStandardMetrics() {
  Metrics& m = Metrics::Global();
  m.Describe("mailhook_messages_total", "counter",
             "Messages turned into events and stored durably.");
  const std::vector<double> seconds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5,   1,    2.5,   5,    10,  30};
  m.Describe("mailhook_deliveries_total", "counter",
             "Webhook delivery attempts by webhook name and outcome (success, retry, dead).");
  m.Describe("mailhook_delivery_seconds", "histogram",
             "Duration of one webhook delivery attempt in seconds.", seconds);
  m.Describe("mailhook_hook_runs_total", "counter",
             "Hook command runs by hook name and outcome (success, retry, dead).");
  m.Describe("mailhook_hook_seconds", "histogram", "Duration of one hook command run in seconds.",
             seconds);
  m.Describe("mailhook_imap_reconnects_total", "counter",
             "IMAP sessions thrown away and reconnected.");
  m.Describe("mailhook_imap_connected", "gauge",
             "Watched folders whose IMAP session is connected (1) or not (0).");
  m.Describe("mailhook_outbox_pending", "gauge",
             "Deliveries stored in the outbox and not yet done.");
  m.Describe("mailhook_deadletters", "gauge",
             "Deliveries that exhausted their retries or failed permanently.");
  m.Describe("mailhook_messages_unprocessable_total", "counter",
             "Messages that failed extraction limits.max_attempts times and were sent as "
             "message.unprocessable.");
  m.Describe("mailhook_message_failures_total", "counter",
             "Failed extraction attempts of single messages (each is retried until max_attempts).");
  m.Describe("mailhook_watcher_crashes_total", "counter",
             "Folder watcher sessions ended by an unexpected exception (the watcher starts a new one).");
}

}  // namespace mailhook::util
