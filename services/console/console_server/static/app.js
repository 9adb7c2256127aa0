// Dashboard for the pipeline console. Plain JS, no libraries: the page must
// work offline and is small enough not to need a build step.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

// --- small helpers -------------------------------------------------------

// Build DOM nodes from data with textContent only: labels and messages come
// from uploaded file names and pipeline findings, never trusted as HTML.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function badge(status) {
  return el("span", { class: `badge badge-${status}`, "data-status": status, text: status });
}

function formatBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Every error the console sends is {"error": {"code", "message"}}.
async function api(path, init) {
  const response = await fetch(path, init);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || response.statusText);
  }
  return body;
}

function showBanner(message) {
  const banner = document.getElementById("banner");
  banner.textContent = message;
  banner.hidden = !message;
}

// --- status ------------------------------------------------------------------

async function loadStatus() {
  const health = document.getElementById("health");
  try {
    const status = await api("/api/status");
    document.getElementById("pipeline-name").textContent = status.pipeline_name;
    health.textContent = status.healthy ? "healthy" : "unhealthy";
    health.className = `badge ${status.healthy ? "badge-ok" : "badge-bad"}`;
    document.getElementById("versions").textContent =
      `pipeline ${status.version} · console ${status.console_version}`;
    const rows = [
      ["Pipeline", status.pipeline_name],
      ["Healthy", status.healthy ? "yes" : "no"],
      ["Steps", status.step_count],
      ["Active runs", status.active_runs],
      ["Last run", formatTime(status.last_run_time)],
      ["Pipeline version", status.version],
      ["continuous-gtfs", status.framework_version],
    ];
    document.getElementById("status").replaceChildren(
      ...rows.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: String(v) }))),
    );
    showBanner("");
  } catch (err) {
    health.textContent = "unreachable";
    health.className = "badge badge-bad";
    showBanner(`Pipeline status unavailable: ${err.message}`);
  }
}

// --- steps ------------------------------------------------------------------------

// A step's description is its docstring: show the first paragraph, the rest
// on request.
function description(text) {
  if (!text) return null;
  const [summary, ...rest] = text.trim().split(/\n\s*\n/);
  const head = el("div", { class: "muted small", text: summary.replace(/\s+/g, " ") });
  if (!rest.length) return head;
  return el("div", {}, head, el("details", { class: "small muted" },
    el("summary", { text: "more" }), el("div", { class: "doc", text: rest.join("\n\n") })));
}

async function loadSteps() {
  const body = document.querySelector("#steps tbody");
  try {
    const { steps } = await api("/api/steps");
    body.replaceChildren(...steps.map((s) => el("tr", { "data-step": s.name },
      el("td", { text: String(s.index + 1) }),
      el("td", {}, el("strong", { class: "step-name", text: s.name }), description(s.description)),
      el("td", { text: s.type === "builtin" ? `builtin · ${s.builtin_class}` : "custom" }),
      el("td", { class: "mono", text: s.files.join(", ") }),
      el("td", { text: s.enabled ? "yes" : "no" }),
    )));
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "error", text: err.message })));
  }
}

// --- DAG ------------------------------------------------------------------------------

const NODE_W = 176;
const NODE_H = 46;
const GAP_X = 64;
const GAP_Y = 18;
const PAD = 16;

// Layered layout: a node's layer is the longest path from a source, so every
// edge points right; within a layer nodes are ordered by the mean position of
// their parents, which keeps most edges from crossing.
function layout(nodes, edges) {
  const ids = nodes.map((n) => n.id);
  const parents = new Map(ids.map((id) => [id, []]));
  const children = new Map(ids.map((id) => [id, []]));
  for (const e of edges) {
    if (!parents.has(e.target) || !children.has(e.source)) continue;
    parents.get(e.target).push(e.source);
    children.get(e.source).push(e.target);
  }
  const layer = new Map(ids.map((id) => [id, 0]));
  const indegree = new Map(ids.map((id) => [id, parents.get(id).length]));
  const queue = ids.filter((id) => indegree.get(id) === 0);
  while (queue.length) {
    const id = queue.shift();
    for (const child of children.get(id)) {
      layer.set(child, Math.max(layer.get(child), layer.get(id) + 1));
      indegree.set(child, indegree.get(child) - 1);
      if (indegree.get(child) === 0) queue.push(child);
    }
  }
  const layers = [];
  for (const id of ids) {
    const l = layer.get(id);
    (layers[l] = layers[l] || []).push(id);
  }
  const row = new Map();
  layers.forEach((members, l) => {
    if (l > 0) {
      const weight = (id) => {
        const ps = parents.get(id).filter((p) => row.has(p));
        return ps.length ? ps.reduce((sum, p) => sum + row.get(p), 0) / ps.length : 0;
      };
      members.sort((a, b) => weight(a) - weight(b));
    }
    members.forEach((id, i) => row.set(id, i));
  });
  // Edges that skip layers are drawn as arcs over the nodes they skip (a
  // straight line would hide behind them); room for the highest arc on top.
  const longest = Math.max(1, ...edges.map((e) => (layer.get(e.target) ?? 0) - (layer.get(e.source) ?? 0)));
  const arcRoom = longest > 1 ? 0.75 * arcLift(longest) + 8 : 0;
  const tallest = Math.max(1, ...layers.map((m) => (m ? m.length : 0)));
  const rowsHeight = tallest * NODE_H + (tallest - 1) * GAP_Y;
  const height = PAD * 2 + arcRoom + rowsHeight;
  const pos = new Map();
  layers.forEach((members, l) => {
    const span = members.length * NODE_H + (members.length - 1) * GAP_Y;
    const top = PAD + arcRoom + (rowsHeight - span) / 2;
    members.forEach((id, i) => pos.set(id, {
      x: PAD + l * (NODE_W + GAP_X),
      y: top + i * (NODE_H + GAP_Y),
    }));
  });
  const width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X;
  return { pos, layer, width, height };
}

