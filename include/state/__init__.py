"""The platform's state database (connection ``mlp_state``): its SQLAlchemy engine and schema."""
