"""Grants through the stock unitycatalog-client 0.7: privileges spelled with spaces, both add and remove always sent.
Prints JSON of what it saw. Usage: python uc_client_grants.py URL TOKEN CATALOG PRINCIPAL"""
import asyncio
import json
import sys

from unitycatalog.client import ApiClient, ApiException, Configuration, GrantsApi
from unitycatalog.client.models import PermissionsChange, Privilege, SecurableType, UpdatePermissions


async def main(url, token, catalog, principal):
    out = {}
    client = ApiClient(Configuration(host=url + "/api/2.1/unity-catalog"), header_name="Authorization", header_value=f"Bearer {token}")
    async with client:
        grants = GrantsApi(client)
        updated = await grants.update(SecurableType.CATALOG, catalog, UpdatePermissions(changes=[
            PermissionsChange(principal=principal, add=[Privilege.USE_CATALOG, Privilege.CREATE_SCHEMA], remove=[])]))
        out["after_add"] = [a.to_dict() for a in updated.privilege_assignments]
        got = await grants.get(SecurableType.CATALOG, catalog)
        out["get"] = [a.to_dict() for a in got.privilege_assignments]
        updated = await grants.update(SecurableType.CATALOG, catalog, UpdatePermissions(changes=[
            PermissionsChange(principal=principal, add=[], remove=[Privilege.CREATE_SCHEMA])]))
        out["after_remove"] = [a.to_dict() for a in updated.privilege_assignments]
        try:
            await grants.update(SecurableType.CATALOG, catalog, UpdatePermissions(changes=[
                PermissionsChange(principal="nobody@nowhere", add=[Privilege.USE_CATALOG], remove=[])]))
        except ApiException as e:
            out["unknown_principal_status"] = e.status
    print(json.dumps(out, default=str))


asyncio.run(main(*sys.argv[1:5]))