// Height of the control points of an arc over `span` layers: longer arcs fly
// higher, so arcs from one node do not overlap.
function arcLift(span) {
  return 26 + 22 * (span - 2);
}

function edgePath(a, b, span) {
  if (span > 1) {
    // From the top of the source to the top of the target, over the rest.
    const x1 = a.x + NODE_W * 0.6;
    const x2 = b.x + NODE_W * 0.4;
    const lift = arcLift(span);
    return `M ${x1} ${a.y} C ${x1} ${a.y - lift}, ${x2} ${b.y - lift}, ${x2} ${b.y}`;
  }
  const x1 = a.x + NODE_W;
  const y1 = a.y + NODE_H / 2;
  const x2 = b.x;
  const y2 = b.y + NODE_H / 2;
  const bend = Math.max(24, (x2 - x1) / 2);
  return `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function drawDag(dag) {
  const { pos, layer, width, height } = layout(dag.nodes, dag.edges);
  const root = svg("svg", {
    width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `pipeline DAG: ${dag.nodes.length} steps, ${dag.edges.length} edges`,
  });
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse",
  });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  defs.append(marker);
  root.append(defs);

  const edgeLayer = svg("g", { class: "edges" });
  for (const e of dag.edges) {
    const a = pos.get(e.source);
    const b = pos.get(e.target);
    if (!a || !b) continue;
    const path = svg("path", {
      class: "edge",
      d: edgePath(a, b, layer.get(e.target) - layer.get(e.source)),
      "marker-end": "url(#arrow)",
      "data-source": e.source,
      "data-target": e.target,
    });
    const title = svg("title");
    title.textContent = `${e.source} → ${e.target}`;
    path.append(title);
    edgeLayer.append(path);
  }
  root.append(edgeLayer);

  const nodeLayer = svg("g", { class: "nodes" });
  for (const n of dag.nodes) {
    const p = pos.get(n.id);
    const g = svg("g", {
      class: `node ${n.type === "builtin" ? "builtin" : "custom"}`,
      transform: `translate(${p.x} ${p.y})`,
      "data-step": n.id,
    });
    g.append(svg("rect", { width: NODE_W, height: NODE_H }));
    const name = svg("text", { class: "name", x: 10, y: 19 });
    name.textContent = truncate(n.id, 24);
    const kind = svg("text", { class: "kind", x: 10, y: 35 });
    kind.textContent = truncate(n.type === "builtin" ? `builtin · ${n.builtin}` : "custom", 30);
    const title = svg("title");
    title.textContent = [n.id, n.label, (n.files || []).join(", ")].filter(Boolean).join("\n");
    g.append(title, name, kind);
    nodeLayer.append(g);
  }
  root.append(nodeLayer);
  document.getElementById("dag").replaceChildren(root);
  document.getElementById("dag-summary").textContent =
    `${dag.nodes.length} steps · ${dag.edges.length} edges`;
}

async function loadDag() {
  try {
    drawDag(await api("/api/dag"));
  } catch (err) {
    document.getElementById("dag").replaceChildren(el("p", { class: "error", text: err.message }));
  }
}

// Colour the DAG's nodes by one run's step results.
function paintDag(run) {
  const results = new Map((run ? run.step_results : []).map((r) => [r.step_name, r.status]));
  for (const node of document.querySelectorAll("#dag .node")) {
    node.classList.remove("status-success", "status-failed", "status-skipped");
    const status = results.get(node.dataset.step);
    if (status) node.classList.add(`status-${status}`);
  }
  document.getElementById("dag-run-note").textContent = run ? `colours: run ${run.run_id}` : "";
}

// --- runs ----------------------------------------------------------------------------------

let selectedRun = null;

function rowCounts(result) {
  return result.row_counts
    .filter((r) => r.rows_before !== r.rows_after)
    .map((r) => `${r.file} ${r.rows_before}→${r.rows_after}`)
    .join(", ") || (result.row_counts.length ? "unchanged" : "");
}

function findings(result) {
  if (!result.findings.length) return el("span", { class: "muted", text: "none" });
  return el("ul", { class: "findings" }, result.findings.map((f) => el("li", {},
    el("span", { class: `sev-${f.severity}`, text: f.severity }), " ",
    el("code", { text: f.code }),
    f.occurrence_count > 1 ? ` ×${f.occurrence_count}` : "",
    `: ${f.message}`,
  )));
}

function renderRunDetail(run) {
  const target = document.getElementById("run-detail");
  if (!run) { target.replaceChildren(); return; }
  const steps = el("table", { class: "table step-results" },
    el("thead", {}, el("tr", {},
      ["Step", "Status", "Duration", "Rows changed", "Findings"].map((h) => el("th", { text: h })))),
    el("tbody", {}, run.step_results.map((r) => el("tr", { "data-step": r.step_name },
      el("td", { text: r.step_name }),
      el("td", {}, badge(r.status), r.error ? el("div", { class: "small error", text: r.error }) : null),
      el("td", { text: formatMs(r.duration_ms) }),
      el("td", { class: "mono", text: rowCounts(r) }),
      el("td", {}, findings(r)),
    ))),
  );
  target.replaceChildren(el("div", { class: "run-detail", "data-run": run.run_id },
    el("h3", {}, `Run ${run.run_id} `, badge(run.status)),
    run.error ? el("p", { class: "error", text: run.error }) : null,
    el("p", { class: "muted small" },
      `${run.label} · ${formatBytes(run.input_size)} in · ${formatBytes(run.output_size)} out · `,
      `${formatMs(run.duration_ms)} · pipeline ${run.version}`),
    run.step_results.length ? steps : el("p", { class: "muted", text: "No step results." }),
  ));
}

function selectRun(run) {
  selectedRun = run ? run.run_id : null;
  for (const tr of document.querySelectorAll("#runs tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.run === selectedRun);
  }
  renderRunDetail(run);
  paintDag(run);
}

async function loadRuns() {
  const body = document.querySelector("#runs tbody");
  try {
    const { runs } = await api("/api/runs?page_size=50");
    document.getElementById("runs-empty").hidden = runs.length > 0;
    body.replaceChildren(...runs.map((run) => {
      const tr = el("tr", { class: "run-row", "data-run": run.run_id },
        el("td", { class: "mono", text: run.run_id }),
        el("td", { text: run.label }),
        el("td", {}, badge(run.status)),
        el("td", { text: formatTime(run.started_at) }),
        el("td", { text: formatMs(run.duration_ms) }),
        el("td", { text: formatBytes(run.input_size) }),
        el("td", {}, run.output_url
          ? el("a", { href: run.output_url, download: `${run.run_id}.zip`, class: "download", text: "download" })
          : el("span", { class: "muted", text: "—" })),
      );
      tr.addEventListener("click", (event) => {
        if (event.target.closest("a")) return;
        selectRun(run);
      });
      return tr;
    }));
    const current = runs.find((r) => r.run_id === selectedRun);
    if (current) selectRun(current);
    return runs;
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "error", text: err.message })));
    return [];
  }
}

// --- upload ---------------------------------------------------------------------------------

async function onUpload(event) {
  event.preventDefault();
  const form = event.target;
  const button = document.getElementById("upload-button");
  const result = document.getElementById("upload-result");
  const file = form.elements.feed.files[0];
  if (!file) return;
  button.disabled = true;
  result.replaceChildren(el("span", { class: "muted", text: `Uploading ${file.name} and running…` }));
  try {
    // FormData streams the file; the console streams it on to the pipeline.
    const run = await api("/api/runs", { method: "POST", body: new FormData(form) });
    const succeeded = run.step_results.filter((r) => r.status === "success").length;
    result.replaceChildren(el("div", { "data-run": run.run_id },
      el("strong", {}, "Run ", el("span", { class: "mono", text: run.run_id }), " "), badge(run.status),
      el("div", { class: "muted small",
        text: `${succeeded}/${run.step_results.length} steps succeeded in ${formatMs(run.duration_ms)}` }),
      run.error ? el("div", { class: "error", text: run.error }) : null,
      run.output_url ? el("a", { href: run.output_url, download: `${run.run_id}.zip`, text: "download output" }) : null,
    ));
    selectedRun = run.run_id;
    await Promise.all([loadRuns(), loadStatus()]);
  } catch (err) {
    result.replaceChildren(el("div", { class: "error", "data-error": err.code },
      `Run not started (${err.status} ${err.code}): ${err.message}`));
  } finally {
    button.disabled = false;
  }
}

// --- start -----------------------------------------------------------------------------------

document.getElementById("upload-form").addEventListener("submit", onUpload);
document.getElementById("refresh").addEventListener("click", () => { loadRuns(); loadStatus(); });

// The DAG must exist before runs paint it.
Promise.all([loadStatus(), loadSteps(), loadDag()]).then(loadRuns).then(() => {
  document.body.dataset.loaded = "true";
});
// Keep status and history current while the page is open (runs started elsewhere).
setInterval(() => { if (!document.hidden) { loadStatus(); loadRuns(); } }, 15000);
