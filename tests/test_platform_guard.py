"""`platform/` holds the package but must never shadow the stdlib module `platform`."""

import subprocess
import sys

from support import REPO


def test_platform_folder_is_not_a_package() -> None:
    assert (REPO / "platform" / "trialforge" / "__init__.py").is_file()
    assert not (REPO / "platform" / "__init__.py").exists(), (
        "platform/__init__.py shadows the stdlib module `platform`"
    )


def test_stdlib_platform_wins_from_the_repo_root() -> None:
    # Ray puts the working dir first on sys.path; `python -c` does the same with ''.
    code = (
        "import platform, sysconfig, torch, trialforge;"
        "print(platform.system());"
        "print(platform.__file__.startswith(sysconfig.get_paths()['stdlib']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    system, from_stdlib = done.stdout.split()
    assert system == "Linux"
    assert from_stdlib == "True"
