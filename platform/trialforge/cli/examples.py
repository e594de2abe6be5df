"""`trialforge init`: write an example spec, and the data it reads, to start from.

The examples are the repository's `jobs/`, which the distribution ships inside the package
(`trialforge/jobs`), like the dashboard's app (`trialforge/dashboards`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
import yaml

from trialforge.cli.common import out, user_errors
from trialforge.errors import TrialforgeError

DEFAULT_EXAMPLE = "cnn_digits"


def shipped(folder: str) -> Path:
    """A folder the distribution ships: inside the installed package, or at the top of the
    source tree (an editable install)."""
    package = Path(__file__).resolve().parents[1]
    inside = package / folder
    return inside if inside.is_dir() else package.parents[1] / folder


def examples() -> list[str]:
    """The example specs by name."""
    return sorted(path.stem for path in shipped("jobs").glob("*.yaml"))


@user_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Where to write it (created if missing).")] = (
        Path(".")),
    example: Annotated[
        str, typer.Option(help=f"Which example spec: {', '.join(examples())}.")
    ] = DEFAULT_EXAMPLE,
) -> None:
    """Write an example spec (and its data, if it reads any) to start from."""
    jobs = shipped("jobs")
    source = jobs / f"{example}.yaml"
    if not source.is_file():
        raise TrialforgeError(
            f"--example: no example {example!r}; choose one of {', '.join(examples())}")
    # An example's data path is relative to the folder above jobs/ ("jobs/data/...").
    data = yaml.safe_load(source.read_text()).get("data", {}).get("path")
    files = [(source, Path("jobs") / source.name)]
    if data:
        files.append((jobs / Path(data).relative_to("jobs"), Path(data)))
    existing = [str(folder / target) for _, target in files if (folder / target).exists()]
    if existing:
        verb = "exists" if len(existing) == 1 else "exist"
        raise TrialforgeError(f"{', '.join(existing)} already {verb}: choose another folder, "
                              "or move it away first")
    for origin, target in files:
        (folder / target).parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, folder / target)
        else:
            shutil.copy2(origin, folder / target)
    written = folder / "jobs" / source.name
    out.print(f"wrote {written}" + (f" and {folder / data}" if data else ""))
    out.print(f"run it: cd {folder} && trialforge sweep run jobs/{source.name}")
