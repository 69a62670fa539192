"""The recommender's models: `model/` (the artifact format and what the server may import), `training/` (fitting,
judging and writing model directories), and the command-line entry points users type (`train_model`,
`train_spark`, `package`, `drift`)."""
