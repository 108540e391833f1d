"""Input validation shared by every layer and backend: clear errors instead of silently wrong numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as ``np.dtype``; TypeError unless it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from err
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_array(a: Any, *, name: str, backend: Any, shape: tuple[int | None, ...], dtype: np.dtype) -> None:
    """Check that ``a`` is a 2-d float array of ``backend`` with the expected shape and dtype.

    ``shape`` entries that are ``None`` are not checked (except that they must be >= 1).

    Raises
    ------
    TypeError
        Not an array of the backend's type, or an integer, complex, bool or other-precision dtype.
    ValueError
        Wrong number of dimensions, wrong size, or an empty dimension.
    """
    _check_type(a, name, backend)
    if a.ndim != len(shape):
        raise ValueError(f"{name} must have {len(shape)} dimensions {_fmt(shape)}, got shape {tuple(a.shape)}")
    for axis, (got, want) in enumerate(zip(a.shape, shape)):
        if want is not None and got != want:
            raise ValueError(f"{name} must have shape {_fmt(shape)}, got {tuple(a.shape)} (axis {axis})")
        if got < 1:
            raise ValueError(f"{name} has an empty axis {axis}: shape {tuple(a.shape)}")
    _check_dtype(a, name, dtype)


def check_params(params: Any, shapes: dict[str, tuple[int, ...]], *, backend: Any, dtype: np.dtype) -> None:
    """Check a layer's parameters against the shapes of the unit table, on every backend alike.

    Each expected parameter must be present, an array of ``backend``'s type (no ndarray subclass), of the
    layer's dtype, of exactly its shape and C-contiguous; no other key may be there.

    Raises
    ------
    TypeError
        Wrong array type or dtype.
    ValueError
        A parameter is missing or unknown, has the wrong shape, or is not C-contiguous.
    """
    if params.keys() != shapes.keys():
        missing = [k for k in shapes if k not in params]
        extra = [k for k in params if k not in shapes]
        raise ValueError(f"the layer's params must have the keys {list(shapes)}; missing {missing}, unknown {extra}")
    array_type = backend.array_type
    for name, want in shapes.items():
        a = params[name]
        if type(a) is array_type and a.shape == want and a.dtype == dtype and a.flags.c_contiguous:
            continue  # the common case, cheaply (a training step checks every parameter twice)
        label = f"parameter {name!r}"
        _check_type(a, label, backend)
        if tuple(a.shape) != want:
            raise ValueError(f"{label} must have shape {want}, got {tuple(a.shape)}")
        _check_dtype(a, label, dtype, fix=f"params[{name!r}].astype({dtype.name!r})")
        contiguous = getattr(getattr(a, "flags", None), "c_contiguous", True)
        if not contiguous:
            raise ValueError(f"{label} must be C-contiguous; store a contiguous copy (e.g. numpy.ascontiguousarray)")


def _check_type(a: Any, name: str, backend: Any) -> None:
    if backend.array_type is np.ndarray and isinstance(a, np.ndarray) and type(a) is not np.ndarray:
        raise TypeError(
            f"{name} is a {type(a).__module__}.{type(a).__name__}, a subclass of numpy.ndarray whose semantics "
            f"(masks, matrix products) the kernels do not follow; pass a plain array, e.g. numpy.asarray({name})"
            " (for a masked array, fill or drop the masked entries first)"
        )
    if not isinstance(a, backend.array_type):
        hint = (
            "convert it with numpy.asarray"
            if backend.name in ("numpy", "numba")
            else "move it explicitly with nalu_np.get_backend(...).asarray (host arrays are never moved per call)"
        )
        raise TypeError(
            f"{name} must be a {backend.array_type.__module__}.{backend.array_type.__name__} for backend "
            f"{backend.name!r}, got {type(a).__module__}.{type(a).__name__}; {hint}"
        )


def _check_dtype(a: Any, name: str, dtype: np.dtype, fix: str | None = None) -> None:
    dt = np.dtype(a.dtype)
    if dt == dtype:
        return
    fix = fix or f"{name}.astype({dtype.name!r})"
    if dt.kind == "f" and not dt.isnative and dt.newbyteorder("=") == dtype:
        raise TypeError(f"{name} has the non-native byte order {dt.str!r}; convert it to native {dtype.name}: {fix}")
    if dt.kind != "f":
        raise TypeError(f"{name} has dtype {dt}; nalu_np computes in float32 or float64: cast it, e.g. {fix}")
    if dt != dtype:
        other = f" or layer.astype({dt.name!r})" if dt in FLOAT_DTYPES else ""
        raise TypeError(f"{name} has dtype {dt} but the layer computes in {dtype}; cast it ({fix}{other})")


def _fmt(shape: tuple[int | None, ...]) -> str:
    names = iter("BIO")
    return "(" + ", ".join(next(names) if s is None else str(s) for s in shape) + ")"
