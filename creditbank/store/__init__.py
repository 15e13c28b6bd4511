"""Storage on SQLAlchemy: tables, engine set-up for SQLite and PostgreSQL, migrations.

No engine is created at import time.
"""
