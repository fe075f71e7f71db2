// featurestore dashboard, catalogue page: every feature of the recorded repository, what it
// means, its numbers and who uses it, from /dashboard/api/catalogue. Loaded after
// dashboard.js (its helpers el, table, num, chart, section, main and PAGES are shared).
"use strict";

// The server's rule (featurestore.catalogue.matches): every word in the name, table,
// description, owner or a tag, case-insensitively.
function catalogueMatches(f, search) {
  const words = (search || "").toLowerCase().split(/\s+/).filter(Boolean);
  const text = [f.name, f.table, f.description || "", f.owner || "", ...f.tags,
                f.table_description || ""].join(" ").toLowerCase();
  return words.every((w) => text.includes(w));
}

function pct(share) { return share === null || share === undefined ? "-" : `${(100 * share).toFixed(1)}%`; }

function short(x) {
  if (x === null || x === undefined) return "-";
  return Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/\.?0+$/, "");
}

function tagList(tags) {
  return el("span", { class: "tags" }, ...tags.map((t) => el("span", { class: "tag" }, t)));
}

function featureCard(f) {
  const lin = f.lineage;
  const numbers = f.type === null ? "no data yet (the table has no as-of partition)"
    : f.top !== null ? `top values: ${f.top.map((t) => `${t.value} (${t.count})`).join(", ") || "-"}`
    : `min ${short(f.min)} · mean ${short(f.mean)} · max ${short(f.max)}`;
  const models = lin.models.length ? el("ul", { class: "used" }, ...lin.models.map((m) => el("li", {},
      el("a", { href: `/dashboard/catalogue?model=${encodeURIComponent(m.model)}&version=${encodeURIComponent(m.version)}` },
         `${m.model} ${m.version}`), m.production ? " ★ production" : "",
      el("span", { "data-testid": `importance-${f.id}-${m.model}-${m.version}` },
         m.importance_share === null ? "" : ` importance ${pct(m.importance_share)}`),
      m.rank === null ? "" : ` (rank ${m.rank} of ${m.of})`)))
    : el("span", { class: "note" }, "no model version yet");
  const sets = lin.training_sets.length ? el("ul", { class: "used" }, ...lin.training_sets.map((t) =>
      el("li", {}, t.name, t.url ? el("code", {}, ` ${t.url}`) : "",
         t.used_by.length ? ` → ${t.used_by.join(", ")}` : "")))
    : el("span", { class: "note" }, "none recorded");
  return el("section", { class: "feature", "data-feature": f.id, id: `feature-${f.id}` },
    el("h3", {}, el("span", { "data-testid": `name-${f.id}` }, f.name), " ",
       el("span", { class: "note" }, `${f.table} · ${f.type ?? "no type yet"}`)),
    el("p", { class: "definition", "data-testid": `definition-${f.id}` }, f.definition),
    f.description ? el("p", { "data-testid": `description-${f.id}` }, f.description) : "",
    el("p", { class: "meta" }, "owner: ", el("span", { "data-testid": `owner-${f.id}` }, f.owner ?? "-"),
       " · tags: ", f.tags.length ? tagList(f.tags) : "-"),
    el("p", { class: "meta" }, `latest as-of ${f.as_of ?? "none"}: ${f.rows} rows · null `,
       el("span", { "data-testid": `null-${f.id}` }, pct(f.null_share)), ` · ${numbers}`,
       f.freshness.lag_days === null ? "" : ` · ${f.freshness.lag_days} day(s) behind its source`,
       f.freshness.last_written ? ` · written ${f.freshness.last_written}` : ""),
    el("div", { class: "lineage" },
       el("span", { class: "step" }, lin.source === lin.source_kind ? `source ${lin.source} (${lin.source_table})`
          : `source ${lin.source} (${lin.source_kind}: ${lin.source_table})`), " → ",
       el("span", { class: "step" }, `table ${lin.table}`), " → ",
       el("span", { class: "step", "data-testid": `sets-${f.id}` }, `${lin.training_sets.length} training set(s)`), " → ",
       el("span", { class: "step", "data-testid": `models-${f.id}` }, `${lin.models.length} model version(s)`)),
    el("details", {}, el("summary", {}, "training sets and model versions"),
       el("p", {}, "model versions:"), models, el("p", {}, "training sets:"), sets));
}

