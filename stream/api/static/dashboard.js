// Polls /stats every REFRESH_MS and fills the page; keeps a short history for the sparklines.
"use strict";
const REFRESH_MS = 2000;
const HISTORY = 60;
const history = { clicks: [], recs: [] };

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function setText(id, text) { document.getElementById(id).textContent = text; }

function spark(id, values) {
  const svg = document.getElementById(id);
  const max = Math.max(1, ...values);
  const step = 120 / Math.max(1, HISTORY - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(30 - (v / max) * 28).toFixed(1)}`).join(" ");
  svg.innerHTML = `<polyline points="${points}"></polyline>`;
}

function remember(list, value) { list.push(value); if (list.length > HISTORY) list.shift(); }

function render(s) {
  setText("clicks-per-s", fmt(s.clicks_per_s, 1));
  setText("recommendations-per-s", fmt(s.recommendations_per_s, 1));
  setText("latency-p50", fmt(s.latency_p50_ms, 1));
  setText("latency-p99", fmt(s.latency_p99_ms, 1));
  const lag = Object.values(s.health.lag).reduce((a, b) => a + b, 0);
  setText("lag", fmt(lag, 0));
  setText("dead-letters", fmt(s.dead_letters_total, 0));
  setText("dead-letter-reasons", Object.entries(s.dead_letters_by_reason).map(([r, n]) => `${r}: ${n}`).join(", ") +
          ` (${fmt(s.dead_letters_per_s, 1)}/s)`);
  setText("hit-rate-k", s.hit_rate_k);
  setText("serving-scorer", s.serving_scorer);
  setText("window", fmt(s.window_s, 0));
  const scorers = new Set([...Object.keys(s.model_versions), ...Object.keys(s.hit_rate)]);
  const rows = [...scorers].sort().map((name) => {
    const hr = s.hit_rate[name] || { hr: null, judged: 0 };
    const tr = document.createElement("tr");
    tr.dataset.scorer = name;
    for (const [cls, text] of [["scorer", name], ["version", s.model_versions[name] || "–"],
                               ["hr", fmt(hr.hr, 3)], ["judged", fmt(hr.judged, 0)]]) {
      const td = document.createElement("td"); td.className = cls; td.textContent = text; tr.appendChild(td);
    }
    return tr;
  });
  document.getElementById("scorers").replaceChildren(...rows);
  remember(history.clicks, s.clicks_per_s); remember(history.recs, s.recommendations_per_s);
  spark("clicks-spark", history.clicks); spark("recs-spark", history.recs);
  const status = document.getElementById("status");
  status.textContent = s.health.status === "ok" ? "live" : `unavailable: ${s.health.error || "not assigned"}`;
  status.className = "status " + (s.health.status === "ok" ? "ok" : "bad");
  setText("updated", "updated " + new Date().toLocaleTimeString());
}

async function refresh() {
  try {
    const response = await fetch("/stats", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (error) {
    const status = document.getElementById("status");
    status.textContent = `no data: ${error.message}`; status.className = "status bad";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}
refresh();
