"""Builds Delta tables with reader features delta-rs does not write — deletion vectors and column mapping — the way
Spark/Databricks lay them out (PROTOCOL.md), so Kiln's reader can be checked against independently computed rows."""
import json
import os
import struct
import uuid
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
from pyroaring import BitMap

Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def z85_encode(data: bytes) -> str:
    data = data + b"\0" * (-len(data) % 4)
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i:i + 4], "big")
        chunk = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            chunk.append(Z85[digit])
        out.append("".join(reversed(chunk)))
    return "".join(out)


def serialized_dv(rows, run_optimize=False) -> bytes:
    """Magic + portable 64-bit Roaring: buckets by the high 32 bits, each a standard Roaring bitmap (pyroaring)."""
    buckets = {}
    for r in sorted(rows):
        buckets.setdefault(r >> 32, []).append(r & 0xFFFFFFFF)
    out = struct.pack("<I", 1681511377) + struct.pack("<q", len(buckets))
    for high in sorted(buckets):
        bm = BitMap(buckets[high])
        if run_optimize:
            bm.run_optimize()
        out += struct.pack("<I", high) + bm.serialize()
    return out


def write_dv_file(table_path, vectors, prefix=""):
    """Writes `deletion_vector_<uuid>.bin` holding the vectors; returns descriptors (storageType u) for each."""
    uid = uuid.uuid4()
    directory = os.path.join(table_path, prefix) if prefix else table_path
    os.makedirs(directory, exist_ok=True)
    blob = bytearray(b"\x01")
    descriptors = []
    for rows, run in vectors:
        data = serialized_dv(rows, run)
        descriptors.append({"storageType": "u", "pathOrInlineDv": prefix + z85_encode(uid.bytes), "offset": len(blob),
                            "sizeInBytes": len(data), "cardinality": len(rows)})
        blob += struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data) & 0xFFFFFFFF)
    with open(os.path.join(directory, f"deletion_vector_{uid}.bin"), "wb") as f:
        f.write(bytes(blob))
    return descriptors


def inline_dv(rows):
    data = serialized_dv(rows)
    return {"storageType": "i", "pathOrInlineDv": z85_encode(data), "sizeInBytes": len(data), "cardinality": len(rows)}


def commit(table_path, version, actions):
    info = {"commitInfo": {"timestamp": 1700000000000 + version, "operation": "DELETE", "operationParameters": {}}}
    with open(os.path.join(table_path, "_delta_log", f"{version:020d}.json"), "w") as f:
        for action in [info] + actions:
            f.write(json.dumps(action) + "\n")


def log_actions(table_path, version):
    with open(os.path.join(table_path, "_delta_log", f"{version:020d}.json")) as f:
        return [json.loads(line) for line in f]


def add_deletion_vectors(table_path, version, deletions):
    """Commits `version`: upgrades the protocol to deletionVectors and gives files deletion vectors.
    `deletions` maps a file's add path to (descriptor). Returns nothing; the old adds are removed and re-added."""
    adds = {}
    for v in range(version):
        for a in log_actions(table_path, v):
            if "add" in a:
                adds[a["add"]["path"]] = a["add"]
            if "remove" in a:
                adds.pop(a["remove"]["path"], None)
    actions = [{"protocol": {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["deletionVectors"],
                             "writerFeatures": ["deletionVectors"]}}]
    for path, descriptor in deletions.items():
        old = adds[path]
        actions.append({"remove": {"path": path, "deletionTimestamp": 1700000000000, "dataChange": True, "extendedFileMetadata": True,
                                   "partitionValues": old["partitionValues"], "size": old["size"]}})
        new = dict(old)
        new["deletionVector"] = descriptor
        actions.append({"add": new})
    commit(table_path, version, actions)


def column_mapped_table(table_path, table: pa.Table, partition: str, mode="name"):
    """Writes `table` as a column-mapped Delta table (version 0): Parquet columns, partition values and statistics
    use physical names `col-<uuid>` (with field ids); the schema maps them to the logical names.
    Returns {logical: physical}."""
    os.makedirs(os.path.join(table_path, "_delta_log"), exist_ok=True)
    physical = {name: f"col-{uuid.uuid4()}" for name in table.column_names}
    ids = {name: i + 1 for i, name in enumerate(table.column_names)}
    fields = []
    for f in table.schema:
        t = {pa.int64(): "long", pa.float64(): "double", pa.string(): "string", pa.int32(): "integer"}[f.type]
        fields.append({"name": f.name, "type": t, "nullable": True,
                       "metadata": {"delta.columnMapping.id": ids[f.name], "delta.columnMapping.physicalName": physical[f.name]}})
    schema = {"type": "struct", "fields": fields}
    adds = []
    for value in sorted(set(table.column(partition).to_pylist()), key=str):
        part = table.filter(pa.compute.equal(table.column(partition), value))
        data = part.drop_columns([partition])
        arrow_fields = [pa.field(physical[n], data.schema.field(n).type, metadata={b"PARQUET:field_id": str(ids[n]).encode()})
                        for n in data.column_names]
        renamed = pa.Table.from_arrays(data.columns, schema=pa.schema(arrow_fields))
        rel = f"{physical[partition]}={value}/part-{uuid.uuid4()}.parquet"
        os.makedirs(os.path.join(table_path, os.path.dirname(rel)), exist_ok=True)
        pq.write_table(renamed, os.path.join(table_path, rel))
        stats = {"numRecords": data.num_rows,
                 "minValues": {physical[n]: pa.compute.min(data[n]).as_py() for n in data.column_names},
                 "maxValues": {physical[n]: pa.compute.max(data[n]).as_py() for n in data.column_names},
                 "nullCount": {physical[n]: data[n].null_count for n in data.column_names}}
        adds.append({"add": {"path": rel, "partitionValues": {physical[partition]: value}, "size": os.path.getsize(os.path.join(table_path, rel)),
                             "modificationTime": 1700000000000, "dataChange": True, "stats": json.dumps(stats)}})
    metadata = {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}}, "schemaString": json.dumps(schema),
                             "partitionColumns": [partition],
                             "configuration": {"delta.columnMapping.mode": mode, "delta.columnMapping.maxColumnId": str(len(ids))},
                             "createdTime": 1700000000000}}
    commit(table_path, 0, [{"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}}, metadata] + adds)
    return physical, schema


def rename_column(table_path, version, schema, old, new):
    """A metadata-only commit renaming a column (column mapping keeps the physical name)."""
    meta = [a for a in log_actions(table_path, 0) if "metaData" in a][0]["metaData"]
    for f in schema["fields"]:
        if f["name"] == old:
            f["name"] = new
    meta = dict(meta, schemaString=json.dumps(schema))
    commit(table_path, version, [{"metaData": meta}])
