/* Kubemate log search (templates/observability/logs/search.html): the volume histogram, the time range controls
 * and the live tail. No inline script: data comes from json_script tags and data- attributes.
 *
 * Histogram: <div data-logs-histogram="<json_script id>"> holds {start, end, step, series: [{key, name, data:
 * [[ms, count], ...]}]} as built by apps.observability.logs.shaping.chart_data(); times arrive shifted to the
 * reader's time zone and are drawn as UTC, so a bar's time written as ISO without a zone is the reader's local time,
 * which is what the form's datetime-local inputs take. Clicking a bar zooms the search to it. The whole page brings
 * the chart with its lines; the results partial the form swaps in brings a placeholder (#logs-histogram-box) that
 * asks for the chart by its own request (hx-trigger="load") and is swapped for it: the chart is drawn on that swap's
 * htmx:afterSettle like on any other.
 *
 * Live tail: [data-tail-action=start] hides the search's lines and polls #logs-tail's data-tail-url once a second
 * (after the previous answer has come back) with the cursor (after, seen) the previous answer gave; new lines go
 * at the bottom, the view follows them unless the reader has scrolled up, at most data-tail-cap lines are kept (the
 * oldest are dropped and counted). Why polling rather than a held-open stream: see apps/observability/logs/live.py.
 */
