"""``pyramidpose weights list|download NAME [--dir D]``: the official ViTPose checkpoints."""

from __future__ import annotations

import argparse
import json


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _list(as_json: bool) -> int:
    from pyramidpose.models.official import OFFICIAL_CHECKPOINTS

    if as_json:
        rows = [
            {
                "name": c.name,
                "description": c.description,
                "layout": c.layout,
                "source": c.source,
                "files": [{"filename": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size} for f in c.files],
            }
            for c in OFFICIAL_CHECKPOINTS.values()
        ]
        print(json.dumps(rows, indent=2))
        return 0
    print("| name | format | size | sha256 | URL | description |")
    print("| --- | --- | --- | --- | --- | --- |")
    for c in OFFICIAL_CHECKPOINTS.values():
        main = c.files[-1]  # the weights file (HF layout: model.safetensors)
        sha = main.sha256 or "unknown (not published)"
        fmt = "official .pth" if c.layout == "official" else "HF dir"
        print(f"| {c.name} | {fmt} | {_human(c.size)} | {sha} | {main.url} | {c.description} |")
    print("\nDownload with: pyramidpose weights download NAME [--dir DIR]; load with pyramidpose.load_model(PATH).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pyramidpose weights", description="List or download the official ViTPose checkpoints."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p_list = sub.add_parser("list", help="table of the official checkpoints (name, URL, sha256, size)")
    p_list.add_argument("--json", action="store_true", help="print the table as JSON")
    p_dl = sub.add_parser("download", help="download one checkpoint (resumable, hash-checked)")
    p_dl.add_argument("name", help="checkpoint name from 'pyramidpose weights list'")
    p_dl.add_argument("--dir", default=None, help="target directory (default ~/.cache/pyramidpose/weights)")
    p_dl.add_argument("--retries", type=int, default=3, help="automatic resumes after a dropped connection")
    p_dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.action == "list":
        return _list(args.json)
    from pyramidpose.models.official import download

    path = download(args.name, args.dir, retries=args.retries, progress=not args.no_progress)
    print(f"{args.name}: {path}")
    print(f"use it with: pyramidpose predict --weights {path} ...")
    return 0
