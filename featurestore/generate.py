"""Synthetic web-log drops in the SPEC §1 format, with a planted purchase signal.

The data is realistic in the ways that matter to the store: 1,000+ columns with the seven the
store reads scattered among filler (evars, props, browser, geo...), a column order that changes
between days (and a column added now and then), several gzip parts per day, a manifest, late
hits, excluded and anonymous hits, and on request every bad-row class. Customers who view a
product repeatedly ("intent") are much more likely to buy in the next weeks; about 1% of
customers buy in any 30 days. Output is deterministic for a given seed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

import fsspec
import numpy as np
from isal import igzip

from .sources.weblog import BAD_ROW_REASONS, DEFAULT_MAX_LATE_DAYS, WEBLOG_COLUMNS

__all__ = ["CLICKSTREAM_COLUMNS", "DEFAULT_FILLER_DENSITY", "SPARSE_FILLER_DENSITY",
           "GenerateReport", "generate_weblog"]

#: Drop columns given realistic values per hit (to declare in a repository, SPEC §3a): a
#: marketing channel with nulls, an integer visit number, a float eVar with some bad values
#: and a country per customer. Present in the header when ``columns`` is large enough (the
#: default); drawn from a generator of their own, so every other byte is as before.
CLICKSTREAM_COLUMNS = ("post_channel", "visit_num", "evar12", "geo_country")
CHANNELS = ("Natural Search", "Paid Search", "Direct", "Email", "Social", "Display",
            "Referring Domains")
CHANNEL_P = (0.30, 0.20, 0.20, 0.10, 0.08, 0.07, 0.05)
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "CA", "AU", "JP")
COUNTRY_P = (0.40, 0.15, 0.12, 0.10, 0.08, 0.07, 0.05, 0.03)
#: Shares of hits with no channel, no evar12, and an evar12 that is not a number.
CHANNEL_NULL_P = 0.15
EVAR12_NULL_P = 0.30
EVAR12_BAD_P = 0.01
EVAR12_BAD = ("n/a", "12,50", "NaN?", "--")

SITE = "https://shop.example.com"
CATEGORIES = ("Shoes", "Bags", "Outdoor", "Kitchen", "Garden", "Toys", "Books", "Beauty")
STATIC_PAGES = ("/", "/help", "/sale/", "/sale/winter", "/account", "/search?q=gift")

#: The chance a filler field is non-empty: the default (~2.1 KB lines, ~4:1 gzip) and a real
#: feed's sparseness (~25 non-empty fields of 1,057, ~1.25 KB lines, >10:1 gzip; issue #27).
DEFAULT_FILLER_DENSITY = 0.2
SPARSE_FILLER_DENSITY = 0.016

# Per-customer daily probability of starting a buying intent, and the chance it ends in a buy.
INTENT_START_P = 0.0005
INTENT_BUY_P = 0.6
BASE_PURCHASE_P = 0.0001
# While in intent: chance of a browsing day, extra views of the product on such a day (1 +
# Poisson), and chance of a cart add that day.
INTENT_ACTIVE_P = 0.8
INTENT_VIEWS = 4.0
INTENT_CART_P = 0.5


@dataclasses.dataclass
class GenerateReport:
    raw_root: str
    days: list[str]
    files: int
    lines: int
    bad: dict[str, int]
    late: int
    columns: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _filler_columns(rng: np.random.Generator, total: int) -> list[str]:
    names = [f"evar{i}" for i in range(1, 251)] + [f"post_evar{i}" for i in range(1, 251)]
    names += [f"prop{i}" for i in range(1, 76)] + [f"post_prop{i}" for i in range(1, 76)]
    names += ["browser", "browser_height", "browser_width", "geo_city", "geo_country",
              "geo_region", "geo_zip", "user_agent", "ip", "visid_high", "visid_low",
              "date_time", "ref_domain", "ref_type", "post_channel", "cookies", "os",
              "post_pagename", "visit_num", "visit_page_num", "mobile_id", "language"]
    i = 0
    while len(names) < total - len(WEBLOG_COLUMNS):
        names.append(f"mvvar_extra{i}")
        i += 1
    return names[: total - len(WEBLOG_COLUMNS)]


def _filler_value(rng: np.random.Generator, name: str, density: float) -> str:
    if rng.random() < 1.0 - density:  # (the default 0.2 draws as the generator always did)
        return ""
    if name.startswith("geo_country"):
        return str(rng.choice(["US", "GB", "DE", "FR", "NL"]))
    if name == "browser":
        return str(rng.choice(["Chrome 131", "Safari 18", "Firefox 133", "Edge 131"]))
    if name == "user_agent":
        return "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"
    return f"v{rng.integers(0, 10_000)}"


@dataclasses.dataclass
class _Hits:
    """Column arrays of one day's hits (before splitting into files)."""

    time: np.ndarray
    customer: np.ndarray  # index into customers, -1 = anonymous
    kind: np.ndarray  # 0 page view, 1 product view, 2 cart add, 3 purchase, 4 link click
    product: np.ndarray  # index into products, -1 = none
    page: np.ndarray  # index into STATIC_PAGES for kind 0/4
    exclude: np.ndarray


