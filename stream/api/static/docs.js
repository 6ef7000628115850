// Renders /openapi.json: every operation with its parameters, request body and responses (schemas as JSON).
"use strict";
function node(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}
function resolve(spec, schema) {
  if (schema && schema.$ref) return resolve(spec, schema.$ref.split("/").slice(1).reduce((o, k) => o[k], spec));
  return schema;
}
function schemaText(spec, schema) { return JSON.stringify(resolve(spec, schema), null, 2); }
function schemaBox(spec, schema) {  // folded: a page of JSON per route otherwise
  return node("details", {}, node("summary", {}, "schema"), node("pre", {}, schemaText(spec, schema)));
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("title").textContent = spec.info.title + " API";
  document.getElementById("version").textContent = "version " + spec.info.version;
  document.getElementById("description").textContent = spec.info.description || "";
  const ops = [];
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const box = node("section", { class: "op", "data-path": path, "data-method": method });
      box.append(node("h2", {}, node("span", { class: "method " + method }, method.toUpperCase()), path));
      if (op.summary) box.append(node("b", {}, op.summary));
      if (op.description) box.append(node("p", { class: "note" }, op.description));
      if (op.parameters && op.parameters.length) {
        const rows = op.parameters.map((p) => node("tr", {}, node("td", {}, p.name), node("td", {}, p.in),
          node("td", {}, p.required ? "required" : "optional"), node("td", {}, (resolve(spec, p.schema) || {}).type || ""),
          node("td", {}, p.description || "")));
        box.append(node("h3", {}, "parameters"), node("table", {}, node("tbody", {}, ...rows)));
      }
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      if (body) box.append(node("h3", {}, "request body (application/json)"), schemaBox(spec, body.schema));
      for (const [status, response] of Object.entries(op.responses || {})) {
        box.append(node("h3", {}, `${status}: ${response.description || ""}`));
        const json = response.content && response.content["application/json"];
        if (json && json.schema && Object.keys(json.schema).length) box.append(schemaBox(spec, json.schema));
      }
      ops.push(box);
    }
  }
  document.getElementById("operations").replaceChildren(...ops);
}
main().catch((error) => { document.getElementById("operations").textContent = "could not read /openapi.json: " + error.message; });
