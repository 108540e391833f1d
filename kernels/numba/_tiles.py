"""Register-tiled matrix products for the block functions, written as LLVM vector code.

LLVM vectorises ``outT[o, r] += inT[i, r] * W[i, o]`` over ``r``, but it cannot keep a row of ``outT`` in registers
across the loop over ``i``: Numba's arrays carry no aliasing information, so every step loads and stores ``outT``
again (two loads and a store per multiply-add). :func:`matmul_tiles16` accumulates a tile of one output row, 16 AVX2
registers wide (:data:`WIDE` bytes), in registers over all of ``i`` and stores it once: one load per multiply-add,
and enough independent sums to hide the latency of the multiply-add; :func:`matmul_tiles8` and :func:`matmul_tiles4`
do the same with tiles of 8 and 4 registers for fewer columns. :func:`matmul_pairs4` sums two output rows at once in
tiles of 4 registers each, so that each load of ``inT`` serves two multiply-adds: at the engine's batch a block of
``inT`` (100 x 128 float32, 51 kB) comes from L2, whose bandwidth bounds the one-row tiles (with 8 registers a row,
the pair spills: measured slower than one row of 16). Each element is summed in the same order as the plain loop
(``0 + in_0 w_0``, then ``+ in_i w_i`` with the same ``contract`` flag), so all give the same bits.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["TILES", "matmul_tiles16", "matmul_tiles8", "matmul_tiles4", "matmul_pairs4"]

#: bytes of one output tile of :func:`matmul_tiles16`, :func:`matmul_tiles8`, :func:`matmul_tiles4` (16, 8 and 4
#: AVX2 registers)
TILES = (512, 256, 128)


def _matmul_tiles(tile_bytes: int, outs: int):
    """The intrinsic ``matmul_tiles(inT, W, outT, o, r0, tiles)`` with tiles of ``tile_bytes`` for ``outs``
    output rows: see :func:`_typed`."""
    def matmul_tiles(typingctx, inT, W, outT, o, r0, tiles):
        return _typed(tile_bytes, outs, inT, W, outT, o, r0, tiles)

    name = "tiles" if outs == 1 else "pairs"
    matmul_tiles.__name__ = matmul_tiles.__qualname__ = f"matmul_{name}{tile_bytes // 32}"  # registers of a tile
    return intrinsic(matmul_tiles)


def _typed(tile_bytes, outs, inT, W, outT, o, r0, tiles):
    """``outT[o + j, r] = sum_i inT[i, r] W[i, o + j]`` for ``j < outs`` and ``r0 <= r < r0 + tiles * T`` (``T =
    tile_bytes / itemsize``), summed over ``i`` in order: the signature and code generator of the intrinsic.

    ``inT`` (I, n), ``W`` (I, O), ``outT`` (O, n), one float dtype, ``o + outs <= O``; the rows of ``inT`` and
    ``outT`` must be contiguous (the caller checks their inner strides), ``W`` may have any strides.
    """
    arrays = (inT, W, outT)
    if not (all(isinstance(a, types.Array) and a.ndim == 2 for a in arrays)
            and inT.dtype in (types.float32, types.float64) and W.dtype == inT.dtype == outT.dtype
            and all(isinstance(k, types.Integer) for k in (o, r0, tiles))):
        return None
    f32 = inT.dtype == types.float32

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        ft = ir.FloatType() if f32 else ir.DoubleType()
        size = 4 if f32 else 8
        T = tile_bytes // size
        vec = ir.VectorType(ft, T)
        xa, wa, ya = (context.make_array(ty)(context, builder, val) for ty, val in zip(sig.args[:3], args[:3]))
        I = cgutils.unpack_tuple(builder, xa.shape, 2)[0]
        xs0 = cgutils.unpack_tuple(builder, xa.strides, 2)[0]
        ws0, ws1 = cgutils.unpack_tuple(builder, wa.strides, 2)
        ys0 = cgutils.unpack_tuple(builder, ya.strides, 2)[0]
        oo, first, nt = (context.cast(builder, v, t, types.int64) for v, t in zip(args[3:], sig.args[3:]))

        def at(base, offset, ty):  # the address base + offset bytes, as a pointer to ty
            raw = builder.gep(builder.bitcast(base, ir.IntType(8).as_pointer()), [offset])
            return builder.bitcast(raw, ty.as_pointer())

        zero = ir.Constant(vec, [0.0] * T)
        undef = ir.Constant(vec, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), T), [0] * T)
        wcols = [builder.mul(builder.add(oo, ir.Constant(i64, j)), ws1) for j in range(outs)]
        accs = [cgutils.alloca_once(builder, vec) for _ in range(outs)]  # promoted to registers by LLVM
        with cgutils.for_range(builder, nt) as tile:
            col = builder.mul(builder.add(builder.mul(tile.index, ir.Constant(i64, T)), first), ir.Constant(i64, size))
            for acc in accs:
                builder.store(zero, acc)
            with cgutils.for_range(builder, I) as row:
                x = builder.load(at(xa.data, builder.add(builder.mul(row.index, xs0), col), vec), align=size)
                for acc, wcol in zip(accs, wcols):
                    w = builder.load(at(wa.data, builder.add(builder.mul(row.index, ws0), wcol), ft))
                    wv = builder.shuffle_vector(builder.insert_element(undef, w, ir.Constant(ir.IntType(32), 0)),
                                                undef, splat)
                    prod = builder.fmul(x, wv)
                    prod.flags.append("contract")
                    total = builder.fadd(builder.load(acc), prod)
                    total.flags.append("contract")
                    builder.store(total, acc)
            for j, acc in enumerate(accs):
                out = builder.add(builder.mul(builder.add(oo, ir.Constant(i64, j)), ys0), col)
                builder.store(builder.load(acc), at(ya.data, out, vec), align=size)
        return context.get_dummy_value()

    return types.void(inT, W, outT, o, r0, tiles), codegen


matmul_tiles16, matmul_tiles8, matmul_tiles4 = (_matmul_tiles(b, 1) for b in TILES)
matmul_pairs4 = _matmul_tiles(TILES[2], 2)
