"""The committed protobuf code under helpdesk/v1 is what `make proto` makes from proto/."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
PACKAGE = Path("helpdesk") / "v1"
STALE = "generated code is stale: run `make proto`"
# The plugins `make proto` runs, each writing into the output root.
OUTPUTS = ("python", "mypy", "grpc_python", "mypy_grpc")
GENERATED = re.compile(r".+_pb2(_grpc)?\.pyi?")


def protos() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE).glob("*.proto"))


def generate(out: Path) -> None:
    """The Makefile's `proto` command, writing under ``out`` instead of the repository."""
    bin_dir = Path(sys.executable).parent
    for plugin in ("protoc-gen-mypy", "protoc-gen-mypy_grpc"):
        if shutil.which(plugin, path=str(bin_dir)) is None:
            pytest.fail(f"{plugin} is not next to {sys.executable}: pip install -e '.[dev]'")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", "proto"]
    cmd += [f"--{kind}_out={out}" for kind in OUTPUTS]
    cmd += [str(p.relative_to(REPO)) for p in protos()]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"protoc failed:\n{done.stderr}"


def generated_files(root: Path) -> set[str]:
    return {p.name for p in (root / PACKAGE).iterdir() if GENERATED.fullmatch(p.name)}


def stale_files(fresh_root: Path, committed_root: Path) -> list[str]:
    """Paths (relative to the repository) of generated files that differ, are missing or
    have no .proto any more."""
    fresh, committed = generated_files(fresh_root), generated_files(committed_root)
    problems = [f"{PACKAGE / name} (missing)" for name in sorted(fresh - committed)]
    problems += [f"{PACKAGE / name} (no .proto makes it)" for name in sorted(committed - fresh)]
    problems += [
        f"{PACKAGE / name} (differs)"
        for name in sorted(fresh & committed)
        if not filecmp.cmp(
            fresh_root / PACKAGE / name, committed_root / PACKAGE / name, shallow=False
        )
    ]
    return problems


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("proto-out")
    generate(out)
    return out


def test_generated_code_is_up_to_date(fresh: Path) -> None:
    problems = stale_files(fresh, REPO)
    assert not problems, f"{STALE}: " + ", ".join(problems)


def test_every_proto_has_generated_code() -> None:
    assert protos(), f"no .proto under {PROTO_ROOT / PACKAGE}"
    committed = generated_files(REPO)
    missing = [
        f"{PACKAGE / (p.stem + suffix)}"
        for p in protos()
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
        if p.stem + suffix not in committed
    ]
    assert not missing, f"{STALE}: missing " + ", ".join(missing)


def test_this_test_runs_the_makefile_command() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^proto:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no `proto` target"
    body = recipe.group(1).replace("\\\n", " ")
    assert set(re.findall(r"--(\w+)_out=", body)) == set(OUTPUTS)
    assert "-I proto" in body and "proto/helpdesk/v1/*.proto" in body


def test_stale_check_names_changed_missing_and_orphan_files(fresh: Path, tmp_path: Path) -> None:
    # The check itself must fail when it should: a copy of fresh output, then tampered with.
    shutil.copytree(fresh / PACKAGE, tmp_path / PACKAGE)
    copy = tmp_path / PACKAGE
    (copy / "common_pb2.py").write_text((copy / "common_pb2.py").read_text() + "# edited\n")
    (copy / "tickets_pb2_grpc.pyi").unlink()
    (copy / "old_pb2.py").write_text("")
    (copy / "__init__.py").write_text("")  # not generated: ignored
    assert stale_files(fresh, tmp_path) == [
        "helpdesk/v1/tickets_pb2_grpc.pyi (missing)",
        "helpdesk/v1/old_pb2.py (no .proto makes it)",
        "helpdesk/v1/common_pb2.py (differs)",
    ]
