// Conformance check: drives a running hookd server with Codat's published
// TypeScript SDK (@codat/platform 6.2.1) exactly as a Codat customer would,
// with only serverURL pointed at hookd.
//
// It checks create, list and delete of webhook consumers, and that error
// responses 400, 401, 402, 403, 404 and 429 reach the caller as the SDK's
// ErrorMessage class with string correlationId and canBeRetried fields.
//
// Run: npm ci && node conformance.mjs, with these environment variables:
//   HOOKD_URL               base URL of a hookd server
//   HOOKD_RATE_LIMITED_URL  base URL of a hookd server on the same store whose
//                           rate limit rejects the second request in a row
//   HOOKD_KEY               raw read-write API key of a client
//   HOOKD_READONLY_KEY      raw read-only API key of the same client
//   HOOKD_SUSPENDED_KEY     raw API key of a suspended client
// Each check prints "PASS name" or "FAIL name: details". The exit status is
// 0 when every check passed, 1 when any failed and 2 when the setup is invalid.

import { randomUUID } from "node:crypto";
import { CodatPlatform } from "@codat/platform";
// The package has no "exports" map, so Node's ESM loader needs the full file
// path here. The README's "@codat/platform/sdk/models/errors" only resolves
// under TypeScript or a bundler.
import {
  CodatPlatformError,
  ErrorMessage,
  ResponseValidationError,
  SDKError,
} from "@codat/platform/sdk/models/errors/index.js";

const REQUIRED_ENV = [
  "HOOKD_URL",
  "HOOKD_RATE_LIMITED_URL",
  "HOOKD_KEY",
  "HOOKD_READONLY_KEY",
  "HOOKD_SUSPENDED_KEY",
];

const CONSUMER_URL = "https://example.com/webhook-consumer";
const EVENT_TYPES = ["DataSyncCompleted", "Dataset data changed"];
const UUID_PATTERN =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_RATE_LIMIT_ATTEMPTS = 20;
const REQUEST_TIMEOUT_MS = 10_000;

// Setup

const missing = REQUIRED_ENV.filter((name) => !process.env[name]);
if (missing.length > 0) {
  console.error(
    `missing environment variable(s): ${missing.join(", ")}; ` +
      `set all of ${REQUIRED_ENV.join(", ")}`,
  );
  process.exit(2);
}
for (const name of ["HOOKD_URL", "HOOKD_RATE_LIMITED_URL"]) {
  if (!URL.canParse(process.env[name])) {
    console.error(`invalid ${name} ${JSON.stringify(process.env[name])}: ` +
      "expected an absolute URL such as http://127.0.0.1:8080");
    process.exit(2);
  }
}

