#!/usr/bin/env node
// bench/peer/peer.js — the IMAP-to-webhook watcher users run today, for bench/ to
// measure against mailhook with the same Dovecot, receiver and appender.
//
//   node bench/peer/peer.js CONFIG.json
//
// CONFIG: { "url": "http://127.0.0.1:PORT/events", "secret": "whsec_…",
//           "accounts": [ { "name", "host", "port", "ca_file", "username", "password",
//                           "folders": ["INBOX", …] } ] }
//
// What such scripts do, and so what this does: one imapflow connection per folder
// (implicit TLS), the folder opened and IDLEd on; on `exists`, every message above the
// last UID seen is fetched whole (source), parsed with mailparser's simpleParser, turned
// into a JSON event and POSTed (Standard Webhooks signature, so the receiver checks both
// watchers alike); the next message waits for the previous POST. Starts from the
// messages that arrive after start-up (mailhook's `start_from: new`).
//
// stdout gets one line `peer.ready connections=N ms=T` once every folder is open and
// IDLE was sent; errors go to stderr. SIGTERM closes the connections and exits.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { ImapFlow } = require('imapflow');
const { simpleParser } = require('mailparser');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const key = Buffer.from(config.secret.split('_')[1], 'base64');
const clients = [];

// Standard Webhooks: HMAC-SHA256 over "id.timestamp.body", base64.
async function post(event) {
  const body = JSON.stringify(event);
  const ts = Math.floor(Date.now() / 1000).toString();
  const sig = crypto.createHmac('sha256', key).update(`${event.id}.${ts}.${body}`).digest('base64');
  const res = await fetch(config.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': event.id,
      'webhook-timestamp': ts,
      'webhook-signature': `v1,${sig}`,
    },
    body,
  });
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`webhook answered ${res.status}`);
}

function addresses(a) {
  return a ? a.value.map((v) => ({ name: v.name, address: v.address })) : [];
}

function toEvent(account, folder, uid, parsed) {
  return {
    id: `msg_${crypto.randomUUID()}`,
    type: 'message.received',
    account,
    folder,
    uid,
    message: {
      message_id: parsed.messageId || null,
      subject: parsed.subject || '',
      date: parsed.date ? parsed.date.toISOString() : null,
      from: addresses(parsed.from),
      to: addresses(parsed.to),
      cc: addresses(parsed.cc),
      text: parsed.text || null,
      html: parsed.html || null,
      attachments: (parsed.attachments || []).map((a) => ({
        filename: a.filename || null,
        content_type: a.contentType,
        size: a.size,
        sha256: crypto.createHash('sha256').update(a.content).digest('hex'),
      })),
    },
  };
}

// Connects and opens the folder; at start-up, with hundreds of TLS handshakes at once on a
// busy machine, a try can time out: such scripts try again, and so does this (5 tries).
async function open(account, folder) {
  for (let attempt = 1; ; attempt++) {
    const client = new ImapFlow({
      host: account.host,
      port: account.port,
      secure: true,
      tls: { ca: fs.readFileSync(account.ca_file) },
      auth: { user: account.username, pass: account.password },
      logger: false,
      connectionTimeout: 60000,
      greetingTimeout: 60000,
    });
    client.on('error', (err) => console.error(`peer.error account=${account.name} folder=${folder} ${err.message}`));
    try {
      await client.connect();
      const box = await client.mailboxOpen(folder);
      clients.push(client);
      return { client, box };
    } catch (err) {
      client.close();
      if (attempt >= 5) throw err;
      console.error(`peer.retry account=${account.name} folder=${folder} attempt=${attempt} ${err.message}`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

async function watch(account, folder) {
  const { client, box } = await open(account, folder);
  let lastUid = Number(box.uidNext) - 1;
  let running = false;
  let pending = false;

  // A pass fetches everything above lastUid; an `exists` during a pass asks for another.
  async function drain() {
    if (running) {
      pending = true;
      return;
    }
    running = true;
    try {
      do {
        pending = false;
        const got = [];
        for await (const msg of client.fetch(`${lastUid + 1}:*`, { uid: true, source: true }, { uid: true })) {
          if (msg.uid > lastUid) got.push(msg);
        }
        for (const msg of got) {
          const parsed = await simpleParser(msg.source);
          await post(toEvent(account.name, folder, msg.uid, parsed));
          lastUid = Math.max(lastUid, msg.uid);
        }
      } while (pending);
    } catch (err) {
      console.error(`peer.error account=${account.name} folder=${folder} ${err.message}`);
    } finally {
      running = false;
      client.idle().catch(() => {});
    }
  }

  client.on('exists', () => {
    drain();
  });
  // imapflow starts IDLE on its own only after 15 s without commands; watchers call it.
  client.idle().catch(() => {});
}

async function main() {
  const t0 = Date.now();
  const jobs = [];
  for (const account of config.accounts) {
    for (const folder of account.folders) jobs.push(watch(account, folder));
  }
  await Promise.all(jobs);
  console.log(`peer.ready connections=${clients.length} ms=${Date.now() - t0}`);
}

process.on('SIGTERM', () => {
  for (const c of clients) c.close();
  process.exit(0);
});

main().catch((err) => {
  console.error(`peer.fatal ${err.stack || err.message}`);
  process.exit(1);
});
