"""Storage adapters (SQLAlchemy 2): the only package that imports SQLAlchemy."""
