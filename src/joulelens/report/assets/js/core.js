/* joulelens report: leaderboard, filters and plots over the embedded payload.
   Plain JavaScript on top of Plotly; no other library. html.py joins the files in js/ inside
   one function scope (core.js first). Tabs render on first view only, so the page opens fast;
   the live server swaps the payload in place when the store changes.
   This file: shared state, helpers, the payload and the tabs. */
var LIVE = JSON.parse(document.getElementById('jl-live').textContent);
var P = null;        // the payload
var ROWS = [];       // decoded runs, one object each
var TASKS = {};      // task -> {kind, unit, runs, models}
var PAGE_SIZE = 100;
var DEFAULT_DEADLINE = 600;  // slider position (of 1000, log scale over the latency range)
var PLOT_CONFIG = {
  displaylogo: false, responsive: true, displayModeBar: 'hover',
  modeBarButtonsToRemove: ['select2d', 'lasso2d']
};
var state = {
  tab: null, dirty: {}, sortKey: null, sortDir: 1, page: 0,
  renders: 0, leaderboard: {}, tradeoff: {}
};
window.__jl = state;  // for tests and the curious: what is shown right now

// ---------------------------------------------------------------- helpers
function $(id) { return document.getElementById(id); }
function esc(s) {
  return String(s).replace(/[&<>"']/g, function (c) {
    return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
  });
}
function fmt(v, digits) {
  if (v === null || v === undefined || (typeof v === 'number' && !isFinite(v))) return '—';
  if (typeof v !== 'number') return String(v);
  if (v === 0) return '0';
  digits = digits || 3;
  if (Math.abs(v) >= Math.pow(10, digits)) return Math.round(v).toLocaleString('en-US');
  return String(Number(v.toPrecision(digits)));
}
function uniq(values) {
  var seen = {}, out = [];
  values.forEach(function (v) {
    if (v !== null && v !== undefined && !seen[v]) { seen[v] = 1; out.push(v); }
  });
  return out;
}
function median(xs) {
  var s = xs.filter(function (x) { return x !== null && x !== undefined; })
    .sort(function (a, b) { return a - b; });
  if (!s.length) return null;
  var m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function setOptions(select, values, allLabel, labels) {
  var keep = select.value;
  var html = allLabel ? '<option value="">' + esc(allLabel) + '</option>' : '';
  values.forEach(function (v) {
    html += '<option value="' + esc(v) + '">' + esc(labels ? labels(v) : v) + '</option>';
  });
  select.innerHTML = html;
  if (keep !== '' && values.map(String).indexOf(keep) >= 0) select.value = keep;
  else if (!allLabel && values.length) select.value = String(values[0]);
}
function empty(div, text) {
  if (window.Plotly && div.classList.contains('js-plotly-plot')) Plotly.purge(div);
  div.innerHTML = '<div class="empty">' + esc(text) + '</div>';
}
function ensurePlotly() {
  // The file report carries Plotly as text and evaluates it on first use (see html.py).
  if (window.Plotly) return;
  var src = document.getElementById('jl-plotly');
  if (!src) throw new Error('Plotly is missing from this page');
  var s = document.createElement('script');
  s.text = src.textContent;
  document.head.appendChild(s);  // inline scripts run synchronously on insertion
}
function plot(div, traces, layout) {
  ensurePlotly();
  if (div.firstChild && div.firstChild.className === 'empty') div.innerHTML = '';
  var base = {
    margin: { l: 64, r: 18, t: 40, b: 52 }, font: { size: 12 },
    paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: '#fff', hovermode: 'closest',
    legend: { font: { size: 11 } }
  };
  Plotly.react(div, traces, Object.assign(base, layout), PLOT_CONFIG);
}
function isDiffusionTask(task) { return TASKS[task] && TASKS[task].kind === 'diffusion'; }
function unitOf(task) { return TASKS[task] ? TASKS[task].unit : 'unit'; }
function setupOf(r) {  // "B200 ×2"; a CPU run is "cpu", not "cpu ×0"
  return r.num_gpus ? (r.gpu || '?') + ' ×' + r.num_gpus : (r.gpu || 'cpu');
}
var SETUP_COLORS = {
  'H100 ×1': '#93c5fd', 'H100 ×2': '#3b82f6', 'H100 ×4': '#1d4ed8', 'H100 ×8': '#1e3a8a',
  'B200 ×1': '#fdba74', 'B200 ×2': '#f97316', 'B200 ×4': '#c2410c', 'B200 ×8': '#7c2d12'
};
var PALETTE = ['#0f766e', '#7c3aed', '#be185d', '#65a30d', '#0891b2', '#a16207', '#4b5563'];
function colorOf(setup, i) { return SETUP_COLORS[setup] || PALETTE[i % PALETTE.length]; }
function bySetup(rows) {
  var groups = {};
  rows.forEach(function (r) { (groups[setupOf(r)] = groups[setupOf(r)] || []).push(r); });
  return Object.keys(groups).sort().map(function (k) { return { setup: k, rows: groups[k] }; });
}
function latencyScale(task) {  // diffusion batch latency reads better in seconds
  return isDiffusionTask(task) ? { f: 1e-3, unit: 's', name: 'batch latency' }
    : { f: 1, unit: 'ms', name: 'median ITL' };
}
function logTicks(values) {
  // 1-2-5 ticks over the data's range, labelled in full (0.05, 200, 5,000), not "5" or "2";
  // powers of ten only, when the range spans too many decades for 1-2-5 to stay legible.
  var v = values.filter(function (x) { return x > 0; });
  if (!v.length) return {};
  var lo = Math.min.apply(null, v), hi = Math.max.apply(null, v), ticks = [];
  for (var e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    [1, 2, 5].forEach(function (m) {
      var t = Number((m * Math.pow(10, e)).toPrecision(1));
      if (t >= lo / 1.5 && t <= hi * 1.5) ticks.push({ t: t, m: m });
    });
  }
  if (ticks.length > 9) ticks = ticks.filter(function (k) { return k.m === 1; });
  return {
    tickvals: ticks.map(function (k) { return k.t; }),
    ticktext: ticks.map(function (k) { return fmt(k.t); })
  };
}
function log2Ticks(values) {
  var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values), out = [];
  for (var v = 1; v <= hi * 1.01; v *= 2) if (v >= lo / 1.01) out.push(v);
  return out;
}

