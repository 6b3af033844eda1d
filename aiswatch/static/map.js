// aiswatch map: everything from this server (no CDN, no tiles). Times UTC.
"use strict";
const params = new URLSearchParams(location.search);
// A static copy (aiswatch demo) carries its answers in data.js instead of asking the API.
const STATIC_DATA = window.AISWATCH_DATA || null;
const DEFAULTS = window.AISWATCH_DEFAULTS || {};
const map = L.map("map", { zoomSnap: 0.25 }).setView([42.5, 131.8], 8);
const layers = { zones: L.featureGroup().addTo(map), track: L.featureGroup().addTo(map),
                 gaps: L.featureGroup().addTo(map), calls: L.featureGroup().addTo(map),
                 watched: L.featureGroup().addTo(map) };
const status = document.getElementById("status");

async function get(path) {
  if (STATIC_DATA) {
    if (path in STATIC_DATA) return STATIC_DATA[path];
    throw new Error("not in this static copy: run `aiswatch api` for live questions");
  }
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(`${response.status}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
  }
  return response.json();
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

async function coastline() {
  const land = await get(STATIC_DATA ? "coastline" : "/static/coastline.geojson");
  L.geoJSON(land, { interactive: false,
                    style: { color: "#6b6b55", weight: 1, fillColor: "#efe9d6", fillOpacity: 1 } }).addTo(map);
}

async function zones() {
  const doc = await get("/api/v1/zones");
  L.geoJSON(doc, {
    style: f => ({ color: f.properties.zone === "berth" ? "#c0392b" : "#e67e22", weight: 2,
                   fillOpacity: 0.08, className: "zone" }),
    onEachFeature: (f, layer) => layer.bindTooltip(`${f.properties.port} (${f.properties.zone})`),
  }).addTo(layers.zones);
}

async function watched() {
  const list = document.getElementById("watched");
  const doc = await get("/api/v1/watched/last-positions");
  for (const p of doc.items) {
    const label = `${p.vessel} (MMSI ${p.mmsi}) ${p.ts}`;
    L.circleMarker([p.lat, p.lon], { radius: 6, color: "#1a5276", fillOpacity: 0.9, className: "watched" })
      .bindTooltip(label).addTo(layers.watched);
    const item = text("li", label);
    item.onclick = () => { document.getElementById("vessel").value = p.vessel; show(); };
    list.appendChild(item);
  }
}

function range() {
  const q = new URLSearchParams();
  for (const name of ["since", "until"]) {
    const value = document.getElementById(name).value.trim();
    if (value) q.set(name, value);
  }
  return q;
}

async function track(vessel) {
  const q = range();
  q.set("format", "geojson");
  const doc = await get(`/api/v1/vessels/${encodeURIComponent(vessel)}/track?${q}`);
  let fixes = 0;
  for (const f of doc.features) {
    if (f.properties.kind === "gap") {
      const [a, b] = f.geometry.coordinates.map(c => [c[1], c[0]]);
      const what = f.properties.dark ? "dark" : "silent";
      L.polyline([a, b], { color: "#7d3c98", weight: 2, dashArray: "6 6", className: "gap" })
        .bindTooltip(`${what} ${f.properties.hours} h, ${f.properties.start} to ${f.properties.end}`)
        .addTo(layers.gaps);
      L.circleMarker(a, { radius: 5, color: "#7d3c98", className: "gap-start" })
        .bindTooltip(`went ${what} ${f.properties.start}`).addTo(layers.gaps);
      L.circleMarker(b, { radius: 5, color: "#7d3c98", fillOpacity: 1, className: "gap-end" })
        .bindTooltip(`seen again ${f.properties.end}`).addTo(layers.gaps);
    } else if (f.geometry.type === "LineString") {
      fixes += f.geometry.coordinates.length;
      L.polyline(f.geometry.coordinates.map(c => [c[1], c[0]]), { color: "#1f618d", weight: 3, className: "track" })
        .bindTooltip(`${f.properties.start} to ${f.properties.end}`).addTo(layers.track);
    }
  }
  return fixes;
}

async function events(vessel) {
  const list = document.getElementById("events");
  const q = range();
  q.set("vessel", vessel);
  q.set("limit", "500");
  const doc = await get(`/api/v1/events?${q}`);
  for (const e of doc.items) {
    const item = text("li", "");
    item.appendChild(text("span", e.kind.replace("_", " "), "kind"));
    item.appendChild(document.createTextNode(` ${e.port || ""} ${e.start}${e.end ? " to " + e.end : ""}`));
    if (e.lat !== null && e.lon !== null) {
      item.onclick = () => map.setView([e.lat, e.lon], 11);
      if (e.kind === "port_call") {
        L.circleMarker([e.lat, e.lon], { radius: 7, color: "#c0392b", className: "port-call" })
          .bindTooltip(`port call ${e.port} ${e.start}`).addTo(layers.calls);
      }
    }
    list.appendChild(item);
  }
  return doc.items.length;
}

async function show(event) {
  if (event) event.preventDefault();
  for (const name of ["track", "gaps", "calls"]) layers[name].clearLayers();
  document.getElementById("events").replaceChildren();
  const vessel = document.getElementById("vessel").value.trim();
  if (!vessel) return;
  status.textContent = "loading...";
  try {
    const [fixes, count] = await Promise.all([track(vessel), events(vessel)]);
    status.textContent = `${vessel}: ${fixes} track points, ${count} events`;
    const bounds = layers.track.getBounds().extend(layers.gaps.getBounds());
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.1));
  } catch (error) {
    status.textContent = `${vessel}: ${error.message}`;
  }
}

async function start() {
  for (const name of ["vessel", "since", "until"]) {
    const value = params.has(name) ? params.get(name) : DEFAULTS[name];
    if (value) document.getElementById(name).value = value;
  }
  document.getElementById("query").addEventListener("submit", show);
  try {
    await Promise.all([coastline(), zones(), watched()]);
    await show();
  } catch (error) {
    status.textContent = error.message;
  }
  document.body.dataset.ready = "1";
}
start();
