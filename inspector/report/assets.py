"""The page's own style sheet and script (plotly.js itself comes from the plotly package).

The script draws every figure from its JSON element, then wires the timeline's hover panel.
It writes target-derived text only through `textContent`, never as markup.
"""

from __future__ import annotations

CSS = """
:root { --ink:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f5f6f8; --card:#fff;
        --accent:#3969AC; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; }
header.top { background:#1d2330; color:#fff; padding:18px 28px 14px; }
header.top h1 { margin:0 0 4px; font-size:20px; font-weight:600; }
header.top .cmd { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       font-size:13px; color:#cfd6e4; word-break:break-all; }
header.top .sub { color:#9aa4b8; font-size:12px; margin-top:4px; }
nav { position:sticky; top:0; z-index:5; background:#fff; border-bottom:1px solid var(--line);
      padding:6px 28px; display:flex; gap:16px; flex-wrap:wrap; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; }
nav a:hover { text-decoration:underline; }
main { max-width:1320px; margin:0 auto; padding:18px 20px 60px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px;
          padding:16px 20px 18px; margin:0 0 18px; }
section > h2 { margin:0 0 10px; font-size:17px; font-weight:600; }
section > h2 .n { display:inline-block; width:24px; height:24px; line-height:24px;
          text-align:center; border-radius:50%; background:var(--ink); color:#fff;
          font-size:12px; margin-right:8px; vertical-align:2px; }
h3 { font-size:14px; margin:14px 0 6px; }
p { margin:6px 0; }
.lead { font-size:15px; }
.muted, .note { color:var(--muted); }
.note { font-size:12px; }
.nothing { color:var(--muted); font-style:italic; padding:18px 0; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12px;
       overflow-wrap:anywhere; }
.verdict h2 { font-size:22px; margin:2px 0 10px; }
.verdict.empty h2 { color:#b42318; }
.advice { display:flex; flex-direction:column; gap:2px; border-left:5px solid var(--accent);
          background:#eef3fb; padding:10px 14px; border-radius:6px; margin:6px 0 12px; }
.advice b { font-size:16px; }
.advice-multiprocessing { border-color:#D62728; background:#fdf0f0; }
.advice-asyncio { border-color:#3B7DD8; background:#eef4fd; }
.advice-threading { border-color:#2E9E4F; background:#eef8f1; }
.advice-keep { border-color:#667085; background:#f2f4f7; }
.tiles { display:flex; flex-wrap:wrap; gap:10px; margin:8px 0; }
.tile { border:1px solid var(--line); border-radius:8px; padding:8px 14px; min-width:110px; }
.tile .num { font-size:20px; font-weight:600; }
.tile .cap { color:var(--muted); font-size:12px; }
ul.evidence, ul.notes { margin:4px 0; padding-left:20px; }
ul.evidence li { margin:2px 0; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th { text-align:left; font-weight:600; color:var(--muted); font-size:12px;
     border-bottom:1px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid #f0f1f3; padding:5px 8px; vertical-align:top; }
tr.proc td { background:#fafbfc; border-top:1px solid var(--line); }
table.tree td:nth-child(1), table.tree td:nth-child(2), table.tree td:nth-child(5),
table.tree td:nth-child(7), table.hot td:nth-child(3), table.hot td:nth-child(4)
  { white-space:nowrap; }
tr.more td { color:var(--muted); font-style:italic; }
.dot { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:6px;
       vertical-align:0; }
.bar { display:flex; height:12px; width:180px; border-radius:3px; overflow:hidden;
       background:#f0f1f3; margin-top:3px; }
.bar span { display:block; height:100%; }
.legend { display:flex; flex-wrap:wrap; gap:14px; font-size:12px; color:var(--muted);
          margin:6px 0; }
.legend i { display:inline-block; width:12px; height:12px; border-radius:2px;
            margin-right:5px; vertical-align:-2px; }
.fn { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; max-width:560px; }
.fn .pct { display:inline-block; min-width:46px; text-align:right; color:var(--muted);
           margin-right:4px; }
dl.run { display:grid; grid-template-columns:max-content 1fr; gap:4px 18px; margin:0; }
dl.run dt { color:var(--muted); }
dl.run dd { margin:0; }
.figure { width:100%; }
#timeline-tip { position:fixed; z-index:20; max-width:560px; background:#fff;
   border:1px solid #c9ced6; border-radius:8px; box-shadow:0 6px 24px rgba(16,24,40,.18);
   padding:10px 12px; font-size:12px; pointer-events:none; }
#timeline-tip .t { font-weight:600; font-size:13px; }
#timeline-tip .s { color:var(--muted); margin-bottom:4px; }
#timeline-tip .st span { display:inline-block; margin-right:10px; }
#timeline-tip .st i { display:inline-block; width:10px; height:10px; border-radius:2px;
   margin-right:4px; vertical-align:-1px; }
#timeline-tip ol { margin:6px 0 0; padding-left:0; list-style:none;
   font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:11.5px; }
#timeline-tip ol li { white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
#timeline-tip ol li:first-child { font-weight:700; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var CONFIG = {displaylogo: false, responsive: true,
                modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]};

  function bytes(b64) {
    var s = atob(b64), out = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function wireTimeline() {
    var div = document.getElementById("timeline");
    var src = document.getElementById("timeline-data");
    if (!div || !src) return;
    var d = JSON.parse(src.textContent);
    var share = bytes(d.share), stack = new Int32Array(bytes(d.stack).buffer);
    var nS = d.states.length, tip = document.getElementById("timeline-tip");
    function fill(r, c) {
      var lane = d.lanes[r], parts = [];
      tip.replaceChildren();
      var t0 = d.x0 + c * d.dx, t1 = t0 + d.dx;
      if (lane.tid < 0) {
        tip.appendChild(el("div", "t", "process " + lane.process));
        tip.appendChild(el("div", "s", "its threads are the lanes below"));
        return;
      }
      tip.appendChild(el("div", "t", lane.label));
      tip.appendChild(el("div", "s", "thread " + lane.tid + " of process " + lane.process +
                         " \u00b7 " + t0.toFixed(2) + "\u2013" + t1.toFixed(2) + " s"));
      var st = el("div", "st"), base = (r * d.cols + c) * nS, any = false;
      for (var k = 0; k < nS; k++) {
        var v = share[base + k];
        if (!v) continue;
        any = true;
        var sp = el("span"), sw = el("i");
        sw.style.background = d.colors[k];
        sp.appendChild(sw);
        sp.appendChild(document.createTextNode(d.captions[k] + " " + v + "%"));
        st.appendChild(sp);
      }
      if (!any) st.appendChild(el("span", "", "not sampled here"));
      tip.appendChild(st);
      var sid = stack[r * d.cols + c];
      if (sid < 0) {
        tip.appendChild(el("div", "s", "no Python stack sampled here"));
        return;
      }
      var frames = d.stacks[sid], hidden = 0, list = el("ol");
      if (frames.length && frames[0] < 0) { hidden = -frames[0] - 1; frames = frames.slice(1); }
      tip.appendChild(el("div", "s", "Python stack, innermost first:"));
      for (var i = frames.length - 1; i >= 0; i--) {
        list.appendChild(el("li", "", d.frames[frames[i]]));
      }
      if (hidden) list.appendChild(el("li", "", "\u2026 " + hidden + " outer frames"));
      tip.appendChild(list);
    }
    div.on("plotly_hover", function (ev) {
      var p = ev.points && ev.points[0];
      if (!p || !p.pointNumber) return;
      fill(p.pointNumber[0], p.pointNumber[1]);
      tip.hidden = false;
      var e = ev.event || {}, x = (e.clientX || 0) + 18, y = (e.clientY || 0) + 18;
      var w = tip.offsetWidth, h = tip.offsetHeight;
      if (x + w > window.innerWidth - 8) x = Math.max(8, (e.clientX || 0) - w - 18);
      if (y + h > window.innerHeight - 8) y = Math.max(8, window.innerHeight - h - 8);
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    });
    div.on("plotly_unhover", function () { tip.hidden = true; });
  }

  var jobs = [];
  document.querySelectorAll("script[data-figure]").forEach(function (s) {
    var target = document.getElementById(s.getAttribute("data-figure"));
    var fig = JSON.parse(s.textContent);
    jobs.push(Plotly.newPlot(target, fig.data, fig.layout, CONFIG));
  });
  Promise.all(jobs).then(function () {
    wireTimeline();
    document.body.setAttribute("data-rendered", String(jobs.length));
  }, function (err) {
    console.error("inspector report: a figure failed to draw", err);
    document.body.setAttribute("data-render-error", String(err));
  });
})();
"""
