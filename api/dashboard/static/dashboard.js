// featurestore dashboard: draws each page from the JSON under /dashboard/api (plotly.js, served
// from the installed plotly package). Every number shown comes from that JSON.
"use strict";

const CONFIG = { displaylogo: false, responsive: true, staticPlot: false };
const RED = "#c0392b", BLUE = "#2e86c1", GREEN = "#1e8449";

async function getJSON(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function table(headers, rows) {
  const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
}

function num(value, testid) {
  return el("td", { class: "num", "data-testid": testid }, value ?? "-");
}

// Axes grow the margins to fit their tick labels and titles (rotated dates, long feature
// names) instead of letting the SVG cut them off; the margins below are the minimum.
function fitted(layout) {
  const out = Object.assign({ margin: { t: 40, r: 20, b: 60, l: 60 } }, layout);
  for (const axis of ["xaxis", "yaxis"]) out[axis] = Object.assign({ automargin: true }, layout[axis]);
  return out;
}

function hasPoints(trace) {
  const values = trace.orientation === "h" ? trace.x : trace.y;
  return (values || []).some((v) => v !== null && v !== undefined);
}

// A chart with nothing to draw is a "no data yet" note in its place, not empty axes (plotly's
// default -1..4 range reads as if there were numbers).
function chart(id, traces, layout, parent, empty) {
  if (!traces.some(hasPoints)) {
    const note = el("p", { id, class: "chart empty note", "data-testid": `no-data-${id}` },
                    `No data yet: ${empty || "nothing to draw"}.`);
    (parent || main()).append(note);
    return note;
  }
  const div = el("div", { id, class: "chart" });
  (parent || main()).append(div);
  // small multiples: no tool bar over their titles
  const config = parent ? Object.assign({}, CONFIG, { displayModeBar: false }) : CONFIG;
  Plotly.newPlot(div, traces, fitted(layout), config);
  return div;
}

// A log axis only when the positive values span at least a decade (rows ingested beside a
// few quarantined ones, so both stay visible); over a narrow spread plotly's log autorange
// stretches a 3% difference across the chart, so those get a linear axis from zero.
const LOG_SPREAD = 10;
function valueAxis(values, title) {
  const positive = values.filter((v) => v > 0);
  const log = positive.length > 0 && Math.max(...positive) / Math.min(...positive) >= LOG_SPREAD;
  return log ? { type: "log", title: { text: `${title} (log)` } }
             : { type: "linear", rangemode: "tozero", title: { text: title } };
}

function round4(x) { return x === null || x === undefined ? null : +x.toFixed(4); }

function main() { return document.getElementById("main"); }

function section(title) { const h = el("h2", {}, title); main().append(h); return h; }

// -- overview ------------------------------------------------------------------------------
async function overview() {
  const data = await getJSON("/dashboard/api/overview");
  section("Freshness");
  main().append(table(
    ["table", "source", "latest as-of", "source newest", "lag (days)", "as-ofs",
     "rows (latest)", "status"],
    data.tables.map((t) => {
      const latest = t.rows_per_as_of.length ? t.rows_per_as_of.at(-1).rows : null;
      return el("tr", { "data-table": t.table }, el("td", {}, t.table), el("td", {}, t.source),
        el("td", { "data-testid": `latest-${t.table}` }, t.latest_as_of ?? "none"),
        el("td", {}, t.source_latest ?? "none"), num(t.lag_days, `lag-${t.table}`),
        num(t.as_of_count, `asofs-${t.table}`), num(latest, `rows-${t.table}`),
        el("td", { class: t.behind ? "behind" : t.latest_as_of ? "ok" : "note" },
           t.behind ? "● behind its source" : t.latest_as_of ? "up to date" : "no data yet"));
    })));
  // tables whose source has delivered something or that have an as-of: the others have no lag
  const seen = data.tables.filter((t) => t.latest_as_of || t.source_latest);
  chart("freshness", [{
    type: "bar", x: seen.map((t) => t.table), y: seen.map((t) => t.lag_days ?? 0),
    marker: { color: seen.map((t) => (t.behind ? RED : GREEN)) }, name: "lag (days)",
  }], { title: { text: "Days behind the newest source data (red: behind)" },
        yaxis: { title: { text: "days" }, rangemode: "tozero" } },
  null, "no source has delivered data and no table has an as-of (run featurestore ingest)");
  chart("rows-per-as-of", data.tables.filter((t) => t.rows_per_as_of.length).map((t) => ({
    type: "scatter", mode: "lines+markers", name: t.table,
    x: t.rows_per_as_of.map((r) => r.as_of), y: t.rows_per_as_of.map((r) => r.rows),
  })), { title: { text: "Rows per as-of" }, yaxis: { title: { text: "rows" } },
         xaxis: { type: "category" } }, null, "no table has an as-of partition");
}

// -- ingestion -----------------------------------------------------------------------------
async function ingestion() {
  const data = await getJSON("/dashboard/api/ingestion");
  const days = data.days, x = days.map((d) => d.drop);
  section("Rows per drop");
  const rows = [
    { type: "bar", name: "ingested", x, y: days.map((d) => d.rows_ingested), marker: { color: BLUE } },
    ...data.reasons.map((r) => ({ type: "bar", name: `quarantined: ${r}`, x,
                                  y: days.map((d) => d.quarantined_by_reason[r] || 0) })),
  ];
  chart("rows-ingested", rows, { title: { text: "Rows ingested and quarantined by reason" },
        barmode: "group", xaxis: { type: "category" },
        yaxis: valueAxis(rows.flatMap((t) => t.y), "rows") },
        null, "no web-log drop has been ingested (run featurestore ingest)");
  chart("files", [
    { type: "bar", name: "ingested", x, y: days.map((d) => d.files_ingested), marker: { color: GREEN } },
    { type: "bar", name: "duplicate", x, y: days.map((d) => d.files_duplicate) },
    { type: "bar", name: "missing", x, y: days.map((d) => d.files_missing), marker: { color: RED } },
    { type: "bar", name: "placeholder", x, y: days.map((d) => d.files_placeholder) },
    { type: "bar", name: "changed (refused)", x, y: days.map((d) => d.files_changed) },
    { type: "bar", name: "rejected", x, y: days.map((d) => d.files_rejected), marker: { color: "#7f1d1d" } },
  ], { title: { text: "Files per drop" }, barmode: "stack", xaxis: { type: "category" } },
  null, "no web-log drop has been ingested");
  section("Quarantine reasons");
  main().append(el("p", { "data-testid": "reasons" },
                   data.reasons.length ? data.reasons.join(", ") : "no quarantined rows"));
  main().append(table(
    ["drop", "files", "rows ingested", "rows quarantined", "by reason", "held back",
     "files rejected", "complete", "quarantined rows"],
    days.map((d) => el("tr", {}, el("td", {}, d.drop), num(d.files_ingested, `files-${d.drop}`),
      num(d.rows_ingested, `ingested-${d.drop}`), num(d.rows_quarantined, `quarantined-${d.drop}`),
      el("td", {}, Object.entries(d.quarantined_by_reason).map(([k, v]) => `${k}: ${v}`).join(", ")),
      num(d.files_missing + d.files_placeholder + d.files_changed, `held-${d.drop}`),
      el("td", { "data-testid": `rejected-${d.drop}`, class: d.files_rejected ? "behind" : "" },
         d.rejected.map((r) => `${r.file}: ${r.reason}`).join("; ") || "0"),
      el("td", { class: d.complete ? "ok" : "behind" }, d.complete ? "yes" : "no"),
      el("td", {}, d.quarantine_location ? el("code", {}, d.quarantine_location) : "-")))));
  main().append(el("p", { class: "note" }, `Quarantined rows (with file, line and reason) are parquet under ${data.quarantine_root}.`));
  if (data.declared_columns.length) {  // SPEC §3a: bad values are stored as null, rows land
    section("Declared columns");
    chart("column-bad-values", data.declared_columns.map((c) => ({
      type: "bar", name: c, x, y: days.map((d) => d.column_bad_values[c] || 0) })),
      { title: { text: "Values stored as null (not of the column's type)" }, barmode: "group",
        xaxis: { type: "category" } });
    main().append(table(
      ["drop", ...data.declared_columns.map((c) => `${c}: bad values`), "missing from the header"],
      days.map((d) => el("tr", {}, el("td", {}, d.drop),
        ...data.declared_columns.map((c) => num(d.column_bad_values[c] || 0, `bad-${c}-${d.drop}`)),
        el("td", { "data-testid": `columns-missing-${d.drop}`,
                   class: d.columns_missing.length ? "behind" : "" },
           d.columns_missing.join(", ") || "-")))));
  }
}

// -- features ------------------------------------------------------------------------------
async function features() {
  const params = new URLSearchParams(location.search);
  const tables = (await getJSON("/dashboard/api/tables")).tables;
  const materialized = tables.filter((t) => t.as_of_dates.length);
  const wanted = params.get("table");
  // the table the query names, whether or not it has data; else the first one with data
  const current = wanted ? tables.find((t) => t.table === wanted) : materialized[0];
  const note = (text) => main().append(el("p", { class: "note", "data-testid": "table-note" }, text));
  if (!current && !wanted) {
    note("No data yet: no table has an as-of partition (run featurestore ingest).");
    return;
  }
  const dates = current ? current.as_of_dates : [];
  const asOf = params.get("as_of") || dates.at(-1);
  const form = el("form", { method: "get" },
    el("label", {}, "table ", el("select", { name: "table", id: "table" },
      ...(current ? [] : [el("option", { value: "", selected: "" }, "choose a table")]),
      ...tables.map((t) => el("option", { value: t.table, selected: t === current ? "" : null },
                               t.as_of_dates.length ? t.table : `${t.table} (no data yet)`)))),
    el("label", {}, "as-of ", el("select", { name: "as_of", id: "as_of" },
      ...dates.map((d) => el("option", d === asOf ? { selected: "" } : {}, d)))),
    el("label", {}, "compare with ", el("select", { name: "baseline", id: "baseline" },
      el("option", { value: "" }, "default"),
      ...dates.map((d) => el("option", d === params.get("baseline") ? { selected: "" } : {}, d)))),
    el("button", { type: "submit" }, "show"));
  form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => {
    if (s.id === "table") { form.as_of.value = ""; form.baseline.value = ""; }
    form.submit();
  }));
  main().append(form);
  if (!current) {
    note(`No table '${wanted}' in the feature repository; tables: ${tables.map((t) => t.table).join(", ")}.`);
    return;
  }
  section(current.table).dataset.testid = "features-table";
  if (!dates.length) {
    note(`${current.table} has no as-of partition yet: its source ${current.source} has delivered ` +
         "nothing it is built from (run featurestore ingest).");
    return;
  }
  const q = `as_of=${encodeURIComponent(asOf)}`;
  const profile = await getJSON(`/dashboard/api/features/${encodeURIComponent(current.table)}?${q}`);
  const base = params.get("baseline") ? `&baseline=${encodeURIComponent(params.get("baseline"))}` : "";
  const drift = await getJSON(`/dashboard/api/drift/${encodeURIComponent(current.table)}?${q}${base}`);
  main().append(el("p", {}, "rows: ", el("span", { "data-testid": "profile-rows" }, profile.rows),
                   ` in ${profile.table} as of ${profile.as_of}`));
  section("Null share");
  chart("null-share", [{ type: "bar", x: profile.features.map((f) => f.name),
                         y: profile.features.map((f) => f.null_share), marker: { color: BLUE } }],
        { title: { text: "Share of rows where the feature is null" }, yaxis: { range: [0, 1] } });
  section(drift.baseline ? `Drift against ${drift.baseline} (population stability index)` : "Drift");
  if (drift.baseline) {
    chart("drift", [{ type: "bar", orientation: "h", y: drift.features.map((f) => f.name),
                      x: drift.features.map((f) => f.psi),
                      marker: { color: drift.features.map((f) => (f.psi >= 0.25 ? RED : f.psi >= 0.1 ? "#e67e22" : GREEN)) } }],
          { title: { text: "PSI per feature, largest movers first (0.1 moderate, 0.25 large)" },
            yaxis: { autorange: "reversed", automargin: true } });
    main().append(table(["feature", "PSI"], drift.features.map((f) =>
      el("tr", {}, el("td", {}, f.name), num(f.psi, `psi-${f.name}`)))));
  } else {
    main().append(el("p", { class: "note" }, "Only one as-of: nothing to compare with yet."));
  }
  section("Histograms");
  const grid = el("div", { class: "grid" });
  main().append(grid);
  profile.features.forEach((f) => {
    if (!f.counts.length) {  // nothing to draw: say so instead of an empty chart
      grid.append(el("div", { class: "chart empty", id: `hist-${f.name}` },
                     `${f.name}: every value is null in this as-of`));
      return;
    }
    const mids = f.counts.map((_, i) => (f.edges[i] + f.edges[i + 1]) / 2);
    const widths = f.counts.map((_, i) => f.edges[i + 1] - f.edges[i]);
    chart(`hist-${f.name}`, [{ type: "bar", x: mids, y: f.counts, width: widths, marker: { color: BLUE } }],
          { title: { text: `${f.name} (null ${(100 * f.null_share).toFixed(1)}%)`, font: { size: 13 } },
            margin: { t: 36, r: 10, b: 36, l: 50 }, bargap: 0.05 }, grid);
  });
}

