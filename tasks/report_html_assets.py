"""The styles and the table script of report.html (also styling weekly_review.html)."""

REPORT_CSS = """
:root { --ink:#1b2430; --muted:#5b6675; --line:#d9dee5; --under:#c0392b; --over:#d68910; --ok:#1e8449; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px; max-width: 1400px; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { font-size: 18px; margin: 28px 0 10px; }
h4 { margin: 10px 0 4px; font-size: 13px; }
.meta, .note, .legend { color: var(--muted); font-size: 12px; }
code { background: #f2f4f7; padding: 1px 4px; border-radius: 3px; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 12px; color: #fff; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--over); }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 16px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card .n { font-size: 22px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f7f8fa; font-weight: 600; } th[data-key] { cursor: pointer; user-select: none; }
th[data-dir="asc"]::after { content: " ▲"; } th[data-dir="desc"]::after { content: " ▼"; }
td.period { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.sev { padding: 1px 6px; border-radius: 4px; font-size: 12px; color: #fff; }
.sev.high { background: var(--under); } .sev.medium { background: var(--over); } .sev.low { background: #7f8c8d; }
.filters { display: flex; gap: 14px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
details summary { cursor: pointer; color: #2e6da4; font-size: 12px; margin-top: 4px; }
details table { margin: 4px 0 8px; font-size: 12px; } dl { display: grid; grid-template-columns: 110px 1fr; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; }
svg .under, .swatch.under { fill: var(--under); background: var(--under); }
svg .over, .swatch.over { fill: var(--over); background: var(--over); }
svg .label { font-size: 13px; font-weight: 600; } svg .value, svg .tick { font-size: 11px; fill: var(--muted); }
.swatch { display: inline-block; width: 10px; height: 10px; margin-left: 8px; }
.figs { display: flex; gap: 24px; flex-wrap: wrap; } figure { margin: 0; } figcaption { font-weight: 600; }
"""

REPORT_JS = """
(function () {
  var table = document.getElementById('exceptions-table');
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var shown = document.getElementById('shown');
  function value(row, index) {
    var cell = row.cells[index];
    var sort = cell.getAttribute('data-sort');
    return sort !== null ? sort : cell.textContent.trim();
  }
  function applyFilters() {
    var filters = document.querySelectorAll('select[data-filter]');
    var visible = 0;
    rows.forEach(function (row) {
      var keep = true;
      filters.forEach(function (select) {
        if (select.value && row.getAttribute('data-' + select.getAttribute('data-filter')) !== select.value) { keep = false; }
      });
      row.hidden = !keep;
      if (keep) { visible += 1; }
    });
    shown.textContent = visible + ' of ' + rows.length + ' shown';
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
    function sort() {
      var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) { other.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', dir);
      rows.sort(function (a, b) {
        var x = value(a, index), y = value(b, index);
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y) ? nx - ny : x.localeCompare(y);
        return dir === 'asc' ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener('click', sort);
    th.addEventListener('keydown', function (event) { if (event.key === 'Enter') { sort(); } });
  });
  document.querySelectorAll('select[data-filter]').forEach(function (select) {
    select.addEventListener('change', applyFilters);
  });
  applyFilters();
})();
"""
