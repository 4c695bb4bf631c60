"""Coded values of the daily assessment, the rescue-therapy logs and the typed-in adverse events
(data-dictionary.md)."""
from django.db import models


class Vasopressor(models.TextChoices):
    NOREPINEPHRINE = "norepinephrine", "Norepinephrine"
    EPINEPHRINE = "epinephrine", "Epinephrine"
    PHENYLEPHRINE = "phenylephrine", "Phenylephrine"
    DOPAMINE = "dopamine", "Dopamine"
    VASOPRESSIN = "vasopressin", "Vasopressin"
    ANGIOTENSIN_II = "angiotensin_ii", "Angiotensin II"
    OTHER = "other", "Other"


class Inotrope(models.TextChoices):
    """Recorded, never graded (R-CRS-8)."""

    MILRINONE = "milrinone", "Milrinone"
    DOBUTAMINE = "dobutamine", "Dobutamine"
    OTHER = "other", "Other"


class OxygenDevice(models.TextChoices):
    NONE = "none", "None"
    NASAL_CANNULA = "nasal_cannula", "Nasal cannula (low flow)"
    BLOW_BY = "blow_by", "Blow-by"
    HIGH_FLOW_NASAL_CANNULA = "high_flow_nasal_cannula", "High-flow nasal cannula"
    FACEMASK = "facemask", "Facemask"
    NON_REBREATHER = "non_rebreather", "Non-rebreather mask"
    VENTURI_MASK = "venturi_mask", "Venturi mask"
    CPAP = "cpap", "CPAP"
    BIPAP = "bipap", "BiPAP"
    MECHANICAL_VENTILATION = "mechanical_ventilation", "Intubation with mechanical ventilation"


class IntubationReason(models.TextChoices):
    HYPOXIA = "hypoxia", "Hypoxia"
    AIRWAY_PROTECTION = "airway_protection", "Airway protection"
    PROCEDURE = "procedure", "Procedure"
    OTHER = "other", "Other"


class IceNotAssessable(models.TextChoices):
    UNAROUSABLE = "unarousable", "Unarousable"
    SEDATED = "sedated", "Sedated"
    OTHER = "other", "Other"


class Consciousness(models.TextChoices):
    ALERT = "alert", "Alert (normal)"
    AWAKENS_SPONTANEOUSLY = "awakens_spontaneously", "Drowsy, awakens spontaneously"
    AWAKENS_TO_VOICE = "awakens_to_voice", "Awakens to voice"
    AWAKENS_TO_TACTILE = "awakens_to_tactile", "Awakens only to tactile stimulus"
    UNAROUSABLE = "unarousable", "Unarousable / stupor or coma"
    SEDATED = "sedated", "Sedated"


class Seizure(models.TextChoices):
    NONE = "none", "None"
    RAPIDLY_RESOLVING = "rapidly_resolving", "Seizure that resolves rapidly"
    PROLONGED_OR_REPETITIVE = "prolonged_or_repetitive", "Prolonged (> 5 min) or repetitive seizures"


class MotorWeakness(models.TextChoices):
    NONE = "none", "None"
    DEEP_FOCAL = "deep_focal", "Deep focal motor weakness (hemiparesis, paraparesis)"


class CerebralEdema(models.TextChoices):
    NONE = "none", "None"
    FOCAL = "focal", "Focal / local edema on neuroimaging"
    DIFFUSE_OR_SIGNS = "diffuse_or_signs", "Diffuse edema, posturing, CN VI palsy, papilledema or Cushing's triad"


class Indication(models.TextChoices):
    CRS = "crs", "CRS"
    ICANS = "icans", "ICANS"
    PROPHYLAXIS = "prophylaxis", "Prophylaxis"
    OTHER = "other", "Other"


class Corticosteroid(models.TextChoices):
    DEXAMETHASONE = "dexamethasone", "Dexamethasone"
    METHYLPREDNISOLONE = "methylprednisolone", "Methylprednisolone"
    HYDROCORTISONE = "hydrocortisone", "Hydrocortisone"
    PREDNISONE = "prednisone", "Prednisone"
    PREDNISOLONE = "prednisolone", "Prednisolone"
    OTHER = "other", "Other"


class Route(models.TextChoices):
    IV = "iv", "Intravenous"
    ORAL = "oral", "Oral"
    INTRATHECAL = "intrathecal", "Intrathecal"
    OTHER = "other", "Other"


class Anticytokine(models.TextChoices):
    ANAKINRA = "anakinra", "Anakinra"
    SILTUXIMAB = "siltuximab", "Siltuximab"
    OTHER = "other", "Other"


class ReplacementFluid(models.TextChoices):
    FFP = "ffp", "Fresh frozen plasma"
    ALBUMIN_5 = "albumin_5", "Albumin 5%"
    ALBUMIN_SALINE = "albumin_saline", "Albumin + saline"
    FFP_ALBUMIN = "ffp_albumin", "FFP + albumin"
    OTHER = "other", "Other"


class HemofiltrationModality(models.TextChoices):
    CVVH = "cvvh", "CVVH"
    CVVHD = "cvvhd", "CVVHD"
    CVVHDF = "cvvhdf", "CVVHDF"
    SCUF = "scuf", "SCUF"
    IHD = "ihd", "Intermittent hemodialysis"
    HEMOADSORPTION = "hemoadsorption", "Hemoadsorption"
    OTHER = "other", "Other"


class IcuReason(models.TextChoices):
    CRS = "crs", "CRS"
    ICANS = "icans", "ICANS"
    OTHER = "other", "Other"


# --- typed-in CTCAE adverse events (data-dictionary.md, "Other adverse events") ---------------


class CtcaeVersion(models.TextChoices):
    """The CTCAE release a typed-in event is coded and graded with (toxicity/data/ctcae_terms.csv)."""

    V5_0 = "v5.0", "CTCAE v5.0"
    V6_0 = "v6.0", "CTCAE v6.0"


class Seriousness(models.TextChoices):
    """ICH E2A seriousness criteria; several can apply to one event, so the field is a list."""

    DEATH = "death", "Results in death"
    LIFE_THREATENING = "life_threatening", "Life-threatening"
    HOSPITALIZATION = "hospitalization", "Requires or prolongs hospitalization"
    DISABILITY = "disability", "Persistent or significant disability / incapacity"
    CONGENITAL_ANOMALY = "congenital_anomaly", "Congenital anomaly / birth defect"
    IMPORTANT_MEDICAL_EVENT = "important_medical_event", "Important medical event"


class Relatedness(models.TextChoices):
    """The investigator's assessment of the relationship to the study treatment."""

    NOT_RELATED = "not_related", "Not related"
    UNLIKELY = "unlikely", "Unlikely related"
    POSSIBLE = "possible", "Possibly related"
    PROBABLE = "probable", "Probably related"
    DEFINITE = "definite", "Definitely related"


class AeOutcome(models.TextChoices):
    RECOVERED = "recovered", "Recovered / resolved"
    RECOVERING = "recovering", "Recovering / resolving"
    NOT_RECOVERED = "not_recovered", "Not recovered / not resolved"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae", "Recovered / resolved with sequelae"
    FATAL = "fatal", "Fatal"
    UNKNOWN = "unknown", "Unknown"
