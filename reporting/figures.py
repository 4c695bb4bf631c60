"""Figures of the DSMB report (reports.md, "DSMB report", item 4) as PNG bytes.

* :func:`swimmer_plot`: one lane per infused subject, days since infusion on the x axis; each lane
  has two stripes, CRS (upper) and ICANS (lower), coloured by the day's derived grade, and markers
  for rescue therapy, ICU admission and death.
* :func:`max_grade_bars`: the max-grade distribution 0-5 of CRS and ICANS per summary group.

Matplotlib runs headless (Agg) and every figure is closed after saving. The swimmer plot draws the
grades of all lanes as one image (a grade matrix through a colour table) plus one collection for
not-evaluable days and one scatter call per marker kind: the time goes into text (labels, legend)
and PNG encoding, not into the 35,000 day cells of 500 subjects.
"""
import io
import math
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# ColorBrewer YlOrRd, 6 classes: sequential and colour-blind safe (colorbrewer2.org), grade 0 .. 5.
GRADE_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
NE_COLOUR = "#bdbdbd"
NE_HATCH_COLOUR = "#636363"
# Marker shapes differ as well as colours (Okabe-Ito), so they read in grey print and for
# colour-blind readers; black edges keep them visible on the red grades.
MARKER_STYLE = {
    "tocilizumab": ("D", "#0072B2", "Tocilizumab"),
    "corticosteroid": ("^", "#56B4E9", "Corticosteroid"),
    "anticytokine": ("s", "#009E73", "Anakinra / siltuximab"),
    "plasma_exchange": ("P", "#CC79A7", "Plasma exchange"),
    "hemofiltration": ("h", "#E69F00", "Hemofiltration"),
    "icu": ("o", "#FFFFFF", "ICU admission"),
    "death": ("X", "#000000", "Death"),
}
# Rows of the grade image per lane: 3 CRS, 1 separator, 3 ICANS, 2 gap to the next lane.
_ROWS = ("crs", "crs", "crs", None, "icans", "icans", "icans", None, None)
_CRS_ROWS = [i for i, r in enumerate(_ROWS) if r == "crs"]
_ICANS_ROWS = [i for i, r in enumerate(_ROWS) if r == "icans"]
_MID = 3.5 / len(_ROWS)  # lane centre (the separator row), as a fraction of the lane height
THIN_LANES_ABOVE = 120
_LEGEND_IN, _TOP_IN, _BOTTOM_IN = 0.75, 0.1, 0.5  # inches above the lanes (with / without legend), below
_LEGEND_STRIP_IN = 0.45
_LEFT = 0.1  # subject labels, as a fraction of the width


def _png(fig, dpi: int, compress_level: int) -> bytes:
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": compress_level})
    finally:
        plt.close(fig)
    return buffer.getvalue()


def ordered_lanes(lanes, closed: bool) -> list:
    """Lanes in plot order: by cohort then subject id (closed report), else by subject id."""
    if closed:
        return sorted(lanes, key=lambda lane: (lane.cohort, lane.subject_id))
    return sorted(lanes, key=lambda lane: lane.subject_id)


def day_range(lanes) -> tuple[int, int]:
    """First and last study day drawn for these lanes (day 0 always included)."""
    first, last = 0, 0
    for lane in lanes:
        days = [d for d, _ in lane.crs] + [d for d, _ in lane.icans] + [d for d, _ in lane.markers]
        first = min([first] + days)
        last = max([last, lane.last_day] + days)
    return first, last


def swimmer_frame_in(*, legend: bool = True) -> float:
    """Inches of a swimmer plot that are not lanes: the legend above (if drawn) and the day axis below."""
    return (_LEGEND_IN if legend else _TOP_IN) + _BOTTOM_IN


