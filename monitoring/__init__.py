"""Watching a deployed model from what its endpoint captured: drift against the training data.

Reads SageMaker's data capture with the server's own wire formats (serving), and the model directories it
served (vrmodels.model); nothing here runs inside the serving container.
"""
