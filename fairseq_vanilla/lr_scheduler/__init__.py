from .noam import NoamSchedule, noam_lr  # noqa: F401
