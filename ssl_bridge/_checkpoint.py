"""Loading a :class:`~ssl_bridge.GMMPrototypes` checkpoint all or nothing: every key,
shape, range and value is checked before anything changes, and the loaded buffers are
built as new tensors, swapped in at once by the module."""

from __future__ import annotations

import torch
from torch import Tensor

from online_gmm import core

from . import _random, _state

_FLOAT_STATE = ("weights", "means", "covariances", "precisions_cholesky", "mass", "nu",
                "moment", "tied_mass")
_COUNTERS = ("step", "n_samples_seen", "n_reseeded")
_WARMUP = (*_state.WARMUP_BUFFERS, "warmup_progress")


def warmup_cap(module) -> int:
    """The most rows this module's warm-up buffers (its ``warmup_size``)."""
    warmup = core.start_warmup(module.warmup_size, module.warmup_restarts,
                               module.n_prototypes, module.dim, 4, refine=False)
    return 0 if warmup is None else warmup.capacity


def load(module, state_dict, prefix: str, strict: bool, missing_keys: list,
         unexpected_keys: list, error_msgs: list) -> None:
    """``GMMPrototypes._load_from_state_dict``: :func:`checked_buffers`, then every buffer
    swapped for its loaded value at once (or nothing changed, the problems reported)."""
    with module._lock:
        new, problems, missing, unexpected = checked_buffers(module, state_dict, prefix,
                                                             strict)
        missing_keys.extend(missing)
        unexpected_keys.extend(unexpected)
        if problems or missing or (strict and unexpected):
            if problems:
                error_msgs.append(
                    "GMMPrototypes was not changed: the checkpoint does not fit (another "
                    "n_prototypes, dim or covariance_type?): " + "; ".join(problems))
            return
        module._buffers.update(new)
        module._refresh_host()  # (read the loaded buffers now, not in a compiled call)


def checked_buffers(module, state_dict, prefix: str,
                    strict: bool) -> tuple[dict[str, Tensor], list, list, list]:
    """``(new_buffers, problems, missing_keys, unexpected_keys)`` of a checkpoint for
    ``module``; ``new_buffers`` (the loaded values on the module's device, as new tensors)
    is to be committed only if the rest is empty (``missing``/``unexpected`` only matter
    when ``strict``). A checkpoint without the warm-up's buffers (from before it existed)
    loads with the warm-up over."""
    own = {n: b for n, b in module._buffers.items()
           if b is not None and n not in module._non_persistent_buffers_set}
    given = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    unexpected = [prefix + k for k in given if k not in own]
    if not any(name in given for name in _WARMUP):
        given = {**given, **_warmup_done(module)}
    missing = [prefix + n for n in own if n not in given]
    problems = [f"{prefix}{n}: {type(given[n]).__name__}, not a tensor"
                for n in own if n in given and not isinstance(given[n], Tensor)]
    if problems or missing:
        return {}, problems, missing, unexpected
    for name in own:
        if name in _WARMUP or name == "rng_state":
            continue
        value = given[name]
        if tuple(value.shape) != tuple(own[name].shape):
            problems.append(f"{prefix}{name}: {tuple(value.shape)} in the checkpoint, "
                            f"{tuple(own[name].shape)} here")
    problems += _warmup_problems(module, given, prefix)
    try:  # (a generator's state, or a legacy RandomState's, as this device's generator's)
        rng = _random.state_for(module.device, given["rng_state"])
    except ValueError as e:
        problems.append(f"{prefix}rng_state: {e}")
    if not problems:
        problems += _value_problems(given, prefix)
    if problems:
        return {}, problems, missing, unexpected
    new = {}
    for name, buf in own.items():
        value = rng if name == "rng_state" else given[name].detach()
        dtype = value.dtype if name in (*_state.WARMUP_BUFFERS, "rng_state") else buf.dtype
        new[name] = value.to(device=buf.device, dtype=dtype, copy=True)
    return new, problems, missing, unexpected


def _warmup_done(module) -> dict[str, Tensor]:
    return {
        "warmup_rows": torch.zeros((0, module.dim), dtype=torch.float32),
        "warmup_weights": torch.zeros((0,), dtype=torch.float32),
        "warmup_progress": torch.tensor([_state.DONE, 0, 0, 0, 0]),
    }


def _warmup_problems(module, given, prefix: str) -> list[str]:
    rows, weights, progress = (given[n] for n in _WARMUP)
    if rows.ndim != 2 or rows.shape[1] != module.dim or not rows.is_floating_point():
        return [f"{prefix}warmup_rows: {tuple(rows.shape)} {rows.dtype} in the checkpoint, "
                f"(n, {module.dim}) floating here"]
    if weights.shape != rows.shape[:1]:
        return [f"{prefix}warmup_weights: {tuple(weights.shape)} for {rows.shape[0]} rows"]
    if progress.shape != (len(_state.PROGRESS_FIELDS),) or progress.is_floating_point():
        return [f"{prefix}warmup_progress: {tuple(progress.shape)} {progress.dtype}, "
                f"expected ({len(_state.PROGRESS_FIELDS)},) integers"]
    phase, size, limit, refining, n_rows = (int(v) for v in progress)
    cap = warmup_cap(module)
    held = rows.shape[0]
    if not (_state.NOT_STARTED <= phase <= _state.DONE and 0 <= size <= cap
            and 0 <= limit <= cap and refining in (0, 1) and 0 <= n_rows <= held
            and held <= max(size, limit)):
        return [f"{prefix}warmup_progress: {progress.tolist()} does not fit {held} buffered "
                f"rows and this module's warm-up of at most {cap} rows"]
    return []


def _value_problems(given, prefix: str) -> list[str]:
    """NaN or inf in the state or the buffered rows, negative weights or counts."""
    problems = [f"{prefix}{n}: NaN or inf" for n in (*_FLOAT_STATE, "warmup_rows",
                                                     "warmup_weights")
                if given[n].is_floating_point() and not bool(torch.isfinite(given[n]).all())]
    problems += [f"{prefix}{n}: negative" for n in ("weights", "mass", "nu", "warmup_weights",
                                                    *_COUNTERS)
                 if bool((given[n] < 0).any())]
    return problems
