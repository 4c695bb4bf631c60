"""PDF rendering of the DSMB report and the AE report (reports.md) with reportlab platypus.

The builders (:mod:`reporting.dsmb`, :mod:`reporting.ae_report`) compute every number; this module
only lays them out. All text is real PDF text (DejaVu Sans, embedded, so any subject id or site
name prints), long tables split across pages with their header row repeated, and figures come
from :mod:`reporting.figures` as PNG images.

The open DSMB report pools the arms, so it prints no cohort names anywhere: its summary has only
the "Overall" column and its listings drop the cohort column.
"""
import io
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from xml.sax.saxutils import escape

import matplotlib
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    CondPageBreak,
    Image,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from trials.choices import DeathCause

from . import figures
from .ae_report import AeReport, ListingRow, summary_csv_rows
from .dsmb import DsmbReport

PAGE = landscape(A4)
MARGIN = 1.5 * cm
BAND = 0.4 * cm  # the header and footer lines sit in the margins; the text keeps this far from them
FRAME_PADDING = 6  # platypus Frame default, each side
FRAME_WIDTH = PAGE[0] - 2 * MARGIN - 2 * FRAME_PADDING
FRAME_HEIGHT = PAGE[1] - 2 * (MARGIN + BAND) - 2 * FRAME_PADDING
SWIMMER_LANES_PER_PAGE = 45  # lanes of about 2.3 mm with 6.5 pt subject labels on A4 landscape
SUMMARY_GROUPS_PER_TABLE = 5  # more cohorts continue in a further table with the measure column repeated
BOUNDARY_COLUMNS = 20

Progress = Callable[[int, int, str], None]


# --- fonts and styles ----------------------------------------------------------------------------

def _fonts() -> tuple[str, str]:
    """DejaVu Sans from matplotlib's data (always installed with it): full Unicode, embedded."""
    if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
        folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
        try:
            pdfmetrics.registerFont(TTFont("DejaVuSans", os.path.join(folder, "DejaVuSans.ttf")))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", os.path.join(folder, "DejaVuSans-Bold.ttf")))
        except Exception:  # pragma: no cover - a matplotlib without its fonts
            return "Helvetica", "Helvetica-Bold"
        pdfmetrics.registerFontFamily("DejaVuSans", normal="DejaVuSans", bold="DejaVuSans-Bold",
                                      italic="DejaVuSans", boldItalic="DejaVuSans-Bold")
    return "DejaVuSans", "DejaVuSans-Bold"


class _Styles:
    def __init__(self):
        self.font, self.bold = _fonts()
        base = dict(fontName=self.font, alignment=TA_LEFT)
        self.title = ParagraphStyle("title", fontName=self.bold, fontSize=18, leading=23, spaceAfter=10)
        self.h1 = ParagraphStyle("h1", fontName=self.bold, fontSize=13, leading=17, spaceBefore=8, spaceAfter=6)
        self.h2 = ParagraphStyle("h2", fontName=self.bold, fontSize=10.5, leading=14, spaceBefore=8, spaceAfter=4)
        self.body = ParagraphStyle("body", fontSize=9, leading=12, spaceAfter=4, **base)
        self.small = ParagraphStyle("small", fontSize=7.5, leading=9.5, spaceAfter=3,
                                    textColor=colors.HexColor("#424242"), **base)
        self.cell = ParagraphStyle("cell", fontSize=6.8, leading=8.2, **base)
        self.cell_bold = ParagraphStyle("cell_bold", fontName=self.bold, fontSize=6.8, leading=8.2)


