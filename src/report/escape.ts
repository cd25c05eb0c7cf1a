// Text that came from a run (names, messages, payload-derived strings) never reaches the page as markup.

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for HTML, SVG and XML (JUnit) element content and quoted attribute values alike. */
export function escapeHtml(value: unknown): string {
  // Lone surrogates and C0 controls other than tab and newline are not allowed in XML-ish SVG text.
  return String(value)
    .replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, "\ufffd");
}

/** A fragment id made only of safe characters, so it needs no escaping in href or id. */
export function slug(value: string): string {
  const s = value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return s || "x";
}

/** Shortens text to `max` characters, ending with an ellipsis when cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** A duration for people: µs below a millisecond, ms below a second, then seconds. */
export function humanUs(us: number): string {
  const a = Math.abs(us);
  if (a < 1000) return `${Math.round(us)} µs`;
  if (a < 10_000) return `${(us / 1000).toFixed(2)} ms`;
  if (a < 1_000_000) return `${Math.round(us / 1000)} ms`;
  if (a < 100_000_000) return `${(us / 1e6).toFixed(2)} s`;
  return `${Math.round(us / 1e6)} s`;
}
