// Admin page script. The session token comes from <meta name="pb-session"> and travels only as a Bearer header.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="pb-session"]');
  var token = meta ? meta.getAttribute("content") : "";
  var state = document.getElementById("pb-api-state");
  var alertBox = document.getElementById("pb-alert");
  var EXPIRED = "Session expired — reopen Profile Bridge from the Apps menu";

  function showError(message) {
    alertBox.textContent = message;
    alertBox.hidden = false;
  }

  function clearError() {
    alertBox.hidden = true;
    alertBox.textContent = "";
  }

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({ Authorization: "Bearer " + token, Accept: "application/json" }, options.headers || {});
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 401) throw new Error(EXPIRED);
        if (!response.ok) {
          throw new Error((body.error && body.error.message) || "Profile Bridge could not answer (HTTP " + response.status + ")");
        }
        return body;
      });
    });
  }

  function badge(channel) {
    if (channel.drift) return ["pb-badge pb-badge--warn", "Changed in Script Manager"];
    if (channel.installed) return ["pb-badge pb-badge--ok", "Installed"];
    return ["pb-badge pb-badge--danger", "Not installed"];
  }

  function renderChannels(script) {
    var body = document.querySelector("#pb-channels tbody");
    if (!body || !script) return;
    body.textContent = "";
    script.channels.forEach(function (channel) {
      var row = document.createElement("tr");
      row.setAttribute("data-channel", channel.channel_id);
      var name = document.createElement("td");
      name.textContent = channel.name + " #" + channel.channel_id;
      var stateCell = document.createElement("td");
      var b = document.createElement("span");
      var look = badge(channel);
      b.className = look[0];
      b.textContent = look[1];
      stateCell.appendChild(b);
      var error = document.createElement("td");
      error.textContent = channel.last_error || "—";
      error.className = channel.last_error ? "pb-inline-error" : "pb-muted";
      row.appendChild(name); row.appendChild(stateCell); row.appendChild(error);
      body.appendChild(row);
    });
  }

  function applied(settings) {
    renderChannels(settings.script);
    if (settings.warnings && settings.warnings.length) showError(settings.warnings.join(" · "));
    else clearError();
    return settings;
  }

  function busy(button, promise) {
    button.disabled = true;
    return promise.then(applied, function (e) { showError(e.message); }).then(function () { button.disabled = false; });
  }

  var repair = document.getElementById("pb-repair");
  if (repair) {
    repair.addEventListener("click", function () {
      busy(repair, api("/api/v1/script/repair", { method: "POST" }));
    });
  }
  var form = document.getElementById("pb-script-form");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var select = document.getElementById("consent_category");
      busy(form.querySelector("button[type=submit]"), api("/api/v1/settings/script", {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ consent_category: select.value })
      }));
    });
  }

  window.ProfileBridgeAdmin = { api: api };

  api("/api/v1/settings")
    .then(function (settings) {
      applied(settings);
      state.textContent = "Session active for store " + settings.store_hash + ".";
      state.setAttribute("data-state", "ready");
    })
    .catch(function (error) {
      state.textContent = "";
      state.setAttribute("data-state", "error");
      showError(error.message);
    });
})();
