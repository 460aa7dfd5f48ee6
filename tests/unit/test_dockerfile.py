"""The image's Dockerfile, checked statically (no Docker daemon here): multi-stage, the final
stage without build tools, running as the unprivileged user the Helm chart expects."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

from tests.unit.chart_support import ROOT, chart, config_data, render, value_set

DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = re.compile(
    r"\b(apt-get|apt|apk|dnf|yum|pip|gcc|cc|make|build-essential|cargo|rustc)\b"
)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def _stages() -> list[Stage]:
    stages: list[Stage] = []
    for keyword, rest in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert match, rest
            stages.append(Stage(match[1], match[2]))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return stages


def test_the_image_is_built_in_stages_and_the_final_one_only_copies() -> None:
    stages = _stages()
    assert len(stages) >= 2
    build, final = stages[0], stages[-1]
    assert build.name and build.base == final.base
    assert any(rest.startswith(f"--from={build.name} ") for rest in final.args("COPY"))
    # build tools live in the build stage only
    assert any(BUILD_TOOLS.search(run) for run in build.args("RUN"))
    for run in final.args("RUN"):
        assert not BUILD_TOOLS.search(run), run
    for copy in final.args("COPY"):
        assert copy.startswith("--from="), f"the final stage copies sources: {copy}"


def test_the_final_stage_runs_as_the_unprivileged_user_of_the_chart() -> None:
    final = _stages()[-1]
    users = final.args("USER")
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    # numeric, or Kubernetes cannot check runAsNonRoot
    assert uid.isdigit() and int(uid) > 0
    assert gid.isdigit() and int(gid) > 0
    # and after every instruction that needs root
    last_user = max(i for i, (kw, _) in enumerate(final.instructions) if kw == "USER")
    assert all(kw != "RUN" for kw, _ in final.instructions[last_user:])
    security = chart().merge_values(value_set("defaults"))["podSecurityContext"]
    assert (int(uid), int(gid)) == (security["runAsUser"], security["runAsGroup"])


def test_the_image_runs_entsync_with_the_chart_s_state_dir() -> None:
    final = _stages()[-1]
    assert final.args("ENTRYPOINT") == ['["entsync"]']
    env = " ".join(final.args("ENV"))
    state_dir = config_data(render(value_set("defaults")))["ENTSYNC_STATE_DIR"]
    assert f"ENTSYNC_STATE_DIR={state_dir}" in env
    assert final.args("WORKDIR") == [state_dir]


def test_the_build_copies_every_package_and_the_context_keeps_them() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    copied = {
        source
        for rest in _stages()[0].args("COPY")
        for source in rest.split()[:-1]  # the last word is the destination
        if not source.startswith("--")
    }
    assert packages | {"pyproject.toml", "README.md"} <= copied
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    assert not (packages | {"pyproject.toml", "README.md"}) & ignored
    for name in packages:
        assert (ROOT / name).is_dir()
