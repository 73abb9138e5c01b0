"""``pyramidpose weights list|download NAME [--dir D]``: the official ViTPose / ViTPose+ checkpoints."""

from __future__ import annotations

import json

from pyramidpose.commands._args import ArgumentParser, nonneg_int


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _list(as_json: bool) -> int:
    from pyramidpose.models.official import OFFICIAL_CHECKPOINTS, cached_path

    rows = []
    for c in OFFICIAL_CHECKPOINTS.values():
        cached = cached_path(c)
        rows.append((c, cached))
    if as_json:
        out = [
            {
                "name": c.name,
                "description": c.description,
                "layout": c.layout,
                "source": c.source,
                "by_hand": c.manual,
                "cached": str(cached) if cached else None,
                "files": [{"filename": f.filename, "url": f.url, "sha256": f.sha256, "size": f.size} for f in c.files],
            }
            for c, cached in rows
        ]
        print(json.dumps(out, indent=2))
        return 0
    print("| name | cached | format | size | sha256 | source | description |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c, cached in rows:
        main = c.files[-1]  # the weights file (HF layout: model.safetensors)
        sha = main.sha256 or "unknown (not published)"
        fmt = "official .pth" if c.layout == "official" else "HF dir"
        where = f"by hand: {main.url}" if c.manual else main.url
        print(f"| {c.name} | {'yes' if cached else 'no'} | {fmt} | {_human(c.size)} | {sha} | {where} | {c.description} |")
    print(
        "\nUse a name directly (fetched into the Hugging Face cache on first use; HF_HUB_OFFLINE and HF_ENDPOINT "
        "are honoured): pyramidpose predict --weights vitpose-b ...; pyramidpose.Pose('vitpose-b'). "
        "'by hand' models are published only on OneDrive: download them yourself and pass the path."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="pyramidpose weights", description="List or download the official ViTPose checkpoints."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p_list = sub.add_parser("list", help="table of the official checkpoints (name, cached, URL, sha256, size)")
    p_list.add_argument("--json", action="store_true", help="print the table as JSON")
    p_dl = sub.add_parser("download", help="download one checkpoint (resumable, hash-checked)")
    p_dl.add_argument("name", help="checkpoint name from 'pyramidpose weights list'")
    p_dl.add_argument("--dir", default=None, help="target directory (default: the Hugging Face cache)")
    p_dl.add_argument("--retries", type=nonneg_int, default=3, help="automatic resumes after a dropped connection")
    p_dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.action == "list":
        return _list(args.json)
    from pyramidpose.models.official import download

    path = download(args.name, args.dir, retries=args.retries, progress=not args.no_progress)
    print(f"{args.name}: {path}")
    print(f"use it with: pyramidpose predict --weights {path} ...")
    return 0
