"""Generated gRPC code for ``thoughtbank.v1`` and the conversions between its messages and
the project's own types. Regenerate with ``python protos/generate.py``."""

from thoughtbank.protos.thoughtbank.v1 import thought_templates_pb2 as pb2
from thoughtbank.protos.thoughtbank.v1 import thought_templates_pb2_grpc as pb2_grpc

SERVICE_NAME = pb2.DESCRIPTOR.services_by_name["ThoughtTemplateService"].full_name

__all__ = ["SERVICE_NAME", "pb2", "pb2_grpc"]
