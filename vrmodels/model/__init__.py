"""What the server may import, and nothing else of `vrmodels`: the model directory format, the id and ANN indexes,
top-k over the catalogue, the precomputed lists, the queries and the `Recommender` that answers them."""
