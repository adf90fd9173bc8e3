/* Kubemate charts: draw ECharts into elements marked data-chart, reading numbers from json_script tags.
 *
 *   <div data-chart="gauge|bars|timeseries" data-chart-source="capacity-data" data-chart-resource="cpu"></div>
 *   {{ chart_data|json_script:"capacity-data" }}
 *
 * The source holds {labels: {...}, <resource>: {...}, ...}: for gauges and bars {labels: {capacity, requests,
 * usage}, cpu: {...}, memory: {...}} as built by apps.clusters.queries.Capacity.chart_data(); for time series
 * {labels: {cores, per_second}, <chart key>: {unit, stack, start, end, series: [{name, data: [[ms, value
 * or null], ...], dashed}]}} as built by apps.observability.metrics.services.Board.chart_data(). Times arrive
 * already shifted to the reader's time zone and are drawn as UTC, so the browser's own zone does not matter.
 * Charts are (re)drawn on load and after htmx swaps; charts leaving the page are disposed of.
 */
(function () {
  "use strict";
  if (window.kubemateCharts) return;  // a page that loads the script twice draws once
  window.kubemateCharts = true;

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

  // Time series ------------------------------------------------------------------------------------------------
  var PALETTE = ["#066fd1", "#2fb344", "#f76707", "#ae3ec9", "#d63939", "#17a2b8", "#f59f00", "#74b816",
                 "#4263eb", "#d6336c", "#0ca678", "#7048e8", "#e8590c", "#1098ad", "#5c940d", "#a61e4d"];

  function cssColor(name, fallback) {
    var value = getComputedStyle(document.body).getPropertyValue(name);
    return value && value.trim() ? value.trim() : fallback;
  }

  function trim(text) {
    return text.indexOf(".") >= 0 ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
  }

  function number(v) {
    if (v === null || v === undefined || isNaN(v)) return "—";
    var a = Math.abs(v);
    if (a >= 1e9) return trim((v / 1e9).toFixed(1)) + "G";
    if (a >= 1e6) return trim((v / 1e6).toFixed(1)) + "M";
    if (a >= 1e4) return trim((v / 1e3).toFixed(1)) + "k";
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return trim(v.toFixed(1));
    if (a >= 1) return trim(v.toFixed(2));
    if (a === 0) return "0";
    return trim(v.toPrecision(2));
  }

  function bytes(v) {
    if (v === null || v === undefined || isNaN(v)) return "—";
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    var i = 0, a = Math.abs(v);
    while (a >= 1024 && i < units.length - 1) { a /= 1024; v /= 1024; i++; }
    return trim(v.toFixed(a >= 100 || i === 0 ? 0 : 1)) + " " + units[i];
  }

  function formatter(unit, labels) {
    switch (unit) {
      case "cores": return function (v) { return v === null || v === undefined ? "—" : number(v) + " " + (labels.cores || ""); };
      case "bytes": return bytes;
      case "bytes_per_second": return function (v) { return v === null || v === undefined ? "—" : bytes(v) + "/s"; };
      case "per_second": return function (v) { return v === null || v === undefined ? "—" : number(v) + " " + (labels.per_second || "/s"); };
      case "percent": return function (v) { return v === null || v === undefined ? "—" : number(v) + "%"; };
      case "seconds": return function (v) {
        if (v === null || v === undefined) return "—";
        return Math.abs(v) < 1 ? number(v * 1000) + " ms" : number(v) + " s";
      };
      default: return number;
    }
  }

  // Byte axes step in whole binary units (256 MiB, 1 GiB), not in decimal ones (238 MiB).
  function binaryTicks(series) {
    var top = 0;
    series.forEach(function (s) { s.data.forEach(function (p) { if (p[1] !== null && p[1] > top) top = p[1]; }); });
    if (!(top > 0)) return {};
    var unit = 1;
    while (top / unit >= 1024 && unit < Math.pow(1024, 5)) unit *= 1024;
    var raw = top / unit / 5;
    var nice = [0.25, 0.5, 1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 200, 250, 256, 500, 512, 1024];
    var step = nice.find(function (n) { return n >= raw; }) || 1024;
    var interval = step * unit;
    return { interval: interval, max: Math.ceil(top / interval) * interval };
  }

  function timeseriesOption(data, labels) {
    var format = formatter(data.unit, labels || {});
    var ticks = data.unit === "bytes" || data.unit === "bytes_per_second" ? binaryTicks(data.series) : {};
    var muted = cssColor("--tblr-secondary", "#6c7a91");
    var border = cssColor("--tblr-border-color", "#dce1e7");
    var many = data.series.length > 1;
    return {
      animation: false,
      useUTC: true,
      color: PALETTE,
      grid: { left: 8, right: 16, top: 12, bottom: many ? 36 : 8, containLabel: true },
      tooltip: {
        trigger: "axis", confine: true, order: "valueDesc", valueFormatter: format,
        axisPointer: { type: "line", lineStyle: { color: muted } },
        textStyle: { fontSize: 12 }
      },
      legend: many ? { type: "scroll", bottom: 0, icon: "roundRect", itemWidth: 12, itemHeight: 4,
                       textStyle: { color: muted, fontSize: 11 }, pageTextStyle: { color: muted } } : { show: false },
      xAxis: {
        type: "time", min: data.start, max: data.end,
        axisLabel: { color: muted, fontSize: 10, hideOverlap: true },
        axisLine: { lineStyle: { color: border } }, axisTick: { show: false }, splitLine: { show: false }
      },
      yAxis: {
        type: "value", min: data.unit === "percent" ? 0 : undefined, interval: ticks.interval, max: ticks.max,
        axisLabel: { color: muted, fontSize: 10, formatter: format },
        splitLine: { lineStyle: { color: border, type: "dashed" } }
      },
      series: data.series.map(function (s) {
        var alone = s.data.filter(function (p) { return p[1] !== null; }).length < 3;
        return {
          name: s.name, type: "line", data: s.data, showSymbol: alone, symbolSize: 4, connectNulls: false,
          lineStyle: { width: s.dashed ? 1.2 : 1.6, type: s.dashed ? "dashed" : "solid" },
          stack: data.stack && !s.dashed ? "total" : undefined,
          areaStyle: data.stack && !s.dashed ? { opacity: 0.3 } : undefined,
          emphasis: { focus: "series" }
        };
      })
    };
  }

  var BUILDERS = { gauge: gaugeOption, bars: barsOption, timeseries: timeseriesOption };

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
  // A chart swapped out (a card refreshing itself) lets go of its ECharts instance.
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var el = event.target;
    if (el && el.dataset && el.dataset.chart && typeof echarts !== "undefined") {
      var chart = echarts.getInstanceByDom(el);
      if (chart) chart.dispose();
    }
  });
  window.addEventListener("resize", resizeAll);
})();
