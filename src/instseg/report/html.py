"""The HTML shell every report page shares: one self-contained file per page (inline CSS and JS, no
network, no server), relative links only, so a report folder can be zipped and opened anywhere.

Markup conventions the script (and the browser tests) rely on:

* ``.legend-entry[data-cls]`` holds a checkbox per class; unticking hides every ``.inst[data-cls]`` of that
  class (SVG shapes, labels, table rows) and every ``.card`` none of whose ``data-classes`` is ticked.
* ``#score`` (evaluation pages) hides every ``.pred[data-score]`` below its value and re-colours each
  ``.gt[data-ms]`` (score of its match; -1 none, -2 crowd) as missed when that score is below it; the
  ``.errs`` count of every card follows.
"""

from __future__ import annotations

import html as _html
from collections.abc import Sequence

CSS = """
:root{--bg:#f6f7f9;--fg:#1d232b;--mut:#667085;--card:#fff;--line:#d9dee5;--tp:#16a34a;--fp:#dc2626;--miss:#f59e0b}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--fg)}
header{position:sticky;top:0;z-index:5;background:#101828;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center;flex-wrap:wrap}
header a{color:#cfe0ff;text-decoration:none}header h1{font-size:16px;margin:0 12px 0 0}
main{padding:12px 16px}h2{font-size:16px;margin:18px 0 8px}
.toolbar{display:flex;gap:14px;flex-wrap:wrap;align-items:center;margin:8px 0;padding:8px;background:var(--card);border:1px solid var(--line);border-radius:6px}
#legend{display:flex;flex-wrap:wrap;gap:4px 10px;max-height:120px;overflow:auto}
.legend-entry{display:inline-flex;align-items:center;gap:4px;font-size:12px;cursor:pointer;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;border:1px solid #0003}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:6px;width:334px}
.card:has(details[open]){width:100%}
.thumb{position:relative;width:var(--w,320px);max-width:100%}
.card:has(details[open]) .thumb{width:min(calc(var(--w) * 2),100%)}
.thumb img,.thumb svg{display:block;width:100%;height:auto}
.thumb svg{position:absolute;left:0;top:0}
.cap{font-size:12px;color:var(--mut);margin-top:4px;overflow-wrap:anywhere}
.cap b{color:var(--fg)}
svg path{stroke-width:1;fill-rule:evenodd}
svg path.gtm{fill-opacity:.45;stroke-opacity:.9}
svg path.box{fill-opacity:.08;stroke-dasharray:3 2}
svg text{font-size:9px;font-weight:600;paint-order:stroke;stroke:#000;stroke-width:2px;fill:#fff}
svg path.pred{fill-opacity:.5;stroke-width:1}
svg path.pred[data-st="1"]{fill:var(--tp);stroke:var(--tp)}
svg path.pred[data-st="0"]{fill:var(--fp);stroke:var(--fp)}
svg path.pred[data-st="-1"]{fill:#9ca3af;stroke:#9ca3af}
svg path.gt{fill:none;stroke:#fff;stroke-width:1.4;stroke-dasharray:4 3}
svg path.gt.missed{stroke:var(--miss);stroke-width:2.2}
.off,.low{display:none!important}
table{border-collapse:collapse;font-size:12px;background:var(--card)}
th,td{border:1px solid var(--line);padding:2px 6px;text-align:left}th{background:#eef1f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.pages{margin:10px 0;display:flex;gap:4px;flex-wrap:wrap}
.pages a,.pages span{padding:2px 8px;border:1px solid var(--line);border-radius:4px;background:var(--card);text-decoration:none}
.pages span.cur{background:#101828;color:#fff}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0;background:var(--card);border:1px solid var(--line);padding:6px;border-radius:6px}
.plots img{max-width:560px;width:100%;height:auto;display:block}.plots figcaption{font-size:12px;color:var(--mut)}
.key{display:inline-flex;gap:4px;align-items:center;font-size:12px;margin-right:8px}
.findings{font-size:12px;color:#7a2e0e;margin:4px 0;padding-left:18px}
.side{display:flex;gap:8px;flex-wrap:wrap}.side .col{width:334px}
"""