// -- models --------------------------------------------------------------------------------
async function models() {
  const data = await getJSON("/dashboard/api/models");
  if (!data.models.length) main().append(el("p", {}, "No model in the registry yet: run featurestore retrain."));
  for (const m of data.models) {
    section(`${m.name} (production: ${m.production ?? "none"})`);
    const versions = m.versions.filter((v) => !v.damaged);
    const metrics = [...new Set(versions.flatMap((v) => Object.keys(v.metrics)))];
    const traces = metrics.map((k) => ({
      type: "scatter", mode: "lines+markers", name: k, x: versions.map((v) => v.version),
      y: versions.map((v) => v.metrics[k] ?? null),
      marker: { size: versions.map((v) => (v.production ? 16 : v.refused ? 11 : 8)),
                symbol: versions.map((v) => (v.production ? "star" : v.refused ? "x" : "circle")) },
    }));
    chart(`metrics-${m.name}`, traces, {
      title: { text: `${m.name}: held-out metrics per version (star: production, x: refused)` },
      xaxis: { type: "category" },
      annotations: m.production ? [{ x: m.production, y: 1, yref: "paper", text: "production",
                                     showarrow: false, font: { color: RED } }] : [] });
    main().append(table(["version", "created", ...metrics, "production", "damaged", "features"],
      m.versions.map((v) => el("tr", {}, el("td", {}, v.version), el("td", {}, v.created_at ?? "-"),
        ...metrics.map((k) => num(v.metrics[k] === undefined ? null : +v.metrics[k].toFixed(4), `${m.name}-${v.version}-${k}`)),
        // a version the baseline gate refused carries its badge (the full reason on hover)
        el("td", {}, v.production ? "★" : v.refused ? el("span", { class: "badge refused",
          title: v.refused, "data-testid": `refused-${m.name}-${v.version}` }, v.refused_label) : ""),
        el("td", { class: v.damaged ? "behind" : "" }, v.damaged ?? ""),
        // the catalogue of the features this version was trained on, with their importance
        el("td", {}, v.damaged ? "" : el("a", { "data-testid": `features-${m.name}-${v.version}`,
          href: `/dashboard/catalogue?model=${encodeURIComponent(m.name)}&version=${encodeURIComponent(v.version)}` }, "features"))))));
    // (a refused version promoted by hand later is production: its star, no note)
    for (const v of m.versions.filter((v) => v.refused && !v.production)) main().append(el("p", { class: "note" },
      `${m.name} ${v.version} was registered but not promoted: ${v.refused}.`));
    holdoutTable(m);
  }
  await prCurves();
  section("Recent retrain jobs");
  main().append(table(["job", "model", "backend", "status", "submitted", "finished", "version", "error"],
    data.jobs.map((j) => el("tr", {}, el("td", {}, j.job_id), el("td", {}, j.model), el("td", {}, j.backend),
      el("td", { class: j.status === "failed" ? "behind" : "", "data-testid": `job-${j.job_id}` }, j.status),
      el("td", {}, j.submitted_at), el("td", {}, j.finished_at ?? "-"), el("td", {}, j.model_version ?? "-"),
      el("td", {}, j.error ?? "")))));
  section("Alerts sent");
  main().append(data.alerts.length ? table(["job", "model", "version", "metric", "new", "production", "change", "promoted"],
    data.alerts.map((a) => el("tr", {}, el("td", {}, a.job_id), el("td", {}, a.model), el("td", {}, a.version ?? "-"),
      el("td", {}, a.primary_metric ?? "-"), num(round4(a.new_value)),
      num(round4(a.production_value)), num(round4(a.relative_change)), el("td", {}, a.promoted ? "yes" : "no")))) : el("p", {}, "none"));
}

