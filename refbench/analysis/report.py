"""``refbench report RUN [RUN ...] --out report.html``: one self-contained HTML page about finished runs.

Self-contained: CSS, the charts (inline SVG, :mod:`refbench.analysis.charts`) and the images (JPEG data URIs) are in
the file; a Content-Security-Policy forbids every fetch, so the page never reaches the network. Per dataset (runs
of one dataset and protocol side by side):

* the headline table of each run with the reported rows of the same dataset and protocol beside it (the
  leaderboards, :mod:`refbench.leaderboard`; Ref-DAVIS17 shows its convention), and the partial-run flags;
* per-sample distributions (histograms), per-video bars, J against F (video tasks);
* the worst samples: overlays of prediction (red) and ground truth (green outline) on the real frames or images
  (where they are on disk; the page says so where not), per-frame J / F curves (the run's ``per_frame.csv`` when
  it has one, the scorer's per-frame function otherwise); for grounding, each run's span against the ground truth;
* each run's provenance: run.json (model, options, fingerprint, versions, annotation sha256, device, timings) and
  the summary's ``details.official``.

Size is bounded: at most ``worst`` samples (default 8) with ``frames`` overlays each (default 4), downscaled to
``image_width`` pixels (default 320) as JPEG quality 70, and at most 80 videos in the per-video bars. The task
decides the sections (:data:`SECTIONS`): adding a task is one function.

The page records its own check in ``<html>`` attributes when it has loaded (``data-check="done"``,
``data-images``, ``data-broken`` images whose ``naturalWidth`` is 0, ``data-errors``, ``data-resources`` fetched):
the headless-browser test reads them back with ``chromium --dump-dom``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from refbench.analysis import charts
from refbench.analysis.rundir import RunDir, RunDirError, number

MAX_VIDEOS = 80
JPEG_QUALITY = 70


class ReportError(RunDirError):
    """Runs that cannot be put on one page, or options out of range."""


@dataclass
class ReportOptions:
    worst: int = 8
    frames: int = 4
    image_width: int = 320
    root: str | None = None


@dataclass
class ReportResult:
    path: Path
    bytes: int
    seconds: float
    images: int
    notes: list[str] = field(default_factory=list)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return _e(v if v is not None else "")
    return "NaN" if not math.isfinite(v) else f"{v:.2f}"


# ------------------------------------------------------------------------------------------------ images


def _jpeg_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _resize(arr: np.ndarray, width: int, nearest: bool) -> np.ndarray:
    from PIL import Image

    h, w = arr.shape[:2]
    if w <= width:
        return arr
    size = (width, max(1, round(h * width / w)))
    if arr.dtype == bool:
        return np.asarray(Image.fromarray(arr.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
    return np.asarray(Image.fromarray(arr).resize(size, Image.NEAREST if nearest else Image.BILINEAR))


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def overlay(frame: np.ndarray | None, gt: np.ndarray, pred: np.ndarray, width: int) -> str:
    """A JPEG data URI: ``frame`` (H, W, 3) or a grey canvas, prediction in red, ground truth outlined in green."""
    g, p = gt.astype(bool), pred.astype(bool)
    base = np.full((*g.shape, 3), 128, np.uint8) if frame is None else frame
    if base.shape[:2] != g.shape:
        from PIL import Image

        base = np.asarray(Image.fromarray(base).resize((g.shape[1], g.shape[0]), Image.BILINEAR))
    base, g, p = _resize(base, width, False), _resize(g, width, True), _resize(p, width, True)
    out = base.astype(np.float32)
    out[p] = 0.5 * out[p] + 0.5 * np.array([230, 30, 30], np.float32)
    edge = _outline(g)
    edge[1:, :] |= edge[:-1, :]  # two pixels wide, so it stays visible when the page is zoomed out
    edge[:, 1:] |= edge[:, :-1]
    out[edge] = (40, 230, 60)
    return _jpeg_uri(out.clip(0, 255).astype(np.uint8))


def _read_rgb(path: Path | None) -> np.ndarray | None:
    if path is None or not Path(path).is_file():
        return None
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# ------------------------------------------------------------------------------------------------ page parts


_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.rep td{color:#555}.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.card{border:1px solid #e2e2e2;border-radius:6px;padding:8px;margin:8px 0}.note{color:#8a5a00;font-size:13px}
.small{font-size:12px;color:#555}img{border:1px solid #ccc}pre{font-size:11px;max-height:360px;overflow:auto;
background:#f7f7f7;padding:6px}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
"""

