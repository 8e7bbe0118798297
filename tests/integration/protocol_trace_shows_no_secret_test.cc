// log.level: trace logs the IMAP conversation (every command and response
// line, per connection), each webhook request line with its status and each
// hook's start and exit, and no secret of the config in any form: the IMAP
// passwords (LOGIN and AUTHENTICATE PLAIN), the webhook secret, a bearer
// token from the environment, a header value from a secret file, a hook's
// env secret and the signatures sent, raw and in base64.

#include <sys/stat.h>

#include <fstream>

#include "pipeline_fixture.h"
#include "util/base64.h"

namespace mailhook::testsupport {
namespace {

class ProtocolTraceTest : public PipelineTest {};

TEST_F(ProtocolTraceTest, TraceShowsTheProtocolAndNoSecret) {
  const std::string alice_password = dovecot_.password("alice");
  const std::string bob_password = dovecot_.password("bob");
  const std::string bearer = "bearer-Trace-7c1e5a90d2";
  const std::string api_key = "apikey-from-file-55e0b1";
  const std::string ticket_token = "ticket-token-from-file-3f9a";
  const std::string dir = daemon_.dir();
  std::ofstream(dir + "/api_key") << api_key << "\n";
  std::ofstream(dir + "/ticket_token") << ticket_token << "\n";
  daemon_.SetEnv("TICKETS_TOKEN", bearer);

  ConfigSpec cfg;
  cfg.state_dir = daemon_.state_dir();
  cfg.log_level = "trace";
  // Both ways a password goes over the wire: LOGIN and AUTHENTICATE PLAIN.
  AccountSpec via_login;
  via_login.name = "via-login";
  AccountSpec via_plain;
  via_plain.name = "via-plain";
  via_plain.user = "bob";
  via_plain.extra = "auth: plain";
  cfg.accounts.push_back(AccountYaml(dovecot_, via_login));
  cfg.accounts.push_back(AccountYaml(dovecot_, via_plain));
  cfg.webhooks.push_back(WebhookYaml({"tickets", receiver_.url(), kTestWebhookSecret,
                                      "headers: {Authorization: \"Bearer ${TICKETS_TOKEN}\", X-Api-Key: {value_file: " +
                                          Quote(dir + "/api_key") + "}}"}));
  cfg.hooks.push_back(
      "{name: archive, command: [\"/bin/sh\", \"-c\", \"cat > /dev/null\"], env: {TICKET_TOKEN: {file: " +
      Quote(dir + "/ticket_token") + "}}}");
  MH_ASSERT_OK(daemon_.WriteConfig(RenderConfig(cfg)));
  MH_ASSERT_OK(daemon_.Start());
  WaitIdle(2);

  ImapClient imap(dovecot_);
  MH_ASSERT_OK(imap.Append("alice", "INBOX", SampleMessage("plain_utf8.eml")));
  MH_ASSERT_OK(imap.Append("bob", "INBOX", SampleMessage("plain_utf8.eml")));
  ASSERT_TRUE(receiver_.WaitFor(2, seconds(30))) << daemon_.Log();
  // Each target delivers both messages; its trace lines come before its
  // delivery.ok.
  for (const std::string done : {"delivery.ok hook=archive", "delivery.ok webhook=tickets"}) {
    ASSERT_TRUE(daemon_.WaitForLog(done, seconds(30))) << done << "\n" << daemon_.Log();
    const size_t first = daemon_.Log().find(done);
    ASSERT_TRUE(daemon_.WaitForLog(done, seconds(30), first + 1)) << done << "\n" << daemon_.Log();
  }
  ASSERT_TRUE(daemon_.Terminate().ok());
  const std::string log = daemon_.Log();

  // The trace is there: the IMAP conversation per connection, the webhook
  // requests with their status, the hook runs.
  for (const std::string& line :
       {std::string("imap.sent account=via-login conn="), std::string("imap.sent account=via-plain conn="),
        std::string("LOGIN <redacted>\""), std::string("AUTHENTICATE PLAIN\""), std::string("<redacted: "),
        std::string("SELECT INBOX\""), std::string("folder=INBOX line=\""), std::string("UID FETCH"),
        std::string("imap.received account=via-login"), std::string(" bytes})"),
        std::string("http.request target=tickets method=POST url=" + receiver_.url()), std::string("status=200"),
        std::string("Authorization: <redacted>"), std::string("X-Api-Key: <redacted>"),
        std::string("webhook-signature: <redacted>"), std::string("hook.start hook=archive program=/bin/sh"),
        std::string("hook.exit hook=archive exit=0")}) {
    EXPECT_NE(log.find(line), std::string::npos) << "missing: " << line << "\n" << log;
  }
  EXPECT_NE(log.find(" FETCH ("), std::string::npos) << log;

  // No secret in any form.
  std::vector<std::string> secrets = {
      alice_password,     bob_password, kTestWebhookSecret, std::string(kTestWebhookSecret).substr(6), bearer,
      "Bearer " + bearer, api_key,      ticket_token};
  secrets.push_back(util::Base64Encode(std::string("\0bob\0", 5) + bob_password));
  secrets.push_back(util::Base64Encode(std::string("bob\0bob\0", 8) + bob_password));
  const size_t raw_count = secrets.size();
  for (size_t i = 0; i < raw_count; ++i) secrets.push_back(util::Base64Encode(secrets[i]));
  for (const auto& request : receiver_.Requests()) {
    const std::string signature = request.Header("webhook-signature");
    ASSERT_FALSE(signature.empty());
    secrets.push_back(signature);
    secrets.push_back(signature.substr(signature.find(',') + 1));
  }
  for (const std::string& secret : secrets) {
    ASSERT_GE(secret.size(), 6u);
    EXPECT_EQ(log.find(secret), std::string::npos) << "the log shows a secret: " << secret;
  }
}

}  // namespace
}  // namespace mailhook::testsupport