// Builds an SDK client the way Codat's README shows, with retries disabled so
// that every error status reaches the caller on the first response.
function newClient(serverURL, rawKey) {
  return new CodatPlatform({
    serverURL,
    authHeader: "Basic " + Buffer.from(rawKey, "utf8").toString("base64"),
    retryConfig: { strategy: "none" },
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
}

const baseURL = process.env.HOOKD_URL;
const client = newClient(baseURL, process.env.HOOKD_KEY);
const readOnlyClient = newClient(baseURL, process.env.HOOKD_READONLY_KEY);
const suspendedClient = newClient(baseURL, process.env.HOOKD_SUSPENDED_KEY);
const bogusClient = newClient(
  baseURL,
  "hk_0000000000000000_" + "0".repeat(64),
);
const rateLimitedClient = newClient(
  process.env.HOOKD_RATE_LIMITED_URL,
  process.env.HOOKD_KEY,
);

// Reporting

let passed = 0;
let failed = 0;

function pass(name) {
  passed++;
  console.log(`PASS ${name}`);
}

// Prints details on a single line, because SDK error messages can span
// several lines.
function fail(name, details) {
  failed++;
  console.log(`FAIL ${name}: ${details.replace(/\s*\n\s*/g, " ")}`);
}

// Describes a thrown value by class, HTTP status, content type and body, so
// that a failure shows which SDK error path the server's response took.
function describeError(err) {
  if (!(err instanceof Error)) {
    return `non-Error value thrown: ${String(err)}`;
  }
  // SDKError messages already contain the status, content type and body.
  if (!(err instanceof CodatPlatformError) || err instanceof SDKError) {
    return `${err.constructor.name}: ${err.message}`;
  }
  let text = `${err.constructor.name} with status ${err.statusCode}`;
  if (err instanceof ResponseValidationError) {
    text += `: ${err.pretty()}`;
  }
  return `${text} [content-type ${JSON.stringify(err.contentType)}, ` +
    `body ${truncate(err.body)}]`;
}

function truncate(text, max = 300) {
  return text.length > max ? text.slice(0, max) + "..." : text;
}

// Returns a list of problems with a consumer object parsed by the SDK, or an
// empty list when every field has its documented type.
function consumerTypeProblems(consumer) {
  const problems = [];
  if (typeof consumer.id !== "string" || !UUID_PATTERN.test(consumer.id)) {
    problems.push(`id ${JSON.stringify(consumer.id)} is not a uuid string`);
  }
  if (typeof consumer.url !== "string") {
    problems.push(`url ${JSON.stringify(consumer.url)} is not a string`);
  }
  if (
    !Array.isArray(consumer.eventTypes) ||
    !consumer.eventTypes.every((t) => typeof t === "string")
  ) {
    problems.push(
      `eventTypes ${JSON.stringify(consumer.eventTypes)} is not a string array`,
    );
  }
  if (typeof consumer.disabled !== "boolean") {
    problems.push(
      `disabled ${JSON.stringify(consumer.disabled)} is not a boolean`,
    );
  }
  // Codat's schema marks every field optional, so the SDK accepts a missing
  // companyTags as well as null or an array.
  const tags = consumer.companyTags;
  if (
    tags != null &&
    !(Array.isArray(tags) && tags.every((t) => typeof t === "string"))
  ) {
    problems.push(`companyTags ${JSON.stringify(tags)} is not null or a string array`);
  }
  return problems;
}

// Runs call and checks that it rejects with an ErrorMessage of HTTP status
// status. Returns that error so a check can inspect more fields, or null after
// reporting a failure. The caller reports the pass.
async function expectErrorMessage(name, status, call) {
  let result;
  try {
    result = await call();
  } catch (err) {
    if (!(err instanceof ErrorMessage)) {
      fail(name, `expected ErrorMessage with status ${status}, got ${describeError(err)}`);
      return null;
    }
    if (err.statusCode !== status) {
      fail(name, `expected status ${status}, got ${describeError(err)}`);
      return null;
    }
    return err;
  }
  fail(name, `expected ErrorMessage with status ${status}, but the call ` +
    `resolved with ${truncate(JSON.stringify(result) ?? "undefined")}`);
  return null;
}

// Checks that a 400 ErrorMessage lists a validation error whose itemId
// names field.
function checkValidationNames(name, err, field) {
  const items = err.validation?.errors ?? [];
  const named = items.some((item) =>
    typeof item.itemId === "string" && item.itemId.includes(field)
  );
  if (named) {
    pass(name);
  } else {
    fail(name, `no validation.errors item has an itemId naming "${field}": ` +
      JSON.stringify(err.validation));
  }
}

// An operation that throws instead of returning an error result, such as
// JSON.parse on a non-JSON body labelled application/json, rejects the
// caller's promise and also a second internal promise of the SDK's APIPromise
// that nothing awaits. Node ends the process on that second rejection unless
// it is handled here.
process.on("unhandledRejection", (reason) => {
  fail("unhandled rejection in SDK", describeError(reason));
});

// Checks

// Create
let createdId = null;
try {
  const created = await client.webhooks.createConsumer({
    url: CONSUMER_URL,
    eventTypes: EVENT_TYPES,
  });
  const problems = consumerTypeProblems(created);
  if (created.url !== CONSUMER_URL) {
    problems.push(`url is ${JSON.stringify(created.url)}, expected ${CONSUMER_URL}`);
  }
  if (JSON.stringify(created.eventTypes) !== JSON.stringify(EVENT_TYPES)) {
    problems.push(`eventTypes is ${JSON.stringify(created.eventTypes)}, ` +
      `expected ${JSON.stringify(EVENT_TYPES)}`);
  }
  if (created.disabled !== false) {
    problems.push(`disabled is ${JSON.stringify(created.disabled)}, expected false`);
  }
  if (typeof created.id === "string" && created.id !== "") {
    createdId = created.id;
  }
  if (problems.length === 0) {
    pass("create");
  } else {
    fail("create", problems.join("; "));
  }
} catch (err) {
  fail("create", describeError(err));
}

// List
try {
  const list = await client.webhooks.listConsumers();
  const problems = [];
  if (!Array.isArray(list.results)) {
    problems.push(`results is ${JSON.stringify(list.results)}, expected an array`);
  } else {
    for (const consumer of list.results) {
      for (const problem of consumerTypeProblems(consumer)) {
        problems.push(`consumer ${JSON.stringify(consumer.id)}: ${problem}`);
      }
    }
    if (createdId === null) {
      problems.push("no created consumer to look for because create failed");
    } else if (!list.results.some((c) => c.id === createdId)) {
      problems.push(`results do not contain the created id ${createdId}`);
    }
  }
  if (problems.length === 0) {
    pass("list");
  } else {
    fail("list", problems.join("; "));
  }
} catch (err) {
  fail("list", describeError(err));
}

// 403 for a read-only key. This runs before the delete check so that the
// read-only delete targets a consumer that exists.
if (await expectErrorMessage("403 read-only create", 403, () =>
  readOnlyClient.webhooks.createConsumer({
    url: CONSUMER_URL,
    eventTypes: EVENT_TYPES,
  })
)) {
  pass("403 read-only create");
}
if (await expectErrorMessage("403 read-only delete", 403, () =>
  readOnlyClient.webhooks.deleteConsumer({
    webhookId: createdId ?? randomUUID(),
  })
)) {
  pass("403 read-only delete");
}

// Delete, then list again
if (createdId === null) {
  fail("delete", "no consumer to delete because create failed");
  fail("list after delete", "no consumer to delete because create failed");
} else {
  let deleted = false;
  try {
    await client.webhooks.deleteConsumer({ webhookId: createdId });
    deleted = true;
    pass("delete");
  } catch (err) {
    fail("delete", describeError(err));
  }
  if (deleted) {
    try {
      const list = await client.webhooks.listConsumers();
      if (!Array.isArray(list.results)) {
        fail("list after delete", `results is ${JSON.stringify(list.results)}, expected an array`);
      } else if (list.results.some((c) => c.id === createdId)) {
        fail("list after delete", `results still contain the deleted id ${createdId}`);
      } else {
        pass("list after delete");
      }
    } catch (err) {
      fail("list after delete", describeError(err));
    }
  } else {
    fail("list after delete", "skipped because delete failed");
  }
}

// 400 validation errors. @codat/platform 6.2.1 only checks that url and each
// event type are strings, so these bodies reach the server.
const badInputs = [
  {
    name: "400 invalid url",
    field: "url",
    input: { url: "ftp://example.com/x", eventTypes: EVENT_TYPES },
  },
  {
    name: "400 empty event type",
    field: "eventTypes",
    input: { url: CONSUMER_URL, eventTypes: [""] },
  },
];
for (const { name, field, input } of badInputs) {
  let accepted = null;
  const err = await expectErrorMessage(name, 400, async () => {
    accepted = await client.webhooks.createConsumer(input);
    return accepted;
  });
  if (err) {
    checkValidationNames(name, err, field);
  }
  // Remove a consumer that the server should have rejected, so reruns against
  // the same store start clean.
  if (accepted?.id) {
    await client.webhooks.deleteConsumer({ webhookId: accepted.id })
      .catch(() => {});
  }
}

// 401 for an unknown key, and the types of that error's fields
const unauthorized = await expectErrorMessage("401 unknown key", 401, () =>
  bogusClient.webhooks.listConsumers()
);
if (unauthorized) {
  pass("401 unknown key");
  const problems = [];
  if (typeof unauthorized.correlationId !== "string") {
    problems.push(`correlationId is ${JSON.stringify(unauthorized.correlationId)}`);
  }
  if (typeof unauthorized.canBeRetried !== "string") {
    problems.push(`canBeRetried is ${JSON.stringify(unauthorized.canBeRetried)}`);
  }
  if (problems.length === 0) {
    pass("401 error field types");
  } else {
    fail("401 error field types", `expected strings: ${problems.join("; ")}`);
  }
} else {
  fail("401 error field types", "no ErrorMessage with status 401 to inspect");
}

// 402 for a suspended client
if (await expectErrorMessage("402 suspended client", 402, () =>
  suspendedClient.webhooks.listConsumers()
)) {
  pass("402 suspended client");
}

// 404 on delete
if (await expectErrorMessage("404 unknown id", 404, () =>
  client.webhooks.deleteConsumer({ webhookId: randomUUID() })
)) {
  pass("404 unknown id");
}
if (await expectErrorMessage("404 malformed id", 404, () =>
  client.webhooks.deleteConsumer({ webhookId: "not-a-uuid" })
)) {
  pass("404 malformed id");
}

// 429 from the rate-limited server, which must also send Retry-After because
// the SDK's retry loop waits that many seconds when retries are on.
{
  const name = "429 rate limit";
  let rejection = null;
  let attempts = 0;
  while (rejection === null && attempts < MAX_RATE_LIMIT_ATTEMPTS) {
    attempts++;
    try {
      await rateLimitedClient.webhooks.listConsumers();
    } catch (err) {
      rejection = err;
    }
  }
  if (rejection === null) {
    fail(name, `all ${attempts} list calls succeeded, expected a 429`);
  } else if (!(rejection instanceof ErrorMessage)) {
    fail(name, `call ${attempts}: expected ErrorMessage with status 429, ` +
      `got ${describeError(rejection)}`);
  } else if (rejection.statusCode !== 429) {
    fail(name, `call ${attempts}: expected status 429, got ${describeError(rejection)}`);
  } else if (!rejection.headers.get("retry-after")) {
    fail(name, "the 429 response has no Retry-After header");
  } else {
    pass(name);
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
