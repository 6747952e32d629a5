/**
 * The latency plot: for each load, the histogram of raw's and ours' end-to-end latencies on a
 * logarithmic time axis, each side's p99 marked, as a plain SVG file (no library). Pure: the same
 * histograms draw the same text.
 *
 * @module
 */

import { coarsen, type Histogram, quantileOf, upperEdge } from "./_histogram.ts";

/** One panel of the plot: a load and both sides' latencies at it. */
export interface LatencyPanel {
  /** The panel's title: `25 % of raw's rate (5,000 msg/s)`. */
  readonly title: string;
  readonly raw: Histogram;
  readonly ours: Histogram;
}

const WIDTH = 720;
const PANEL = 170;
const LEFT = 56;
const RIGHT = 40;
const TOP = 28;
const BOTTOM = 34;
const BINS_PER_DECADE = 10;
const COLORS = { raw: "#4e79a7", ours: "#e15759" } as const;

const esc = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
const num = (n: number) => Number(n.toFixed(1)).toString();

/** The decades the plot spans: from the lowest filled bin's to the largest latency's. */
function span(panels: readonly LatencyPanel[]): { from: number; to: number } {
  let from = Infinity;
  let to = -Infinity;
  for (const panel of panels) {
    for (const h of [panel.raw, panel.ours]) {
      const first = h.counts.findIndex((n) => n > 0);
      if (first < 0) continue;
      from = Math.min(from, Math.floor(Math.log10(upperEdge(h, first - 1))));
      to = Math.max(to, Math.ceil(Math.log10(Math.max(h.max, upperEdge(h, first)))));
    }
  }
  return Number.isFinite(from) ? { from, to: Math.max(to, from + 1) } : { from: -1, to: 3 };
}

/** The plot of `panels`, one under the other, as an SVG document. */
export function latencySvg(panels: readonly LatencyPanel[], caption: string): string {
  const { from, to } = span(panels);
  const plotWidth = WIDTH - LEFT - RIGHT;
  const x = (ms: number) => LEFT + ((Math.log10(ms) - from) / (to - from)) * plotWidth;
  const height = TOP + panels.length * (PANEL + BOTTOM) + 8;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${LEFT}" y="16" font-size="12">${esc(caption)}</text>`,
    `<text x="${WIDTH - RIGHT - 150}" y="16" fill="${COLORS.raw}">■ raw amqplib</text>`,
    `<text x="${WIDTH - RIGHT - 60}" y="16" fill="${COLORS.ours}">■ ours</text>`,
  ];
  panels.forEach((panel, p) => {
    const top = TOP + p * (PANEL + BOTTOM);
    const bottom = top + PANEL - 16;
    const sides = {
      raw: coarsen(panel.raw, BINS_PER_DECADE),
      ours: coarsen(panel.ours, BINS_PER_DECADE),
    };
    const share = (h: Histogram, i: number) => h.total === 0 ? 0 : h.counts[i]! / h.total;
    let peak = 0;
    for (const h of Object.values(sides)) {
      h.counts.forEach((_, i) => peak = Math.max(peak, share(h, i)));
    }
    peak = peak === 0 ? 1 : peak;
    const y = (s: number) => bottom - (s / peak) * (PANEL - 30);
    out.push(
      `<text x="${LEFT}" y="${top + 10}" font-weight="bold">${esc(panel.title)}</text>`,
      `<line x1="${LEFT}" y1="${bottom}" x2="${WIDTH - RIGHT}" y2="${bottom}" stroke="#444"/>`,
      `<line x1="${LEFT}" y1="${top + 14}" x2="${LEFT}" y2="${bottom}" stroke="#444"/>`,
      `<text x="${LEFT - 6}" y="${num(y(peak) + 4)}" text-anchor="end">` +
        `${(peak * 100).toFixed(0)} %</text>`,
      `<text x="${LEFT - 6}" y="${bottom + 4}" text-anchor="end">0</text>`,
    );
    for (let d = from; d <= to; d++) {
      const ms = 10 ** d;
      out.push(
        `<line x1="${num(x(ms))}" y1="${bottom}" x2="${num(x(ms))}" y2="${
          bottom + 4
        }" stroke="#444"/>`,
        `<text x="${num(x(ms))}" y="${bottom + 16}" text-anchor="middle">` +
          `${ms >= 1 ? ms.toLocaleString("en-US") : ms} ms</text>`,
      );
    }
    for (const [name, h] of Object.entries(sides) as [keyof typeof COLORS, Histogram][]) {
      // A step line: each bin's share across its width, down to 0 after the last.
      const points: string[] = [`${num(LEFT)},${bottom}`];
      let end = LEFT;
      h.counts.forEach((_, i) => {
        const left = Math.max(x(upperEdge(h, i - 1)), LEFT);
        const right = Math.min(x(upperEdge(h, i)), WIDTH - RIGHT);
        if (right <= LEFT) return;
        points.push(`${num(left)},${num(y(share(h, i)))}`, `${num(right)},${num(y(share(h, i)))}`);
        end = right;
      });
      if (points.length > 1) {
        points.push(`${num(end)},${bottom}`, `${num(WIDTH - RIGHT)},${bottom}`);
        out.push(
          `<polyline fill="none" stroke="${COLORS[name]}" stroke-width="1.5" ` +
            `points="${points.join(" ")}"/>`,
        );
      }
      const p99 = quantileOf(panel[name], 0.99);
      if (Number.isFinite(p99)) {
        out.push(
          `<line x1="${num(x(p99))}" y1="${top + 14}" x2="${num(x(p99))}" y2="${bottom}" ` +
            `stroke="${COLORS[name]}" stroke-dasharray="4 3"/>`,
          // Raw's label left of its line, ours' right of it, so the two never overlap.
          `<text x="${num(x(p99) + (name === "raw" ? -3 : 3))}" y="${top + 24}" ` +
            `text-anchor="${name === "raw" ? "end" : "start"}" fill="${COLORS[name]}">` +
            `p99 ${p99.toFixed(1)} ms</text>`,
        );
      }
    }
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
