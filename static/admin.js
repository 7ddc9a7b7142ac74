// Profile Bridge admin page. The session token comes from <meta name="pb-session"> and travels only as a Bearer
// header (no cookies inside the control-panel iframe). No framework: a few small render functions over the
// settings JSON that every API call answers with.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="pb-session"]');
  var token = meta ? meta.getAttribute("content") : "";
  var EXPIRED = "Session expired — reopen Profile Bridge from the Apps menu";
  var CONTEXT = /^[A-Za-z0-9_-]{1,32}$/;
  var SUBJECTS = [
    ["property", "Klaviyo property"], ["location", "Location"], ["predictive", "Predictive analytics"],
    ["customer_group", "Customer group"], ["profile", "Klaviyo profile"]
  ];
  var LOCATION_KEYS = ["country", "region", "city", "zip", "timezone", "address1", "address2", "latitude", "longitude", "ip"];
  var PREDICTIVE_KEYS = ["historic_clv", "predicted_clv", "total_clv", "historic_number_of_orders", "predicted_number_of_orders",
    "average_days_between_orders", "average_order_value", "churn_probability", "expected_date_of_next_order"];
  var OPERATORS = [["equals", "equals"], ["not_equals", "does not equal"], ["in", "is one of"], ["gte", "≥"], ["lte", "≤"], ["exists", "exists"]];
  var current = null;
  var rules = [];

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "hidden") node.hidden = !!attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function show(box, message) { box.textContent = message; box.hidden = !message; }
  function alertError(message) { show($("pb-alert"), message); if (message) $("pb-notice").hidden = true; }
  function notice(message) { show($("pb-notice"), message); if (message) $("pb-alert").hidden = true; }

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({ Authorization: "Bearer " + token, Accept: "application/json" }, options.headers || {});
    if (options.json !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(options.json);
    }
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 401) throw { message: EXPIRED, expired: true };
        if (!response.ok) {
          var e = body.error || {};
          throw { message: e.message || "Profile Bridge could not answer (HTTP " + response.status + ")", field: e.field, code: e.code };
        }
        return body;
      });
    }, function () { throw { message: "Profile Bridge could not be reached. Check your connection and try again." }; });
  }

  // --- field errors -------------------------------------------------------------------------------------
  function clearErrors(scope) {
    Array.prototype.forEach.call(scope.querySelectorAll("[data-error-for]"), function (p) { p.hidden = true; p.textContent = ""; });
    Array.prototype.forEach.call(scope.querySelectorAll("[aria-invalid]"), function (i) { i.removeAttribute("aria-invalid"); });
    Array.prototype.forEach.call(scope.querySelectorAll("[data-invalid]"), function (i) { i.removeAttribute("data-invalid"); });
  }

  // Shows an API error next to the input named after its field (e.g. rules[3].when.gte), else at the top.
  function fieldError(scope, error) {
    if (error.expired || !error.field) { alertError(error.message); return; }
    var input = scope.querySelector('[name="' + error.field + '"]');
    var slot = scope.querySelector('[data-error-for="' + error.field + '"]');
    var rule = /^rules\[(\d+)\]/.exec(error.field);
    if (!slot && rule) {
      var row = scope.querySelectorAll(".pb-rule")[Number(rule[1])];
      if (row) { row.setAttribute("data-invalid", "true"); slot = row.querySelector(".pb-rule__error"); }
    }
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
    if (slot) { slot.textContent = error.message; slot.hidden = false; } else alertError(error.message);
  }

  function busy(button, promise) {
    button.disabled = true;
    return promise.then(function (v) { button.disabled = false; return v; }, function (e) { button.disabled = false; throw e; });
  }

  // --- rendering ----------------------------------------------------------------------------------------
  function status(id, ok, text) {
    var p = $(id);
    p.className = "pb-status " + (ok ? "pb-status--ok" : "pb-status--warn");
    p.lastElementChild.textContent = text;
  }

  function render(settings) {
    current = settings;
    var k = settings.klaviyo;
    status("klaviyo-status", k.connected, !k.connected ? "Not connected" :
      k.method === "oauth" ? "Connected with Klaviyo (OAuth)" : "Connected with private key " + (k.key_hint || ""));
    $("klaviyo-disconnect").hidden = !k.connected;
    $("klaviyo-oauth").hidden = !k.oauth_available;
    var a = settings.algolia;
    status("algolia-status", !!a, a ? "Searching index " + a.index + " of application " + a.app_id + " with key " + (a.key_hint || "") : "Not connected");
    $("algolia-remove").hidden = !a;
    if (a) {
      if (!$("app_id").value) $("app_id").value = a.app_id;
      if (!$("index").value) $("index").value = a.index;
    }
    renderChannels(settings.script);
    var channels = settings.script.channels;
    var steps = {
      klaviyo: k.connected, algolia: !!a, rules: settings.rules.length > 0,
      script: channels.length > 0 && channels.every(function (c) { return c.installed; })
    };
    Array.prototype.forEach.call($("pb-checklist").children, function (li) {
      li.setAttribute("data-done", steps[li.getAttribute("data-step")] ? "true" : "false");
    });
    if (settings.warnings && settings.warnings.length) alertError(settings.warnings.join(" · "));
  }

  function renderChannels(script) {
    var body = document.querySelector("#pb-channels tbody");
    body.textContent = "";
    if (!script.channels.length) body.appendChild(el("tr", {}, [el("td", { colspan: "3", "class": "pb-muted", text: "No storefront channel found yet." })]));
    script.channels.forEach(function (c) {
      var look = c.drift ? ["pb-badge pb-badge--warn", "Changed in Script Manager"] : c.installed ? ["pb-badge pb-badge--ok", "Installed"] : ["pb-badge pb-badge--danger", "Not installed"];
      body.appendChild(el("tr", { "data-channel": String(c.channel_id) }, [
        el("td", { text: c.name + " #" + c.channel_id }),
        el("td", {}, [el("span", { "class": look[0], text: look[1] })]),
        el("td", { "class": c.last_error ? "pb-inline-error" : "pb-muted", text: c.last_error || "—" })
      ]));
    });
    $("consent_category").value = script.consent_category;
  }

  // --- rules editor -------------------------------------------------------------------------------------
  function subjectOf(when) {
    for (var i = 0; i < SUBJECTS.length; i++) if (when[SUBJECTS[i][0]] !== undefined) return SUBJECTS[i][0];
    return "property";
  }

  function operatorOf(when) {
    for (var i = 0; i < OPERATORS.length; i++) if (when[OPERATORS[i][0]] !== undefined) return OPERATORS[i][0];
    return "equals";
  }

  function select(name, options, value, label) {
    var s = el("select", { name: name, "aria-label": label });
    options.forEach(function (o) { var opt = el("option", { value: o[0], text: o[1] }); if (o[0] === value) opt.selected = true; s.appendChild(opt); });
    return s;
  }

  function part(label, control) { return el("div", { "class": "pb-rule__part" }, [el("label", { text: label }), control]); }

  function valueText(op, v) {
    if (v === undefined) return "";
    if (op === "in") return v.map(function (x) { return typeof x === "string" ? x : JSON.stringify(x); }).join(", ");
    return typeof v === "string" ? v : JSON.stringify(v);
  }

  // "true" → true, "500" → 500, anything else stays text: equality is strict, so the merchant sees what is sent.
  function parseValue(text) {
    var t = text.trim();
    if (t === "true" || t === "false" || /^-?\d+(\.\d+)?$/.test(t)) return JSON.parse(t);
    if (/^".*"$/.test(t)) { try { return JSON.parse(t); } catch (e) { return t; } }
    return t;
  }

  function renderRules() {
    var list = $("rules-list");
    list.textContent = "";
    $("rules-empty").hidden = rules.length > 0;
    rules.forEach(function (rule, i) {
      var p = "rules[" + i + "]";
      var when = rule.when || {};
      var subject = subjectOf(when);
      var context = el("input", { type: "text", name: p + ".context", value: rule.context || "", placeholder: "vip", spellcheck: "false", autocomplete: "off" });
      var contextError = el("p", { "class": "pb-field-error", hidden: true });
      context.addEventListener("input", function () {
        rule.context = context.value;
        var ok = CONTEXT.test(context.value);
        if (ok) context.removeAttribute("aria-invalid"); else context.setAttribute("aria-invalid", "true");
        show(contextError, ok ? "" : "Letters, digits, - and _ only, at most 32");
      });
      var subjectSelect = select(p + ".when.subject", SUBJECTS, subject, "What to test");
      subjectSelect.addEventListener("change", function () {
        var s = subjectSelect.value;
        rule.when = s === "profile" ? { profile: "exists" } : s === "customer_group" ? { customer_group: "" } :
          s === "location" ? { location: "country", equals: "" } : s === "predictive" ? { predictive: "historic_clv", gte: 0 } : { property: "", equals: true };
        renderRules();
      });
      var parts = [el("span", { "class": "pb-rule__num", text: String(i + 1) }), part("Add context", context), el("span", { "class": "pb-rule__word", text: "when" }), part("Test", subjectSelect)];
      if (subject === "profile") {
        var pick = select(p + ".when.profile", [["exists", "exists"], ["missing", "is missing"]], when.profile, "Profile");
        pick.addEventListener("change", function () { rule.when = { profile: pick.value }; });
        parts.push(part("Profile", pick));
      } else if (subject === "customer_group") {
        var group = el("input", { type: "text", name: p + ".when.customer_group", value: when.customer_group || "", placeholder: "2" });
        group.addEventListener("input", function () { rule.when = { customer_group: group.value.trim() }; });
        parts.push(part("Customer group id", group));
      } else {
        var keyControl;
        if (subject === "property") {
          keyControl = el("input", { type: "text", name: p + ".when.property", value: when.property || "", placeholder: "vip" });
          keyControl.addEventListener("input", function () { when.property = keyControl.value.trim(); });
        } else {
          keyControl = select(p + ".when." + subject, (subject === "location" ? LOCATION_KEYS : PREDICTIVE_KEYS).map(function (k) { return [k, k]; }), when[subject], "Field");
          keyControl.addEventListener("change", function () { when[subject] = keyControl.value; });
        }
        var op = operatorOf(when);
        var opSelect = select(p + ".when.operator", OPERATORS, op, "Operator");
        var value = op === "exists" ? select(p + ".when.exists", [["true", "yes"], ["false", "no"]], String(when.exists), "Exists")
          : el("input", { type: "text", name: p + ".when." + op, value: valueText(op, when[op]), placeholder: op === "in" ? "gold, platinum" : "true" });
        function store() {
          var o = opSelect.value;
          OPERATORS.forEach(function (x) { delete when[x[0]]; });
          var raw = value.value;
          when[o] = o === "exists" ? raw !== "false" : o === "in" ? raw.split(",").filter(function (x) { return x.trim(); }).map(parseValue)
            : (o === "gte" || o === "lte") ? (raw.trim() === "" || isNaN(Number(raw)) ? raw : Number(raw)) : parseValue(raw);
        }
        opSelect.addEventListener("change", function () { store(); rule.when = when; renderRules(); });
        value.addEventListener(value.tagName === "SELECT" ? "change" : "input", store);
        parts.push(part(subject === "property" ? "Property name" : "Field", keyControl), part("Operator", opSelect), part("Value", value));
      }
      function move(delta) { var j = i + delta; if (j < 0 || j >= rules.length) return; rules.splice(j, 0, rules.splice(i, 1)[0]); renderRules(); }
      var up = el("button", { type: "button", "class": "pb-button pb-button--secondary pb-button--small", "aria-label": "Move rule " + (i + 1) + " up", text: "↑" });
      var down = el("button", { type: "button", "class": "pb-button pb-button--secondary pb-button--small", "aria-label": "Move rule " + (i + 1) + " down", text: "↓" });
      var remove = el("button", { type: "button", "class": "pb-button pb-button--danger pb-button--small", "aria-label": "Remove rule " + (i + 1), text: "Remove" });
      up.disabled = i === 0; down.disabled = i === rules.length - 1;
      up.addEventListener("click", function () { move(-1); });
      down.addEventListener("click", function () { move(1); });
      remove.addEventListener("click", function () { rules.splice(i, 1); renderRules(); });
      parts.push(el("div", { "class": "pb-rule__actions" }, [up, down, remove]), contextError, el("p", { "class": "pb-field-error pb-rule__error", hidden: true }));
      list.appendChild(el("li", { "class": "pb-rule" }, parts));
    });
  }

  function loadRules(settings) {
    rules = JSON.parse(JSON.stringify(settings.rules || []));
    renderRules();
  }

  // --- actions ------------------------------------------------------------------------------------------
  function saved(message) { return function (settings) { render(settings); if (!(settings.warnings && settings.warnings.length)) notice(message); return settings; }; }
  function failed(scope) { return function (e) { fieldError(scope, e); }; }

  $("klaviyo-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target; clearErrors(form);
    busy(form.querySelector("[type=submit]"), api("/api/v1/settings/klaviyo", { method: "PUT", json: { private_key: $("private_key").value } }))
      .then(function (s) { $("private_key").value = ""; return s; }).then(saved("Klaviyo key saved."), failed(form));
  });
  $("klaviyo-disconnect").addEventListener("click", function (event) {
    busy(event.target, api("/api/v1/settings/klaviyo", { method: "DELETE" })).then(saved("Klaviyo disconnected."), failed(document));
  });
  $("klaviyo-oauth").addEventListener("click", function (event) {
    // Klaviyo's consent page cannot be framed: open a window now (in the click) and poll our settings.
    var popup = window.open("", "pb-klaviyo", "width=640,height=760");
    busy(event.target, api("/api/v1/klaviyo/oauth/start", { method: "POST" })).then(function (body) {
      if (popup) popup.location.href = body.authorize_url; else window.open(body.authorize_url, "_blank");
      notice("Finish connecting in the Klaviyo window. This page updates by itself.");
      var tries = 0;
      var timer = setInterval(function () {
        tries += 1;
        api("/api/v1/settings").then(function (s) {
          if (s.klaviyo.method === "oauth") { clearInterval(timer); render(s); notice("Klaviyo connected."); }
        }, function (e) { if (e.expired) { clearInterval(timer); alertError(e.message); } });
        if (tries > 150) clearInterval(timer);
      }, 2000);
    }, function (e) { if (popup) popup.close(); fieldError(document, e); });
  });
  $("algolia-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target; clearErrors(form);
    busy(form.querySelector("[type=submit]"), api("/api/v1/settings/algolia", { method: "PUT",
      json: { app_id: $("app_id").value.trim(), index: $("index").value.trim(), search_key: $("search_key").value.trim() } }))
      .then(function (s) { $("search_key").value = ""; return s; }).then(saved("Algolia saved."), failed(form));
  });
  $("algolia-remove").addEventListener("click", function (event) {
    busy(event.target, api("/api/v1/settings/algolia", { method: "DELETE" })).then(function (s) {
      $("app_id").value = ""; $("index").value = ""; return s;
    }).then(saved("Algolia removed."), failed(document));
  });
  $("rules-add").addEventListener("click", function () {
    rules.push({ context: "", when: { property: "", equals: true } });
    renderRules();
    var inputs = $("rules-list").querySelectorAll('input[name$=".context"]');
    inputs[inputs.length - 1].focus();
  });
  $("rules-save").addEventListener("click", function (event) {
    var section = $("pb-rules"); clearErrors(section);
    busy(event.target, api("/api/v1/settings/rules", { method: "PUT", json: { rules: rules } }))
      .then(function (s) { loadRules(s); return s; }).then(saved("Rules saved."), failed(section));
  });
  $("pb-script-form").addEventListener("submit", function (event) {
    event.preventDefault();
    busy(event.target.querySelector("[type=submit]"), api("/api/v1/settings/script", { method: "PUT", json: { consent_category: $("consent_category").value } }))
      .then(saved("Consent category saved."), failed(document));
  });
  $("pb-repair").addEventListener("click", function (event) {
    busy(event.target, api("/api/v1/script/repair", { method: "POST" })).then(saved("Scripts repaired."), failed(document));
  });
  $("preview-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var section = $("pb-preview"); clearErrors(section);
    var out = $("preview-result");
    out.hidden = true;
    busy(event.target.querySelector("[type=submit]"), api("/api/v1/preview", { method: "POST", json: { email: $("email").value.trim() } }))
      .then(function (r) {
        out.textContent = "";
        out.appendChild(el("dl", {}, [
          el("dt", { text: "Klaviyo profile" }), el("dd", { text: r.profile_id || "none found" }),
          el("dt", { text: "Rule contexts" }), el("dd", { text: (r.rule_contexts || []).join(", ") || "none" }),
          el("dt", { text: "Answer" }), el("dd", { text: r.degraded ? "degraded (Klaviyo unavailable)" : "complete" })
        ]));
        (r.warnings || []).forEach(function (w) { out.appendChild(el("p", { "class": "pb-help", text: w })); });
        out.hidden = false;
      }, failed(section));
  });

  window.ProfileBridgeAdmin = { api: api };

  api("/api/v1/settings").then(function (settings) {
    render(settings);
    loadRules(settings);
    $("pb-api-state").textContent = "";
    $("pb-api-state").setAttribute("data-state", "ready");
  }, function (error) {
    $("pb-api-state").textContent = "";
    $("pb-api-state").setAttribute("data-state", "error");
    alertError(error.message);
  });
})();
