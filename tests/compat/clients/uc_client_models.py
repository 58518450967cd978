"""Drives Kiln's models in Unity Catalog with the stock unitycatalog-client 0.7 (in its own virtual environment).
Prints one JSON object of what it saw. Usage: python uc_client_models.py URL TOKEN CATALOG"""
import asyncio
import json
import sys

from unitycatalog.client import ApiClient, ApiException, Configuration, ModelVersionsApi, RegisteredModelsApi
from unitycatalog.client.models import (CreateModelVersion, CreateRegisteredModel, FinalizeModelVersion, UpdateModelVersion,
                                        UpdateRegisteredModel)


async def main(url, token, catalog):
    out = {}
    client = ApiClient(Configuration(host=url + "/api/2.1/unity-catalog"), header_name="Authorization", header_value=f"Bearer {token}")
    async with client:
        models, versions = RegisteredModelsApi(client), ModelVersionsApi(client)
        created = await models.create_registered_model(CreateRegisteredModel(name="scorer", catalog_name=catalog, schema_name="s", comment="v0"))
        out["created"] = created.to_dict()
        out["listed"] = [m.full_name for m in (await models.list_registered_models(catalog_name=catalog, schema_name="s")).registered_models]
        full = f"{catalog}.s.scorer"
        updated = await models.update_registered_model(full, UpdateRegisteredModel(comment="scores customers", new_name="scorer2"))
        out["updated"] = updated.to_dict()
        full = f"{catalog}.s.scorer2"
        v = await versions.create_model_version(CreateModelVersion(model_name="scorer2", catalog_name=catalog, schema_name="s",
                                                                   source="runs:/abc/model", run_id="abc", comment="first"))
        out["version_created"] = v.to_dict()
        done = await versions.finalize_model_version(full, v.version, FinalizeModelVersion(full_name=full, version=v.version))
        out["finalized"] = done.to_dict()
        out["version_updated"] = (await versions.update_model_version(full, v.version, UpdateModelVersion(comment="first, checked"))).to_dict()
        out["versions"] = [x.version for x in (await versions.list_model_versions(full)).model_versions]
        out["got"] = (await versions.get_model_version(full, v.version)).to_dict()
        await versions.delete_model_version(full, v.version)
        try:
            await versions.get_model_version(full, v.version)
            out["deleted_status"] = 200
        except ApiException as e:
            out["deleted_status"] = e.status
        await models.delete_registered_model(full, force=True)
        out["after_delete"] = [m.full_name for m in (await models.list_registered_models(catalog_name=catalog, schema_name="s")).registered_models or []]
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
