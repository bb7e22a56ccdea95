"""Failover: the region state machine, its persisted state, traffic plans and Route 53."""
