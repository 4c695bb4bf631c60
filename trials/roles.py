"""Roles and what each may do (../shared/domain/workflow.md). Plain Python, no Django import."""
from enum import StrEnum


class Role(StrEnum):
    COORDINATOR = "coordinator"
    INVESTIGATOR = "investigator"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    SPONSOR = "sponsor"
    DSMB = "dsmb"


ALL_ROLES = frozenset(Role)
# Site roles are granted per site and see only the subjects of their sites.
SITE_ROLES = frozenset({Role.COORDINATOR, Role.INVESTIGATOR, Role.MONITOR})
# Trial roles see the whole trial.
TRIAL_ROLES = ALL_ROLES - SITE_ROLES
# Enter and correct CRFs (with a reason after the first save).
DATA_ENTRY_ROLES = frozenset({Role.COORDINATOR, Role.INVESTIGATOR})
# Only site roles ever see identifying data (date of birth): "never leaves the site roles".
IDENTIFIED_ROLES = SITE_ROLES
# Free text typed about a person is withheld from these roles (reports.md, De-identification).
DEIDENTIFIED_ROLES = frozenset({Role.SPONSOR, Role.DSMB})
# The browser's CRF pages, query threads and record audit trails: sponsor and DSMB read exports
# and reports only (workflow.md, Roles), which are de-identified; the pages are not.
CRF_ROLES = ALL_ROLES - DEIDENTIFIED_ROLES
