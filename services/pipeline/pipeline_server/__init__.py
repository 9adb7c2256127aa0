"""pipeline service: serves one continuous-gtfs pipeline over gRPC (pipeline.v1)."""
