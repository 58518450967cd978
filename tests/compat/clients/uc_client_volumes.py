"""Volumes through the stock unitycatalog-client 0.7. Prints JSON. Usage: python uc_client_volumes.py URL TOKEN CATALOG"""
import asyncio
import json
import sys

from unitycatalog.client import ApiClient, ApiException, Configuration, VolumesApi
from unitycatalog.client.models import CreateVolumeRequestContent, UpdateVolumeRequestContent, VolumeType


async def main(url, token, catalog):
    out = {}
    client = ApiClient(Configuration(host=url + "/api/2.1/unity-catalog"), header_name="Authorization", header_value=f"Bearer {token}")
    async with client:
        volumes = VolumesApi(client)
        created = await volumes.create_volume(CreateVolumeRequestContent(catalog_name=catalog, schema_name="s", name="raw",
                                                                         volume_type=VolumeType.MANAGED, comment="landing"))
        out["created"] = created.to_dict()
        out["listed"] = [v.name for v in (await volumes.list_volumes(catalog_name=catalog, schema_name="s")).volumes]
        out["renamed"] = (await volumes.update_volume(f"{catalog}.s.raw", UpdateVolumeRequestContent(new_name="landing"))).to_dict()
        out["got"] = (await volumes.get_volume(f"{catalog}.s.landing")).to_dict()
        try:
            await volumes.get_volume(f"{catalog}.s.raw")
        except ApiException as e:
            out["old_name_status"] = e.status
    print(json.dumps(out, default=str))


asyncio.run(main(*sys.argv[1:4]))
