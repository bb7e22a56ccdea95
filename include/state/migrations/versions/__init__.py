"""The state database's revisions, oldest first; ``python -m include.state revision -m ...`` adds one."""
