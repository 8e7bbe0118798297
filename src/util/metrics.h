#pragma once
/// Metrics: a tiny thread-safe Prometheus registry with typed handles.
///
/// A family (name, HELP, TYPE, label names) is declared once, by a
/// CounterFamily/GaugeFamily/HistogramFamily object; values are recorded only
/// through the handles a family hands out (Counter, Gauge, Histogram), whose
/// label values are bound when the handle is made. No caller writes a metric
/// name or a label name at the point of use, so a typo cannot start a new
/// family; declaring one name twice is a bug reported at start-up. The
/// families of mailhook itself are declared in util/metrics_catalog.h.
///
/// Render() writes the Prometheus text exposition format (version 0.0.4):
/// families sorted by name, each with HELP and TYPE, then the series that have
/// been touched (a series appears with its first Inc/Set/Observe).
///
/// Ownership and threads: the registry owns every family; handles and family
/// objects point into it and must not outlive it. Every method of the
/// registry and of the handles is thread-safe (one mutex per registry).

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace mailhook::util {

/// Label name -> value, e.g. {{"webhook","tickets"},{"outcome","success"}}.
using Labels = std::map<std::string, std::string>;

/// What a family holds, as written on its "# TYPE" line.
enum class MetricType { kCounter, kGauge, kHistogram };

/// A registry of metric families. Components get one by reference (the daemon
/// owns one; a test makes its own and asserts exact values).
class Metrics {
 public:
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// The text exposition of every declared family.
  std::string Render() const;

  /// Names of the declared families, sorted.
  std::vector<std::string> FamilyNames() const;

 private:
  friend class Series;
  template <class Handle, size_t N>
  friend class Family;

  struct Histo {
    std::vector<uint64_t> counts;  // per bound; Render() makes them cumulative
    double sum = 0;
    uint64_t count = 0;
  };
  struct FamilyData {
    MetricType type = MetricType::kCounter;
    std::string help;
    std::vector<double> buckets;
    std::map<Labels, double> values;
    std::map<Labels, Histo> histograms;
  };

  /// Declares a family; throws std::logic_error when the name is taken or is
  /// not a valid metric name (both are bugs in the declaring code).
  FamilyData* Declare(const std::string& name, MetricType type, std::string help, std::vector<double> buckets);
  void Add(FamilyData* f, const Labels& labels, double delta);
  void Set(FamilyData* f, const Labels& labels, double value);
  void Observe(FamilyData* f, const Labels& labels, double value);
  double Get(const FamilyData* f, const Labels& labels) const;
  std::pair<uint64_t, double> HistogramTotals(const FamilyData* f, const Labels& labels) const;

  mutable Mutex mu_;
  std::map<std::string, FamilyData> families_ GUARDED_BY(mu_);  // nodes never move
};

/// One series: a family plus bound label values. The base of the handles.
class Series {
 protected:
  using FamilyData = Metrics::FamilyData;
  Series(Metrics* registry, FamilyData* family, Labels labels)
      : registry_(registry), family_(family), labels_(std::move(labels)) {}
  Metrics* registry_ = nullptr;
  FamilyData* family_ = nullptr;
  Labels labels_;

  void Add(double delta) const { registry_->Add(family_, labels_, delta); }
  void Put(double value) const { registry_->Set(family_, labels_, value); }
  void Record(double value) const { registry_->Observe(family_, labels_, value); }
  double Get() const { return registry_->Get(family_, labels_); }
  std::pair<uint64_t, double> Totals() const { return registry_->HistogramTotals(family_, labels_); }
};

// Counter, Gauge and Histogram share their shape on purpose (duplicates
// lists them): one small class per Prometheus type, so a gauge's Set cannot
// be called on a counter.

/// A counter series. Only goes up: a negative delta is ignored (a decrease
/// reads as a process restart to Prometheus' rate()).
class Counter : public Series {
 public:
  static constexpr MetricType kType = MetricType::kCounter;
  void Inc(double delta = 1) const { Add(delta); }
  /// The current value (0 before the first Inc).
  double Value() const { return Get(); }

 private:
  template <class, size_t>
  friend class Family;
  Counter(Metrics* r, FamilyData* f, Labels l) : Series(r, f, std::move(l)) {}
};

/// A gauge series: a value that goes up and down.
class Gauge : public Series {
 public:
  static constexpr MetricType kType = MetricType::kGauge;
  void Set(double value) const { Put(value); }
  void Add(double delta) const { Series::Add(delta); }
  double Value() const { return Get(); }

 private:
  template <class, size_t>
  friend class Family;
  Gauge(Metrics* r, FamilyData* f, Labels l) : Series(r, f, std::move(l)) {}
};

/// A histogram series with its family's bucket bounds.
class Histogram : public Series {
 public:
  static constexpr MetricType kType = MetricType::kHistogram;
  void Observe(double value) const { Record(value); }
  /// Observations so far.
  uint64_t Count() const { return Totals().first; }
  /// Sum of the observed values.
  double Sum() const { return Totals().second; }

 private:
  template <class, size_t>
  friend class Family;
  Histogram(Metrics* r, FamilyData* f, Labels l) : Series(r, f, std::move(l)) {}
};

/// A declared family with N label names; With() makes its handles. Cheap to
/// copy; valid while its registry lives.
template <class Handle, size_t N>
class Family {
 public:
  /// Declares `name` on `registry` (see Metrics::Declare for failures).
  /// Histograms take their bucket upper bounds (+Inf is implied); empty means
  /// the Prometheus client default buckets.
  Family(Metrics& registry, const std::string& name, std::string help, std::array<std::string, N> label_names,
         std::vector<double> buckets = {})
      : registry_(&registry),
        family_(registry.Declare(name, Handle::kType, std::move(help), std::move(buckets))),
        label_names_(std::move(label_names)) {}

  /// The series with these label values, in the order of the label names.
  Handle With(const std::array<std::string, N>& values) const {
    Labels labels;
    for (size_t i = 0; i < N; ++i) labels.emplace(label_names_[i], values[i]);
    return Handle(registry_, family_, std::move(labels));
  }

 private:
  Metrics* registry_;
  Metrics::FamilyData* family_;
  std::array<std::string, N> label_names_;
};

template <size_t N>
using CounterFamily = Family<Counter, N>;
template <size_t N>
using GaugeFamily = Family<Gauge, N>;
template <size_t N>
using HistogramFamily = Family<Histogram, N>;

}  // namespace mailhook::util