_CHECK = """
(function(){var errs=[];window.addEventListener('error',function(e){errs.push(String(e.message||e));});
window.addEventListener('unhandledrejection',function(e){errs.push(String(e.reason));});
var ce=console.error;console.error=function(){errs.push([].join.call(arguments,' '));ce.apply(console,arguments);};
window.addEventListener('load',function(){var imgs=document.images,bad=0;for(var i=0;i<imgs.length;i++){
if(!imgs[i].complete||imgs[i].naturalWidth===0)bad++;}var res=(performance.getEntriesByType?
performance.getEntriesByType('resource').length:0);var d=document.documentElement;
d.setAttribute('data-images',imgs.length);d.setAttribute('data-broken',bad);d.setAttribute('data-errors',errs.length);
d.setAttribute('data-error-text',errs.join(' | ').slice(0,500));d.setAttribute('data-resources',res);
d.setAttribute('data-check','done');});})();
"""


def _legend(runs: Sequence[RunDir]) -> str:
    if len(runs) < 2:
        return ""
    return '<p class="small">' + " ".join(f'<span class="sw" style="background:{charts.colour(i)}"></span>'
                                          f'{_e(r.model)} ({_e(r.path.name)})' for i, r in enumerate(runs)) + "</p>"


def _headline(runs: Sequence[RunDir], dataset: str, protocol: str) -> str:
    from refbench.evaluate.run import _protocol_label

    names = [k for k, v in runs[0].summary["metrics"].items() if isinstance(v, (int, float))]
    reported, other = [], 0
    try:
        from refbench.leaderboard import leaderboard_dirs, read_rows, select

        for row in select(read_rows(leaderboard_dirs(), strict=False), dataset=dataset, kind="reported"):
            if row.protocol == protocol:
                reported.append(row)
            else:
                other += 1
    except Exception as exc:  # noqa: BLE001 - an unreadable leaderboard costs only the reported rows
        reported, other = [], 0
        note = f"leaderboards unreadable ({exc})"
    else:
        note = ""
    by_model: dict[tuple[str, str], dict[str, float]] = {}
    for r in reported:
        by_model.setdefault((r.model, r.source), {})[r.metric] = r.value
    label = _protocol_label(protocol)
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = []
    for i, run in enumerate(runs):
        s = run.summary
        flag = " (partial)" if s.get("partial") else ""
        cells = "".join(f"<td>{_fmt(s['metrics'].get(n))}</td>" for n in names)
        body.append(f'<tr><td class="l"><span class="sw" style="background:{charts.colour(i)}"></span>'
                    f'<b>{_e(run.model)}</b>{flag}</td><td class="l">this run ({_e(run.path.name)})</td>'
                    f'<td class="l">{_e(label)}</td>{cells}</tr>')
    for (model, source), vals in sorted(by_model.items(), key=lambda kv: -max(kv[1].values())):
        cells = "".join(f"<td>{_fmt(vals.get(n)) if n in vals else ''}</td>" for n in names)
        body.append(f'<tr class="rep"><td class="l">{_e(model)}</td><td class="l">reported: {_e(source[:90])}</td>'
                    f'<td class="l">{_e(label)}</td>{cells}</tr>')
    out = [f'<table><tr><th class="l">model</th><th class="l">kind</th><th class="l">protocol</th>{head}</tr>',
           *body, "</table>", '<p class="small">percent; reported rows are the leaderboards\' published numbers of '
           f"the same dataset and protocol{'' if reported else ' (none listed)'}"
           + (f"; {other} reported row(s) of other protocols (or none stated) are not shown: not comparable"
              if other else "") + (f"; {_e(note)}" if note else "") + "</p>"]
    for run in runs:
        for reason in run.summary.get("partial_reasons") or []:
            out.append(f'<p class="note">PARTIAL {_e(run.path.name)}: {_e(reason)}</p>')
    return "".join(out)


