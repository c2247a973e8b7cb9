/* The study's findings and the diagnosis graph. */
// ---------------------------------------------------------------- findings and graph
function valueHtml(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return esc(fmt(v));
  if (typeof v === 'object') return '<code>' + esc(JSON.stringify(v).slice(0, 300)) + '</code>';
  return esc(v);
}

function findingHtml(f) {
  var rows = (f.rows || []).map(function (kv) {
    return '<tr><th>' + esc(kv[0]) + '</th><td class="num">' + valueHtml(kv[1]) + '</td></tr>';
  }).join('');
  var n = (f.rows || []).length;
  return '<div class="finding' + (f.status === 'ok' ? '' : ' no-data') + '" data-finding="' +
    esc(f.id) + '"><h3>' + esc(f.title || f.id) + '</h3><p class="concl">' +
    esc(f.conclusion || '') + '</p>' +
    (f.definition ? '<p class="note">' + esc(f.definition) + '</p>' : '') +
    (rows ? '<details><summary>' + n + (n === 1 ? ' number' : ' numbers') +
      (f.rows_omitted ? ' (' + f.rows_omitted + ' more in <code>joulelens study</code>)' : '') +
      '</summary><table>' + rows + '</table></details>' : '') + '</div>';
}

function renderFindings() {
  var st = P.study, host = $('fd-findings');
  var ok = st.findings.filter(function (f) { return f.status === 'ok'; });
  var none = st.findings.filter(function (f) { return f.status !== 'ok'; });
  if (!st.findings.length) {
    host.innerHTML = '<div class="empty">No study findings: the report holds no runs.</div>';
  } else {
    // Findings these runs cannot support are folded away, named, not shown as a page of cards.
    host.innerHTML = (ok.length ? ok.map(findingHtml).join('')
      : '<div class="empty">None of the study\'s findings can be computed from these runs; ' +
        'they need the public ML.ENERGY data (joulelens import mlenergy ...).</div>') +
      (none.length ? '<details class="no-data-findings"><summary>' + none.length +
        ' finding' + (none.length === 1 ? '' : 's') + ' without enough data here: ' +
        esc(none.map(function (f) { return f.title || f.id; }).join(', ')) + '</summary>' +
        none.map(findingHtml).join('') + '</details>' : '');
  }
  state.findings = { shown: ok.length, folded: none.length };
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
