"""The HTML report: one self-contained page (inline CSS, JS and SVG; nothing fetched).

:func:`write_report` reads a results file once (:func:`~kyro._report.data.summarize_results`)
and writes one HTML file that works offline and as an attachment: the job summary, pass rate
per judge (pipeline step) with vote agreement and mean score, a pipeline's per-step outcomes
(ran, skipped, not triggered, not reached; own and effective pass rates), score histograms,
token and cost totals, and a table of (a sample of) transcripts that filters by judge and
status and shows every run's root cause. The table is plain HTML, readable without
JavaScript; the filters are a few lines of inline script. Every text from the results is escaped.

Example::

    write_report(Path("results.jsonl"), Path("report.html"), prices=load_prices())
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from html import escape
from pathlib import Path

from kyro._cost.prices import PriceTable
from kyro._files import atomic_write
from kyro._report.data import BINS, JudgeSummary, ReportData, ReportRow, summarize_results

__all__ = ["render_html", "write_report"]

_STATUS_ORDER = ("SUCCESS", "ERROR", "PARTIAL", "NA", "ERRORED")
_COLOURS = {
    "SUCCESS": "#2e7d32",
    "ERROR": "#c62828",
    "PARTIAL": "#ef6c00",
    "NA": "#607d8b",
    "ERRORED": "#6a1b9a",
}
_OTHER_COLOUR = "#9e9e9e"
# Nothing may be fetched: no network, no files; only the inline style and script run.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_CSS = """
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
margin:0;color:#1f2328;background:#f6f8fa}header{background:#24292f;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.8}main{padding:16px 24px;
max-width:1400px}section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px;
margin-bottom:16px}h2{font-size:16px;margin:0 0 12px}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#57606a;font-size:12px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #eaeef2;padding:6px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa;font-weight:600}td.n{text-align:right;
font-variant-numeric:tabular-nums}.badge{display:inline-block;padding:0 6px;border-radius:10px;
color:#fff;font-size:12px;font-weight:600}.runs{margin:4px 0 0;padding-left:16px;color:#57606a;
font-size:12px}.hists{display:flex;flex-wrap:wrap;gap:16px}.hist figcaption{font-size:12px;
color:#57606a}.filters{display:flex;gap:12px;align-items:center;margin-bottom:8px}
.note{color:#57606a;font-size:12px}tr[hidden]{display:none}
"""

_JS = """
(function(){
var judge=document.getElementById('f-judge'),status=document.getElementById('f-status'),
count=document.getElementById('shown'),rows=document.querySelectorAll('#rows tbody tr');
function apply(){var j=judge.value,s=status.value,n=0;
for(var i=0;i<rows.length;i++){var r=rows[i],ok=true;
if(j!==''){var v=r.getAttribute('data-v'+j);ok=v!==null&&(s===''||v===s);}
else if(s!==''){ok=(' '+r.getAttribute('data-all')+' ').indexOf(' '+s+' ')>=0;}
r.hidden=!ok;if(ok)n++;}
count.textContent=String(n);}
judge.addEventListener('change',apply);status.addEventListener('change',apply);apply();
})();
"""


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, _OTHER_COLOUR)
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _usd(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:,.4f}" if value < 100 else f"${value:,.2f}"


def _card(label: str, value: str, test_id: str) -> str:
    return (
        f'<div class="card" data-testid="{test_id}"><b>{escape(value)}</b>'
        f"<span>{label}</span></div>"
    )


def _status_bar(statuses: dict[str, int], total: int) -> str:
    """A stacked horizontal SVG bar of transcript statuses."""
    if not total:
        return ""
    width, x, parts = 600.0, 0.0, []
    for status in _ordered(statuses):
        share = statuses[status] / total * width
        colour = _COLOURS.get(status, _OTHER_COLOUR)
        parts.append(
            f'<rect x="{x:.2f}" y="0" width="{share:.2f}" height="18" fill="{colour}">'
            f"<title>{escape(status)}: {statuses[status]:,}</title></rect>"
        )
        x += share
    return (
        f'<svg role="img" aria-label="transcript statuses" width="{width:.0f}" height="18" '
        f'viewBox="0 0 {width:.0f} 18">{"".join(parts)}</svg>'
    )


def _ordered(statuses: dict[str, int]) -> list[str]:
    known = [s for s in _STATUS_ORDER if statuses.get(s)]
    return known + sorted(s for s in statuses if s not in _STATUS_ORDER and statuses[s])


def _rate_bar(rate: float | None) -> str:
    if rate is None:
        return ""
    filled = 100 * rate
    return (
        '<svg width="100" height="8" viewBox="0 0 100 8" aria-hidden="true">'
        '<rect width="100" height="8" fill="#eaeef2"/>'
        f'<rect width="{filled:.1f}" height="8" fill="#2e7d32"/></svg>'
    )


def _histogram(name: str, judge: JudgeSummary) -> str:
    peak = max(judge.histogram) or 1
    bar_w, height = 24, 60
    bars = []
    for i, count in enumerate(judge.histogram):
        h = count / peak * height
        low, high = i / BINS, (i + 1) / BINS
        bars.append(
            f'<rect x="{i * bar_w + 1}" y="{height - h:.1f}" width="{bar_w - 2}" '
            f'height="{h:.1f}" fill="#0969da"><title>{low:.1f}–{high:.1f}: {count:,}</title></rect>'
        )
    mean = judge.score_sum / judge.scores if judge.scores else None
    mean_text = "" if mean is None else f", mean {mean:.2f}"
    return (
        f'<figure class="hist"><svg width="{bar_w * BINS}" height="{height + 14}" '
        f'viewBox="0 0 {bar_w * BINS} {height + 14}" role="img" '
        f'aria-label="score histogram of {escape(name)}">{"".join(bars)}'
        f'<text x="0" y="{height + 12}" font-size="10">0</text>'
        f'<text x="{bar_w * BINS - 8}" y="{height + 12}" font-size="10">1</text></svg>'
        f"<figcaption>{escape(name)}: {judge.scores:,} scores{mean_text}</figcaption></figure>"
    )


def _judges_table(data: ReportData) -> str:
    extra = sorted(
        {s for j in data.judges.values() for s in j.counts} - {"SUCCESS", "ERROR", "NA", "ERRORED"}
    )
    head = "".join(
        f"<th>{escape(c)}</th>"
        for c in ("judge / step", "pass rate", "", "SUCCESS", "ERROR", "NA", "errored", *extra)
    )
    head += "<th>runs disagreed</th><th>mean score</th><th>models</th>"
    rows = []
    for name, judge in data.judges.items():
        cells = [
            f"<td>{escape(name)}</td>",
            f'<td class="n" data-testid="rate-{escape(name)}">{_pct(judge.pass_rate)}</td>',
            f"<td>{_rate_bar(judge.pass_rate)}</td>",
        ]
        for status in ("SUCCESS", "ERROR", "NA", "ERRORED", *extra):
            cells.append(f'<td class="n">{judge.counts.get(status, 0):,}</td>')
        if judge.multi_run:
            share = judge.disagreed / judge.multi_run
            agreement = f"{judge.disagreed:,} of {judge.multi_run:,} ({share:.1%})"
        else:
            agreement = "— (no verdict with 2+ valid runs)"
        cells.append(f'<td class="n">{agreement}</td>')
        mean = f"{judge.score_sum / judge.scores:.3f}" if judge.scores else "—"
        cells.append(f'<td class="n">{mean}</td>')
        cells.append(f"<td>{escape(', '.join(judge.models)) or '—'}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _steps_table(data: ReportData) -> str:
    """Per pipeline step: how often it ran, was skipped, not triggered or not reached, and
    the pass rate of its own verdicts and of its effective ones (fallbacks included)."""
    head = "".join(
        f"<th>{c}</th>"
        for c in (
            "step",
            "ran",
            "pass rate",
            "",
            "effective pass rate",
            "skipped",
            "not triggered",
            "not reached",
        )
    )
    rows = []
    for name, step in data.steps.items():
        label = escape(name)
        cells = [
            f"<td>{label}</td>",
            f'<td class="n">{step.ran:,}</td>',
            f'<td class="n" data-testid="step-rate-{label}">{_pct(step.pass_rate)}</td>',
            f"<td>{_rate_bar(step.pass_rate)}</td>",
            f'<td class="n" data-testid="step-effective-{label}">'
            f"{_pct(step.effective_pass_rate)}</td>",
        ]
        for state in ("SKIPPED", "NOT_TRIGGERED", "NOT_REACHED"):
            cells.append(f'<td class="n">{step.states.get(state, 0):,}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    note = (
        '<p class="note">pass rate: the step\'s own verdicts where it ran; effective: what its '
        "dependents and the roll-up used (a failed step's fallback counts)</p>"
    )
    return (
        f'<section><h2>Pipeline steps</h2><table id="steps"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{note}</section>"
    )


def _grouped(runs: tuple[tuple[int, str, str], ...]) -> list[tuple[str, str, str]]:
    """Consecutive runs with the same status and reason as one item ("runs 0–2: …")."""
    groups: list[tuple[int, int, str, str]] = []
    for run, status, reason in runs:
        if groups and groups[-1][2:] == (status, reason) and run == groups[-1][1] + 1:
            groups[-1] = (groups[-1][0], run, status, reason)
        else:
            groups.append((run, run, status, reason))
    out = []
    for first, last, status, reason in groups:
        if first < 0:
            label = ""
        elif first == last:
            label = f"run {first}: "
        else:
            label = f"runs {first}–{last}: "
        out.append((label, status, reason))
    return out


def _row_html(row: ReportRow, judges: list[str]) -> str:
    attrs = [f'data-status="{escape(row.status)}"']
    seen = {row.status}
    cells = [
        f'<td class="n">{row.index}</td>',
        f"<td>{escape(row.source)}</td>",
        f"<td>{_badge(row.status)}</td>",
    ]
    for position, name in enumerate(judges):
        verdict = row.verdicts.get(name)
        if verdict is None:
            cells.append("<td>—</td>")
            continue
        attrs.append(f'data-v{position}="{escape(verdict.status)}"')
        seen.add(verdict.status)
        runs = "".join(
            f"<li>{label}{escape(status)}{' — ' + escape(reason) if reason else ''}</li>"
            for label, status, reason in _grouped(verdict.runs)
        )
        votes = f' <span class="note">{escape(verdict.votes)}</span>' if verdict.votes else ""
        cells.append(f'<td>{_badge(verdict.status)}{votes}<ul class="runs">{runs}</ul></td>')
    attrs.append(f'data-all="{escape(" ".join(sorted(seen)))}"')
    return f"<tr {' '.join(attrs)}>{''.join(cells)}</tr>"


def render_html(data: ReportData, *, title: str, generated: str) -> str:
    """The report page for ``data`` (a complete HTML document)."""
    judges = list(data.judges)
    statuses = sorted(
        {row.status for row in data.rows}
        | {v.status for row in data.rows for v in row.verdicts.values()},
        key=lambda s: (_STATUS_ORDER.index(s) if s in _STATUS_ORDER else 99, s),
    )
    judge_options = "".join(
        f'<option value="{i}">{escape(name)}</option>' for i, name in enumerate(judges)
    )
    status_options = "".join(f'<option value="{escape(s)}">{escape(s)}</option>' for s in statuses)
    cards = [
        _card("transcripts", f"{data.transcripts:,}", "transcripts"),
        _card("pass rate", _pct(data.pass_rate), "pass-rate"),
    ]
    for status in _STATUS_ORDER:
        if status != "NA":
            count = data.statuses.get(status, 0)
            cards.append(_card(status, f"{count:,}", f"count-{status}"))
    cards += [
        _card("runs (errored)", f"{data.runs:,} ({data.errored_runs:,})", "runs"),
        _card("answered by cache", f"{data.cached_runs:,}", "cached"),
        _card(
            "tokens in / cached / out",
            f"{data.input_tokens:,} / {data.cached_input_tokens:,} / {data.output_tokens:,}",
            "tokens",
        ),
        _card("cost", _usd(data.cost_usd), "cost"),
    ]
    cost_note = f'<p class="note">{escape(data.cost_note)}</p>' if data.cost_note else ""
    sampled = len(data.rows) < data.transcripts
    sample_note = (
        f"a sample of {len(data.rows):,} of {data.transcripts:,} transcripts (those that did "
        "not pass are weighted up)"
        if sampled
        else f"all {data.transcripts:,} transcripts"
    )
    head = "".join(f"<th>{escape(c)}</th>" for c in ("#", "transcript", "status", *judges))
    rows = "".join(_row_html(row, judges) for row in data.rows)
    hists = "".join(_histogram(n, j) for n, j in data.judges.items() if j.scores)
    hist_section = (
        f'<section><h2>Score histograms</h2><div class="hists">{hists}</div></section>'
        if hists
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body><header><h1>{escape(title)}</h1>
<p>{escape(str(data.path.name))} · generated {escape(generated)}</p></header><main>
<section><h2>Summary</h2><div class="cards">{"".join(cards)}</div>
<p>{_status_bar(data.statuses, data.transcripts)}</p>{cost_note}</section>
<section><h2>Judges and steps</h2>{_judges_table(data)}</section>
{_steps_table(data) if data.steps else ""}
{hist_section}
<section><h2>Transcripts</h2>
<div class="filters">
<label>judge <select id="f-judge"><option value="">all</option>{judge_options}</select></label>
<label>status <select id="f-status"><option value="">all</option>{status_options}</select>
</label>
<span><b id="shown">{len(data.rows)}</b> rows shown; {sample_note}</span></div>
<table id="rows"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>
</main><script>{_JS}</script></body></html>
"""


def write_report(
    results: Path,
    output: Path,
    *,
    prices: PriceTable | None = None,
    provider: str = "openai",
    model: str | None = None,
    batch: bool = True,
    max_rows: int = 1_000,
    title: str | None = None,
    now: datetime.datetime | None = None,
    judge_models: Mapping[str, str] | None = None,
) -> ReportData:
    """Read ``results`` once and write the report to ``output`` (atomically, mode 0644).

    ``judge_models`` (judge name → model, from the config) prices results that record no
    model.
    """
    data = summarize_results(
        results,
        max_rows=max_rows,
        prices=prices,
        provider=provider,
        model=model,
        batch=batch,
        judge_models=judge_models,
    )
    moment = now if now is not None else datetime.datetime.now(datetime.timezone.utc)
    page = render_html(
        data,
        title=title or f"kyro report: {results.name}",
        generated=moment.strftime("%Y-%m-%d %H:%M UTC"),
    )
    atomic_write(output, page.encode("utf-8"), mode=0o644)
    return data
