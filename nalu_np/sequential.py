"""The :class:`Sequential` network of layers, and :class:`Cache`, what every ``forward`` hands to its
``backward`` (re-exported by :mod:`nalu_np.layers`, where the units are)."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence as Seq

from .backends import Backend, get_backend

__all__ = ["Cache", "Sequential"]

Array = Any  # numpy.ndarray, or a device array of a GPU backend


class Cache(NamedTuple):
    """What ``forward`` hands to ``backward``: the owner (layer or Sequential), the backend, its opaque data
    (the kernel's cache; for a Sequential the list of its layers' caches) and the batch size."""

    owner: Any
    backend: Backend
    data: Any
    batch: int


class Sequential:
    """Layers applied one after the other, with the same protocol as a single layer.

    ``params`` and ``grads`` are flat dicts whose keys are ``"<index>.<name>"``; the arrays are the layers'
    own, so an optimizer that updates ``params`` in place updates the layers.
    """

    def __init__(self, layers: Seq[Any]) -> None:
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        for prev, nxt in zip(self.layers, self.layers[1:]):
            if prev.out_features != nxt.in_features:
                raise ValueError(
                    f"layer {type(prev).__name__} gives {prev.out_features} features but the next "
                    f"{type(nxt).__name__} takes {nxt.in_features}"
                )
        self.in_features = self.layers[0].in_features
        self.out_features = self.layers[-1].out_features
        self.dtype = self.layers[0].dtype

    @property
    def params(self) -> dict[str, Array]:
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def forward(self, x: Array, backend: str | Backend | None = None) -> tuple[Array, Cache]:
        """The layers' forward passes in turn; the cache (a :class:`Cache` like a layer's) holds theirs."""
        be = get_backend(backend)
        batch = int(x.shape[0]) if getattr(x, "ndim", 0) else 0
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x, be)
            caches.append(cache)
        return x, Cache(self, be, caches, batch)

    def backward(self, dy: Array, cache: Cache) -> tuple[Array, dict[str, Array]]:
        """The layers' backward passes in reverse order; ``grads`` under the keys of :attr:`params`."""
        if not isinstance(cache, Cache) or cache.owner is not self:
            raise ValueError("cache does not come from this Sequential's forward()")
        grads: dict[str, Array] = {}
        for i in reversed(range(len(self.layers))):
            dy, g = self.layers[i].backward(dy, cache.data[i])
            grads.update({f"{i}.{k}": v for k, v in g.items()})
        return dy, {k: grads[k] for k in self.params}

    def __call__(self, x: Array, backend: str | Backend | None = None) -> Array:
        return self.forward(x, backend)[0]

    # -- projections and regularizers of the layers that have them (NAU, NMU, NPU, ...) -------------------
    def _with(self, method: str) -> list[tuple[int, Any]]:
        return [(i, layer) for i, layer in enumerate(self.layers) if callable(getattr(layer, method, None))]

    def reinitialise(self, rng: Any) -> None:
        """Every layer's :meth:`Layer.reinitialise`, first layer first, from one generator."""
        for _, layer in self._with("reinitialise"):
            layer.reinitialise(rng)

    def projections(self) -> dict[str, Any]:
        """The layers' :meth:`Layer.projections` under the keys ``"<index>.<name>"`` of ``params``;
        layers without projections contribute nothing."""
        return {f"{i}.{k}": p for i, layer in self._with("projections") for k, p in layer.projections().items()}

    def project(self) -> None:
        """Apply every layer's projections to its parameters in place."""
        for _, layer in self._with("project"):
            layer.project()

    def regularizer(self) -> tuple[Any, dict[str, Array]]:
        """The sum of the layers' regularizers and its gradient ``{"<index>.<name>": dR/dparam}``.

        Layers without a regularizer contribute nothing; with none at all the value is 0.0 and the dict empty.
        """
        total: Any = 0.0
        grads: dict[str, Array] = {}
        for i, layer in self._with("regularizer"):
            R, g = layer.regularizer()
            total = total + R
            grads.update({f"{i}.{k}": v for k, v in g.items()})
        return total, grads

    def astype(self, dtype: Any) -> "Sequential":
        return Sequential([layer.astype(dtype) for layer in self.layers])

    def to(self, backend: str | Backend) -> "Sequential":
        return Sequential([layer.to(backend) for layer in self.layers])

    def config(self) -> dict[str, Any]:
        return {"unit": "Sequential", "layers": [layer.config() for layer in self.layers]}

    def __repr__(self) -> str:
        return "Sequential([" + ", ".join(map(repr, self.layers)) + "])"
