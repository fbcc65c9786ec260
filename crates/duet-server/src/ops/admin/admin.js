// The admin page: asks `POST /v4/duet/status` every 5 s with the admin's identity, and shows the answer.
"use strict";
(function () {
  const fields = ["sdkappid", "identifier", "usersig"];
  const $ = (id) => document.getElementById(id);
  for (const f of fields) {
    const kept = sessionStorage.getItem("duet." + f);
    if (kept) $(f).value = kept;
  }
  let timer = null;

  const count = (n) => Number(n).toLocaleString("en-US").replace(/,/g, " ");
  const bytes = (b) => {
    if (b == null) return "unknown";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = b, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? b + " B" : v.toFixed(1) + " " + units[u];
  };
  const duration = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + " d " + h + " h";
    if (h > 0) return h + " h " + m + " min";
    if (m > 0) return m + " min " + (s % 60) + " s";
    return s + " s";
  };
  const outbox = (o, off) => o == null ? off : o.Depth === 0 ? "empty" : count(o.Depth) + " waiting, oldest " + duration(o.OldestAgeSecs);

  function show(s) {
    const platforms = Object.entries(s.ConnectionsByPlatform).map(([p, n]) => p + " " + count(n)).join(", ");
    const rows = [
      ["Ready", s.Ready ? "ready" : "NOT READY", s.Ready ? "ready" : "down"],
      ["Version", s.Version],
      ["Up", duration(s.UptimeSecs) + " (since " + new Date(s.StartedAt * 1000).toISOString().replace(".000", "") + ")"],
      ["Store", s.Store + ", " + bytes(s.StoreBytes) + (s.Clustered ? ", one node of several" : "")],
      ["Accounts", count(s.Accounts)],
      ["Messages", count(s.Messages)],
      ["Connections", count(s.Connections) + (platforms ? " (" + platforms + ")" : "")],
      ["Retention", "history " + duration(s.RoamingRetentionSecs) + ", offline " + duration(s.OfflineRetentionSecs)],
      ["Push outbox", outbox(s.PushOutbox, "no provider configured")],
      ["Callback outbox", outbox(s.CallbackOutbox, "no callback URL configured")],
    ];
    const body = $("status").tBodies[0];
    body.replaceChildren(...rows.map(([name, value, cls]) => {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      const td = document.createElement("td");
      th.textContent = name;
      td.textContent = value;
      if (cls) td.className = cls;
      tr.append(th, td);
      return tr;
    }));
    $("status").hidden = false;
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
  }

  async function refresh() {
    const q = new URLSearchParams();
    for (const f of fields) q.set(f, $(f).value.trim());
    q.set("random", String(Math.floor(Math.random() * 4294967295)));
    q.set("contenttype", "json");
    try {
      const r = await fetch("/v4/duet/status?" + q, { method: "POST", body: "{}" });
      const s = await r.json();
      if (s.ErrorCode !== 0) throw new Error(s.ErrorInfo + " (ErrorCode " + s.ErrorCode + ")");
      $("error").textContent = "";
      show(s);
    } catch (e) {
      $("error").textContent = "Could not read the status: " + e.message;
    }
  }

  $("who").addEventListener("submit", (ev) => {
    ev.preventDefault();
    for (const f of fields) sessionStorage.setItem("duet." + f, $(f).value.trim());
    if (timer) clearInterval(timer);
    refresh();
    timer = setInterval(refresh, 5000);
  });
  if (fields.every((f) => $(f).value)) $("who").requestSubmit();
})();
