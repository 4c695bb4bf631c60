"""Models of the toxicity app, by concept: the daily assessment (``daily``), the rescue-therapy logs
and typed-in adverse events (``logs``), derived episodes and their reviews (``episodes``), and
discrepancy management (``queries``)."""
from .daily import DERIVED, OBSERVATIONS, DailyAssessment, SubjectRecord, grade_field, reported_grade_field
from .episodes import Episode, EpisodeKind, EpisodeReview, ReviewStatus
from .logs import (
    AdverseEvent,
    AnticytokineDose,
    CorticosteroidDose,
    HemofiltrationSession,
    IcuStay,
    PlasmaExchange,
    TocilizumabDose,
    dose_mg_field,
)
from .queries import ACTIVE_QUERY_STATUSES, CheckRun, CheckRunStatus, Query, QueryMessage, QueryOrigin, QueryStatus

CONSTRAINT_FIELDS = {
    "assessment_one_per_subject_day": "assessment_date",
    "assessment_temperature_max_c_range": "temperature_max_c",
    "assessment_oxygen_flow_l_min_range": "oxygen_flow_l_min",
    "assessment_fio2_percent_range": "fio2_percent",
    "assessment_ice_score_range": "ice_score",
    "assessment_capd_score_range": "capd_score",
    "assessment_crs_grade_reported_range": "crs_grade_reported",
    "assessment_icans_grade_reported_range": "icans_grade_reported",
    "toci_dose_mg_range": "dose_mg",
    "steroid_dose_mg_positive": "dose_mg",
    "anticytokine_dose_mg_positive": "dose_mg",
    "tpe_hematocrit_fraction_range": "hematocrit_fraction",
    "tpe_plasma_volume_exchanged_ml_range": "plasma_volume_exchanged_ml",
    "tpe_ends_after_start": "ended_at",
    "crrt_ends_after_start": "ended_at",
    "icu_discharged_after_admitted": "discharged_at",
    "ae_grade_range": "grade",
    "ae_resolution_after_onset": "resolution_date",
    "ae_grade_5_iff_fatal": "outcome",
    "query_one_open_per_rule_record_field": "field",
    "episode_review_one_per_episode": "onset_date",
}



__all__ = [
    "ACTIVE_QUERY_STATUSES", "CONSTRAINT_FIELDS", "DERIVED", "OBSERVATIONS", "AdverseEvent", "AnticytokineDose",
    "CheckRun", "CheckRunStatus", "CorticosteroidDose", "DailyAssessment", "Episode", "EpisodeKind", "EpisodeReview",
    "HemofiltrationSession", "IcuStay", "PlasmaExchange", "Query", "QueryMessage", "QueryOrigin", "QueryStatus",
    "ReviewStatus", "SubjectRecord", "TocilizumabDose", "dose_mg_field", "grade_field", "reported_grade_field",
]
