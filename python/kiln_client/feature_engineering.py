"""Databricks' Feature Engineering client over pandas frames, against a Kiln server.

A Databricks notebook ports by changing its import::

    from kiln_client.feature_engineering import FeatureEngineeringClient, FeatureLookup

    fe = FeatureEngineeringClient()          # KILN_URL / KILN_TOKEN (or DATABRICKS_HOST / DATABRICKS_TOKEN)
    fe.create_table(name="main.default.user_features", primary_keys=["user_id", "ts"], timeseries_column="ts", df=features)
    fe.write_table(name="main.default.user_features", df=more_features)       # merge on the primary key
    training = fe.create_training_set(df=labels, label="churned", feature_lookups=[
        FeatureLookup(table_name="main.default.user_features", lookup_key="user_id", timestamp_lookup_key="event_ts")])
    frame = training.load_df()               # a pandas DataFrame

Rows travel as Parquet; the joins run in the server (point-in-time by Databricks' rules: the newest feature row at
or before each label's time, whole; no match gives null or the lookup's default; label rows are kept as they are).
Timestamps come back as pandas datetimes in UTC without a time zone.
"""
import datetime
import io
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from ._http import Connection, KilnError

__all__ = ["FeatureEngineeringClient", "FeatureFunction", "FeatureLookup", "FeatureTable", "TrainingSet", "KilnError"]


class FeatureLookup:
    """Features to join from one feature table, matched on `lookup_key` (and, for a time-series table, on the
    newest row at or before `timestamp_lookup_key`, no older than `lookback_window`)."""

    def __init__(self, table_name: str, lookup_key: Union[str, List[str]], *, feature_names: Optional[Union[str, List[str]]] = None,
                 rename_outputs: Optional[Dict[str, str]] = None, timestamp_lookup_key: Optional[str] = None,
                 lookback_window: Optional[datetime.timedelta] = None, default_values: Optional[Dict[str, object]] = None):
        self.table_name = table_name
        self.lookup_key = [lookup_key] if isinstance(lookup_key, str) else list(lookup_key)
        self.feature_names = [feature_names] if isinstance(feature_names, str) else (list(feature_names) if feature_names is not None else None)
        self.rename_outputs = dict(rename_outputs or {})
        self.timestamp_lookup_key = timestamp_lookup_key
        if lookback_window is not None and not isinstance(lookback_window, datetime.timedelta):
            raise ValueError("lookback_window is a datetime.timedelta")
        if lookback_window is not None and lookback_window < datetime.timedelta(0):
            raise ValueError("lookback_window must not be negative")
        self.lookback_window = lookback_window
        self.default_values = dict(default_values or {})

    @classmethod
    def _from_spec(cls, d):
        window = d.get("lookback_window_seconds")
        return cls(d["table_name"], d["lookup_key"], feature_names=d.get("feature_names"), rename_outputs=d.get("rename_outputs"),
                   timestamp_lookup_key=d.get("timestamp_lookup_key"),
                   lookback_window=None if window is None else datetime.timedelta(seconds=window), default_values=d.get("default_values"))

    def _spec(self):
        return {
            "table_name": self.table_name, "lookup_key": self.lookup_key, "feature_names": self.feature_names,
            "rename_outputs": self.rename_outputs, "timestamp_lookup_key": self.timestamp_lookup_key,
            "lookback_window_seconds": None if self.lookback_window is None else self.lookback_window.total_seconds(),
            "default_values": {k: _json_scalar(v) for k, v in self.default_values.items()},
        }


class FeatureFunction:
    """A feature computed on demand by a catalog SQL function (`CREATE FUNCTION`): its parameters bound to columns
    (labels, or features looked up before it); the output column defaults to the function's full name."""

    def __init__(self, *, udf_name: str, input_bindings: Optional[Dict[str, str]] = None, output_name: Optional[str] = None):
        self.udf_name = udf_name
        self.input_bindings = dict(input_bindings or {})
        self.output_name = output_name

    def _spec(self):
        spec = {"udf_name": self.udf_name, "input_bindings": self.input_bindings}
        if self.output_name:
            spec["output_name"] = self.output_name
        return spec

    @classmethod
    def _from_spec(cls, d):
        return cls(udf_name=d["udf_name"], input_bindings=d.get("input_bindings"), output_name=d.get("output_name"))


def _features_spec(features):
    """Lookups and functions, in the wire's two lists."""
    for f in features:
        if not isinstance(f, (FeatureLookup, FeatureFunction)):
            raise ValueError("features are FeatureLookup and FeatureFunction objects")
    return {"feature_lookups": [f._spec() for f in features if isinstance(f, FeatureLookup)],
            "feature_functions": [f._spec() for f in features if isinstance(f, FeatureFunction)]}


