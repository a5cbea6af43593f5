"""The dataset pages: every image of a split as a thumbnail with its instances drawn (each instance its own
colour, the hue of its class, its class name beside it), a detail view per image (class, box, mask area,
geometry kind, crowd flag, and what the dataset checks found in its files), and an overview page with the
class histogram, instances per image, instance sizes (COCO small/medium/large) and the findings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from instseg.data.types import Finding, ImageRecord
from instseg.report.cards import box_text, gt_shape, size_range, thumb_block
from instseg.report.geometry import class_color, instance_color, label_anchor
from instseg.report.html import esc, figure, legend, page, pager, table
from instseg.report.thumbs import write_thumb

PER_PAGE = 100


@dataclass
class DatasetSummary:
    """What the dataset pages hold (the tests compare these with the pages)."""

    split: str
    names: list[str]
    images: int = 0
    instances: int = 0
    per_class: list[int] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    background: int = 0
    findings: int = 0
    pages: list[str] = field(default_factory=list)  # relative to the report folder
    overview: str = ""


def _findings_by_file(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        if f.file is not None:
            out.setdefault(str(Path(f.file).resolve()), []).append(f)
    return out


def _record_findings(rec: ImageRecord, by_file: dict[str, list[Finding]]) -> list[Finding]:
    keys = [str(Path(rec.path).resolve())] + ([str(Path(rec.label_path).resolve())] if rec.label_path else [])
    return [f for k in keys for f in by_file.get(k, [])]


def _card(rec: ImageRecord, report_dir: Path, names: list[str], found: list[Finding]) -> tuple[str, list]:
    thumb = write_thumb(report_dir, rec.path, rec.width, rec.height)
    shapes, rows, attrs, svg = [], [], [], []
    per_class_index: Counter = Counter()
    for i, inst in enumerate(rec.instances):
        s = gt_shape(inst, rec, thumb.scale)
        shapes.append(s)
        color = instance_color(s.cls, per_class_index[s.cls])
        per_class_index[s.cls] += 1
        kind_cls = "box" if s.kind == "box" else "gtm"
        svg.append(f'<path class="inst {kind_cls}" data-cls="{s.cls}" d="{s.path}" '
                   f'style="fill:{color};stroke:{color}"><title>{esc(names[s.cls])} #{i + 1}</title></path>')
        x, y = label_anchor(s.box, thumb.scale)
        svg.append(f'<text class="inst" data-cls="{s.cls}" x="{x}" y="{y}">{esc(names[s.cls])}</text>')
        rows.append([i + 1, names[s.cls], box_text(s.box), s.area, size_range(s.area), s.kind,
                     "yes" if s.crowd else "no"])
        attrs.append(f'class="inst inst-row" data-cls="{s.cls}"')
    classes = " ".join(str(c) for c in sorted({s.cls for s in shapes}))
    detail = table(["#", "class", "box x1, y1, x2, y2", "mask area", "size", "geometry", "crowd"], rows, attrs,
                   cls="instances")
    if found:
        detail += '<ul class="findings">' + "".join(f"<li>{esc(f)}</li>" for f in found) + "</ul>"
    html = (f'<div class="card" data-classes="{classes}" data-image="{esc(rec.path.name)}">'
            f"{thumb_block(thumb, ''.join(svg))}"
            f'<div class="cap"><b>{esc(rec.path.name)}</b> &middot; {rec.width}x{rec.height} &middot; '
            f'<span class="n-inst">{len(shapes)}</span> instances'
            f'{" &middot; " + str(len(found)) + " findings" if found else ""}</div>'
            f"<details><summary>details</summary>{detail}</details></div>")
    return html, shapes


def write_dataset_pages(report_dir: Path, data: Path, split: str = "val", *, overview: str = "dataset/index.html",
                        home: str | None = None, per_page: int = PER_PAGE, log=None) -> DatasetSummary:
    """Write the dataset pages of ``split`` of ``data`` under ``report_dir``: the overview at ``overview``
    (relative to ``report_dir``), the image pages at ``dataset/page-NNN.html``, plots under ``plots/``."""
    from instseg.data.checks import load_split
    from instseg.data.yaml_config import load_data_yaml
    from instseg.io import atomic_write_text
    from instseg.report import plots

    report_dir = Path(report_dir)
    spec = load_data_yaml(data)
    records, findings = load_split(spec, split)
    names = list(spec.names)
    by_file = _findings_by_file(findings)
    summary = DatasetSummary(split=split, names=names, per_class=[0] * len(names), overview=overview)
    n_pages = max(1, -(-len(records) // per_page))
    page_rel = [f"dataset/page-{i:03d}.html" for i in range(1, n_pages + 1)]
    per_image_counts, sizes = [], Counter()
    used_files: set[str] = set()
    for p in range(n_pages):
        chunk = records[p * per_page:(p + 1) * per_page]
        cards = []
        for rec in chunk:
            found = _record_findings(rec, by_file)
            used_files.update(str(Path(f.file).resolve()) for f in found if f.file is not None)
            html, shapes = _card(rec, report_dir, names, found)
            cards.append(html)
            per_image_counts.append(len(shapes))
            for s in shapes:
                summary.per_class[s.cls] += 1
                sizes[size_range(s.area)] += 1
        counts = [sum(1 for r in chunk for i in r.instances if i.cls == k) for k in range(len(names))]
        body = (f'<div class="toolbar">{legend(names, [class_color(k) for k in range(len(names))], counts)}'
                f'<span>showing <b id="shown">{len(chunk)}</b> of {len(chunk)} images</span></div>'
                f'{pager(n_pages, p + 1, lambda i: Path(page_rel[i - 1]).name)}'
                f'<div class="grid">{"".join(cards)}</div>'
                f'{pager(n_pages, p + 1, lambda i: Path(page_rel[i - 1]).name)}')
        title = f"{spec.yaml_path.parent.name} / {split}: images {p * per_page + 1}-{p * per_page + len(chunk)}"
        atomic_write_text(report_dir / page_rel[p],
                          page(title, body, home=_rel(overview, page_rel[p]),
                               links=[("dataset", _rel(overview, page_rel[p]))] if home is None else
                               [("dataset", _rel(overview, page_rel[p])), ("run", _rel(home, page_rel[p]))]))
        if log is not None:
            log(f"  dataset page {p + 1}/{n_pages}")
    summary.images, summary.instances = len(records), sum(summary.per_class)
    summary.background = sum(1 for n in per_image_counts if n == 0)
    summary.sizes = {k: sizes.get(k, 0) for k in ("small", "medium", "large")}
    summary.findings = len(findings)
    summary.pages = page_rel

    pdir = report_dir / "plots"
    plots.save(plots.histogram_figure(summary.per_class, names, f"Instances per class ({split})", "class"),
               pdir, f"dataset_{split}_classes")
    top = max(per_image_counts, default=0)
    hist = [per_image_counts.count(n) for n in range(top + 1)]
    plots.save(plots.histogram_figure(hist, [str(n) for n in range(top + 1)], "Instances per image",
                                      "instances in the image", "images"), pdir, f"dataset_{split}_per_image")
    plots.save(plots.histogram_figure(list(summary.sizes.values()), list(summary.sizes),
                                      "Instance sizes (COCO ranges of the mask area)", "size"),
               pdir, f"dataset_{split}_sizes")
    _write_overview(report_dir, spec, summary, findings, used_files, home)
    return summary


def _rel(target: str, page_at: str) -> str:
    """``target`` (relative to the report folder) as seen from the page ``page_at`` (also relative)."""
    import os

    return Path(os.path.relpath(target, Path(page_at).parent)).as_posix()


def _write_overview(report_dir: Path, spec, summary: DatasetSummary, findings: list[Finding], used: set[str],
                    home: str | None) -> None:
    from instseg.io import atomic_write_text

    ov = summary.overview
    here = Path(ov).parent

    def rel(p: str) -> str:
        return _rel(p, ov)

    stats = table(["images", "instances", "background images", "classes", "small", "medium", "large", "findings"],
                  [[summary.images, summary.instances, summary.background, len(summary.names),
                    summary.sizes["small"], summary.sizes["medium"], summary.sizes["large"], summary.findings]],
                  cls="stats")
    classes = table(["class", "instances"], [[n, c] for n, c in zip(summary.names, summary.per_class)],
                    cls="class-counts")
    figs = "".join(figure(rel(f"plots/dataset_{summary.split}_{k}.png"), rel(f"plots/dataset_{summary.split}_{k}.svg"),
                          cap) for k, cap in (("classes", "instances per class"),
                                              ("per_image", "instances per image"), ("sizes", "instance sizes")))
    kinds = Counter((f.severity.value, f.code) for f in findings)
    kind_rows = [[sev, code, n] for (sev, code), n in sorted(kinds.items())]
    loose = [f for f in findings if f.file is None or str(Path(f.file).resolve()) not in used]
    pages = " ".join(f'<a href="{esc(rel(p))}">page {i + 1}</a>' for i, p in enumerate(summary.pages))
    body = (f"<h2>{esc(spec.yaml_path)} &middot; split {esc(summary.split)}</h2>{stats}"
            f"<h2>Image pages ({PER_PAGE} images each)</h2><p class=\"pages-list\">{pages}</p>"
            f'<h2>Distributions</h2><div class="plots">{figs}</div><h2>Classes</h2>{classes}'
            f"<h2>Dataset checks</h2>"
            f"{table(['severity', 'finding', 'count'], kind_rows, cls='finding-kinds') if kind_rows else '<p>none</p>'}")
    if loose:
        body += ("<h2>Findings about files without a page of their own</h2><ul class=\"findings\">"
                 + "".join(f"<li>{esc(f)}</li>" for f in loose[:500]) + "</ul>"
                 + (f"<p>... and {len(loose) - 500} more (run <code>instseg doctor</code>)</p>" if len(loose) > 500 else ""))
    links = [] if home is None else [("run", rel(home))]
    home_link = rel(home) if home is not None else Path(ov).name if here == Path(".") else rel(ov)
    atomic_write_text(report_dir / ov, page(f"Dataset: {spec.yaml_path.parent.name} / {summary.split}", body,
                                            home=home_link, links=links))


__all__ = ["DatasetSummary", "write_dataset_pages", "PER_PAGE"]
