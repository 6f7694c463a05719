"""Checks run in the browser on the dashboard and sidebar pages."""

from __future__ import annotations

from typing import Any


def csp_violations(page: Any) -> list[str]:
    """Content-Security-Policy violations the page reports from now on (a list that fills)."""
    found: list[str] = []
    page.on(
        "console",
        lambda m: found.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('Content Security Policy violation: ' + e.violatedDirective))"
    )
    return found


# Problems a page has for people who use a keyboard, a screen reader or weak eyes: controls
# without a label, charts without a text alternative, text under WCAG AA contrast.
A11Y_PROBLEMS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
  const controls = "input:not([type=hidden]), select, textarea, button";
  for (const el of document.querySelectorAll(controls)) {
    const label = (el.labels && el.labels.length && el.labels[0].textContent.trim())
      || el.getAttribute("aria-label") || (el.tagName === "BUTTON" && el.textContent.trim());
    if (!label) problems.push("unlabelled " + el.outerHTML.slice(0, 80));
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (!svg.getAttribute("aria-label")) problems.push("chart without a label");
  }
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || seen.has(el) || el.closest("svg")) continue;
    seen.add(el);
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || box.right < 0) continue;  // not shown (the skip link)
    const cs = getComputedStyle(el);
    const [a, b] = [lum(rgb(cs.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(cs.fontSize), bold = parseInt(cs.fontWeight) >= 700;
    const large = size >= 24 || (size >= 18.66 && bold);
    if (ratio < (large ? 3 : 4.5)) {
      const text = el.textContent.trim().slice(0, 30);
      problems.push(`contrast ${ratio.toFixed(2)}: ${el.tagName} "${text}"`);
    }
  }
  return problems;
}"""


# The policy the pages are made for: their own files only (and Zendesk's SDK in the sidebar),
# no inline script or style.
STRICT_CSP = (
    "default-src 'none'; script-src 'self' https://static.zdassets.com; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'"
)