// ---------------------------------------------------------------- payload
function decode(p) {
  var cols = p.runs.cols, dicts = p.runs.dicts, names = Object.keys(cols), rows = [];
  for (var i = 0; i < p.runs.n; i++) {
    var o = { i: i };
    for (var j = 0; j < names.length; j++) {
      var k = names[j], v = cols[k][i];
      o[k] = dicts[k] ? dicts[k][v] : v;
    }
    rows.push(o);
  }
  return rows;
}

function load(p) {
  P = p;
  ROWS = decode(p);
  TASKS = {};
  p.tasks.forEach(function (t) { TASKS[t.task] = t; });
  renderHeader();
  fillControls();
  Object.keys(renderers).forEach(function (k) { state.dirty[k] = true; });
  if (state.tab) show(state.tab);
}

function renderHeader() {
  var m = P.meta;
  $('title').textContent = m.title;
  var f = Object.keys(m.filters).map(function (k) { return k + '=' + m.filters[k]; });
  var src = m.sources.map(function (s) {
    return s.source + (s.version ? ' ' + s.version : '') + ' (' + s.runs + ')';
  });
  $('subtitle').textContent = 'Generated ' + m.generated_at + ' by joulelens ' +
    m.joulelens_version + ' · sources: ' + (src.join(', ') || 'none') +
    (f.length ? ' · filters: ' + f.join(', ') : '');
  var cards = [
    [m.runs, 'runs'], [uniq(ROWS.map(function (r) { return r.model_id; })).length, 'models'],
    [P.tasks.length, 'tasks'], [uniq(ROWS.map(function (r) { return r.gpu; })).join(' · ') || '—', 'GPUs'],
    [ROWS.filter(function (r) { return r.stable === 1; }).length, 'stable'],
    [P.measured.total, 'measured here']
  ];
  $('cards').innerHTML = cards.map(function (c) {
    return '<div class="card"><b>' + esc(c[0]) + '</b><span>' + esc(c[1]) + '</span></div>';
  }).join('');
  $('lb-energy').innerHTML = (m.energy_notes || []).map(function (n) {
    return '<li>' + esc(n) + '</li>';
  }).join('');
  $('footer').textContent = 'joulelens renders stored records; it never re-measures. ' +
    'Payload v' + P.version + '.';
}

function fillControls() {
  var tasks = P.tasks.map(function (t) { return t.task; });
  setOptions($('f-task'), tasks, 'all tasks');
  setOptions($('f-gpu'), uniq(ROWS.map(function (r) { return r.gpu; })).sort(), 'all');
  setOptions($('f-ngpu'), uniq(ROWS.map(function (r) { return r.num_gpus; }))
    .sort(function (a, b) { return a - b; }), 'all');
  setOptions($('f-precision'), uniq(ROWS.map(function (r) { return r.precision; })).sort(), 'all');
  setOptions($('f-source'), uniq(ROWS.map(function (r) { return r.source; })).sort(), 'all');
  setOptions($('to-task'), tasks);
  setOptions($('bt-task'), tasks);
  fillModels($('to-task'), $('to-model'));
  fillModels($('bt-task'), $('bt-model'));
  setOptions($('ms-run'), P.measured.runs.map(function (r) { return r.run_id; }), null,
    function (id) {
      var run = P.measured.runs.filter(function (r) { return r.run_id === id; })[0];
      return run.label + (run.stable === false ? ' · unstable' : '') + ' · ' + id;
    });
}

function fillModels(taskSel, modelSel) {
  var counts = {};
  ROWS.forEach(function (r) {
    if (r.task === taskSel.value && r.latency_ms !== null) counts[r.model] = (counts[r.model] || 0) + 1;
  });
  var models = Object.keys(counts).sort();
  var keep = modelSel.value;
  setOptions(modelSel, models);
  if (models.indexOf(keep) < 0 && models.length) {  // default: the most-measured model
    modelSel.value = models.slice().sort(function (a, b) { return counts[b] - counts[a]; })[0];
  }
}

// ---------------------------------------------------------------- tabs
var renderers = {
  leaderboard: renderLeaderboard, tradeoff: renderTradeoff, batch: renderBatch,
  tasks: renderTasks, diffusion: renderDiffusion, findings: renderFindings,
  measured: renderMeasured
};
function show(name) {
  if (!renderers[name]) name = 'leaderboard';
  state.tab = name;
  document.querySelectorAll('nav.tabs button').forEach(function (b) {
    b.setAttribute('aria-selected', String(b.dataset.tab === name));
  });
  document.querySelectorAll('section.tab').forEach(function (s) {
    s.hidden = s.id !== 'tab-' + name;
  });
  if (state.dirty[name]) {
    state.dirty[name] = false;
    renderers[name]();
    state.renders++;
  } else if (window.Plotly) {
    $('tab-' + name).querySelectorAll('.js-plotly-plot').forEach(function (d) {
      Plotly.Plots.resize(d);
    });
  }
}
