#include "util/metrics.h"

#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "util/metrics_catalog.h"

namespace mailhook::util {
namespace {

TEST(MetricsTest, RendersCounterWithEscapedLabels) {
  Metrics m;
  CounterFamily<2> deliveries(m, "mh_deliveries_total", "Delivery attempts.\nBy outcome \\ webhook.",
                              {"webhook", "outcome"});
  Counter ok = deliveries.With({"tickets", "success"});
  ok.Inc();
  ok.Inc(2);
  deliveries.With({"a\"b\\c\nd", "failed"}).Inc();
  EXPECT_EQ(m.Render(),
            "# HELP mh_deliveries_total Delivery attempts.\\nBy outcome \\\\ webhook.\n"
            "# TYPE mh_deliveries_total counter\n"
            "mh_deliveries_total{outcome=\"failed\",webhook=\"a\\\"b\\\\c\\nd\"} 1\n"
            "mh_deliveries_total{outcome=\"success\",webhook=\"tickets\"} 3\n");
  EXPECT_EQ(ok.Value(), 3);
  // A second handle on the same labels is the same series.
  EXPECT_EQ(deliveries.With({"tickets", "success"}).Value(), 3);
}

TEST(MetricsTest, RendersGauge) {
  Metrics m;
  Gauge pending = GaugeFamily<0>(m, "mh_outbox_pending", "Pending deliveries.", {}).With({});
  pending.Set(7);
  pending.Add(-2.5);
  EXPECT_EQ(m.Render(),
            "# HELP mh_outbox_pending Pending deliveries.\n"
            "# TYPE mh_outbox_pending gauge\n"
            "mh_outbox_pending 4.5\n");
  EXPECT_EQ(pending.Value(), 4.5);
}

TEST(MetricsTest, RendersCumulativeHistogram) {
  Metrics m;
  HistogramFamily<1> seconds(m, "mh_delivery_seconds", "Delivery time.", {"webhook"}, {1, 0.1, 0.5});
  Histogram t = seconds.With({"t"});
  for (double v : {0.05, 0.1, 0.3, 2.0}) t.Observe(v);
  EXPECT_EQ(m.Render(),
            "# HELP mh_delivery_seconds Delivery time.\n"
            "# TYPE mh_delivery_seconds histogram\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"0.1\"} 2\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"0.5\"} 3\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"1\"} 3\n"
            "mh_delivery_seconds_bucket{webhook=\"t\",le=\"+Inf\"} 4\n"
            "mh_delivery_seconds_sum{webhook=\"t\"} 2.45\n"
            "mh_delivery_seconds_count{webhook=\"t\"} 4\n");
  EXPECT_EQ(t.Count(), 4u);
  EXPECT_DOUBLE_EQ(t.Sum(), 2.45);
}

TEST(MetricsTest, DeclaredFamilyWithoutSeriesRendersHelpAndTypeOnly) {
  Metrics m;
  CounterFamily<1> c(m, "mh_c_total", "c", {"reason"});
  EXPECT_EQ(m.Render(), "# HELP mh_c_total c\n# TYPE mh_c_total counter\n");
}

TEST(MetricsTest, CounterIgnoresNegativeDelta) {
  Metrics m;
  Counter c = CounterFamily<0>(m, "mh_c_total", "c", {}).With({});
  c.Inc(5);
  c.Inc(-1);
  EXPECT_EQ(c.Value(), 5);
}

// The registry refuses what would silently make a second family or a broken
// exposition: the same name declared twice, a name Prometheus cannot parse.
TEST(MetricsTest, DeclaringANameTwiceOrAnInvalidNameThrows) {
  Metrics m;
  CounterFamily<0> first(m, "mh_x_total", "x", {});
  EXPECT_THROW(GaugeFamily<0>(m, "mh_x_total", "again", {}), std::logic_error);
  EXPECT_THROW(CounterFamily<0>(m, "mh-x-total", "dash", {}), std::logic_error);
  EXPECT_THROW(CounterFamily<0>(m, "9mh", "digit first", {}), std::logic_error);
  EXPECT_EQ(m.FamilyNames(), std::vector<std::string>{"mh_x_total"});
}

TEST(MetricsTest, ConcurrentIncFromFourThreadsSums) {
  Metrics m;
  Counter messages = CounterFamily<0>(m, "mh_messages_total", "Messages.", {}).With({});
  Histogram seconds = HistogramFamily<0>(m, "mh_seconds", "s", {}).With({});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        messages.Inc();
        seconds.Observe(0.01);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(messages.Value(), kThreads * kPerThread);
  EXPECT_EQ(seconds.Count(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_NE(m.Render().find("mh_seconds_count 40000\n"), std::string::npos);
}

// What /metrics of a freshly started daemon showed before the families were
// declared in one catalog (captured from that code): names, HELP, TYPE, order.
const char* const kFreshExposition =
    "# HELP mailhook_cluster_accounts_owned Accounts whose lease this replica holds (PostgreSQL store).\n"
    "# TYPE mailhook_cluster_accounts_owned gauge\n"
    "# HELP mailhook_cluster_lease_losses_total Account leases this replica lost: ended unrenewed (PostgreSQL "
    "unreachable, a pause past the TTL) or taken over.\n"
    "# TYPE mailhook_cluster_lease_losses_total counter\n"
    "# HELP mailhook_cluster_lease_renewals_total Account leases renewed by this replica (one per lease per round).\n"
    "# TYPE mailhook_cluster_lease_renewals_total counter\n"
    "# HELP mailhook_cluster_store_reachable Whether the lease keeper's last round reached PostgreSQL (1) or not "
    "(0).\n"
    "# TYPE mailhook_cluster_store_reachable gauge\n"
    "# HELP mailhook_config_reloads_total Config reloads (SIGHUP) by outcome: applied, or failed (the running "
    "config kept).\n"
    "# TYPE mailhook_config_reloads_total counter\n"
    "# HELP mailhook_deadletters Deliveries that exhausted their retries or failed permanently.\n"
    "# TYPE mailhook_deadletters gauge\n"
    "# HELP mailhook_deliveries_total Webhook delivery attempts by webhook name and outcome (success, retry, dead).\n"
    "# TYPE mailhook_deliveries_total counter\n"
    "# HELP mailhook_delivery_seconds Duration of one webhook delivery attempt in seconds.\n"
    "# TYPE mailhook_delivery_seconds histogram\n"
    "# HELP mailhook_dispatcher_worker_restarts_total Delivery workers restarted after an unexpected error\n"
    "# TYPE mailhook_dispatcher_worker_restarts_total counter\n"
    "# HELP mailhook_dispatcher_workers_running Delivery workers running their loop\n"
    "# TYPE mailhook_dispatcher_workers_running gauge\n"
    "# HELP mailhook_hook_runs_total Hook command runs by hook name and outcome (success, retry, dead).\n"
    "# TYPE mailhook_hook_runs_total counter\n"
    "# HELP mailhook_hook_seconds Duration of one hook command run in seconds.\n"
    "# TYPE mailhook_hook_seconds histogram\n"
    "# HELP mailhook_http_rejected_total HTTP requests or connections the endpoint refused or dropped.\n"
    "# TYPE mailhook_http_rejected_total counter\n"
    "# HELP mailhook_imap_connected Watched folders whose IMAP session is connected (1) or not (0).\n"
    "# TYPE mailhook_imap_connected gauge\n"
    "# HELP mailhook_imap_connections IMAP connections the account holds.\n"
    "# TYPE mailhook_imap_connections gauge\n"
    "# HELP mailhook_imap_folder_changes_total Folders the server reported created or deleted while the account was "
    "watched.\n"
    "# TYPE mailhook_imap_folder_changes_total counter\n"
    "# HELP mailhook_imap_folder_polled Watched folders checked by STATUS polling (1) rather than IDLE or NOTIFY (0): "
    "beyond the account's max_connections without NOTIFY.\n"
    "# TYPE mailhook_imap_folder_polled gauge\n"
    "# HELP mailhook_imap_reconnects_total IMAP sessions thrown away and reconnected.\n"
    "# TYPE mailhook_imap_reconnects_total counter\n"
    "# HELP mailhook_message_failures_total Failed extraction attempts of single messages (each is retried until "
    "max_attempts).\n"
    "# TYPE mailhook_message_failures_total counter\n"
    "# HELP mailhook_messages_total Messages turned into events and stored durably.\n"
    "# TYPE mailhook_messages_total counter\n"
    "# HELP mailhook_messages_unprocessable_total Messages that failed extraction limits.max_attempts times and were "
    "sent as message.unprocessable.\n"
    "# TYPE mailhook_messages_unprocessable_total counter\n"
    "# HELP mailhook_outbox_pending Deliveries stored in the outbox and not yet done.\n"
    "# TYPE mailhook_outbox_pending gauge\n"
    "# HELP mailhook_smtp_seconds Duration of one smtp target attempt in seconds.\n"
    "# TYPE mailhook_smtp_seconds histogram\n"
    "# HELP mailhook_smtp_sends_total Mail sending attempts of smtp targets by target name and outcome (success, "
    "retry, dead).\n"
    "# TYPE mailhook_smtp_sends_total counter\n"
    "# HELP mailhook_smtp_skipped_total Replies an smtp target did not send because a loop-protection rule (RFC "
    "3834) fired, by rule.\n"
    "# TYPE mailhook_smtp_skipped_total counter\n"
    "# HELP mailhook_watcher_crashes_total Folder watcher sessions ended by an unexpected exception (the watcher "
    "starts a new one).\n"
    "# TYPE mailhook_watcher_crashes_total counter\n";

TEST(MetricsCatalogTest, FreshCatalogRendersEveryFamilyOnceAsBefore) {
  MetricsCatalog catalog;
  EXPECT_EQ(catalog.Render(), kFreshExposition);
  // Every declared family once, with HELP and TYPE: a typo'd second family
  // would show as an extra name here.
  std::string text = catalog.Render();
  for (const std::string& name : catalog.registry().FamilyNames()) {
    const std::string type = "# TYPE " + name + " ";
    const std::string help = "# HELP " + name + " ";
    EXPECT_EQ(text.find(type), text.rfind(type)) << name;
    EXPECT_NE(text.find(type), std::string::npos) << name;
    EXPECT_NE(text.find(help), std::string::npos) << name;
  }
  EXPECT_EQ(catalog.registry().FamilyNames().size(), 26u);
}

// A replica's lease counts live in its LeaseKeeper: the collector copies them
// in at each Render, so /metrics shows them as of the request.
TEST(MetricsCatalogTest, CollectorRunsBeforeEachRender) {
  MetricsCatalog catalog;
  int renewals = 0;
  catalog.SetCollector([&] {
    renewals += 2;
    catalog.cluster_lease_renewals.Inc(renewals - catalog.cluster_lease_renewals.Value());
    catalog.cluster_accounts_owned.Set(10);
  });
  EXPECT_NE(catalog.Render().find("mailhook_cluster_lease_renewals_total 2\n"), std::string::npos);
  std::string text = catalog.Render();
  EXPECT_NE(text.find("mailhook_cluster_lease_renewals_total 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mailhook_cluster_accounts_owned 10\n"), std::string::npos) << text;
}

// The contract's metrics with their labels, as handles produce them.
TEST(MetricsCatalogTest, HandlesRenderTheContractSeriesAsBefore) {
  MetricsCatalog catalog;
  TargetMetrics tickets = catalog.ForTarget(TargetId::Webhook("tickets"));
  tickets.success.Inc();
  tickets.seconds.Observe(0.2);
  catalog.ForFolder("support", "INBOX").imap_connected.Set(1);
  catalog.outbox_pending.Set(3);
  catalog.workers_running.Add(-1);
  EXPECT_EQ(
      catalog.Render(),
      "# HELP mailhook_cluster_accounts_owned Accounts whose lease this replica holds (PostgreSQL store).\n"
      "# TYPE mailhook_cluster_accounts_owned gauge\n"
      "# HELP mailhook_cluster_lease_losses_total Account leases this replica lost: ended unrenewed (PostgreSQL "
      "unreachable, a pause past the TTL) or taken over.\n"
      "# TYPE mailhook_cluster_lease_losses_total counter\n"
      "# HELP mailhook_cluster_lease_renewals_total Account leases renewed by this replica (one per lease per round).\n"
      "# TYPE mailhook_cluster_lease_renewals_total counter\n"
      "# HELP mailhook_cluster_store_reachable Whether the lease keeper's last round reached PostgreSQL (1) or not "
      "(0).\n"
      "# TYPE mailhook_cluster_store_reachable gauge\n"
      "# HELP mailhook_config_reloads_total Config reloads (SIGHUP) by outcome: applied, or failed (the running "
      "config kept).\n"
      "# TYPE mailhook_config_reloads_total counter\n"
      "# HELP mailhook_deadletters Deliveries that exhausted their retries or failed permanently.\n"
      "# TYPE mailhook_deadletters gauge\n"
      "# HELP mailhook_deliveries_total Webhook delivery attempts by webhook name and outcome (success, retry, dead).\n"
      "# TYPE mailhook_deliveries_total counter\n"
      "mailhook_deliveries_total{outcome=\"success\",webhook=\"tickets\"} 1\n"
      "# HELP mailhook_delivery_seconds Duration of one webhook delivery attempt in seconds.\n"
      "# TYPE mailhook_delivery_seconds histogram\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"0.005\"} 0\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"0.01\"} 0\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"0.025\"} 0\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"0.05\"} 0\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"0.1\"} 0\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"0.25\"} 1\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"0.5\"} 1\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"1\"} 1\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"2.5\"} 1\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"5\"} 1\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"10\"} 1\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"30\"} 1\n"
      "mailhook_delivery_seconds_bucket{webhook=\"tickets\",le=\"+Inf\"} 1\n"
      "mailhook_delivery_seconds_sum{webhook=\"tickets\"} 0.2\n"
      "mailhook_delivery_seconds_count{webhook=\"tickets\"} 1\n"
      "# HELP mailhook_dispatcher_worker_restarts_total Delivery workers restarted after an unexpected error\n"
      "# TYPE mailhook_dispatcher_worker_restarts_total counter\n"
      "# HELP mailhook_dispatcher_workers_running Delivery workers running their loop\n"
      "# TYPE mailhook_dispatcher_workers_running gauge\n"
      "mailhook_dispatcher_workers_running -1\n"
      "# HELP mailhook_hook_runs_total Hook command runs by hook name and outcome (success, retry, dead).\n"
      "# TYPE mailhook_hook_runs_total counter\n"
      "# HELP mailhook_hook_seconds Duration of one hook command run in seconds.\n"
      "# TYPE mailhook_hook_seconds histogram\n"
      "# HELP mailhook_http_rejected_total HTTP requests or connections the endpoint refused or dropped.\n"
      "# TYPE mailhook_http_rejected_total counter\n"
      "# HELP mailhook_imap_connected Watched folders whose IMAP session is connected (1) or not (0).\n"
      "# TYPE mailhook_imap_connected gauge\n"
      "mailhook_imap_connected{account=\"support\",folder=\"INBOX\"} 1\n"
      "# HELP mailhook_imap_connections IMAP connections the account holds.\n"
      "# TYPE mailhook_imap_connections gauge\n"
      "# HELP mailhook_imap_folder_changes_total Folders the server reported created or deleted while the account was "
      "watched.\n"
      "# TYPE mailhook_imap_folder_changes_total counter\n"
      "# HELP mailhook_imap_folder_polled Watched folders checked by STATUS polling (1) rather than IDLE or NOTIFY "
      "(0): "
      "beyond the account's max_connections without NOTIFY.\n"
      "# TYPE mailhook_imap_folder_polled gauge\n"
      "# HELP mailhook_imap_reconnects_total IMAP sessions thrown away and reconnected.\n"
      "# TYPE mailhook_imap_reconnects_total counter\n"
      "# HELP mailhook_message_failures_total Failed extraction attempts of single messages (each is retried until "
      "max_attempts).\n"
      "# TYPE mailhook_message_failures_total counter\n"
      "# HELP mailhook_messages_total Messages turned into events and stored durably.\n"
      "# TYPE mailhook_messages_total counter\n"
      "# HELP mailhook_messages_unprocessable_total Messages that failed extraction limits.max_attempts times and were "
      "sent as message.unprocessable.\n"
      "# TYPE mailhook_messages_unprocessable_total counter\n"
      "# HELP mailhook_outbox_pending Deliveries stored in the outbox and not yet done.\n"
      "# TYPE mailhook_outbox_pending gauge\n"
      "mailhook_outbox_pending 3\n"
      "# HELP mailhook_smtp_seconds Duration of one smtp target attempt in seconds.\n"
      "# TYPE mailhook_smtp_seconds histogram\n"
      "# HELP mailhook_smtp_sends_total Mail sending attempts of smtp targets by target name and outcome (success, "
      "retry, dead).\n"
      "# TYPE mailhook_smtp_sends_total counter\n"
      "# HELP mailhook_smtp_skipped_total Replies an smtp target did not send because a loop-protection rule (RFC "
      "3834) fired, by rule.\n"
      "# TYPE mailhook_smtp_skipped_total counter\n"
      "# HELP mailhook_watcher_crashes_total Folder watcher sessions ended by an unexpected exception (the watcher "
      "starts a new one).\n"
      "# TYPE mailhook_watcher_crashes_total counter\n");
}

TEST(MetricsCatalogTest, HooksCountUnderTheirOwnFamilies) {
  MetricsCatalog catalog;
  TargetMetrics archive = catalog.ForTarget(TargetId::Hook("archive"));
  archive.retry.Inc();
  archive.dead.Inc();
  archive.seconds.Observe(1);
  std::string text = catalog.Render();
  EXPECT_NE(text.find("mailhook_hook_runs_total{hook=\"archive\",outcome=\"retry\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("mailhook_hook_runs_total{hook=\"archive\",outcome=\"dead\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("mailhook_hook_seconds_count{hook=\"archive\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("mailhook_deliveries_total{"), std::string::npos);
  EXPECT_EQ(catalog.ForTarget(TargetId::Webhook("archive")).retry.Value(), 0);
}

TEST(MetricsCatalogTest, SmtpTargetsCountUnderTheirOwnFamilies) {
  MetricsCatalog catalog;
  TargetMetrics ack = catalog.ForTarget(TargetId::Smtp("ack"));
  ack.success.Inc();
  ack.seconds.Observe(1);
  std::string text = catalog.Render();
  EXPECT_NE(text.find("mailhook_smtp_sends_total{outcome=\"success\",smtp=\"ack\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mailhook_smtp_seconds_count{smtp=\"ack\"} 1\n"), std::string::npos);
  EXPECT_EQ(text.find("mailhook_deliveries_total{"), std::string::npos);
}

TEST(MetricsCatalogTest, SmtpSkipsAreCountedBySmtpTargetAndRule) {
  MetricsCatalog catalog;
  catalog.SmtpSkipped("ack", "rate_limited").Inc();
  catalog.SmtpSkipped("ack", "rate_limited").Inc();
  catalog.SmtpSkipped("ack", "auto_submitted").Inc();
  std::string text = catalog.Render();
  EXPECT_NE(text.find("mailhook_smtp_skipped_total{rule=\"rate_limited\",smtp=\"ack\"} 2\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("mailhook_smtp_skipped_total{rule=\"auto_submitted\",smtp=\"ack\"} 1\n"), std::string::npos);
}

TEST(MetricsCatalogTest, TwoCatalogsDoNotShareValues) {
  MetricsCatalog a;
  MetricsCatalog b;
  a.ForFolder("support", "INBOX").messages.Inc();
  EXPECT_EQ(a.ForFolder("support", "INBOX").messages.Value(), 1);
  EXPECT_EQ(b.ForFolder("support", "INBOX").messages.Value(), 0);
}

}  // namespace
}  // namespace mailhook::util
