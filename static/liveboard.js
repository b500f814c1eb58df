// The live sales-control board (R-LCH-3, R-SC-1): fills every
//   <div class="live-board" data-project="ID" [data-buildings="ID,ID"] [data-unit-url="/admin/board/unit/"]
//        [data-labels='{"statuses": {...}, "units": "…", "sell_through": "…", "empty": "…"}']
//        [data-layout="…"] [data-status="…"] [data-summary-id="…"]>
// from the board's state (GET /admin/board/state?project=ID: compact JSON, ETag, gzip), then applies
// the changes pushed by the server (EventSource on /admin/board/stream?project=ID) as they come. A
// change whose version does not follow the board's (a missed one), a "reload" or a unit the board
// does not have makes it fetch the state again (304 while nothing changed). No inline script (CSP).
(function () {
  "use strict";
  var ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
  function esc(value) { return String(value).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; }); }
  function money(text) { return "¥" + Math.round(Number(text)).toLocaleString("en-US"); }

  function LiveBoard(root) {
    this.root = root;
    this.project = root.getAttribute("data-project");
    var only = root.getAttribute("data-buildings");
    this.only = only ? only.split(",").map(function (s) { return parseInt(s, 10); }) : null;
    this.unitUrl = root.getAttribute("data-unit-url");
    this.layout = root.getAttribute("data-layout") || "";
    this.status = root.getAttribute("data-status") || "";
    var labels = root.getAttribute("data-labels");
    this.labels = labels ? JSON.parse(labels) : {};
    this.statuses = this.labels.statuses || {};
    this.stateUrl = root.getAttribute("data-state-url") || "/admin/board/state?project=" + encodeURIComponent(this.project);
    this.streamUrl = root.getAttribute("data-stream-url") || "/admin/board/stream?project=" + encodeURIComponent(this.project);
    this.state = null;
    this.loading = null;
    this.seen = 0;  // the newest version the stream told of
    this.kept = [];  // changes that came while the state was on its way (or after a gap)
    this.retry = null;
    this.load();
    this.listen();
  }

  LiveBoard.prototype.load = function () {
    var self = this;
    if (self.loading) { return self.loading; }
    self.loading = fetch(self.stateUrl, {credentials: "same-origin", cache: "no-cache",
                                         headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        self.loading = null;
        if (state) { self.show(state); self.catchUp(); }
      })
      .catch(function () { self.loading = null; });
    return self.loading;
  };

  LiveBoard.prototype.shown = function (buildingId) {
    return !this.only || this.only.indexOf(buildingId) >= 0;
  };

  LiveBoard.prototype.cellHtml = function (u) {
    var dim = (this.layout && u[5] !== this.layout) || (this.status && u[8] !== this.status) ? " dim" : "";
    var inner = "<b>" + esc(u[4]) + "</b><br>" + esc(u[5]) + "<br>" + esc(u[6]) + "㎡<br>" + money(u[7]);
    if (this.unitUrl) { inner = '<a href="' + esc(this.unitUrl + u[0]) + '">' + inner + "</a>"; }
    return '<td class="cell status-' + esc(u[8]) + dim + '" data-unit="' + u[0] + '" title="' +
      esc(this.statuses[u[8]] || u[8]) + '">' + inner + "</td>";
  };

  LiveBoard.prototype.show = function (state) {
    var self = this, html = [], byBuilding = {};
    self.state = state;
    self.units = {};
    state.units.forEach(function (u) {
      self.units[u[0]] = u;
      (byBuilding[u[1]] = byBuilding[u[1]] || []).push(u);
    });
    html.push(self.summaryHtml());
    var any = false;
    state.buildings.forEach(function (b) {
      if (!self.shown(b[0]) || !byBuilding[b[0]]) { return; }
      any = true;
      html.push('<div class="board-building" data-building="' + b[0] + '"><h2 class="h6 mt-2">' + esc(b[1]) +
                '</h2><table class="table table-bordered table-sm board-grid"><tbody>');
      var floor = null;
      byBuilding[b[0]].forEach(function (u) {
        if (u[2] !== floor) {
          if (floor !== null) { html.push("</tr>"); }
          floor = u[2];
          html.push('<tr><th class="floor">' + floor + "F</th>");
        }
        html.push(self.cellHtml(u));
      });
      html.push("</tr></tbody></table></div>");
    });
    if (!any) { html.push('<p class="text-muted">' + esc(self.labels.empty || "") + "</p>"); }
    self.root.innerHTML = html.join("");
    self.count();
    self.root.setAttribute("data-version", state.v);
  };

  LiveBoard.prototype.summaryHtml = function () {
    var self = this, id = self.root.getAttribute("data-summary-id"), out = [];
    out.push('<div class="board-summary mb-2"' + (id ? ' id="' + esc(id) + '"' : "") + ">");
    Object.keys(self.statuses).forEach(function (code) {
      out.push('<span class="badge badge-status status-' + esc(code) + ' mr-1">' + esc(self.statuses[code]) +
               ' <span class="count" data-status="' + esc(code) + '">0</span></span>');
    });
    out.push('<span class="ml-2">' + esc(self.labels.units || "") + ': <b class="board-total">0</b></span>');
    out.push('<span class="ml-2">' + esc(self.labels.sell_through || "") + ': <b class="board-sell-through">0.0%</b></span>');
    out.push("</div>");
    return out.join("");
  };

  // Counts, units and sell-through of the buildings shown (models.board: sold of saleable, all but withheld).
  LiveBoard.prototype.count = function () {
    var self = this, counts = {}, total = 0, sold = 0, saleable = 0;
    Object.keys(self.units).forEach(function (id) {
      var u = self.units[id];
      if (!self.shown(u[1])) { return; }
      counts[u[8]] = (counts[u[8]] || 0) + 1;
      total += 1;
      sold += u[9] ? 1 : 0;
      saleable += u[8] === "withheld" ? 0 : 1;
    });
    self.root.querySelectorAll(".board-summary .count").forEach(function (el) {
      el.textContent = counts[el.getAttribute("data-status")] || 0;
    });
    var totalEl = self.root.querySelector(".board-total");
    if (totalEl) { totalEl.textContent = total; }
    var rate = self.root.querySelector(".board-sell-through");
    if (rate) { rate.textContent = (saleable ? Math.round(1000 * sold / saleable) / 10 : 0).toFixed(1) + "%"; }
  };

  // A change from the stream: applied when it follows the board's version; kept while the state
  // is on its way or when it comes after a gap (the state fetched next may be older than it).
  LiveBoard.prototype.apply = function (message) {
    var self = this;
    self.seen = Math.max(self.seen, message.v || 0);
    if (message.reload) { self.kept = []; self.load(); return; }
    if (!self.state || self.loading) { self.keep(message); return; }
    if (message.v <= self.state.v) { return; }  // already in the state we have
    if (message.v > self.state.v + 1) { self.keep(message); self.load(); return; }
    if (!self.change(message)) { self.load(); return; }  // a new or moved unit: the whole board again
    self.count();
  };

  LiveBoard.prototype.keep = function (message) {
    if (this.kept.length < 1000) { this.kept.push(message); }
  };

  // After a state: the kept changes that follow it, in order; a gap left, the state again in a second.
  LiveBoard.prototype.catchUp = function () {
    var self = this, kept = self.kept.sort(function (a, b) { return a.v - b.v; });
    self.kept = [];
    for (var i = 0; i < kept.length; i += 1) {
      if (kept[i].v <= self.state.v) { continue; }
      if (kept[i].v > self.state.v + 1) { break; }
      if (!self.change(kept[i])) { self.load(); return; }  // a new or moved unit
    }
    self.count();
    if (self.state.v < self.seen && !self.retry) {
      self.kept = kept.filter(function (m) { return m.v > self.state.v; });
      self.retry = setTimeout(function () { self.retry = null; self.load(); }, 1000);
    }
  };

  // The cells of one change, on the board and in its data; false when a unit is not on the board.
  LiveBoard.prototype.change = function (message) {
    var self = this, known = true;
    message.cells.forEach(function (u) {
      var old = self.units[u[0]];
      if (!old || old[1] !== u[1] || old[2] !== u[2] || old[3] !== u[3]) { known = false; return; }
      self.units[u[0]] = u;
      var cell = self.root.querySelector('td.cell[data-unit="' + u[0] + '"]');
      if (cell) { cell.outerHTML = self.cellHtml(u); }
    });
    self.state.v = message.v;
    self.root.setAttribute("data-version", message.v);
    return known;
  };

  LiveBoard.prototype.listen = function () {
    var self = this;
    if (!window.EventSource) { setInterval(function () { self.load(); }, 10000); return; }
    var source = new EventSource(self.streamUrl, {withCredentials: true});
    source.addEventListener("version", function (e) {
      var v = JSON.parse(e.data).v;
      self.seen = Math.max(self.seen, v);
      if (self.state && !self.loading && v !== self.state.v) { self.load(); }
    });
    source.addEventListener("reload", function () { self.load(); });
    source.onmessage = function (e) { self.apply(JSON.parse(e.data)); };
  };

  document.querySelectorAll("div.live-board[data-project]").forEach(function (root) {
    root.liveBoard = new LiveBoard(root);
  });
})();
