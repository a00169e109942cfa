// Refreshes the queue table without a reload; the page works without this script (a Refresh link).
(function () {
  var box = document.getElementById("queue");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-rows-url");
  var every = parseInt(box.getAttribute("data-poll-ms"), 10) || 5000;
  function refresh() {
    if (document.hidden) return;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var active = document.activeElement;
        var keep = active && box.contains(active) ? active.getAttribute("href") : null;
        box.innerHTML = html;
        if (keep) {
          var again = box.querySelector('a[href="' + keep + '"]');
          if (again) again.focus();
        }
      })
      .catch(function () {});
  }
  setInterval(refresh, every);
})();
