"""Altair charts from the Vega-Lite specs of :mod:`tau_ops.analysis.charts`, for notebooks.

Only this module imports altair, and only when a ``*_chart`` function is
called: the report and the command line never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import altair as alt


def facet_chart(spec: dict[str, Any]) -> alt.FacetChart:
    """A facet spec as an altair chart, validated against altair's Vega-Lite schema.

    Parameters
    ----------
    spec : dict
        A Vega-Lite facet spec.

    Returns
    -------
    altair.FacetChart
    """
    import altair as alt

    return alt.FacetChart.from_dict(spec)


def layer_chart(spec: dict[str, Any]) -> alt.LayerChart:
    """A layer spec as an altair chart, validated against altair's Vega-Lite schema.

    Parameters
    ----------
    spec : dict
        A Vega-Lite layer spec.

    Returns
    -------
    altair.LayerChart
    """
    import altair as alt

    return alt.LayerChart.from_dict(spec)


def vconcat_chart(spec: dict[str, Any]) -> alt.VConcatChart:
    """A vconcat spec as an altair chart, validated against altair's Vega-Lite schema.

    Parameters
    ----------
    spec : dict
        A Vega-Lite vconcat spec.

    Returns
    -------
    altair.VConcatChart
    """
    import altair as alt

    return alt.VConcatChart.from_dict(spec)
