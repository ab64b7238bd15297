"""Packaging that pyproject.toml cannot express: migrations/ ships inside the package.

The top-level `migrations/` folder stays the source of truth; it is mapped to the
package `service.migrations` (package-dir) and its .sql files are package data (listed
in pyproject.toml with the rest), so an installed wheel finds its schema with
importlib.resources (service/store/migrate.py). Every folder under service/ is a
package, as pyproject.toml's find made them.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["service", "service.*"]), "service.migrations"],
    package_dir={"service.migrations": "migrations"},
)
