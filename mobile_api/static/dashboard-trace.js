// The batch trace's map: the custody events' points and path on Rongcheng's outline.
// The points come from the page (a JSON script element filled by the server).
document.addEventListener("DOMContentLoaded", async () => {
  const holder = document.getElementById("map");
  const source = document.getElementById("trace-points");
  if (!holder || !source) return;
  const points = JSON.parse(source.textContent);
  // The GPS positions of the vehicles that carried the batch (wastetrack.fleet).
  const trackSource = document.getElementById("trace-track");
  const track = trackSource ? JSON.parse(trackSource.textContent) : [];
  const outline = await (await fetch("/static/vendor/rongcheng.geojson")).json();
  echarts.registerMap("rongcheng", outline);
  echarts.init(holder).setOption({
    animation: false,
    tooltip: {formatter: (p) => p.name},
    geo: {
      map: "rongcheng", roam: true, label: {show: true, color: "#777"},
      itemStyle: {areaColor: "#eef3ee", borderColor: "#7a9a86"},
      emphasis: {disabled: true},
    },
    series: [
      // A path needs two points at least (ECharts fails on a shorter polyline).
      {type: "lines", coordinateSystem: "geo", polyline: true, silent: true,
       data: points.length > 1 ? [{coords: points.map((p) => p.value)}] : [],
       lineStyle: {color: "#1e5ba8", width: 2}},
      {type: "lines", coordinateSystem: "geo", polyline: true, silent: true,
       data: track.length > 1 ? [{coords: track}] : [],
       lineStyle: {color: "#2f855a", width: 2, type: "dashed"}},
      {type: "scatter", coordinateSystem: "geo", data: points, symbolSize: 12,
       itemStyle: {color: "#c53030"}, label: {show: true, position: "right", formatter: (p) => p.name}},
    ],
  });
  holder.dataset.ready = "1";
});
