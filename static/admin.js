// Admin page script. The session token comes from <meta name="pb-session"> and travels only as a Bearer header.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="pb-session"]');
  var token = meta ? meta.getAttribute("content") : "";
  var state = document.getElementById("pb-api-state");
  var alertBox = document.getElementById("pb-alert");

  function showError(message) {
    alertBox.textContent = message;
    alertBox.hidden = false;
  }

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({ Authorization: "Bearer " + token, Accept: "application/json" }, options.headers || {});
    return fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.status === 401) {
          throw new Error("Session expired — reopen Profile Bridge from the Apps menu");
        }
        if (!response.ok) {
          throw new Error((body.error && body.error.message) || "Profile Bridge could not answer (HTTP " + response.status + ")");
        }
        return body;
      });
    });
  }

  window.ProfileBridgeAdmin = { api: api };

  api("/api/v1/settings")
    .then(function (settings) {
      state.textContent = "Session active for store " + settings.store_hash + ".";
      state.setAttribute("data-state", "ready");
    })
    .catch(function (error) {
      state.textContent = "";
      state.setAttribute("data-state", "error");
      showError(error.message);
    });
})();