def _p(text, style) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _table(rows: list[list], widths: Sequence[float] | None, styles: _Styles, *, font_size: float = 7.5,
           long: bool = False, extra: Sequence[tuple] = (), align_right_from: int | None = None) -> Table:
    """A table with a bold, shaded header row that repeats on every page it spans."""
    cls = LongTable if long else Table
    table = cls(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    commands = [
        ("FONTNAME", (0, 0), (-1, -1), styles.font),
        ("FONTNAME", (0, 0), (-1, 0), styles.bold),
        ("FONTSIZE", (0, 0), (-1, -1), font_size),
        ("LEADING", (0, 0), (-1, -1), font_size + 1.6),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e3e8ef")),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#9e9e9e")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if align_right_from is not None:
        commands.append(("ALIGN", (align_right_from, 1), (-1, -1), "RIGHT"))
    table.setStyle(TableStyle(commands + list(extra)))
    return table


# --- page furniture ------------------------------------------------------------------------------

def _build(buffer, story: list, *, title: str, subject: str, header: str, footer: str, styles: _Styles) -> None:
    """Lay the story out on A4 landscape pages with a header line and a footer line (page number)."""
    doc = SimpleDocTemplate(
        buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN + BAND,
        bottomMargin=MARGIN + BAND, title=title, subject=subject, author="CAR-T toxicity data platform",
        creator="reporting.pdf",
    )

    def furniture(canvas, document):
        canvas.saveState()
        canvas.setFont(styles.font, 7)
        canvas.setFillColor(colors.HexColor("#424242"))
        canvas.drawString(MARGIN, PAGE[1] - MARGIN + 0.1 * cm, header)
        canvas.drawString(MARGIN, MARGIN - 0.1 * cm, footer)
        canvas.drawRightString(PAGE[0] - MARGIN, MARGIN - 0.1 * cm, f"Page {document.page}")
        canvas.restoreState()

    # Binary (not ASCII85) streams: without reportlab's C accelerator the ASCII85 encoder is pure
    # Python and took longer than everything else for the figure pages; the PDF is 20% smaller too.
    previous, rl_config.useA85 = rl_config.useA85, 0
    try:
        doc.build(story, onFirstPage=furniture, onLaterPages=furniture)
    finally:
        rl_config.useA85 = previous


def _title_block(lines: list[tuple[str, str]], styles: _Styles) -> Table:
    rows = [[_p(label, styles.cell_bold), _p(value, styles.body)] for label, value in lines]
    table = Table(rows, colWidths=[4.2 * cm, FRAME_WIDTH - 4.2 * cm], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("LINEBELOW", (0, -1), (-1, -1), 0.6, colors.HexColor("#9e9e9e"))]))
    return table