def _provenance(run: RunDir, index: int) -> str:
    meta = run.meta or {}
    prov = meta.get("provenance") or {}
    s = run.summary
    adapter = meta.get("adapter") or {}
    fields = [
        ("run directory", str(run.path)), ("model", run.model), ("fingerprint", run.fingerprint or "-"),
        ("options", json.dumps(adapter.get("options") or (meta.get("config") or {}).get("model_args") or {},
                               default=str)),
        ("dataset", f"{s['dataset']} (root {run.root or '-'})"), ("protocol", s["protocol"]),
        ("annotation sha256", run.annotation_sha256 or "-"),
        ("refbench", f"{prov.get('refbench_version') or (s.get('provenance') or {}).get('refbench_version')} "
                     f"(git {json.dumps(prov.get('git'))})"),
        ("packages", ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items()) or "-"),
        ("device", f"{prov.get('device') or (s.get('provenance') or {}).get('device')} "
                   f"({prov.get('device_name') or '-'}, world size {prov.get('world_size', '-')})"),
        ("timings", f"started {prov.get('started', '-')}, wall {prov.get('wall_seconds', '-')} s, peak RSS "
                    f"{prov.get('peak_rss_mib', '-')} MiB"),
        ("counts", ", ".join(f"{k} {v}" for k, v in (s.get("counts") or {}).items())),
        ("scored", (s.get("provenance") or {}).get("date", "-")),
    ]
    if meta.get("fuse"):
        fields.append(("fused from", "; ".join(f"{i['model']} {i['fingerprint'][:12]} ({i['run_dir']})"
                                               for i in meta["fuse"]["inputs"]) + f" - {meta['fuse']['rule']}"))
    if meta is None or not meta:
        fields.append(("run.json", "absent (a bare refbench eval output)"))
    rows = "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in fields)
    official = json.dumps((s.get("details") or {}).get("official"), indent=1, default=str)
    meta_text = json.dumps(meta, indent=1, default=str)
    if len(meta_text) > 40000:
        meta_text = meta_text[:40000] + "\n... (cut at 40000 characters)"
    return (f'<div class="card"><h3><span class="sw" style="background:{charts.colour(index)}"></span>'
            f'{_e(run.model)} - {_e(run.path.name)}</h3><table>{rows}</table>'
            f"<details><summary>details.official (the official printout)</summary><pre>{_e(official[:40000])}"
            f"</pre></details><details><summary>run.json</summary><pre>{_e(meta_text)}</pre></details></div>")


def _by_key(run: RunDir) -> dict[str, dict[str, str]]:
    return {r[run.key_column]: r for r in run.rows}


def _distributions(runs: Sequence[RunDir], col: str, xlabel: str) -> str:
    series = [(r.model, [number(row, col) for row in r.rows]) for r in runs]
    return charts.histogram(series, f"per-sample {col}", xlabel)


def _video_bars(runs: Sequence[RunDir], col: str) -> str:
    means: list[dict[str, float]] = []
    for r in runs:
        acc: dict[str, list[float]] = {}
        for row in r.rows:
            v = number(row, col)
            if math.isfinite(v):
                acc.setdefault(row.get("video", ""), []).append(v)
        means.append({k: float(np.mean(v)) for k, v in acc.items()})
    videos = list(means[0])
    note = ""
    if len(videos) > MAX_VIDEOS:
        videos = sorted(videos, key=lambda v: means[0][v])[:MAX_VIDEOS]
        note = f'<p class="small">the {MAX_VIDEOS} lowest of {len(means[0])} videos (by the first run)</p>'
    videos.sort(key=lambda v: means[0].get(v, 0.0))
    svg = charts.hbars(videos, [(r.model, [m.get(v, float("nan")) for v in videos]) for r, m in zip(runs, means)],
                       f"mean {col} per video", f"mean {col} per video (percent)")
    return note + svg


def _worst_keys(runs: Sequence[RunDir], col: str, n: int) -> list[str]:
    rows = [_by_key(r) for r in runs]
    scores = []
    for key in rows[0]:
        vals = [number(rr[key], col) for rr in rows if key in rr]
        vals = [v for v in vals if math.isfinite(v)]
        if vals:
            scores.append((float(np.mean(vals)), key))
    scores.sort()
    return [k for _s, k in scores[:n]]


