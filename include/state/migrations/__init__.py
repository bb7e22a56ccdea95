"""The Alembic environment of the state database (``env.py``, ``versions/``); run through include.state.migrate."""
