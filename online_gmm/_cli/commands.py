"""The commands of ``online-gmm``: ``demo``, ``fit``, ``partial-fit``, ``predict``,
``score``, ``sample`` and ``diagnose``, each a ``cmd_*`` function of the parsed arguments
returning the exit status (the parser is in :mod:`online_gmm._cli.main`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io.file_rows import FileRows
from .._io.readers import count_rows, iter_batches, load_matrix
from .._io.sources import DataError, Source, source_names
from .._io.writers import ArrayWriter, writing
from .files import (
    _check_outputs,
    _check_rereadable,
    _check_writable,
    _load_model,
    _read_options,
    _save_model,
    _sources,
    _writer,
)
from .options import _estimator_from
from .output import EXIT_OK, Progress, UsageError, _notice, _say, _status_enabled

#: File extensions read as data (a matrix) by ``diagnose``; anything else is a model.
_MATRIX_EXTENSIONS = (".npy", ".npz", ".csv", ".tsv", ".txt")

#: Target size of one inference batch (``predict``, ``score``) when --batch-size is not given.
_INFERENCE_BATCH_BYTES = 64 << 20

#: Rows drawn per call by ``sample``.
_SAMPLE_CHUNK = 65536


def _n_features(model: Any) -> int:
    return int(model.n_features_in_)


def _inference_batch(args: argparse.Namespace, model: Any) -> int:
    if args.batch_size is not None:
        return args.batch_size
    return int(np.clip(_INFERENCE_BATCH_BYTES // (8 * max(_n_features(model), 1)), 256, 65536))


def _stream_into(
    model: Any,
    args: argparse.Namespace,
    sources: Sequence[Source],
    batch_size: int,
    epochs: int,
) -> tuple[int, int]:
    """``epochs`` passes of ``partial_fit`` over the sources; returns (samples, steps)."""
    _check_rereadable(sources, epochs)
    opts = _read_options(args, batch_size)
    n_features = getattr(model, "n_features_in_", None)  # a saved model checks every source
    enabled = _status_enabled(args)
    per_epoch = count_rows(sources, opts) if enabled else None
    progress = Progress(enabled, total=per_epoch * epochs if per_epoch else None)
    n = steps = 0
    try:
        for epoch in range(1, epochs + 1):
            note = f"epoch {epoch}/{epochs}" if epochs > 1 else ""
            for batch in iter_batches(sources, batch_size, opts, n_features):
                model.partial_fit(batch)
                n += batch.shape[0]
                steps += 1
                progress.update(batch.shape[0], note)
            if n == 0:
                raise DataError(f"no data: {source_names(sources)} holds no row")
    finally:
        progress.close()
    return n, steps


def _rate(n: int, seconds: float) -> str:
    return f"{n:,} samples in {seconds:.2f} s ({n / max(seconds, 1e-9):,.0f} samples/s)"


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: the built-in demo (:func:`online_gmm._cli.demo.run_demo`)."""
    from .demo import run_demo

    run_demo()
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    """``fit``: a new model from DATA, saved to ``--output``."""
    if args.converge and args.epochs is not None:
        raise UsageError("--epochs asks for online passes; --converge for EM until "
                         "--tol/--max-iter")
    _check_integer_options(args)
    model = _estimator_from(args)
    _check_writable(args.output)
    sources = _sources(args, args.data)
    _check_outputs({"-o": args.output}, {"DATA": [s.name for s in sources]})
    _check_rereadable(sources, args.epochs or 1)
    t0 = time.perf_counter()
    read_once = any(s.read_once for s in sources)
    if args.epochs is not None or (read_once and not args.converge):
        if args.epochs is None:
            _notice(args, "fit: DATA can be read only once (standard input, a pipe): one "
                 "online pass (partial_fit) instead of batch EM's passes")
        n, steps = _stream_into(model, args, sources, model.batch_size, args.epochs or 1)
        how = f"{steps} online steps"
    else:  # batch EM: DATA in memory (--converge), or passes over the files (out of core)
        data = (load_matrix(sources, _read_options(args, 65536)) if args.converge
                else FileRows(sources, _read_options(args, model.batch_size), model.batch_size))
        n = data.shape[0] if args.converge else data.n_samples
        model.fit(data)
        how = f"{model.n_iter_} EM iterations, converged: {model.converged_}"
    _save_model(model, args.output, include_warmup_buffer=args.include_warmup_buffer)
    _say(args, f"fit {_rate(n, time.perf_counter() - t0)}, {how} -> {args.output}")
    return EXIT_OK


