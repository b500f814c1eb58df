// The selection page (R-LCH-3): each buyer's countdown, and the choice sent as JSON
// (POST /admin/launch_select/choose) so a unit gone is said at once and the buyer picks another.
(function () {
  function tick() {
    document.querySelectorAll(".countdown[data-seconds-left]").forEach(function (el) {
      var left = Math.max(parseInt(el.getAttribute("data-seconds-left"), 10) - 1, 0);
      el.setAttribute("data-seconds-left", String(left));
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = m + ":" + (s < 10 ? "0" : "") + s;
    });
  }
  tick();
  setInterval(tick, 1000);
  var answer = document.getElementById("select-answer");
  document.querySelectorAll("form.select-form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; }
      fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                          headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (result) {
          answer.classList.remove("d-none", "alert-success", "alert-danger");
          answer.classList.add(result.ok ? "alert-success" : "alert-danger");
          answer.textContent = result.ok ? (result.unit + " · " + result.subscription) : result.error;
          if (result.ok) {
            setTimeout(function () { window.location.reload(); }, 1500);
          } else {
            var chosen = form.querySelector("select[name=unit]");
            var gone = chosen && chosen.querySelector("option[value='" + chosen.value + "']");
            if (gone && result.error) { gone.disabled = true; chosen.value = ""; }
            if (button) { button.disabled = false; }
          }
        })
        .catch(function () { if (button) { button.disabled = false; } });
    });
  });
})();
