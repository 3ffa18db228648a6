// Refreshes /view_metrics in place: every few seconds it reads /view_metrics?format=json and
// updates the summary cards, the counters, the bars, the quantiles and the tables. Values are
// written with textContent, never as HTML. Without JavaScript the page shows the values it was
// served with.
"use strict";

(function () {
  var INTERVAL_MS = 3000;
  // The last sample of the request counter and when it was read or collected: the page's own
  // values first (from the rate card's data attributes), then each snapshot's.
  var previous = null;

  function text(id, value) {
    var element = document.getElementById(id);
    if (element && element.textContent !== String(value)) {
      element.textContent = value;
    }
  }

  function seconds(value) {
    return value === null || value === undefined ? "n/a" : value.toFixed(4);
  }

  function cell(row, value, numeric, label) {
    var td = document.createElement("td");
    if (numeric) {
      td.className = "num";
    }
    if (label) {
      td.setAttribute("data-label", label);
    }
    td.textContent = value;
    row.appendChild(td);
  }

  function sample(requests, at) {
    return isFinite(requests) && isFinite(at) ? { requests: requests, at: at } : null;
  }

  function pageSample() {
    var card = document.getElementById("rate-card");
    if (!card) {
      return null;
    }
    return sample(
      Number(card.getAttribute("data-requests")),
      Date.parse(card.getAttribute("data-at"))
    );
  }

  // Requests per second between two samples. A sample no newer than the last (the otel backend
  // between two collections) waits for the next; a counter that went down (a restart) starts over.
  function updateRate(snapshot) {
    var current = sample(
      snapshot.counters.http_requests_total,
      Date.parse(snapshot.collected_at || snapshot.timestamp)
    );
    if (!current) {
      return;
    }
    if (previous && current.at > previous.at && current.requests >= previous.requests) {
      var seconds = (current.at - previous.at) / 1000;
      text("rate", ((current.requests - previous.requests) / seconds).toFixed(2));
      text("rate-detail", "over the last " + seconds.toFixed(1) + " s");
      previous = current;
    } else if (!previous || current.at < previous.at || current.requests < previous.requests) {
      previous = current;
    }
  }

  // The share of requests that failed, and how the error card is marked: as the page does.
  function updateErrors(counters) {
    var requests = counters.http_requests_total;
    var e4 = counters.http_error_4xx_total;
    var e5 = counters.http_error_5xx_total;
    text("requests", requests);
    text("errors-4xx", e4);
    text("errors-5xx", e5);
    text("error-ratio", requests > 0 ? (((e4 + e5) / requests) * 100).toFixed(1) + "%" : "n/a");
    var card = document.getElementById("errors-card");
    if (card) {
      var state = e5 > 0 ? "bad" : e4 > 0 ? "warn" : "";
      if (state) {
        card.setAttribute("data-state", state);
      } else {
        card.removeAttribute("data-state");
      }
    }
  }

  function statusClass(status) {
    return status >= 500 ? "s5xx" : status >= 400 ? "s4xx" : "";
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
      var status = statusClass(s.http_response_status_code);
      if (status) {
        row.className = status;
      }
      cell(row, s.http_route, false);
      cell(row, s.http_request_method, false, "Method");
      cell(row, s.http_response_status_code, true, "Status");
      cell(row, s.count, true, "Count");
      cell(row, seconds(s.quantiles.p50), true, "p50 (s)");
      cell(row, seconds(s.quantiles.p99), true, "p99 (s)");
      cell(row, seconds(s.native ? s.native.quantiles.p99 : null), true, "p99 native (s)");
      fresh.appendChild(row);
    });
    body.parentNode.replaceChild(fresh, body);
    var empty = document.getElementById("routes-empty");
    if (empty) {
      empty.hidden = series.length > 0;
    }
  }

  // A native bucket bound to 6 significant digits, as the server writes it.
  function bound(value) {
    return String(Number(value.toPrecision(6)));
  }

  // The classic and native quantiles side by side, and the native buckets.
  function updateNative(histogram, quantiles) {
    var native = histogram.native;
    ["p50", "p90", "p99"].forEach(function (name) {
      var row = document.querySelector('#quantiles tr[data-quantile="' + name + '"]');
      if (row) {
        row.cells[1].textContent = seconds(quantiles[name]);
        row.cells[2].textContent = seconds(native ? native.quantiles[name] : null);
      }
    });
    if (!native) {
      return;
    }
    text("native-schema", native.schema);
    text("native-zero-count", native.zero_count);
    var body = document.querySelector("#native-buckets tbody");
    if (!body) {
      return;
    }
    var fresh = document.createElement("tbody");
    native.buckets.forEach(function (b) {
      var row = document.createElement("tr");
      cell(row, bound(b.lower), true);
      cell(row, bound(b.upper), true);
      cell(row, b.count, true);
      fresh.appendChild(row);
    });
    body.parentNode.replaceChild(fresh, body);
  }

  function updateProcess(process) {
    if (!process) {
      return;
    }
    text("process-cpu", process.cpu_seconds_total.toFixed(2));
    text("process-memory", (process.resident_memory_bytes / (1024 * 1024)).toFixed(1));
    text("process-fds", Math.round(process.open_fds));
  }

  // The faults in force, worded as the page words them; a fault that is on is marked.
  function updateFaults(chaos) {
    if (!chaos) {
      return;
    }
    var rows = [
      ["fault-ready", chaos.ready ? "ready" : "not ready (503)", !chaos.ready],
      ["fault-healthy", chaos.healthy ? "healthy" : "unhealthy (503)", !chaos.healthy],
      ["fault-cpu", String(chaos.cpu_stress_cores), chaos.cpu_stress_cores > 0],
      ["fault-memory", String(chaos.memory_stress_bytes), chaos.memory_stress_bytes > 0],
      ["fault-panic", chaos.panic_allowed ? "ends the process" : "refused (403)", chaos.panic_allowed],
      ["fault-errors", String(chaos.error_rate), chaos.error_rate > 0],
      ["fault-latency", String(chaos.latency_seconds), chaos.latency_seconds > 0],
    ];
    rows.forEach(function (row) {
      text(row[0], row[1]);
      var cell = document.getElementById(row[0]);
      if (cell) {
        cell.className = row[2] ? "bad" : "";
      }
    });
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
    updateErrors(snapshot.counters);
    updateRate(snapshot);
    updateChart(snapshot.request_processing_seconds.buckets);
    text("histogram-count", snapshot.request_processing_seconds.count);
    text("histogram-sum", snapshot.request_processing_seconds.sum.toFixed(6));
    text("p50", seconds(snapshot.quantiles.p50));
    text("p90", seconds(snapshot.quantiles.p90));
    text("p99", seconds(snapshot.quantiles.p99));
    updateNative(snapshot.request_processing_seconds, snapshot.quantiles);
    updateRoutes(snapshot.http_server_request_duration_seconds);
    updateProcess(snapshot.process);
    updateFaults(snapshot.chaos);
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

  previous = pageSample();
  setInterval(poll, INTERVAL_MS);
})();
