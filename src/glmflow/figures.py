"""The chapter's figures with matplotlib, as deterministic SVG (same inputs, same bytes).

Style as the chapter's ``theme_classic() + theme(text = element_text(size = 20))``: no
top or right spines, large text. Colours are ColorBrewer's Set1, as ``scale_*_brewer``.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from glmflow.study import number_label  # noqa: E402

SET1 = ["#E41A1C", "#377EB8", "#4DAF4A", "#984EA3", "#FF7F00"]
SMOOTH_BLUE = "#3366FF"  # ggplot2's geom_smooth line
STYLE = {
    "font.size": 14,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "path",  # text as outlines: no fonts needed to view the file
    "svg.hashsalt": "glmflow",  # fixed ids inside the SVG
    "figure.dpi": 100,
}

# Matplotlib's own defaults and the style above, whatever matplotlibrc or style the process found
# when matplotlib loaded (one in the working directory, ~/.config/matplotlib, $MATPLOTLIBRC): a
# project's matplotlibrc changed every figure, and only in a job run in its own process (the job
# server imports matplotlib elsewhere). Figures depend on their inputs alone.
matplotlib.rcdefaults()
matplotlib.rcParams.update(STYLE)


def _figure(width: float = 7.0, height: float = 4.5):
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(width, height))
    return figure, axes


def to_svg(figure) -> str:
    """The figure as SVG text, without the date matplotlib would write into it."""
    buffer = io.StringIO()
    with plt.rc_context(STYLE):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "glmflow"})
    plt.close(figure)
    return buffer.getvalue()


def fit_figure(
    data: pd.DataFrame, x: str, y: str, curves: pd.DataFrame, by: str | None, y_label: str, point_alpha: float
) -> str:
    """Points and a fitted curve with its 95% band, one colour per level of ``by``
    (``geom_point`` + ``geom_smooth``)."""
    figure, axes = _figure()
    groups = (
        [(None, data, curves)]
        if by is None
        else [
            (level, data[data[by].astype(str) == level], curves[curves[by].astype(str) == level])
            for level in sorted(curves[by].astype(str).unique())
        ]
    )
    for index, (level, points, curve) in enumerate(groups):
        colour = SMOOTH_BLUE if by is None else SET1[index % len(SET1)]
        axes.scatter(points[x], points[y], s=12, color="black" if by is None else colour, alpha=point_alpha, lw=0)
        axes.fill_between(curve[x], curve["conf_low"], curve["conf_high"], color="grey" if by is None else colour,
                          alpha=0.25, lw=0)  # fmt: skip
        axes.plot(curve[x], curve["prob"], color=colour, lw=2, label=level)
    axes.set_xlabel(x)
    axes.set_ylabel(y_label)
    if by is not None:
        axes.legend(title=by, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return to_svg(figure)


def proportion_bars(counts: pd.DataFrame, x: str, fill: str, labels: dict) -> str:
    """100% stacked bars (``geom_bar(position = "fill")``), Set1 colours, black outlines."""
    figure, axes = _figure(5.5, 4.5)
    table = counts.pivot(index=x, columns=fill, values="n").fillna(0)
    shares = table.div(table.sum(axis=1), axis=0)
    bottom = np.zeros(len(shares))
    # ggplot stacks the first level on top
    for index, level in reversed(list(enumerate(shares.columns))):
        axes.bar(shares.index.astype(str), shares[level], bottom=bottom, color=SET1[index % len(SET1)],
                 edgecolor="black", width=0.9, label=labels.get(str(level), str(level)))  # fmt: skip
        bottom += shares[level].to_numpy()
    handles, names = axes.get_legend_handles_labels()
    axes.legend(handles[::-1], names[::-1], frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    axes.set_ylabel("probability")
    axes.set_xlabel("")
    return to_svg(figure)


def study_figure(summary: pd.DataFrame) -> str:
    """Bias and coverage of the slope against n, one line per true slope, Monte Carlo 95% bars."""
    with plt.rc_context(STYLE):
        figure, (bias_axes, coverage_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    for index, (b1, cell) in enumerate(summary.sort_values("n").groupby("b1")):
        colour = SET1[index % len(SET1)]
        for axes, column in ((bias_axes, "bias"), (coverage_axes, "coverage")):
            axes.errorbar(cell["n"], cell[column], yerr=1.96 * cell[f"{column}_mcse"], color=colour, marker="o",
                          ms=4, capsize=3, label=f"b1 = {number_label(b1)}")  # fmt: skip
    bias_axes.axhline(0, color="grey", lw=1)
    coverage_axes.axhline(0.95, color="grey", lw=1)
    for axes, column, label in ((bias_axes, "bias", "bias of the slope"),
                                (coverage_axes, "coverage", "95% Wald coverage")):  # fmt: skip
        if summary[column].notna().any():
            axes.set_xscale("log")
        else:  # every replicate of every cell separated: nothing to draw, nor a log axis to draw on
            axes.text(0.5, 0.5, "every replicate separated:\nno estimate exists", ha="center", va="center",
                      transform=axes.transAxes)  # fmt: skip
        axes.set_xlabel("n")
        axes.set_ylabel(label)
    coverage_axes.legend(frameon=False, fontsize=11, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return to_svg(figure)


# A panel labels every level up to this many (one row each, as lattice's dotplot of ranef);
# above it, its EXTREME_LABELS lowest and highest levels, and the report lists every level in
# a table beneath the figure.
ALL_LABELS = 30
EXTREME_LABELS = 5


def caterpillar_labels_all(n_levels: int) -> bool:
    """Whether a panel of ``n_levels`` levels labels them all (else only its extremes)."""
    return n_levels <= ALL_LABELS


def caterpillar_panels(ranef: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(grouping factor, term, its rows sorted by conditional mode) per panel, in ranef.csv's order."""
    panels = list(dict.fromkeys(zip(ranef["grp"], ranef["term"], strict=True)))
    return [
        (group, term, ranef[(ranef["grp"] == group) & (ranef["term"] == term)]
         .sort_values("condval", kind="stable").reset_index(drop=True))
        for group, term in panels
    ]  # fmt: skip


