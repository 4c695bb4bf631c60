// Report runs on the reports page: poll each unfinished run's API row once a second and show its
// status, progress and step; when it is done, show the download link and the data hash.
(function () {
  "use strict";
  var table = document.getElementById("report-runs");
  if (!table) return;
  var FINISHED = { done: 1, failed: 1 };

  function text(tag, content, cls) {
    var node = document.createElement(tag);
    node.textContent = content;
    if (cls) node.className = cls;
    return node;
  }
  function render(row, run) {
    row.dataset.status = run.status;
    row.querySelector(".run-status").textContent = run.status;
    var bar = row.querySelector(".run-progress");
    bar.max = Math.max(run.progress.total, 1);
    bar.value = run.progress.done;
    bar.textContent = run.progress.done + "/" + run.progress.total;
    row.querySelector(".run-step").textContent = run.step;
    row.querySelector(".run-error").textContent = run.error;
    if (run.status === "done" && run.download_url) {
      var cell = row.querySelector(".run-file");
      var link = text("a", run.filename);
      link.href = run.download_url;
      link.setAttribute("download", "");
      var hash = text("div", "data hash " + run.data_hash.slice(0, 16) + "…", "small muted");
      hash.title = "SHA-256 of the data used: " + run.data_hash;
      cell.replaceChildren(link, hash);
    }
  }
  function poll(row, failures) {
    fetch("/api/v1/report-runs/" + row.dataset.runId + "/", {
      credentials: "same-origin", headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (run) {
        render(row, run);
        if (!FINISHED[run.status]) setTimeout(function () { poll(row, 0); }, 1000);
      })
      .catch(function () {
        // a network hiccup: try again a little later; after a while, leave it to a reload
        if (failures >= 10) {
          row.querySelector(".run-step").textContent = "Status unknown: reload the page.";
          return;
        }
        setTimeout(function () { poll(row, failures + 1); }, 5000);
      });
  }
  table.querySelectorAll("tr[data-run-id]").forEach(function (row) {
    if (!FINISHED[row.dataset.status]) poll(row, 0);
  });
})();
