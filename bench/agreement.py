"""nalu-np against the authors' code: Madsen & Johansen's models trained step by step on the same batches.

For each model of the study (:data:`nalu_np.studies.MADSEN2020_MODELS`), this script builds the network twice:

- nalu-np's, with its own defaults: ``SimpleFunctionTask(op, unit=..., first_unit=..., dtype="float64")``,
  its ``build_model`` (the authors' initialisations), its optimizer, penalty and projections, trained by the
  library's Python loop;
- the authors', from a checkout of AndreasMadsen/stable-nalu (``--stable-nalu DIR``): their
  ``SimpleFunctionStaticNetwork`` with the experiment script's flags for that model, in float64, trained by a
  transcription of the loop of ``experiments/simple_function_static.py`` (zero_grad, forward, MSE plus
  ``regualizer * r_w_scale * R_W``, backward, Adam step, ``model.optimize`` = the clip).

The authors' weights are set to nalu-np's initial ones (transposed: torch keeps ``(out, in)``), both get the
same batches (nalu-np's generator), and every ``--every`` steps the script prints the largest difference of
the weights relative to each tensor's scale, ``max |W_ours - W_theirs| / max |W_theirs|`` over the tensors of
both layers (the record also has the absolute one and the element-wise relative one, which a weight passing
through 0 makes large while both runs still agree to rounding).  Before comparing, the
script checks that its nalu-np loop is the library's: after all steps it equals ``nalu_np.train(...,
engine="python")`` bit for bit.

PyTorch is an optional peer (bench only), and stable-nalu's optional imports (TensorBoard, TensorFlow,
torchvision, pandas, tqdm) are stubbed: only its layers, functional and network modules run.

::

    python bench/agreement.py --stable-nalu /path/to/stable-nalu --models NAU NMU --steps 16000 8000
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import math
import sys
import time
import types
from typing import Any

import numpy as np

import nalu_np as nn
from nalu_np import arithmetic, studies
from nalu_np.losses import mse
from nalu_np.taskbase import seed_rngs

#: stable-nalu's imports that the layers never use
_STUBBED = ("tensorboardX", "tensorflow", "torchvision", "pandas", "tqdm")

#: nalu-np parameter name -> the last part of the authors' parameter name
_TORCH_NAME = {"W": "W", "b": "bias", "W_hat": "W_hat", "M_hat": "M_hat", "G": "G_add",
               "W_add": "nac_add.W", "W_mul": "nac_mul.W"}


class _Stubs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Empty modules for :data:`_STUBBED` (and their submodules), whose attributes are dummies."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name.split(".")[0] in _STUBBED:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> Any:
        module = types.ModuleType(spec.name)
        module.__path__ = []
        def dummy(attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            return type(attr, (), {"__init__": lambda self, *a, **k: None})

        module.__getattr__ = dummy
        return module

    def exec_module(self, module: Any) -> None:
        pass


def clamp_passes_bound_gradient(torch: Any) -> bool:
    """Whether this PyTorch's ``torch.clamp`` passes the gradient at its bounds (subgradient 1).

    PyTorch gave ``clamp`` the subgradient 1 at ``min`` and ``max`` in 2018 (pytorch/pytorch#7049, for
    pytorch/pytorch#7002), which is what the authors' PyTorch 1.x ran; PyTorch 2.14 gives 0 there (the
    minimum-norm subgradient of pytorch/pytorch#184574).  The NAU forward is ``torch.clamp(W, -1, 1)`` of a
    W already projected onto [-1, 1], so a weight sitting on its bound trains in the one and not in the other.
    """
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    torch.clamp(w, -1.0, 1.0).sum().backward()
    return bool(w.grad[0] == 1.0)


def use_authors_clamp(torch: Any) -> bool:
    """Make ``torch.clamp`` of tensors that need gradients pass the gradient at the bounds, as the authors'
    PyTorch did (:func:`clamp_passes_bound_gradient`); True where that needed a patch."""
    if clamp_passes_bound_gradient(torch):
        return False
    original = torch.clamp

    class _Clamp(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, lo: float, hi: float) -> Any:
            ctx.save_for_backward(x)
            ctx.bounds = (lo, hi)
            return original(x, lo, hi)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            (x,) = ctx.saved_tensors
            lo, hi = ctx.bounds
            return grad * ((x >= lo) & (x <= hi)).to(grad.dtype), None, None

    def clamp(x: Any, lo: Any = None, hi: Any = None, **kwargs: Any) -> Any:
        if x.requires_grad and lo is not None and hi is not None and not kwargs:
            return _Clamp.apply(x, lo, hi)
        return original(x, lo, hi, **kwargs)

    torch.clamp = clamp
    assert clamp_passes_bound_gradient(torch)
    return True


def load_stable_nalu(path: str) -> Any:
    """The ``stable_nalu`` package of the checkout ``path``."""
    sys.meta_path.append(_Stubs())
    sys.path.insert(0, path)
    import stable_nalu

    return stable_nalu


def load_peers(path: str, script: str, authors_clamp: bool = True) -> tuple[Any, Any, bool] | None:
    """PyTorch on one thread (with the authors' ``torch.clamp`` if asked, :func:`use_authors_clamp`) and the
    ``stable_nalu`` package of the checkout ``path``: ``(torch, stable_nalu, patched)``, or None (with a message
    naming ``script``) where PyTorch is missing."""
    try:
        import torch
    except ImportError:
        print(f"{script} needs PyTorch (pip install torch)", file=sys.stderr)
        return None
    torch.set_num_threads(1)
    patched = authors_clamp and use_authors_clamp(torch)
    return torch, load_stable_nalu(path), patched


def _flags(model: Any) -> dict[str, Any]:
    """The experiment script's arguments for ``model`` (its flags over the argparse defaults)."""
    args = {"layer_type": None, "first_layer": None, "nac_mul": "none", "nalu_two_nac": False, "nalu_mul": "normal"}
    words = model.flags.split()
    for i, w in enumerate(words):
        if w.startswith("--") and w != "--nalu-two-nac":
            key = w[2:].replace("-", "_")
            if key in args:
                args[key] = words[i + 1]
    args["nalu_two_nac"] = "--nalu-two-nac" in words
    reg = model.regularizer or studies.MADSEN2020_PROTOCOL.regularizer
    lam = 0.0 if model.regularizer is None else reg.lambda_hat
    # without a sparsity regularizer the flags' default lambda (10) multiplies an R_W of 0
    args.update(regualizer=lam, start=reg.start, end=reg.end)
    return args


def torch_network(sn: Any, torch: Any, model: Any) -> tuple[Any, dict[str, Any]]:
    """The authors' network of ``model`` in float64, and the arguments of its training loop."""
    a = _flags(model)
    net = sn.network.SimpleFunctionStaticNetwork(
        a["layer_type"], input_size=100, first_layer=a["first_layer"], hidden_size=2, nac_oob="clip",
        regualizer_shape="linear", regualizer_z=0, mnac_epsilon=0, nac_mul=a["nac_mul"], nalu_bias=False,
        nalu_two_nac=a["nalu_two_nac"], nalu_two_gate=False, nalu_mul=a["nalu_mul"], nalu_gate="normal")
    net.reset_parameters()
    return net.double(), a


def _pairs(ours: Any, net: Any) -> list[tuple[dict[str, Any], str, Any]]:
    """(our layer's params, name, the authors' parameter) for every weight."""
    out = []
    for layer, part in zip(ours.layers, (net.layer_1, net.layer_2)):
        theirs = dict(part.named_parameters())
        for name in layer.params:
            match = [p for k, p in theirs.items() if k == _TORCH_NAME[name] or k.endswith("." + _TORCH_NAME[name])]
            if len(match) != 1:
                raise RuntimeError(f"no single parameter {_TORCH_NAME[name]!r} among {sorted(theirs)}")
            out.append((layer.params, name, match[0]))
    return out


def _differences(pairs: list[tuple[dict[str, Any], str, Any]], ours: Any, theirs: Any) -> dict[str, float]:
    """The largest differences between ``ours(params, key)`` and ``theirs(p)`` (arrays, ours' layout)."""
    diffs = [(np.abs(ours(params, key) - theirs(p)), np.abs(theirs(p))) for params, key, p in pairs]
    return {"max_abs_diff": max(float(d.max()) for d, _ in diffs),
            "max_rel_diff": max(float(d.max() / max(w.max(), 1e-300)) for d, w in diffs),
            "max_elementwise_rel_diff": max(float(np.max(d / np.maximum(w, 1e-300))) for d, w in diffs)}


def our_gradients(ours: Any, task: Any, xs: np.ndarray, ts: np.ndarray, step: int) -> dict[str, Any]:
    """The gradients of step ``step`` (1, 2, ...) as the library's Python loop (nalu_np.training._train_python)
    takes them: the MSE's, plus the task's penalty at the 0-based step."""
    y, cache = ours.forward(xs)
    _, dy = mse(y, ts)
    _, grads = ours.backward(dy, cache)
    extra = task.penalty(ours, step - 1)
    if extra is not None:
        grads = {k: g + extra[1][k] if k in extra[1] else g for k, g in grads.items()}
    return grads


def compare(sn: Any, torch: Any, name: str, op: str, seed: int, steps: int, every: int,
            lockstep: bool = False) -> dict[str, Any]:
    """Train the model ``name`` of the study on ``op`` both ways for ``steps`` steps; the differences.

    With ``lockstep``, the authors' network gets nalu-np's weights before every step and the gradients of
    the loss are compared instead of the weights: the formulas, free of the amplification of rounding by a
    chaotic trajectory (the NALU and NAC• models on ×).
    """
    protocol = studies.MADSEN2020_MODELS[name]
    first, second = protocol.units
    task = arithmetic.SimpleFunctionTask(op, seed=seed, unit=second, first_unit=first, dtype="float64",
                                         eval_every=None)
    ours = task.build_model(seed_rngs(seed)[0])
    start = {k: v.copy() for k, v in ours.params.items()}
    net, args = torch_network(sn, torch, protocol)
    pairs = _pairs(ours, net)

    def load_ours() -> None:
        with torch.no_grad():
            for params, key, p in pairs:
                p.copy_(torch.from_numpy(np.ascontiguousarray(params[key].T)))

    load_ours()
    optimizer = torch.optim.Adam(net.parameters(), lr=task.lr)
    opt = nn.optim.create(task.optimizer, ours.params, lr=task.lr, projections=ours.projections(),
                          **task.optimizer_options)
    _, data_rng = seed_rngs(seed)
    rows = []
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        xs, ts = task.sample(data_rng, task.batch_size)
        grads = our_gradients(ours, task, xs, ts, step)
        # the authors' loop, epoch_i = step - 1
        if lockstep:
            load_ours()
        optimizer.zero_grad()
        out = net(torch.from_numpy(xs))
        r_w_scale = max(0.0, min(1.0, (step - 1 - args["start"]) / (args["end"] - args["start"])))
        loss = torch.nn.functional.mse_loss(out, torch.from_numpy(ts))
        loss = loss + args["regualizer"] * r_w_scale * net.regualizer()["W"]
        if loss.requires_grad:
            loss.backward()
        compared = step % every == 0 or step == steps
        if lockstep and compared:
            rows.append({"step": step, **_differences(
                pairs, lambda params, key: grads[f"{_layer_index(ours, params)}.{key}"],
                lambda p: p.grad.numpy().T)})
        opt.step(grads)
        if not lockstep:
            if loss.requires_grad:
                optimizer.step()
            net.optimize(loss)
            if compared:
                rows.append({"step": step, **_differences(pairs, lambda params, key: params[key],
                                                          lambda p: p.detach().numpy().T)})
    wall = time.perf_counter() - t0
    # the loop above is the library's: nalu_np.train from the same start gives the same bits
    check = task.build_model(seed_rngs(seed)[0])
    for k, v in start.items():
        check.params[k][...] = v
    nn.train(check, task, steps=steps, seed=seed, engine="python", backend="numpy", progress=False)
    same = all(np.array_equal(check.params[k], ours.params[k]) for k in ours.params)
    return {"model": name, "op": op, "seed": seed, "steps": steps, "compared": "gradients" if lockstep else "weights",
            "library_loop_identical": same, "max_rel_diff": max(r["max_rel_diff"] for r in rows), "trace": rows,
            "wall_s": wall}


def _layer_index(model: Any, params: dict[str, Any]) -> int:
    return next(i for i, layer in enumerate(model.layers) if layer.params is params)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stable-nalu", required=True, metavar="DIR", help="a checkout of AndreasMadsen/stable-nalu")
    ap.add_argument("--models", nargs="+", default=["NAU", "NMU"], help="record names of the study's models")
    ap.add_argument("--steps", nargs="+", type=int, default=[16000, 8000], help="steps per model (one, or one each)")
    ap.add_argument("--ops", nargs="+", default=["add"], help="ops, one, or one per model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=1000, help="steps between comparisons")
    ap.add_argument("--torch-clamp", choices=["authors", "installed"], default="authors",
                    help="torch.clamp's gradient at its bounds: as in the authors' PyTorch 1.x (1, the default), "
                         "or as the installed PyTorch has it (0 since PyTorch 2.14)")
    ap.add_argument("--lockstep", action="store_true",
                    help="give the authors' network nalu-np's weights before every step and compare the gradients")
    ap.add_argument("--json", metavar="FILE", help="write the results here")
    a = ap.parse_args(argv)
    loaded = load_peers(a.stable_nalu, "bench/agreement.py", a.torch_clamp == "authors")
    if loaded is None:
        return 2
    torch, sn, patched = loaded
    print(f"PyTorch {torch.__version__}; torch.clamp passes the gradient at its bounds: "
          f"{clamp_passes_bound_gradient(torch)}{' (patched to the authors PyTorch 1.x)' if patched else ''}")

    def per_model(values: list[Any]) -> list[Any]:
        return values * len(a.models) if len(values) == 1 else values

    results = []
    for name, steps, op in zip(a.models, per_model(a.steps), per_model(a.ops)):
        r = compare(sn, torch, name, op, a.seed, steps, a.every, a.lockstep)
        results.append(r)
        trace = ", ".join(f"{t['step']}: {t['max_rel_diff']:.1e}" for t in r["trace"])
        print(f"{name} on {op}, seed {a.seed}, {steps} steps (float64): max relative {r['compared'][:-1]} difference "
              f"{r['max_rel_diff']:.2e}; the bench loop is nalu_np.train's: {r['library_loop_identical']}; "
              f"{r['wall_s']:.0f} s\n  by step: {trace}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"torch": torch.__version__, "clamp_patched": patched, "results": results}, f, indent=1)
    return 0 if all(r["library_loop_identical"] and math.isfinite(r["max_rel_diff"]) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
