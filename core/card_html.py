"""The data card as one self-contained HTML page: inline CSS, inline SVG charts drawn here, images
as small base64 thumbnails; no script, no network, no external file. Every piece of record text
goes through ``html.escape`` (records are untrusted: a caption may hold markup).
"""
from __future__ import annotations

import base64
import html
import io
from typing import Any, Iterable

from .card import Card, Sampled, text

THUMB_PX = 160
SMALL_PX = 120
VERDICT_COLOURS = {"yes": "#2e7d32", "no": "#c62828", "open": "#ef6c00", "other": "#6d4c41"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c6cbd6;font-size:13px}header .path{color:#e3e7ee}nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde1e8;
padding:8px 32px;z-index:1;font-size:14px}nav a{margin-right:14px;color:#1a56b8;text-decoration:none}
main{padding:8px 32px 40px;max-width:1280px}section{margin-top:22px}h2{font-size:18px;border-bottom:2px solid #dde1e8;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 8px}table{border-collapse:collapse;background:#fff;font-size:13px}
td,th{border:1px solid #dde1e8;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef1f5}
td.n{text-align:right;font-variant-numeric:tabular-nums}.notes{background:#fff8e1;border:1px solid #f0d98a;
padding:8px 14px;font-size:13px}.banner{padding:10px 14px;border-radius:4px;font-weight:600;margin:8px 0}
.ok{background:#e8f5e9;border:1px solid #a5d6a7}.bad{background:#ffebee;border:1px solid #ef9a9a}
.warn{background:#fff3e0;border:1px solid #ffcc80}.charts{display:flex;flex-wrap:wrap;gap:14px}
.chart{background:#fff;border:1px solid #dde1e8;padding:8px}.chart p{margin:2px 0;font-size:12px;color:#4a5263}
.record{display:flex;gap:14px;background:#fff;border:1px solid #dde1e8;border-radius:4px;padding:10px;margin:10px 0}
.record .thumb{flex:0 0 160px}.record .thumb img{width:160px;height:160px;object-fit:contain;background:#fafafa;border:1px solid #ccd}
.record .body{flex:1;min-width:0;font-size:13px}.record h4{margin:0 0 6px;font-size:13px;color:#4a5263}
dl{display:grid;grid-template-columns:150px 1fr;gap:3px 10px;margin:0}dt{color:#4a5263;font-weight:600}
dd{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}.path{font-family:monospace;font-size:12px;color:#4a5263}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:0 6px;font-weight:600}
.conv{margin-top:8px;border-left:3px solid #dde1e8;padding-left:8px}.msg{margin:4px 0;white-space:pre-wrap;
overflow-wrap:anywhere}.msg b{display:inline-block;min-width:70px;color:#1a56b8}.msg.assistant b{color:#2e7d32}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f5f6f8;padding:6px;margin:4px 0;font-size:12px}
.pair{display:flex;gap:10px;align-items:flex-start}.pair img{width:120px;height:120px;object-fit:contain;background:#fafafa;border:1px solid #ccd}
.noimg{display:inline-block;width:120px;padding:30px 0;text-align:center;background:#eee;color:#777;font-size:12px}
"""


def esc(value: Any) -> str:
    return html.escape(text(value), quote=True)


def thumbnail(source: Any, px: int = THUMB_PX) -> str | None:
    """A small JPEG of the image as a ``data:`` URI, or None when it cannot be read."""
    from .images import load_rgb

    try:
        image = load_rgb(source).copy()
        image.thumbnail((px, px))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class _Thumbs:
    def __init__(self) -> None:
        self.made: dict[tuple[str, int], str | None] = {}

    def img(self, source: Any, key: str, px: int = THUMB_PX) -> str:
        if (key, px) not in self.made:
            self.made[(key, px)] = thumbnail(source, px) if source is not None else None
        uri = self.made[(key, px)]
        return f'<img src="{uri}" alt="{esc(key)}">' if uri else '<span class="noimg">no image</span>'


def _number(value: Any) -> str:
    if value is None:
        return "&mdash;"
    if isinstance(value, float):
        return f"{value:.4g}"
    return esc(value)


def _table(rows: Iterable[tuple[Any, ...]], head: tuple[str, ...], table_id: str = "") -> str:
    body = "".join("<tr>" + "".join(f'<td class="n">{_number(c)}</td>' if isinstance(c, (int, float)) or c is None
                                    else f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    attribute = f' id="{esc(table_id)}"' if table_id else ""
    return f"<table{attribute}><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + f"</tr>{body}</table>"


def _flat(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [row for k, v in data.items() for row in _flat(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(data, (int, float)) or data is None:
        return [(prefix, data)]
    return [(prefix, text(data))]


# -- charts (inline SVG) --------------------------------------------------------------------
def bar_svg(bins: list[dict], width: int = 380, height: int = 170) -> str:
    """A histogram: one bar per bin, the count on hover (``<title>``), axis labels at the ends."""
    if not bins:
        return '<svg width="380" height="40" role="img"><text x="8" y="24" font-size="12">no data</text></svg>'
    left, bottom, top = 40, 24, 10
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max(b["count"] for b in bins) or 1
    step = plot_w / len(bins)
    parts = [f'<svg width="{width}" height="{height}" role="img" font-size="11" font-family="sans-serif">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#888"/>',
             f'<text x="{left - 4}" y="{top + 9}" text-anchor="end">{peak}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>']
    for i, b in enumerate(bins):
        h = plot_h * b["count"] / peak
        label = f"{b['lo']}" if b["hi"] - b["lo"] == 1 else f"{b['lo']}-{b['hi'] - 1}"
        parts.append(f'<rect x="{left + i * step + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(step - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="#4f7cc4"><title>{label} words: {b["count"]}</title></rect>')
    for i in sorted({0, len(bins) // 2, len(bins) - 1}):
        b = bins[i]
        parts.append(f'<text x="{left + (i + 0.5) * step:.1f}" y="{height - 8}" text-anchor="middle">{b["lo"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def funnel_svg(steps: list[tuple[str, int | None, str]], width: int = 640) -> str:
    """Horizontal bars, one per step, proportional to the largest."""
    shown = [(label, value, colour) for label, value, colour in steps if value is not None]
    peak = max([v for _, v, _ in shown] + [1])
    row, label_w, plot_w = 26, 190, width - 190 - 70
    parts = [f'<svg width="{width}" height="{row * len(shown) + 6}" role="img" font-size="12" font-family="sans-serif">']
    for i, (label, value, colour) in enumerate(shown):
        y, w = 4 + i * row, plot_w * value / peak
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{esc(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{max(w, 1):.1f}" height="{row - 8}" fill="{colour}"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- sections -------------------------------------------------------------------------------
def _counts(card: Card) -> str:
    c = card.numbers["counts"]
    verdicts = c.get("verdicts") or {}
    steps = [("pairs read", c["pairs_read"], "#78909c"), ("pairs handled", c["pairs"], "#607d8b"),
             ("triplets", c["triplets"], "#4f7cc4")]
    steps += [(f"verdict {label}", n, VERDICT_COLOURS.get(label, "#888")) for label, n in verdicts.items()]
    steps += [("training examples", c["examples"], "#6a1b9a")]
    rows = [(label, value) for label, value, _ in steps]
    keep = None if c["keep_rate"] is None else f"{100 * c['keep_rate']:.1f} %"
    rows += [("pairs without a triplet", c["no_triplet"]), ("keep rate (yes / judged)", keep),
             ("distinct images in the mix", c["mix_images"])]
    rows += [(f"examples with {k} messages", v) for k, v in (c["examples_by_turns"] or {}).items()]
    rows += [(f"examples of training stage {k}", v) for k, v in (c["examples_by_stage"] or {}).items()]
    quarantine = [(stage, kind, n) for stage, kinds in card.numbers["quarantined_by_kind"].items()
                  for kind, n in sorted(kinds.items())]
    out = [f'<section id="counts"><h2>Counts per stage</h2>{funnel_svg(steps)}',
           _table(rows, ("what", "count"), "counts-table"), "<h3>Quarantined records (rejected.jsonl) by reason</h3>",
           _table(quarantine, ("stage", "reason", "records"), "quarantine-table") if quarantine
           else "<p>No record was quarantined.</p>"]
    for stage, entries in card.rejected.items():
        if entries:
            out.append(f"<details><summary>first {len(entries)} quarantined in {esc(stage)}</summary>"
                       + _table([(e.get("where"), e.get("kind"), e.get("reason")) for e in entries],
                                ("where", "kind", "reason")) + "</details>")
    out.append("<h3>Stage summaries</h3>")
    for stage, info in card.numbers["stages"].items():
        rows = _flat(info["summary"])[:40]
        out.append(f"<details><summary><b>{esc(stage)}</b>: {esc(info['status'])}</summary>"
                   f"{_table(rows, ('field', 'value'), f'summary-{stage}') if rows else '<p>no summary</p>'}</details>")
    return "".join(out) + "</section>"


def _lengths(card: Card) -> str:
    out = ['<section id="lengths"><h2>Lengths in words</h2><div class="charts">']
    for name, h in card.numbers["lengths"].items():
        summary = (f"n={h['n']} · min {h['min']} · median {h['median']} · mean {h['mean']} · max {h['max']}"
                   if h["n"] else esc(h.get("unavailable", "no records")))
        out.append(f'<div class="chart" id="len-{name}"><b>{esc(name)}</b><p>{summary}</p>{bar_svg(h["bins"])}</div>')
    return "".join(out) + "</div></section>"


def _overlap(card: Card, thumbs: _Thumbs) -> str:
    o = card.numbers["overlap"]
    out = ['<section id="overlap"><h2>Overlap with benchmark images</h2>']
    if o["status"] != "checked":
        out.append(f'<div class="banner warn" id="overlap-status">{esc(o["message"])}</div>')
    else:
        kind = "bad" if o["exact_pairs"] else "warn" if o["pairs"] else "ok"  # exact copies are the alarm
        out.append(f'<div class="banner {kind}" id="overlap-status">{esc(o["message"])}</div>')
        rows = [(name, b["images"], b["images_matched"], b["pairs"], b["exact_pairs"], b["flat"], b["unreadable"])
                for name, b in o["benchmarks"].items()]
        rows.append(("training mix", o["train_images"], o["train_images_matched"], o["pairs"], o["exact_pairs"],
                     o["train_flat"], o["train_unreadable"]))
        out.append(_table(rows, ("images of", "images", "matched", "pairs", "exact", "flat (file hash only)",
                                 "unreadable"), "overlap-table"))
        out.append(f"<p>Exact copy: the same file bytes. Possible near-duplicate (look at both): 64-bit perceptual "
                   f"hashes of the grey images (imagehash phash) at most {o['threshold']} bits apart and mean colours "
                   f"of an 8 x 8 grid within {o['colour_tolerance']} levels. Flat (one-colour) images hash alike, so "
                   f"they are compared by file hash only.</p>")
        result = card.overlap
        for match in (result.matches[: len(o["matches"])] if result is not None else []):
            samples = ", ".join(match.benchmark.samples[:5])
            out.append(
                f'<div class="record pair-row"><div class="pair">{thumbs.img(match.train.source, match.train.label, SMALL_PX)}'
                f'{thumbs.img(match.benchmark.source, match.benchmark.label, SMALL_PX)}</div><div class="body"><dl>'
                f"<dt>{'exact copy' if match.exact else 'possible near-duplicate'}</dt>"
                f"<dd>{'the same bytes' if match.exact else _near(match)}</dd>"
                f'<dt>training image</dt><dd class="path">{esc(match.train.label)}</dd>'
                f"<dt>benchmark</dt><dd>{esc(match.benchmark.group)}</dd>"
                f'<dt>benchmark image</dt><dd class="path">{esc(match.benchmark.label)}</dd>'
                f"<dt>samples</dt><dd>{esc(samples)}</dd></dl></div></div>")
        if o["pairs"] > len(o["matches"]):
            out.append(f"<p>{o['pairs'] - len(o['matches'])} more pair(s) in card.json.</p>")
    for problem in o.get("benchmark_problems") or []:
        out.append(f'<p class="notes">{esc(problem)}</p>')
    return "".join(out) + "</section>"


def _near(match) -> str:
    parts = [f"phash {match.distance} bits apart"]
    if match.colour_difference is not None:
        parts.append(f"colours within {match.colour_difference} levels")
    return ", ".join(parts) + ": look at both"


def _record(item: Sampled, thumbs: _Thumbs, composed: bool) -> str:
    pair, triplet, verdict = item.pair or {}, item.triplet or {}, item.verdict
    rows = [("image", item.image, "path")]
    if item.pair is not None:
        rows += [("caption instruction", pair.get("instruction"), ""), ("caption", pair.get("caption"), "")]
    if item.triplet is not None:
        rows += [("instruction", triplet.get("instruction"), ""), ("precise", triplet.get("precise"), ""),
                 ("informative", triplet.get("informative"), "")]
    dl = "".join(f'<dt>{esc(k)}</dt><dd class="{cls}">{esc(v)}</dd>' for k, v, cls in rows)
    if verdict is not None:
        label = text(verdict.get("verdict"))
        dl += (f'<dt>verdict</dt><dd><span class="badge" style="background:{VERDICT_COLOURS.get(label, "#888")}">'
               f'{esc(label)}</span></dd>')
        if text(verdict.get("raw")):
            dl += f'<dt>judge said</dt><dd class="raw">{esc(verdict.get("raw"))}</dd>'
    extra = ""
    if triplet.get("raw"):
        extra += f"<details><summary>synthesizer output</summary><pre>{esc(triplet.get('raw'))}</pre></details>"
    for example in item.examples:
        messages = example.get("messages") if isinstance(example.get("messages"), list) else []
        stage = f" (training stage {esc(example.get('stage'))})" if example.get("stage") is not None else ""
        turns = "".join(f'<div class="msg {esc(m.get("role"))}"><b>{esc(m.get("role"))}</b>{esc(m.get("content"))}</div>'
                        for m in messages if isinstance(m, dict))
        extra += f'<div class="conv"><h4>composed conversation{stage}</h4>{turns}</div>'
    if not item.examples and composed:
        extra += '<div class="conv"><h4>not in the training mix</h4></div>'
    return (f'<article class="record" id="rec-{esc(item.id)}"><div class="thumb">'
            f"{thumbs.img(item.image, item.image or '')}</div><div class=\"body\"><h4>{esc(item.id)}</h4>"
            f"<dl>{dl}</dl>{extra}</div></article>")


def _records(card: Card, thumbs: _Thumbs) -> str:
    sample = card.numbers["sample"]
    out = [f'<section id="records"><h2>Sampled records</h2><p>Up to {sample["per_section"]} records per outcome, '
           f'chosen with seed {sample["seed"]} (adamllm inspect --sample N --seed S).</p><p>']
    out.append(" · ".join(f'<a href="#sec-{esc(name.replace(" ", "-"))}">{esc(name)} ({info["total"]})</a>'
                          for name, info in sample["sections"].items()) + "</p>")
    for name, items in card.sections.items():
        total = sample["sections"][name]["total"]
        out.append(f'<h3 id="sec-{esc(name.replace(" ", "-"))}">{esc(name)}: {len(items)} of {total}</h3>')
        out += [_record(item, thumbs, card.numbers["counts"]["examples"] is not None) for item in items]
    return "".join(out) + "</section>"


def render(card: Card) -> str:
    thumbs = _Thumbs()
    n = card.numbers
    notes = "".join(f"<li>{esc(note)}</li>" for note in n["notes"])
    stages = ", ".join(f"{s} ({info['status']})" for s, info in n["stages"].items())
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Data card: {esc(n["run_dir"])}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
            f'<header><h1>Data card</h1><p class="path">{esc(n["run_dir"])}</p><p>stages: {esc(stages)} · config read '
            f'from {esc(n["config_from"])} · adamllm {esc(n["adamllm_version"])}</p></header>'
            '<nav><a href="#counts">counts</a><a href="#lengths">lengths</a><a href="#overlap">overlap</a>'
            '<a href="#records">records</a></nav><main>'
            + (f'<div class="notes"><ul>{notes}</ul></div>' if notes else "")
            + _counts(card) + _lengths(card) + _overlap(card, thumbs) + _records(card, thumbs)
            + "</main></body></html>\n")
