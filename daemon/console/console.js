// The argusd console: camera grid, live event feed (SSE), zone and line editor. Plain JS, no build step,
// every asset served by argusd itself.
"use strict";

const FRAME_INTERVAL_MS = 250; // a camera's image is fetched again this long after the last one arrived
const STATUS_INTERVAL_MS = 1000;
const FPS_WINDOW_MS = 5000;
const FEED_KEPT = 200; // feed entries kept on the page
const SVG = "http://www.w3.org/2000/svg";

const cards = new Map(); // camera id -> {root, image, overlay, stats, rules, last}
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function getJson(path) {
  const reply = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  if (reply.status === 401) { showLogin(); throw new Error("authentication required"); }
  if (!reply.ok) throw new Error(`${path}: ${reply.status}`);
  return reply.json();
}

function showLogin() {
  const form = $("login");
  if (!form.hidden) return;
  form.hidden = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    document.cookie = `argusd_token=${encodeURIComponent($("token").value)}; path=/; SameSite=Strict`;
    location.reload();
  }, { once: true });
}

// -- cameras ----------------------------------------------------------------------------------------

function format(value, digits = 1, unit = "") {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}${unit}`;
}

function addCard(camera) {
  const image = el("img", { alt: `camera ${camera.id}`, "data-camera": camera.id });
  const overlay = el("svg:svg", { class: "overlay" });
  const state = el("span", { class: "state" });
  const stats = el("div", { class: "stats" });
  const edit = el("button", { type: "button", class: "small", text: "Edit zones" });
  const root = el("article", { class: "camera", id: `camera-${camera.id}` },
    el("div", { class: "camera-head" }, el("h3", { text: camera.id }), state, edit),
    el("div", { class: "frame" }, image, overlay), stats);
  $("cameras").append(root);
  const card = { root, image, overlay, state, stats, rules: { zones: [], lines: [] }, samples: [], showing: false };
  cards.set(camera.id, card);
  edit.addEventListener("click", () => openEditor(camera.id));
  const option = el("option", { value: camera.id, text: camera.id });
  $("filter-camera").append(option);
  image.addEventListener("load", () => {
    drawRules(card.overlay, card.image, card.rules);
    setTimeout(() => refreshImage(camera.id), FRAME_INTERVAL_MS);
  });
  image.addEventListener("error", () => { card.showing = false; }); // the status poll starts it again
  loadRules(camera.id);
}

function refreshImage(id) {
  const card = cards.get(id);
  if (card && card.showing) card.image.src = `/cameras/${encodeURIComponent(id)}/latest.jpg?t=${Date.now()}`;
}

async function loadRules(id) {
  const card = cards.get(id);
  card.rules = await getJson(`/cameras/${encodeURIComponent(id)}/rules`);
  drawRules(card.overlay, card.image, card.rules);
}

function updateCard(camera, now) {
  const card = cards.get(camera.id);
  card.state.textContent = camera.state;
  card.state.className = `state ${camera.state}`;
  // Over the last FPS_WINDOW_MS: a camera analysed at a few frames a second shows no jumps between polls.
  card.samples.push({ at: now, analysed: camera.frames_analysed });
  while (now - card.samples[0].at > FPS_WINDOW_MS) card.samples.shift();
  const first = card.samples[0];
  const seconds = (now - first.at) / 1000;
  const fps = seconds > 0 ? (camera.frames_analysed - first.analysed) / seconds : null;
  // latest.jpg answers 503 before a camera's first analysed frame (also after a reload restarted it): the
  // image is only fetched while the camera streams and has frames analysed since it (re)started.
  const restarted = card.lastAnalysed !== undefined && camera.frames_analysed < card.lastAnalysed;
  card.lastAnalysed = camera.frames_analysed;
  if (restarted || camera.state !== "streaming" || camera.frames_analysed === 0) card.showing = false;
  else if (!card.showing) {
    card.showing = true;
    refreshImage(camera.id);
  }
  card.stats.replaceChildren(
    el("span", {}, "analysis ", el("b", { class: "fps", text: format(fps, 1, " fps") })),
    el("span", {}, "last frame ", el("b", { class: "age", text: format(camera.last_frame_age_s, 1, " s") })),
    el("span", {}, "objects ", el("b", { class: "objects", text: String(camera.active_objects ?? 0) })),
    el("span", {}, "events ", el("b", { text: String(camera.events ?? 0) })));
}

async function pollCameras() {
  try {
    const status = await getJson("/cameras");
    const now = Date.now();
    const seen = new Set();
    for (const camera of status.cameras) {
      seen.add(camera.id);
      if (!cards.has(camera.id)) addCard(camera);
      updateCard(camera, now);
    }
    for (const [id, card] of cards) {
      if (!seen.has(id)) { card.root.remove(); cards.delete(id); }
    }
    const streaming = status.cameras.filter((c) => c.state === "streaming").length;
    $("summary").textContent = `${streaming}/${status.cameras.length} streaming · detector ` +
      `${status.detector.runtime || "?"} on ${status.detector.device || "?"}`;
  } catch (problem) {
    $("summary").textContent = String(problem.message || problem);
  }
  setTimeout(pollCameras, STATUS_INTERVAL_MS);
}

// -- zones and lines over a frame ------------------------------------------------------------------

function frameSize(image) {
  return [image.naturalWidth || 640, image.naturalHeight || 360];
}

// Side A of a line is where (p2-p1)x(p-p1) > 0 in image coordinates (docs/config.md, cameras[].lines).
function sidePoints(a, b, w, h) {
  const [mx, my] = [(a[0] + b[0]) / 2 * w, (a[1] + b[1]) / 2 * h];
  const [dx, dy] = [(b[0] - a[0]) * w, (b[1] - a[1]) * h];
  const length = Math.hypot(dx, dy) || 1;
  const [nx, ny] = [-dy / length * 18, dx / length * 18]; // (nx, ny) has a positive cross product
  return { a: [mx + nx, my + ny], b: [mx - nx, my - ny] };
}

function drawRules(svg, image, rules, editing = null) {
  const [w, h] = frameSize(image);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  (rules.zones || []).forEach((zone, index) => {
    const points = zone.polygon.map(([x, y]) => `${x * w},${y * h}`).join(" ");
    svg.append(el("svg:polygon", { class: "zone", points }));
    svg.append(el("svg:text", { class: "label", x: zone.polygon[0][0] * w + 4, y: zone.polygon[0][1] * h + 16,
      text: zone.name + (zone.loiter_s ? ` (loiter ${zone.loiter_s} s)` : "") }));
    if (editing) zone.polygon.forEach((p, corner) => svg.append(handle(p, w, h, ["zones", index, corner])));
  });
  (rules.lines || []).forEach((line, index) => {
    const [a, b] = line.points;
    svg.append(el("svg:line", { class: "line", x1: a[0] * w, y1: a[1] * h, x2: b[0] * w, y2: b[1] * h }));
    svg.append(el("svg:text", { class: "label", x: a[0] * w + 4, y: a[1] * h - 6, text: line.name }));
    const sides = sidePoints(a, b, w, h);
    svg.append(el("svg:text", { class: "side", x: sides.a[0], y: sides.a[1], "text-anchor": "middle", text: "A" }));
    svg.append(el("svg:text", { class: "side", x: sides.b[0], y: sides.b[1], "text-anchor": "middle", text: "B" }));
    if (editing) line.points.forEach((p, end) => svg.append(handle(p, w, h, ["lines", index, end])));
  });
  if (editing && editing.draft.length) {
    svg.append(el("svg:polyline", { class: "zone", points: editing.draft.map(([x, y]) => `${x * w},${y * h}`).join(" ") }));
  }
}

function handle(point, w, h, path) {
  return el("svg:circle", { class: "handle", cx: point[0] * w, cy: point[1] * h, r: Math.max(5, w / 120),
    "data-path": path.join(".") });
}

// -- the editor -------------------------------------------------------------------------------------

const editor = { camera: null, rules: { zones: [], lines: [] }, mode: null, draft: [], dragging: null };

function round(value) { return Math.round(Math.min(1, Math.max(0, value)) * 1000) / 1000; }

function pointer(event) {
  const box = $("editor-overlay").getBoundingClientRect();
  return [round((event.clientX - box.left) / box.width), round((event.clientY - box.top) / box.height)];
}

async function openEditor(id) {
  const rules = await getJson(`/cameras/${encodeURIComponent(id)}/rules`);
  editor.camera = id;
  editor.rules = { zones: structuredClone(rules.zones), lines: structuredClone(rules.lines) };
  editor.mode = null;
  editor.draft = [];
  $("editor-camera").textContent = id;
  $("apply").hidden = !rules.writable;
  $("validate").disabled = !rules.editable;
  $("yaml").textContent = "";
  setStatus(rules.editable ? "" : "this daemon runs without a config file", !rules.editable);
  const image = $("editor-image");
  image.onload = redrawEditor;
  image.src = `/cameras/${encodeURIComponent(id)}/latest.jpg?t=${Date.now()}`;
  $("editor").showModal();
  redrawEditor();
}

function redrawEditor() {
  drawRules($("editor-overlay"), $("editor-image"), editor.rules, editor);
  $("finish-shape").disabled = !(editor.mode === "zone" && editor.draft.length >= 3);
  $("editor-hint").textContent = editor.mode === "zone" ? "click the corners, then Finish zone"
    : editor.mode === "line" ? "click the line's two ends" : "drag a corner to move it";
  renderShapes();
}

function nextName(kind) {
  const taken = new Set([...editor.rules.zones, ...editor.rules.lines].map((s) => s.name));
  let n = 1;
  while (taken.has(`${kind}${n}`)) n += 1;
  return `${kind}${n}`;
}

function field(label, value, onChange, type = "text") {
  const input = el("input", { type, value: value ?? "", "aria-label": label, placeholder: label });
  if (type === "number") { input.min = "0"; input.step = "any"; }
  input.addEventListener("change", () => onChange(input.value));
  return el("label", {}, `${label} `, input);
}

function renderShapes() {
  const list = $("shapes");
  list.replaceChildren();
  editor.rules.zones.forEach((zone, index) => {
    const remove = el("button", { type: "button", class: "small", text: "remove" });
    remove.addEventListener("click", () => { editor.rules.zones.splice(index, 1); redrawEditor(); });
    list.append(el("li", { class: "shape-zone" }, el("b", { text: "zone" }),
      field("name", zone.name, (v) => { zone.name = v; redrawEditor(); }),
      field("loiter_s", zone.loiter_s, (v) => {
        if (v === "") delete zone.loiter_s; else zone.loiter_s = Number(v);
        redrawEditor();
      }, "number"), remove));
  });
  editor.rules.lines.forEach((line, index) => {
    const remove = el("button", { type: "button", class: "small", text: "remove" });
    remove.addEventListener("click", () => { editor.rules.lines.splice(index, 1); redrawEditor(); });
    const direction = (key) => (v) => { if (v === "") delete line[key]; else line[key] = v; };
    list.append(el("li", { class: "shape-line" }, el("b", { text: "line" }),
      field("name", line.name, (v) => { line.name = v; redrawEditor(); }),
      field("a_to_b", line.a_to_b, direction("a_to_b")), field("b_to_a", line.b_to_a, direction("b_to_a")),
      remove));
  });
}

function setStatus(text, bad = false) {
  const status = $("editor-status");
  status.textContent = text;
  status.className = bad ? "bad" : "";
}

async function submitRules(path) {
  setStatus("checking…");
  const body = JSON.stringify({ camera: editor.camera, zones: editor.rules.zones, lines: editor.rules.lines });
  const reply = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body,
    credentials: "same-origin" });
  const result = await reply.json().catch(() => ({ error: `HTTP ${reply.status}` }));
  if (reply.ok) {
    $("yaml").textContent = result.yaml;
    setStatus(result.applied ? "applied: the daemon reloads its config" : "valid");
    if (result.applied) setTimeout(() => loadRules(editor.camera), 1500);
  } else {
    setStatus(result.error || `HTTP ${reply.status}`, true);
  }
}

function setUpEditor() {
  const overlay = $("editor-overlay");
  $("add-zone").addEventListener("click", () => { editor.mode = "zone"; editor.draft = []; redrawEditor(); });
  $("add-line").addEventListener("click", () => { editor.mode = "line"; editor.draft = []; redrawEditor(); });
  $("finish-shape").addEventListener("click", () => {
    editor.rules.zones.push({ name: nextName("zone"), polygon: editor.draft });
    editor.mode = null;
    editor.draft = [];
    redrawEditor();
  });
  overlay.addEventListener("pointerdown", (event) => {
    const path = event.target.getAttribute && event.target.getAttribute("data-path");
    if (path && !editor.mode) {
      editor.dragging = path.split(".");
      overlay.setPointerCapture(event.pointerId);
      return;
    }
    if (!editor.mode) return;
    editor.draft.push(pointer(event));
    if (editor.mode === "line" && editor.draft.length === 2) {
      editor.rules.lines.push({ name: nextName("line"), points: editor.draft });
      editor.mode = null;
      editor.draft = [];
    }
    redrawEditor();
  });
  overlay.addEventListener("pointermove", (event) => {
    if (!editor.dragging) return;
    const [kind, index, corner] = editor.dragging;
    const shape = editor.rules[kind][Number(index)];
    (kind === "zones" ? shape.polygon : shape.points)[Number(corner)] = pointer(event);
    drawRules(overlay, $("editor-image"), editor.rules, editor);
  });
  overlay.addEventListener("pointerup", () => { if (editor.dragging) { editor.dragging = null; redrawEditor(); } });
  $("validate").addEventListener("click", () => submitRules("/config/rules/validate"));
  $("apply").addEventListener("click", () => submitRules("/config/rules/apply"));
}

// -- the live event feed ----------------------------------------------------------------------------

function describe(event) {
  if (event.type === "caption") return `${event.label}: ${event.text}`;
  const parts = [event.label];
  if (event.rule) parts.push(event.rule);
  if (event.direction_name || event.direction) parts.push(event.direction_name || event.direction);
  if (event.confidence !== undefined) parts.push(format(event.confidence, 2));
  return parts.join(" · ");
}

function applyFilters(item) {
  const camera = $("filter-camera").value;
  const type = $("filter-type").value;
  item.hidden = (camera && item.dataset.camera !== camera) || (type && item.dataset.type !== type);
}

// The server holds the request until the snapshot writer has stored the JPEG (a moment after the event).
function thumbnail(event) {
  const image = el("img", { alt: "snapshot", src: `/events/${encodeURIComponent(event.event_id)}/snapshot.jpg` });
  image.addEventListener("error", () => image.remove());
  return image;
}

function addToFeed(event) {
  const when = new Date(typeof event.ts === "number" ? event.ts * 1000 : event.ts || Date.now()).toLocaleTimeString();
  const item = el("li", { "data-camera": event.camera, "data-type": event.type, "data-event-id": event.event_id });
  if (event.snapshot) item.append(thumbnail(event));
  item.append(el("div", {}, el("span", { class: "type", text: event.type }), " ",
    el("span", { class: "camera-name", text: event.camera }), " ", el("span", { class: "when", text: when }),
    el("div", { class: "what", text: describe(event) })));
  applyFilters(item);
  const feed = $("feed");
  feed.prepend(item);
  while (feed.children.length > FEED_KEPT) feed.lastElementChild.remove();
}

function openFeed() {
  const source = new EventSource("/events/stream");
  source.addEventListener("message", (message) => addToFeed(JSON.parse(message.data)));
}

function setUpFilters() {
  for (const id of ["filter-camera", "filter-type"]) {
    $(id).addEventListener("change", () => { for (const item of $("feed").children) applyFilters(item); });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpFilters();
  setUpEditor();
  pollCameras();
  openFeed();
});
