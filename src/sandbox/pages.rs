//! HTML of the emulated control panel and storefront (plain strings: they are test scenery, not product UI).

use crate::sandbox::bigcommerce::{BcState, DemoShopper, SHOPPERS, StorefrontAlgolia};

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const CP_STYLE: &str = r#"
body{margin:0;font:15px/1.5 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#313440;background:#f6f7fc;display:flex;min-height:100vh}
nav{width:200px;background:#34313f;color:#cfcdd9;padding:16px 0;flex-shrink:0}nav b{display:block;color:#fff;padding:0 20px 16px;font-size:18px}
nav a{display:block;color:#cfcdd9;padding:8px 20px;text-decoration:none}nav a.on{background:#4b4757;color:#fff}
main{flex:1;padding:24px;min-width:0}h1{font-size:22px;margin:0 0 16px}.card{background:#fff;border:1px solid #d9dce9;border-radius:4px;padding:16px;margin-bottom:16px}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:center}button,.btn{font:inherit;font-size:14px;font-weight:600;padding:8px 14px;border-radius:4px;border:1px solid #3c64f4;background:#3c64f4;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
.btn.alt,button.alt{background:#fff;color:#3c64f4}button.danger{background:#fff;color:#db3643;border-color:#db3643}
iframe{width:100%;height:1400px;border:1px solid #d9dce9;border-radius:4px;background:#fff}code{background:#f0f1f7;padding:1px 5px;border-radius:3px}
.cols{display:grid;grid-template-columns:2fr 1fr;gap:16px}@media(max-width:900px){.cols{grid-template-columns:1fr}nav{display:none}}
ul.log{padding-left:18px;margin:0;font-size:13px;color:#5e637a}table{border-collapse:collapse;font-size:13px;width:100%}td,th{border-bottom:1px solid #e5e7f0;padding:4px;text-align:left}
"#;

pub fn control_panel(state: &BcState, frame_src: Option<&str>) -> String {
    let inner = state.inner.lock().expect("lock");
    let installed = inner.installed;
    let log: String = inner
        .log
        .iter()
        .rev()
        .map(|l| format!("<li>{}</li>", escape(l)))
        .collect();
    let scripts: String = inner
        .scripts
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(s["name"].as_str().unwrap_or("")),
                s["channel_id"],
                escape(s["consent_category"].as_str().unwrap_or(""))
            )
        })
        .collect();
    drop(inner);
    let frame = frame_src
        .map(|src| format!(r#"<iframe id="app-frame" title="Profile Bridge" src="{}"></iframe>"#, escape(src)))
        .unwrap_or_else(|| {
            if installed {
                r#"<p>Profile Bridge is installed. <a class="btn" id="open-app" href="/apps/open">Open Profile Bridge</a></p>"#.to_string()
            } else {
                r#"<p>Personalized search from Klaviyo profiles. <a class="btn" id="install-app" href="/apps/install">Install</a></p>"#.to_string()
            }
        });
    let manage = if installed {
        r#"<div class="row"><a class="btn alt" id="open-app-staff" href="/apps/open?user=2">Open as staff user</a>
           <form method="post" action="/apps/remove-user"><button class="alt" id="remove-user">Remove staff user</button></form>
           <form method="post" action="/apps/uninstall"><button class="danger" id="uninstall-app">Uninstall</button></form></div>"#
    } else {
        ""
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Control panel · {name} (sandbox)</title><style>{CP_STYLE}</style></head><body>
<nav><b>BigCommerce</b><a href="/">Home</a><a>Orders</a><a>Products</a><a class="on" href="/">Apps</a><a href="{storefront}" target="_blank">View storefront ↗</a></nav>
<main><h1>Apps › Profile Bridge <small style="font-size:13px;color:#5e637a">(sandbox control panel of {name}, store <code>{hash}</code>)</small></h1>
<div class="cols"><div>{frame}</div>
<div><div class="card"><b>Manage</b>{manage}<p><a class="btn alt" id="visit-storefront" href="{storefront}" target="_blank">Visit the storefront ↗</a></p></div>
<div class="card"><b>Demo credentials</b><p style="font-size:13px">Klaviyo private key:<br><code id="demo-klaviyo-key">pk_demo_private_key_0123456789abcd</code><br>
Algolia application ID <code id="demo-algolia-app">DEMOAPP</code>, index <code id="demo-algolia-index">products</code>,<br>search-only key <code id="demo-algolia-key">demo-search-only-key-0001</code><br>
Try a rule: context <code>vip</code> when Klaviyo property <code>vip</code> equals <code>true</code>.</p></div>
<div class="card"><b>Script Manager</b><table><tr><th>Script</th><th>Channel</th><th>Consent</th></tr>{scripts}</table>
<div class="row" style="margin-top:8px"><form method="post" action="/script-manager/delete"><button class="alt">Delete app scripts</button></form>
<form method="post" action="/script-manager/recategorize"><button class="alt">Re-categorize</button></form>
<form method="post" action="/apps/throttle"><button class="alt">Toggle Scripts API 429</button></form></div></div>
<div class="card"><b>What just happened</b><ul class="log">{log}</ul></div></div></div></main></body></html>"#,
        name = escape(&state.store_name),
        hash = escape(&state.store_hash),
        storefront = escape(&state.storefront_url),
    )
}

const SF_STYLE: &str = r#"
body{margin:0;font:16px/1.5 Georgia,"Times New Roman",serif;color:#222;background:#fbfaf7}
header{background:#1f3d2b;color:#fff;padding:16px 24px;display:flex;flex-wrap:wrap;gap:12px;align-items:center;justify-content:space-between}
header a{color:#cfe8d5}header b{font-size:22px}.who{font:14px -apple-system,Segoe UI,sans-serif}.who a{margin-left:10px}
.who a.on{color:#fff;font-weight:700;text-decoration:none}main{max-width:1000px;margin:0 auto;padding:24px}
form.search{display:flex;gap:8px;margin-bottom:16px}form.search input{flex:1;font-size:16px;padding:8px}form.search button{font-size:16px;padding:8px 16px;background:#1f3d2b;color:#fff;border:0}
#pb-state{font:13px -apple-system,Segoe UI,sans-serif;background:#eef4ef;border:1px solid #cfe0d3;padding:8px 12px;margin-bottom:16px;border-radius:4px}
ul#hits{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px}
ul#hits li{background:#fff;border:1px solid #e3e0d8;padding:12px;border-radius:4px}ul#hits li.promoted{border-color:#c9a227;box-shadow:0 0 0 2px #f3e2a4}
.tag{font:11px sans-serif;background:#c9a227;color:#fff;padding:1px 6px;border-radius:8px}.price{color:#555}
"#;

pub fn storefront(
    state: &BcState,
    shopper: Option<&DemoShopper>,
    query: &str,
    footer_scripts: &str,
    algolia: &StorefrontAlgolia,
) -> String {
    let switcher: String = std::iter::once(("guest", "Guest", shopper.is_none()))
        .chain(
            SHOPPERS
                .iter()
                .map(|s| (s.key, s.name, shopper.is_some_and(|c| c.key == s.key))),
        )
        .map(|(key, name, on)| {
            format!(
                r#"<a id="as-{key}" class="{}" href="/login?as={key}">{}</a>"#,
                if on { "on" } else { "" },
                escape(name)
            )
        })
        .collect();
    let signed_in = shopper
        .map(|s| format!("Signed in as {} — {}.", escape(s.email), escape(s.blurb)))
        .unwrap_or_else(|| "Browsing as a guest.".into());
    let config = serde_json::json!({"url": algolia.url, "appId": algolia.app_id, "index": algolia.index, "publicKey": algolia.public_key, "query": query});
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} — sandbox storefront</title><style>{SF_STYLE}</style></head><body>
<header><b>{name}</b><div class="who">Browse as:{switcher}<a id="from-email" href="/from-email">Guest from a Klaviyo email</a></div></header>
<main><p id="signed-in" style="font:14px sans-serif;color:#555">{signed_in}</p>
<form class="search" action="/search"><input name="q" value="{query}" placeholder="Search tents, boots, jackets…" aria-label="Search"><button>Search</button></form>
<div id="pb-state" data-state="waiting">Waiting for Profile Bridge…</div>
<ul id="hits" data-state="loading"></ul></main>
<script id="theme-config" type="application/json">{config}</script>
<script>
// The theme's own search code, as a storefront developer would write it with Profile Bridge (see the README).
(function () {{
  var cfg = JSON.parse(document.getElementById("theme-config").textContent);
  function show(pb, result) {{
    var state = document.getElementById("pb-state");
    var contexts = pb ? pb.ruleContexts : [];
    state.setAttribute("data-state", pb ? (pb.error ? "error" : "ready") : "absent");
    state.setAttribute("data-contexts", contexts.join(","));
    state.textContent = pb ? ("Profile Bridge: " + (pb.profileId ? "Klaviyo profile " + pb.profileId : "no Klaviyo profile") +
      " · contexts in effect: " + (contexts.length ? contexts.join(", ") : "none") + (pb.degraded ? " (degraded)" : "") +
      (result.appliedRules && result.appliedRules.length ? " · Algolia rules applied: " + result.appliedRules.map(function (r) {{ return r.description; }}).join(", ") : ""))
      : "Profile Bridge is not installed: default results.";
    var list = document.getElementById("hits");
    list.textContent = "";
    (result.hits || []).forEach(function (hit) {{
      var li = document.createElement("li");
      li.setAttribute("data-object-id", hit.objectID);
      if (hit._rankingInfo && hit._rankingInfo.promoted) li.className = "promoted";
      li.innerHTML = "<b></b><br><span class=price></span> " + (li.className ? "<span class=tag>picked for you</span>" : "");
      li.querySelector("b").textContent = hit.name;
      li.querySelector(".price").textContent = "$" + hit.price.toFixed(2);
      list.appendChild(li);
    }});
    list.setAttribute("data-state", "ready");
  }}
  function search(pb) {{
    var a = pb && pb.algolia ? pb.algolia : null;
    fetch(cfg.url + "/1/indexes/" + encodeURIComponent(a ? a.index : cfg.index) + "/query", {{
      method: "POST",
      headers: {{ "content-type": "application/json", "x-algolia-application-id": a ? a.app_id : cfg.appId, "x-algolia-api-key": a ? a.api_key : cfg.publicKey }},
      body: JSON.stringify({{ query: cfg.query, ruleContexts: pb ? pb.ruleContexts : [], userToken: pb && pb.userToken ? pb.userToken : undefined }})
    }}).then(function (r) {{ return r.json(); }}).then(function (result) {{ show(pb, result); }}, function () {{ show(pb, {{ hits: [] }}); }});
  }}
  var done = false;
  function once(pb) {{ if (!done) {{ done = true; search(pb); }} }}
  document.addEventListener("profilebridge:ready", function (e) {{ once(e.detail); }});
  // Footer scripts come after this one: look for Profile Bridge once the page is parsed.
  document.addEventListener("DOMContentLoaded", function () {{
    if (!document.querySelector('script[src*="/storefront.js"]')) once(null);
    else if (window.ProfileBridge) once(window.ProfileBridge);
  }});
}})();
</script>
{footer_scripts}
</body></html>"#,
        name = escape(&state.store_name),
        query = escape(query),
        config = config.to_string().replace("</", "<\\/"),
    )
}