def _generated(at: datetime | None) -> str:
    return (at or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")


# --- shared sections -----------------------------------------------------------------------------

def _summary_tables(report: AeReport, styles: _Styles) -> list:
    """The summary (summary_csv_rows) with at most SUMMARY_GROUPS_PER_TABLE group columns per table."""
    rows = summary_csv_rows(report)
    groups = len(rows[0]) - 1
    story = []
    for start in range(1, groups + 1, SUMMARY_GROUPS_PER_TABLE):
        cols = list(range(start, min(start + SUMMARY_GROUPS_PER_TABLE, groups + 1)))
        measure = 5.3 * cm
        width = min((FRAME_WIDTH - measure) / len(cols), 6.2 * cm)
        # Paragraph cells wrap a long "k/N (x%; 95% CI a-b)" at a space instead of overflowing.
        body = [[_p("Measure", styles.cell_bold)] + [_p(rows[0][c], styles.cell_bold) for c in cols]]
        body += [[row[0]] + [_p(row[c], styles.cell) for c in cols] for row in rows[1:]]
        zebra = [("BACKGROUND", (0, r), (-1, r), colors.HexColor("#f5f7fa")) for r in range(2, len(body), 2)]
        story.append(_table(body, [measure] + [width] * len(cols), styles, font_size=7, long=True, extra=zebra))
        story.append(Spacer(1, 8))
    story.append(_p("Percentages are of infused subjects (N). 95% CI: exact Clopper-Pearson interval. Onset day "
                    "and duration: each subject's first episode. Therapy rows: subjects who received it at any "
                    "time after infusion up to the data cut.", styles.small))
    return story


LISTING_COLUMNS = (
    # (header, width in points, value)
    ("Subject", 52, lambda r: r.subject_id),
    ("Site", 28, lambda r: r.site_number),
    ("Cohort", 48, lambda r: r.cohort),
    ("Term", 108, lambda r: r.term),
    ("Scale", 50, lambda r: r.scale),
    ("Grade", 32, lambda r: r.grade_text),
    ("Onset", 50, lambda r: r.onset_date),
    ("Day", 24, lambda r: "" if r.onset_study_day is None else str(r.onset_study_day)),
    ("Resolved", 50, lambda r: r.resolution_date or "ongoing"),
    ("Dur. (d)", 32, lambda r: "" if r.duration_days is None else str(r.duration_days)),
    ("Serious", 38, lambda r: r.seriousness.replace(";", ", ").replace("_", " ") if r.serious else "no"),
    ("Relatedness", 56, lambda r: r.relatedness.replace("_", " ")),
    ("Outcome", 52, lambda r: r.outcome.replace("_", " ")),
    ("Rescue therapy", None, lambda r: r.rescue_therapy),
)
_WRAPPED = {"Term", "Rescue therapy", "Relatedness", "Outcome", "Cohort"}


def _listing_table(rows: list[ListingRow], styles: _Styles, *, cohort: bool, empty: str):
    if not rows:
        return _p(empty, styles.body)
    columns = [c for c in LISTING_COLUMNS if cohort or c[0] != "Cohort"]
    fixed = sum(w for _, w, _ in columns if w)
    widths = [w or FRAME_WIDTH - fixed for _, w, _ in columns]
    body = [[_p(h, styles.cell_bold) for h, _, _ in columns]]
    for row in rows:
        body.append([_p(value(row), styles.cell) if header in _WRAPPED else value(row) for header, _, value in columns])
    return _table(body, widths, styles, font_size=6.8, long=True)


# --- DSMB report ---------------------------------------------------------------------------------

def _section_enrolment(report: DsmbReport, styles: _Styles) -> list:
    story = [_p("1. Enrolment, infusions, data currency and open queries", styles.h1),
             _p("1.1 Enrolment and infusions by site" + (" and cohort" if report.closed else " (arms pooled)"),
                styles.h2)]
    header = ["Site"] + (["Cohort"] if report.closed else []) + ["Enrolled", "Infused"]
    rows = [header]
    for r in report.enrolment:
        rows.append([r.site] + ([r.cohort] if report.closed else []) + [str(r.enrolled), str(r.infused)])
    total = ["Total"] + ([""] if report.closed else []) + [str(sum(r.enrolled for r in report.enrolment)),
                                                           str(sum(r.infused for r in report.enrolment))]
    rows.append(total)
    widths = [3 * cm] + ([5 * cm] if report.closed else []) + [2.5 * cm, 2.5 * cm]
    story.append(_table(rows, widths, styles, long=True, align_right_from=len(header) - 2,
                        extra=[("FONTNAME", (0, -1), (-1, -1), styles.bold),
                               ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black)]))
    story.append(_p("1.2 Data currency", styles.h2))
    oldest = report.oldest_missing.isoformat() if report.oldest_missing else "none missing"
    story.append(_table([
        ["Measure", "Value"],
        ["Expected daily assessments (infused subjects, up to the cut, the protocol's last daily day and death)",
         str(report.expected_assessments)],
        ["Daily assessments entered", str(report.entered_assessments)],
        ["Data currency (entered / expected)",
         f"{report.entered_assessments}/{report.expected_assessments} ({100 * report.currency:.1f}%)"],
        ["Oldest missing daily assessment", oldest],
    ], [14 * cm, 5 * cm], styles))
    story.append(_p("1.3 Open queries by age", styles.h2))
    rows = [["Age since opened", "Open queries"]] + [[label, str(count)] for label, count in report.open_queries_by_age]
    rows.append(["Total", str(sum(c for _, c in report.open_queries_by_age))])
    story.append(_table(rows, [5 * cm, 3 * cm], styles, align_right_from=1,
                        extra=[("FONTNAME", (0, -1), (-1, -1), styles.bold)]))
    story.append(_p("Open and answered (not yet closed) queries at the data cut.", styles.small))
    return story


