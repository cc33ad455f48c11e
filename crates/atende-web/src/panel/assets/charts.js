// Small SVG charts written for the dashboard (no chart library): columns or lines over days,
// grouped horizontal bars over named rows, and a donut. Each chart is one <svg role="img"> whose
// aria-label says what it shows (the page puts a data table beside it); every mark carries a
// <title>, which browsers show as a tooltip. Charts are drawn at their container's pixel width, so
// text keeps its size on a phone, and drawn again when that width changes.
//
// Colours come from CSS: a series' `cls` is a class that sets `--c` (see dashboard.css).

const NS = "http://www.w3.org/2000/svg";
const FONT = 12;

/** An SVG element with attributes and children (nodes or text). */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const tip = (text) => svg("title", {}, text);

/** Roughly how wide `text` is at `size` px in the panel's sans-serif font. */
function textWidth(text, size = FONT) {
  return String(text).length * size * 0.6;
}

/** `text` cut with an ellipsis to fit `width` px. */
function fit(text, width, size = FONT) {
  const max = Math.max(1, Math.floor(width / (size * 0.6)));
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

/** 1, 2 or 5 times a power of ten, at least `rough`. */
export function niceStep(rough) {
  if (!(rough > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(rough));
  const f = rough / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

/** Axis ticks from 0 past `max` for counts: whole steps of 1, 2, 5 × 10ⁿ. */
export function countTicks(max, target = 5) {
  return ticksOf(max, Math.max(1, niceStep(max / target)));
}

/** Steps that read well as durations: seconds, minutes, hours, days, weeks. */
const DURATION_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  172800, 432000, 604800, 1209600,
];

/** Axis ticks from 0 past `max` seconds, in steps that read as durations. */
export function durationTicks(max, target = 4) {
  const step =
    DURATION_STEPS.find((s) => max / s <= target) ?? 604800 * niceStep(max / target / 604800);
  return ticksOf(max, step);
}

function ticksOf(max, step) {
  const top = Math.max(step, Math.ceil(max / step) * step);
  const ticks = [];
  for (let value = 0; value <= top + step / 2; value += step) ticks.push(value);
  return ticks;
}

// ---- drawing at the container's width ------------------------------------------------------

const charts = new Map();
const resizes =
  "ResizeObserver" in window
    ? new ResizeObserver((entries) => {
        for (const entry of entries) render(entry.target);
      })
    : null;

/** Draws `draw(width)` (nodes) into `container` now and again when its width changes. */
function mount(container, draw) {
  charts.set(container, { draw, width: 0 });
  resizes?.observe(container);
  render(container);
}

function render(container) {
  const chart = charts.get(container);
  const width = Math.floor(container.clientWidth);
  if (!chart || width <= 0 || width === chart.width) return;
  chart.width = width;
  container.replaceChildren(...[chart.draw(width)].flat());
}

function empty(container, text) {
  charts.delete(container);
  resizes?.unobserve(container);
  const note = document.createElement("p");
  note.className = "chart-empty";
  note.textContent = text;
  container.replaceChildren(note);
}

/** The series' names with their colours, as an HTML list. */
export function legend(series) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const item of series) {
    const entry = document.createElement("li");
    entry.className = item.cls ?? "";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.setAttribute("aria-hidden", "true");
    entry.append(swatch, item.label ?? item.name);
    list.append(entry);
  }
  return list;
}

function frame(width, height, label) {
  return svg("svg", {
    class: "chart-svg",
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": label,
  });
}

// ---- columns or lines over days ------------------------------------------------------------

/**
 * Values per day: grouped columns while each day has room, lines when the period is long.
 * options: {
 *   labels: ["2025-03-01", …],     one per day
 *   tick(label) → short text,       under the axis (thinned to fit)
 *   long(label) → text,             in the tooltip
 *   series: [{name, values, cls}],
 *   label,                          the chart's aria-label (what it shows, in words)
 *   format(n) → text, empty, height
 * }
 */
export function timeChart(container, options) {
  const { labels, series, empty: emptyText } = options;
  if (labels.length === 0) {
    empty(container, emptyText ?? "");
    return;
  }
  mount(container, (width) => [legend(series), drawTime(width, options)]);
}

