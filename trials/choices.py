"""Coded values of the data dictionary (../shared/domain/data-dictionary.md). Codes are the contract."""
from django.db import models


class Phase(models.TextChoices):
    PHASE_1 = "1", "Phase 1"
    PHASE_1_2 = "1/2", "Phase 1/2"
    PHASE_2 = "2", "Phase 2"
    PHASE_3 = "3", "Phase 3"


class CrsScale(models.TextChoices):
    ASTCT_2019 = "astct_2019", "ASTCT 2019"
    CTCAE_V5 = "ctcae_v5", "CTCAE v5.0"
    CTCAE_V6 = "ctcae_v6", "CTCAE v6.0"


class IcansScale(models.TextChoices):
    ASTCT_2019 = "astct_2019", "ASTCT 2019"
    CTCAE_V6 = "ctcae_v6", "CTCAE v6.0"


class TrialStatus(models.TextChoices):
    SETUP = "setup", "In set-up"
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Closed"


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Diagnosis(models.TextChoices):
    B_ALL = "b_all", "B-cell acute lymphoblastic leukaemia"
    DLBCL = "dlbcl", "Diffuse large B-cell lymphoma"
    FL = "fl", "Follicular lymphoma"
    MCL = "mcl", "Mantle cell lymphoma"
    CLL = "cll", "Chronic lymphocytic leukaemia"
    MM = "mm", "Multiple myeloma"
    OTHER = "other", "Other"


class SubjectStatus(models.TextChoices):
    SCREENING = "screening", "Screening"
    ENROLLED = "enrolled", "Enrolled"
    INFUSED = "infused", "Infused"
    COMPLETED = "completed", "Completed"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DIED = "died", "Died"


class DeathCause(models.TextChoices):
    CRS = "crs", "Cytokine release syndrome"
    ICANS = "icans", "ICANS"
    DISEASE_PROGRESSION = "disease_progression", "Disease progression"
    INFECTION = "infection", "Infection"
    OTHER = "other", "Other"


class Product(models.TextChoices):
    TISAGENLECLEUCEL = "tisagenlecleucel", "Tisagenlecleucel"
    AXICABTAGENE_CILOLEUCEL = "axicabtagene_ciloleucel", "Axicabtagene ciloleucel"
    BREXUCABTAGENE_AUTOLEUCEL = "brexucabtagene_autoleucel", "Brexucabtagene autoleucel"
    LISOCABTAGENE_MARALEUCEL = "lisocabtagene_maraleucel", "Lisocabtagene maraleucel"
    IDECABTAGENE_VICLEUCEL = "idecabtagene_vicleucel", "Idecabtagene vicleucel"
    CILTACABTAGENE_AUTOLEUCEL = "ciltacabtagene_autoleucel", "Ciltacabtagene autoleucel"
    INVESTIGATIONAL = "investigational", "Investigational product"


class LymphodepletionRegimen(models.TextChoices):
    FLU_CY = "flu_cy", "Fludarabine + cyclophosphamide"
    BENDAMUSTINE = "bendamustine", "Bendamustine"
    OTHER = "other", "Other"
    NONE = "none", "None"
