"""The platform's state database (connection ``mlp_state``): its engine, schema and Alembic migrations.

``python -m include.state upgrade`` creates or upgrades its tables; the stores only check the revision.
"""
