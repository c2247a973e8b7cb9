/* joulelens report: leaderboard, filters and plots over the embedded payload.
   Plain JavaScript on top of Plotly; no other library. Tabs render on first view only, so the
   page opens fast; the live server swaps the payload in place when the store changes. */
(function () {
  'use strict';

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
  function setupOf(r) { return (r.gpu || '?') + ' ×' + r.num_gpus; }
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
        return run.label + ' · ' + id;
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

  // ---------------------------------------------------------------- leaderboard
  var COLUMNS = [
    { k: 'task', l: 'Task' }, { k: 'model', l: 'Model' }, { k: 'gpu', l: 'GPU' },
    { k: 'num_gpus', l: 'GPUs', num: 1 }, { k: 'batch', l: 'Batch', num: 1 },
    { k: 'precision', l: 'Precision' },
    { k: 'energy_per_unit_j', l: 'J/token · J/gen', num: 1, unit: 1,
      t: 'Energy per output token (LLM) or per image/video (diffusion)' },
    { k: 'energy_per_response_j', l: 'J/response', num: 1 },
    { k: 'latency_ms', l: 'Median ITL (ms)', num: 1,
      t: 'Median inter-token latency; diffusion: batch latency' },
    { k: 'throughput_per_s', l: 'Throughput /s', num: 1, t: 'tokens/s, images/s or videos/s' },
    { k: 'power_w', l: 'Power (W)', num: 1, t: 'Average power over the measured window' },
    { k: 'throughput_per_w', l: 'tokens/s/W', num: 1, t: 'Throughput per watt (work per joule)' },
    { k: 'stable', l: 'Stable' }, { k: 'boundary', l: 'Energy boundary' },
    { k: 'method', l: 'Method' }, { k: 'run_id', l: 'Run' }
  ];

  function leaderboardRows() {
    var f = {
      task: $('f-task').value, model: $('f-model').value.trim().toLowerCase(),
      gpu: $('f-gpu').value, ngpu: $('f-ngpu').value, precision: $('f-precision').value,
      source: $('f-source').value, stable: $('f-stable').checked
    };
    var rows = ROWS.filter(function (r) {
      return (!f.task || r.task === f.task) &&
        (!f.model || (r.model + ' ' + r.model_id).toLowerCase().indexOf(f.model) >= 0) &&
        (!f.gpu || r.gpu === f.gpu) && (!f.ngpu || String(r.num_gpus) === f.ngpu) &&
        (!f.precision || r.precision === f.precision) && (!f.source || r.source === f.source) &&
        (!f.stable || r.stable === 1);
    });
    if (state.sortKey) {
      var k = state.sortKey, d = state.sortDir;
      rows.sort(function (a, b) {
        var x = a[k], y = b[k];
        if (x === null || x === undefined) return (y === null || y === undefined) ? a.i - b.i : 1;
        if (y === null || y === undefined) return -1;
        if (x < y) return -d;
        if (x > y) return d;
        return a.i - b.i;
      });
    }
    return rows;
  }

  function renderLeaderboard() {
    var thead = $('lb-table').tHead;
    if (!thead.rows.length) {
      thead.innerHTML = '<tr>' + COLUMNS.map(function (c) {
        return '<th data-key="' + c.k + '"' + (c.num ? ' class="num"' : '') +
          (c.t ? ' title="' + esc(c.t) + '"' : '') + '>' + esc(c.l) + '</th>';
      }).join('') + '</tr>';
    }
    thead.querySelectorAll('th').forEach(function (th) {
      var on = th.dataset.key === state.sortKey;
      if (on) th.setAttribute('aria-sort', state.sortDir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    });
    var rows = leaderboardRows();
    var pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE_SIZE, shown = rows.slice(start, start + PAGE_SIZE);
    $('lb-table').tBodies[0].innerHTML = shown.map(rowHtml).join('');
    $('lb-count').textContent = rows.length + ' of ' + ROWS.length + ' runs';
    $('lb-page').textContent = 'page ' + (state.page + 1) + ' of ' + pages;
    $('lb-prev').disabled = state.page === 0;
    $('lb-next').disabled = state.page >= pages - 1;
    state.leaderboard = { matching: rows.length, shown: shown.length, page: state.page };
  }

  function rowHtml(r) {
    return '<tr data-run="' + esc(r.run_id) + '">' + COLUMNS.map(function (c) {
      var v = r[c.k], cls = c.num ? 'num' : '', text;
      if (c.k === 'stable') {
        text = v === 1 ? 'yes' : v === 0 ? 'no' : '?';
        if (v === 0) { cls = 'unstable'; }
        return '<td class="' + cls + '"' + (r.unstable_reasons ? ' title="' +
          esc(r.unstable_reasons) + '"' : '') + '>' + text + '</td>';
      }
      if (c.k === 'run_id') return '<td class="id">' + esc(v) + '</td>';
      if (c.k === 'latency_ms' && isDiffusionTask(r.task) && v !== null) {
        return '<td class="num" title="batch latency">' + fmt(v / 1000) + ' s</td>';
      }
      text = c.num ? fmt(v) : (v === null || v === undefined ? '—' : v);
      if (c.unit && v !== null) text += ' /' + r.unit;
      return '<td class="' + cls + '">' + esc(text) + '</td>';
    }).join('') + '</tr>';
  }

  function wireLeaderboard() {
    ['f-task', 'f-gpu', 'f-ngpu', 'f-precision', 'f-source', 'f-stable'].forEach(function (id) {
      $(id).addEventListener('change', function () { state.page = 0; renderLeaderboard(); });
    });
    $('f-model').addEventListener('input', function () { state.page = 0; renderLeaderboard(); });
    $('lb-table').tHead.addEventListener('click', function (ev) {
      var th = ev.target.closest('th');
      if (!th) return;
      var k = th.dataset.key;
      state.sortDir = state.sortKey === k ? -state.sortDir : 1;
      state.sortKey = k;
      renderLeaderboard();
    });
    $('lb-prev').addEventListener('click', function () { state.page--; renderLeaderboard(); });
    $('lb-next').addEventListener('click', function () { state.page++; renderLeaderboard(); });
  }

  // ---------------------------------------------------------------- time-energy trade-off
  function tradeoffRows() {
    var task = $('to-task').value, model = $('to-model').value;
    return ROWS.filter(function (r) {
      return r.task === task && r.model === model && r.latency_ms !== null &&
        r.energy_per_unit_j !== null;
    });
  }

  function deadlineRange(rows) {
    var lats = rows.map(function (r) { return r.latency_ms; });
    return { lo: Math.min.apply(null, lats) * 0.95, hi: Math.max.apply(null, lats) * 1.05 };
  }

  function renderTradeoff() {
    var div = $('to-plot'), task = $('to-task').value, rows = tradeoffRows();
    if (!rows.length) {
      empty(div, 'No runs with both latency and energy for this task and model.');
      $('to-choice').textContent = '';
      state.tradeoff = { deadline_ms: null, choice: null, feasible: 0 };
      return;
    }
    var range = deadlineRange(rows), s = latencyScale(task), unit = unitOf(task);
    var pos = Number($('to-deadline').value) / 1000;
    var deadline = range.lo * Math.pow(range.hi / range.lo, pos);
    var feasible = rows.filter(function (r) { return r.latency_ms <= deadline; });
    var best = null;
    feasible.forEach(function (r) {
      if (!best || r.energy_per_unit_j < best.energy_per_unit_j) best = r;
    });
    $('to-deadline-label').textContent = fmt(deadline * s.f) + ' ' + s.unit + ' ' + s.name;
    $('to-choice').innerHTML = best
      ? 'Minimum energy within ' + esc(fmt(deadline * s.f)) + ' ' + s.unit + ' ' + s.name +
        ': <b>' + esc(fmt(best.energy_per_unit_j)) + ' J/' + esc(unit) + '</b> on ' +
        esc(setupOf(best)) + ', batch ' + esc(best.batch) + ' (' + esc(fmt(best.latency_ms * s.f)) +
        ' ' + s.unit + ', ' + esc(fmt(best.power_w)) + ' W) · run <code>' + esc(best.run_id) +
        '</code> · ' + feasible.length + ' of ' + rows.length + ' configurations meet it'
      : 'No configuration meets a ' + esc(fmt(deadline * s.f)) + ' ' + s.unit + ' ' + s.name +
        ' deadline (the fastest takes ' + esc(fmt(range.lo / 0.95 * s.f)) + ' ' + s.unit + ').';
    state.tradeoff = {
      deadline_ms: deadline, choice: best ? best.run_id : null, feasible: feasible.length,
      total: rows.length
    };

    var traces = [];
    bySetup(rows).forEach(function (g, gi) {
      var color = colorOf(g.setup, gi);
      var pts = g.rows.slice().sort(function (a, b) { return a.latency_ms - b.latency_ms; });
      var front = pts.filter(function (r) { return r.frontier_setup === 1; });
      traces.push({
        x: front.map(function (r) { return r.latency_ms * s.f; }),
        y: front.map(function (r) { return r.energy_per_unit_j; }),
        mode: 'lines', line: { color: color, width: 2 }, hoverinfo: 'skip',
        showlegend: false, legendgroup: g.setup
      });
      traces.push({
        name: g.setup, legendgroup: g.setup, mode: 'markers+text', type: 'scatter',
        x: pts.map(function (r) { return r.latency_ms * s.f; }),
        y: pts.map(function (r) { return r.energy_per_unit_j; }),
        text: pts.map(function (r) { return String(r.batch); }),
        textposition: 'top center', textfont: { size: 9, color: '#5d6778' },
        customdata: pts.map(function (r) {
          return [r.batch, fmt(r.power_w), r.run_id, r.precision];
        }),
        hovertemplate: g.setup + ' · batch %{customdata[0]} · %{customdata[3]}<br>' +
          '%{x:.3g} ' + s.unit + ', %{y:.3g} J/' + unit + ', %{customdata[1]} W' +
          '<br>%{customdata[2]}<extra></extra>',
        marker: {
          size: 9, color: color, line: { width: 1, color: '#fff' },
          opacity: pts.map(function (r) { return r.latency_ms <= deadline ? 1 : 0.22; })
        }
      });
    });
    var mf = rows.filter(function (r) { return r.frontier_model === 1; })
      .sort(function (a, b) { return a.latency_ms - b.latency_ms; });
    traces.push({
      name: 'frontier (all setups)', mode: 'lines', hoverinfo: 'skip',
      x: mf.map(function (r) { return r.latency_ms * s.f; }),
      y: mf.map(function (r) { return r.energy_per_unit_j; }),
      line: { color: '#1d2430', width: 1.5, dash: 'dash' }
    });
    if (best) {
      traces.push({
        name: 'min energy ≤ deadline', mode: 'markers', hoverinfo: 'skip',
        x: [best.latency_ms * s.f], y: [best.energy_per_unit_j],
        marker: { symbol: 'star', size: 20, color: '#dc2626', line: { width: 1, color: '#fff' } }
      });
    }
    plot(div, traces, {
      title: { text: $('to-model').value + ' · ' + task + ': time–energy trade-off', x: 0.02 },
      xaxis: Object.assign({ type: 'log', title: { text: s.name + ' (' + s.unit + ')' },
        gridcolor: '#eef1f5' }, logTicks(rows.map(function (r) { return r.latency_ms * s.f; }))),
      yaxis: Object.assign({ type: 'log', title: { text: 'energy per ' + unit + ' (J)' },
        gridcolor: '#eef1f5' }, logTicks(rows.map(function (r) { return r.energy_per_unit_j; }))),
      shapes: [{
        type: 'line', xref: 'x', yref: 'paper', x0: deadline * s.f, x1: deadline * s.f,
        y0: 0, y1: 1, line: { color: '#dc2626', width: 1.5, dash: 'dot' }
      }]
    });
  }

  function wireTradeoff() {
    $('to-task').addEventListener('change', function () {
      fillModels($('to-task'), $('to-model'));
      $('to-deadline').value = DEFAULT_DEADLINE;
      renderTradeoff();
    });
    $('to-model').addEventListener('change', function () {
      $('to-deadline').value = DEFAULT_DEADLINE;
      renderTradeoff();
    });
    $('to-deadline').addEventListener('input', renderTradeoff);
  }

  // ---------------------------------------------------------------- batch size
  function renderBatch() {
    var task = $('bt-task').value, model = $('bt-model').value, unit = unitOf(task);
    var s = latencyScale(task);
    var rows = ROWS.filter(function (r) {
      return r.task === task && r.model === model && r.batch !== null;
    });
    var metrics = [
      ['bt-energy', 'energy_per_unit_j', 'energy per ' + unit + ' (J)', true, 1],
      ['bt-throughput', 'throughput_per_s', (unit === 'token' ? 'tokens' : unit + 's') + '/s', true, 1],
      ['bt-latency', 'latency_ms', s.name + ' (' + s.unit + ')', true, s.f],
      ['bt-power', 'power_w', 'average power (W)', false, 1]
    ];
    var groups = bySetup(rows), ticks = log2Ticks(rows.map(function (r) { return r.batch; }));
    metrics.forEach(function (m) {
      var div = $(m[0]), traces = [];
      groups.forEach(function (g, gi) {
        var pts = g.rows.filter(function (r) { return r[m[1]] !== null; })
          .sort(function (a, b) { return a.batch - b.batch; });
        if (!pts.length) return;
        traces.push({
          name: g.setup, mode: 'lines+markers', line: { color: colorOf(g.setup, gi) },
          x: pts.map(function (r) { return r.batch; }),
          y: pts.map(function (r) { return r[m[1]] * m[4]; }),
          hovertemplate: g.setup + ' · batch %{x}: %{y:.4g}<extra></extra>'
        });
      });
      if (!traces.length) { empty(div, m[2] + ': not recorded for these runs.'); return; }
      plot(div, traces, {
        title: { text: m[2] + ' vs batch size', x: 0.02, font: { size: 13 } },
        xaxis: { type: 'log', title: { text: 'batch size (max_num_seqs / images per batch)' },
          tickvals: ticks, ticktext: ticks.map(String), gridcolor: '#eef1f5' },
        yaxis: Object.assign({ type: m[3] ? 'log' : 'linear', title: { text: m[2] },
          gridcolor: '#eef1f5' }, m[3] ? logTicks(rows.map(function (r) {
          return r[m[1]] === null ? 0 : r[m[1]] * m[4];
        })) : {})
      });
    });
  }

  function wireBatch() {
    $('bt-task').addEventListener('change', function () {
      fillModels($('bt-task'), $('bt-model'));
      renderBatch();
    });
    $('bt-model').addEventListener('change', renderBatch);
  }

  // ---------------------------------------------------------------- tasks
  function renderTasks() {
    var llm = P.tasks.filter(function (t) { return t.kind !== 'diffusion'; })
      .map(function (t) { return t.task; });
    var of = function (task, key) {
      return ROWS.filter(function (r) { return r.task === task && r[key] !== null; })
        .map(function (r) { return r[key]; });
    };
    var html = '<table class="summary"><thead><tr><th>Task</th><th class="num">Runs</th>' +
      '<th class="num">Models</th><th class="num">Median output tokens</th>' +
      '<th class="num">Median J/unit</th><th class="num">Median J/response</th>' +
      '<th class="num">Min J/response</th></tr></thead><tbody>';
    P.tasks.forEach(function (t) {
      var resp = of(t.task, 'energy_per_response_j');
      html += '<tr><td>' + esc(t.task) + '</td><td class="num">' + t.runs + '</td><td class="num">' +
        t.models + '</td><td class="num">' + fmt(median(of(t.task, 'avg_output_len'))) +
        '</td><td class="num">' + fmt(median(of(t.task, 'energy_per_unit_j'))) + ' /' +
        esc(t.unit) + '</td><td class="num">' + fmt(median(resp)) + '</td><td class="num">' +
        fmt(resp.length ? Math.min.apply(null, resp) : null) + '</td></tr>';
    });
    $('tk-summary').innerHTML = '<div class="table-wrap">' + html + '</tbody></table></div>';

    var ot = P.output_tokens, edges = ot.edges;
    var centres = edges.slice(1).map(function (e, i) { return Math.sqrt(e * edges[i]); });
    var tokTraces = Object.keys(ot.tasks).map(function (task) {
      return {
        name: task + ' (' + ot.tasks[task].runs + ' runs)', mode: 'lines', x: centres,
        y: ot.tasks[task].fraction, line: { width: 2 }
      };
    });
    if (tokTraces.length) {
      plot($('tk-tokens'), tokTraces, {
        title: { text: 'Output tokens per response (mean distribution over runs)', x: 0.02,
          font: { size: 13 } },
        xaxis: { type: 'log', title: { text: 'output tokens' } },
        yaxis: { title: { text: 'fraction of responses' } }
      });
    } else {
      empty($('tk-tokens'), 'No output-length distributions recorded.');
    }
    [['tk-energy', 'energy_per_unit_j', 'Energy per output token (J)'],
     ['tk-response', 'energy_per_response_j', 'Energy per response (J)'],
     ['tk-tpw', 'throughput_per_w', 'tokens/s/W']].forEach(function (b) {
      var traces = llm.map(function (task) {
        return { type: 'box', name: task, y: of(task, b[1]), boxpoints: 'outliers' };
      }).filter(function (t) { return t.y.length; });
      if (!traces.length) { empty($(b[0]), b[2] + ': no LLM runs.'); return; }
      var all = [].concat.apply([], traces.map(function (t) { return t.y; }));
      plot($(b[0]), traces, {
        title: { text: b[2] + ' by task (all configurations)', x: 0.02, font: { size: 13 } },
        yaxis: Object.assign({ type: 'log', title: { text: b[2] } }, logTicks(all)),
        showlegend: false
      });
    });
  }

  // ---------------------------------------------------------------- diffusion
  function renderDiffusion() {
    var host = $('df-plots');
    var tasks = P.tasks.filter(function (t) { return t.kind === 'diffusion'; });
    if (window.Plotly) host.querySelectorAll('.js-plotly-plot').forEach(function (d) { Plotly.purge(d); });
    host.innerHTML = '';
    if (!tasks.length) { host.innerHTML = '<div class="empty">No diffusion runs.</div>'; return; }
    tasks.forEach(function (t) {
      var div = document.createElement('div');
      div.className = 'plot';
      div.style.marginBottom = '12px';
      host.appendChild(div);
      var rows = ROWS.filter(function (r) { return r.task === t.task && r.energy_per_unit_j !== null; });
      var models = uniq(rows.map(function (r) { return r.model; }));
      var mins = {};
      rows.forEach(function (r) {
        if (!(r.model in mins) || r.energy_per_unit_j < mins[r.model]) mins[r.model] = r.energy_per_unit_j;
      });
      models.sort(function (a, b) { return mins[a] - mins[b]; });
      var traces = models.map(function (m) {
        var mr = rows.filter(function (r) { return r.model === m; });
        return {
          type: 'box', name: m, y: mr.map(function (r) { return r.energy_per_unit_j; }),
          boxpoints: 'all', jitter: 0.4, pointpos: 0, marker: { size: 4 },
          text: mr.map(function (r) { return setupOf(r) + ', batch ' + r.batch; }),
          hovertemplate: '%{text}: %{y:.4g} J<extra>' + m + '</extra>'
        };
      });
      plot(div, traces, {
        title: { text: 'Energy per ' + t.unit + ' by model · ' + t.task +
          ' (all GPU setups and batch sizes; sorted by minimum)', x: 0.02, font: { size: 13 } },
        yaxis: Object.assign({ type: 'log', title: { text: 'energy per ' + t.unit + ' (J)' } },
          logTicks(rows.map(function (r) { return r.energy_per_unit_j; }))),
        showlegend: false, margin: { l: 64, r: 18, t: 40, b: 60 }, height: 380
      });
    });
  }

  // ---------------------------------------------------------------- findings and graph
  function valueHtml(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return esc(fmt(v));
    if (typeof v === 'object') return '<code>' + esc(JSON.stringify(v).slice(0, 300)) + '</code>';
    return esc(v);
  }

  function renderFindings() {
    var st = P.study, host = $('fd-findings');
    if (!st.findings.length) {
      host.innerHTML = '<div class="empty">No study findings: the report holds no runs.</div>';
    } else {
      host.innerHTML = st.findings.map(function (f) {
        var rows = (f.rows || []).map(function (kv) {
          return '<tr><th>' + esc(kv[0]) + '</th><td class="num">' + valueHtml(kv[1]) + '</td></tr>';
        }).join('');
        return '<div class="finding" data-finding="' + esc(f.id) + '"><h3>' + esc(f.title || f.id) +
          (f.status && f.status !== 'ok' ? ' <small>(' + esc(f.status) + ')</small>' : '') +
          '</h3><p class="concl">' + esc(f.conclusion || '') + '</p>' +
          (f.definition ? '<p class="note">' + esc(f.definition) + '</p>' : '') +
          (rows ? '<details><summary>' + f.rows.length + ' numbers' +
            (f.rows_omitted ? ' (' + f.rows_omitted + ' more in <code>joulelens study</code>)' : '') +
            '</summary><table>' + rows + '</table></details>' : '') + '</div>';
      }).join('');
    }
    $('fd-graph').innerHTML = graphSvg(st.graph);
  }

  var KIND_STYLE = {
    knob: ['#eff6ff', '#1d4ed8'], latent: ['#fff1e8', '#c2410c'], metric: ['#f0fdf4', '#15803d']
  };
  function graphSvg(g) {
    // Columns by depth (knobs left, end metrics right), rows as laid out by the payload;
    // each column is centred vertically so long edges stay short.
    var layers = uniq(g.nodes.map(function (n) { return n.layer; })).sort(function (a, b) { return a - b; });
    var colW = 214, rowH = 46, boxW = 172, boxH = 30, pos = {}, maxRows = 0;
    layers.forEach(function (layer) {
      maxRows = Math.max(maxRows, g.nodes.filter(function (n) { return n.layer === layer; }).length);
    });
    layers.forEach(function (layer, li) {
      var nodes = g.nodes.filter(function (n) { return n.layer === layer; })
        .sort(function (a, b) { return a.order - b.order; });
      var top = 44 + (maxRows - nodes.length) * rowH / 2;
      nodes.forEach(function (n, ri) { pos[n.id] = { x: 16 + li * colW, y: top + ri * rowH, n: n }; });
    });
    var w = 24 + layers.length * colW, h = 56 + maxRows * rowH;
    var out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + w + ' ' + h + '" width="' +
      w + '" height="' + h + '" font-size="11.5" font-family="system-ui, sans-serif">',
      '<defs><marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" ' +
      'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#8792a2"/></marker></defs>'];
    [['knob', 'knob or property'], ['latent', 'latent variable'], ['metric', 'end metric']]
      .forEach(function (k, i) {
        var st = KIND_STYLE[k[0]], x = 16 + i * 170;
        out.push('<rect x="' + x + '" y="10" width="14" height="14" rx="3" fill="' + st[0] +
          '" stroke="' + st[1] + '"/><text x="' + (x + 20) + '" y="21" fill="#5d6778">' + k[1] +
          '</text>');
      });
    g.edges.forEach(function (e) {
      var a = pos[e.from], b = pos[e.to];
      if (!a || !b) return;
      var x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2;
      out.push('<path d="M' + x1 + ',' + y1 + ' C' + (x1 + 30) + ',' + y1 + ' ' + (x2 - 30) + ',' +
        y2 + ' ' + x2 + ',' + y2 + '" fill="none" stroke="#8792a2" stroke-width="1.2"' +
        (e.source === 'paper' ? '' : ' stroke-dasharray="4 3"') + ' marker-end="url(#arr)"><title>' +
        esc(a.n.label + ' → ' + b.n.label + (e.source === 'paper' ? '' : ' (joulelens addition)')) +
        '</title></path>');
    });
    Object.keys(pos).forEach(function (id) {
      var p = pos[id], st = KIND_STYLE[p.n.kind] || KIND_STYLE.latent;
      out.push('<g data-node="' + esc(id) + '"><rect x="' + p.x + '" y="' + p.y + '" width="' +
        boxW + '" height="' + boxH + '" rx="6" fill="' + st[0] + '" stroke="' + st[1] +
        '"/><text x="' + (p.x + boxW / 2) + '" y="' + (p.y + boxH / 2 + 4) +
        '" text-anchor="middle">' + esc(p.n.label) + '</text><title>' +
        esc(p.n.label + ': ' + p.n.description + (p.n.measured_by.length ? ' · measured by ' +
          p.n.measured_by.join(', ') : '') + (p.n.proxied_by.length ? ' · proxies: ' +
          p.n.proxied_by.join(', ') : '')) + '</title></g>');
    });
    out.push('</svg>');
    return out.join('') + '<p class="note">Solid edges: the paper\'s framework; dashed: ' +
      'joulelens additions. Hover a node for the run fields that measure it.</p>';
  }

  // ---------------------------------------------------------------- measured runs
  var PANELS = [
    { test: /^power_watts/, title: 'power (W)' },
    { test: /^temperature_c/, title: 'temperature (°C)' },
    { test: /running|batch/, title: 'running batch' },
    { test: /kv/, title: 'KV-cache usage' },
    { test: /utilization/, title: 'GPU utilization (%)' }
  ];

  function renderMeasured() {
    var runs = P.measured.runs, tl = $('ms-timeline');
    if (!runs.length) {
      empty(tl, 'No runs measured by joulelens are in this report (imported public results ' +
        'carry no timelines). Measure one with `joulelens run` and rebuild the report.');
      empty($('ms-attribution'), 'Per-request energy attribution appears here for measured runs.');
      empty($('ms-split'), 'Prefill/decode split appears here for measured runs.');
      $('ms-notes').textContent = '';
      return;
    }
    var run = runs.filter(function (r) { return r.run_id === $('ms-run').value; })[0] || runs[0];
    $('ms-notes').textContent = run.notes.join(' · ');
    renderTimeline(tl, run);
    renderAttribution(run);
  }

  function renderTimeline(div, run) {
    var series = run.timeline || {}, names = Object.keys(series);
    var panels = PANELS.map(function (p) {
      return { title: p.title, names: names.filter(function (n) { return p.test.test(n); }) };
    }).filter(function (p) { return p.names.length; });
    if (!panels.length) { empty(div, 'No timeline was recorded for this run.'); return; }
    var traces = [], layout = { grid: { rows: panels.length, columns: 1, pattern: 'independent' },
      height: 170 * panels.length + 80, showlegend: true, shapes: [],
      title: { text: 'Timelines · ' + run.label, x: 0.02, font: { size: 13 } } };
    panels.forEach(function (p, i) {
      var ax = i === 0 ? '' : String(i + 1);
      p.names.forEach(function (n) {
        traces.push({ name: n, mode: 'lines', x: series[n].t, y: series[n].v,
          xaxis: 'x' + ax, yaxis: 'y' + ax, line: { width: 1.5 } });
      });
      layout['yaxis' + ax] = { title: { text: p.title, font: { size: 11 } }, gridcolor: '#eef1f5' };
      layout['xaxis' + ax] = { matches: i ? 'x' : undefined, gridcolor: '#eef1f5',
        title: i === panels.length - 1 ? { text: 'time since run start (s)' } : undefined };
      if (run.steady_window_s) {
        layout.shapes.push({ type: 'rect', xref: 'x' + ax, yref: 'y' + ax + ' domain',
          x0: run.steady_window_s[0], x1: run.steady_window_s[1], y0: 0, y1: 1,
          fillcolor: 'rgba(34,197,94,0.13)', line: { width: 0 }, layer: 'below' });
      }
    });
    if (run.steady_window_s) {
      layout.annotations = [{ xref: 'x', yref: 'y domain', x: (run.steady_window_s[0] +
        run.steady_window_s[1]) / 2, y: 1.02, yanchor: 'bottom', showarrow: false,
        text: 'steady state', font: { size: 11, color: '#15803d' } }];
    }
    plot(div, traces, layout);
  }

  function renderAttribution(run) {
    var q = run.requests, a = $('ms-attribution'), sp = $('ms-split');
    if (!q || !q.attributed_energy_joules) {
      empty(a, 'No per-request energy attribution was recorded for this run.');
      empty(sp, 'No prefill/decode split was recorded for this run.');
      return;
    }
    var e = q.attributed_energy_joules, steady = q.in_steady_state || [];
    var total = e.reduce(function (s, v) { return s + (v || 0); }, 0);
    var groups = [[1, 'in steady state', '#c2410c'], [0, 'outside steady state', '#93c5fd']];
    plot(a, groups.map(function (g) {
      var idx = e.map(function (_, i) { return i; })
        .filter(function (i) { return (steady[i] === undefined ? 1 : steady[i]) === g[0] && e[i] !== null; });
      return { name: g[1], mode: 'markers', marker: { size: 5, color: g[2], opacity: 0.7 },
        x: idx.map(function (i) { return q.output_tokens[i]; }), y: idx.map(function (i) { return e[i]; }) };
    }), {
      title: { text: 'Attributed energy per request (Σ ' + fmt(total) + ' J over ' + q.shown +
        (q.shown < q.n ? ' of ' + q.n : '') + ' requests; method: attributed)', x: 0.02,
        font: { size: 13 } },
      xaxis: { title: { text: 'output tokens' } }, yaxis: { title: { text: 'energy (J)' } }
    });
    var pre = q.attributed_prefill_energy_joules, dec = q.attributed_decode_energy_joules;
    if (!pre || !dec) { empty(sp, 'No prefill/decode split was recorded for this run.'); return; }
    var sum = function (xs) { return xs.reduce(function (s, v) { return s + (v || 0); }, 0); };
    plot(sp, [{ type: 'bar', x: ['prefill', 'decode'], y: [sum(pre), sum(dec)],
      marker: { color: ['#f97316', '#1d4ed8'] } }], {
      title: { text: 'Attributed energy: prefill vs decode (J)', x: 0.02, font: { size: 13 } },
      yaxis: { title: { text: 'energy (J)' } }
    });
  }

  // ---------------------------------------------------------------- live refresh
  function startLive() {
    var status = $('live-status');
    status.hidden = false;
    var tick = function () {
      fetch(LIVE.version_url, { cache: 'no-store' }).then(function (res) { return res.json(); })
        .then(function (v) {
          if (v.token === P.token) return null;
          return fetch(LIVE.payload_url, { cache: 'no-store' }).then(function (res) { return res.json(); });
        })
        .then(function (p) {
          if (p) load(p);
          status.className = 'live';
          status.textContent = '● live · ' + P.meta.runs + ' runs · checked ' +
            new Date().toLocaleTimeString();
        })
        .catch(function () {
          status.className = 'live stale';
          status.textContent = '● server unreachable; retrying';
        });
    };
    tick();
    setInterval(tick, LIVE.poll_ms);
  }

  // ---------------------------------------------------------------- start
  function start() {
    document.querySelectorAll('nav.tabs button').forEach(function (b) {
      b.addEventListener('click', function () {
        history.replaceState(null, '', '#' + b.dataset.tab);
        show(b.dataset.tab);
      });
    });
    wireLeaderboard();
    wireTradeoff();
    wireBatch();
    $('ms-run').addEventListener('change', renderMeasured);
    state.tab = (location.hash || '#leaderboard').slice(1);
    load(JSON.parse(document.getElementById('jl-data').textContent));
    if (LIVE) startLive();
    state.ready_ms = performance.now();
    document.body.dataset.ready = '1';
    // Compile Plotly while the reader looks at the first view, so plot tabs open promptly.
    var idle = window.requestIdleCallback || function (f) { return setTimeout(f, 200); };
    idle(function () { ensurePlotly(); state.plotly_ms = performance.now(); }, { timeout: 1000 });
  }
  start();
})();
