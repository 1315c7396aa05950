"""A throw-away database for the Django benchmarks: a test database on the configured backend
(DATABASE_URL: SQLite by default, PostgreSQL in CI), created on entry and dropped on exit."""

import contextlib


@contextlib.contextmanager
def scratch_database():
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False, serialize=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
