// The front desk (R-RCP-1): the rotation panel reloads itself every 15 s; the phone check-in
// answers without leaving the page (GET /admin/rotation/check, JSON).
(function () {
  var panel = document.getElementById("rotation-panel");
  if (panel) {
    var url = panel.getAttribute("data-panel-url");
    setInterval(function () {
      fetch(url, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { panel.innerHTML = html; } })
        .catch(function () {});
    }, 15000);
  }
  var form = document.getElementById("check-in");
  var out = document.getElementById("check-answer");
  if (!form || !out) { return; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var phone = document.getElementById("check-phone").value;
    var target = form.getAttribute("data-check-url") + "&phone=" + encodeURIComponent(phone);
    fetch(target, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        out.textContent = answer.error || answer.text;
        var receivePhone = document.getElementById("receive-phone");
        if (receivePhone && !answer.error) { receivePhone.value = phone; }
      })
      .catch(function () {});
  });
})();
