/* The new ticket's customer search (admin/tickets.py customers_view): as one types, the customers
   the server finds (scoped to the reader) refill the customer list. */
(function () {
  var box = document.querySelector('#customer-search input[name=q]');
  var select = document.querySelector('#ticket-form select[name=lead_id]');
  if (!box || !select) { return; }
  var timer = null;
  box.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      fetch(box.dataset.customersUrl + '?q=' + encodeURIComponent(box.value), {credentials: 'same-origin'})
        .then(function (r) { return r.json(); })
        .then(function (rows) {
          var kept = select.value;
          select.innerHTML = '';
          select.appendChild(new Option('—', ''));
          rows.forEach(function (row) { select.appendChild(new Option(row.text, row.id, false, String(row.id) === kept)); });
        });
    }, 250);
  });
})();
