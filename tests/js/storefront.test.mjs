// Unit tests for static/storefront.js with Node's built-in runner (node --test), no npm dependencies.
// The script runs in a vm context whose window, document, fetch and sessionStorage are test doubles.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import vm from "node:vm";

const SOURCE = readFileSync(new URL("../../static/storefront.js", import.meta.url), "utf8");
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const jwtFor = (customer) => `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ customer, iss: "bc/apps" })}.sig`;

function storage(initial = {}) {
  const data = { ...initial };
  return {
    data,
    getItem: (k) => (k in data ? data[k] : null),
    setItem: (k, v) => { data[k] = String(v); },
  };
}

// Runs the script as a browser would and resolves with what it published.
function load({ jwt = null, jwtStatus, cookie = "", search = "", resolve, session = storage(), klaviyo, fetchThrows } = {}) {
  const calls = [];
  const events = [];
  const fetch = async (url, options = {}) => {
    calls.push({ url, options });
    if (fetchThrows) throw new TypeError("network down");
    if (url.startsWith("/customer/current.jwt")) {
      const status = jwtStatus ?? (jwt ? 200 : 404);
      return { status, ok: status === 200, text: async () => (jwt ?? "Not Found") };
    }
    const answer = typeof resolve === "function" ? resolve(JSON.parse(options.body)) : resolve;
    if (answer instanceof Error) throw answer;
    const status = answer?.status ?? 200;
    return { status, ok: status < 300, json: async () => answer?.body ?? answer };
  };
  const document = {
    cookie,
    currentScript: { src: "https://pb.example.test/storefront.js?v=abc&store=abc123" },
    querySelector: () => null,
    dispatchEvent: (e) => events.push(e),
  };
  const window = {
    fetch, sessionStorage: session, atob: (s) => Buffer.from(s, "base64").toString("binary"),
    location: { search, href: "https://shop.example.com/" + search },
    URL, CustomEvent: class { constructor(type, init) { this.type = type; this.detail = init.detail; } },
    klaviyo,
  };
  const context = vm.createContext({ window, document, JSON, Date, Math, Number, String, RegExp, encodeURIComponent, decodeURIComponent, Error });
  vm.runInContext(SOURCE, context);
  return new Promise((done) => setTimeout(() => done({ window, events, calls, session }), 30));
}

function internals() {
  let api;
  const window = { __PB_TEST__: (a) => { api = a; }, atob: (s) => Buffer.from(s, "base64").toString("binary") };
  vm.runInContext(SOURCE, vm.createContext({ window, document: {}, JSON, RegExp, String, decodeURIComponent, encodeURIComponent }));
  return api;
}

const ANSWER = {
  profile_id: "01GDDKASAP8TKDDA2GRZDSVP4H", source: "customer", rule_contexts: ["vip"],
  user_token: "01GDDKASAP8TKDDA2GRZDSVP4H", ttl: 900, degraded: false,
  algolia: { app_id: "APPID", index: "products", api_key: "secured", valid_until: 1767225600 },
};

test("stays within 3 KB gzipped", () => {
  const size = gzipSync(SOURCE, { level: 9 }).length;
  assert.ok(size <= 3072, `storefront.js is ${size} bytes gzipped`);
});

test("__kla_id: base64, URL-safe base64, percent-encoded, raw JSON; never $email", () => {
  const { exchangeFromCookie } = internals();
  const obj = { cid: "ZWY5", $exchange_id: "kx.AbC-123_==", $email: "victim@example.com" };
  const std = Buffer.from(JSON.stringify(obj)).toString("base64");
  assert.equal(exchangeFromCookie(std), "kx.AbC-123_==");
  assert.equal(exchangeFromCookie(encodeURIComponent(std)), "kx.AbC-123_==");
  assert.equal(exchangeFromCookie(Buffer.from(JSON.stringify(obj)).toString("base64url")), "kx.AbC-123_==");
  assert.equal(exchangeFromCookie(encodeURIComponent(JSON.stringify(obj))), "kx.AbC-123_==");
  assert.equal(exchangeFromCookie(Buffer.from(JSON.stringify({ cid: "x", $email: "a@b.c" })).toString("base64")), null);
  for (const junk of ["", "%%%", "bm90IGpzb24=", "null", "[1,2]", Buffer.from('{"$exchange_id":42}').toString("base64"),
    Buffer.from(JSON.stringify({ $exchange_id: "x".repeat(600) })).toString("base64")]) {
    assert.equal(exchangeFromCookie(junk), null, junk);
  }
});

test("cookie and URL parameter parsing", () => {
  const { cookie, urlParam, decodeJwt } = internals();
  assert.equal(cookie("__kla_id", "a=1; __kla_id=eyJ9; b=2"), "eyJ9");
  assert.equal(cookie("__kla_id", "x__kla_id=no"), null);
  assert.equal(cookie("__kla_id", ""), null);
  assert.equal(urlParam("?utm=x&_kx=abc%3D%3D.def&y=1", "_kx"), "abc==.def");
  assert.equal(urlParam("?a_kx=1", "_kx"), null);
  assert.equal(urlParam("?_kx=%E0%A4%A", "_kx"), null);
  assert.deepEqual(decodeJwt(jwtFor({ id: 7, email: "a@b.c" })).customer, { id: 7, email: "a@b.c" });
  assert.equal(decodeJwt("garbage"), null);
});