// A recommender's time-holdout figures (issue #29): the production version (else the newest)
// beside "most popular" and "buy again", both modes, with bootstrap 95% intervals.
function holdoutTable(m) {
  const shown = m.versions.find((v) => v.production && v.holdout) ?? [...m.versions].reverse().find((v) => v.holdout);
  if (!shown) return;
  const h = shown.holdout;
  main().append(el("p", {}, `${m.name} ${shown.version}: top-${h.k} on the test window ${h.test[0]}..${h.test[1]} ` +
    `(trained before it; ${h.customers.any} customers judged for any item, ${h.customers.new} for new items)`));
  const cell = (c, id) => c ? el("td", { "data-testid": id }, `${c.value.toFixed(4)}` +
    (c.low === null ? "" : ` [${c.low.toFixed(4)}, ${c.high.toFixed(4)}]`)) : el("td", {}, "-");
  const rows = [];
  for (const [who, label] of [["model", m.name], ["popular", "most popular"], ["buy_again", "buy again"]]) {
    for (const mode of ["any", "new"]) {
      const t = (h.table[who] ?? {})[mode];
      if (!t) continue;
      rows.push(el("tr", {}, el("td", {}, label), el("td", {}, mode === "any" ? "any item" : "new items only"),
        ...["recall", "ndcg", "hit_rate"].map((k) => cell(t[k], `holdout-${m.name}-${who}-${mode}-${k}`))));
    }
  }
  main().append(table(["ranking", "mode", `recall@${h.k} [95% CI]`, `NDCG@${h.k}`, `hit-rate@${h.k}`], rows));
}

