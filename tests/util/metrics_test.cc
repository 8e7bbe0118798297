#include "util/metrics.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mailhook::util {
namespace {

TEST(MetricsTest, RendersCounterWithEscapedLabels) {
  Metrics m;
  m.Describe("mh_deliveries_total", "counter", "Delivery attempts.\nBy outcome \\ webhook.");
  m.Inc("mh_deliveries_total", {{"webhook", "tickets"}, {"outcome", "success"}});
  m.Inc("mh_deliveries_total", {{"webhook", "tickets"}, {"outcome", "success"}}, 2);
  m.Inc("mh_deliveries_total", {{"webhook", "a\"b\\c\nd"}, {"outcome", "failed"}});
  EXPECT_EQ(m.Render(),
            "# HELP mh_deliveries_total Delivery attempts.\\nBy outcome \\\\ webhook.\n"
            "# TYPE mh_deliveries_total counter\n"
            "mh_deliveries_total{outcome=\"failed\",webhook=\"a\\\"b\\\\c\\nd\"} 1\n"
            "mh_deliveries_total{outcome=\"success\",webhook=\"tickets\"} 3\n");
  EXPECT_EQ(m.Value("mh_deliveries_total", {{"webhook", "tickets"}, {"outcome", "success"}}),
            3);
}

TEST(MetricsTest, RendersGauge) {
  Metrics m;
  m.Describe("mh_outbox_pending", "gauge", "Pending deliveries.");
  m.Set("mh_outbox_pending", {}, 7);
  m.Inc("mh_outbox_pending", {}, -2.5);
  EXPECT_EQ(m.Render(),
            "# HELP mh_outbox_pending Pending deliveries.\n"
            "# TYPE mh_outbox_pending gauge\n"
            "mh_outbox_pending 4.5\n");
}

TEST(MetricsTest, RendersCumulativeHistogram) {
  Metrics m;
  m.Describe("mh_delivery_seconds", "histogram", "Delivery time.", {1, 0.1, 0.5});
  for (double v : {0.05, 0.1, 0.3, 2.0}) m.Observe("mh_delivery_seconds", {{"webhook", "t"}}, v);
  EXPECT_EQ(m.Render(),
            "# HELP mh_delivery_seconds Delivery time.\n"
            "# TYPE mh_delivery_seconds histogram\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"0.1\"} 2\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"0.5\"} 3\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"1\"} 3\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"+Inf\"} 4\n"
            "mh_delivery_seconds_sum{webhook=\"t\"} 2.45\n"
            "mh_delivery_seconds_count{webhook=\"t\"} 4\n");
}

TEST(MetricsTest, UndescribedMetricIsUntyped) {
  Metrics m;
  m.Inc("mh_thing");
  EXPECT_EQ(m.Render(), "# TYPE mh_thing untyped\nmh_thing 1\n");
}

TEST(MetricsTest, CounterIgnoresNegativeDelta) {
  Metrics m;
  m.Describe("mh_c_total", "counter", "c");
  m.Inc("mh_c_total", {}, 5);
  m.Inc("mh_c_total", {}, -1);
  EXPECT_EQ(m.Value("mh_c_total"), 5);
}

TEST(MetricsTest, ResetForgetsValuesKeepsDescriptions) {
  Metrics m;
  m.Describe("mh_g", "gauge", "g");
  m.Set("mh_g", {}, 1);
  m.Reset();
  EXPECT_EQ(m.Value("mh_g"), 0);
  EXPECT_EQ(m.Render(), "# HELP mh_g g\n# TYPE mh_g gauge\n");
}

TEST(MetricsTest, ConcurrentIncFromFourThreadsSums) {
  Metrics m;
  m.Describe("mh_messages_total", "counter", "Messages.");
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < kPerThread; ++i) {
        m.Inc("mh_messages_total");
        m.Observe("mh_seconds", {}, 0.01);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(m.Value("mh_messages_total"), kThreads * kPerThread);
  EXPECT_NE(m.Render().find("mh_seconds_count 40000\n"), std::string::npos);
}

TEST(MetricsTest, StandardMetricsAreDescribed) {
  DescribeStandardMetrics();
  std::string text = Metrics::Global().Render();
  for (const char* line : {
           "# TYPE mailhook_messages_total counter\n",
           "# TYPE mailhook_deliveries_total counter\n",
           "# TYPE mailhook_delivery_seconds histogram\n",
           "# TYPE mailhook_hook_runs_total counter\n",
           "# TYPE mailhook_hook_seconds histogram\n",
           "# TYPE mailhook_imap_reconnects_total counter\n",
           "# TYPE mailhook_imap_connected gauge\n",
           "# TYPE mailhook_outbox_pending gauge\n",
           "# TYPE mailhook_deadletters gauge\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
  Metrics::Global().Observe("mailhook_delivery_seconds", {}, 20);
  text = Metrics::Global().Render();
  EXPECT_NE(text.find("mailhook_delivery_seconds_bucket{le=\"0.005\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("mailhook_delivery_seconds_bucket{le=\"30\"} 1\n"), std::string::npos);
  Metrics::Global().Reset();
}

}  // namespace
}  // namespace mailhook::util
