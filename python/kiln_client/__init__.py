"""Kiln's Python client, for what no stock client covers.

`kiln_client.feature_engineering` has Databricks' `FeatureEngineeringClient`, `FeatureLookup` and friends over
pandas frames, talking to a Kiln server (`KILN_URL`/`KILN_TOKEN`, or `DATABRICKS_HOST`/`DATABRICKS_TOKEN`).
"""
from ._http import KilnError

__all__ = ["KilnError"]
__version__ = "0.1.0"
