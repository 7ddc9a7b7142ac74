/* Profile Bridge storefront script. Finds who the shopper is, asks Profile Bridge for their Algolia rule
   contexts and secured key, then sets window.ProfileBridge and fires "profilebridge:ready" on document.
   No dependencies; never throws into the page. */
(function (w, d) {
  "use strict";
  var CLIENT_ID = "__PB_CLIENT_ID__";
  var PREFIX = "pb:";

  function json(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // Standard or URL-safe base64, padded or not; null when it is not base64.
  function unbase64(text) {
    try {
      var s = String(text).replace(/-/g, "+").replace(/_/g, "/");
      while (s.length % 4) s += "=";
      return w.atob(s);
    } catch (e) { return null; }
  }

  function decodeJwt(token) {
    var part = String(token).split(".")[1];
    var payload = part && unbase64(part);
    return payload ? json(payload) : null;
  }

  function cookie(name, all) {
    var parts = String(all || "").split(/;\s*/);
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (eq > 0 && parts[i].slice(0, eq) === name) return parts[i].slice(eq + 1);
    }
    return null;
  }

  function validId(id) {
    return typeof id === "string" && id.length > 0 && id.length <= 512 ? id : null;
  }

  // __kla_id: base64 JSON (sometimes raw JSON), percent-encoded. Only $exchange_id is used; never $email.
  function exchangeFromCookie(raw) {
    if (!raw) return null;
    var text = raw;
    try { text = decodeURIComponent(raw); } catch (e) { /* keep raw */ }
    var decoded = unbase64(text);
    var data = (decoded && json(decoded)) || json(text);
    return data && typeof data === "object" ? validId(data.$exchange_id) : null;
  }

  function urlParam(search, name) {
    var m = new RegExp("[?&]" + name + "=([^&#]*)").exec(search || "");
    if (!m) return null;
    try { return validId(decodeURIComponent(m[1].replace(/\+/g, " "))); } catch (e) { return null; }
  }

  function identity() {
    var url = "/customer/current.jwt?app_client_id=" + encodeURIComponent(CLIENT_ID);
    return w.fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.status === 200 ? r.text() : null; }, function () { return null; })
      .then(function (body) {
        var token = body && body.trim();
        if (token && token.charAt(0) === '"') token = json(token);
        if (token && String(token).split(".").length === 3) {
          var claims = decodeJwt(token) || {};
          var customer = claims.customer || {};
          return { body: { customer_token: token }, key: "c:" + (customer.id || token.slice(-24)), email: customer.email };
        }
        var kx = urlParam(w.location.search, "_kx") || exchangeFromCookie(cookie("__kla_id", d.cookie));
        if (kx) return { body: { exchange_id: kx }, key: "x:" + kx };
        return { body: {}, key: "a" };
      });
  }

  function cached(key, now) {
    try {
      var entry = json(w.sessionStorage.getItem(key));
      return entry && entry.exp > now ? entry.answer : null;
    } catch (e) { return null; }
  }

  function remember(key, answer, now) {
    try {
      var ttl = Math.max(0, Number(answer.ttl) || 0);
      if (ttl) w.sessionStorage.setItem(key, JSON.stringify({ exp: now + ttl * 1000, answer: answer }));
    } catch (e) { /* storage full or blocked */ }
  }

  function publish(answer, failed) {
    var pb = {
      profileId: answer.profile_id || null,
      ruleContexts: answer.rule_contexts || [],
      userToken: answer.user_token || null,
      algolia: answer.algolia || null,
      source: answer.source || "none",
      degraded: !!answer.degraded,
      error: !!failed
    };
    w.ProfileBridge = pb;
    try { d.dispatchEvent(new w.CustomEvent("profilebridge:ready", { detail: pb })); } catch (e) { /* old browser */ }
    return pb;
  }

  function identifyWithKlaviyo(email) {
    try {
      if (email && w.klaviyo && typeof w.klaviyo.identify === "function") w.klaviyo.identify({ email: email });
    } catch (e) { /* klaviyo.js problem: not ours to surface */ }
  }

  function run(script) {
    var src = new w.URL(script.src, w.location.href);
    var store = src.searchParams.get("store") || "";
    return identity().then(function (who) {
      identifyWithKlaviyo(who.email);
      var key = PREFIX + store + ":" + who.key;
      var hit = cached(key, Date.now());
      if (hit) return publish(hit);
      who.body.store_hash = store;
      return w.fetch(src.origin + "/api/v1/resolve", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(who.body),
        credentials: "omit"
      }).then(function (r) {
        if (!r.ok) throw new Error("resolve " + r.status);
        return r.json();
      }).then(function (answer) {
        remember(key, answer, Date.now());
        return publish(answer);
      });
    }).catch(function () { return publish({}, true); });
  }

  var api = { decodeJwt: decodeJwt, exchangeFromCookie: exchangeFromCookie, cookie: cookie, urlParam: urlParam, run: run };
  if (typeof w.__PB_TEST__ === "function") { w.__PB_TEST__(api); return; }
  try {
    var me = d.currentScript || d.querySelector('script[src*="/storefront.js"]');
    if (me && w.fetch) run(me);
  } catch (e) { /* never break the storefront */ }
})(window, document);