function drawTime(width, { labels, tick, long, series, label, format = String, height = 260 }) {
  const max = Math.max(0, ...series.flatMap((s) => s.values));
  const ticks = countTicks(max);
  const top = ticks[ticks.length - 1];
  const left = Math.ceil(Math.max(...ticks.map((v) => textWidth(format(v))))) + 10;
  const margin = { top: 10, right: 8, bottom: 26, left };
  const plotW = Math.max(10, width - margin.left - margin.right);
  const plotH = height - margin.top - margin.bottom;
  const y = (v) => margin.top + plotH - (v / top) * plotH;
  const band = plotW / labels.length;
  const columns = band >= 4 * series.length;
  const root = frame(width, height, label);

  const grid = svg("g", { class: "grid" });
  for (const value of ticks) {
    grid.append(
      svg("line", { x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value) }),
      svg("text", { x: margin.left - 6, y: y(value), dy: "0.32em", "text-anchor": "end" }, format(value)),
    );
  }
  root.append(grid);

  const marks = svg("g", { class: "marks" });
  if (columns) {
    const group = band * 0.8;
    const barW = group / series.length;
    series.forEach((s, k) => {
      const g = svg("g", { class: s.cls });
      s.values.forEach((value, i) => {
        if (!(value > 0)) return;
        const x = margin.left + i * band + band * 0.1 + k * barW;
        g.append(
          svg("rect", {
            x: x.toFixed(2),
            y: y(value).toFixed(2),
            width: Math.max(1, barW - 1).toFixed(2),
            height: Math.max(1, plotH - (y(value) - margin.top)).toFixed(2),
            rx: barW > 6 ? 2 : 0,
          }),
        );
      });
      marks.append(g);
    });
  } else {
    for (const s of series) {
      const points = s.values.map((value, i) => `${(margin.left + (i + 0.5) * band).toFixed(2)},${y(value).toFixed(2)}`);
      marks.append(svg("g", { class: s.cls }, svg("polyline", { class: "line", points: points.join(" ") })));
    }
  }
  root.append(marks);

  // The x axis: labels thinned so they never overlap.
  const axis = svg("g", { class: "axis" });
  axis.append(svg("line", { x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0) }));
  const every = Math.max(1, Math.ceil((textWidth(tick(labels[0])) + 10) / band));
  labels.forEach((day, i) => {
    if (i % every !== 0) return;
    const x = margin.left + (i + 0.5) * band;
    axis.append(svg("text", { x, y: height - 8, "text-anchor": "middle" }, tick(day)));
  });
  root.append(axis);

  // One invisible target per day carries that day's tooltip, wherever the pointer is in it.
  const hits = svg("g", { class: "hits" });
  labels.forEach((day, i) => {
    const text = `${long(day)}: ${series.map((s) => `${s.name} ${format(s.values[i])}`).join(" · ")}`;
    hits.append(
      svg("rect", { x: margin.left + i * band, y: margin.top, width: band, height: plotH }, tip(text)),
    );
  });
  root.append(hits);
  return root;
}

// ---- grouped horizontal bars -----------------------------------------------------------------

/**
 * One row per category with a bar per series (nulls draw nothing).
 * options: {
 *   categories: ["Vendas", …],
 *   series: [{name, values, cls}],
 *   label, format(v) → text, ticks(max) → [0, …], empty
 * }
 */
export function barChart(container, options) {
  const { categories, series, empty: emptyText } = options;
  const any = series.some((s) => s.values.some((v) => v !== null && v !== undefined));
  if (categories.length === 0 || !any) {
    empty(container, emptyText ?? "");
    return;
  }
  mount(container, (width) => [legend(series), drawBars(width, options)]);
}

