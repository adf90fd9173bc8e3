/* Kubemate charts: draw ECharts into elements marked data-chart, reading numbers from json_script tags.
 *
 *   <div data-chart="gauge|bars" data-chart-source="capacity-data" data-chart-resource="cpu"></div>
 *   {{ chart_data|json_script:"capacity-data" }}
 *
 * The source holds {labels: {capacity, requests, usage}, cpu: {...}, memory: {...}} as built by
 * apps.clusters.queries.Capacity.chart_data(). Charts are (re)drawn on load and after htmx swaps.
 */
(function () {
  "use strict";

  var COLORS = { capacity: "#adb5bd", requests: "#066fd1", usage: "#2fb344", warn: "#f59f00", danger: "#d63939" };

  function readSource(id) {
    var node = document.getElementById(id);
    if (!node) return null;
    try {
      return JSON.parse(node.textContent);
    } catch (e) {
      return null;
    }
  }

  function shade(percent, base) {
    if (percent === null || percent === undefined) return base;
    if (percent >= 90) return COLORS.danger;
    if (percent >= 75) return COLORS.warn;
    return base;
  }

  function ring(name, value, color, radius, y) {
    return {
      type: "gauge",
      name: name,
      startAngle: 90,
      endAngle: -270,
      radius: radius,
      min: 0,
      max: 100,
      pointer: { show: false },
      progress: { show: true, roundCap: true, clip: false, itemStyle: { color: color } },
      axisLine: { lineStyle: { width: 10, color: [[1, "#e9ecef"]] } },
      splitLine: { show: false },
      axisTick: { show: false },
      axisLabel: { show: false },
      anchor: { show: false },
      title: { show: true, offsetCenter: [0, y], fontSize: 11, color: "#6c7a91" },
      detail: { show: true, offsetCenter: [0, y - 14], fontSize: 16, fontWeight: 600, color: color,
                // The ring stops at 100%; the figure says the truth (requests may exceed capacity).
                formatter: function () { return value === null ? "—" : value + "%"; } },
      data: [{ value: value === null ? 0 : Math.min(value, 100), name: name }]
    };
  }

  function gaugeOption(data, labels) {
    return {
      animation: false,
      series: [
        ring(labels.requests, data.requests_percent, shade(data.requests_percent, COLORS.requests), "95%", -2),
        ring(labels.usage, data.usage_percent, shade(data.usage_percent, COLORS.usage), "72%", 34)
      ]
    };
  }

  function barsOption(data, labels) {
    var names = [labels.capacity, labels.requests, labels.usage];
    var values = [data.capacity, data.requests, data.usage];
    var colors = [COLORS.capacity, COLORS.requests, COLORS.usage];
    return {
      animation: false,
      grid: { left: 8, right: 48, top: 4, bottom: 4, containLabel: true },
      tooltip: { trigger: "item", formatter: function (p) { return p.name + ": " + (p.value === null ? "—" : p.value); } },
      xAxis: { type: "value", show: false, max: Math.max(data.capacity || 0, data.requests || 0, data.usage || 0) || 1 },
      yAxis: { type: "category", inverse: true, data: names, axisTick: { show: false }, axisLine: { show: false },
               axisLabel: { color: "#6c7a91", fontSize: 11 } },
      series: [{
        type: "bar",
        barWidth: 12,
        data: values.map(function (v, i) { return { value: v, itemStyle: { color: colors[i], borderRadius: 3 } }; }),
        label: { show: true, position: "right", fontSize: 11, color: "#1d273b",
                 formatter: function (p) { return p.value === null || p.value === undefined ? "—" : p.value; } }
      }]
    };
  }

  var BUILDERS = { gauge: gaugeOption, bars: barsOption };

  function draw(root) {
    if (typeof echarts === "undefined") return;
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      var source = readSource(el.dataset.chartSource);
      var build = BUILDERS[el.dataset.chart];
      if (!source || !build) return;
      var data = source[el.dataset.chartResource];
      if (!data) return;
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      chart.setOption(build(data, source.labels || {}), true);
    });
  }

  function resizeAll() {
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var chart = typeof echarts !== "undefined" && echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
  window.addEventListener("resize", resizeAll);
})();