def _pick_frames(t: int, n: int, j: Sequence[float] | None) -> list[int]:
    """``n`` frame indices of ``t``: evenly spaced, one of them the frame with the lowest J when ``j`` is given."""
    if t <= n:
        return list(range(t))
    even = [round(i * (t - 1) / (n - 1)) for i in range(n)] if n > 1 else [0]
    if j is None or not len(j) or not np.isfinite(np.asarray(j, dtype=float)).any():
        return even
    low = int(np.nanargmin(np.asarray(j, dtype=float)))
    if low in even:
        return even
    nearest = min(range(n), key=lambda i: abs(even[i] - low))
    return sorted(set(even[:nearest] + [low] + even[nearest + 1:]))


def _per_frame_file(run: RunDir) -> dict[str, list[dict[str, Any]]] | None:
    from refbench.evaluate.per_frame import PER_FRAME_FILE, read_per_frame

    if not run.file(PER_FRAME_FILE).is_file():
        return None
    out: dict[str, list[dict[str, Any]]] = {}
    rows = read_per_frame(run.file(PER_FRAME_FILE))
    if not rows:
        return out
    key = next(iter(rows[0]))
    for r in rows:
        out.setdefault(str(r[key]), []).append(r)
    return out


# ------------------------------------------------------------------------------------------------ tasks


@dataclass
class _Ctx:
    runs: Sequence[RunDir]
    options: ReportOptions
    notes: list[str]
    images: int = 0


def _open_loader(ctx: _Ctx) -> tuple[Any, str]:
    from refbench.cards import dataset_card

    run = ctx.runs[0]
    card = dataset_card(run.dataset)
    root = ctx.options.root or run.root
    try:
        return card.open(card.resolve_root(root)), str(root)
    except Exception as exc:  # noqa: BLE001 - no data on disk: the page says so and shows the numbers only
        return None, f"{root} ({exc})"


