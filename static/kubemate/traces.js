/* Kubemate traces (templates/observability/traces/): the search form's choices, the latency scatter, the span
 * waterfall and the service graph. No inline script: data comes from json_script tags and data- attributes.
 *
 * Search: changing the cluster or the service ([data-traces-choose]) reloads the form with choose=1 (new choices,
 * no search); the range select shows the custom inputs. Scatter: <div data-traces-scatter="<json id>"> holds
 * {points: [{id, x (ms shifted to the reader's zone, drawn as UTC), y (ms), error, name, url}], labels}; a click
 * opens the trace. Waterfall: rows [data-row] with [data-parent-row]; a row's toggle hides or shows the rows below
 * it, a click on the row opens its details ([data-detail-row]). Graph: <div data-traces-graph="<json id>"> holds
 * {nodes: [{name, outside}], edges: [{source, target, calls}], labels}.
 */
(function () {
  "use strict";
  if (window.kubemateTraces) return;
  window.kubemateTraces = true;

  var RED = "#d63939", BLUE = "#066fd1", GREY = "#adb5bd";

  function readJson(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function cssColor(name, fallback) {
    var value = getComputedStyle(document.body).getPropertyValue(name);
    return value && value.trim() ? value.trim() : fallback;
  }

  // The search form -----------------------------------------------------------------------------------------------
  function showCustom(form) {
    var select = form.querySelector("[data-traces-range]");
    var box = form.querySelector("[data-traces-custom]");
    if (!select || !box) return;
    var custom = select.value === "custom";
    box.classList.toggle("d-none", !custom);
    box.classList.toggle("d-flex", custom);
    box.querySelectorAll("input").forEach(function (input) { input.disabled = !custom; });
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    var form = el.closest && el.closest("#traces-form");
    if (!form) return;
    if (el.matches("[data-traces-range]")) showCustom(form);
    if (el.matches("[data-traces-choose]")) {
      if (el.name === "cluster") {
        var service = form.querySelector("[name=service]");
        if (service) service.value = "";
      }
      var operation = form.querySelector("[name=operation]");
      if (operation) operation.value = "";
      var params = new URLSearchParams(new FormData(form));
      params.set("choose", "1");
      var url = form.getAttribute("action") + "?" + params.toString();
      if (window.htmx) {
        window.htmx.ajax("GET", url, { target: "#traces", swap: "outerHTML" });
      } else {
        window.location = url;
      }
    }
  });

  // The latency scatter ----------------------------------------------------------------------------------------
  function scatter(el) {
    var data = readJson(el.dataset.tracesScatter);
    if (!data || typeof echarts === "undefined") return;
    var muted = cssColor("--tblr-secondary", "#6c7a91");
    var border = cssColor("--tblr-border-color", "#dce1e7");
    var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      useUTC: true,
      grid: { left: 8, right: 16, top: 12, bottom: 8, containLabel: true },
      tooltip: {
        trigger: "item", confine: true,
        formatter: function (p) {
          var d = p.data.point;
          var text = document.createElement("span");
          text.textContent = d.name + " · " + d.y + " ms";
          return text.innerHTML;
        }
      },
      xAxis: { type: "time", axisLabel: { color: muted, fontSize: 10, hideOverlap: true },
               axisLine: { lineStyle: { color: border } }, splitLine: { show: false } },
      yAxis: { type: "value", name: (data.labels || {}).duration || "ms", nameTextStyle: { color: muted, fontSize: 10 },
               axisLabel: { color: muted, fontSize: 10 }, splitLine: { lineStyle: { color: border, type: "dashed" } } },
      series: [{
        type: "scatter", symbolSize: 9, cursor: "pointer",
        data: data.points.map(function (d) {
          return { value: [d.x, d.y], point: d, itemStyle: { color: d.error ? RED : BLUE, opacity: 0.8 } };
        })
      }]
    }, true);
    chart.off("click");
    chart.on("click", function (p) { if (p.data && p.data.point && p.data.point.url) window.location = p.data.point.url; });
  }

  // The service graph ------------------------------------------------------------------------------------------
  function graph(el) {
    var data = readJson(el.dataset.tracesGraph);
    if (!data || typeof echarts === "undefined") return;
    var muted = cssColor("--tblr-secondary", "#6c7a91");
    var top = Math.max.apply(null, data.edges.map(function (e) { return e.calls; }).concat([1]));
    // ECharts draws no self-loop (only its label, floating over the node): a service's calls to itself are written
    // beside its name instead.
    var self = {};
    data.edges.forEach(function (e) { if (e.source === e.target) self[e.source] = e.calls; });
    var calls = (data.labels || {}).calls || "";
    var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "item", confine: true, formatter: function (p) {
        var text = document.createElement("span");
        text.textContent = p.dataType === "edge"
          ? p.data.source + " → " + p.data.target + ": " + p.data.value + " " + calls
          : p.data.name + (self[p.data.name] ? " (↻ " + self[p.data.name] + " " + calls + ")" : "");
        return text.innerHTML;
      } },
      series: [{
        type: "graph", layout: "force", roam: true, draggable: true,
        // Laid out at once (no animation): the picture does not move after it is drawn.
        force: { repulsion: 1000, edgeLength: [200, 300], gravity: 0.1, layoutAnimation: false },
        label: { show: true, position: "bottom", distance: 6, color: cssColor("--tblr-body-color", "#1d273b"), fontSize: 12,
                 formatter: function (p) { return p.name + (self[p.name] ? "  ↻ " + self[p.name] : ""); } },
        edgeSymbol: ["none", "arrow"], edgeSymbolSize: 8,
        edgeLabel: { show: true, fontSize: 10, color: muted, formatter: function (p) { return p.data.value; } },
        data: data.nodes.map(function (n) {
          return { name: n.name, symbolSize: 22, itemStyle: { color: n.outside ? GREY : BLUE } };
        }),
        links: data.edges.filter(function (e) { return e.source !== e.target; }).map(function (e) {
          return { source: e.source, target: e.target, value: e.calls,
                   lineStyle: { width: 1 + 4 * e.calls / top, color: muted, curveness: 0.1 } };
        })
      }]
    }, true);
  }

  // The waterfall ----------------------------------------------------------------------------------------------
  function rowsOf(root) { return Array.prototype.slice.call(root.querySelectorAll("[data-row]")); }

  function layout(root) {
    // A row is shown when no row above it is collapsed.
    var rows = rowsOf(root), hidden = {};
    rows.forEach(function (row) {
      var parent = row.dataset.parentRow;
      var gone = parent !== "-1" && (hidden[parent] || byIndex(root, parent).dataset.collapsed === "true");
      hidden[row.dataset.row] = gone;
      row.classList.toggle("d-none", gone);
      var icon = row.querySelector("[data-traces-toggle] i");
      if (icon) {
        icon.classList.toggle("ti-chevron-right", row.dataset.collapsed === "true");
        icon.classList.toggle("ti-chevron-down", row.dataset.collapsed !== "true");
      }
      if (gone) {
        var detail = root.querySelector('[data-detail-row="' + row.dataset.row + '"]');
        if (detail) detail.classList.add("d-none");
        row.classList.remove("is-open");
      }
    });
  }

  function byIndex(root, index) { return root.querySelector('[data-row="' + index + '"]'); }

  function waterfall(root) {
    if (root.dataset.ready) return;
    root.dataset.ready = "1";
    layout(root);
    root.addEventListener("click", function (event) {
      var row = event.target.closest("[data-row]");
      if (!row) return;
      if (event.target.closest("[data-traces-toggle]")) {
        row.dataset.collapsed = row.dataset.collapsed === "true" ? "false" : "true";
        layout(root);
        return;
      }
      var detail = root.querySelector('[data-detail-row="' + row.dataset.row + '"]');
      if (!detail) return;
      var open = detail.classList.toggle("d-none") === false;
      row.classList.toggle("is-open", open);
      row.setAttribute("aria-expanded", open ? "true" : "false");
    });
    root.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" && event.key !== " ") return;
      var row = event.target.closest("[data-row]");
      if (!row) return;
      event.preventDefault();
      row.click();
    });
    document.querySelectorAll("[data-traces-expand]").forEach(function (button) {
      button.addEventListener("click", function () {
        var collapse = button.dataset.tracesExpand === "none";
        rowsOf(root).forEach(function (row) {
          if (row.querySelector("[data-traces-toggle]")) row.dataset.collapsed = collapse && row.dataset.parentRow !== "-1" ? "true" : "false";
        });
        layout(root);
      });
    });
  }

  function draw(scope) {
    (scope || document).querySelectorAll("[data-traces-scatter]").forEach(scatter);
    (scope || document).querySelectorAll("[data-traces-graph]").forEach(graph);
    (scope || document).querySelectorAll("[data-traces-waterfall]").forEach(waterfall);
    (scope || document).querySelectorAll("#traces-form").forEach(showCustom);
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target.parentNode || document); });
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var el = event.target;
    if (el && el.dataset && (el.dataset.tracesScatter || el.dataset.tracesGraph) && typeof echarts !== "undefined") {
      var chart = echarts.getInstanceByDom(el);
      if (chart) chart.dispose();
    }
  });
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-traces-scatter], [data-traces-graph]").forEach(function (el) {
      var chart = typeof echarts !== "undefined" && echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
})();
