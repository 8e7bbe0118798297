#!/usr/bin/env node
// Verify a mailhook webhook signature (Standard Webhooks), Node standard library only.
//
// Usage: WEBHOOK_SECRET=whsec_... WEBHOOK_ID=... WEBHOOK_TIMESTAMP=... \
//        WEBHOOK_SIGNATURE=... node verify.js < body.json
// The body on stdin must be the exact bytes received (in Express: express.raw()).
// Exit 0: valid; 1: invalid; 2: usage. In a receiver, call verify() with the
// request's headers and raw body (a Buffer).
'use strict';
const crypto = require('crypto');

const TOLERANCE_SECONDS = 5 * 60; // Standard Webhooks: reject timestamps further than 5 minutes away

function verify(secret, id, timestamp, signatureHeader, body, nowSeconds = Date.now() / 1000) {
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  if (key.length === 0) return false;
  const expected = crypto.createHmac('sha256', key)
      .update(Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]))
      .digest();
  // Several space-separated "v1,<base64>" while the sender rotates secrets.
  for (const candidate of signatureHeader.split(' ')) {
    const [version, sig] = candidate.split(',', 2);
    if (version !== 'v1' || !sig) continue;
    const given = Buffer.from(sig, 'base64');
    if (given.length === expected.length && crypto.timingSafeEqual(given, expected)) return true;
  }
  return false;
}

function main() {
  const names = ['WEBHOOK_SECRET', 'WEBHOOK_ID', 'WEBHOOK_TIMESTAMP', 'WEBHOOK_SIGNATURE'];
  const missing = names.filter((n) => process.env[n] === undefined);
  if (missing.length > 0) {
    console.error(`usage: set ${missing.join(', ')} (see the comment at the top)`);
    process.exit(2);
  }
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const env = process.env;
    if (verify(env.WEBHOOK_SECRET, env.WEBHOOK_ID, env.WEBHOOK_TIMESTAMP, env.WEBHOOK_SIGNATURE, Buffer.concat(chunks))) {
      console.log(`verified ${env.WEBHOOK_ID}`);
      process.exit(0);
    }
    console.error('invalid signature or timestamp');
    process.exit(1);
  });
}

module.exports = {verify};
if (require.main === module) main();