def _simulate_day(rng, day_start: int, n_rows: int, weights: np.ndarray, intent: dict,
                  n_products: int) -> _Hits:
    n_customers = weights.size
    parts: list[tuple] = []
    # Start new intents; an intent lasts 7-20 days, with repeated views of its product.
    starting = np.flatnonzero(rng.random(n_customers) < INTENT_START_P)
    for c in starting:
        if c not in intent:
            days = int(rng.integers(7, 21))
            intent[c] = [int(rng.integers(n_products)), days, rng.random() < INTENT_BUY_P]
    for c, state in list(intent.items()):
        product, left, buys = state
        if rng.random() < INTENT_ACTIVE_P:
            views = 1 + rng.poisson(INTENT_VIEWS)
            parts.append((np.full(views, c), np.full(views, 1), np.full(views, product)))
            if rng.random() < INTENT_CART_P:
                parts.append((np.array([c]), np.array([2]), np.array([product])))
        state[1] -= 1
        if state[1] <= 0:
            if buys:
                parts.append((np.array([c]), np.array([3]), np.array([product])))
            del intent[c]
    noise_buyers = np.flatnonzero(rng.random(n_customers) < BASE_PURCHASE_P)
    if noise_buyers.size:
        parts.append((noise_buyers, np.full(noise_buyers.size, 3),
                      rng.integers(n_products, size=noise_buyers.size)))
    signal = sum(p[0].size for p in parts)
    n_background = max(n_rows - signal, 0)
    customer = rng.choice(n_customers, size=n_background, p=weights)
    kind = rng.choice([0, 1, 2, 4], size=n_background, p=[0.55, 0.30, 0.05, 0.10])
    product = np.where((kind == 1) | (kind == 2), rng.integers(n_products, size=n_background),
                       -1)
    anonymous = rng.random(n_background) < 0.05
    customer = np.where(anonymous, -1, customer)
    parts.append((customer, kind, product))
    customer = np.concatenate([p[0] for p in parts])[:n_rows]
    kind = np.concatenate([p[1] for p in parts])[:n_rows]
    product = np.concatenate([p[2] for p in parts])[:n_rows]
    n = customer.size
    return _Hits(
        time=day_start + rng.integers(0, 86400, size=n),
        customer=customer,
        kind=kind,
        product=product,
        page=rng.integers(len(STATIC_PAGES), size=n),
        exclude=np.where(rng.random(n) < 0.02, rng.integers(1, 4, size=n), 0),
    )


