"""GMMPrototypes' teacher targets on a small synthetic stream: how sharp they are at each
temperature, with and without Sinkhorn-Knopp balancing, and the DINO teacher temperature the
mixture's posterior acts like (the tables in docs/ssl.md, "Temperatures and balancing").

    python -m benchmarks.bridge_targets [--steps 100] [--prototypes 64] [--dim 16]

No timing: entropies and usage only.
"""

from __future__ import annotations

import argparse
import math


def _entropy(p):
    """Mean over rows of the entropy (nats) of each row of ``p``."""
    return float(-(p * p.clamp_min(1e-30).log()).sum(dim=1).mean())


def _usage(p):
    """exp(H(mean row)): how many prototypes the batch uses (K when perfectly balanced)."""
    m = p.mean(dim=0)
    return math.exp(float(-(m * m.clamp_min(1e-30).log()).sum()))


def run(K: int = 64, D: int = 16, B: int = 256, steps: int = 100, n_dirs: int = 256,
        noise: float = 0.1, seed: int = 0,
        temperatures: tuple[float, ...] = (2.0, 1.0, 0.5, 0.1, 0.04)) -> dict:
    import torch
    import torch.nn.functional as F

    from ssl_bridge import GMMPrototypes

    torch.manual_seed(seed)
    centres = F.normalize(torch.randn(n_dirs, D), dim=1)
    g = torch.Generator().manual_seed(seed + 1)

    def batch():
        lab = torch.randint(0, n_dirs, (B,), generator=g)
        return centres[lab] + noise * torch.randn(B, D, generator=g)

    head = GMMPrototypes(K, D)  # the defaults: spherical, normalised embeddings
    for _ in range(steps):
        head.update(batch())
    x = batch()
    rows = []
    for T in temperatures:
        for balance in (None, "sinkhorn"):
            q = head.targets(x, temperature=T, balance=balance)
            col = q.sum(dim=0)
            rows.append({
                "temperature": T, "balance": balance or "none", "entropy": _entropy(q),
                "usage": _usage(q), "largest_share": float(col.max() / B),
                "argmax_prototypes": int(q.argmax(dim=1).unique().numel()),
            })
    # DINO's teacher on the same prototypes: softmax(cosine / 0.04), no centring
    cos = head.logits(x).detach()
    dino = {t: _entropy(torch.softmax(cos / t, dim=1)) for t in (0.04, 0.07)}
    # spherical mixture over unit rows: l_k = cos_k |mu_k| / sigma_k^2 + offset_k, so
    # temperature=T acts like a DINO teacher temperature of T * sigma_k^2 / |mu_k|
    tau = (head.covariances / head.means.norm(dim=1)).float()
    matched = {t: (t / float(tau.median()),
                   _entropy(head.targets(x, temperature=t / float(tau.median()))))
               for t in dino}
    return {"K": K, "D": D, "B": B, "steps": steps, "rows": rows, "dino_entropy": dino,
            "matched": matched,
            "tau_median": float(tau.median()),
            "tau_quartiles": [float(tau.quantile(0.25)), float(tau.quantile(0.75))]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--prototypes", type=int, default=64)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args(argv)
    r = run(K=args.prototypes, D=args.dim, steps=args.steps)
    print(f"K={r['K']}, D={r['D']}, batch {r['B']}, {r['steps']} updates; "
          f"log K = {math.log(r['K']):.2f} nats")
    print("| temperature | balance | mean entropy (nats) | usage exp(H(mean)) |"
          " largest share | arg-max prototypes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for x in r["rows"]:
        print(f"| {x['temperature']:g} | {x['balance']} | {x['entropy']:.3f} | "
              f"{x['usage']:.1f} | {x['largest_share']:.3f} | {x['argmax_prototypes']} |")
    print("DINO-style softmax(cosine / t) on the same prototypes, mean entropy: "
          + ", ".join(f"t={t:g}: {h:.3f}" for t, h in r["dino_entropy"].items()))
    q1, q3 = r["tau_quartiles"]
    print(f"sigma_k^2 / |mu_k| (the DINO teacher temperature of temperature=1): median "
          f"{r['tau_median']:.4f}, quartiles {q1:.4f}-{q3:.4f}")
    print("temperature = t / median, mean entropy: "
          + ", ".join(f"t={t:g}: temperature {T:.3g}, {h:.3f}"
                      for t, (T, h) in r["matched"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
