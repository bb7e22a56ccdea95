"""One extractor per cloud billing API, each returning its source table (``include.clouds.billing.schemas``)."""
