"""Storage: the database schema, engines and sessions, migrations, the float16 vector codec.

Reads and writes nothing on import. :mod:`~monitor.storage.schema` is the SQLAlchemy 2.0
typed ORM every stage writes its rows through; :mod:`~monitor.storage.engine` makes
engines (SQLite with WAL, or PostgreSQL) and runs the Alembic migrations of the
top-level ``alembic/`` folder (shipped inside the wheel); :mod:`~monitor.storage.bootstrap`
migrates a database and registers the model's categories (``segmon init``);
:mod:`~monitor.storage.vectors` is the one codec of stored embeddings. No job runs here.
"""
