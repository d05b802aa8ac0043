"""Display helpers for the notebook: a frame or a sentence, and bar charts that survive empty frames."""

from __future__ import annotations

import polars as pl

def show(frame: pl.DataFrame, empty: str = "nothing of this kind in this run", rows: int = 25) -> None:
    """Display `frame` (up to `rows` rows, full column names), or the sentence `empty` when it has no rows."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # outside Jupyter, without IPython installed
        get_ipython = lambda: None  # noqa: E731
    if get_ipython() is None:
        print(f"({empty})" if frame.is_empty() else frame)
        return
    if frame.is_empty():
        display(Markdown(f"*{empty}*"))
        return
    with pl.Config(tbl_rows=rows, tbl_cols=-1, fmt_str_lengths=80, tbl_hide_dataframe_shape=frame.height <= rows):
        display(frame)


def bar(
    frame: pl.DataFrame,
    x: str,
    y: str | list[str],
    *,
    title: str = "",
    ax=None,
    horizontal: bool = False,
    empty: str = "none in this run",
):
    """A bar chart of `y` (one column, or several side by side) against the labels in `x`; returns the Axes.

    An empty frame draws the sentence `empty` instead of an empty chart.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    ax.set_title(title)
    if frame.is_empty():
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_axis_off()
        return ax
    columns = [y] if isinstance(y, str) else list(y)
    labels = [str(v) if len(str(v)) <= 32 else str(v)[:31] + "…" for v in frame.get_column(x).to_list()]
    width = 0.8 / len(columns)
    draw = ax.barh if horizontal else ax.bar
    for i, column in enumerate(columns):
        positions = [p - 0.4 + width * (i + 0.5) for p in range(len(labels))]
        bars = draw(positions, frame.get_column(column).cast(pl.Float64).fill_null(0).to_list(), width, label=column)
        if len(labels) * len(columns) <= 30:  # numbers on the bars while they still fit
            ax.bar_label(bars, fmt="{:,.10g}", fontsize="small", padding=2)
    # Room for at least 3 bars, so one or two bars do not fill the whole chart.
    low, high = -0.6, max(len(labels), 3) - 0.4
    if horizontal:
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(high, low)  # inverted: the first row on top, as in the table
    else:
        ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
        ax.set_xlim(low, high)
    ax.margins(**{"x" if horizontal else "y": 0.15})  # room for the numbers
    if len(columns) > 1:
        ax.legend(fontsize="small")
    return ax
