// protonb session table: a thin view over rows kept by the kernel.
// The kernel sends the whole list once ("rows") and then only the rows that changed
// ("upsert") or went away ("remove"). Only one page of rows is ever in the DOM, and every
// participant value is put in with textContent, never as HTML.

const COLUMNS = [
  ["label", "Label"],
  ["short", "Session"],
  ["page", "Current page"],
  ["active", "Last active"],
  ["answers", "Answers"],
];

function ago(seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

function element(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function render({ model, el }) {
  const rows = new Map();
  let skew = 0;
  let page = 0;
  let query = "";
  let field = "label";
  let answerMatches = null;
  let scheduled = false;

  el.classList.add("protonb-table");
  const toolbar = element("div", { class: "protonb-toolbar" });
  const kind = element("select", { "aria-label": "Filter by" });
  for (const [value, text] of [["label", "Label or id"], ["page", "Current page"], ["answer", "Answer"]]) {
    kind.appendChild(element("option", { value }, text));
  }
  const search = element("input", { type: "search", placeholder: "Filter…", "aria-label": "Filter sessions" });
  const count = element("span", { class: "protonb-count", "aria-live": "polite" });
  const prev = element("button", { type: "button", "aria-label": "Previous page" }, "‹");
  const next = element("button", { type: "button", "aria-label": "Next page" }, "›");
  const pageInfo = element("span", { class: "protonb-page" });
  toolbar.append(kind, search, count, prev, pageInfo, next);

  const table = element("table");
  const head = element("thead");
  const headRow = element("tr");
  for (const [, title] of COLUMNS) headRow.appendChild(element("th", { scope: "col" }, title));
  head.appendChild(headRow);
  const body = element("tbody");
  table.append(head, body);
  const empty = element("p", { class: "protonb-empty" }, "No sessions yet: open the prototype's link to start one.");
  el.append(toolbar, table, empty);

  function now() {
    return Date.now() / 1000 - skew;
  }

  function visibleRows() {
    let list = Array.from(rows.values());
    const needle = query.trim().toLowerCase();
    if (needle) {
      if (field === "answer") {
        list = answerMatches ? list.filter((row) => answerMatches.has(row.id)) : [];
      } else if (field === "page") {
        list = list.filter((row) => (row.page || "").toLowerCase().includes(needle));
      } else {
        list = list.filter(
          (row) => (row.label || "").toLowerCase().includes(needle) || row.id.toLowerCase().startsWith(needle)
        );
      }
    }
    list.sort((a, b) => b.active - a.active || (a.id < b.id ? -1 : 1));
    return list;
  }

  function draw() {
    scheduled = false;
    const size = model.get("page_size") || 50;
    const list = visibleRows();
    const pages = Math.max(1, Math.ceil(list.length / size));
    if (page >= pages) page = pages - 1;
    const selected = model.get("selected");
    const fragment = document.createDocumentFragment();
    for (const row of list.slice(page * size, page * size + size)) {
      const tr = element("tr", { "data-id": row.id, tabindex: "0" });
      if (row.id === selected) tr.classList.add("protonb-selected");
      tr.appendChild(element("td", { class: "protonb-label" }, row.label || "–"));
      tr.appendChild(element("td", { class: "protonb-short" }, row.id.slice(0, 8)));
      tr.appendChild(element("td", { class: "protonb-current" }, row.page || "–"));
      const age = element("td", { class: "protonb-age", "data-active": String(row.active) }, ago(now() - row.active));
      tr.appendChild(age);
      tr.appendChild(element("td", { class: "protonb-answers" }, String(row.answers)));
      fragment.appendChild(tr);
    }
    body.replaceChildren(fragment);
    count.textContent = `${list.length} of ${rows.size} session${rows.size === 1 ? "" : "s"}`;
    pageInfo.textContent = `page ${page + 1} of ${pages}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    empty.style.display = rows.size ? "none" : "";
    table.style.display = rows.size ? "" : "none";
  }

  function redraw() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  }

  function choose(target) {
    const tr = target.closest("tr[data-id]");
    if (!tr) return;
    model.set("selected", tr.getAttribute("data-id"));
    model.save_changes();
    redraw();
  }

  body.addEventListener("click", (event) => choose(event.target));
  body.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      choose(event.target);
    }
  });
  prev.addEventListener("click", () => { page = Math.max(0, page - 1); redraw(); });
  next.addEventListener("click", () => { page += 1; redraw(); });
  function refilter() {
    query = search.value;
    field = kind.value;
    page = 0;
    if (field === "answer" && query.trim()) {
      answerMatches = null;
      model.send({ type: "search", q: query });
    }
    redraw();
  }
  search.addEventListener("input", refilter);
  kind.addEventListener("change", refilter);

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.now === "number") skew = Date.now() / 1000 - msg.now;
    if (msg.type === "rows") {
      rows.clear();
      for (const row of msg.rows) rows.set(row.id, row);
    } else if (msg.type === "upsert") {
      for (const row of msg.rows) rows.set(row.id, row);
    } else if (msg.type === "remove") {
      for (const id of msg.ids) rows.delete(id);
    } else if (msg.type === "clear") {
      rows.clear();
    } else if (msg.type === "matches") {
      if (msg.q === query) answerMatches = new Set(msg.ids);
    }
    redraw();
  }
  model.on("msg:custom", onMessage);
  model.on("change:selected", redraw);
  model.on("change:page_size", redraw);

  const timer = setInterval(() => {
    for (const cell of body.querySelectorAll("td.protonb-age")) {
      cell.textContent = ago(now() - Number(cell.getAttribute("data-active")));
    }
  }, 1000);

  draw();
  model.send({ type: "ready" });
  return () => {
    clearInterval(timer);
    model.off("msg:custom", onMessage);
    model.off("change:selected", redraw);
    model.off("change:page_size", redraw);
  };
}

export default { render };
