"""Drives Kiln's SQL functions with the stock unitycatalog-client 0.7 (in its own virtual environment). Prints one JSON
object of what it saw. Usage: python uc_client_functions.py URL TOKEN CATALOG"""
import asyncio
import json
import sys

from unitycatalog.client import ApiClient, ApiException, Configuration, FunctionsApi
from unitycatalog.client.models import (ColumnTypeName, CreateFunction, CreateFunctionRequest, FunctionParameterInfo,
                                        FunctionParameterInfos)


async def main(url, token, catalog):
    out = {}
    client = ApiClient(Configuration(host=url + "/api/2.1/unity-catalog"), header_name="Authorization", header_value=f"Bearer {token}")
    async with client:
        functions = FunctionsApi(client)
        created = await functions.create_function(CreateFunctionRequest(function_info=CreateFunction(
            name="twice", catalog_name=catalog, schema_name="s",
            input_params=FunctionParameterInfos(parameters=[FunctionParameterInfo(
                name="x", type_text="double", type_json='{"name":"x","type":"double","nullable":true,"metadata":{}}',
                type_name=ColumnTypeName.DOUBLE, position=0, comment="the input")]),
            data_type=ColumnTypeName.DOUBLE, full_data_type="double", routine_body="SQL", routine_definition="x * 2",
            parameter_style="S", is_deterministic=True, sql_data_access="CONTAINS_SQL", is_null_call=False, security_type="DEFINER",
            specific_name="twice", comment="doubles")))
        out["created"] = created.to_dict()
        out["listed"] = [f.full_name for f in (await functions.list_functions(catalog_name=catalog, schema_name="s")).functions]
        out["got"] = (await functions.get_function(f"{catalog}.s.twice")).to_dict()
        try:
            await functions.create_function(CreateFunctionRequest(function_info=CreateFunction(
                name="bad", catalog_name=catalog, schema_name="s", input_params=FunctionParameterInfos(parameters=[]),
                data_type=ColumnTypeName.DOUBLE, full_data_type="double", routine_body="SQL", routine_definition="y + 1",
                parameter_style="S", is_deterministic=True, sql_data_access="CONTAINS_SQL", is_null_call=False, security_type="DEFINER",
                specific_name="bad")))
            out["bad_status"] = 200
        except ApiException as e:
            out["bad_status"] = e.status
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
