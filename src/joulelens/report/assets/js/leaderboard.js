/* The leaderboard table: filters, sorting, pages. */
// ---------------------------------------------------------------- leaderboard
var COLUMNS = [
  { k: 'task', l: 'Task' }, { k: 'model', l: 'Model', wrap: 1 },
  { k: 'gpu', l: 'GPUs', t: 'GPU count and model; cpu for runs on the CPU' },
  { k: 'batch', l: 'Batch', num: 1 },
  { k: 'precision', l: 'Precision' },
  { k: 'energy_per_unit_j', l: 'J/unit', num: 1, unit: 1,
    t: 'Energy per output token (LLM) or per image/video (diffusion)' },
  { k: 'energy_per_response_j', l: 'J/response', num: 1 },
  { k: 'latency_ms', l: 'ITL ms', num: 1,
    t: 'Median inter-token latency (ms); diffusion: batch latency' },
  { k: 'throughput_per_s', l: 'Work/s', num: 1, t: 'tokens/s, images/s or videos/s' },
  { k: 'power_w', l: 'Power W', num: 1, t: 'Average power over the measured window' },
  { k: 'throughput_per_w', l: 'Work/s/W', num: 1, t: 'Throughput per watt (work per joule)' },
  { k: 'stable', l: 'Stable' },
  { k: 'energy', l: 'Energy', t: 'Boundary (the hardware the energy covers) · method' },
  { k: 'run_id', l: 'Run' }
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
      return '<th data-key="' + (c.k === 'energy' ? 'boundary' : c.k) + '"' +
        (c.num ? ' class="num"' : '') +
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
    if (c.k === 'gpu') {
      return '<td>' + esc(r.num_gpus ? r.num_gpus + '× ' + (r.gpu || '?') : (r.gpu || 'cpu')) +
        '</td>';
    }
    if (c.k === 'energy') return '<td>' + esc(r.boundary + ' · ' + r.method) + '</td>';
    if (c.wrap) cls += ' wrap';
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
