// Small SVG charts for the dashboard: lines over a time axis, and the hot-swap timeline. No dependencies.
"use strict";
const PALETTE = ["#3b6fd8", "#e07b39", "#2e8b57", "#b23a8f", "#8a6d00", "#16a0a8", "#c0392b", "#6c5ce7"];
const colourOf = {};
function colour(name) {
  if (!(name in colourOf)) colourOf[name] = PALETTE[Object.keys(colourOf).length % PALETTE.length];
  return colourOf[name];
}

const SVG_NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

const TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
function clock(t) {
  return new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });
}
function shortNumber(v) {
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (Math.abs(v) >= 1000) return (v / 1e3).toFixed(1) + "k";
  if (Math.abs(v) < 1 && v !== 0) return v.toFixed(Math.abs(v) < 0.1 ? 3 : 2);
  return String(Math.round(v * 10) / 10);
}

// lines: [{label, values, colour, dash}] aligned with `t` (unix s); values may hold null (a gap).
// opts: max (fixed top of the y axis), log (log10 y axis, for latency: a queue's seconds next to service milliseconds),
// empty (text when there is nothing to draw), height.
function lineChart(svgId, legendId, t, lines, opts) {
  opts = opts || {};
  const svg = document.getElementById(svgId);
  const width = Math.max(svg.clientWidth || 560, 200), height = opts.height || 190;
  const left = 48, right = 28, top = 8, bottom = 22;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  let points = 0;
  let max = opts.max !== undefined ? opts.max : 0;
  for (const line of lines) {
    let n = 0;
    for (const v of line.values) if (v !== null && v !== undefined && isFinite(v)) { n++; if (opts.max === undefined) max = Math.max(max, v); }
    points = Math.max(points, n);
  }
  svg.dataset.points = String(points);
  svg.dataset.lines = String(lines.filter((l) => l.values.some((v) => v !== null)).length);
  if (!t.length || !points) {
    svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, opts.empty || "no data yet"));
    document.getElementById(legendId).replaceChildren();
    return;
  }
  if (max <= 0) max = 1;
  const t0 = t[0], t1 = Math.max(t[t.length - 1], t0 + 1);
  const x = (v) => left + ((v - t0) / (t1 - t0)) * (width - left - right);
  let y, ticks = [];
  if (opts.log) {
    let low = Infinity;
    for (const line of lines) for (const v of line.values) if (v > 0 && isFinite(v)) low = Math.min(low, v);
    const lo = Math.floor(Math.log10(Math.min(low, max))), hi = Math.max(Math.ceil(Math.log10(max)), lo + 1);
    y = (v) => top + (1 - (Math.log10(Math.max(v, Math.pow(10, lo))) - lo) / (hi - lo)) * (height - top - bottom);
    for (let e = lo; e <= hi; e++) ticks.push(Math.pow(10, e));
    max = Math.pow(10, hi);
  } else {
    const yStep = niceStep(max, 4);
    max = Math.ceil(max / yStep) * yStep;
    y = (v) => top + (1 - v / max) * (height - top - bottom);
    for (let v = 0; v <= max + 1e-9; v += yStep) ticks.push(v);
  }
  for (const v of ticks) {
    svg.appendChild(el("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
    svg.appendChild(el("text", { x: left - 4, y: y(v) + 3, "text-anchor": "end", class: "tick" }, shortNumber(v)));
  }
  const tStep = TIME_STEPS_S.find((s) => (t1 - t0) / s <= 6) || 14400;
  for (let v = Math.ceil(t0 / tStep) * tStep; v <= t1; v += tStep) {
    svg.appendChild(el("line", { x1: x(v), x2: x(v), y1: top, y2: height - bottom, class: "grid" }));
    svg.appendChild(el("text", { x: x(v), y: height - 6, "text-anchor": "middle", class: "tick" }, clock(v)));
  }
  const legend = [];
  for (const line of lines) {
    let segment = [];
    const flush = () => {
      if (segment.length === 1) svg.appendChild(el("circle", { cx: segment[0][0], cy: segment[0][1], r: 2, fill: line.colour }));
      else if (segment.length > 1) svg.appendChild(el("polyline", { points: segment.map((p) => p.join(",")).join(" "),
        stroke: line.colour, "stroke-dasharray": line.dash ? "5 3" : "none", class: "line" }));
      segment = [];
    };
    line.values.forEach((v, i) => {
      if (v === null || v === undefined || !isFinite(v)) flush();
      else segment.push([x(t[i]).toFixed(1), y(Math.min(v, max)).toFixed(1)]);
    });
    flush();
    if (!line.hideLegend) legend.push(line);
  }
  document.getElementById(legendId).replaceChildren(...legend.map((line) => {
    const item = document.createElement("span");
    item.className = "item";
    const swatch = document.createElement("i");
    swatch.style.borderColor = line.colour;
    if (line.dash) swatch.style.borderTopStyle = "dashed";
    item.append(swatch, line.label);
    return item;
  }));
}

// Announcements (●, top row) and each scorer's first answer with a version (▲, one row per scorer), joined by a line.
function swapTimeline(svgId, updates, versions, swaps) {
  const svg = document.getElementById(svgId);
  const rows = ["announced", ...Object.keys(versions).sort()];
  const width = Math.max(svg.clientWidth || 800, 300), rowH = 26, top = 6, left = 150, right = 12;
  const height = top + rows.length * rowH + 22;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  svg.dataset.swaps = String(swaps.length);
  svg.dataset.announcements = String(updates.length);
  const times = [...updates.map((u) => u.published_at), ...Object.values(versions).flatMap((v) => v.map((e) => e.first_answer_at))];
  if (!times.length) {
    svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "no model version seen yet"));
    return;
  }
  const t0 = Math.min(...times), t1 = Math.max(Math.max(...times), t0 + 10);
  const x = (v) => left + ((v - t0) / (t1 - t0)) * (width - left - right);
  const rowY = (i) => top + i * rowH + rowH / 2;
  rows.forEach((name, i) => {
    svg.appendChild(el("line", { x1: left, x2: width - right, y1: rowY(i), y2: rowY(i), class: "grid" }));
    svg.appendChild(el("text", { x: left - 6, y: rowY(i) + 4, "text-anchor": "end", class: "row" }, name));
  });
  const tStep = TIME_STEPS_S.find((s) => (t1 - t0) / s <= 8) || 14400;
  for (let v = Math.ceil(t0 / tStep) * tStep; v <= t1; v += tStep)
    svg.appendChild(el("text", { x: x(v), y: height - 6, "text-anchor": "middle", class: "tick" }, clock(v)));
  const announcedAt = {};
  for (const u of updates) {
    announcedAt[u.version] = u.published_at;
    const dot = el("circle", { cx: x(u.published_at), cy: rowY(0), r: 5, class: "announce" });
    dot.appendChild(el("title", {}, `#${u.sequence} ${u.version}: announced ${clock(u.published_at)}, ${u.examples_trained} examples`));
    svg.appendChild(dot);
  }
  rows.slice(1).forEach((scorer, i) => {
    for (const entry of versions[scorer]) {
      const cx = x(entry.first_answer_at), cy = rowY(i + 1);
      if (entry.version in announcedAt)
        svg.appendChild(el("line", { x1: x(announcedAt[entry.version]), y1: rowY(0), x2: cx, y2: cy, class: "swapline", stroke: colour(scorer) }));
      const mark = el("path", { d: `M${cx - 5},${cy + 4} L${cx + 5},${cy + 4} L${cx},${cy - 5} Z`, fill: colour(scorer), class: "served" });
      mark.appendChild(el("title", {}, `${scorer} first answered with ${entry.version} at ${clock(entry.first_answer_at)}`));
      svg.appendChild(mark);
    }
  });
}
