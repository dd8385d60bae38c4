"""Peak memory of a training step: the analytic model, its calibration against measured peaks, the planner's report."""
