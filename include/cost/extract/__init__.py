"""One extractor per cloud billing API, each returning its source table (``include.cost.sources``)."""
