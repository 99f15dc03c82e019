// Signs and verifies webhooks with the standardwebhooks npm package, so that the Go tests of
// hookd's signature package can check their output against an independent implementation.
//
// Usage: node oracle.mjs sign|verify < cases.json
//
// Standard input is a JSON array of cases and standard output a JSON array of results in the
// same order. Bodies are JSON strings, because the package converts a Buffer body to a
// UTF-8 string before it signs, so only valid UTF-8 bodies survive the round trip.
//
//   sign:   {"secret": "whsec_...", "msgId": "msg_1", "timestamp": 1700000000, "body": "{}"}
//           -> {"signature": "v1,..."} or {"error": "Secret can't be empty."}
//   verify: {"secret": "whsec_...", "headers": {"webhook-id": "..."}, "body": "{}"}
//           -> {"ok": true} or {"ok": false, "error": "No matching signature found"}
//
// verify checks the timestamp against this machine's clock with the package's fixed
// tolerance of 5 minutes. The exit status is 0 when every case ran, even if some failed to
// verify, and 2 for invalid usage or input.
import { readFileSync } from "node:fs";
import { Webhook } from "standardwebhooks";

function usage(message) {
  process.stderr.write(`oracle.mjs: ${message}\nusage: node oracle.mjs sign|verify < cases.json\n`);
  process.exit(2);
}

function sign(testCase) {
  try {
    const webhook = new Webhook(testCase.secret);
    return { signature: webhook.sign(testCase.msgId, new Date(testCase.timestamp * 1000), testCase.body) };
  } catch (err) {
    return { error: String(err.message) };
  }
}

function verify(testCase) {
  try {
    const webhook = new Webhook(testCase.secret);
    webhook.verify(testCase.body, testCase.headers, { jsonParse: false });
    return { ok: true };
  } catch (err) {
    return { ok: false, error: String(err.message) };
  }
}

const mode = process.argv[2];
const run = { sign, verify }[mode];
if (process.argv.length !== 3 || run === undefined) {
  usage(`expected one argument, sign or verify, got ${JSON.stringify(process.argv.slice(2))}`);
}

let cases;
try {
  cases = JSON.parse(readFileSync(0, "utf8"));
} catch (err) {
  usage(`standard input is not JSON: ${err.message}`);
}
if (!Array.isArray(cases)) {
  usage("standard input must be a JSON array of cases");
}

process.stdout.write(`${JSON.stringify(cases.map(run))}\n`);
