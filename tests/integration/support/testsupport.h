#pragma once
/// Everything the integration tests need, in one include:
///   DovecotServer     a private real Dovecot on loopback (dovecot_server.h)
///   CyrusServer       a private real Cyrus IMAP 3.6 on loopback (cyrus_server.h)
///   CourierServer     a private real Courier-IMAP 5.0 on loopback, root only (courier_server.h)
///   ImapClient        the test side's own IMAP client (imap_client.h)
///   PostfixServer     a private real Postfix 3.7 on loopback, submission + LMTP into Dovecot, root only
///   (postfix_server.h) SmtpPolicyServer  Postfix policy delegation: 451-then-250 or 550 on demand
///   (smtp_policy_server.h) WebhookReceiver   a recording, scriptable HTTP receiver (webhook_receiver.h)
///   MailhookProcess   the real daemon as a child (mailhook_process.h)
///   RenderConfig…     YAML config builders (config_yaml.h)
///   SampleMessage     sample .eml files; MessageWithSubject a small one (samples.h)
///   MH_ASSERT_OK…     Result/Status assertions (status_assert.h)
///   WaitUntil         poll a condition until it holds or a timeout (wait_until.h)

#include "child_process.h"
#include "config_yaml.h"
#include "courier_server.h"
#include "cyrus_server.h"
#include "dovecot_server.h"
#include "imap_client.h"
#include "mailhook_process.h"
#include "postfix_server.h"
#include "samples.h"
#include "status_assert.h"
#include "temp_dir.h"
#include "wait_until.h"
#include "webhook_receiver.h"
