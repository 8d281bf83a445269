"""Altair charts from the Vega-Lite specs of :mod:`tau_ops.analysis.charts`, for notebooks.

Only this module imports altair, and only when a ``*_chart`` function is
called: the report and the command line never load it. Each chart is the
spec, validated against altair's Vega-Lite schema by ``from_dict``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from tau_ops.analysis.charts import (
    health_timeline_spec,
    reason_code_trend_spec,
    streak_backlog_spec,
)

if TYPE_CHECKING:
    import altair as alt


def reason_code_trend_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.FacetChart:
    """:func:`reason_code_trend_spec` as an altair chart (for notebooks).

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (a ``source`` column is ignored: chart one source at a time).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    altair.FacetChart
        The same spec, validated against altair's Vega-Lite schema.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> type(reason_code_trend_chart(events)).__name__
    'FacetChart'
    """
    return _facet(reason_code_trend_spec(events, every=every))


def health_timeline_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.LayerChart:
    """:func:`health_timeline_spec` as an altair chart (for notebooks).

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (one source).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    altair.LayerChart
        The same spec, validated against altair's Vega-Lite schema.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> type(health_timeline_chart(events)).__name__
    'LayerChart'
    """
    return _layer(health_timeline_spec(events, every=every))


def streak_backlog_chart(events: pl.DataFrame, *, every: str = "1h") -> alt.VConcatChart:
    """:func:`streak_backlog_spec` as an altair chart (for notebooks).

    Parameters
    ----------
    events : polars.DataFrame
        An events frame (one source).
    every : str
        Bucket width (polars duration).

    Returns
    -------
    altair.VConcatChart
        The same spec, validated against altair's Vega-Lite schema.

    Raises
    ------
    UsageError
        ``every`` is not a bucket width.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from tau_ops.analysis import load_events
    >>> d = Path(tempfile.mkdtemp())
    >>> line = {"timestamp_unix_ms": 1_790_000_000_000, "health_state": "degraded",
    ...         "reason_codes": ["retry_attempted"], "failure_streak": 1}
    >>> _ = (d / "runtime-events.jsonl").write_text(json.dumps(line) + "\\n")
    >>> events = load_events(d)
    >>> type(streak_backlog_chart(events)).__name__
    'VConcatChart'
    """
    return _vconcat(streak_backlog_spec(events, every=every))


def _facet(spec: dict[str, object]) -> alt.FacetChart:
    import altair as alt

    return alt.FacetChart.from_dict(spec)


def _layer(spec: dict[str, object]) -> alt.LayerChart:
    import altair as alt

    return alt.LayerChart.from_dict(spec)


def _vconcat(spec: dict[str, object]) -> alt.VConcatChart:
    import altair as alt

    return alt.VConcatChart.from_dict(spec)