// The latest production version's held-out PR curve per model (/dashboard/api/pr-curves).
async function prCurves() {
  const data = await getJSON("/dashboard/api/pr-curves");
  section("Precision-recall curve of the production version");
  if (!data.curves.length) main().append(el("p", {}, "No production version with a recorded PR curve yet."));
  for (const c of data.curves) {
    const base = c.positive_rate ?? null;
    const traces = [{ type: "scatter", mode: "lines", name: `${c.model} ${c.version}`,
                      x: c.recall, y: c.precision, line: { color: BLUE, shape: "hv" },
                      text: c.threshold.map((t) => `threshold ${t.toFixed(4)}`) }];
    if (base !== null) traces.push({ type: "scatter", mode: "lines", name: "positive rate (no skill)",
                                     x: [0, 1], y: [base, base], line: { color: RED, dash: "dot" } });
    chart(`pr-curve-${c.model}`, traces, {
      title: { text: `${c.model} ${c.version}: precision vs recall on the held-out split` },
      xaxis: { title: { text: "recall" }, range: [0, 1] }, yaxis: { title: { text: "precision" }, range: [0, 1.05] } });
    main().append(el("p", {}, `${c.model} ${c.version}: PR-AUC `,
      el("span", { "data-testid": `pr-curve-${c.model}-pr_auc` }, c.pr_auc === null ? "-" : c.pr_auc.toFixed(4)),
      ", ", el("span", { "data-testid": `pr-curve-${c.model}-points` }, c.precision.length), " points"));
  }
  for (const m of data.without_curve) main().append(el("p", { class: "note",
    "data-testid": `pr-curve-${m.model}-missing` }, `${m.model} ${m.version} has no PR curve: ${m.reason}.`));
}

// -- cluster -------------------------------------------------------------------------------
async function cluster() {
  const data = await getJSON("/dashboard/api/cluster");
  section("Dask cluster");
  main().append(data.dashboard_url
    ? el("p", {}, `Scheduler ${data.scheduler}: `, el("a", { href: data.dashboard_url, "data-testid": "dask-link" }, "Dask dashboard"))
    : el("p", { "data-testid": "dask-link" }, "No scheduler is configured (FEATURESTORE_SCHEDULER): each command runs its own local Dask cluster, whose dashboard lives only while the command runs."));
}

const PAGES = { overview, ingestion, features, models, cluster };

window.addEventListener("DOMContentLoaded", async () => {
  const page = document.body.dataset.page;
  main().replaceChildren();
  try {
    await PAGES[page]();
    document.body.dataset.ready = "true";
  } catch (err) {
    main().append(el("p", { class: "error" }, `Could not load this page: ${err.message}`));
    document.body.dataset.ready = "error";
    throw err;
  }
});