@dataclass
class FeatureTable:
    """What `get_table` returns: the table's name, keys, description and features."""
    name: str
    primary_keys: List[str]
    timeseries_columns: List[str]
    description: Optional[str]
    features: List[str]
    table_id: Optional[str] = None
    tags: Dict[str, str] = field(default_factory=dict)

    @property
    def timeseries_column(self):
        return self.timeseries_columns[0] if self.timeseries_columns else None


class TrainingSet:
    """Label rows and the lookups to join onto them; `load_df()` runs the join in the server."""

    def __init__(self, client, df, feature_lookups, label, exclude_columns):
        self._client, self._df, self._lookups, self._label, self._exclude = client, df, feature_lookups, label, exclude_columns

    def _spec_document(self):
        """What `log_model` keeps with the model (feature_spec.yaml): the lookups, the label and the excluded columns
        (the model's inputs are the training set's other columns, in its order)."""
        label = [self._label] if isinstance(self._label, str) else list(self._label or [])
        return dict(_features_spec(self._lookups), label=label, exclude_columns=list(self._exclude))

    def load_df(self):
        spec = dict(_features_spec(self._lookups), exclude_columns=self._exclude)
        r = self._client._conn.call("POST", "/api/2.0/kiln/features/training-sets", params={"spec": json.dumps(spec)},
                                    data=_parquet(self._df), headers={"Content-Type": _PARQUET})
        return _frame(r.content)


