"""Region health: probes of serving endpoints, clusters and utilisation, and the quorum verdict."""
