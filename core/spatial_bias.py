"""How padding shows up inside the network: border bias of feature maps, mean filters, padding arithmetic.

These are the diagnostics of "Mind the Pad" (Alsallakh et al., ICLR 2021): zero padding makes the
border of every feature map differ from its center even for a constant input, the
filters learn to compensate with lopsided weights (their Fig. 6b), and strided layers whose input
size does not divide evenly use their padding on one side only or drop the last rows and columns.

Border bias
-----------
For a 2-D map M of size H x W (a feature map averaged over its channels, see ``mean_map``):

* the ring is every pixel within ``wh = max(1, H // 8)`` rows of the top or bottom edge or within
  ``ww = max(1, W // 8)`` columns of the left or right edge; the center is every other pixel;
* ``border_bias(M) = |mean(ring) - mean(center)| / rms(M)``, where ``rms(M) = sqrt(mean(M**2))``.

So 0 means the border looks like the center on average, and 1 means the ring and the center differ
by as much as the map's typical magnitude. It is scale-free (multiplying the map by any non-zero
number changes nothing) and computed in float64. A spatially constant map scores exactly 0, an
all-zero map too (0/0 is defined as 0). Maps smaller than 3 x 3 in either direction have no center
(every pixel is on the ring) and score ``nan`` ("not defined"): e.g. the 1 x 1 output of a global pool.
``signed=True`` keeps the sign: positive when the ring is higher than the center.

Filter asymmetry
----------------
For a 2-D kernel k (kh x kw), ``filter_asymmetry(k) = (|mean(left column) - mean(right column)|
+ |mean(top row) - mean(bottom row)|) / rms(k)``: 0 for a kernel that is symmetric left-right and
top-bottom (in the sense of equal edge means), larger when the weights lean to one side, as the mean
filters of zero-padded networks do. 0 for a 1 x 1 kernel.

It is undefined (``nan``, shown as n/a) for an all-zero kernel, and so for a layer whose filters
cancel: ``mean_filters`` returns an all-zero mean kernel when its largest entry is below
``CANCEL_RATIO`` (1e-3) times the layer's mean |weight|, e.g. a whitening stem built of +/- pairs of
filters. Its float32 mean is rounding noise (~1e-8), and noise over its own RMS would score like a
strongly lopsided kernel.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from padlens.core.layers import Path, hook_outputs, is_container, iter_paths, key_params, path_name

BORDER_BIAS_HELP = (
    "Border bias: |mean of the border ring - mean of the center| / RMS of the map, for the feature map "
    "averaged over channels. The ring is max(1, H//8) rows at the top and bottom and max(1, W//8) columns "
    "at the left and right. 0: the border looks like the center; 1: they differ by the map's typical "
    "magnitude. Maps smaller than 3x3 have no center: n/a."
)
REGIONS = ("top edge", "bottom edge", "left edge", "right edge",
           "top-left corner", "top-right corner", "bottom-left corner", "bottom-right corner")
CANCEL_RATIO = 1e-3   # a mean kernel below this times the layer's mean |weight|: the filters cancel
FILTER_ASYMMETRY_HELP = (
    "Filter asymmetry: (|mean left column - mean right column| + |mean top row - mean bottom row|) / RMS "
    "of the kernel, for the kernel averaged over output and input channels. 0: balanced. n/a: the filters "
    f"cancel (the mean kernel is below {CANCEL_RATIO:g} of the layer's mean |weight|, e.g. a stem of +/- "
    "filter pairs)."
)


def mean_map(act: torch.Tensor) -> torch.Tensor:
    """A feature map [C,H,W] averaged over its channels -> [H,W] (float32)."""
    if act.dim() != 3:
        raise ValueError(f"mean_map needs a [C,H,W] feature map, got shape {tuple(act.shape)}")
    return act.float().mean(0)


def ring_width(size: int) -> int:
    """Width of the border ring along an axis of this many pixels: max(1, size // 8)."""
    return max(1, size // 8)


def border_bias(map2d: torch.Tensor, signed: bool = False) -> float:
    """How much the border ring of a [H,W] map differs from its center; see the module docstring."""
    if map2d.dim() != 2:
        raise ValueError(f"border_bias needs a [H,W] map, got shape {tuple(map2d.shape)}")
    h, w = map2d.shape
    if h < 3 or w < 3:
        return math.nan
    m = map2d.detach().to("cpu", torch.float64)
    if torch.isnan(m).any():
        return math.nan
    if bool(m.max() == m.min()):
        return 0.0          # constant (including all-zero): exactly no border effect
    wh, ww = ring_width(h), ring_width(w)
    center_mask = torch.zeros(h, w, dtype=torch.bool)
    center_mask[wh:h - wh, ww:w - ww] = True
    diff = m[~center_mask].mean() - m[center_mask].mean()
    rms = m.square().mean().sqrt()
    value = float(diff / rms)
    return value if signed else abs(value)


def region_deviations(map2d: torch.Tensor) -> dict[str, float]:
    """(mean of each border edge / corner - mean of the center) / RMS of the map, signed.

    The regions follow border_bias's ring: corners are the ring_width x ring_width blocks, edges the
    ring strips between them. Empty for maps below 3x3; all 0 for a constant map.
    """
    h, w = map2d.shape
    if h < 3 or w < 3:
        return {}
    m = map2d.detach().to("cpu", torch.float64)
    rms = m.square().mean().sqrt()
    if bool(m.max() == m.min()) or rms == 0:
        return {r: 0.0 for r in REGIONS}
    a, b = ring_width(h), ring_width(w)
    center = m[a:h - a, b:w - b].mean()
    parts = {"top edge": m[:a, b:w - b], "bottom edge": m[h - a:, b:w - b],
             "left edge": m[a:h - a, :b], "right edge": m[a:h - a, w - b:],
             "top-left corner": m[:a, :b], "top-right corner": m[:a, w - b:],
             "bottom-left corner": m[h - a:, :b], "bottom-right corner": m[h - a:, w - b:]}
    return {k: float((v.mean() - center) / rms) for k, v in parts.items()}


def worst_region(devs: dict[str, float]) -> str | None:
    """The region of region_deviations farthest from the center; None when none differs."""
    finite = {k: v for k, v in devs.items() if math.isfinite(v)}
    if not finite or max(abs(v) for v in finite.values()) == 0:
        return None
    return max(finite, key=lambda k: abs(finite[k]))


def layer_biases(acts: dict[Path, torch.Tensor], signed: bool = False) -> dict[Path, float]:
    """``border_bias(mean_map(a))`` for every spatial [C,H,W] activation (nan for maps below 3x3)."""
    return {p: border_bias(mean_map(a), signed) for p, a in acts.items() if a.dim() == 3}


def mean_filters(model: nn.Module) -> dict[Path, torch.Tensor]:
    """The mean kernel [kh,kw] of every Conv2d, averaged over output and input channels (Mind the Pad Fig. 6b).

    Every conv the model holds, by its path (core.layers.iter_paths). Averaged in float64; a layer
    whose filters cancel (see the module docstring) gets an all-zero kernel, not its rounding noise.
    """
    out = {}
    for p, m in iter_paths(model):
        if isinstance(m, nn.Conv2d):
            w = m.weight.detach().to("cpu", torch.float64)
            k = w.mean((0, 1))
            if k.abs().max() < CANCEL_RATIO * w.abs().mean():
                k = torch.zeros_like(k)
            out[p] = k.float()
    return out


def filter_asymmetry(k: torch.Tensor) -> float:
    """Left-right plus top-bottom imbalance of a [kh,kw] kernel over its RMS; nan for an all-zero kernel
    (filters that cancel have no lean). See the module docstring."""
    if k.dim() != 2:
        raise ValueError(f"filter_asymmetry needs a [kh,kw] kernel, got shape {tuple(k.shape)}")
    k = k.detach().to("cpu", torch.float64)
    rms = k.square().mean().sqrt()
    if rms == 0:
        return math.nan
    lr = (k[:, 0].mean() - k[:, -1].mean()).abs()
    tb = (k[0, :].mean() - k[-1, :].mean()).abs()
    return float((lr + tb) / rms)


# ---------------------------------------------------------------------------------------------------
# Padding arithmetic

_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_ADAPTIVE = (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _sides(m: nn.Module) -> list[tuple[int, int]]:
    """Padding per axis as (before, after), following torch's rules for 'same' and 'valid'."""
    if isinstance(m, nn.Conv2d) and isinstance(m.padding, str):
        if m.padding == "valid":
            return [(0, 0), (0, 0)]
        sides = []
        for k, d in zip(m.kernel_size, m.dilation):
            total = d * (k - 1)
            sides.append((total // 2, total - total // 2))   # torch puts the odd pixel after
        return sides
    return [(p, p) for p in _pair(m.padding)]


def _axis(n: int, k: int, s: int, d: int, before: int, after: int, ceil_mode: bool) -> dict:
    """The arithmetic of one axis. 'dropped' counts real pixels no window reads; 'after_used' the
    trailing padding actually read; 'overhang' how far the last ceil-mode window reaches past the end."""
    k_eff = d * (k - 1) + 1
    span = n + before + after - k_eff
    if span < 0:
        raise ValueError(f"kernel {k_eff} is larger than the padded input {n + before + after}")
    out = span // s + 1
    overhang = 0
    if ceil_mode and span % s:
        out += 1
        if (out - 1) * s >= n + before:   # torch: the last window must start inside the input or left padding
            out -= 1
        overhang = max(0, (out - 1) * s + k_eff - (n + before + after))
    last = (out - 1) * s + k_eff          # padded rows read: 0 .. last-1
    unread = n + before + after - last    # trailing padded rows no window reads (0 when overhanging)
    unread = max(0, unread)
    return {"in": n, "out": out, "kernel": k, "stride": s, "dilation": d, "before": before, "after": after,
            "after_used": max(0, after - unread), "dropped": max(0, unread - after), "overhang": overhang}


_AXES = (("row", "rows", "top", "bottom"), ("column", "columns", "left", "right"))
_BOTH = ("row and column", "rows and columns", "top and left", "bottom and right")
_FACTS = ("dropped", "before", "after_used", "overhang")


def _axis_notes(ax: dict, names: tuple[str, str, str, str], both: bool = False) -> list[str]:
    one, many, first, last = names
    notes = []
    n = ax["dropped"]
    if n:
        notes.append(f"the last {one} {'are' if both else 'is'} dropped" if n == 1 else
                     f"the last {n} {many} are dropped")
    if ax["before"] != ax["after_used"]:
        notes.append(f"padding read: {ax['before']} at the {first}, {ax['after_used']} at the {last}")
    if ax["overhang"]:
        notes.append(f"the last window reaches {ax['overhang']} {one if ax['overhang'] == 1 else many} "
                     f"past the {last} edge (ceil_mode)")
    return notes


def _notes(axes: list[dict]) -> list[str]:
    """Notes on uneven use of the input; one note for both axes when they behave the same."""
    if all(axes[0][f] == axes[1][f] for f in _FACTS):
        return _axis_notes(axes[0], _BOTH, both=True)
    return _axis_notes(axes[0], _AXES[0]) + _axis_notes(axes[1], _AXES[1])


SIZE_SEARCH_LIMIT = 64   # check_input_size looks for a working size up to here (cheap: one small image each)


def _forward_error(model: nn.Module, input_size: int) -> str | None:
    """Run one zero image of this size in eval mode (the modules' modes restored after); the first line
    of torch's error when the model cannot take it (reflect padding wider than a map, a map pooled to
    nothing, a fixed-size head), else None."""
    if input_size < 1:
        raise ValueError("input_size must be positive")
    modes = [(m, m.training) for m in model.modules()]
    try:
        p = next(model.parameters(), None)
        x = torch.zeros(1, 3, input_size, input_size, device=p.device if p is not None else "cpu")
        model.eval()
        with torch.inference_mode():
            model(x)
    except Exception as e:  # noqa: BLE001 - a model may assert its input size or raise anything
        return str(e).splitlines()[0][:200]
    finally:
        for mod, training in modes:
            mod.training = training
    return None


def _size_error(model: nn.Module, input_size: int, error: str) -> ValueError:
    """A one-line ValueError naming the size and the smallest larger size that works, if one up to
    SIZE_SEARCH_LIMIT does (sizes too small for the padding and pooling are the usual failure)."""
    larger = next((s for s in range(input_size + 1, SIZE_SEARCH_LIMIT + 1) if _forward_error(model, s) is None),
                  None)
    hint = f" (the smallest larger size it takes is {larger}x{larger})" if larger else ""
    return ValueError(f"the model does not run on a {input_size}x{input_size} input{hint}: {error}")


def check_input_size(model: nn.Module, input_size: int) -> None:
    """Refuse, with a ValueError that says which size works, an input size the model cannot take,
    before any work starts at that size."""
    error = _forward_error(model, input_size)
    if error:
        raise _size_error(model, input_size, error)


def padding_arithmetic(model: nn.Module, input_size: int) -> list[dict]:
    """Size bookkeeping of every Conv2d and pooling layer for a square input_size x input_size image.

    One dict per layer, in the order of core.layers.iter_paths, with keys: path, name, type, params,
    input (h, w), output (h, w) as measured in a forward pass, kernel, stride, padding ((top, bottom),
    (left, right)), padding_mode (the conv's mode; "-inf" for a max pool, "zeros" for an average pool,
    None for adaptive pools), pads (the layer adds padding), uneven (pixels dropped, padding used on
    one side only, a ceil-mode window overhanging, or adaptive windows of unequal size) and note,
    e.g. "9x9 -> 4x4: no padding; the last row and column are dropped (uneven)". A conv whose
    (in + 2p - k) % stride != 0 reads less padding after than before ("padding read: 1 at the top and
    left, 0 at the bottom and right"). Raises
    check_input_size's ValueError when the model does not run at that size.
    """
    paths = [(p, m) for p, m in iter_paths(model) if isinstance(m, (nn.Conv2d,) + _POOLS + _ADAPTIVE)]
    shapes: dict[Path, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    hooks = hook_outputs(model, lambda p, out, inp: shapes.__setitem__(p, (tuple(inp.shape[-2:]),
                                                                           tuple(out.shape[-2:]))),
                         paths, inputs=True)
    try:
        error = _forward_error(model, input_size)
    finally:
        for h in hooks:
            h.remove()
    if error:
        raise _size_error(model, input_size, error)

    rows = []
    for path, m in paths:
        if path not in shapes:
            continue          # not reached by the forward pass
        (hin, win), (hout, wout) = shapes[path]
        row = {"path": path, "name": path_name(path), "type": type(m).__name__,
               "params": key_params(m), "input": (hin, win), "output": (hout, wout)}
        head = f"{hin}x{win} -> {hout}x{wout}"
        if isinstance(m, _ADAPTIVE):
            uneven = hin % hout != 0 or win % wout != 0
            row.update(kernel=None, stride=None, padding=((0, 0), (0, 0)), padding_mode=None, pads=False,
                       uneven=uneven)
            what = "global pool over every pixel" if (hout, wout) == (1, 1) else "adaptive pool"
            row["note"] = f"{head}: {what}; " + ("windows of unequal size (uneven)" if uneven else "even")
            rows.append(row)
            continue
        is_conv = isinstance(m, nn.Conv2d)
        kernel, stride = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        dilation = _pair(m.dilation) if is_conv or isinstance(m, nn.MaxPool2d) else (1, 1)
        ceil_mode = bool(getattr(m, "ceil_mode", False))
        sides = _sides(m)
        mode = getattr(m, "padding_mode", "zeros") if is_conv else (
            "-inf" if isinstance(m, nn.MaxPool2d) else "zeros")
        axes = [_axis(n, k, s, d, b, a, ceil_mode)
                for n, k, s, d, (b, a) in zip((hin, win), kernel, stride, dilation, sides)]
        pads = any(b or a for b, a in sides)
        notes = _notes(axes)
        uneven = bool(notes)
        if pads:
            (t, b), (l, r) = sides
            amount = f"{t} px on every side" if t == b == l == r else f"top {t}, bottom {b}, left {l}, right {r} px"
            desc = f"pads {amount} ({'-inf, ignored by the max' if mode == '-inf' else mode})"
        else:
            desc = "no padding"
        note = f"{head}: {desc}; " + ("; ".join(notes) + " (uneven)" if uneven else "even")
        computed = (axes[0]["out"], axes[1]["out"])
        if computed != (hout, wout):
            note += f"; the arithmetic says {computed[0]}x{computed[1]}: this layer's forward is custom"
        row.update(kernel=kernel, stride=stride, padding=tuple(sides), padding_mode=mode, pads=pads,
                   uneven=uneven, note=note)
        rows.append(row)
    return rows


def format_padding_arithmetic(rows: list[dict]) -> str:
    """The rows of padding_arithmetic as lines of text, "model[1][0]  Conv2d  32x32 -> 32x32: ..."."""
    if not rows:
        return "(the model has no convolution or pooling layer)"
    w1 = max(len(r["name"]) for r in rows)
    w2 = max(len(r["type"]) for r in rows)
    return "\n".join(f"{r['name']:<{w1}}  {r['type']:<{w2}}  {r['note']}" for r in rows)


# ---------------------------------------------------------------------------------------------------
# The per-layer table (the CLI prints it, the report stores it, the Spatial bias tab shows it)

def bias_table(model: nn.Module, acts_by_input: dict[str, dict[Path, torch.Tensor]], input_size: int) -> list[dict]:
    """One row per layer (containers excluded, in iter_paths order) that some input reached.

    acts_by_input: {input name: {path: [C,H,W] activation, or its [H,W] channel mean}}; other shapes
    (a Linear's logits) get nan. Row keys: path, name, type, shape (of the first input's tensor),
    size ([H, W] of the map, None when not spatial); per input name: the border bias, f"{name}_signed",
    f"{name}_regions" (region_deviations) and f"{name}_worst_region"; filter_asymmetry of the mean
    kernel (None for a layer that is not a conv); uneven and padding_arithmetic, the padding
    arithmetic at input_size ("UNEVEN: " first when uneven; "" for a layer without one).
    """
    kernels = mean_filters(model)
    arith = {tuple(r["path"]): r for r in padding_arithmetic(model, input_size)}
    maps = {k: {p: mean_map(a) if a.dim() == 3 else a for p, a in acts.items() if a.dim() in (2, 3)}
            for k, acts in acts_by_input.items()}
    rows = []
    for p, m in iter_paths(model):
        given = next((acts[p] for acts in acts_by_input.values() if p in acts), None)
        if given is None or is_container(m):
            continue
        first = next((mp[p] for mp in maps.values() if p in mp), None)
        row = {"path": p, "name": path_name(p), "type": type(m).__name__, "shape": list(given.shape),
               "size": list(first.shape) if first is not None else None}
        for what, by_path in maps.items():
            mp = by_path.get(p)
            row[what] = border_bias(mp) if mp is not None else math.nan
            row[f"{what}_signed"] = border_bias(mp, signed=True) if mp is not None else math.nan
            devs = region_deviations(mp) if mp is not None else {}
            row[f"{what}_regions"] = devs
            row[f"{what}_worst_region"] = worst_region(devs)
        row["filter_asymmetry"] = filter_asymmetry(kernels[p]) if p in kernels else None
        ar = arith.get(p)
        row["uneven"] = ar["uneven"] if ar else None
        row["padding_arithmetic"] = (("UNEVEN: " if ar["uneven"] else "") + ar["note"]) if ar else ""
        rows.append(row)
    return rows
