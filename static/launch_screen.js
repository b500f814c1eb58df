// The big screen (大屏, R-LCH-3): its figures and lists refreshed from the JSON endpoint every
// 3 s, the countdowns every second. The board below is the live board's (static/liveboard.js).
(function () {
  var screen = document.getElementById("launch-screen");
  if (!screen) { return; }
  var url = screen.getAttribute("data-url");
  var empty = document.getElementById("screen-empty-text");
  function format(left) {
    var m = Math.floor(left / 60), s = left % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }
  function tick() {
    screen.querySelectorAll(".countdown[data-seconds-left]").forEach(function (el) {
      var left = Math.max(parseInt(el.getAttribute("data-seconds-left"), 10) - 1, 0);
      el.setAttribute("data-seconds-left", String(left));
      el.textContent = format(left);
    });
  }
  function fill(list, people, withCountdown) {
    list.textContent = "";
    if (!people.length) {
      var li = document.createElement("li");
      li.className = "screen-empty";
      li.textContent = empty ? empty.textContent : "";
      list.appendChild(li);
      return;
    }
    people.forEach(function (p) {
      var li = document.createElement("li");
      var card = document.createElement("span");
      card.className = "screen-card";
      card.textContent = p.number;
      var name = document.createElement("span");
      name.className = "screen-name";
      name.textContent = " " + p.name + " ";
      li.appendChild(card);
      li.appendChild(name);
      if (withCountdown) {
        var c = document.createElement("span");
        c.className = "countdown";
        c.setAttribute("data-seconds-left", String(p.seconds_left));
        c.textContent = format(p.seconds_left);
        li.appendChild(c);
      }
      list.appendChild(li);
    });
  }
  function set(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(value); }
  }
  function refresh() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        set("screen-status", state.status_label);
        set("screen-as-of", state.as_of);
        set("screen-sold", state.sold);
        set("screen-awaiting", state.awaiting);
        set("screen-remaining", state.remaining);
        fill(document.getElementById("screen-choosing"), state.choosing, true);
        fill(document.getElementById("screen-next"), state.next, false);
      })
      .catch(function () {});
  }
  tick();
  setInterval(tick, 1000);
  setInterval(refresh, 3000);
})();
