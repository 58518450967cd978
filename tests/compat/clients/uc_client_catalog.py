"""Drives Kiln with the stock unitycatalog-client 0.7 (run in its own virtual environment: it pins versions the
rest of the suite cannot share). Prints one JSON object of what it saw; the test asserts on it.
Usage: python uc_client_catalog.py URL TOKEN PREFIX"""
import asyncio
import json
import sys

from unitycatalog.client import (ApiClient, ApiException, CatalogsApi, Configuration, MetastoresApi, SchemasApi, TablesApi)
from unitycatalog.client.models import (ColumnInfo, ColumnTypeName, CreateCatalog, CreateSchema, CreateTable, DataSourceFormat,
                                        TableType, UpdateCatalog, UpdateSchema)


async def main(url, token, prefix):
    out = {}
    client = ApiClient(Configuration(host=url + "/api/2.1/unity-catalog"), header_name="Authorization", header_value=f"Bearer {token}")
    async with client:
        catalogs, schemas, tables = CatalogsApi(client), SchemasApi(client), TablesApi(client)
        out["metastore"] = (await MetastoresApi(client).summary()).metastore_id
        name = f"{prefix}_cat"
        created = await catalogs.create_catalog(CreateCatalog(name=name, comment="made by the OSS client", properties={"k": "v"}))
        out["catalog"] = created.to_dict()
        listed = await catalogs.list_catalogs(max_results=1)
        out["first_page"] = [c.name for c in listed.catalogs]
        out["first_token"] = listed.next_page_token
        every, token_ = [], None
        while True:
            page = await catalogs.list_catalogs(max_results=1, page_token=token_)
            every += [c.name for c in page.catalogs or []]
            token_ = page.next_page_token
            if not token_:
                break
        out["all_catalogs"] = every
        updated = await catalogs.update_catalog(name, UpdateCatalog(comment="changed", new_name=name + "2"))
        out["renamed"] = updated.to_dict()
        name = name + "2"
        schema = await schemas.create_schema(CreateSchema(name="raw", catalog_name=name, comment="s"))
        out["schema"] = schema.to_dict()
        out["schema_updated"] = (await schemas.update_schema(f"{name}.raw", UpdateSchema(properties={"a": "b"}))).to_dict()
        out["schemas"] = [s.full_name for s in (await schemas.list_schemas(catalog_name=name)).schemas]
        table = await tables.create_table(CreateTable(
            name="events", catalog_name=name, schema_name="raw", table_type=TableType.MANAGED, data_source_format=DataSourceFormat.DELTA,
            columns=[ColumnInfo(name="id", type_name=ColumnTypeName.LONG, type_text="bigint", type_json='{"name":"id","type":"long","nullable":false,"metadata":{}}', position=0, nullable=False),
                     ColumnInfo(name="day", type_name=ColumnTypeName.DATE, type_text="date", type_json='{"name":"day","type":"date","nullable":true,"metadata":{}}', position=1, nullable=True, partition_index=0),
                     ColumnInfo(name="tags", type_name=ColumnTypeName.ARRAY, type_text="array<string>",
                                type_json='{"name":"tags","type":{"type":"array","elementType":"string","containsNull":true},"nullable":true,"metadata":{}}',
                                position=2, nullable=True)],
            comment="t", properties={"delta.appendOnly": "false"}))
        out["table"] = table.to_dict()
        out["tables"] = [t.name for t in (await tables.list_tables(catalog_name=name, schema_name="raw")).tables]
        out["got_table"] = (await tables.get_table(f"{name}.raw.events")).to_dict()
        try:
            await tables.get_table(f"{name}.raw.missing")
        except ApiException as e:
            out["missing_status"] = e.status
        try:
            await catalogs.delete_catalog(name)
        except ApiException as e:
            out["delete_nonempty_status"] = e.status
        await tables.delete_table(f"{name}.raw.events")
        await schemas.delete_schema(f"{name}.raw")
        await catalogs.delete_catalog(name, force=True)
        out["after_delete"] = [c.name for c in (await catalogs.list_catalogs()).catalogs]
    print(json.dumps(out, default=str))


asyncio.run(main(*sys.argv[1:4]))
