/* Time-energy trade-off, batch size, tasks and diffusion views. */
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
  // Stable runs are the candidates; an unstable one is chosen only when no stable one meets
  // the deadline, and the choice then says so.
  var stable = feasible.filter(function (r) { return r.stable !== 0; });
  var pool = stable.length ? stable : feasible, best = null;
  pool.forEach(function (r) {
    if (!best || r.energy_per_unit_j < best.energy_per_unit_j) best = r;
  });
  var caveat = best && best.stable === 0
    ? ' · <b class="bad">unstable</b>: no stable configuration meets this deadline, so this is ' +
      'the cheapest of ' + feasible.length + ' unstable ones (' + esc(best.unstable_reasons || '') + ')'
    : '';
  $('to-deadline-label').textContent = fmt(deadline * s.f) + ' ' + s.unit + ' ' + s.name;
  $('to-choice').innerHTML = best
    ? 'Minimum energy within ' + esc(fmt(deadline * s.f)) + ' ' + s.unit + ' ' + s.name +
      ': <b>' + esc(fmt(best.energy_per_unit_j)) + ' J/' + esc(unit) + '</b> on ' +
      esc(setupOf(best)) + ', batch ' + esc(best.batch) + ' (' + esc(fmt(best.latency_ms * s.f)) +
      ' ' + s.unit + ', ' + esc(fmt(best.power_w)) + ' W) · run <code>' + esc(best.run_id) +
      '</code> · ' + feasible.length + ' of ' + rows.length + ' configurations meet it' + caveat
    : 'No configuration meets a ' + esc(fmt(deadline * s.f)) + ' ' + s.unit + ' ' + s.name +
      ' deadline (the fastest takes ' + esc(fmt(range.lo / 0.95 * s.f)) + ' ' + s.unit + ').';
  state.tradeoff = {
    deadline_ms: deadline, choice: best ? best.run_id : null, feasible: feasible.length,
    total: rows.length, choice_stable: best ? best.stable !== 0 : null
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
        return [r.batch, fmt(r.power_w), r.run_id, r.precision,
          r.stable === 0 ? ' · unstable' : ''];
      }),
      hovertemplate: g.setup + ' · batch %{customdata[0]} · %{customdata[3]}%{customdata[4]}<br>' +
        '%{x:.3g} ' + s.unit + ', %{y:.3g} J/' + unit + ', %{customdata[1]} W' +
        '<br>%{customdata[2]}<extra></extra>',
      marker: {
        size: 9, color: color, line: { width: 1.5, color: pts.map(function (r) {
          return r.stable === 0 ? color : '#fff';
        }) },
        symbol: pts.map(function (r) { return r.stable === 0 ? 'circle-open' : 'circle'; }),
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
      name: 'min energy ≤ deadline' + (best.stable === 0 ? ' (unstable)' : ''),
      mode: 'markers', hoverinfo: 'skip',
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