function drawBars(width, { categories, series, label, format = String, ticks = countTicks }) {
  const barH = 10;
  const rowH = series.length * barH + 12;
  const longest = Math.max(...categories.map((c) => textWidth(c)));
  const nameW = Math.min(Math.max(60, width * 0.32), longest + 8);
  const scale = ticks(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
  const top = scale[scale.length - 1];
  const lastTick = textWidth(format(top)) / 2;
  const margin = { top: 6, right: Math.ceil(lastTick) + 4, bottom: 22, left: Math.ceil(nameW) + 8 };
  const height = margin.top + categories.length * rowH + margin.bottom;
  const plotW = Math.max(10, width - margin.left - margin.right);
  const x = (v) => margin.left + (v / top) * plotW;
  const root = frame(width, height, label);

  const grid = svg("g", { class: "grid" });
  const labelEvery = Math.max(1, Math.ceil((Math.max(...scale.map((v) => textWidth(format(v)))) + 8) / (plotW / (scale.length - 1 || 1))));
  scale.forEach((value, i) => {
    grid.append(svg("line", { x1: x(value), x2: x(value), y1: margin.top, y2: height - margin.bottom }));
    if (i % labelEvery === 0) {
      grid.append(svg("text", { x: x(value), y: height - 6, "text-anchor": "middle" }, format(value)));
    }
  });
  root.append(grid);

  const rows = svg("g", { class: "marks" });
  categories.forEach((name, row) => {
    const rowTop = margin.top + row * rowH + 6;
    const g = svg("g");
    g.append(
      svg(
        "text",
        { class: "row-name", x: margin.left - 8, y: rowTop + (series.length * barH) / 2, dy: "0.32em", "text-anchor": "end" },
        fit(name, nameW),
        tip(name),
      ),
    );
    series.forEach((s, k) => {
      const value = s.values[row];
      if (value === null || value === undefined) return;
      g.append(
        svg(
          "rect",
          {
            class: s.cls,
            x: margin.left,
            y: rowTop + k * barH,
            width: Math.max(value > 0 ? 1 : 0, x(value) - margin.left).toFixed(2),
            height: barH - 2,
            rx: 2,
          },
          tip(`${name} — ${s.name}: ${format(value)}`),
        ),
      );
    });
    rows.append(g);
  });
  root.append(rows);
  return root;
}

// ---- donut -------------------------------------------------------------------------------------

/**
 * Shares of a whole. options: {items: [{name, value, cls}], label, format(n), center, empty}
 * The legend beside it gives each value and its percentage.
 */
export function donutChart(container, options) {
  const total = options.items.reduce((sum, item) => sum + item.value, 0);
  if (total <= 0) {
    empty(container, options.empty ?? "");
    return;
  }
  mount(container, (width) => drawDonut(width, options, total));
}

function drawDonut(width, { items, label, format = String, center = "" }, total) {
  const size = Math.max(120, Math.min(200, width));
  const r = size / 2 - 2;
  const inner = r * 0.62;
  const c = size / 2;
  const root = frame(size, size, label);
  const percent = (value) => Math.round((value / total) * 100);
  let angle = -Math.PI / 2;
  for (const item of items) {
    if (!(item.value > 0)) continue;
    const sweep = (item.value / total) * Math.PI * 2;
    const text = `${item.name}: ${format(item.value)} (${percent(item.value)}%)`;
    root.append(svg("path", { class: item.cls, d: arc(c, r, inner, angle, angle + sweep) }, tip(text)));
    angle += sweep;
  }
  root.append(
    svg("text", { class: "donut-total", x: c, y: c, dy: "-0.1em", "text-anchor": "middle" }, format(total)),
    svg("text", { class: "donut-caption", x: c, y: c, dy: "1.3em", "text-anchor": "middle" }, center),
  );
  const list = legend(
    items.map((item) => ({
      cls: item.cls,
      label: `${item.name}: ${format(item.value)} (${percent(item.value)}%)`,
    })),
  );
  const box = document.createElement("div");
  box.className = "donut";
  box.append(root, list);
  return box;
}

/** A ring segment from angle `a` to `b` (radians); a full turn is drawn as two halves. */
function arc(c, r, inner, a, b) {
  if (b - a >= Math.PI * 2 - 1e-9) {
    const mid = a + Math.PI;
    return `${arc(c, r, inner, a, mid)} ${arc(c, r, inner, mid, b)}`;
  }
  const point = (radius, angle) =>
    `${(c + radius * Math.cos(angle)).toFixed(2)} ${(c + radius * Math.sin(angle)).toFixed(2)}`;
  const large = b - a > Math.PI ? 1 : 0;
  return [
    `M ${point(r, a)}`,
    `A ${r} ${r} 0 ${large} 1 ${point(r, b)}`,
    `L ${point(inner, b)}`,
    `A ${inner} ${inner} 0 ${large} 0 ${point(inner, a)}`,
    "Z",
  ].join(" ");
}
