// samestyle search page: plain JS over the JSON API (no build step). All product text goes in with
// textContent, never innerHTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  info: null,
  query: null, // {kind: "text"|"image"|"similar"|"compose", text, file, productId, product}
  requestId: null,
  sessionId: null,
  hits: [],
  liked: [],
  disliked: [],
  dupOffset: 0,
};

function randomId(prefix) {
  const a = new Uint8Array(8);
  crypto.getRandomValues(a);
  return prefix + Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}
const visitorId = localStorage.getItem("samestyle.visitor") || randomId("v");
localStorage.setItem("samestyle.visitor", visitorId);
const visitId = sessionStorage.getItem("samestyle.visit") || randomId("s");
sessionStorage.setItem("samestyle.visit", visitId);

async function api(path, options = {}) {
  const headers = Object.assign({ "X-Visitor-Id": visitorId, "X-Session-Id": visitId }, options.headers || {});
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  const body = await resp.json().catch(() => ({ error: resp.statusText }));
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}
const postJson = (path, data) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) });

function filters() {
  const out = [];
  const cat = $("#f-category").value;
  if (cat) out.push("category=" + cat);
  const colour = $("#f-colour").value.trim();
  if (colour) out.push("attr=baseColour:" + colour);
  const lo = $("#f-pmin").value, hi = $("#f-pmax").value;
  if (lo || hi) out.push("price=" + lo + ".." + hi);
  return out;
}
const k = () => parseInt($("#f-k").value, 10);
const features = () => (state.info ? state.info.features : {});

function setStatus(text, isError = false) {
  const el = $("#status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function chip(text, cls = "chip") {
  const span = document.createElement("span");
  span.className = cls;
  span.textContent = text;
  return span;
}

function renderHits(resp) {
  state.requestId = resp.request_id;
  state.hits = resp.hits;
  if (resp.session_id) state.sessionId = resp.session_id;
  $("#variant").textContent = "variant " + resp.variant;
  const grid = $("#results");
  grid.replaceChildren();
  const tpl = $("#card-tpl");
  for (const hit of resp.hits) {
    const card = tpl.content.firstElementChild.cloneNode(true);
    const p = hit.product;
    card.dataset.id = hit.id;
    const img = card.querySelector("img");
    if (p.image_url) img.src = p.image_url;
    else card.querySelector(".thumb").classList.add("noimg"), img.remove();
    img.alt = p.title;
    const title = card.querySelector(".title");
    title.textContent = p.title;
    title.href = "/api/product?id=" + encodeURIComponent(hit.id);
    card.querySelector(".cat").textContent = p.category.join(" › ");
    const scores = card.querySelector(".scores");
    for (const [name, value] of Object.entries(hit.scores)) scores.append(chip(name + " " + value.toFixed(3)));
    const shared = card.querySelector(".shared");
    for (const [name, value] of Object.entries(hit.shared || {})) shared.append(chip(name + ": " + value, "chip shared"));
    if (!features().sessions) card.querySelectorAll(".like, .dislike").forEach((b) => b.remove());
    grid.append(card);
  }
  const n = resp.hits.length;
  setStatus(`${n} result${n === 1 ? "" : "s"} · ${resp.kind} · ${resp.took_ms.toFixed(0)} ms`);
}

function showAnchor(query) {
  const box = $("#anchor");
  box.hidden = !(query && (query.kind === "similar" || query.kind === "image" || query.kind === "compose"));
  if (box.hidden) return;
  const img = $("#anchor-img");
  if (query.file) img.src = URL.createObjectURL(query.file);
  else if (query.product && query.product.image_url) img.src = query.product.image_url;
  else img.removeAttribute("src");
  $("#anchor-title").textContent = query.product ? "Like: " + query.product.title : "Like your photo";
  $("#modifier").disabled = !features().compose;
  $("#compose-go").disabled = !features().compose;
}

function renderLiked() {
  const box = $("#liked");
  box.querySelectorAll("img").forEach((i) => i.remove());
  box.hidden = state.liked.length === 0;
  for (const item of state.liked) {
    const img = document.createElement("img");
    img.title = item.title;
    if (item.image_url) img.src = item.image_url;
    box.append(img);
  }
}

async function run(query) {
  state.query = query;
  state.sessionId = null;
  state.liked = [];
  state.disliked = [];
  renderLiked();
  showAnchor(query);
  setStatus("searching…");
  try {
    let resp;
    const useSession = features().sessions;
    if (query.kind === "text") {
      if (useSession) resp = await postJson("/api/sessions", { text: query.text, k: k(), filters: filters() });
      else {
        const params = new URLSearchParams({ text: query.text, k: k() });
        filters().forEach((f) => params.append("filter", f));
        resp = await api("/api/search?" + params);
      }
    } else if (query.kind === "image") {
      const form = new FormData();
      form.append("image", query.file);
      form.append("k", k());
      filters().forEach((f) => form.append("filter", f));
      resp = await api(useSession ? "/api/sessions/image" : "/api/search/image", { method: "POST", body: form });
    } else if (query.kind === "similar") {
      const other = $("#f-other").checked && features().other_suppliers;
      if (useSession && !other) {
        resp = await postJson("/api/sessions", { product_id: query.productId, k: k(), filters: filters() });
      } else {
        const params = new URLSearchParams({ id: query.productId, k: k(), other_suppliers: other });
        filters().forEach((f) => params.append("filter", f));
        resp = await api("/api/similar?" + params);
      }
    } else if (query.kind === "compose") {
      if (query.file) {
        const form = new FormData();
        form.append("image", query.file);
        form.append("modifier", query.text);
        form.append("k", k());
        filters().forEach((f) => form.append("filter", f));
        resp = await api("/api/search/compose/image", { method: "POST", body: form });
      } else {
        resp = await postJson("/api/search/compose", {
          product_id: query.productId, modifier: query.text, k: k(), filters: filters(),
        });
      }
    }
    renderHits(resp);
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function feedback(hit, liked) {
  if (!features().sessions) return;
  (liked ? state.liked : state.disliked).push(liked ? hit.product : hit.id);
  if (liked) renderLiked();
  setStatus("refining…");
  try {
    if (!state.sessionId) {
      const start = await postJson("/api/sessions", { product_id: hit.id, k: k(), filters: filters() });
      state.sessionId = start.session_id;
    }
    const resp = await postJson(`/api/sessions/${encodeURIComponent(state.sessionId)}/refine`, {
      liked: state.liked.map((p) => p.id), disliked: state.disliked, k: k(), filters: filters(),
    });
    renderHits(resp);
  } catch (err) {
    setStatus(err.message, true);
  }
}

function logClick(hit) {
  postJson("/api/events", {
    event: "click", product_id: hit.id, visitor_id: visitorId, session_id: visitId, request_id: state.requestId,
  }).catch(() => {});
}

$("#results").addEventListener("click", (ev) => {
  const card = ev.target.closest(".card");
  if (!card) return;
  const hit = state.hits.find((h) => h.id === card.dataset.id);
  if (!hit) return;
  if (ev.target.closest(".more")) {
    logClick(hit);
    run({ kind: "similar", productId: hit.id, product: hit.product });
  } else if (ev.target.closest(".like")) {
    logClick(hit);
    card.classList.add("liked-card");
    feedback(hit, true);
  } else if (ev.target.closest(".dislike")) {
    feedback(hit, false);
  } else if (ev.target.closest(".title, img")) {
    ev.preventDefault();
    logClick(hit);
    card.classList.add("liked-card");
  }
});

$("#search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("#q").value.trim();
  if (text) run({ kind: "text", text });
});

$("#compose-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const modifier = $("#modifier").value.trim();
  const q = state.query;
  if (!modifier || !q) return;
  run({ kind: "compose", text: modifier, file: q.file, productId: q.productId, product: q.product });
});

$("#anchor-clear").addEventListener("click", () => {
  $("#anchor").hidden = true;
  state.query = null;
});

function useFile(file) {
  if (!file) return;
  $("#drop-text").textContent = file.name.slice(0, 24);
  run({ kind: "image", file });
}
$("#file").addEventListener("change", (ev) => useFile(ev.target.files[0]));
const drop = $("#drop");
["dragenter", "dragover"].forEach((t) =>
  drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) =>
  drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (ev) => useFile(ev.dataTransfer.files[0]));

