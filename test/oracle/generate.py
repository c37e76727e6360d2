"""Regenerates the oracle fixtures that the TypeScript tests compare against.

Every `test/oracle/fixtures_<name>.py` in this folder is a generator. Each is run with the pinned `.venv`
Python (torch/diffusers/transformers: the reference implementations) and writes into
`test/fixtures/generated/<name>/`. A generator runs again only when its own source, one of the inputs it
declares, or the pinned requirements changed, so a second `npm test` skips this step in a second.

A generator module defines:
    INPUTS: list[str]            extra files (relative to the repo root) whose change invalidates it
    def generate(out_dir: pathlib.Path) -> None
"""
from __future__ import annotations

import hashlib
import importlib.util
import pathlib
import shutil
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
OUT = ROOT / "test" / "fixtures" / "generated"


def digest(paths: list[pathlib.Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(p.read_bytes() if p.exists() else b"<missing>")
    return h.hexdigest()[:16]


def main() -> int:
    only = set(sys.argv[1:])
    generators = sorted(HERE.glob("fixtures_*.py"))
    for path in generators:
        name = path.stem[len("fixtures_"):]
        if only and name not in only:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(HERE))
        spec.loader.exec_module(module)
        inputs = [path, ROOT / "scripts" / "oracle-requirements.txt"] + [ROOT / p for p in getattr(module, "INPUTS", [])]
        stamp = digest(inputs)
        target = OUT / name
        stamp_file = target / ".stamp"
        if stamp_file.exists() and stamp_file.read_text() == stamp:
            continue
        started = time.time()
        tmp = OUT / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        module.generate(tmp)
        (tmp / ".stamp").write_text(stamp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        print(f"oracle: generated {name} fixtures in {time.time() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
