"""The performance report: summary tables and charts in one object.

In a notebook it shows itself as HTML with the charts embedded as base64 PNG,
so it renders the same in JupyterLab, VS Code, nbconvert output and GitHub's
static viewer; ``to_html(path)`` writes the same content as a standalone page
to share or keep next to a benchmark run.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..presentation.replies import frame_html
from . import charts
from .reports import host_summary, model_summary, profile_summary, project_summary

_STYLE = """
.ollama-nb-report { font-family: system-ui, sans-serif; }
.ollama-nb-report table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0 1em; }
.ollama-nb-report th, .ollama-nb-report td { padding: 0.2em 0.6em; text-align: right; }
.ollama-nb-report figure { margin: 0.6em 0 1.2em; }
.ollama-nb-report figcaption { font-weight: 600; margin-bottom: 0.3em; }
.ollama-nb-report img { max-width: 100%; height: auto; }
.ollama-nb-report .meta { color: #666; font-size: 0.85em; }
"""


@dataclass(eq=False)
class PerformanceReport:
    """Tables and charts from one slice of the metrics store.

    ``events`` is the frame everything was computed from, ``summary`` the
    per-model table, ``figures`` the charts by title (matplotlib Figures, for
    people who want to restyle or save one).
    """

    events: pd.DataFrame
    summary: pd.DataFrame
    figures: dict[str, Figure]
    projects: pd.DataFrame
    profiles: pd.DataFrame | None = None
    hosts: pd.DataFrame | None = None  # per server, when more than one answered
    server_profile: str | None = None
    filters: str = "all requests"
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now().astimezone())
    _png: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def chart_titles(self) -> list[str]:
        return list(self.figures)

    def png_base64(self, title: str) -> str:
        """The chart ``title`` as base64 PNG (rendered once, then reused)."""
        if title not in self._png:
            buffer = io.BytesIO()
            self.figures[title].savefig(buffer, format="png")
            self._png[title] = base64.b64encode(buffer.getvalue()).decode("ascii")
        return self._png[title]

    def __repr__(self) -> str:
        models = self.summary.index.size
        return (
            f"<PerformanceReport: {len(self.events)} requests, {models} "
            f"model{'s' if models != 1 else ''}, {len(self.figures)} charts>"
        )

    def _body(self) -> str:
        parts = [
            "<h3>ollama_nb performance report</h3>",
            f'<p class="meta">{html.escape(self.filters)} · {len(self.events)} requests · '
            f"generated {self.generated_at:%Y-%m-%d %H:%M %Z}</p>",
        ]
        if self.server_profile:
            parts.append(f"<p><b>Active server profile:</b> {html.escape(self.server_profile)}</p>")
        if self.events.empty:
            parts.append("<p>No requests recorded for this selection yet.</p>")
            return "\n".join(parts)
        parts.append("<h4>Per model</h4>")
        parts.append(_table(self.summary))
        if self.hosts is not None:
            parts.append("<h4>Per host</h4>")
            parts.append(_table(self.hosts))
        if self.profiles is not None:
            parts.append("<h4>Per server profile</h4>")
            parts.append(_table(self.profiles))
        for title in self.figures:
            parts.append(
                f"<figure><figcaption>{html.escape(title)}</figcaption>"
                f'<img alt="{html.escape(title)}" '
                f'src="data:image/png;base64,{self.png_base64(title)}"/></figure>'
            )
        parts.append("<h4>Per project and notebook</h4>")
        parts.append(_table(self.projects))
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return f'<div class="ollama-nb-report"><style>{_STYLE}</style>{self._body()}</div>'

    def to_html(self, path: str | Path) -> Path:
        """Write a standalone HTML page (charts included) and return its path."""
        target = Path(path).expanduser()
        if target.suffix.lower() not in (".html", ".htm"):
            target = target.with_suffix(".html")
        target.parent.mkdir(parents=True, exist_ok=True)
        page = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>ollama_nb performance report</title>"
            f"<style>{_STYLE}</style></head>\n"
            f'<body class="ollama-nb-report">\n{self._body()}\n</body></html>\n'
        )
        target.write_text(page, encoding="utf-8")
        return target


def _table(frame: pd.DataFrame) -> str:
    # Model names, hosts and error text come from servers: drawn inert, like replies.
    return frame_html(frame)


def build_report(
    events: pd.DataFrame, *, server_profile: str | None = None, filters: str = "all requests"
) -> PerformanceReport:
    """Compute the tables and draw the charts for ``events`` (a ``metrics()`` frame)."""
    profiles_seen = set(events["server_profile"].dropna()) if not events.empty else set()
    hosts_seen = set(events["host"].dropna()) if not events.empty else set()
    return PerformanceReport(
        events=events,
        summary=model_summary(events),
        figures={title: draw(events) for title, draw in charts.PERFORMANCE_CHARTS},
        projects=project_summary(events),
        profiles=profile_summary(events) if len(profiles_seen) > 1 else None,
        hosts=host_summary(events) if len(hosts_seen) > 1 else None,
        server_profile=server_profile,
        filters=filters,
    )