def _video_samples(loader: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for getter in ("samples", "pooled_samples"):
        fn = getattr(loader, getter, None)
        if callable(fn):
            for s in fn():
                out.setdefault(s.key if hasattr(s, "exp_id") else s.video, s)
    return out


def _refvos_worst(ctx: _Ctx, keys: Sequence[str]) -> str:
    from refbench.preds.masks import open_mask_source

    loader, where = _open_loader(ctx)
    if loader is None:
        return f'<p class="note">no overlays or curves: the dataset cannot be opened at {_e(where)}</p>'
    samples = _video_samples(loader)
    per_frame = [_per_frame_file(r) for r in ctx.runs]
    keymap = {x.key: (x.video, x.exp_id) for x in samples.values() if hasattr(x, "exp_id")}
    sources = [open_mask_source(r.predictions(), "expression", "grey", keymap) for r in ctx.runs]
    try:
        return _refvos_cards(ctx, keys, loader, where, samples, per_frame, sources)
    finally:
        for src in sources:
            src.close()


def _refvos_cards(ctx: _Ctx, keys: Sequence[str], loader: Any, where: str, samples: dict[str, Any],
                  per_frame: list, sources: list) -> str:
    from refbench.metrics.mevis import frame_jf

    out = []
    frames_missing = False
    row_maps = [_by_key(r) for r in ctx.runs]
    for key in keys:
        row = row_maps[0][key]
        s = samples.get(key) or samples.get(f"{row.get('video')}_{row.get('exp_id')}")
        if s is None:
            out.append(f'<div class="card"><h3>{_e(key)}</h3><p class="note">not in the dataset at {_e(where)}</p></div>')
            continue
        gt = loader.gt_masks(s)
        paths = loader.frame_paths(s) if callable(getattr(loader, "frame_paths", None)) else [None] * len(s.frames)
        preds, lines = [], []
        for i, run in enumerate(ctx.runs):
            pred = sources[i].read(s.video, s.exp_id, s.frames, gt.shape[1:], fill_missing=True)
            preds.append(pred)
            pf = per_frame[i].get(key) if per_frame[i] is not None else None
            if pf:
                j, f = [r["J"] for r in pf], [r["F"] for r in pf]
            else:
                jj, ff = frame_jf(pred, gt)
                j, f = list(jj * 100), list(ff * 100)
            lines += [(f"{run.model} J", j, charts.colour(i)), (f"{run.model} F", f, charts.colour(i))]
        picks = _pick_frames(len(s.frames), ctx.options.frames, lines[0][1])
        vals = " ".join(f"{_e(r.model)} J&amp;F {_fmt(number(m[key], 'J&F'))}" for r, m in zip(ctx.runs, row_maps))
        head = f'<h3>{_e(key)}: "{_e(s.text)}"</h3><p class="small">{vals}; frames {len(s.frames)}</p>'
        imgs = []
        for i, run in enumerate(ctx.runs):
            cells = []
            for t in picks:
                rgb = _read_rgb(paths[t]) if paths[t] is not None else None
                frames_missing |= rgb is None
                cells.append(f'<figure style="margin:0"><img alt="{_e(key)} frame {_e(s.frames[t])}" '
                             f'src="{overlay(rgb, gt[t] > 0, preds[i][t] > 0, ctx.options.image_width)}">'
                             f'<figcaption class="small">{_e(run.model)} frame {_e(s.frames[t])}</figcaption></figure>')
                ctx.images += 1
            imgs.append('<div class="row">' + "".join(cells) + "</div>")
        curve = charts.curves(lines, f"per-frame J and F of {key}")
        hows = ["per_frame.csv (the scorer's own values)" if p is not None else
                "the scorer's per-frame function (metrics.mevis.frame_jf) on the run's masks" for p in per_frame]
        how = hows[0] if len(set(hows)) == 1 else "; ".join(f"{r.model}: {h}" for r, h in zip(ctx.runs, hows))
        out.append(f'<div class="card">{head}{"".join(imgs)}{curve}<p class="small">curves: {_e(how)}</p></div>')
    if frames_missing:
        out.insert(0, f'<p class="note">some frames are not on disk at {_e(where)}: those overlays are drawn on a '
                      "grey background</p>")
        ctx.notes.append(f"frames not on disk at {where}: overlays on grey")
    return "".join(out)


def _vos_worst(ctx: _Ctx, keys: Sequence[str]) -> str:
    from refbench.preds.masks import open_mask_source

    loader, where = _open_loader(ctx)
    if loader is None:
        return f'<p class="note">no overlays: the dataset cannot be opened at {_e(where)}</p>'
    seqs = {s.video: s for s in loader.samples()}
    per_frame = [_per_frame_file(r) for r in ctx.runs]
    row_maps = [_by_key(r) for r in ctx.runs]
    sources = [open_mask_source(r.predictions(), "sequence", "index") for r in ctx.runs]
    try:
        return _vos_cards(ctx, keys, loader, seqs, per_frame, row_maps, sources)
    finally:
        for src in sources:
            src.close()


def _vos_cards(ctx: _Ctx, keys: Sequence[str], loader: Any, seqs: dict[str, Any], per_frame: list,
               row_maps: list, sources: list) -> str:
    out = []
    for key in keys:
        row = row_maps[0][key]
        s = seqs.get(row.get("video", ""))
        head = f'<h3>{_e(key)}</h3><p class="small">' + " ".join(
            f"{_e(r.model)} J&amp;F {_fmt(number(m[key], 'J&F'))}" for r, m in zip(ctx.runs, row_maps) if key in m) \
            + "</p>"
        gt_obj = number(row, "gt_object")
        if s is None or not math.isfinite(gt_obj):
            out.append(f'<div class="card">{head}<p class="note">overlays: this protocol\'s rows name no DAVIS object '
                       "id</p></div>")
            continue
        gt = loader.gt_masks(s)
        paths = loader.frame_paths(s)
        lines = []
        for i, pf in enumerate(per_frame):
            series = pf.get(key) if pf is not None else None
            if series:
                lines += [(f"{ctx.runs[i].model} J", [r["J"] for r in series], charts.colour(i)),
                          (f"{ctx.runs[i].model} F", [r["F"] for r in series], charts.colour(i))]
        picks = _pick_frames(len(s.frames), ctx.options.frames, None)
        imgs = []
        for i, run in enumerate(ctx.runs):
            r_i = row_maps[i].get(key, row)
            prop = int(number(r_i, "proposal")) if math.isfinite(number(r_i, "proposal")) else int(gt_obj)
            pred = sources[i].read(s.video, None, s.frames, gt.shape[1:], fill_missing=True)
            cells = []
            for t in picks:
                cells.append(f'<figure style="margin:0"><img alt="{_e(key)} frame {_e(s.frames[t])}" '
                             f'src="{overlay(_read_rgb(paths[t]), gt[t] == int(gt_obj), pred[t] == prop, ctx.options.image_width)}">'
                             f'<figcaption class="small">{_e(run.model)} frame {_e(s.frames[t])}</figcaption></figure>')
                ctx.images += 1
            imgs.append('<div class="row">' + "".join(cells) + "</div>")
        curve = charts.curves(lines, f"per-frame J and F of {key}") if lines else \
            '<p class="small">no per-frame curve: score with refbench eval --per-frame RUN/per_frame.csv</p>'
        out.append(f'<div class="card">{head}{"".join(imgs)}{curve}</div>')
    return "".join(out)


def _video_section(ctx: _Ctx, worst: Callable[[_Ctx, Sequence[str]], str]) -> str:
    runs = ctx.runs
    col = "J&F" if "J&F" in runs[0].rows[0] else "J"
    parts = ["<h3>Per-sample distributions</h3>", _legend(runs), '<div class="row">',
             _distributions(runs, col, f"{col} per sample (percent)")]
    if "J" in runs[0].rows[0] and "F" in runs[0].rows[0]:
        for i, r in enumerate(runs):
            pts = [(number(x, "J"), number(x, "F")) for x in r.rows]
            parts.append(charts.scatter(pts, f"J against F: {r.model}", "J", "F", series=i,
                                        labels=[x[r.key_column] for x in r.rows]))
    parts.append("</div>")
    if "video" in runs[0].rows[0]:
        parts += ["<h3>Per video</h3>", _video_bars(runs, col)]
    keys = _worst_keys(runs, col, ctx.options.worst)
    parts += [f"<h3>The {len(keys)} worst samples (by {col}, mean over the runs)</h3>",
              '<p class="small">red: prediction; green outline: ground truth</p>', worst(ctx, keys)]
    return "".join(parts)


def _refvos(ctx: _Ctx) -> str:
    return _video_section(ctx, _refvos_worst)


def _vos(ctx: _Ctx) -> str:
    return _video_section(ctx, _vos_worst)


def _tsg(ctx: _Ctx) -> str:
    runs = ctx.runs
    parts = ["<h3>Per-query IoU</h3>", _legend(runs), '<div class="row">',
             _distributions(runs, "iou", "IoU of the top-1 span (percent)"), "</div>"]
    if "video" in runs[0].rows[0]:
        parts += ["<h3>Per video</h3>", _video_bars(runs, "iou")]
    loader, _where = _open_loader(ctx)
    durations: dict[str, float] = {}
    if loader is not None:
        durations = {str(q.qid): float(q.duration or 0.0) for q in loader.samples()}
    keys = _worst_keys(runs, "iou", ctx.options.worst)
    row_maps = [_by_key(r) for r in runs]
    parts.append(f"<h3>The {len(keys)} worst queries: predicted against ground-truth spans</h3>")
    for key in keys:
        row = row_maps[0][key]
        gt = (number(row, "gt_start"), number(row, "gt_end"))
        preds = []
        for r, m in zip(runs, row_maps):
            x = m[key]
            s, e = number(x, "pred_start"), number(x, "pred_end")
            preds.append((r.model, (s, e) if math.isfinite(s) and math.isfinite(e) else None, number(x, "iou")))
        svg = charts.spans(durations.get(key, 0.0), gt, preds, f"query {key}")
        parts.append(f'<div class="card"><h3>{_e(key)}: "{_e(row.get("query", ""))}"</h3>'
                     f'<p class="small">video {_e(row.get("video", ""))}; IoU ' +
                     ", ".join(f"{_e(p[0])} {_fmt(p[2])}" for p in preds) + f"</p>{svg}</div>")
    return "".join(parts)


def _res(ctx: _Ctx) -> str:
    runs = ctx.runs
    parts = ["<h3>Per-sentence IoU</h3>", _legend(runs), '<div class="row">',
             _distributions(runs, "IoU", "IoU per sentence (percent)"), "</div>"]
    keys = _worst_keys(runs, "IoU", ctx.options.worst)
    parts += [f"<h3>The {len(keys)} worst sentences</h3>",
              '<p class="small">red: prediction; green outline: ground truth</p>']
    loader, where = _open_loader(ctx)
    if loader is None:
        parts.append(f'<p class="note">no overlays: the dataset cannot be opened at {_e(where)}</p>')
        return "".join(parts)
    from refbench.evaluate.res import _gt
    from refbench.preds.res import RESPredictions

    samples = {str(s.sample_id): s for s in loader.samples()}
    preds = [RESPredictions(r.predictions()) for r in runs]
    row_maps = [_by_key(r) for r in runs]
    missing = False
    for key in keys:
        s = samples.get(key)
        if s is None:
            continue
        gt = _gt(loader, s, runs[0].protocol or "lisa") == 1
        img = _read_rgb(loader.image_path(s))
        missing |= img is None
        cells = []
        for i, (r, p) in enumerate(zip(runs, preds)):
            m = p.mask(s.sample_id, s.height, s.width) if s.sample_id in p and not p.is_null(s.sample_id) else \
                np.zeros(gt.shape, np.uint8)
            cells.append(f'<figure style="margin:0"><img alt="{_e(key)}" src="{overlay(img, gt, m > 0, ctx.options.image_width)}">'
                         f'<figcaption class="small">{_e(r.model)} IoU {_fmt(number(row_maps[i][key], "IoU"))}'
                         "</figcaption></figure>")
            ctx.images += 1
        parts.append(f'<div class="card"><h3>{_e(key)}: "{_e(s.text)}"</h3><div class="row">{"".join(cells)}</div></div>')
    if missing:
        parts.append(f'<p class="note">some images are not on disk at {_e(where)}: drawn on a grey background</p>')
        ctx.notes.append(f"images not on disk at {where}")
    return "".join(parts)


#: task -> the page section of a dataset's runs.
SECTIONS: dict[str, Callable[[_Ctx], str]] = {"refvos": _refvos, "vos": _vos, "tsg": _tsg, "res": _res}


# ------------------------------------------------------------------------------------------------ the page


def build_report(runs: Sequence[RunDir], out: str | Path, options: ReportOptions | None = None) -> ReportResult:
    """Write the report page of ``runs`` to ``out`` (module doc)."""
    from refbench import __version__
    from refbench.files import atomic_write

    t0 = time.perf_counter()
    options = options or ReportOptions()
    if options.worst < 0 or options.frames < 1 or options.image_width < 32:
        raise ReportError("--worst must be >= 0, --frames >= 1 and --image-width >= 32")
    if not runs:
        raise ReportError("report: give at least one run directory")
    for r in runs:
        r.need("summary.json", "per_sample.csv", why="report reads summary.json and per_sample.csv")
    groups: dict[tuple[str, str], list[RunDir]] = {}
    for r in runs:
        groups.setdefault((r.dataset, str(r.protocol)), []).append(r)
    notes: list[str] = []
    body = []
    images = 0
    from refbench.evaluate.run import _protocol_label

    toc = []
    for n, ((dataset, protocol), members) in enumerate(groups.items()):
        task = members[0].task
        if task not in SECTIONS:
            raise ReportError(f"{dataset}: task {task!r} has no report section")
        ctx = _Ctx(members, options, notes)
        title = f"{dataset}, protocol {_protocol_label(protocol)}"
        toc.append(f'<li><a href="#d{n}">{_e(title)}</a> ({len(members)} run{"s" if len(members) > 1 else ""})</li>')
        section = SECTIONS[task](ctx)
        images += ctx.images
        prov = "".join(_provenance(r, i) for i, r in enumerate(members))
        body.append(f'<h2 id="d{n}">{_e(title)}</h2>{_headline(members, dataset, protocol)}{section}'
                    f"<h3>Provenance</h3>{prov}")
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>refbench report: {_e(', '.join(d for d, _p in groups))}</title><style>{_CSS}</style>"
            f"<script>{_CHECK}</script></head><body><h1>refbench report</h1>"
            f'<p class="small">{len(runs)} run(s); refbench {_e(__version__)}; made {now}; every number in percent; '
            f"self-contained (no network)</p><ul>{''.join(toc)}</ul>{''.join(body)}</body></html>")
    atomic_write(out, page, "--out")
    size = Path(out).stat().st_size
    return ReportResult(Path(out), size, time.perf_counter() - t0, images, notes)


__all__ = ["SECTIONS", "ReportError", "ReportOptions", "ReportResult", "build_report", "overlay"]