def swimmer_plot(lanes, *, closed: bool, days: tuple[int, int] | None = None, width: float = 11.0,
                 lane_height: float | None = None, legend: bool = True, dpi: int = 150,
                 compress_level: int = 6) -> bytes:
    """PNG of the swimmer plot.

    ``days`` fixes the x range (so that the pages of one report line up). The figure is ``width``
    inches wide and ``swimmer_frame_in()`` + lanes x ``lane_height`` inches high; by default lanes
    are 0.2 in, and above 120 lanes 0.06 in with every Nth subject labelled. ``legend=False`` leaves
    the legend to :func:`swimmer_legend` (drawn once for a multi-page report). ``compress_level`` is
    PNG's zlib level (a PDF re-compresses the image anyway: use 1 there).
    """
    lanes = ordered_lanes(lanes, closed)
    n = len(lanes)
    first, last = days or day_range(lanes)
    span = last - first + 1
    lane_in = lane_height or (0.06 if n > THIN_LANES_ABOVE else 0.2)
    top_in = _LEGEND_IN if legend else _TOP_IN
    height = top_in + _BOTTOM_IN + max(n, 3) * lane_in
    thin = lane_in < 0.08
    fig = plt.figure(figsize=(width, height))
    fig.subplots_adjust(left=_LEFT, right=0.88 if closed else 0.98, top=1 - top_in / height, bottom=_BOTTOM_IN / height)
    ax = fig.add_subplot()

    # Grade matrices: -1 no assessment, 0..5 grade, 6 not evaluable.
    grades = {kind: np.full((n, span), -1, dtype=np.int8) for kind in ("crs", "icans")}
    ne_cells = []
    for i, lane in enumerate(lanes):
        for kind, rows, offset in (("crs", lane.crs, _CRS_ROWS), ("icans", lane.icans, _ICANS_ROWS)):
            for day, grade in rows:
                if not first <= day <= last:
                    continue
                grades[kind][i, day - first] = 6 if grade is None else grade
                if grade is None:
                    y0, y1 = i + offset[0] / len(_ROWS), i + (offset[-1] + 1) / len(_ROWS)
                    ne_cells.append(((day - 0.5, y0), (day + 0.5, y0), (day + 0.5, y1), (day - 0.5, y1)))
    # uint8 RGBA goes to Agg as is; a float image would be normalised and copied first.
    table = (np.array([to_rgba(c) for c in GRADE_COLOURS] + [to_rgba(NE_COLOUR), (0, 0, 0, 0)]) * 255).round()
    table = table.astype(np.uint8)  # index -1 (no assessment) = the last, transparent entry
    image = np.zeros((n, len(_ROWS), span, 4), dtype=np.uint8)
    for row, kind in enumerate(_ROWS):
        if kind:
            image[:, row] = table[grades[kind]]
    image = image.reshape(n * len(_ROWS), span, 4)

    # Weekly grid, then the follow-up line from day 0 to the lane's last day, under the grades.
    step = 7 if span > 14 else 1
    ticks = list(range(first + (-first) % step, last + 1, step))
    ax.vlines(ticks, 0, max(n, 1), colors="#e0e0e0", linewidths=0.6, zorder=0)
    if n:
        ax.hlines([i + _MID for i in range(n)], [max(first, 0)] * n, [lane.last_day for lane in lanes],
                  colors="#9e9e9e", linewidths=0.4 if thin else 0.8, zorder=1)
        ax.imshow(image, extent=(first - 0.5, last + 0.5, n, 0), aspect="auto", interpolation="nearest", zorder=2)
    if ne_cells:
        ax.add_collection(PolyCollection(ne_cells, facecolors=NE_COLOUR, edgecolors=NE_HATCH_COLOUR, hatch="////",
                                         linewidths=0, zorder=3))

    # Markers: several on one lane and day sit side by side.
    per_cell = defaultdict(list)
    for i, lane in enumerate(lanes):
        for day, kind in lane.markers:
            if first <= day <= last and kind not in per_cell[(i, day)]:
                per_cell[(i, day)].append(kind)
    points = defaultdict(list)
    for (i, day), kinds in per_cell.items():
        for j, kind in enumerate(sorted(kinds, key=list(MARKER_STYLE).index)):
            points[kind].append((day + (j - (len(kinds) - 1) / 2) * 0.35, i + _MID))
    size = (lane_in * 72 * 0.55) ** 2
    for kind, (shape, colour, _) in MARKER_STYLE.items():
        if points.get(kind):
            xs, ys = zip(*points[kind])
            ax.scatter(xs, ys, s=size, marker=shape, c=colour, edgecolors="black", linewidths=0.3 if thin else 0.5,
                       zorder=4)

    # Few tick objects: they are most of matplotlib's time per figure (no minor ticks).
    ax.set_xlim(first - 0.5, last + 0.5)
    ax.set_ylim(max(n, 1), 0)
    ax.set_xticks(ticks)
    ax.set_xlabel("Days since infusion (study day)")
    every = max(1, math.ceil(0.075 / lane_in)) if thin else 1  # 5 pt labels need about 0.075 in
    ax.set_yticks([i + _MID for i in range(0, n, every)], [lanes[i].subject_id for i in range(0, n, every)],
                  fontsize=5 if thin else 6.5)
    ax.tick_params(axis="y", length=0)
    ax.set_ylabel("Subject" + (f" (one in {every} labelled)" if every > 1 else ""))
    if closed and n:
        starts = [i for i in range(n) if i == 0 or lanes[i].cohort != lanes[i - 1].cohort]
        ax.hlines(starts[1:], first - 0.5, last + 0.5, colors="black", linewidths=0.8, zorder=5)
        for k, start in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else n
            ax.annotate(lanes[start].cohort, xy=(1.01, (start + end) / 2), xycoords=("axes fraction", "data"),
                        va="center", fontsize=8, annotation_clip=False)
    if legend:
        _legends(fig, top=1 - 0.05 / height)
    return _png(fig, dpi, compress_level)