def _section_summary(report: DsmbReport, styles: _Styles) -> list:
    scope = "by cohort and overall" if report.closed else "overall (arms pooled)"
    return [PageBreak(), _p(f"2. CRS and ICANS summary, {scope}", styles.h1)] + _summary_tables(report.ae, styles)


def _boundary_table(boundary: list[tuple[int, int | None]], current_n: int, styles: _Styles) -> list:
    story = []
    width = (FRAME_WIDTH - 3.6 * cm) / BOUNDARY_COLUMNS
    for start in range(0, len(boundary), BOUNDARY_COLUMNS):
        band = boundary[start:start + BOUNDARY_COLUMNS]
        rows = [["N"] + [str(n) for n, _ in band],
                ["Events to cross"] + ["-" if k is None else str(k) for _, k in band]]
        extra = [("FONTNAME", (0, 0), (0, -1), styles.bold), ("ALIGN", (1, 0), (-1, -1), "CENTER")]
        for i, (n, _) in enumerate(band, start=1):
            if n == current_n:
                extra += [("BACKGROUND", (i, 0), (i, -1), colors.HexColor("#ffe082")),
                          ("FONTNAME", (i, 0), (i, -1), styles.bold)]
        story += [_table(rows, [3.6 * cm] + [width] * len(band), styles, extra=extra), Spacer(1, 4)]
    return story


def _probability(p: float) -> str:
    return "> 0.999" if p > 0.9995 else "< 0.001" if p < 0.0005 else f"{p:.3f}"


def _section_stopping(report: DsmbReport, styles: _Styles) -> list:
    s = report.stopping_settings
    threshold, cutoff = s["threshold"], s["cutoff"]
    story = [PageBreak(), _p("3. Stopping rule status (grade >= 3 CRS and grade >= 3 ICANS)", styles.h1),
             _p(f"Bayesian beta-binomial monitor. Toxicity threshold {threshold:.2f}; prior Beta({s['prior_a']:g}, "
                f"{s['prior_b']:g}); posterior cutoff {cutoff:.2f}. With k subjects with the event among N infused "
                f"subjects the posterior is Beta(a + k, b + N - k); the boundary is crossed when "
                f"P(rate > {threshold:.2f} | data) > {cutoff:.2f}.", styles.body)]
    rows = [["Toxicity", "Events/N", f"P(rate > {threshold:.2f} | data)", "Status", "Events that cross at this N"]]
    extra = []
    for i, (kind, label) in enumerate((("crs", "Grade >= 3 CRS"), ("icans", "Grade >= 3 ICANS")), start=1):
        st = report.stopping[kind]
        at_n = dict(st.boundary).get(st.n) if st.n else None
        rows.append([label, f"{st.events}/{st.n}", _probability(st.probability),
                     "boundary crossed" if st.crossed else "not crossed",
                     "-" if at_n is None else f">= {at_n}"])
        if st.crossed:
            extra += [("BACKGROUND", (3, i), (3, i), colors.HexColor("#ef9a9a")),
                      ("FONTNAME", (3, i), (3, i), styles.bold)]
    story.append(_table(rows, [4 * cm, 2.6 * cm, 4.4 * cm, 3.4 * cm, 5.4 * cm], styles, font_size=8.5, extra=extra))
    story.append(_p("Events/N: infused subjects with at least one grade >= 3 episode / infused subjects.",
                    styles.small))
    boundary = report.stopping["crs"].boundary
    story.append(_p("Stopping boundary", styles.h2))
    story.append(_p(f"For each number of infused subjects N, the fewest subjects with the event whose posterior "
                    f"probability exceeds the cutoff ('-': no number can). The same table applies to CRS and ICANS; "
                    f"the current N ({report.stopping['crs'].n}) is highlighted.", styles.body))
    story += _boundary_table(boundary, report.stopping["crs"].n, styles)
    return story


