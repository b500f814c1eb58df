"""Known vulnerabilities in the pinned packages: pip-audit, then PyPI's own record as a fallback.

    .venv/bin/python scripts/audit_dependencies.py      (scripts/test runs it before the tests)

pip-audit looks each pinned version up on PyPI's per-release JSON. Where that lookup is not
available (behind some package mirrors it answers 404, and pip-audit reports the package as
"not found"), the project's JSON still carries the advisories of its newest release: for a pin
that *is* the newest release, that is exactly the pinned version's record. A pin older than the
newest release cannot be audited that way and is listed as such.

Exit status 1 when any pinned package has a known vulnerability; 0 otherwise (with a warning
when some or all could not be checked, e.g. without network).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "requirements" / "app.txt", ROOT / "requirements" / "test.txt"]


def pins() -> dict[str, str]:
    found = {}
    for path in FILES:
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


def pip_audit() -> dict[str, dict]:
    """{package: {"vulns": [...]} or {"skip": reason}} as pip-audit saw them."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "--progress-spinner", "off",
                "--format", "json", "--output", out.name]
        for path in FILES:
            args += ["-r", str(path)]
        subprocess.run(args, capture_output=True, text=True, timeout=600)
        try:
            report = json.loads(Path(out.name).read_text() or "{}")
        except json.JSONDecodeError:
            report = {}
    result = {}
    for dep in report.get("dependencies", []):
        name = dep["name"].lower().replace("_", "-")
        result[name] = {"skip": dep["skip_reason"]} if "skip_reason" in dep else {"vulns": dep.get("vulns", [])}
    return result


def pypi_record(name: str, version: str) -> tuple[str, list]:
    """("audited", advisories) when `version` is PyPI's newest release; ("older", []) or
    ("unreachable", []) otherwise."""
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=15) as response:
            data = json.load(response)
    except Exception:
        return "unreachable", []
    if data["info"]["version"] != version:
        return "older", []
    return "audited", [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]


def main() -> int:
    pinned = pins()
    seen = pip_audit()
    vulnerable, by_pip_audit, by_pypi, older, unreachable = {}, [], [], [], []
    rest = []
    for name, version in sorted(pinned.items()):
        entry = seen.get(name)
        if entry and "vulns" in entry:
            by_pip_audit.append(name)
            if entry["vulns"]:
                vulnerable[name] = [v["id"] for v in entry["vulns"]]
        else:
            rest.append((name, version))
    with ThreadPoolExecutor(max_workers=8) as pool:
        for (name, version), (state, advisories) in zip(rest, pool.map(lambda nv: pypi_record(*nv), rest)):
            if state == "audited":
                by_pypi.append(name)
                if advisories:
                    vulnerable[name] = [a.get("id", "?") for a in advisories]
            elif state == "older":
                older.append(f"{name}=={version}")
            else:
                unreachable.append(name)
    print(f"dependency audit: {len(pinned)} pinned packages; {len(by_pip_audit)} checked by pip-audit, "
          f"{len(by_pypi)} by PyPI's record of the pinned (newest) release")
    if older:
        print(f"  not checkable here (older than PyPI's newest release): {', '.join(older)}")
    if unreachable:
        print(f"  WARNING: no vulnerability data reachable for {len(unreachable)} packages: not checked")
    for name, ids in sorted(vulnerable.items()):
        print(f"  VULNERABLE: {name}=={pinned[name]}: {', '.join(ids)}")
    if vulnerable:
        return 1
    print("  no known vulnerability")
    return 0


if __name__ == "__main__":
    sys.exit(main())
