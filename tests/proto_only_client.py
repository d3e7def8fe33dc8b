"""A gRPC client built from the .proto alone (no thoughtbank import), run as a subprocess.

Usage: python proto_only_client.py GENERATED_DIR ADDRESS
Prints one JSON object with what each call returned.
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc

from thoughtbank.v1 import thought_templates_pb2 as pb2
from thoughtbank.v1 import thought_templates_pb2_grpc as pb2_grpc

channel = grpc.insecure_channel(sys.argv[2])
stub = pb2_grpc.ThoughtTemplateServiceStub(channel)
out = {}
request = pb2.RetrieveRequest(query="How many pens does Ana have left?", k=2)
reply = stub.Retrieve(request, timeout=30)
out["retrieve"] = [
    {"id": h.template.id, "task": h.template.task, "score": h.score} for h in reply.hits
]
out["index_version"] = reply.index_version
for name, request in (
    ("empty_query", pb2.RetrieveRequest(query="", k=3)),
    ("k_zero", pb2.RetrieveRequest(query="hello", k=0)),
):
    try:
        stub.Retrieve(request, timeout=30)
        out[name] = "OK"
    except grpc.RpcError as exc:
        out[name] = [exc.code().name, exc.details()]
print(json.dumps(out))