(function () {
  "use strict";
  if (window.kubemateLogs) return;
  window.kubemateLogs = true;

  var COLORS = { error: "#d63939", warn: "#f76707", info: "#066fd1", debug: "#868e96", other: "#ced4da" };
  var POLL_MS = 1000;
  var RETRY_MS = 5000;

  function readJson(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function cssColor(name, fallback) {
    var value = getComputedStyle(document.body).getPropertyValue(name);
    return value && value.trim() ? value.trim() : fallback;
  }

  function localInput(ms) {
    return new Date(ms).toISOString().slice(0, 19);  // shifted ms: the ISO text is the reader's local time
  }

  // The time range ------------------------------------------------------------------------------------------------
  function form() { return document.getElementById("logs-form"); }

  function showCustom() {
    var f = form();
    if (!f) return;
    var select = f.querySelector("[data-logs-window]");
    var box = f.querySelector("[data-logs-custom]");
    if (!select || !box) return;
    var custom = select.value === "custom";
    box.classList.toggle("d-none", !custom);
    box.classList.toggle("d-flex", custom);
  }

  function zoom(startMs, endMs) {
    var f = form();
    if (!f) return;
    f.querySelector("[data-logs-window]").value = "custom";
    f.querySelector("[name=start]").value = localInput(startMs);
    f.querySelector("[name=end]").value = localInput(endMs);
    showCustom();
    if (f.requestSubmit) f.requestSubmit(); else f.submit();
  }

  // The histogram -------------------------------------------------------------------------------------------------
  function drawHistograms(root) {
    if (typeof echarts === "undefined") return;
    (root || document).querySelectorAll("[data-logs-histogram]").forEach(function (el) {
      var data = readJson(el.dataset.logsHistogram);
      if (!data || !data.series) return;
      var muted = cssColor("--tblr-secondary", "#6c7a91");
      var border = cssColor("--tblr-border-color", "#dce1e7");
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        useUTC: true,
        grid: { left: 8, right: 12, top: 8, bottom: 24, containLabel: true },
        tooltip: { trigger: "axis", confine: true, axisPointer: { type: "shadow" }, textStyle: { fontSize: 12 } },
        legend: { bottom: 0, icon: "roundRect", itemWidth: 10, itemHeight: 6, textStyle: { color: muted, fontSize: 11 } },
        xAxis: { type: "time", min: data.start, max: data.end, axisLabel: { color: muted, fontSize: 10, hideOverlap: true },
                 axisLine: { lineStyle: { color: border } }, axisTick: { show: false }, splitLine: { show: false } },
        yAxis: { type: "value", minInterval: 1, axisLabel: { color: muted, fontSize: 10 },
                 splitLine: { lineStyle: { color: border, type: "dashed" } } },
        series: data.series.map(function (s) {
          return { name: s.name, type: "bar", stack: "lines", data: s.data, barCategoryGap: "10%",
                   itemStyle: { color: COLORS[s.key] || COLORS.other }, emphasis: { focus: "series" } };
        })
      }, true);
      chart.off("click");
      chart.on("click", function (p) {
        var at = p.value && p.value[0];
        if (typeof at === "number") zoom(at - data.step / 2, at + data.step / 2);  // bars sit mid-bucket
      });
    });
  }

  function disposeIn(el) {
    if (typeof echarts === "undefined" || !el.querySelectorAll) return;
    var found = el.matches && el.matches("[data-logs-histogram]") ? [el] : [];
    el.querySelectorAll("[data-logs-histogram]").forEach(function (c) { found.push(c); });
    found.forEach(function (c) { var chart = echarts.getInstanceByDom(c); if (chart) chart.dispose(); });
  }

  // The live tail -------------------------------------------------------------------------------------------------
  var tail = null;  // {panel, box, after, seen, paused, timer, dropped}

  function nearBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 40; }

  function tailUrl(t) {
    var url = t.panel.dataset.tailUrl + "&after=" + encodeURIComponent(t.after);
    t.seen.forEach(function (c) { url += "&seen=" + encodeURIComponent(c); });
    return url;
  }

  function schedule(t, ms) {
    clearTimeout(t.timer);
    if (!t.paused) t.timer = setTimeout(function () { poll(t); }, ms);
  }

  function showError(t, sentence) {
    var box = t.panel.querySelector("[data-tail-error]");
    box.textContent = sentence || "";
    box.classList.toggle("d-none", !sentence);
  }

  function poll(t) {
    if (tail !== t || t.paused) return;
    if (!document.body.contains(t.panel)) { stopTail(); return; }  // the results were swapped out
    fetch(tailUrl(t), { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
      .then(function (html) {
        if (tail !== t) return;
        var holder = document.createElement("template");
        holder.innerHTML = html;
        var answer = holder.content.querySelector("[data-tail-next]");
        if (!answer) throw new Error("answer");
        showError(t, answer.dataset.tailSentence);
        t.after = answer.dataset.tailNext || t.after;
        try { t.seen = JSON.parse(answer.dataset.tailSeen || "[]"); } catch (e) { t.seen = []; }
        var rows = Array.prototype.slice.call(answer.children);
        if (rows.length) {
          var follow = nearBottom(t.box);
          rows.forEach(function (row) { t.box.appendChild(row); if (window.htmx) htmx.process(row); });
          var cap = parseInt(t.panel.dataset.tailCap || "1000", 10);
          var extra = t.box.children.length - cap;
          for (var i = 0; i < extra; i++) t.box.removeChild(t.box.firstElementChild);
          if (extra > 0) {
            t.dropped += extra;
            t.panel.querySelector("[data-tail-dropped]").textContent = t.dropped.toLocaleString();
            t.panel.querySelector("[data-tail-dropped-box]").classList.remove("d-none");
          }
          if (follow) t.box.scrollTop = t.box.scrollHeight;
        }
        schedule(t, answer.dataset.tailSentence ? RETRY_MS : POLL_MS);
      })
      .catch(function () { schedule(t, RETRY_MS); });
  }

  function setPaused(t, paused) {
    t.paused = paused;
    var label = t.panel.querySelector("[data-tail-pause-label]");
    label.textContent = paused ? t.panel.dataset.labelResume : t.panel.dataset.labelPause;
    t.panel.querySelector("[data-tail-dot]").classList.toggle("status-dot-animated", !paused);
    if (paused) clearTimeout(t.timer); else schedule(t, 0);
  }

  function startTail() {
    var panel = document.getElementById("logs-tail");
    if (!panel) return;
    stopTail();
    var list = document.querySelector("[data-logs-list]");
    if (list) list.classList.add("d-none");
    panel.classList.remove("d-none");
    tail = { panel: panel, box: panel.querySelector("[data-tail-lines]"), after: panel.dataset.tailAfter,
             seen: [], paused: false, timer: null, dropped: 0 };
    schedule(tail, 0);
  }

  function stopTail() {
    if (!tail) return;
    clearTimeout(tail.timer);
    var panel = tail.panel;
    tail = null;
    panel.classList.add("d-none");
    var list = document.querySelector("[data-logs-list]");
    if (list) list.classList.remove("d-none");
  }

  function clearTail() {
    if (!tail) return;
    tail.box.textContent = "";
    tail.dropped = 0;
    tail.panel.querySelector("[data-tail-dropped]").textContent = "0";
    tail.panel.querySelector("[data-tail-dropped-box]").classList.add("d-none");
  }

  // Wiring --------------------------------------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-tail-action]");
    if (!button) return;
    var action = button.dataset.tailAction;
    if (action === "start") startTail();
    else if (action === "stop") stopTail();
    else if (action === "clear") clearTail();
    else if (action === "pause" && tail) setPaused(tail, !tail.paused);
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("[data-logs-window]")) {
      showCustom();
      if (el.value !== "custom" && el.form && el.form.requestSubmit) el.form.requestSubmit();
    } else if (el.matches("[data-logs-navigate]") && el.form) {
      // Another cluster has other namespaces, pods and a store of its own: open its page.
      window.location.assign(el.form.dataset.pageUrl + "?cluster=" + encodeURIComponent(el.value));
    } else if (el.matches("[name=regex][type=checkbox]") && el.form) {
      var q = el.form.querySelector("[name=q]");
      if (q) q.placeholder = el.checked ? q.dataset.placeholderRegex : q.dataset.placeholderKeyword;
    }
  });

  document.addEventListener("DOMContentLoaded", function () { showCustom(); drawHistograms(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawHistograms(event.target); });
  document.addEventListener("htmx:beforeCleanupElement", function (event) { disposeIn(event.target); });
  document.addEventListener("htmx:beforeRequest", function (event) {
    // A new search replaces the results: the tail of the old one stops.
    if (tail && event.detail && event.detail.elt === form()) stopTail();
  });
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-logs-histogram]").forEach(function (el) {
      var chart = typeof echarts !== "undefined" && echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
})();
