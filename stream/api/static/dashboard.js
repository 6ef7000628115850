// Polls /stats every REFRESH_MS and fills the page; the charts come from the history the server keeps
// (api.history_interval_s, api.history_points), so a page opened late shows the run so far.
"use strict";
const REFRESH_MS = 2000;

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
function setText(id, text) { document.getElementById(id).textContent = text; }
function setAll(cls, text) { for (const node of document.getElementsByClassName(cls)) node.textContent = text; }
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 90) return `${seconds.toFixed(0)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
function rows(tbodyId, data, empty) {
  const body = document.getElementById(tbodyId);
  const trs = data.map((cells) => {
    const tr = document.createElement("tr");
    if (cells.attrs) Object.assign(tr.dataset, cells.attrs);
    for (const [cls, text] of cells.cells) {
      const td = document.createElement("td"); td.className = cls; td.textContent = text; tr.appendChild(td);
    }
    return tr;
  });
  if (!trs.length && empty) {
    const tr = document.createElement("tr"), td = document.createElement("td");
    td.colSpan = 8; td.className = "note"; td.textContent = empty; tr.appendChild(td); trs.push(tr);
  }
  body.replaceChildren(...trs);
}

// Series of the history whose name starts with `chart.`, one line each (label = the rest of the name).
function linesOf(history, chart, options) {
  options = options || {};
  return Object.entries(history.series).filter(([name]) => name.startsWith(chart + ".")).map(([name, values]) => {
    const label = name.slice(chart.length + 1);
    return { label: (options.prefix || "") + label, values, colour: colour(options.colourBy ? options.colourBy(label) : label),
             dash: !!options.dash };
  });
}

function renderCharts(s) {
  const h = s.history, t = h.t;
  lineChart("chart-rate", "legend-rate", t, linesOf(h, "rate"));
  const latency = [...linesOf(h, "p50", { prefix: "p50 " }), ...linesOf(h, "p99", { prefix: "p99 ", dash: true })];
  latency.forEach((line) => { line.colour = colour(line.label.slice(4)); });
  lineChart("chart-latency", "legend-latency", t, latency, { log: true });
  lineChart("chart-hr", "legend-hr", t, linesOf(h, "hr"), { max: 1 });
  lineChart("chart-mrr", "legend-mrr", t, linesOf(h, "mrr"));
  lineChart("chart-lag", "legend-lag", t, linesOf(h, "lag"));
  lineChart("chart-fallback", "legend-fallback", t, linesOf(h, "fallback"),
            { empty: Object.keys(s.workers).length ? "no answers yet" : "no worker metrics configured (api.worker_metrics)" });
  const trainerEmpty = "no trainer metrics (api.worker_metrics names none)";
  lineChart("chart-trainer-rate", "legend-trainer-rate", t, linesOf(h, "trainer").filter((l) => l.label === "examples/s"), { empty: trainerEmpty });
  lineChart("chart-trainer-loss", "legend-trainer-loss", t, linesOf(h, "trainer").filter((l) => l.label === "loss"), { empty: trainerEmpty });
}

function renderVersions(s) {
  const versions = {};
  for (const swap of s.swaps) (versions[swap.scorer] = versions[swap.scorer] || []);
  // every scorer's versions: the first it served (serving_since of a scorer that never swapped) and each swap
  for (const [scorer, serving] of Object.entries(s.serving)) {
    if (serving.versions_served === null) continue;  // the kNN's stamp moves with every click: no model versions
    const list = versions[scorer] = versions[scorer] || [];
    const firsts = s.swaps.filter((w) => w.scorer === scorer);
    const initial = firsts.length ? firsts[0].from_version : serving.version;
    const initialAt = firsts.length ? null : serving.serving_since;
    if (initialAt !== null && initialAt !== undefined) list.push({ version: initial, first_answer_at: initialAt });
    for (const w of firsts) list.push({ version: w.version, first_answer_at: w.first_answer_at });
  }
  swapTimeline("swap-timeline", s.model_updates, versions, s.swaps);
  const examples = Object.fromEntries(s.model_updates.map((u) => [u.version, u.examples_trained]));
  rows("swaps", s.swaps.slice(-12).reverse().map((w) => ({
    attrs: { scorer: w.scorer },
    cells: [["scorer", w.scorer], ["version", w.version], ["sequence", w.sequence ?? "–"],
            ["announced", w.announced_at ? clock(w.announced_at) : "–"], ["first", clock(w.first_answer_at)],
            ["delay", fmt(w.delay_s, 2)], ["examples", fmt(examples[w.version], 0)]],
  })), "no hot swap yet: the trainer publishes a version every training.publish_every_s");
  const serving = s.serving[s.serving_scorer] || Object.values(s.serving)[0];
  setText("serving-version", serving ? serving.version : "–");
  setText("version-age", serving && serving.versions_served !== null ? duration(serving.age_s) : "–");  // the kNN's stamp: no age
  setText("versions-served", serving ? fmt(serving.versions_served, 0) : "–");
  setText("swap-count", fmt(s.swaps.length, 0));
}

function renderTrainer(s) {
  const trainers = Object.entries(s.workers).filter(([, w]) => w.trainer_examples_total !== null && w.trainer_examples_total !== undefined);
  const series = s.history.series["trainer.examples/s"] || [];
  const latestRate = [...series].reverse().find((v) => v !== null && v !== undefined);
  setText("trainer-examples-per-s", fmt(latestRate, 1));
  if (!trainers.length) {
    for (const id of ["trainer-loss", "trainer-skipped", "trainer-steps", "trainer-versions"]) setText(id, "–");
    setText("trainer-note", Object.keys(s.workers).length ? "no worker reports trainer metrics" :
            "no trainer metrics: name the trainer's /metrics in api.worker_metrics (streamrec demo does)");
    return;
  }
  const [name, w] = trainers[0];
  setText("trainer-loss", fmt(w.trainer_loss, 3));
  setText("trainer-skipped", fmt(w.trainer_skipped, 0));
  setText("trainer-steps", fmt(w.trainer_steps_total, 0));
  setText("trainer-versions", fmt(w.trainer_versions_published, 0));
  setText("trainer-note", `from ${name} (${w.url}); examples/s over each ${s.history_interval_s} s chart step`);
}

function renderTables(s) {
  const scorers = new Set([...Object.keys(s.model_versions), ...Object.keys(s.hit_rate)]);
  rows("scorers", [...scorers].sort().map((name) => {
    const hr = s.hit_rate[name] || { hr: null, mrr: null, judged: 0 };
    const lat = s.latency_by_scorer[name] || {};
    const served = s.serving[name] || {};
    return { attrs: { scorer: name }, cells: [["scorer", name], ["version", s.model_versions[name] || "–"],
      ["versions-served", served.versions_served === null ? "online counts" : fmt(served.versions_served, 0)], ["hr", fmt(hr.hr, 3)], ["mrr", fmt(hr.mrr, 3)],
      ["judged", fmt(hr.judged, 0)], ["p50", fmt(lat.p50_ms, 1)], ["p99", fmt(lat.p99_ms, 1)]] };
  }));
  rows("dead-letter-table", Object.entries(s.dead_letters_by_reason).map(([reason, n]) => ({ cells: [["reason", reason], ["count", fmt(n, 0)]] })),
       "none");
  rows("workers", Object.entries(s.workers).map(([name, w]) => ({
    attrs: { worker: name },
    cells: [["worker", name], ["up", w.up ? "yes" : `no (${w.error || "?"})`],
            ["scorer", w.scorer ? `${w.scorer} / ${w.model_version}` : (w.trainer_examples_total !== null ? "trainer" : "–")],
            ["lag", Object.entries(w.lag_by_stage).map(([stage, n]) => `${stage}: ${fmt(n, 0)}`).join(", ") || "–"],
            ["fallback", w.recommendations_total ? fmt(100 * (w.fallback_total || 0) / w.recommendations_total, 2) + " %" : "–"]],
  })), "no worker metrics configured (api.worker_metrics)");
  const answered = Object.values(s.workers).reduce((a, w) => a + (w.recommendations_total || 0), 0);
  const fallback = Object.values(s.workers).reduce((a, w) => a + (w.fallback_total || 0), 0);
  setText("fallback-share", answered ? fmt(100 * fallback / answered, 2) + " %" : "–");
}

function render(s) {
  setText("clicks-per-s", fmt(s.clicks_per_s, 1));
  setText("recommendations-per-s", fmt(s.recommendations_per_s, 1));
  setText("latency-p50", fmt(s.latency_p50_ms, 1));
  setText("latency-p99", fmt(s.latency_p99_ms, 1));
  const workerLag = Object.values(s.workers).reduce((a, w) => a + Object.values(w.lag_by_stage).reduce((x, y) => x + y, 0), 0);
  const lag = Object.values(s.health.lag).reduce((a, b) => a + b, 0) + workerLag;
  setText("lag", fmt(lag, 0));
  setText("dead-letters", fmt(s.dead_letters_total, 0));
  setText("dead-letter-reasons", Object.entries(s.dead_letters_by_reason).map(([r, n]) => `${r}: ${n}`).join(", ") +
          ` (${fmt(s.dead_letters_per_s, 1)}/s)`);
  setAll("k", s.hit_rate_k);
  setAll("hr-window", fmt(s.hit_rate_window, 0));
  setText("serving-scorer", s.serving_scorer);
  setText("window", fmt(s.window_s, 0));
  setAll("window", fmt(s.window_s, 0));
  setText("interval", fmt(s.history_interval_s, 0));
  renderCharts(s);
  renderVersions(s);
  renderTrainer(s);
  renderTables(s);
  const status = document.getElementById("status");
  status.textContent = s.health.status === "ok" ? "live" : `unavailable: ${s.health.error || "not assigned"}`;
  status.className = "status " + (s.health.status === "ok" ? "ok" : "bad");
  setText("updated", "updated " + new Date().toLocaleTimeString("en-GB", { hour12: false }));
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