def _image(png: bytes, max_width: float, max_height: float) -> Image:
    reader = ImageReader(io.BytesIO(png))
    w, h = reader.getSize()
    scale = min(max_width / w, max_height / h)
    return Image(io.BytesIO(png), width=w * scale, height=h * scale, hAlign="LEFT")


def _section_figures(report: DsmbReport, styles: _Styles) -> list:
    lanes = figures.ordered_lanes(report.lanes, report.closed)
    pages = max(1, -(-len(lanes) // SWIMMER_LANES_PER_PAGE))
    days = figures.day_range(lanes)
    width = FRAME_WIDTH / 72
    # Drawn at the size it is printed (fonts true to size) with the same lane height on every page;
    # the room left is for the headings, the legend strip and the caption. The legend is drawn once
    # and the same image placed on every page (the PDF holds it once).
    legend = figures.swimmer_legend(width=width, compress_level=1)
    legend_image = _image(legend, FRAME_WIDTH, FRAME_HEIGHT)
    room = FRAME_HEIGHT - 3.0 * cm - legend_image.drawHeight
    lane_in = (room / 72 - figures.swimmer_frame_in(legend=False)) / SWIMMER_LANES_PER_PAGE
    if pages == 1:  # a small trial: wider lanes, up to 0.22 in
        lane_in = min(0.22, (room / 72 - figures.swimmer_frame_in(legend=False)) / max(len(lanes), 3))
    caption = _p("Lanes: infused subjects" + (", grouped by cohort" if report.closed else "") + "; the grey line "
                 "runs from day 0 to the subject's last day with data. Upper stripe: daily CRS grade, lower stripe: "
                 "daily ICANS grade (blank: no assessment; NE: not evaluable).", styles.small)
    story = [PageBreak()]
    per_page = max(1, -(-len(lanes) // pages))  # balanced: 500 lanes are 12 pages of 42, not 11 of 45 and one of 5
    for page in range(pages):
        chunk = lanes[page * per_page:(page + 1) * per_page]
        label = f"Figure 1{'' if pages == 1 else f'.{page + 1}'}. Swimmer plot of daily CRS and ICANS grades"
        if pages > 1:
            label += f", subjects {page * per_page + 1}-{page * per_page + len(chunk)} of {len(lanes)}"
        if page:
            story.append(PageBreak())
        block = [_p("4. Figures", styles.h1)] if page == 0 else []
        block.append(_p(label, styles.h2))
        if chunk:
            png = figures.swimmer_plot(chunk, closed=report.closed, days=days, width=width, lane_height=lane_in,
                                       legend=False, compress_level=1)
            block += [_image(legend, FRAME_WIDTH, FRAME_HEIGHT), _image(png, FRAME_WIDTH, room), caption]
        else:
            block.append(_p("No infused subjects.", styles.body))
        story.append(KeepTogether(block))
    bars = figures.max_grade_bars(report.ae.groups, compress_level=1)
    story += [CondPageBreak(10 * cm),
              KeepTogether([_p("Figure 2. Maximum CRS and ICANS grade per subject, "
                               + ("by cohort and overall" if report.closed else "overall"), styles.h2),
                            _image(bars, FRAME_WIDTH, FRAME_HEIGHT - 2 * cm)])]
    return story


def _cohort_of(report: DsmbReport) -> dict[str, str]:
    known = {r.subject_id: r.cohort for r in report.ae.listing}
    known.update({lane.subject_id: lane.cohort for lane in report.lanes})
    return known


def _section_listings(report: DsmbReport, styles: _Styles) -> list:
    story = [PageBreak(), _p("5. Listings", styles.h1),
             _p("5.1 Adverse events of grade >= 3", styles.h2),
             _listing_table(report.grade3_listing, styles, cohort=report.closed, empty="No grade >= 3 events."),
             _p("5.2 Deaths", styles.h2)]
    if report.deaths:
        labels = dict(DeathCause.choices)  # the primary cause is stored as a code
        cohorts = _cohort_of(report)
        header = ["Subject"] + (["Cohort"] if report.closed else []) + ["Date of death", "Study day", "Primary cause"]
        rows = [header]
        for subject, day, cause, study_day in report.deaths:
            rows.append([subject] + ([cohorts.get(subject, "")] if report.closed else [])
                        + [day, "" if study_day is None else str(study_day), labels.get(cause, cause)])
        widths = [3 * cm] + ([4 * cm] if report.closed else []) + [3 * cm, 2.2 * cm, 6 * cm]
        story.append(_table(rows, widths, styles, long=True))
    else:
        story.append(_p("No deaths.", styles.body))
    story += [_p("5.3 Serious adverse events", styles.h2),
              _listing_table(report.sae_listing, styles, cohort=report.closed, empty="No serious adverse events."),
              _p("CRS and ICANS rows are derived episodes, serious per ICH E2A (not severity): death from the "
                 "toxicity, life-threatening (grade 4), an ICU stay for it, or a criterion the investigator "
                 "recorded; other rows are CTCAE events as entered. '>= n': the episode has days not evaluable.",
                 styles.small)]
    return story


def render_dsmb_pdf(report: DsmbReport, progress: Progress | None = None, *,
                    generated_at: datetime | None = None) -> bytes:
    """The DSMB report (reports.md) as PDF bytes; ``progress(done, total, step)`` after each section."""
    styles = _Styles()
    version = "Closed report (by cohort) — DSMB only" if report.closed else "Open report (arms pooled)"
    steps = [
        ("Enrolment, data currency and queries", _section_enrolment),
        ("Summary tables", _section_summary),
        ("Stopping rules", _section_stopping),
        ("Figures", _section_figures),
        ("Listings", _section_listings),
    ]
    total = len(steps) + 2
    report_progress = progress or (lambda done, total, step: None)
    story = [
        _p("DSMB report", styles.title),
        _title_block([
            ("Protocol", report.protocol_code),
            ("Title", report.title),
            ("Version", version),
            ("Data cut", report.cut),
            ("Data hash (SHA-256)", report.digest),
            ("Generated at", _generated(generated_at)),
        ], styles),
        Spacer(1, 6),
        _p("Computed from the data as they stood at the data cut (audit history); rebuilding the report for the "
           "same cut gives the same numbers and the same data hash.", styles.small),
    ]
    report_progress(1, total, "Title page")
    for done, (name, section) in enumerate(steps, start=2):
        story += section(report, styles)
        report_progress(done, total, name)
    buffer = io.BytesIO()
    header = f"{report.protocol_code} — DSMB report — {version}"
    if report.closed:
        header = "CONFIDENTIAL — " + header
    _build(buffer, story, title=f"{report.protocol_code} DSMB report", subject=version, header=header,
           footer=f"Data cut {report.cut} — data hash {report.digest[:16]}…", styles=styles)
    report_progress(total, total, "Layout")
    return buffer.getvalue()


# --- AE report -----------------------------------------------------------------------------------

def render_ae_pdf(report: AeReport, *, title: str, filters_text: str, generated_at: datetime | None = None) -> bytes:
    """The adverse-event report (summary and listing) as PDF bytes."""
    styles = _Styles()
    story = [
        _p(title, styles.title),
        _title_block([
            ("Protocol", report.protocol_code),
            ("Filters", filters_text or "none"),
            ("Data cut", report.cut),
            ("Data hash (SHA-256)", report.digest),
            ("Generated at", _generated(generated_at)),
        ], styles),
        _p("Summary", styles.h1),
    ]
    story += _summary_tables(report, styles)
    story += [PageBreak(), _p(f"Listing ({len(report.listing)} adverse events)", styles.h1),
              _listing_table(report.listing, styles, cohort=True, empty="No adverse events."),
              _p("CRS and ICANS rows are derived episodes; other rows are CTCAE events as entered.", styles.small)]
    buffer = io.BytesIO()
    _build(buffer, story, title=title, subject="Adverse-event report", header=f"{report.protocol_code} — {title}",
           footer=f"Data cut {report.cut} — data hash {report.digest[:16]}…", styles=styles)
    return buffer.getvalue()
