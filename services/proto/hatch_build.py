"""Generate the pipeline.v1 Python code from the .proto files at build time.

The generated code is never committed (copies drift): every build of this
package, editable (`uv sync`) or wheel (the images), writes gen/ afresh with the
grpcio-tools version pinned in pyproject.toml, so the stubs always match the
contract and the runtime floors in `dependencies`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ProtocHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        from grpc_tools import protoc  # the hook's own build dependency

        root = Path(self.root)
        gen = root / "gen"
        protos = sorted(str(p.relative_to(root)) for p in (root / "pipeline").rglob("*.proto"))
        shutil.rmtree(gen, ignore_errors=True)
        gen.mkdir()
        include = str(Path(protoc.__file__).parent / "_proto")
        args = ["protoc", f"-I{root}", f"-I{include}", f"--python_out={gen}", f"--pyi_out={gen}"]
        args += [f"--grpc_python_out={gen}", *(str(root / p) for p in protos)]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {protos}")
        for folder in [gen / "pipeline", *(p for p in (gen / "pipeline").rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
        (gen / "pipeline" / "py.typed").touch()