def caterpillar(ranef: pd.DataFrame) -> str:
    """Conditional modes with 95% intervals, sorted: one panel per grouping factor and term
    (ranef.csv's ``grp`` and ``term``), stacked. A panel with few levels has one labelled row
    per level; a larger one draws the levels along x and labels its extremes."""
    panels = caterpillar_panels(ranef)
    heights = [0.26 * len(rows) + 1.2 if caterpillar_labels_all(len(rows)) else 3.6 for _, _, rows in panels]
    with plt.rc_context(STYLE):
        figure, axes_list = plt.subplots(len(panels), 1, figsize=(7, sum(heights)), squeeze=False,
                                         gridspec_kw={"height_ratios": heights})  # fmt: skip
    for axes, (group, term, rows) in zip(axes_list[:, 0], panels, strict=True):
        if caterpillar_labels_all(len(rows)):
            _labelled_panel(axes, group, term, rows)
        else:
            _extremes_panel(axes, group, term, rows)
    figure.tight_layout()
    return to_svg(figure)


def _labelled_panel(axes, group: str, term: str, rows: pd.DataFrame) -> None:
    position = np.arange(len(rows))
    axes.errorbar(rows["condval"], position, xerr=1.96 * rows["condsd"], fmt="o", ms=4, color=SMOOTH_BLUE,
                  ecolor="grey", elinewidth=0.8)  # fmt: skip
    axes.axvline(0, color="black", lw=1)
    axes.set_yticks(position, [str(level) for level in rows["level"]], fontsize=10)
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_ylabel(f"{group} ({len(rows)} levels)")
    axes.set_xlabel(term)


def _extremes_panel(axes, group: str, term: str, rows: pd.DataFrame) -> None:
    """Levels along x, sorted; the lowest labelled in the empty upper left, the highest in the
    empty lower right, each joined to its point by a thin line (stacked so that lines do not cross)."""
    n, k = len(rows), EXTREME_LABELS
    position = np.arange(n)
    axes.errorbar(position, rows["condval"], yerr=1.96 * rows["condsd"], fmt="o", ms=2.5, color=SMOOTH_BLUE,
                  ecolor="grey", elinewidth=0.8)  # fmt: skip
    axes.axhline(0, color="black", lw=1)
    line = {"arrowstyle": "-", "color": "#888888", "lw": 0.6}
    for j in range(k):
        low, high, shift = j, n - 1 - j, 0.085 * (k - 1 - j)
        for index, where, align in ((low, (0.1, 0.93 - shift), "left"), (high, (0.9, 0.07 + shift), "right")):
            axes.annotate(str(rows["level"][index]), (index, rows["condval"][index]), xytext=where,
                          textcoords="axes fraction", fontsize=9, ha=align, va="center", arrowprops=line)  # fmt: skip
    axes.set_xlabel(f"{group} (sorted, {n} levels; the {k} lowest and highest labelled)")
    axes.set_ylabel(term)
    axes.set_xticks([])
