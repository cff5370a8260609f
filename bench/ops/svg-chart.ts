/**
 * A hand-written SVG bar chart (no dependency): P95 per operation, ours at the seed's rate beside
 * the seed's published P95, on a log scale because ours and the seed's differ by 10× or more.
 */

export interface ChartRow {
  readonly label: string;
  readonly seedP95Ms: number | undefined;
  readonly oursP95Ms: number | undefined;
}

const escape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function p95Chart(rows: readonly ChartRow[], title: string): string {
  const left = 170;
  const width = 760;
  const plot = width - left - 90;
  const rowHeight = 34;
  const top = 50;
  const height = top + rows.length * rowHeight + 40;
  // Decades from 0.1 ms to 1 s cover both sides.
  const minLog = -1;
  const maxLog = 3;
  const x = (ms: number): number => left + ((Math.log10(Math.max(ms, 0.1)) - minLog) / (maxLog - minLog)) * plot;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escape(title)}</text>`,
    `<rect x="${left}" y="30" width="12" height="10" fill="#9e9e9e"/><text x="${left + 16}" y="39">seed P95</text>`,
    `<rect x="${left + 90}" y="30" width="12" height="10" fill="#1e88e5"/><text x="${left + 106}" y="39">ours P95 at the seed's rate</text>`,
  ];
  for (let decade = minLog; decade <= maxLog; decade++) {
    const gx = x(10 ** decade);
    parts.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${height - 30}" stroke="#ddd"/>`);
    parts.push(`<text x="${gx}" y="${height - 15}" text-anchor="middle">${10 ** decade >= 1 ? 10 ** decade : (10 ** decade).toFixed(1)} ms</text>`);
  }
  rows.forEach((row, i) => {
    const y = top + i * rowHeight;
    parts.push(`<text x="${left - 8}" y="${y + 18}" text-anchor="end">${escape(row.label)}</text>`);
    const bar = (ms: number | undefined, dy: number, color: string): void => {
      if (ms === undefined) return;
      parts.push(`<rect x="${left}" y="${y + dy}" width="${Math.max(1, x(ms) - left).toFixed(1)}" height="12" fill="${color}"/>`);
      parts.push(`<text x="${(x(ms) + 4).toFixed(1)}" y="${y + dy + 10}">${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms</text>`);
    };
    bar(row.seedP95Ms, 2, "#9e9e9e");
    bar(row.oursP95Ms, 16, "#1e88e5");
  });
  parts.push("</svg>");
  return parts.join("\n");
}
