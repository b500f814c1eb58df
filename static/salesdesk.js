// Steps that change something at once ask first (admin/steps.py puts the question in
// data-confirm); a form sent once cannot be sent again by a second click while it loads.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var button = event.submitter || form.querySelector("[data-confirm]");
  var question = button && button.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  if (form.method.toLowerCase() === "post") form.dataset.sent = "1";
}, false);

// A select that applies itself (the board's project) without an inline handler, which the
// Content-Security-Policy would refuse.
document.addEventListener("change", function (event) {
  if (event.target.matches("[data-submit-on-change]")) event.target.form.submit();
});

// Flask-Admin's own links, rewired without inline handlers (templates/admin/actions.html,
// model/layout.html, model/inline_list_base.html): the bulk actions menu, adding an inline
// line; and no link navigates to a javascript: URL, which the policy refuses.
document.addEventListener("click", function (event) {
  var link = event.target.closest ? event.target.closest("a") : null;
  if (!link) return;
  if (link.hasAttribute("data-bulk-action")) {
    event.preventDefault();
    window.modelActions.execute(link.getAttribute("data-bulk-action"));
  } else if (link.hasAttribute("data-add-inline")) {
    event.preventDefault();
    window.faForm.addInlineField(link, link.getAttribute("data-add-inline"));
  } else if (link.hasAttribute("data-no-follow") || /^javascript:/i.test(link.getAttribute("href") || "")) {
    event.preventDefault();
  }
}, true);  // capture: before any handler that stops the click from bubbling up

// Flask-Admin's filters (its filters.js) write their inputs in JavaScript with no name a screen
// reader could say: each input and select of a filter's row is named after the filter, in the
// page's language (the wordings are in data-label-operation and data-label-value of the filters'
// table, templates/admin/model/layout.html), whenever a filter is added or its condition changed.
(function () {
  var table = document.querySelector("#filter_form table.filters");
  if (!table || !window.MutationObserver) return;
  function wording(attribute, filter) {
    return (table.getAttribute(attribute) || "%s").replace("%s", filter);
  }
  function name() {
    Array.prototype.forEach.call(table.querySelectorAll("tr"), function (row) {
      var link = row.querySelector(".remove-filter");
      var cells = row.querySelectorAll(":scope > td");
      if (!link || cells.length < 3) return;
      var filter = link.textContent.replace("\u00d7", "").trim();
      [[cells[1], "data-label-operation"], [cells[2], "data-label-value"]].forEach(function (pair) {
        var label = wording(pair[1], filter);
        Array.prototype.forEach.call(pair[0].querySelectorAll("input, select, textarea"), function (el) {
          if (el.type !== "hidden" && el.getAttribute("aria-label") !== label) el.setAttribute("aria-label", label);
        });
      });
    });
  }
  new MutationObserver(name).observe(table, {childList: true, subtree: true});
  name();
})();
