"""The post-event report as one self-contained HTML page (inline CSS and SVG, no script, no fetches).

Every value from the audit trail is escaped with the approval pages' :func:`escape` (user text such
as a justification is data, never markup); the page's Content-Security-Policy allows nothing but
its own stylesheet, so even a value that slipped through could not load or run anything.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import breakglass
from breakglass.cli.report import Call, Finding, Incident, parse_time
from breakglass.contracts import iso
from breakglass.lambdas.approvals.templates import Markup, escape

_BASE_STYLE: Final = """\
:root{--ink:#1d2330;--muted:#5b6578;--line:#d9dde5;--bg:#f4f5f7;--high:#b71c1c;--medium:#e65100;--info:#37474f}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:var(--bg);color:var(--ink);line-height:1.45}
main{max-width:68rem;margin:1.5rem auto;background:#fff;border-radius:8px;padding:1.5rem 2rem;box-shadow:0 1px 3px rgba(0,0,0,.15)}
h1{font-size:1.5rem;margin:0 0 .3rem}
h2{font-size:1.1rem;margin:1.8rem 0 .6rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
.sub{color:var(--muted);margin:0}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:1rem;font-size:.8rem;font-weight:600;color:#fff;background:var(--info);vertical-align:middle}
.badge.denied,.badge.high{background:var(--high)}.badge.revoked,.badge.medium{background:var(--medium)}
.badge.granted{background:#6a1b9a}.badge.expired{background:#546e7a}.badge.pending{background:#1565c0}
.badge.accepted{background:#2e7d32}.badge.flagged{background:var(--high)}.badge.opened{background:#1565c0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1.2rem;margin:0}
dt{font-weight:600;color:var(--muted)}dd{margin:0;word-break:break-word}
.quote{white-space:pre-wrap;word-break:break-word;background:#f8f9fb;border-left:4px solid #90a4ae;padding:.6rem .9rem;margin:0}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:break-word}
th{color:var(--muted);font-weight:600}
tr.bad td{background:#fdecea}tr.warn td{background:#fff3e0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em}
ul.findings{list-style:none;padding:0;margin:0}
ul.findings li{padding:.5rem .7rem;border-left:4px solid var(--info);background:#f8f9fb;margin-bottom:.4rem}
ul.findings li.high{border-color:var(--high);background:#fdecea}ul.findings li.medium{border-color:var(--medium);background:#fff3e0}
.when{color:var(--muted);font-size:.85rem;margin-left:.4rem}.detail{color:var(--muted);font-size:.88rem;margin-top:.15rem}
.none{color:var(--muted);font-style:italic}
figure{margin:0}figcaption{color:var(--muted);font-size:.85rem;margin-top:.4rem}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1.1rem;font-size:.82rem;color:var(--muted);margin-top:.4rem}
.sw{display:inline-block;width:.8rem;height:.8rem;border-radius:50%;vertical-align:-.1rem;margin-right:.3rem}
footer{margin-top:2rem;color:var(--muted);font-size:.82rem}
@media print{body{background:#fff}main{box-shadow:none;margin:0;max-width:none}}
"""

# Colours of the timeline's marks (also used by the legend).
COLOURS: Final = {
    "request": "#1565c0",
    "approval": "#2e7d32",
    "denial": "#c62828",
    "grant": "#6a1b9a",
    "revoke": "#ef6c00",
    "expiry": "#546e7a",
    "review": "#00838f",
    "call": "#37474f",
    "error": "#c62828",
    "outside": "#ff6f00",
    "halt": "#d32f2f",
    "resume": "#2e7d32",
    "window": "#e8f5e9",
}

# Swatch classes, not style attributes: the page's CSP admits only its one hashed stylesheet.
STYLE: Final = (
    _BASE_STYLE + "".join(f".sw.{key}{{background:{colour}}}" for key, colour in COLOURS.items()) + "\n"
)


def style_source() -> str:
    digest = hashlib.sha256(STYLE.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _join(parts: Iterable[str]) -> Markup:
    return Markup("".join(parts))


def _clock(value: str | None) -> str:
    return "" if value is None else parse_time(value).strftime("%H:%M:%S")


def _when(value: str | None) -> str:
    return "" if value is None else iso(parse_time(value)).replace("T", " ").replace("Z", " UTC")


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    seconds = int((parse_time(end) - parse_time(start)).total_seconds())
    hours, rest = divmod(abs(seconds), 3600)
    minutes = rest // 60
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


# -- the timeline picture ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    at: datetime
    lane: str
    shape: str
    colour: str
    label: str
    title: str
    css: str
    hollow: bool = False
    ring: str | None = None


_TICKS: Final = tuple(
    timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
)
WIDTH: Final = 1000
LEFT: Final = 96
RIGHT: Final = 130
LANE: Final = 96


def _marks(incident: Incident) -> list[_Mark]:
    marks: list[_Mark] = []
    for event in incident.events:
        kind = str(event.get("event_type"))
        at = parse_time(str(event["event_time"]))
        actor = str(event.get("actor") or "")
        if kind == "request":
            label = f"request by {actor}"
        elif kind in ("approval", "denial"):
            own = kind == "approval" and actor.lower() == str(incident.requester or "").lower()
            label = f"{kind}: {actor}" + (" (self)" if own else "")
            marks.append(
                _Mark(
                    at,
                    "workflow",
                    "circle",
                    COLOURS[kind],
                    label,
                    f"{_when(iso(at))} {label}",
                    f"vote {kind}",
                    ring=COLOURS["error"] if own else None,
                )
            )
            continue
        elif kind == "grant":
            label = "access granted"
        elif kind == "revoke":
            label = f"revoked by {actor}"
        elif kind == "expiry":
            label = "expired"
        elif kind == "review":
            label = f"review {event.get('outcome')}" + (f": {actor}" if actor != "system" else "")
        elif kind == "waiver" and event.get("outcome") == "succeeded":
            # Security let the requester's next request past this grant's review gate.
            label = f"review gate waived by {actor}"
        else:
            continue  # halts/resumes have their own lane; assume and errors show as CloudTrail calls
        colour = COLOURS.get(kind, COLOURS["call"])
        marks.append(
            _Mark(at, "workflow", "circle", colour, label, f"{_when(iso(at))} {label}", f"event {kind}")
        )
    for call in incident.calls:
        marks.append(_call_mark(call))
    for halt in incident.halts:
        label = f"{halt.action} {halt.target}" + (" (failed)" if halt.outcome == "failed" else "")
        marks.append(
            _Mark(
                parse_time(halt.at),
                "halts",
                "down" if halt.action == "halt" else "up",
                COLOURS[halt.action] if halt.action in COLOURS else COLOURS["call"],
                label,
                f"{_when(halt.at)} {label} [{halt.mode or ''}] by {halt.actor}",
                f"halt-action {halt.action}",
                hollow=halt.outcome == "failed",
            )
        )
    return sorted(marks, key=lambda m: m.at)


def _call_mark(call: Call) -> _Mark:
    colour = COLOURS["error"] if call.error_code else COLOURS["call"]
    label = call.event_name + (f" ({call.error_code})" if call.error_code else "")
    title = f"{_when(call.at)} {call.service} {call.event_name} in {call.aws_region or '?'}"
    if call.error_code:
        title += f": {call.error_code}"
    if call.outside_window:
        title += " (outside the granted window)"
    return _Mark(
        parse_time(call.at),
        "session",
        "diamond" if call.kind == "assume" else "tick",
        colour,
        label,
        title,
        "call" + (" outside" if call.outside_window else "") + (" error" if call.error_code else ""),
        ring=COLOURS["outside"] if call.outside_window else None,
    )


def _tick_step(span: timedelta) -> timedelta:
    for step in _TICKS:
        if span / step <= 8:
            return step
    return _TICKS[-1]


def timeline_svg(incident: Incident) -> Markup:
    marks = _marks(incident)
    lanes = ["workflow", "session"] + (["halts"] if incident.halts else [])
    lane_titles = {"workflow": "workflow", "session": "AWS calls", "halts": "halts"}
    moments = [m.at for m in marks]
    for value in (incident.window_start, incident.window_end, incident.expires_at):
        if value:
            moments.append(parse_time(value))
    for window in incident.extensions:
        moments += [parse_time(window.start), parse_time(window.end)]
    start, end = (min(moments), max(moments)) if moments else (datetime.now(), datetime.now())
    if end - start < timedelta(minutes=10):
        middle = start + (end - start) / 2
        start, end = middle - timedelta(minutes=5), middle + timedelta(minutes=5)
    pad = (end - start) * 0.03
    start, end = start - pad, end + pad
    plot = WIDTH - LEFT - RIGHT
    top = 44  # headroom for the rotated labels of the first lane
    height = top + LANE * len(lanes) + 44

    def x(moment: datetime) -> float:
        return round(LEFT + plot * ((moment - start) / (end - start)), 1)

    def lane_base(lane: str) -> int:
        return top + LANE * lanes.index(lane) + LANE - 18

    parts: list[str] = []
    summary = f"Timeline of request {incident.request_id}: {len(marks)} marks from {iso(start)} to {iso(end)}"
    parts.append(
        f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{escape(summary)}">'
    )
    parts.append(f"<title>{escape(summary)}</title>")
    parts.append(f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>')
    # The granted window (and, when cut short, the rest it would have lasted, dashed).
    if incident.window_start and incident.window_end:
        x0, x1 = x(parse_time(incident.window_start)), x(parse_time(incident.window_end))
        parts.append(
            f'<rect class="window" x="{x0}" y="{top - 6}" width="{max(x1 - x0, 1.5)}" '
            f'height="{LANE * len(lanes) + 6}" fill="{COLOURS["window"]}" stroke="#81c784"/>'
        )
        parts.append(
            f'<text x="{x0 + 4}" y="{top + LANE * len(lanes) - 4}" font-size="11" fill="#2e7d32">granted window '
            f"{escape(_clock(incident.window_start))} to {escape(_clock(incident.window_end))}</text>"
        )
        if incident.expires_at and parse_time(incident.expires_at) > parse_time(incident.window_end):
            x2 = x(parse_time(incident.expires_at))
            parts.append(
                f'<rect class="window-rest" x="{x1}" y="{top - 6}" width="{max(x2 - x1, 1.5)}" '
                f'height="{LANE * len(lanes) + 6}" fill="none" stroke="#81c784" stroke-dasharray="4 3"/>'
            )
    # The windows of its extensions, each its own request.
    for window in incident.extensions:
        x0, x1 = x(parse_time(window.start)), x(parse_time(window.end))
        parts.append(
            f'<rect class="window extension" x="{x0}" y="{top - 6}" width="{max(x1 - x0, 1.5)}" '
            f'height="{LANE * len(lanes) + 6}" fill="{COLOURS["window"]}" stroke="#2e7d32" '
            'stroke-dasharray="6 2"/>'
        )
        parts.append(
            f'<text x="{x0 + 4}" y="{top + LANE * len(lanes) - 4}" font-size="11" fill="#2e7d32">extension '
            f"{escape(_clock(window.start))} to {escape(_clock(window.end))}</text>"
        )
    # Lanes.
    for lane in lanes:
        base = lane_base(lane)
        parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#cfd8dc"/>')
        parts.append(
            f'<text x="{LEFT - 10}" y="{base + 4}" font-size="12" font-weight="600" fill="#5b6578" '
            f'text-anchor="end">{escape(lane_titles[lane])}</text>'
        )
    # Time axis.
    axis = top + LANE * len(lanes) + 6
    parts.append(f'<line x1="{LEFT}" y1="{axis}" x2="{WIDTH - RIGHT}" y2="{axis}" stroke="#90a4ae"/>')
    step = _tick_step(end - start)
    tick = datetime.fromtimestamp(
        (start.timestamp() // step.total_seconds() + 1) * step.total_seconds(), start.tzinfo
    )
    last_day = None
    while tick <= end:
        tx = x(tick)
        label = tick.strftime("%H:%M")
        if tick.date() != last_day:
            label = tick.strftime("%Y-%m-%d %H:%M")
            last_day = tick.date()
        parts.append(f'<line x1="{tx}" y1="{axis}" x2="{tx}" y2="{axis + 5}" stroke="#90a4ae"/>')
        parts.append(
            f'<line x1="{tx}" y1="{top - 6}" x2="{tx}" y2="{axis}" stroke="#eceff1" stroke-dasharray="2 4"/>'
        )
        parts.append(
            f'<text x="{tx}" y="{axis + 18}" font-size="11" fill="#5b6578" text-anchor="middle">{escape(label)}</text>'
        )
        tick += step
    parts.append(
        f'<text x="{WIDTH - RIGHT}" y="{axis + 34}" font-size="10" fill="#90a4ae" text-anchor="end">time (UTC)</text>'
    )
    # Marks, each with a tooltip (<title>); labels are drawn per cluster of nearby marks.
    for mark in marks:
        mx, base = x(mark.at), lane_base(mark.lane)
        fill = "#ffffff" if mark.hollow else mark.colour
        parts.append(f'<g class="mark {escape(mark.css)}"><title>{escape(mark.title)}</title>')
        if mark.ring:
            parts.append(
                f'<circle cx="{mx}" cy="{base}" r="10" fill="none" stroke="{mark.ring}" stroke-width="2.5"/>'
            )
        if mark.shape == "circle":
            parts.append(
                f'<circle cx="{mx}" cy="{base}" r="6" fill="{fill}" stroke="{mark.colour}" stroke-width="2"/>'
            )
        elif mark.shape == "diamond":
            parts.append(
                f'<polygon points="{mx},{base - 7} {mx + 7},{base} {mx},{base + 7} {mx - 7},{base}" '
                f'fill="{fill}" stroke="{mark.colour}" stroke-width="1.5"/>'
            )
        elif mark.shape == "tick":
            parts.append(f'<rect x="{mx - 2}" y="{base - 9}" width="4" height="18" fill="{fill}"/>')
        else:
            tip, back = (base + 7, base - 6) if mark.shape == "down" else (base - 7, base + 6)
            parts.append(
                f'<polygon points="{mx - 7},{back} {mx + 7},{back} {mx},{tip}" fill="{fill}" '
                f'stroke="{mark.colour}" stroke-width="2"/>'
            )
        parts.append("</g>")
    for lx, lane, text in _labels(marks, x):
        base = lane_base(lane)
        parts.append(
            f'<text class="label" x="{lx + 4}" y="{base - 13}" font-size="10.5" fill="#37474f" '
            f'transform="rotate(-32 {lx + 4} {base - 13})">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return _join(parts)


# Labels of marks closer than this (in pixels) are joined, so rotated labels never overprint.
LABEL_GAP: Final = 26
LABEL_MAX: Final = 3
LABEL_CHARS: Final = 38  # a longer rotated label would leave the picture (the tooltip has it all)


def _labels(marks: Sequence[_Mark], x: Callable[[datetime], float]) -> list[tuple[float, str, str]]:
    """``(x, lane, text)`` per cluster of marks in a lane: "a, b, c +2 more" at the first one."""
    labels: list[tuple[float, str, str]] = []
    clusters: dict[str, list[tuple[float, str]]] = {}

    def flush(lane: str) -> None:
        cluster = clusters.pop(lane, [])
        if cluster:
            names = list(dict.fromkeys(text for _, text in cluster))
            text = ", ".join(names[:LABEL_MAX]) + (
                f" +{len(names) - LABEL_MAX} more" if len(names) > LABEL_MAX else ""
            )
            if len(text) > LABEL_CHARS:
                text = text[: LABEL_CHARS - 3].rstrip(", ") + "..."
            labels.append((cluster[0][0], lane, text))

    for mark in marks:
        mx = x(mark.at)
        cluster = clusters.get(mark.lane)
        if cluster and mx - cluster[0][0] > LABEL_GAP:
            flush(mark.lane)
        clusters.setdefault(mark.lane, []).append((mx, mark.label))
    for lane in list(clusters):
        flush(lane)
    return labels


def _legend() -> Markup:
    items = (
        ("request", "request"),
        ("approval", "approval"),
        ("denial", "denial"),
        ("grant", "grant"),
        ("revoke", "revoke"),
        ("expiry", "expiry"),
        ("review", "review"),
        ("call", "AWS call (diamond: AssumeRole)"),
        ("error", "failed call"),
        ("outside", "ring: outside the window / self-approval in red"),
        ("halt", "halt (triangle down)"),
        ("resume", "resume (triangle up; hollow: failed)"),
    )
    spans = (f'<span><span class="sw {key}"></span>{escape(text)}</span>' for key, text in items)
    return Markup('<div class="legend">' + "".join(spans) + "</div>")


# -- the page ------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[object]]], *, table_id: str) -> Markup:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{escape(css)}">' + "".join(f"<td>{escape(v)}</td>" for v in values) + "</tr>"
        for css, values in rows
    )
    return Markup(
        f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _none(text: str) -> Markup:
    return Markup(f'<p class="none">{escape(text)}</p>')


def _finding(f: Finding) -> str:
    when = f'<span class="when">{escape(_when(f.at))}</span>' if f.at else ""
    detail = f'<div class="detail">{escape(f.detail)}</div>' if f.detail else ""
    return (
        f'<li class="{escape(f.severity)}" data-kind="{escape(f.kind)}">'
        f'<span class="badge {escape(f.severity)}">{escape(f.severity)}</span> {escape(f.title)}{when}{detail}</li>'
    )


def render_report(incident: Incident, *, generated_at: datetime, source: str) -> str:
    """The HTML page for ``incident``; ``source`` says where the data came from (shown in the footer)."""
    inc = incident
    summary = [
        ("Request", inc.request_id),
        ("Requester", inc.requester or "unknown"),
        ("Tier", inc.tier or "unknown"),
        (
            "Status",
            Markup(f'<span class="badge {escape(inc.status)}" id="status">{escape(inc.status)}</span>'),
        ),
        ("Requested", _when(inc.requested_at) or "not in this copy"),
        (
            "Window",
            f"{_when(inc.window_start)} to {_when(inc.window_end)} ({_duration(inc.window_start, inc.window_end)})"
            if inc.window_start and inc.window_end
            else ("granted, no end recorded" if inc.granted_at else "never granted"),
        ),
        ("Approved until", _when(inc.expires_at) or "-"),
        *(
            (
                "Extended",
                f"{w.request_id}: {_when(w.start)} to {_when(w.end)} ({_duration(w.start, w.end)})"
                + (f", {w.ended_by}" if w.ended_by else ""),
            )
            for w in inc.extensions
        ),
        (
            "Ended",
            f"{inc.ended_by} by {inc.ended_actor} at {_when(inc.ended_at)}"
            + (f" ({inc.ended_reason})" if inc.ended_reason else "")
            if inc.ended_at
            else "-",
        ),
        ("Emergency role", inc.role_arn or "-"),
    ]
    summary_html = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in summary)
    justification = (
        f'<dl><dt>Ticket</dt><dd id="ticket">{escape(inc.ticket or "none given")}</dd></dl>'
        f'<p class="sub">Justification, as the requester wrote it:</p>'
        f'<blockquote class="quote" id="reason">{escape(inc.reason or "(no request event in this copy)")}</blockquote>'
    )
    votes = (
        _table(
            ["decision", "by", "when", "outcome", "note"],
            (
                (
                    "bad" if v.self_approval else "",
                    [
                        v.decision + (" (self-approval)" if v.self_approval else ""),
                        v.approver,
                        _when(v.at),
                        v.outcome,
                        v.reason or "",
                    ],
                )
                for v in inc.votes
            ),
            table_id="approvals-table",
        )
        if inc.votes
        else _none("No approvals or denials recorded (an auto-approved tier, or still pending).")
    )
    findings = (
        Markup(
            '<ul class="findings" id="findings-list">' + "".join(_finding(f) for f in inc.findings) + "</ul>"
        )
        if inc.findings
        else _none("No findings: every call inside the window, no self-approval, review signed off.")
    )
    calls = (
        _table(
            ["time", "call", "service", "region", "result", "source IP", "in window"],
            (
                (
                    "bad" if c.outside_window else ("warn" if c.error_code else ""),
                    [
                        _when(c.at),
                        c.event_name,
                        c.service,
                        c.aws_region or "",
                        c.error_code or "ok",
                        c.source_ip or "",
                        "no" if c.outside_window else "yes",
                    ],
                )
                for c in inc.calls
            ),
            table_id="calls-table",
        )
        if inc.calls
        else _none("No CloudTrail calls of an emergency session by the requester in this copy.")
    )
    halts = (
        _table(
            ["time", "action", "target", "mode", "outcome", "by", "reason / details"],
            (
                (
                    "bad" if h.outcome == "failed" else "",
                    [
                        _when(h.at),
                        h.action,
                        h.target,
                        h.mode or "",
                        h.outcome,
                        h.actor,
                        h.details or h.reason or "",
                    ],
                )
                for h in inc.halts
            ),
            table_id="halts-table",
        )
        if inc.halts
        else _none("No halts or resumes under this request.")
    )
    verdicts = [r for r in inc.reviews if r.outcome in ("accepted", "flagged")]
    opened = [r for r in inc.reviews if r.outcome == "opened"]
    review_rows = "".join(
        f'<tr><td><span class="badge {escape(r.outcome)}">{escape(r.outcome)}</span></td><td>{escape(r.actor)}</td>'
        f"<td>{escape(_when(r.at))}</td><td>{escape(r.notes or '')}</td></tr>"
        for r in inc.reviews
    )
    reviews = (
        Markup(
            '<table id="reviews-table"><thead><tr><th>verdict</th><th>by</th><th>when</th><th>notes</th></tr></thead>'
            f"<tbody>{review_rows}</tbody></table>"
        )
        if inc.reviews
        else _none("No post-event review was opened for this request.")
    )
    if opened and not verdicts:
        reviews = Markup(str(reviews) + str(_none("Not signed off yet: no verdict recorded.")))
    events = _table(
        ["time", "event", "actor", "outcome", "target", "event id"],
        (
            (
                "",
                [
                    _when(str(e.get("event_time"))),
                    e.get("event_type"),
                    e.get("actor"),
                    e.get("outcome"),
                    e.get("target") or "",
                    e.get("event_id"),
                ],
            )
            for e in inc.events
        ),
        table_id="events-table",
    )
    counts = ", ".join(f"{name}: {rows}" for name, rows in inc.queries.items())
    period = (
        f" CloudTrail calls considered: {_when(inc.period[0])} to {_when(inc.period[1])}."
        if inc.period
        else ""
    )
    notes = "".join(f"<p>{escape(n)}</p>" for n in inc.notes)
    high = sum(1 for f in inc.findings if f.severity == "high")
    medium = sum(1 for f in inc.findings if f.severity == "medium")
    csp = (
        f"default-src 'none'; style-src {style_source()}; img-src 'none'; base-uri 'none'; form-action 'none'"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{escape(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{escape(f"Break-glass incident {inc.request_id}")}</title>
<style>{STYLE}</style>
</head>
<body>
<main>
<header>
<h1>Break-glass incident <code id="request-id">{escape(inc.request_id)}</code></h1>
<p class="sub">{escape(inc.requester or "unknown")} · tier {escape(inc.tier or "unknown")} · {escape(inc.status)} ·
{escape(high)} high and {escape(medium)} medium findings</p>
</header>
<section id="summary"><h2>Summary</h2><dl>{summary_html}</dl></section>
<section id="justification"><h2>Justification and ticket</h2>{justification}</section>
<section id="approvals"><h2>Approvals</h2>{votes}</section>
<section id="timeline-section"><h2>Timeline</h2>
<figure>{timeline_svg(inc)}
<figcaption>Request, votes, grant, every CloudTrail call of the emergency session, halts and resumes, and the end of
access, on one time axis (UTC). Hover a mark for its details.</figcaption>{_legend()}</figure></section>
<section id="findings"><h2>Findings</h2>{findings}</section>
<section id="calls"><h2>AWS calls of the session</h2>{calls}</section>
<section id="halts"><h2>Halts and resumes</h2>{halts}</section>
<section id="reviews"><h2>Post-event review</h2>{reviews}</section>
<section id="events"><h2>Audit events of the request</h2>{events}</section>
<footer>
<p>Generated {escape(_when(iso(generated_at)))} by breakglass {escape(breakglass.__version__)} from {escape(source)}.
Rows per source: {escape(counts)}.{escape(period)}</p>{notes}
</footer>
</main>
</body>
</html>
"""