def _named_fields(hits: _Hits, customers: list[str], products: list[str],
                  product_category: list[str], prices: np.ndarray) -> list[list[str]]:
    """The seven named fields of every hit, in WEBLOG_COLUMNS order."""
    rows = []
    for t, c, k, p, pg, ex in zip(hits.time.tolist(), hits.customer.tolist(),
                                   hits.kind.tolist(), hits.product.tolist(),
                                   hits.page.tolist(), hits.exclude.tolist()):
        cust = customers[c] if c >= 0 else ""
        if p >= 0:
            url = f"{SITE}/p/{products[p]}?ref=x"
            qty = 1 + (t % 3)
            plist = f"{product_category[p]};{products[p]};{qty};{prices[p] * qty:.2f}"
        else:
            url = f"{SITE}{STATIC_PAGES[pg]}"
            plist = ""
        events = {0: "", 1: "2", 2: "12", 3: "1", 4: ""}[k]
        page_event = "100" if k == 4 else "0"
        rows.append([str(t), cust, url, page_event, events, plist, str(ex)])
    return rows


def _corrupt(row: list[str], reason: str, drop_end: int) -> list[str] | bytes:
    """Turn a good row into a bad row of class ``reason`` (or its raw bytes)."""
    row = list(row)
    if reason == "bad_time":
        row[0] = "12x34"
    elif reason == "future_time":
        row[0] = str(drop_end + 3600)
    elif reason == "too_old":  # two days past the default bound, before the drop's day
        row[0] = str(drop_end - 86400 * (DEFAULT_MAX_LATE_DAYS + 3))
    elif reason == "bad_product":
        row[5] = "Shoes;P0001;two;abc"
        row[4] = "2"
    elif reason == "bad_utf8":
        row[2] = row[2] + "\udcff\udcfe"  # surrogateescape: becomes bytes ff fe
    return row


