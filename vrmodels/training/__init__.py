"""Offline only: fitting ALS, judging it (split, relevance, metrics, baselines), tuning, the evaluation report,
and assembling model directories with their serving aids, for the implicit and the Spark trainer and the
SageMaker training job. May import `vrmodels.model`; the server never imports this package."""
