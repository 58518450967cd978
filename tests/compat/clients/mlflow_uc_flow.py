"""The stock mlflow client against Kiln with the registry URI `databricks-uc` (DATABRICKS_HOST/DATABRICKS_TOKEN and
MLFLOW_TRACKING_URI/MLFLOW_TRACKING_TOKEN set by the caller): log a pyfunc model and register it under a three-level
name, set an alias, search, and load it back by alias. Prints one JSON object of what it saw.
With `--load VERSION` it only loads `models:/FULL_NAME/VERSION` and predicts (what a user granted EXECUTE does).
Usage: python mlflow_uc_flow.py FULL_NAME EXPERIMENT | python mlflow_uc_flow.py FULL_NAME --load VERSION"""
import json
import sys

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.pyfunc import PythonModel


class AddOne(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"] + 1


def main(name, experiment):
    out = {}
    mlflow.set_registry_uri("databricks-uc")
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="model", python_model=AddOne(), input_example=pd.DataFrame({"x": [1.0, 2.0]}),
                                registered_model_name=name)
    client = MlflowClient()
    client.set_registered_model_alias(name, "champion", "1")
    out["aliases"] = client.get_registered_model(name).aliases
    versions = client.search_model_versions(f"name='{name}'")
    out["versions"] = [(v.version, v.status, v.run_id == run.info.run_id) for v in versions]
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    out["predictions"] = [float(x) for x in loaded.predict(pd.DataFrame({"x": [1.0, 5.0]}))]
    out["by_version"] = [float(x) for x in mlflow.pyfunc.load_model(f"models:/{name}/1").predict(pd.DataFrame({"x": [0.5]}))]
    client.delete_registered_model_alias(name, "champion")
    out["aliases_after"] = client.get_registered_model(name).aliases
    print(json.dumps(out))


def load(name, version):
    mlflow.set_registry_uri("databricks-uc")
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    print(json.dumps({"predictions": [float(x) for x in loaded.predict(pd.DataFrame({"x": [1.0, 5.0]}))]}))


if __name__ == "__main__":
    if sys.argv[2] == "--load":
        load(sys.argv[1], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2])