def generate_weblog(
    raw_root: str,
    *,
    days: int = 30,
    customers: int = 2_000,
    products: int = 100,
    rows_per_day: int = 10_000,
    parts: int = 2,
    start: dt.date = dt.date(2026, 1, 1),
    seed: int = 0,
    bad_rows: float = 0.0,
    late_fraction: float = 0.0,
    columns: int = 1_057,
    storage_options: dict[str, Any] | None = None,
    compresslevel: int = 1,
    column_seed: int | None = None,
    filler_density: float = DEFAULT_FILLER_DENSITY,
) -> GenerateReport:
    """Write ``days`` daily drops under ``raw_root`` and return what was written.

    ``filler_density`` is the chance a filler field is non-empty: the default 0.2 writes
    ~2.1 KB lines that gzip about 4:1; a real clickstream feed, most of whose 1,000+ columns
    are empty on any one hit, is closer to :data:`SPARSE_FILLER_DENSITY` (~25 non-empty fields
    a line, ~1.25 KB, over 10:1; issue #27's drop).

    ``column_seed`` draws the filler column names and each day's column order from a
    generator of their own, so calls with different ``seed`` and the same ``column_seed``
    write files that share one header (a large drop generated in chunks: benchmarks/ingest.py).
    """
    if columns < len(WEBLOG_COLUMNS) + 1:
        raise ValueError(f"columns must be more than {len(WEBLOG_COLUMNS)}")
    if not 0.0 <= filler_density <= 1.0:
        raise ValueError(f"filler_density must be within 0..1, not {filler_density}")
    rng = np.random.default_rng(seed)
    fs, root = fsspec.core.url_to_fs(raw_root, **(storage_options or {}))
    customer_ids = [f"C{i:06d}" for i in range(customers)]
    product_ids = [f"P{i:05d}" for i in range(products)]
    product_category = [CATEGORIES[i % len(CATEGORIES)] for i in range(products)]
    prices = np.round(rng.uniform(5, 150, size=products), 2)
    weights = rng.lognormal(0, 1, size=customers)
    weights /= weights.sum()
    crng = rng if column_seed is None else np.random.default_rng(column_seed)
    filler = _filler_columns(crng, columns)
    intent: dict = {}
    # the clickstream columns' values: a generator of their own (the rest stays as it was)
    vrng = np.random.default_rng([seed, 26])
    country_of = vrng.choice(len(COUNTRIES), size=customers, p=COUNTRY_P)

    day_rows: list[list[list[str]]] = []
    late_rows: list[list[list[str]]] = []
    for d in range(days):
        day_start = int(dt.datetime.combine(start + dt.timedelta(days=d), dt.time(),
                                            dt.UTC).timestamp())
        hits = _simulate_day(rng, day_start, rows_per_day, weights, intent, products)
        rows = _named_fields(hits, customer_ids, product_ids, product_category, prices)
        late = rng.random(len(rows)) < late_fraction if d < days - 1 else np.zeros(len(rows),
                                                                                    bool)
        day_rows.append([r for r, x in zip(rows, late) if not x])
        late_rows.append([r for r, x in zip(rows, late) if x])

    total_bad = dict.fromkeys(BAD_ROW_REASONS, 0)
    total_lines = total_late = 0
    n_files = 0
    names: list[str] = []
    for d in range(days):
        date = start + dt.timedelta(days=d)
        drop_end = int(dt.datetime.combine(date, dt.time(), dt.UTC).timestamp()) + 86400
        rows: list = day_rows[d] + (late_rows[d - 1] if d > 0 else [])
        total_late += len(late_rows[d - 1]) if d > 0 else 0
        rows = [rows[i] for i in rng.permutation(len(rows))]
        # Bad rows: extra lines made from good ones, every class in turn.
        n_bad = int(round(bad_rows * len(rows)))
        if bad_rows > 0:
            n_bad = max(n_bad, len(BAD_ROW_REASONS))
        bad_lines = []
        for i in range(n_bad):
            reason = BAD_ROW_REASONS[i % len(BAD_ROW_REASONS)]
            bad_lines.append((reason, _corrupt(rows[int(rng.integers(len(rows)))], reason,
                                               drop_end)))
            total_bad[reason] += 1
        # Column order changes every day; a column is added every 7th day.
        day_filler = filler + [f"added_col{k}" for k in range(d // 7)]
        order = list(WEBLOG_COLUMNS) + day_filler
        order = [order[i] for i in crng.permutation(len(order))]
        named_pos = {name: order.index(name) for name in WEBLOG_COLUMNS}
        segments = _with_slots(_segments(rng, order, named_pos, filler_density), order,
                               named_pos)
        extra = _clickstream(vrng, rows + [row for _, row in bad_lines], country_of)
        lines = [_assemble(r, segments, rng, e) for r, e in zip(rows, extra)]
        for (reason, row), e in zip(bad_lines, extra[len(rows):], strict=True):
            line = _assemble(row, segments, rng, e)
            if reason == "field_count":
                line = line.rsplit("\t", 3)[0]  # three fields short
            lines.insert(int(rng.integers(len(lines) + 1)), line)
        day_dir = f"{root}/{date.isoformat()}"
        fs.makedirs(day_dir, exist_ok=True)
        with fs.open(f"{day_dir}/column_headers.tsv", "wb") as f:
            f.write(("\t".join(order) + "\n").encode())
        manifest = {"date": date.isoformat(), "files": []}
        for part, chunk in enumerate(np.array_split(np.arange(len(lines)), parts)):
            body = "".join(lines[i] + "\n" for i in chunk).encode("utf-8", "surrogateescape")
            gz = igzip.compress(body, compresslevel=compresslevel)
            name = f"hit_data-{part:04d}.tsv.gz"
            with fs.open(f"{day_dir}/{name}", "wb") as f:
                f.write(gz)
            manifest["files"].append({"name": name, "md5": hashlib.md5(gz).hexdigest(),
                                      "records": int(chunk.size)})
            n_files += 1
        with fs.open(f"{day_dir}/manifest.json", "wb") as f:
            f.write(json.dumps(manifest, indent=1).encode())
        total_lines += len(lines)
        names.append(date.isoformat())
    return GenerateReport(raw_root=raw_root, days=names, files=n_files, lines=total_lines,
                          bad=total_bad, late=total_late, columns=columns)


def _segments(rng, order: list[str], named_pos: dict[str, int], density: float,
              variants: int = 32):
    """Filler text between the named columns: ``variants`` random versions of each segment."""
    cuts = sorted((pos, name) for name, pos in named_pos.items())
    segments = []
    prev = 0
    for pos, name in cuts:
        cols = order[prev:pos]
        segments.append(([_join_filler(rng, cols, density) for _ in range(variants)], name))
        prev = pos + 1
    segments.append(([_join_filler(rng, order[prev:], density) for _ in range(variants)], None))
    return segments


def _join_filler(rng, cols: list[str], density: float) -> str | None:
    """One segment's filler fields joined by tabs (None for a segment of no columns)."""
    return "\t".join(_filler_value(rng, c, density) for c in cols) if cols else None


def _assemble(row: list[str], segments, rng, extra: dict[str, str] | None = None) -> str:
    named = dict(zip(WEBLOG_COLUMNS, row))
    v = int(rng.integers(len(segments[0][0])))
    fields: list[str] = []
    for variants, name in segments:
        if variants[v] is not None:
            variant = variants[v]
            if extra and not isinstance(variant, str):  # pieces around clickstream columns
                variant = "".join(p if i % 2 == 0 else extra[p] for i, p in enumerate(variant))
            elif not isinstance(variant, str):
                variant = "".join(p if i % 2 == 0 else "" for i, p in enumerate(variant))
            fields.append(variant)
        if name is not None:
            fields.append(named[name])
    return "\t".join(fields)


def _with_slots(segments, order: list[str], named_pos: dict[str, int]):
    """The segments with each clickstream column's filler value cut out of every variant:
    a variant becomes ``[text, column, text, ...]`` (odd items are the columns to fill), so
    the values the main generator drew for everything else stay as they were."""
    cuts = sorted(named_pos.values())
    bounds = list(zip([0] + [c + 1 for c in cuts], cuts + [len(order)], strict=True))
    out = []
    for (variants, name), (lo, hi) in zip(segments, bounds, strict=True):
        cols = order[lo:hi]
        slots = [i for i, c in enumerate(cols) if c in CLICKSTREAM_COLUMNS]
        if not slots:
            out.append((variants, name))
            continue
        cut = []
        for variant in variants:
            pieces, text = [], ""
            for i, value in enumerate(variant.split("\t")):
                text += "\t" if i else ""
                if i in slots:
                    pieces += [text, cols[i]]
                    text = ""
                else:
                    text += value
            cut.append(pieces + [text])
        out.append((cut, name))
    return out


def _clickstream(vrng: np.random.Generator, rows: list, country_of: np.ndarray
                 ) -> list[dict[str, str]]:
    """Per row, the clickstream columns' fields (empty = null; some evar12 not numbers)."""
    n = len(rows)
    channel = vrng.choice(len(CHANNELS), size=n, p=CHANNEL_P)
    no_channel = vrng.random(n) < CHANNEL_NULL_P
    visit = vrng.geometric(0.35, size=n) + vrng.poisson(2.0, size=n)  # 1, 2, ... (a long tail)
    evar = np.round(vrng.lognormal(3.0, 1.0, size=n), 2)
    draw = vrng.random(n)
    bad = vrng.integers(len(EVAR12_BAD), size=n)
    anon_country = vrng.choice(len(COUNTRIES), size=n, p=COUNTRY_P)
    out = []
    for i, row in enumerate(rows):
        cust = row[1] if isinstance(row, list) else ""
        c = country_of[int(cust[1:])] if cust[1:].isdigit() and int(cust[1:]) < len(
            country_of) else anon_country[i]
        if draw[i] < EVAR12_NULL_P:
            ev = ""
        elif draw[i] < EVAR12_NULL_P + EVAR12_BAD_P:
            ev = EVAR12_BAD[bad[i]]
        else:
            ev = f"{evar[i]:.2f}"
        out.append({"post_channel": "" if no_channel[i] else CHANNELS[channel[i]],
                    "visit_num": str(int(visit[i])), "evar12": ev,
                    "geo_country": COUNTRIES[c]})
    return out