SCRIPT = r"""
(function(){
  function active(){
    var boxes=document.querySelectorAll('.legend-entry input');
    var on=new Set();boxes.forEach(function(b){if(b.checked)on.add(b.value);});
    return {on:on,all:on.size===boxes.length};
  }
  function threshold(){var s=document.getElementById('score');return s?parseFloat(s.value):0;}
  function apply(){
    var a=active(),t=threshold();
    document.querySelectorAll('.inst[data-cls]').forEach(function(el){
      el.classList.toggle('off',!a.on.has(el.getAttribute('data-cls')));
    });
    document.querySelectorAll('.pred[data-score]').forEach(function(el){
      el.classList.toggle('low',parseFloat(el.getAttribute('data-score'))<t);
    });
    document.querySelectorAll('.gt[data-ms]').forEach(function(el){
      var ms=parseFloat(el.getAttribute('data-ms'));el.classList.toggle('missed',ms!==-2&&ms<t);
    });
    document.querySelectorAll('.card').forEach(function(card){
      var cls=(card.getAttribute('data-classes')||'').split(' ').filter(Boolean);
      var show=a.all||cls.some(function(c){return a.on.has(c);});
      card.classList.toggle('off',!show);
      var errs=card.querySelector('.errs');
      if(errs){
        var n=0;
        card.querySelectorAll('svg path.pred[data-st="0"]').forEach(function(p){
          if(!p.classList.contains('off')&&!p.classList.contains('low'))n++;});
        card.querySelectorAll('svg path.gt.missed').forEach(function(p){if(!p.classList.contains('off'))n++;});
        errs.textContent=String(n);
      }
    });
    var sv=document.getElementById('score-value');if(sv)sv.textContent=t.toFixed(2);
    var shown=document.getElementById('shown');
    if(shown)shown.textContent=String(document.querySelectorAll('.card:not(.off)').length);
  }
  function setAll(v){document.querySelectorAll('.legend-entry input').forEach(function(b){b.checked=v;});apply();}
  window.instsegOnly=function(cls){
    document.querySelectorAll('.legend-entry input').forEach(function(b){b.checked=(b.value===String(cls));});apply();
  };
  document.addEventListener('DOMContentLoaded',function(){
    document.querySelectorAll('.legend-entry input').forEach(function(b){b.addEventListener('change',apply);});
    var s=document.getElementById('score');if(s)s.addEventListener('input',apply);
    var all=document.getElementById('all-classes');if(all)all.addEventListener('click',function(){setAll(true);});
    var none=document.getElementById('no-classes');if(none)none.addEventListener('click',function(){setAll(false);});
    apply();
  });
})();
"""


def esc(text: object) -> str:
    """HTML-escaped text (quotes too: safe inside attributes)."""
    return _html.escape(str(text), quote=True)


def page(title: str, body: str, *, home: str = "index.html", links: Sequence[tuple[str, str]] = ()) -> str:
    """A complete HTML document. ``home`` and ``links`` (label, href) are relative to the page."""
    nav = "".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in links)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<link rel=\"icon\" href=\"data:,\"><title>{esc(title)}</title><style>{CSS}</style>"
        f"<script>{SCRIPT}</script></head><body><header><h1>{esc(title)}</h1>"
        f"<a href=\"{esc(home)}\">report home</a>{nav}</header><main>{body}</main></body></html>\n"
    )


def legend(names: Sequence[str], colors: Sequence[str], counts: Sequence[int] | None = None) -> str:
    """One ``.legend-entry`` per class (tick boxes that filter), with 'all' / 'none' buttons."""
    entries = []
    for k, name in enumerate(names):
        n = f" ({counts[k]})" if counts is not None else ""
        entries.append(f'<label class="legend-entry" data-cls="{k}"><input type="checkbox" checked value="{k}">'
                       f'<span class="sw" style="background:{colors[k]}"></span>{esc(name)}{n}</label>')
    return ('<div><button id="all-classes" type="button">all</button> '
            '<button id="no-classes" type="button">none</button></div>'
            f'<div id="legend">{"".join(entries)}</div>')


def pager(n_pages: int, current: int, href) -> str:
    """Links to every page (``href(i)`` for 1-based ``i``); the current one marked."""
    if n_pages <= 1:
        return ""
    parts = []
    if current > 1:
        parts.append(f'<a href="{esc(href(current - 1))}">&laquo; prev</a>')
    for i in range(1, n_pages + 1):
        parts.append(f'<span class="cur">{i}</span>' if i == current else f'<a href="{esc(href(i))}">{i}</a>')
    if current < n_pages:
        parts.append(f'<a href="{esc(href(current + 1))}">next &raquo;</a>')
    return f'<nav class="pages">{"".join(parts)}</nav>'


def table(header: Sequence[str], rows: Sequence[Sequence[object]], row_attrs: Sequence[str] | None = None,
          cls: str = "") -> str:
    """A plain table; cells are escaped, numbers right-aligned; ``row_attrs`` raw attributes per row."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        attrs = f" {row_attrs[i]}" if row_attrs else ""
        cells = "".join(f'<td class="num">{esc(c)}</td>' if isinstance(c, (int, float)) else f"<td>{esc(c)}</td>"
                        for c in row)
        body.append(f"<tr{attrs}>{cells}</tr>")
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def figure(src_png: str, src_svg: str, caption: str) -> str:
    """A plot: the PNG shown, the SVG linked."""
    return (f'<figure><a href="{esc(src_svg)}"><img src="{esc(src_png)}" alt="{esc(caption)}"></a>'
            f'<figcaption>{esc(caption)} (<a href="{esc(src_svg)}">SVG</a>)</figcaption></figure>')


def fmt(v: object, spec: str = ".3f") -> str:
    """A number for a table cell; '-' for None/NaN."""
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


__all__ = ["CSS", "SCRIPT", "esc", "page", "legend", "pager", "table", "figure", "fmt"]