class FeatureEngineeringClient:
    """Databricks' `FeatureEngineeringClient`, with pandas (or pyarrow) frames in place of Spark's."""

    def __init__(self, *, host: Optional[str] = None, token: Optional[str] = None):
        self._conn = Connection(host, token)

    def create_table(self, *, name: str, primary_keys: Union[str, List[str]], df=None, schema: Optional[pa.Schema] = None,
                     timeseries_column: Optional[str] = None, timeseries_columns: Optional[Union[str, List[str]]] = None,
                     partition_columns: Optional[Union[str, List[str]]] = None, description: Optional[str] = None,
                     tags: Optional[Dict[str, str]] = None, **_ignored) -> FeatureTable:
        """Creates a feature table keyed on `primary_keys` (made NOT NULL) from `df`'s columns (its rows are written
        too) or from `schema` (a pyarrow schema). `timeseries_column` must be one of the keys."""
        if df is None and schema is None:
            raise ValueError("Give df= or schema= for the table's columns")
        keys = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
        if timeseries_columns is not None and timeseries_column is None:
            ts = [timeseries_columns] if isinstance(timeseries_columns, str) else list(timeseries_columns)
            if len(ts) > 1:
                raise ValueError("A feature table has at most one timeseries column")
            timeseries_column = ts[0] if ts else None
        parts = [partition_columns] if isinstance(partition_columns, str) else list(partition_columns or [])
        body = _parquet(df) if df is not None else _parquet(schema.empty_table())
        params = {"name": name, "primary_keys": ",".join(keys), "partition_columns": ",".join(parts)}
        if timeseries_column:
            params["timeseries_column"] = timeseries_column
        if description is not None:
            params["description"] = description
        self._conn.call("POST", "/api/2.0/kiln/features/tables", params=params, data=body, headers={"Content-Type": _PARQUET})
        for key, value in (tags or {}).items():
            self.set_feature_table_tag(name=name, key=key, value=value)
        return self.get_table(name=name)

    def write_table(self, *, name: str, df, mode: str = "merge", **_ignored) -> dict:
        """Upserts `df` into the table on its primary key: matched keys take the frame's values, new keys are added,
        columns the table lacks become new features. Keys must be present, non-null and unique in `df`."""
        if mode != "merge":
            raise ValueError("write_table's only mode is 'merge'; to start over, drop the table or DELETE its rows")
        r = self._conn.call("POST", f"/api/2.0/kiln/features/tables/{quote(name, safe='')}/rows", data=_parquet(df),
                            headers={"Content-Type": _PARQUET})
        return r.json()

    def read_table(self, *, name: str, **_ignored):
        """The table's rows as a pandas DataFrame."""
        return _frame(self._conn.call("GET", f"/api/2.0/kiln/features/tables/{quote(name, safe='')}/rows").content)

    def get_table(self, *, name: str) -> FeatureTable:
        t = self._conn.call("GET", f"/api/2.1/unity-catalog/tables/{quote(name, safe='')}").json()
        keys, ts = [], []
        for constraint in t.get("table_constraints") or []:
            pk = constraint.get("primary_key_constraint")
            if pk:
                keys = pk.get("child_columns", [])
                ts = pk.get("timeseries_columns", [])
        features = [c["name"] for c in t.get("columns", []) if c["name"] not in keys]
        return FeatureTable(name=t.get("full_name", name), primary_keys=keys, timeseries_columns=ts, description=t.get("comment"),
                            features=features, table_id=t.get("table_id"),
                            tags={k[len("kiln.tag."):]: v for k, v in (t.get("properties") or {}).items() if k.startswith("kiln.tag.")})

    def drop_table(self, *, name: str) -> None:
        self._conn.call("DELETE", f"/api/2.1/unity-catalog/tables/{quote(name, safe='')}")

    def set_feature_table_tag(self, *, name: str, key: str, value: str) -> None:
        self._sql(f"ALTER TABLE {_quote_name(name)} SET TBLPROPERTIES ('kiln.tag.{_sql_text(key)}' = '{_sql_text(value)}')")

    def delete_feature_table_tag(self, *, name: str, key: str) -> None:
        self._sql(f"ALTER TABLE {_quote_name(name)} UNSET TBLPROPERTIES IF EXISTS ('kiln.tag.{_sql_text(key)}')")

    def create_training_set(self, *, df, feature_lookups: List[FeatureLookup], label: Optional[Union[str, List[str]]] = None,
                            exclude_columns: Optional[List[str]] = None, **_ignored) -> TrainingSet:
        """The label rows `df` with the lookups' features joined on (run by `load_df()`)."""
        columns = list(df.columns) if hasattr(df, "columns") else list(df.schema.names)
        for name in ([label] if isinstance(label, str) else list(label or [])):
            if name not in columns:
                raise ValueError(f"The label column '{name}' is not in df; its columns are {', '.join(map(str, columns))}")
        _features_spec(feature_lookups)
        return TrainingSet(self, df, list(feature_lookups), label, list(exclude_columns or []))

    # --- models that carry their feature lookups -------------------------------------------------------------------

    def log_model(self, *, model, artifact_path: str, flavor, training_set: "TrainingSet", registered_model_name: Optional[str] = None,
                  **kwargs):
        """Logs `model` with `flavor` (an mlflow module, e.g. `mlflow.sklearn`) to the active run — one is started when
        none is — with `feature_spec.yaml` beside it: the training set's lookups, so `score_batch` looks the same
        features up by key. Registers it as `registered_model_name` when given. Returns the model's `runs:/` URI."""
        import tempfile
        import mlflow
        kwargs.pop("await_registration_for", None)
        kwargs.pop("infer_input_example", None)
        own_run = mlflow.active_run() is None
        run = mlflow.start_run() if own_run else mlflow.active_run()
        try:
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "model")
                flavor.save_model(model, path, **kwargs)
                # JSON is YAML: any YAML reader takes it, and the server reads it without one.
                with open(os.path.join(path, "feature_spec.yaml"), "w") as f:
                    json.dump(training_set._spec_document(), f, indent=2)
                mlflow.log_artifacts(path, artifact_path)
            uri = f"runs:/{run.info.run_id}/{artifact_path}"
            if registered_model_name:
                mlflow.register_model(uri, registered_model_name)
            return uri
        finally:
            if own_run:
                mlflow.end_run()

    def score_batch(self, *, model_uri: str, df, result_type: str = "double", **_ignored):
        """Predictions of the model at `model_uri` (logged by `log_model`) for the rows of `df`, whose features are
        looked up by key as at training time; feature columns `df` already has win. Returns `df` plus `prediction`."""
        import mlflow
        import yaml
        if "prediction" in df.columns:
            raise ValueError("'prediction' is the column score_batch adds; rename the one in df")
        local = mlflow.artifacts.download_artifacts(artifact_uri=model_uri.rstrip("/") + "/feature_spec.yaml")
        with open(local) as f:
            spec = yaml.safe_load(f)
        lookups = [FeatureLookup._from_spec(item) for item in spec.get("feature_lookups", [])] + \
            [FeatureFunction._from_spec(item) for item in spec.get("feature_functions", [])]
        frame = TrainingSet(self, df, lookups, None, []).load_df() if lookups else df.copy()
        model = mlflow.pyfunc.load_model(model_uri)
        dropped = set(spec.get("label", []) + spec.get("exclude_columns", []))
        inputs = [c for c in frame.columns if c not in dropped]
        out = df.copy()
        predictions = model.predict(frame[inputs])
        out["prediction"] = pd_series(predictions, result_type)
        return out

    # --- feature specs and feature serving ------------------------------------------------------------------------

    def create_feature_spec(self, *, name: str, features: List[Union[FeatureLookup, FeatureFunction]], exclude_columns: Optional[List[str]] = None, **_ignored) -> dict:
        """A feature spec: lookups served together by key. Serve it with a serving endpoint whose served entity's
        `entity_name` is the spec's name (no version); its tables must be published (`publish_table`)."""
        body = dict(_features_spec(features), name=name, exclude_columns=list(exclude_columns or []))
        return self._conn.call("POST", "/api/2.0/kiln/features/specs", json=body).json()

    def get_feature_spec(self, *, name: str) -> dict:
        return self._conn.call("GET", f"/api/2.0/kiln/features/specs/{quote(name, safe='')}").json()

    def delete_feature_spec(self, *, name: str) -> None:
        self._conn.call("DELETE", f"/api/2.0/kiln/features/specs/{quote(name, safe='')}")

    # --- the online store ---------------------------------------------------------------------------------------

    def create_online_store(self, *, name: str, capacity: str = "CU_1", **_ignored) -> dict:
        """An online store: where published tables are served by key (embedded in the Kiln server)."""
        return self._conn.call("POST", "/api/2.0/feature-store/online-stores", json={"name": name, "capacity": capacity}).json()

    def get_online_store(self, *, name: str) -> dict:
        return self._conn.call("GET", f"/api/2.0/feature-store/online-stores/{quote(name, safe='')}").json()

    def list_online_stores(self) -> list:
        return self._conn.call("GET", "/api/2.0/feature-store/online-stores").json().get("online_stores", [])

    def delete_online_store(self, *, name: str) -> None:
        self._conn.call("DELETE", f"/api/2.0/feature-store/online-stores/{quote(name, safe='')}")

    def publish_table(self, *, online_store, source_table_name: str, online_table_name: Optional[str] = None,
                      publish_mode: str = "TRIGGERED", ttl: Optional[datetime.timedelta] = None, **_ignored) -> dict:
        """Copies the latest row of each key of `source_table_name` to the online store (`SNAPSHOT`: the whole table;
        `TRIGGERED`/`CONTINUOUS`: the changes since the last publish). `ttl` (Kiln's): rows whose time is older are
        not served (lookups answer as for a missing key)."""
        store = online_store if isinstance(online_store, str) else (online_store.get("name") if isinstance(online_store, dict) else online_store.name)
        spec = {"online_store": store, "publish_mode": publish_mode}
        if ttl is not None:
            spec["ttl_seconds"] = ttl.total_seconds()
        if online_table_name:
            spec["online_table_name"] = online_table_name
        return self._conn.call("POST", f"/api/2.0/feature-store/tables/{quote(source_table_name, safe='')}/publish",
                               json={"publish_spec": spec}).json()

    def drop_online_table(self, *, name: str, **_ignored) -> None:
        self._conn.call("DELETE", f"/api/2.0/feature-store/online-tables/{quote(name, safe='')}")

    def lookup_online(self, *, name: str, keys, features: Optional[List[str]] = None) -> list:
        """The online rows of `keys` (a list of {key column: value} or a pandas frame of key columns): one dict per
        key, None where the table has no such key."""
        if hasattr(keys, "to_dict"):
            keys = keys.to_dict(orient="records")
        body = {"keys": [{k: _json_scalar(v) for k, v in key.items()} for key in keys]}
        if features is not None:
            body["features"] = list(features)
        return self._conn.call("POST", f"/api/2.0/kiln/features/online-tables/{quote(name, safe='')}/lookup", json=body).json()["outputs"]

    def _sql(self, statement):
        r = self._conn.call("POST", "/api/2.0/sql/statements", json={"statement": statement, "warehouse_id": "kiln", "wait_timeout": "50s"}).json()
        status = r.get("status", {})
        if status.get("state") != "SUCCEEDED":
            error = status.get("error", {})
            raise KilnError(error.get("error_code", "ERROR"), error.get("message", str(r)))
        return r


