"""The client interceptors: one object per call kind, each filed by grpc.aio
under its own kind and sharing one implementation."""

from __future__ import annotations

import grpc

from telemetry import Telemetry
from telemetry.grpc_aio_client import client_interceptors

KINDS = [
    (grpc.aio.UnaryUnaryClientInterceptor, "intercept_unary_unary"),
    (grpc.aio.UnaryStreamClientInterceptor, "intercept_unary_stream"),
    (grpc.aio.StreamUnaryClientInterceptor, "intercept_stream_unary"),
    (grpc.aio.StreamStreamClientInterceptor, "intercept_stream_stream"),
]


def test_one_interceptor_per_call_kind() -> None:
    interceptors = client_interceptors(Telemetry.noop())
    for interceptor, (interface, method) in zip(interceptors, KINDS, strict=True):
        # grpc.aio files an interceptor under the first interface it implements.
        assert [i for i, _ in KINDS if isinstance(interceptor, i)] == [interface]
        assert getattr(type(interceptor), method) is getattr(type(interceptors[0]), KINDS[0][1])
    assert len({id(i._shared) for i in interceptors}) == 1