def _check_integer_options(args: argparse.Namespace) -> None:
    """Integer estimator options NumPy can use (a usage error otherwise, before any work): a
    count is at most the largest array index (``n_components`` a count of float64 weights),
    a seed in [0, 2**32 - 1]."""
    from .options import _hyper_parameters

    largest = int(np.iinfo(np.intp).max)
    for flags, param, kind, _ in _hyper_parameters():
        value = getattr(args, param, None)
        if kind is not int or value is None:
            continue
        option = "/".join(flags)
        if param == "random_state":
            if not 0 <= value <= 2**32 - 1:
                raise UsageError(f"{option} must be in [0, {2**32 - 1}]; got {value}")
            continue
        # a component is at least 64 bytes of state (weights, a mean, a variance, ... of
        # one feature): K of them must fit in an array and in this machine's memory
        high = min(largest, _memory_bytes()) // 64 if param == "n_components" else largest
        if value > high:
            why = " for this machine's memory" if param == "n_components" else ""
            raise UsageError(f"{option} is too large{why}: at most {high}; got {value}")


def _memory_bytes() -> int:
    """This machine's physical memory (the largest array index where it is unknown)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return int(np.iinfo(np.intp).max)


def cmd_partial_fit(args: argparse.Namespace) -> int:
    """``partial-fit``: continue a saved model on DATA, in place or to ``--output``."""
    from .files import _save_format

    output = args.output or args.model
    _check_writable(output)
    model = _load_model(args.model, args.trusted)
    save_format = _save_format(model, output)
    sources = _sources(args, args.data)
    _check_outputs({"-o" if args.output else "MODEL": output},
                   {"DATA": [s.name for s in sources]})
    _check_rereadable(sources, args.epochs)
    batch_size = args.batch_size or int(model.batch_size)
    t0 = time.perf_counter()
    n, steps = _stream_into(model, args, sources, batch_size, args.epochs)
    _save_model(model, output, save_format, include_warmup_buffer=args.include_warmup_buffer)
    _say(
        args,
        f"partial-fit {_rate(n, time.perf_counter() - t0)}, {steps} steps "
        f"(model: {model.n_samples_seen_:,} samples seen) -> {output}",
    )
    return EXIT_OK


def _infer(
    args: argparse.Namespace,
    method: Callable[[Any, np.ndarray], np.ndarray],
    writer: ArrayWriter | None,
) -> tuple[int, float]:
    """Run ``method(model, batch)`` over DATA, writing each result; (n, sum of results)."""
    model = _load_model(args.model, args.trusted)
    sources = _sources(args, args.data)
    batch_size = _inference_batch(args, model)
    progress = Progress(_status_enabled(args))
    n, total = 0, 0.0
    try:
        with writing(writer):  # (an exception or a signal drops the partial output)
            opts = _read_options(args, batch_size)
            for batch in iter_batches(sources, batch_size, opts, _n_features(model)):
                out = np.asarray(method(model, batch))
                if writer is not None:
                    writer.write(out)
                n += batch.shape[0]
                total += float(np.sum(out, dtype=np.float64))
                progress.update(batch.shape[0])
            if n == 0:
                raise DataError(f"no data: {source_names(sources)} holds no row")
            if writer is not None:
                writer.close()
    finally:
        progress.close()
    return n, total


def _check_inference_output(args: argparse.Namespace) -> None:
    try:
        data = [s.name for s in _sources(args, args.data)]
    except (DataError, UsageError):  # reported once the model is loaded, as before
        data = list(args.data)
    _check_outputs({"-o": args.output}, {"MODEL": [args.model], "DATA": data})


def cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: the component of each row (or its posterior with ``--proba``)."""
    _check_inference_output(args)
    writer = _writer(args.output)
    if args.proba:
        _infer(args, lambda m, X: m.predict_proba(X), writer)
    else:
        _infer(args, lambda m, X: m.predict(X), writer)
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    """``score``: the mean log-likelihood of DATA (per row with ``--output``)."""
    _check_inference_output(args)
    writer = _writer(args.output) if args.output is not None else None
    n, total = _infer(args, lambda m, X: m.score_samples(X), writer)
    if args.output != "-":
        print(repr(total / n))
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    """``sample``: draw rows from the mixture."""
    if args.n_samples < 1:
        raise UsageError(f"--n-samples must be at least 1; got {args.n_samples}")
    _check_outputs({"-o": args.output, "--labels": args.labels}, {"MODEL": [args.model]})
    writer = _writer(args.output)
    labels = None
    if args.labels is not None:
        labels = _writer(args.labels)
        if args.labels == "-" and (args.output or "-") == "-":
            raise UsageError("--labels and the samples cannot both go to standard output")
    if args.random_state is not None and not 0 <= args.random_state <= 2**32 - 1:
        raise UsageError(f"--random-state must be in [0, {2**32 - 1}]; got {args.random_state}")
    model = _load_model(args.model, args.trusted)
    seed = args.random_state
    if seed is None and isinstance(model.random_state, (int, np.integer)):
        seed = int(model.random_state)
    model.set_params(random_state=np.random.RandomState(seed))
    with writing(writer, labels):
        left = args.n_samples
        while left > 0:
            X, y = model.sample(min(left, _SAMPLE_CHUNK))
            writer.write(X)
            if labels is not None:
                labels.write(np.asarray(y, dtype=np.int64))
            left -= X.shape[0]
        writer.close()
        if labels is not None:
            labels.close()
    return EXIT_OK


