// Document centre: while a document is queued or rendering (or a batch is under way), look
// again every 3 seconds, so its link or its progress appears without a manual reload.
if (document.querySelector("[data-pending]")) {
  setTimeout(function () { window.location.reload(); }, 3000);
}
