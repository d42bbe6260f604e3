// Keeps every <time data-rel> reading "12 s ago" / "in 3 s" between the server's updates, so the server
// sends a section again only when its data changes (ui/format.py's when() sends the clock time).
(() => {
  const UNITS = [["d", 86400], ["h", 3600], ["min", 60]];
  function relative(seconds) {
    const span = Math.abs(seconds);
    if (span < 1) return "just now";
    let amount = `${Math.round(span)} s`;
    for (const [unit, size] of UNITS) {
      if (span >= size) {
        const value = span / size;
        amount = span >= 10 * size || unit === "min" ? `${Math.round(value)} ${unit}` : `${value.toFixed(1)} ${unit}`;
        break;
      }
    }
    return seconds > 0 ? `${amount} ago` : `in ${amount}`;
  }
  function refresh() {
    const now = Date.now();
    for (const element of document.querySelectorAll("time[data-rel]")) {
      let at = Date.parse(element.getAttribute("datetime"));
      if (!Number.isNaN(at)) {
        const every = Number(element.dataset.every) * 1000;
        if (element.dataset.rel === "upcoming" && every > 0 && at < now) {
          at += Math.ceil((now - at) / every) * every;  // a repeating job: its next run after the last report
        }
        const seconds = (now - at) / 1000;
        const text = element.dataset.rel === "upcoming" && seconds >= 0 ? "due" : relative(seconds);
        if (element.textContent !== text) element.textContent = text;
      }
    }
  }
  setInterval(refresh, 1000);
  new MutationObserver(() => refresh()).observe(document.documentElement, {childList: true, subtree: true});
})();