test("a logged-in shopper sends the customer token and gets window.ProfileBridge and the event", async () => {
  const jwt = jwtFor({ id: 4927, email: "john@example.com", group_id: "6" });
  let sent;
  const identified = [];
  const { window, events, calls } = await load({
    jwt, resolve: (body) => { sent = body; return ANSWER; },
    klaviyo: { identify: (p) => identified.push(p) },
  });
  assert.match(calls[0].url, /^\/customer\/current\.jwt\?app_client_id=/);
  assert.equal(calls[0].options.credentials, "same-origin");
  assert.deepEqual(sent, { customer_token: jwt, store_hash: "abc123" });
  assert.equal(calls[1].url, "https://pb.example.test/api/v1/resolve");
  assert.equal(calls[1].options.credentials, "omit");
  assert.deepEqual(JSON.parse(JSON.stringify(window.ProfileBridge)), {
    profileId: ANSWER.profile_id, ruleContexts: ["vip"], userToken: ANSWER.user_token, algolia: ANSWER.algolia,
    source: "customer", degraded: false, error: false,
  });
  assert.equal(events.length, 1);
  assert.equal(events[0].type, "profilebridge:ready");
  assert.equal(events[0].detail, window.ProfileBridge);
  assert.deepEqual(JSON.parse(JSON.stringify(identified)), [{ email: "john@example.com" }]);
});

test("a JSON-quoted token body is accepted", async () => {
  const jwt = jwtFor({ id: 1 });
  let sent;
  await load({ jwt: JSON.stringify(jwt), resolve: (b) => { sent = b; return ANSWER; } });
  assert.equal(sent.customer_token, jwt);
});

test("a guest (404) with _kx in the URL sends the exchange id; the URL wins over the cookie", async () => {
  let sent;
  const cookie = "__kla_id=" + Buffer.from(JSON.stringify({ $exchange_id: "from-cookie" })).toString("base64");
  await load({ cookie, search: "?_kx=from-url", resolve: (b) => { sent = b; return { ...ANSWER, source: "exchange_id" }; } });
  assert.deepEqual(sent, { exchange_id: "from-url", store_hash: "abc123" });
  await load({ cookie, resolve: (b) => { sent = b; return ANSWER; } });
  assert.deepEqual(sent, { exchange_id: "from-cookie", store_hash: "abc123" });
});

test("an anonymous guest sends only the store hash and klaviyo.identify is not called", async () => {
  let sent;
  const identified = [];
  await load({ resolve: (b) => { sent = b; return { ...ANSWER, profile_id: null, ttl: 300 }; }, klaviyo: { identify: (p) => identified.push(p) } });
  assert.deepEqual(sent, { store_hash: "abc123" });
  assert.deepEqual(identified, []);
});

test("answers are reused from sessionStorage under the same identity while the ttl lasts", async () => {
  const session = storage();
  let resolves = 0;
  const resolve = () => { resolves += 1; return ANSWER; };
  const first = jwtFor({ id: 5, email: "a@b.c" });
  await load({ jwt: first, resolve, session });
  const keys = Object.keys(session.data);
  assert.deepEqual(keys, ["pb:abc123:c:5"]);
  const { window, events } = await load({ jwt: jwtFor({ id: 5, email: "a@b.c" }) + "x", resolve, session });
  assert.equal(resolves, 1, "a fresh JWT for the same customer hits the cache");
  assert.equal(window.ProfileBridge.profileId, ANSWER.profile_id);
  assert.equal(events.length, 1);

  await load({ jwt: jwtFor({ id: 6 }), resolve, session });
  assert.equal(resolves, 2, "another customer is another key");

  session.data["pb:abc123:c:5"] = JSON.stringify({ exp: Date.now() - 1, answer: ANSWER });
  await load({ jwt: first, resolve, session });
  assert.equal(resolves, 3, "an expired entry is not used");
  const stored = JSON.parse(session.data["pb:abc123:c:5"]);
  assert.ok(stored.exp > Date.now() + 890_000 && stored.exp <= Date.now() + 900_000);
});

test("failures publish a fallback and never throw: resolve 5xx, 429, network errors, bad JSON, broken storage", async () => {
  for (const resolve of [{ status: 500, body: {} }, { status: 429, body: {} }, new Error("offline")]) {
    const { window, events } = await load({ resolve });
    assert.equal(window.ProfileBridge.error, true);
    assert.equal(JSON.stringify(window.ProfileBridge.ruleContexts), "[]");
    assert.equal(window.ProfileBridge.algolia, null);
    assert.equal(events.length, 1);
  }
  const { window } = await load({ fetchThrows: true, resolve: ANSWER });
  assert.equal(window.ProfileBridge.error, true);

  const throwing = { getItem() { throw new Error("SecurityError"); }, setItem() { throw new Error("QuotaExceeded"); } };
  const ok = await load({ resolve: ANSWER, session: throwing });
  assert.equal(ok.window.ProfileBridge.error, false);

  const brokenKlaviyo = await load({ jwt: jwtFor({ id: 1, email: "a@b.c" }), resolve: ANSWER, klaviyo: { identify() { throw new Error("boom"); } } });
  assert.equal(brokenKlaviyo.window.ProfileBridge.error, false);
});

test("a degraded answer is cached only for its short ttl", async () => {
  const session = storage();
  await load({ resolve: { ...ANSWER, degraded: true, ttl: 30 }, session });
  const stored = JSON.parse(Object.values(session.data)[0]);
  assert.ok(stored.exp <= Date.now() + 30_000);
});
