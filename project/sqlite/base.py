"""Django's SQLite backend, told the real bound-parameter limit.

Django assumes SQLite's historic limit of 999 parameters a statement and
splits bulk writes to fit; SQLite 3.32 and later allow 32,766, so a bulk
status change of 1,000 messages takes one INSERT instead of twenty.
"""

import sqlite3

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base, features

if sqlite3.sqlite_version_info < (3, 33):
    raise ImproperlyConfigured(
        "SQLite 3.33 or later (for UPDATE ... FROM) is required; this Python "
        f"has {sqlite3.sqlite_version}."
    )


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = 32766


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
