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

// Flask-Admin's date picker (bootstrap-daterangepicker, on moment) names months and weekdays by
// moment's locale, which is English unless told: a Chinese page gets Chinese names (一月…, 日一二…,
// weeks from Monday), an English page English ones. Set before the pickers are made (form.js
// makes them when the page is ready; this file runs earlier).
(function () {
  if (!window.moment) return;
  var lang = (document.documentElement.getAttribute("lang") || "").toLowerCase();
  if (lang.indexOf("zh") === 0) {
    var config = {
      months: "一月_二月_三月_四月_五月_六月_七月_八月_九月_十月_十一月_十二月".split("_"),
      monthsShort: "1月_2月_3月_4月_5月_6月_7月_8月_9月_10月_11月_12月".split("_"),
      weekdays: "星期日_星期一_星期二_星期三_星期四_星期五_星期六".split("_"),
      weekdaysShort: "周日_周一_周二_周三_周四_周五_周六".split("_"),
      weekdaysMin: "日_一_二_三_四_五_六".split("_"),
      week: {dow: 1, doy: 4}
    };
    if (moment.locales && moment.locales().indexOf("zh-cn") >= 0) moment.updateLocale("zh-cn", config);
    else moment.defineLocale("zh-cn", config);  // defines and selects it
    moment.locale("zh-cn");
  } else {
    moment.locale("en");
  }
})();

// A date picker opened just above a form's buttons would lie over them (保存 hidden, a click
// on it landing on a date): it opens upwards instead when it would cover one of its form's
// buttons, and closes once a date is picked (single-date pickers apply on the click).
(function () {
  if (!window.jQuery) return;
  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }
  function coversButton(picker) {
    var form = picker.element.closest("form")[0];
    if (!form) return false;
    var box = picker.container[0].getBoundingClientRect();
    var buttons = form.querySelectorAll("button, input[type=submit], a.btn");
    for (var i = 0; i < buttons.length; i++) {
      if (overlaps(box, buttons[i].getBoundingClientRect())) return true;
    }
    return false;
  }
  jQuery(document).on("show.daterangepicker", function (event, picker) {
    if (!picker || !picker.container) return;
    if (picker.drops !== "up" && coversButton(picker)) {
      var above = picker.element[0].getBoundingClientRect().top + window.pageYOffset;
      if (above >= picker.container.outerHeight()) {
        picker.drops = "up";
        picker.move();
      }
    }
  });
})();

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
