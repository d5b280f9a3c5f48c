"""A setting that needs a package that is not installed is one config line naming the extra.

The forwarder is started as users start it (the console script, in a subprocess). The package
is made absent by a ``sitecustomize`` that refuses to import it, exactly as Python does when it
is not installed (``ModuleNotFoundError``); the rest of the environment is the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HIDER = """
import sys

class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Absent())
"""


def serve_without(
    tmp_path: Path, package: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    hider = tmp_path / "hide"
    hider.mkdir()
    (hider / "sitecustomize.py").write_text(textwrap.dedent(HIDER.format(names={package})))
    return subprocess.run(
        [sys.executable, "-m", "forwarder", "serve"],
        env={**os.environ, "PYTHONPATH": str(hider), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("package", "env", "key", "extra"),
    [
        ("redis", {"FORWARDER_STORAGE_URL": "redis://127.0.0.1:6379/15"}, "storage.url", "redis"),
        ("granian", {"FORWARDER_SERVER_SERVER": "granian"}, "server.server", "granian"),
    ],
)
def test_missing_optional_package_is_one_config_line_naming_the_extra(
    tmp_path: Path, package: str, env: dict[str, str], key: str, extra: str
) -> None:
    done = serve_without(tmp_path, package, env)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [
        f"forwarder: config error at {key}: "
        + ("Redis storage" if package == "redis" else "the granian server")
        + f" needs the {package!r} package, which is not installed: "
        f"pip install 'hubspot-forwarder[{extra}]'"
    ]
    assert not (tmp_path / "forwarder.db").exists()  # nothing started before the check


def test_storage_factory_names_the_extra_when_redis_is_absent(tmp_path: Path) -> None:
    # The library path (create_storage), not only the CLI, refuses with the same line.
    script = (
        "from forwarder.config import StorageSettings\n"
        "from forwarder.errors import ConfigError\n"
        "from forwarder.storage import create_storage\n"
        "try:\n"
        "    create_storage(StorageSettings(url='redis://127.0.0.1:6379/15'))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    hider = tmp_path / "hide"
    hider.mkdir()
    (hider / "sitecustomize.py").write_text(textwrap.dedent(HIDER.format(names={"redis"})))
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(hider)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "pip install 'hubspot-forwarder[redis]'" in done.stdout
