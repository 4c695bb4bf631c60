"""The CTCAE term list shipped with the platform (toxicity/data/ctcae_terms.csv), for typed-in adverse events.

The file has one row per (``version``, ``soc``, ``term``): the CTCAE term as NCI spells it and its
MedDRA primary System Organ Class. It is loaded once per process (``functools.cache``); no Django.

- **v5.0** (NCI, 27 Nov 2017): the terms CAR-T and oncology trials record, across every SOC,
  including each SOC's "<SOC> - Other, specify" term. It is a subset of the 837 official terms:
  replace the file with NCI's spreadsheet to widen it; nothing else changes.
- **v6.0**: until NCI's v6.0 file is shipped here, the v6.0 list is the v5.0 list plus the rows
  the file marks ``v6.0`` (the ICANS term that v6.0 adds, MedDRA 10083347; grading.md). Terms
  v6.0 renames or retires are therefore still accepted for v6.0.

CRS and ICANS are in the list (they are CTCAE terms and appear in exports), but they are never
typed in: their episodes are derived from the daily assessments (data-dictionary.md, last
paragraph). ``derived_kind`` tells the validation which terms to refuse.
"""
import csv
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "ctcae_terms.csv"
VERSIONS = ("v5.0", "v6.0")
# Until the official v6.0 file is shipped, v6.0 inherits every term of this version.
V6_BASE_VERSION = "v5.0"

# Terms whose events the platform derives from the daily assessments (reports.md, episodes).
# Keys are normalised (see ``normalise``); "crs"/"icans" catch the abbreviations too.
DERIVED_TERMS = {
    "cytokine release syndrome": "CRS",
    "crs": "CRS",
    "immune effector cell-associated neurotoxicity syndrome": "ICANS",
    "immune effector cell associated neurotoxicity syndrome": "ICANS",
    "icans": "ICANS",
}


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive key of a typed term."""
    return " ".join(str(text).split()).casefold()


@cache
def _rows() -> tuple[tuple[str, str, str], ...]:
    with DATA_FILE.open(newline="", encoding="utf-8") as f:
        return tuple((r["version"].strip(), r["soc"].strip(), r["term"].strip()) for r in csv.DictReader(f))


@cache
def terms(version: str) -> dict[str, str]:
    """``{term: soc}`` of a CTCAE version, in file order; empty for an unknown version."""
    if version not in VERSIONS:
        return {}
    wanted = {version, V6_BASE_VERSION} if version == "v6.0" else {version}
    return {term: soc for v, soc, term in _rows() if v in wanted}


@cache
def _by_key(version: str) -> dict[str, str]:
    return {normalise(term): term for term in terms(version)}


def canonical(version: str, text: str) -> str | None:
    """The list's spelling of ``text`` in ``version`` ("febrile  NEUTROPENIA" -> "Febrile neutropenia"), or None."""
    return _by_key(version).get(normalise(text))


def soc(version: str, term: str) -> str | None:
    """The System Organ Class of a term of ``version``, or None."""
    found = canonical(version, term)
    return terms(version)[found] if found else None


def derived_kind(text: str) -> str | None:
    """"CRS" or "ICANS" when ``text`` names an event the platform derives, else None."""
    return DERIVED_TERMS.get(normalise(text))


@cache
def typeable_terms() -> tuple[str, ...]:
    """Every term of every version a coordinator may type (CRS and ICANS left out), sorted: the form's list."""
    names = {term for version in VERSIONS for term in terms(version) if derived_kind(term) is None}
    return tuple(sorted(names, key=str.casefold))
