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

// The agreement form takes the chosen customer's identity document, address and the line naming
// the customer (admin/deals.py `_prefill`: each customer option carries them, the number only
// to a role that reads it whole).
document.addEventListener("change", function (event) {
  var select = event.target;
  if (!select.matches("[data-prefill-document]")) return;
  var option = select.options[select.selectedIndex];
  var fields = select.form && select.form.elements;
  if (!option || !fields) return;
  if (fields.id_type) fields.id_type.value = option.getAttribute("data-id-type") || "resident_id";
  if (fields.id_number) {
    fields.id_number.value = option.getAttribute("data-id-number") || "";
    var note = fields.id_number.parentElement.querySelector("small.form-text");
    if (note) note.textContent = option.getAttribute("data-id-note") || "";
  }
  if (fields.address) fields.address.value = option.getAttribute("data-address") || "";
});