async function cataloguePage() {
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const k of ["model", "version"]) if (params.get(k)) query.set(k, params.get(k));
  const data = await getJSON(`/dashboard/api/catalogue?${query}`);
  if (params.get("model")) {
    const v = data.models[0];
    section(`Features of ${params.get("model")} ${params.get("version") ?? "(every version)"}`);
    main().append(el("p", {}, el("a", { href: "/dashboard/catalogue" }, "show every feature"),
      v && v.unknown_features.length ? ` · not in the repository: ${v.unknown_features.join(", ")}` : ""));
    const ranked = data.features.map((f) => ({ f, m: f.lineage.models.find((m) => m.model === v.model && m.version === v.version) }))
      .filter((x) => x.m && x.m.importance_share !== null).sort((a, b) => a.m.rank - b.m.rank);
    if (ranked.length) {
      chart("importance", [{ type: "bar", orientation: "h", y: ranked.map((x) => x.f.id),
                             x: ranked.map((x) => x.m.importance_share), marker: { color: BLUE } }],
            { title: { text: `${v.model} ${v.version}: share of gain importance per feature` },
              yaxis: { autorange: "reversed", automargin: true }, xaxis: { tickformat: ".0%" },
              height: Math.max(300, 24 * ranked.length + 120) });
    }
  }
  section("Tables");
  main().append(table(["table", "source", "key", "description", "owner", "tags", "latest as-of", "rows", "lag (days)"],
    data.tables.map((t) => el("tr", { "data-table": t.table }, el("td", {}, t.table),
      el("td", {}, `${t.source} (${t.source_table})`), el("td", {}, t.keys.join(", ")),
      el("td", {}, t.description || "-"), el("td", {}, t.owner ?? "-"), el("td", {}, t.tags.length ? tagList(t.tags) : "-"),
      el("td", {}, t.latest_as_of ?? "none"), num(t.rows), num(t.lag_days)))));
  section("Features");
  const search = el("input", { type: "search", id: "catalogue-search", placeholder: "search names, descriptions, tags",
                               value: params.get("search") || "", size: 40, "aria-label": "search features" });
  const tables = el("select", { id: "catalogue-table", "aria-label": "table" }, el("option", { value: "" }, "every table"),
    ...data.tables.map((t) => el("option", t.table === params.get("table") ? { selected: "", value: t.table } : { value: t.table }, t.table)));
  const count = el("span", { "data-testid": "catalogue-count", class: "note" });
  main().append(el("div", { class: "search" }, search, " ", tables, " ", count));
  const list = el("div", { id: "catalogue-features" });
  main().append(list);
  let features = data.features;
  if (params.get("model") && data.models.length === 1) {  // one version: most important first
    const v = data.models[0];
    const rank = (f) => f.lineage.models.find((m) => m.model === v.model && m.version === v.version)?.rank ?? Infinity;
    features = [...features].sort((a, b) => rank(a) - rank(b));
  }
  const cards = features.map((f) => [f, featureCard(f)]);
  list.append(...cards.map(([, c]) => c));
  const apply = () => {
    let shown = 0;
    for (const [f, card] of cards) {
      const ok = catalogueMatches(f, search.value) && (!tables.value || f.table === tables.value);
      card.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    count.textContent = `${shown} of ${cards.length} features`;
    const url = new URL(location.href);
    for (const [k, v] of [["search", search.value.trim()], ["table", tables.value]]) {
      if (v) url.searchParams.set(k, v); else url.searchParams.delete(k);
    }
    history.replaceState(null, "", url);
  };
  search.addEventListener("input", apply);
  tables.addEventListener("change", apply);
  apply();
}

PAGES.catalogue = cataloguePage;
