#include "util/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace mailhook::util {
namespace {

// Prometheus client libraries' default buckets, for histograms declared
// without their own.
const std::vector<double> kDefaultBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

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
  b.erase(std::remove_if(b.begin(), b.end(), [](double x) { return !std::isfinite(x); }), b.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

// [a-zA-Z_:][a-zA-Z0-9_:]* (text format 0.0.4, "Metric names").
bool IsValidName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

Metrics::FamilyData* Metrics::Declare(const std::string& name, MetricType type, std::string help,
                                      std::vector<double> buckets) {
  if (!IsValidName(name)) {
    throw std::logic_error("metric name \"" + name + "\" is not [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  MutexLock lock(mu_);
  auto [it, inserted] = families_.try_emplace(name);
  // Two declarations of one name would share (and mix) their series.
  if (!inserted) throw std::logic_error("metric " + name + " is declared twice");
  FamilyData& f = it->second;
  f.type = type;
  f.help = std::move(help);
  if (type == MetricType::kHistogram) {
    f.buckets = NormalizeBuckets(buckets.empty() ? kDefaultBuckets : std::move(buckets));
  }
  return &f;
}

void Metrics::Add(FamilyData* f, const Labels& labels, double delta) {
  // A counter only goes up (a decrease reads as a process restart to
  // Prometheus' rate()); ignore negative deltas rather than corrupt rates.
  if (f->type == MetricType::kCounter && delta < 0) return;
  MutexLock lock(mu_);
  f->values[labels] += delta;
}

void Metrics::Set(FamilyData* f, const Labels& labels, double value) {
  MutexLock lock(mu_);
  f->values[labels] = value;
}

void Metrics::Observe(FamilyData* f, const Labels& labels, double value) {
  MutexLock lock(mu_);
  auto [it, inserted] = f->histograms.try_emplace(labels);
  Histo& h = it->second;
  if (inserted) h.counts.assign(f->buckets.size(), 0);
  // Store per-bucket counts; Render() makes them cumulative ("le" means
  // "less than or equal").
  // NaN compares false with every bound: it belongs only to +Inf.
  if (!std::isnan(value)) {
    auto pos = std::lower_bound(f->buckets.begin(), f->buckets.end(), value);
    if (pos != f->buckets.end()) ++h.counts[static_cast<size_t>(pos - f->buckets.begin())];
  }
  h.sum += value;
  ++h.count;
}

double Metrics::Get(const FamilyData* f, const Labels& labels) const {
  MutexLock lock(mu_);
  auto v = f->values.find(labels);
  return v == f->values.end() ? 0 : v->second;
}

std::pair<uint64_t, double> Metrics::HistogramTotals(const FamilyData* f, const Labels& labels) const {
  MutexLock lock(mu_);
  auto h = f->histograms.find(labels);
  if (h == f->histograms.end()) return {0, 0};
  return {h->second.count, h->second.sum};
}

std::vector<std::string> Metrics::FamilyNames() const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, f] : families_) out.push_back(name);
  return out;
}

std::string Metrics::Render() const {
  MutexLock lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + name + " " + TypeName(f.type) + "\n";
    for (const auto& [labels, value] : f.values) {
      out += name + FormatLabels(labels) + " " + FormatDouble(value) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += h.counts[i];
        std::string le = FormatDouble(f.buckets[i]);
        out += name + "_bucket" + FormatLabels(labels, &le) + " " + std::to_string(cumulative) + "\n";
      }
      std::string inf = "+Inf";
      out += name + "_bucket" + FormatLabels(labels, &inf) + " " + std::to_string(h.count) + "\n";
      out += name + "_sum" + FormatLabels(labels) + " " + FormatDouble(h.sum) + "\n";
      out += name + "_count" + FormatLabels(labels) + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace mailhook::util
