#!/usr/bin/env node
// verify.js — checks one recorded webhook request with the `standardwebhooks`
// npm package (the reference JavaScript implementation of the Standard
// Webhooks spec), so mailhook's signing is verified by code it does not share.
//
// Input (stdin, one JSON object):
//   { "secret": "whsec_…",
//     "headers": { "webhook-id": "…", "webhook-timestamp": "…", "webhook-signature": "…" },
//     "body_base64": "<the exact request body bytes, base64>" }
// Output: "verified <webhook-id>" on stdout and exit 0; the library's error on
// stderr and exit 1 when verification fails; exit 2 on unusable input or when
// the package is not installed (run `npm ci` in this folder, or scripts/deps).
"use strict";

let Webhook;
try {
  ({ Webhook } = require("standardwebhooks"));
} catch (e) {
  console.error(`verify.js: cannot load standardwebhooks (${e.message}); run "npm ci --no-audit --no-fund" in ${__dirname}`);
  process.exit(2);
}

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  let input;
  try {
    input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    console.error(`verify.js: stdin is not JSON: ${e.message}`);
    process.exit(2);
  }
  const { secret, headers, body_base64: bodyBase64 } = input;
  if (typeof secret !== "string" || typeof headers !== "object" || typeof bodyBase64 !== "string") {
    console.error("verify.js: expected {secret, headers, body_base64}");
    process.exit(2);
  }
  // A Buffer keeps the exact bytes the receiver got; the library signs its
  // UTF-8 string form, as a receiver in Node would.
  const body = Buffer.from(bodyBase64, "base64");
  try {
    new Webhook(secret).verify(body, headers);
  } catch (e) {
    console.error(`verify.js: ${e.name}: ${e.message}`);
    process.exit(1);
  }
  console.log(`verified ${headers["webhook-id"]}`);
});
