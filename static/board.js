// The sales-control board refreshes its cells every 10 s: others' holds and sales show up.
(function () {
  var board = document.getElementById("board");
  if (!board) { return; }
  var url = board.getAttribute("data-statuses-url");
  var labels = JSON.parse(board.getAttribute("data-labels"));
  function refresh() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (statuses) {
        if (!statuses) { return; }
        var counts = {};
        Object.keys(labels).forEach(function (s) { counts[s] = 0; });
        board.querySelectorAll("td.cell").forEach(function (cell) {
          var status = statuses[cell.getAttribute("data-unit")];
          if (!status) { return; }
          counts[status] += 1;
          cell.className = cell.className.replace(/status-[a-z_]+/, "status-" + status);
          cell.title = labels[status];
        });
        document.querySelectorAll("#board-summary .count").forEach(function (el) {
          el.textContent = counts[el.getAttribute("data-status")];
        });
        var total = 0, withheld = counts.withheld || 0;
        Object.keys(counts).forEach(function (s) { total += counts[s]; });
        var sold = (counts.subscribed || 0) + (counts.signed || 0);
        var rate = total - withheld ? (100 * sold / (total - withheld)) : 0;
        document.getElementById("board-sell-through").textContent = rate.toFixed(1) + "%";
      })
      .catch(function () {});
  }
  setInterval(refresh, 10000);
})();
