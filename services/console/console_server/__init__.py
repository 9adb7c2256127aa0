"""console service: FastAPI control console over the pipeline's gRPC API."""
