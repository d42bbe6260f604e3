"""The Providers tab: every provider's health, the pools that fail over between them, and the scheduled jobs
that collect each service.

A keyed provider without its key is never called: it reads ``missing_api_key`` wherever it appears (its health,
its dot in a pool, a pool of nothing else), never "unhealthy" or merely "disabled"."""

from __future__ import annotations

import gradio as gr

from models.states import HealthDetail, HealthStatus, SourceStatus
from ui.format import count, duration, esc, milliseconds, when
from ui.widgets import KIND, Payload, View, breakable, checked, cut, heading, status_badge, table


def health_rows(data: Payload | None, view: View) -> list[list[str]]:
    if not data:
        return []
    rows = []
    providers = (data.get("providers") or {}).items()
    for _pid, p in sorted(providers, key=lambda kv: (kv[1].get("category", ""), kv[1].get("name", kv[0]))):
        detail = p.get("detail")
        word = str(p.get("status"))
        if detail == HealthDetail.MISSING_API_KEY:
            state = status_badge(SourceStatus.MISSING_API_KEY)  # not "disabled": it only wants its key
        else:
            state = status_badge(word) + (f' <span class="opt">{status_badge(detail)}</span>'
                                          if detail not in (None, HealthDetail.OK, word) else "")
        error = p.get("error")
        rows.append([esc(p.get("category") or ""), f"<b>{esc(p.get('name') or _pid)}</b>", state,
                     milliseconds(p.get("response_time_ms")),
                     when(p.get("last_check"), view.now, missing="not checked yet"),
                     when(p.get("last_success"), view.now, missing="never"),
                     f'<span class="err" title="{esc(error)}">{esc(cut(error, 90))}</span>' if error else ""])
    return rows


def keyless(health: Payload | None) -> frozenset[str]:
    """The providers that are not called for want of their API key, by the health report."""
    providers = (health or {}).get("providers") or {}
    return frozenset(pid for pid, p in providers.items() if p.get("detail") == HealthDetail.MISSING_API_KEY)


def pool_rows(data: Payload | None, view: View, missing_key: frozenset[str] = frozenset()) -> list[list[str]]:
    """``missing_key``: providers without their API key (see :func:`keyless`); a pool of nothing else reads
    ``missing_api_key``, not ``unhealthy``."""
    if not data:
        return []
    rows = []
    for name, pool in (data.get("pools") or {}).items():
        sources = {sid: SourceStatus.MISSING_API_KEY if sid in missing_key or state == HealthStatus.DISABLED
                   else state for sid, state in (pool.get("sources") or {}).items()}
        members = " ".join(f'<span class="dot {KIND.get(str(state), "off")}" title="{esc(state)}"></span>'
                           f"{esc(view.name(sid))}" for sid, state in sources.items()) or esc(
            ", ".join(view.name(s) for s in pool.get("available_sources") or []))
        health = (SourceStatus.MISSING_API_KEY if sources and all(
            state == SourceStatus.MISSING_API_KEY for state in sources.values()) else pool.get("health"))
        last = pool.get("last_failover") or {}
        last_text = (f"{esc(view.name(last.get('from_source')))} → {esc(view.name(last.get('to_source')))}, "
                     f"{when(last.get('at'), view.now)}" if last else "none")
        active = pool.get("active_source")
        rows.append([f"<b>{breakable(name)}</b>",
                     esc(view.name(active)) if active else '<span class="na">none yet</span>',
                     status_badge(health), f'<span class="members">{members}</span>',
                     count(pool.get("failover_count", 0)), last_text])
    return rows


def job_rows(data: Payload | None, view: View) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for job in data.get("jobs") or []:
        failures = job.get("failures") or 0
        error = job.get("last_error")
        rows.append([f"<b>{breakable(str(job.get('id', '')).removesuffix('_collection'))}</b>",
                     status_badge(job.get("status")), duration(job.get("interval_seconds")),
                     when(job.get("next_run"), view.now, missing="not scheduled", upcoming=True,
                          every=job.get("interval_seconds")),
                     when(job.get("last_run"), view.now, missing="not yet"),
                     (status_badge(job.get("last_result")) if job.get("last_result") else '<span class="na">—</span>')
                     + (f' <span class="err" title="{esc(error)}">{esc(cut(error, 60))}</span>' if error else ""),
                     milliseconds(job.get("last_duration_ms")),
                     f"{count(job.get('runs', 0))}" + (f' <span class="down">({failures} failed)</span>'
                                                       if failures else "")])
    return rows


def render_providers(health: Payload | None, pools: Payload | None, scheduler: Payload | None, view: View) -> str:
    return _health(health, view) + _pools(pools, view, keyless(health)) + _jobs(scheduler, view)


def _health(health: Payload | None, view: View) -> str:
    parts = [heading("Provider health"), checked("Health checks", "health_checker", health, view)]
    if health:
        overall = str(health.get("overall_health"))
        parts.append(f'<p class="note">{status_badge(overall)} {health.get("healthy_count")} healthy, '
                     f'{health.get("degraded_count", 0)} slow or limited, {health.get("unhealthy_count")} failing, '
                     f'{health.get("disabled_count", 0)} missing an API key (never called) of '
                     f'{health.get("total_providers")}.</p>')
        parts.append(table(["Category", "Provider", "Status", "Latency", "Last check", "Last success", "Error"],
                           health_rows(health, view), optional=(0, 5, 6), numeric=(3,), tall=True,
                           empty="No providers declared."))
    return "".join(parts)


def _pools(pools: Payload | None, view: View, missing_key: frozenset[str] = frozenset()) -> str:
    parts = [heading("Pools and failover"), checked("Pools", "pool_manager", pools, view)]
    if pools:
        parts.append(table(["Pool", "Active source", "Health", "Sources", "Failovers", "Last failover"],
                           pool_rows(pools, view, missing_key), optional=(3, 5), numeric=(4,), empty="No pools."))
        recent = pools.get("recent_failovers") or []
        if recent:
            parts.append(heading("Recent failovers") + table(
                ["When", "Pool", "From", "To", "Why"],
                [[when(f.get("at"), view.now), esc(f.get("pool")), esc(view.name(f.get("from_source"))),
                  esc(view.name(f.get("to_source"))), esc(cut(f.get("reason"), 120))] for f in recent[-10:][::-1]],
                optional=(4,)))
    return "".join(parts)


def _jobs(scheduler: Payload | None, view: View) -> str:
    parts = [heading("Scheduled jobs"), checked("Scheduler", "scheduler", scheduler, view)]
    if scheduler:
        parts.append(f'<p class="note">{"running" if scheduler.get("running") else "<b>stopped</b>"}: '
                     f'{scheduler.get("total_jobs")} jobs, {scheduler.get("active_jobs")} running right now.</p>')
        parts.append(table(["Job", "Status", "Every", "Next run", "Last run", "Last result", "Took", "Runs"],
                           job_rows(scheduler, view), optional=(1, 2, 4, 6, 7), numeric=(6,), empty="No jobs."))
    return "".join(parts)


def layout(html: dict[str, gr.HTML]) -> None:
    with gr.Tab("Providers", id="providers", elem_id="tab-providers"):
        html["providers"] = gr.HTML(js_on_load=None, elem_id="providers")
