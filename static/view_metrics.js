// Refreshes /view_metrics in place: every few seconds it reads /view_metrics?format=json and
// updates the counters, the bars, the quantiles and the tables. Values are written with
// textContent, never as HTML. Without JavaScript the page shows the values it was served with.
"use strict";

(function () {
  var INTERVAL_MS = 3000;

  function text(id, value) {
    var element = document.getElementById(id);
    if (element && element.textContent !== String(value)) {
      element.textContent = value;
    }
  }

  function seconds(value) {
    return value === null || value === undefined ? "n/a" : value.toFixed(4);
  }

  function cell(row, value, numeric) {
    var td = document.createElement("td");
    if (numeric) {
      td.className = "num";
    }
    td.textContent = value;
    row.appendChild(td);
  }

  function updateCounters(counters) {
    Object.keys(counters).forEach(function (name) {
      var row = document.getElementById("counter-" + name);
      if (row && row.cells[1]) {
        row.cells[1].textContent = counters[name];
      }
    });
  }

  function updateChart(buckets) {
    var svg = document.getElementById("chart");
    if (!svg) {
      return;
    }
    var plot = Number(svg.getAttribute("data-plot-height"));
    var baseline = Number(svg.getAttribute("data-baseline"));
    var below = 0;
    var own = buckets.map(function (bucket) {
      var count = bucket.count - below;
      below = bucket.count;
      return count;
    });
    var highest = Math.max.apply(null, own.concat([0]));
    var groups = svg.querySelectorAll("g.bucket");
    own.forEach(function (count, i) {
      var group = groups[i];
      if (!group) {
        return;
      }
      var height = highest === 0 ? 0 : (count / highest) * plot;
      var bar = group.querySelector("rect.bar");
      bar.setAttribute("data-count", count);
      bar.setAttribute("height", height.toFixed(2));
      bar.setAttribute("y", (baseline - height).toFixed(2));
      var tip = bar.querySelector("title");
      if (tip) {
        tip.textContent = "le " + buckets[i].le + ": " + count;
      }
      var label = group.querySelector("text.bar-count");
      label.textContent = count;
      label.setAttribute("y", (baseline - height).toFixed(2));
    });
    var rows = document.querySelectorAll("#buckets tbody tr");
    own.forEach(function (count, i) {
      if (rows[i]) {
        rows[i].cells[1].textContent = count;
        rows[i].cells[2].textContent = buckets[i].count;
      }
    });
  }

  function updateRoutes(series) {
    var body = document.querySelector("#routes tbody");
    if (!body) {
      return;
    }
    var fresh = document.createElement("tbody");
    series.forEach(function (s) {
      var row = document.createElement("tr");
      cell(row, s.http_route, false);
      cell(row, s.http_request_method, false);
      cell(row, s.http_response_status_code, true);
      cell(row, s.count, true);
      cell(row, seconds(s.quantiles.p50), true);
      cell(row, seconds(s.quantiles.p99), true);
      fresh.appendChild(row);
    });
    body.parentNode.replaceChild(fresh, body);
    var empty = document.getElementById("routes-empty");
    if (empty) {
      empty.hidden = series.length > 0;
    }
  }

  function updateProcess(process) {
    if (!process) {
      return;
    }
    text("process-cpu", process.cpu_seconds_total.toFixed(2));
    text("process-memory", (process.resident_memory_bytes / (1024 * 1024)).toFixed(1));
    text("process-fds", Math.round(process.open_fds));
  }

  function update(snapshot) {
    // When the values were collected: the read itself, or the SDK's last collection.
    var asOf = document.getElementById("as-of");
    if (asOf) {
      var collected = snapshot.collected_at;
      asOf.textContent = collected || "none yet";
      if (collected) {
        asOf.setAttribute("datetime", collected);
      } else {
        asOf.removeAttribute("datetime");
      }
    }
    updateCounters(snapshot.counters);
    updateChart(snapshot.request_processing_seconds.buckets);
    text("histogram-count", snapshot.request_processing_seconds.count);
    text("histogram-sum", snapshot.request_processing_seconds.sum.toFixed(6));
    text("p50", seconds(snapshot.quantiles.p50));
    text("p90", seconds(snapshot.quantiles.p90));
    text("p99", seconds(snapshot.quantiles.p99));
    updateRoutes(snapshot.http_server_request_duration_seconds);
    updateProcess(snapshot.process);
  }

  function poll() {
    fetch("/view_metrics?format=json", {
      headers: { Accept: "application/json" },
      cache: "no-store",
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (snapshot) {
        update(snapshot);
        text("refresh-status", "live");
      })
      .catch(function () {
        text("refresh-status", "refresh failed, retrying");
      });
  }

  setInterval(poll, INTERVAL_MS);
})();