// ---- duplicates view ------------------------------------------------------------------------
async function loadDuplicates(reset) {
  if (reset) { state.dupOffset = 0; $("#dup-groups").replaceChildren(); }
  const status = $("#dup-status");
  if (!features().duplicates) { status.textContent = "Duplicate detection is not available in this build."; return; }
  status.textContent = "finding duplicates…";
  try {
    const resp = await api(`/api/duplicates?offset=${state.dupOffset}&limit=20`);
    for (const group of resp.groups) {
      const box = document.createElement("div");
      box.className = "group";
      const members = document.createElement("div");
      members.className = "members";
      for (const p of group.products) {
        const fig = document.createElement("figure");
        const img = document.createElement("img");
        if (p.image_url) img.src = p.image_url;
        img.alt = p.title;
        const cap = document.createElement("figcaption");
        cap.textContent = `${p.title} (${p.id}${p.supplier_id ? ", " + p.supplier_id : ""})`;
        fig.append(img, cap);
        members.append(fig);
      }
      box.append(members);
      $("#dup-groups").append(box);
    }
    state.dupOffset += resp.groups.length;
    status.textContent = `${resp.total_groups} groups`;
    $("#dup-more").hidden = state.dupOffset >= resp.total_groups;
  } catch (err) {
    status.textContent = err.message;
  }
}
$("#dup-more").addEventListener("click", () => loadDuplicates(false));

document.querySelectorAll(".tab").forEach((tab) =>
  tab.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
    const view = tab.dataset.view;
    $("#view-search").hidden = view !== "search";
    $("#view-duplicates").hidden = view !== "duplicates";
    if (view === "duplicates" && state.dupOffset === 0) loadDuplicates(true);
  }));

async function init() {
  try {
    state.info = await api("/api/info");
  } catch (err) {
    setStatus("cannot reach the service: " + err.message, true);
    return;
  }
  const select = $("#f-category");
  for (const cat of state.info.categories) {
    const opt = document.createElement("option");
    opt.value = cat;
    opt.textContent = cat.replace("/", " › ");
    select.append(opt);
  }
  $("#f-other-wrap").hidden = !features().other_suppliers;
  $("#tab-duplicates").hidden = !features().duplicates;
  document.body.dataset.ready = "1";
}
init();
