"""The two paths of :meth:`GMMPrototypes.update <ssl_bridge.GMMPrototypes.update>`: the
steady one (:func:`ssl_bridge.steady_step`, one read of its flags) and the general one
(seeding, the warm-up, ``torch.distributed``), the host's view of the buffers, the input
policy for NaN or inf rows and the commit. A mixin of :class:`~ssl_bridge.GMMPrototypes`."""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from online_gmm import core

from . import _distributed, _random, _state, _update

_STATE_FIELDS = core.STATE_FIELDS
#: The least working memory (MiB) an update's E-step chunks are planned with.
MIN_WORKING_MEMORY = 64.0
_NONFINITE_STATE = (
    "The update produced a non-finite state; the model was left unchanged. This usually "
    "means the data's scale overflows float arithmetic (rescale it) or reg_covar is too "
    "small."
)


class UpdatePaths:
    """Mixin: the machinery behind ``update`` (relies on the module's buffers, lock,
    configuration and ``_checked_input`` / ``_normalized`` / ``_state``)."""

    def _host(self) -> _update.HostState:
        """The host's view of the step counter and phases, for the current buffers: read
        from them again only when they were replaced or written in place other than by an
        update (which the buffers' identities and version counters tell, on the host)."""
        key, host = self._host_view
        if torch.compiler.is_compiling():  # (refreshed eagerly wherever buffers change)
            return host
        if not _update.same_buffers(key, self):
            return self._refresh_host()
        return host

    def _host_for_step(self) -> _update.HostState:
        """:meth:`_host` with whether this step seeds known: a flag the last step left
        deferred (``nonfinite="ignore"``) is taken now (by now normally long computed).
        Only an update asks it (``targets`` and ``forward`` never wait on it)."""
        host = self._host()
        if isinstance(host.seeding, _update.DeferredFlag):
            host = replace(host, seeding=host.seeding.value())
            self._host_view = (self._host_view[0], host)
        return host

    def _refresh_host(self) -> _update.HostState:
        """Read the buffers (host reads) into the host's view, under the lock."""
        if self.step.is_meta:  # (no data to read: read it when there is)
            self._host_view = (None, self._host_view[1])
            return self._host_view[1]
        with self._lock:
            key = _update.buffers_key(self)
            host = _update.host_state_of(self)
            self._host_view = (key, host)
        return host

    def _screen(self, x: Tensor, dist_on: bool):
        """``(x, w, n_bad, kept)``: the rows without NaN or inf (counted and dropped now, a host
        read) and their weights; ``nonfinite`` decides whether bad rows raise."""
        bad = ~_update.finite_rows(x)
        n_bad = int(bad.sum())
        any_bad = _distributed.any_rank(n_bad > 0) if dist_on else n_bad > 0
        if any_bad:
            self._refuse_or_warn(n_bad, x.shape[0], other_rank=not n_bad)
        if n_bad:
            x = x[~bad]
        return x, torch.ones(x.shape[0], dtype=x.dtype, device=x.device), n_bad, ~bad

    def _refuse_or_warn(self, n_bad: int, n_rows: int, other_rank: bool = False) -> None:
        if self.nonfinite == "ignore":
            return
        if self.nonfinite == "raise":
            raise ValueError(
                "teacher_embeddings contain NaN or inf"
                + (" on another rank" if other_rank else f" in {n_bad} rows")
                + "; the prototypes were not updated (pass nonfinite='skip' to drop such rows)."
            )
        if n_bad:
            warnings.warn(
                f"GMMPrototypes.update skipped {n_bad} of {n_rows} rows with NaN or inf.",
                RuntimeWarning,
                stacklevel=6,  # (the caller of ``update``, through torch.no_grad's wrapper)
            )

    def _update(self, teacher_embeddings: Tensor, return_targets: bool, temperature: float,
                balance: str | None, sinkhorn_iterations: int):
        if not isinstance(teacher_embeddings, Tensor):
            raise TypeError(
                "teacher_embeddings must be a torch.Tensor, got "
                f"{type(teacher_embeddings).__name__}."
            )
        x = self._checked_input(teacher_embeddings.detach(), "teacher_embeddings")
        host = self._host_for_step()
        dist_on = self._use_distributed()
        masked = None  # (under "ignore" on the device: the rows given weight 0)
        if host.warming or host.seeding is not False or dist_on or x.shape[0] == 0:
            info, logp, kept = self._general_update(x, host, dist_on, return_targets)
        elif self.nonfinite == "ignore":
            info, logp, masked = self._unchecked_update(x, host, return_targets)
            kept = None
        else:
            info, logp, kept = self._steady_update(x, host, return_targets)
        if not return_targets:
            return info
        if logp is not None:
            if masked is not None:  # (finite, and left out of the balancing)
                logp = logp.masked_fill(masked[:, None], 0.0)
            # the targets of the rows stepped on (skipped rows: NaN, not in the balancing)
            rows = _update.targets_from(logp, temperature, balance, sinkhorn_iterations,
                                        self._use_distributed(), excluded=masked)
            if masked is not None:
                return info, rows.masked_fill(masked[:, None], math.nan)
            if kept is None:
                return info, rows
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        q = torch.full((x.shape[0], self.n_prototypes), float("nan"), dtype=dtype,
                       device=self.device)
        if logp is not None:  # (None: nothing updated)
            q[kept] = rows
        return info, q

    def _run_steady_step(self, x: Tensor, host: _update.HostState, return_targets: bool):
        """:func:`steady_step` (compiled by :meth:`compile_step`) on the module's state:
        ``(new_state, flags, loglik, logp, temperature, eta, numba)``."""
        temperature, eta = self._schedules().at(host.step)
        state = self._state()
        numba = state.means is not self.means  # (the numba backend's NumPy views)
        logp = (torch.empty((x.shape[0], self.n_prototypes), dtype=x.dtype, device=x.device)
                if return_targets else None)
        step = _update.steady_step if numba or self._compiled is None else self._compiled
        new_state, flags, loglik = step(
            state, x, config=self.config, temperature=temperature, forgetting_rate=eta,
            redundancy=core.redundancy_due(host.step + 1, self.n_prototypes, self.dim),
            normalize=self.normalize, working_memory=self._working_memory(x),
            log_density_out=logp,
        )
        return new_state, flags, loglik, logp, temperature, eta, numba

    def _steady_update(self, x: Tensor, host: _update.HostState, return_targets: bool):
        """Every prototype seeded, the warm-up over, no process group: :func:`steady_step`
        and its flags read once."""
        new_state, flags, loglik, logp, temperature, eta, _ = self._run_steady_step(
            x, host, return_targets)
        n_bad, nonfinite, seed_next = flags.tolist()  # the one read
        kept = None
        if n_bad:
            self._refuse_or_warn(n_bad, x.shape[0])
            if n_bad == x.shape[0]:
                return self._no_update(n_bad), None, None
            kept = _update.finite_rows(x)  # (rows of weight 0 in the step)
            logp = None if logp is None else logp[kept]
        if nonfinite:
            raise FloatingPointError(_NONFINITE_STATE)
        new = _update.new_buffers(self, new_state, n_rows=x.shape[0] - n_bad, n_reseeded=0,
                                  rng=None)
        self._commit(new, host.after(warming=False, seeding=bool(seed_next),
                                     seeded_some=False))
        return self._info(loglik, temperature, eta, 0, 0, n_bad), logp, kept

    def _unchecked_update(self, x: Tensor, host: _update.HostState, return_targets: bool):
        """A steady update under ``nonfinite="ignore"``: the step's flags are acted on where
        they are, not read. A step that kept no row or whose new state is not finite is
        discarded on the device (every state buffer keeps its value; the step is still
        counted; its targets are NaN); whether the next step seeds goes to the host as a
        :class:`~ssl_bridge._update.DeferredFlag`. ``(info, logp, masked)``: ``masked``
        the rows whose targets are NaN (NaN or inf rows, weight 0 in the step), a device
        mask."""
        # a discarded step leaves the state as it was (no prototype dead: it was a steady
        # step's), but counts: the next step checks for duplicates if it is due to
        due = core.redundancy_due(host.step + 1, self.n_prototypes, self.dim)
        try:
            with np.errstate(all="ignore"):  # (silent: NumPy's overflows too, on CPU)
                new_state, flags, loglik, logp, temperature, eta, numba = (
                    self._run_steady_step(x, host, return_targets))
        except (FloatingPointError, ValueError) as exc:  # (the numba backend's checks)
            if not core.is_numerical_failure(exc):
                raise
            info = self._no_update(int((~_update.finite_rows(x)).sum()))
            self._count_step(host, seeding=due)
            return info, None, None
        n_bad, nonfinite, seed_next = flags.unbind()
        kept = x.shape[0] - n_bad
        ok = (kept > 0) & (nonfinite == 0)
        new = _update.new_buffers(self, new_state, n_rows=0, n_reseeded=0, rng=None)
        if numba:  # (host values: read at no cost, and no pass over the state)
            seeding: bool | _update.DeferredFlag = bool(seed_next) if bool(ok) else due
            new = new if bool(ok) else {"step": new["step"]}
        else:
            for name in _STATE_FIELDS:
                new[name] = torch.where(ok, new[name], self._buffers[name])
            seeding = self._deferred_flag().set(torch.where(ok, seed_next.bool(), due))
        new["n_samples_seen"] = self.n_samples_seen + torch.where(ok, kept, 0)
        self._commit(new, host.after(warming=False, seeding=seeding, seeded_some=False))
        info = self._info(loglik, temperature, eta, 0, 0, n_bad)
        info["updated"] = ok
        masked = (~_update.finite_rows(x) | ~ok) if return_targets else None
        return info, logp, masked

    def _deferred_flag(self) -> _update.DeferredFlag:
        """The module's :class:`~ssl_bridge._update.DeferredFlag`, for its device (made
        with the module, and again by a move: not during an update, unless the buffers were
        moved by hand)."""
        flag = self._seed_flag
        if flag.device != self.device:
            flag = self._seed_flag = _update.DeferredFlag(self.device)
        return flag

    def _general_update(self, x: Tensor, host: _update.HostState, dist_on: bool,
                        return_targets: bool):
        """Seeding, the warm-up or ``torch.distributed``: the core's step with the reads it
        needs (the bad rows counted and dropped first, the core's own seeding test; the
        generator rebuilt from the host's copy of its state), and the same one read of the
        new state's flags at the end. Under ``nonfinite="ignore"`` a step that fails
        numerically (flagged, or raised by the numba backend) is discarded and counted."""
        x, w, n_bad, kept = self._screen(x, dist_on)
        if x.shape[0] == 0 and not dist_on:
            info = self._no_update(n_bad)
            if n_bad and self.nonfinite == "ignore":
                self._count_step(host, seeding=None)
            return info, None, None
        x = self._normalized(x)
        X, w = core.host_view(x), core.host_view(w)
        backend = core.select_backend(X, defer_checks=True,
                                      working_memory=self._working_memory(x))
        xp = backend.xp
        ct, K = self.config.covariance_type, self.n_prototypes
        capture = _update.LogDensityCapture(X.shape[0], K) if return_targets else None
        hooks = core.Hooks(
            gather=_distributed.gather_batch if dist_on else None,
            reduce=(lambda s: _distributed.reduce_stats(s, ct, xp)) if dist_on else None,
            on_log_density=capture,
        )
        # (the generator of the module's device, from the host's copy of its state: no read)
        rng = _random.DeviceRandom(_random.generator(self.device, host.rng),
                                   host=isinstance(X, np.ndarray))
        warmup = (_state.warmup_of(self, x, self.warmup_restarts, self.warmup_size)
                  if host.warming else None)
        ignore = self.nonfinite == "ignore"
        try:
            try:
                with np.errstate(all="ignore") if ignore else contextlib.nullcontext():
                    new_state, info = core.advance(  # (seeding: known, or None: asked)
                        self._state(), X, w, config=self.config,
                        schedules=self._schedules(), step=host.step, rng=rng,
                        backend=backend, hooks=hooks, warmup=warmup, seeding=host.seeding,
                        host_weights=np.ones(X.shape[0]),  # (the screened rows' weights)
                    )
            except (FloatingPointError, ValueError) as exc:  # (the numba backend's checks)
                if not (ignore and core.is_numerical_failure(exc)):
                    raise
                nonfinite = True
            else:
                due = core.redundancy_due(host.step + 1, K, self.dim)
                nonfinite, seed_next = _update.read_flags(  # the one read of the new state
                    False if info.nonfinite is None else info.nonfinite,
                    core.seeding_flag(new_state, self.config, xp, redundancy=due),
                )
            if nonfinite and ignore:  # (discarded; the step counted; the core asks next)
                _state.discard_uncommitted(self)
                out = self._no_update(n_bad)
                self._count_step(host, seeding=None)
                return out, None, None
            if nonfinite:
                raise FloatingPointError(_NONFINITE_STATE)
            self._commit_general(new_state, info, host, bool(seed_next), rng)
        except BaseException:
            # (the step may have written rows into the buffer's free space, past the rows
            # held by whichever buffers are now the module's: zero them)
            _state.discard_uncommitted(self)
            raise
        loglik = _update.mean_loglik(info.loglik, info.weight, self.device)
        logp = None if capture is None else capture.out  # (the kept rows')
        return self._info(loglik, info.temperature, info.forgetting_rate, info.n_seeded,
                          info.n_reseeded, n_bad), logp, (kept if n_bad else None)

    def _commit_general(self, new_state: core.MixtureState, info: Any,
                        host: _update.HostState, seed_next: bool,
                        rng: _random.DeviceRandom) -> None:
        """Commit a general step's state, counters, RNG and warm-up buffers."""
        rng_state = rng.get_state()
        new = _update.new_buffers(self, new_state, n_rows=info.n_samples,
                                  n_reseeded=info.n_reseeded, rng=rng_state)
        if host.warming:
            new.update(_state.warmup_buffers_after(self, info.warmup))
        self._commit(new, host.after(warming=host.warming and info.warmup is not None,
                                     seeding=seed_next, seeded_some=info.n_seeded > 0,
                                     rng=rng_state))

    def _count_step(self, host: _update.HostState, seeding: bool | None) -> None:
        """A discarded step under ``nonfinite="ignore"``: only the step counter moves (as
        on the device, where a discarded step cannot be known without a read);
        ``seeding``: whether the next step seeds (None: the core asks)."""
        self._commit({"step": self.step + 1}, host.after(
            warming=host.warming, seeding=seeding, seeded_some=False))

    def _commit(self, new: dict[str, Tensor], host: _update.HostState) -> None:
        """Swap every changed buffer for its new tensor in one call (an interrupt leaves
        the module before the step or after it), then the host's view of them."""
        self._buffers.update(new)
        self._host_view = (_update.buffers_key(self), host)

    @staticmethod
    def _info(loglik, temperature, eta, n_seeded, n_reseeded, n_skipped) -> dict[str, Any]:
        return {
            "loglik": loglik,
            "temperature": temperature,
            "forgetting_rate": eta,
            "n_seeded": n_seeded,
            "n_reseeded": n_reseeded,
            "n_skipped": n_skipped,
            "updated": True,
        }

    def _working_memory(self, x: Tensor) -> float:
        """MiB an E-step chunk may use: scikit-learn's ``working_memory``, at most half the
        state's own size, and at least :data:`MIN_WORKING_MEMORY` (a small state's batch in
        one chunk: every chunk is another set of kernel launches). The chunk planner counts
        a row as three float64 (K,) vectors; a tensor's chunk holds one float32 (K,) row,
        made into responsibilities in place: half the state plans a chunk of about a
        twelfth of it, so that one update of a large mixture holds a bounded multiple of its
        state (docs/benchmarks.md, "Memory of one steady update"), not a fixed gigabyte
        more."""
        half_state = sum(getattr(self, n).nbytes for n in _STATE_FIELDS) / 2**20 / 2
        if torch.compiler.is_compiling():  # (scikit-learn's configuration is not traced)
            return max(half_state, MIN_WORKING_MEMORY)
        from sklearn import get_config

        return max(min(float(get_config()["working_memory"]), half_state), MIN_WORKING_MEMORY)

    def _no_update(self, n_skipped: int) -> dict[str, Any]:
        """The answer to an empty (or all-skipped) batch: nothing changes, and it says so."""
        step = self._host().step
        info = self._info(torch.tensor(float("nan"), dtype=torch.float64, device=self.device),
                          self._schedules().temperature_at(step),
                          self._schedules().forgetting_rate_at(step), 0, 0, n_skipped)
        info["updated"] = False
        return info
