"""Adam's overflow in float32: the authors' PyTorch loop against nalu-np's, Madsen & Johansen's gated NAU/NMU.

For each seed, the authors' ``SimpleFunctionStaticNetwork`` (a checkout of AndreasMadsen/stable-nalu, loaded as
bench/agreement.py does) and nalu-np's network of the same model start from nalu-np's initial weights in float32 and
take the same batches for ``--steps`` steps, each with its own Adam: ``torch.optim.Adam`` and
``nalu_np.optim.Adam(overflow=...)``.  The script prints, per seed, how many weights have an infinite second moment
(frozen: their step is ``m / inf = 0``) and how many are NaN at the end, in both, and the step where the first moment
overflowed in PyTorch.  With ``--overflow propagate`` (the papers' tasks' setting) the two agree; with ``clip``
(nalu-np's default) nalu-np's moments stay finite.

::

    python bench/adam_overflow.py --stable-nalu /path/to/stable-nalu --steps 200 --seeds 0 1 2 3 4 5 6 7 8 9
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

import nalu_np as nn
from nalu_np import arithmetic, studies
from nalu_np.taskbase import seed_rngs

from agreement import _pairs, load_peers, our_gradients, torch_network


def _inf_and_nan(moments: list[Any], params: list[Any]) -> tuple[int, int]:
    """Elements of the second moments that are not finite, and parameters that are NaN."""
    return (sum(int((~np.isfinite(np.asarray(v))).sum()) for v in moments),
            sum(int(np.isnan(np.asarray(p)).sum()) for p in params))


def run(sn: Any, torch: Any, model: str, op: str, seed: int, steps: int, overflow: str) -> dict[str, Any]:
    """Train ``model`` on ``op`` both ways in float32 for ``steps`` steps; what overflowed in each."""
    protocol = studies.MADSEN2020_MODELS[model]
    first, second = protocol.units
    task = arithmetic.SimpleFunctionTask(op, seed=seed, unit=second, first_unit=first, dtype="float32",
                                         eval_every=None)
    ours = task.build_model(seed_rngs(seed)[0])
    net, args = torch_network(sn, torch, protocol)
    net = net.float()
    with torch.no_grad():
        for params, key, p in _pairs(ours, net):
            p.copy_(torch.from_numpy(np.ascontiguousarray(params[key].T)))
    theirs = torch.optim.Adam(net.parameters(), lr=task.lr)
    opt = nn.optim.Adam(ours.params, lr=task.lr, projections=ours.projections(), overflow=overflow)
    _, data_rng = seed_rngs(seed)
    first_inf = None
    for step in range(1, steps + 1):
        xs, ts = task.sample(data_rng, task.batch_size)
        with np.errstate(over="ignore", invalid="ignore"):
            opt.step(our_gradients(ours, task, xs, ts, step))
        theirs.zero_grad()
        r_w_scale = max(0.0, min(1.0, (step - 1 - args["start"]) / (args["end"] - args["start"])))
        loss = torch.nn.functional.mse_loss(net(torch.from_numpy(xs)), torch.from_numpy(ts))
        loss = loss + args["regualizer"] * r_w_scale * net.regualizer()["W"]
        loss.backward()
        theirs.step()
        net.optimize(loss)
        if first_inf is None and any(not bool(torch.isfinite(s["exp_avg_sq"]).all()) for s in theirs.state.values()):
            first_inf = step
    t_inf, t_nan = _inf_and_nan([s["exp_avg_sq"].numpy() for s in theirs.state.values()],
                                [p.detach().numpy() for p in net.parameters()])
    o_inf, o_nan = _inf_and_nan(list(opt.state["exp_avg_sq"].values()), list(ours.params.values()))
    return {"seed": seed, "torch_inf": t_inf, "torch_nan": t_nan, "torch_first_inf": first_inf, "ours_inf": o_inf,
            "ours_nan": o_nan, "weights": sum(v.size for v in ours.params.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stable-nalu", required=True, metavar="DIR", help="a checkout of AndreasMadsen/stable-nalu")
    ap.add_argument("--model", default="Gated_NAU_NMU", help="record name of the study's model")
    ap.add_argument("--op", default="add")
    ap.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--overflow", choices=nn.optim.ADAM_OVERFLOW, default="propagate", help="nalu-np's Adam")
    a = ap.parse_args(argv)
    loaded = load_peers(a.stable_nalu, "bench/adam_overflow.py")
    if loaded is None:
        return 2
    torch, sn, _ = loaded
    same = True
    print(f"PyTorch {torch.__version__}; {a.model} on {a.op}, float32, {a.steps} steps, nalu-np overflow={a.overflow}")
    for seed in a.seeds:
        r = run(sn, torch, a.model, a.op, seed, a.steps, a.overflow)
        same &= (r["torch_inf"], r["torch_nan"]) == (r["ours_inf"], r["ours_nan"])
        print(f"seed {seed}: PyTorch {r['torch_inf']} infinite moments (first at step {r['torch_first_inf']}), "
              f"{r['torch_nan']} NaN weights; nalu-np {r['ours_inf']} and {r['ours_nan']} (of {r['weights']})",
              flush=True)
    print("the same in every seed" if same else "they differ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