def swimmer_legend(*, width: float = 11.0, dpi: int = 150, compress_level: int = 6) -> bytes:
    """PNG of the swimmer plot's legend alone (grade colours and marker shapes)."""
    fig = plt.figure(figsize=(width, _LEGEND_STRIP_IN))
    _legends(fig, top=1 - 0.05 / _LEGEND_STRIP_IN)
    return _png(fig, dpi, compress_level)


def _legends(fig, *, top: float) -> None:
    grade_handles = [Patch(facecolor=c, edgecolor="#757575", linewidth=0.4, label=f"{g}")
                     for g, c in enumerate(GRADE_COLOURS)]
    grade_handles.append(Patch(facecolor=NE_COLOUR, edgecolor=NE_HATCH_COLOUR, hatch="////", linewidth=0.4, label="NE"))
    marker_handles = [Line2D([], [], linestyle="", marker=shape, markerfacecolor=colour, markeredgecolor="black",
                             markersize=6, label=label) for shape, colour, label in MARKER_STYLE.values()]
    fig.legend(handles=grade_handles, loc="upper left", bbox_to_anchor=(_LEFT, top), ncols=len(grade_handles),
               fontsize=7, frameon=False, handlelength=1.4, columnspacing=0.9,
               title="Daily grade (upper stripe CRS, lower stripe ICANS)", title_fontsize=7, alignment="left")
    fig.legend(handles=marker_handles, loc="upper right", bbox_to_anchor=(0.98, top), ncols=4, fontsize=7,
               frameon=False, handletextpad=0.3, columnspacing=0.9)


# Okabe-Ito colours for cohorts; the pooled "Overall" group is dark grey.
GROUP_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OVERALL_COLOUR = "#595959"


def max_grade_bars(groups, *, dpi: int = 150, compress_level: int = 6) -> bytes:
    """PNG of grouped bars: percent of infused subjects by max CRS and ICANS grade 0-5, per group.

    Percent (not count) so that cohorts of different size compare; the count is written on each bar.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 3.8), sharey=True)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.80, bottom=0.14, wspace=0.06)
    k = max(len(groups), 1)
    bar = 0.8 / k
    grades = np.arange(6)
    for ax, (kind, name) in zip(axes, (("crs", "CRS"), ("icans", "ICANS"))):
        for j, group in enumerate(groups):
            counts = np.array(group.max_grade_counts[kind])
            percent = 100.0 * counts / group.n if group.n else np.zeros(6)
            colour = OVERALL_COLOUR if group.label == "Overall" else GROUP_COLOURS[j % len(GROUP_COLOURS)]
            bars = ax.bar(grades - 0.4 + bar * (j + 0.5), percent, width=bar, color=colour, edgecolor="white",
                          linewidth=0.4, label=f"{group.label} (N={group.n})")
            if k <= 6:
                ax.bar_label(bars, labels=[str(c) for c in counts], fontsize=6, padding=1)
        ax.set_title(f"Maximum {name} grade", fontsize=10)
        ax.set_xticks(grades)
        ax.set_xlabel("Grade")
        ax.set_ylim(0, 110)
        ax.grid(axis="y", color="#e0e0e0", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[0].set_ylabel("% of infused subjects")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncols=min(k, 6), fontsize=8, frameon=False,
               title="Bar labels: number of subjects", title_fontsize=7)
    return _png(fig, dpi, compress_level)