_PARQUET = "application/vnd.apache.parquet"


def pd_series(values, result_type):
    import numpy as np
    import pandas as pd
    array = np.asarray(values)
    if array.ndim > 1 and array.shape[1] == 1:
        array = array[:, 0]
    return pd.Series(array).astype({"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "string": "str"}.get(result_type, "float64")).values


def _parquet(df):
    """A pandas or pyarrow frame as Parquet bytes, timestamps in microseconds (naive ones read as UTC)."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    columns = []
    for f, column in zip(table.schema, table.columns):
        if pa.types.is_timestamp(f.type):
            column = column.cast(pa.timestamp("us", tz="UTC") if f.type.tz is None else pa.timestamp("us", tz=f.type.tz), safe=False)
        columns.append(column)
    table = pa.Table.from_arrays(columns, names=table.schema.names)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _frame(data):
    table = pq.read_table(io.BytesIO(data))
    frame = table.to_pandas()
    for name in frame.columns:
        dtype = frame[name].dtype
        if getattr(dtype, "tz", None) is not None:
            frame[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


def _json_scalar(v):
    if hasattr(v, "item"):
        v = v.item()
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ValueError(f"default values are numbers, strings or booleans, not {type(v).__name__}")


def _quote_name(name):
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split("."))


def _sql_text(s):
    return str(s).replace("'", "''")
