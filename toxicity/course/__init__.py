"""The one home of a subject's clinical course (issue: one clinical course).

- ``records.py``  the plain record types of a course (no Django), used by grading, the checks,
  episodes, reports and exports;
- ``load.py``     the one loader: a subject's course live, or as of a data cut;
- ``masking.py``  R-CRS-2 fever-masking windows from the drug logs (no Django);
- ``derive.py``   each day's grading context and grades, then the episodes (no Django);
- ``episodes.py`` the one episode rule and what an episode carries (no Django);
- ``store.py``    writes the derived grades and episodes;
- ``write.py``    the write sequence every clinical write ends with (``after_subject_write``).

Nothing is imported here, so that the pure modules stay importable without Django.
"""