def _read_vector(path: str) -> np.ndarray:
    """A 1-D weight vector from ``.npy`` or text (one value per line or row)."""
    if Path(path).suffix.lower() == ".npy":
        try:
            w = np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as exc:
            detail = " ".join(str(exc).split()) or "the file is empty"
            raise DataError(f"{path}: not a readable numeric .npy file ({detail})") from None
    else:
        delimiter = "," if path.endswith(".csv") else None
        try:
            w = np.loadtxt(path, delimiter=delimiter, ndmin=1, encoding="utf-8-sig")
        except ValueError as exc:
            raise DataError(f"{path}: not a list of numbers ({exc})") from None
    return np.asarray(w).reshape(-1) if np.ndim(w) == 2 and 1 in np.shape(w) else w


def cmd_diagnose(args: argparse.Namespace) -> int:
    """``diagnose``: the prototype-collapse report of a model's means or of a matrix."""
    from .._io.persistence import is_model_archive
    from ..diagnostics import collapse_report, format_report

    target = args.target
    is_matrix = (
        target == "-"
        or args.format is not None
        or (Path(target).suffix.lower() in _MATRIX_EXTENSIONS and not is_model_archive(target))
        or Path(target).is_dir()
    )
    if is_matrix:
        C = load_matrix(_sources(args, [target], data=False), _read_options(args, 65536))
        weights = _read_vector(args.weights) if args.weights else None
    else:
        model = _load_model(target, args.trusted)
        C = np.asarray(model.means_)
        weights = _read_vector(args.weights) if args.weights else np.asarray(model.weights_)
    report = collapse_report(C, weights, eps=args.eps)
    if args.json:
        data = dict(report)
        data["unique"] = {str(k): v for k, v in report["unique"].items()}
        data["unique_fraction"] = {str(k): v for k, v in report["unique_fraction"].items()}
        print(json.dumps(data))
    else:
        print(format_report(report))
    return EXIT_OK
