/* Measured runs, live refresh, and start-up (kept last: it runs the page). */
// ---------------------------------------------------------------- measured runs
var PANELS = [
  { test: /^power_watts/, title: 'power (W)' },
  { test: /^token_rate/, title: 'token rate (tokens/s)' },
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
  var lines = ['Energy: ' + (run.energy || '—')].concat(run.warnings || [], run.notes);
  $('ms-notes').innerHTML = lines.map(function (l) { return '<div>' + esc(l) + '</div>'; }).join('');
  renderTimeline(tl, run);
  renderAttribution(run);
}

function renderTimeline(div, run) {
  var series = run.timeline || {}, names = Object.keys(series);
  var used = {};
  var panels = PANELS.map(function (p) {
    var mine = names.filter(function (n) { return !used[n] && p.test.test(n); });
    mine.forEach(function (n) { used[n] = 1; });
    return { title: p.title, names: mine };
  }).filter(function (p) { return p.names.length; });
  if (!panels.length) { empty(div, 'No timeline was recorded for this run.'); return; }
  var traces = [], layout = { grid: { rows: panels.length, columns: 1, pattern: 'independent' },
    height: 170 * panels.length + 80, showlegend: true, shapes: [],
    title: { text: 'Timelines on one clock · ' + run.label, x: 0.02, font: { size: 13 } },
    legend: { orientation: 'h', y: -0.06, yanchor: 'top', font: { size: 11 } } };
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
