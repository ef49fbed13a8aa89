"""PyTorch side of the CUDA op benchmark (issue 3): times the cases of bench/bench_cuda_ops.cpp with PyTorch on
the same GPU, and joins the two JSON files into a markdown table with the must-show checks.

Cases (names, shapes and dtypes as in bench_cuda_ops.cpp, which documents where they come from):
  torch.matmul (f32 with allow_tf32 off, "tf32" with it on), F.conv2d (cuDNN; allow_tf32 off),
  F.scaled_dot_product_attention forward and backward (torch.autograd.grad with retain_graph), F.group_norm,
  F.group_norm + F.silu as two ops, F.layer_norm, torch.softmax, torch.add, F.gelu.
Timing, the same method as bench_cuda_ops: one warm-up call and one timed call that sets `inner`; each repetition times `inner` back-to-back calls
between two torch.cuda.synchronize() (inner so that a repetition lasts about 2 ms, at most 100) and divides;
the reported time is the median of 20 repetitions (5 with --quick).
FLOP and byte counts are those of bench_cuda_ops.cpp (GEMM 2MNK, conv 2·N·Co·Ho·Wo·Ci·kh·kw, attention forward
4·B·L·S·E and backward 2.5x that; memory-bound ops count each element read and written once).

A developer/benchmark tool only (stdlib + torch), never a build dependency:
    python3 bench/torch_side_by_side.py --json bench/results/STAMP-torch.json [--quick] [--filter SUBSTRING]
    python3 bench/torch_side_by_side.py --compare OURS.json TORCH.json --out bench/results/STAMP-side-by-side.md
The --compare mode needs no torch.
"""
import argparse
import datetime
import json
import statistics
import sys
import time


# ---- the cases (kept in step with all_cases() in bench/bench_cuda_ops.cpp) ----
def cases():
    cs = []
    g4 = "gemm_4096x4096x4096"
    for dt in ("bf16", "f16", "f32", "tf32"):
        cs.append(("gemm", g4, dt, dict(M=4096, K=4096, N=4096)))
    for name, M, K, N in (("gemm_sd_attn_proj_64", 4096, 320, 320), ("gemm_sd_attn_proj_32", 1024, 640, 640),
                          ("gemm_sd_ff_in_64", 4096, 320, 1280), ("gemm_sd_ff_out_64", 4096, 1280, 320),
                          ("gemm_densenet_1x1_b1", 100352, 256, 128), ("gemm_densenet_1x1_b2", 25088, 512, 128),
                          ("gemm_densenet_1x1_b3", 6272, 1024, 128), ("gemm_densenet_1x1_b4", 1568, 1024, 128)):
        cs.append(("gemm", name, "bf16", dict(M=M, K=K, N=N)))
    for name, N, C, H, W, Co, k, s, p, dt in (
            ("conv_sd_320x64", 2, 320, 64, 64, 320, 3, 1, 1, "bf16"),
            ("conv_sd_640x32", 2, 640, 32, 32, 640, 3, 1, 1, "bf16"),
            ("conv_sd_1280x16", 2, 1280, 16, 16, 1280, 3, 1, 1, "bf16"),
            ("conv_densenet_3x3_b1", 32, 128, 56, 56, 32, 3, 1, 1, "f32"),
            ("conv_densenet_stem", 32, 3, 224, 224, 64, 7, 2, 3, "f32")):
        cs.append(("conv", name, dt, dict(N=N, C=C, H=H, W=W, Co=Co, k=k, s=s, p=p)))
    for E in (40, 64, 80, 128, 160):
        cs.append(("sdpa", f"sdpa_fwd_self_E{E}", "bf16", dict(B=16, L=4096, S=4096, E=E, bwd=False)))
    cs.append(("sdpa", "sdpa_fwd_cross_E40", "bf16", dict(B=16, L=4096, S=77, E=40, bwd=False)))
    for E in (40, 64):
        cs.append(("sdpa", f"sdpa_bwd_self_E{E}", "bf16", dict(B=16, L=4096, S=4096, E=E, bwd=True)))
    for shape in ((2, 320, 64, 64), (2, 640, 32, 32), (2, 1280, 16, 16)):
        tag = f"{shape[1]}x{shape[2]}"
        cs.append(("mem", f"group_norm_{tag}", "bf16", dict(shape=shape, op="group_norm", acc=2)))
        cs.append(("mem", f"group_norm_silu_{tag}", "bf16", dict(shape=shape, op="group_norm_silu", acc=4)))
    cs.append(("mem", "layer_norm_4096x320", "bf16", dict(shape=(2, 4096, 320), op="layer_norm", acc=2)))
    cs.append(("mem", "softmax_cross_4096x77", "bf16", dict(shape=(16, 4096, 77), op="softmax", acc=2)))
    cs.append(("mem", "softmax_self_1024x1024", "bf16", dict(shape=(16, 1024, 1024), op="softmax", acc=2)))
    cs.append(("mem", "add_320x64", "bf16", dict(shape=(2, 320, 64, 64), op="add", acc=3)))
    cs.append(("mem", "add_320x64", "f32", dict(shape=(2, 320, 64, 64), op="add", acc=3)))
    cs.append(("mem", "gelu_4096x1280", "bf16", dict(shape=(2, 4096, 1280), op="gelu", acc=2)))
    return cs


def run_torch(args):
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda")
    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32, "tf32": torch.float32}
    elem = {"bf16": 2, "f16": 2, "f32": 4, "tf32": 4}

    def rnd(shape, dt):
        return (torch.rand(shape, device=dev, dtype=torch.float32) * 2 - 1).to(dtypes[dt])

    def time_median(reps, fn):
        fn()  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        warm = max(time.perf_counter() - t0, 1e-7)
        inner = max(1, min(100, int(2e-3 / warm)))
        ts = []
        for _ in range(reps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            torch.cuda.synchronize()
            ts.append((time.perf_counter() - t0) / inner)
        return statistics.median(ts)

    def prepare(kind, dt, p):
        """Returns (callable, work, unit, shape string)."""
        torch.backends.cuda.matmul.allow_tf32 = dt == "tf32"
        torch.backends.cudnn.allow_tf32 = False
        if kind == "gemm":
            a, b = rnd((p["M"], p["K"]), dt), rnd((p["K"], p["N"]), dt)
            return (lambda: torch.matmul(a, b)), 2.0 * p["M"] * p["N"] * p["K"], "TFLOP/s", \
                f"M={p['M']} K={p['K']} N={p['N']}"
        if kind == "conv":
            x = rnd((p["N"], p["C"], p["H"], p["W"]), dt)
            w = rnd((p["Co"], p["C"], p["k"], p["k"]), dt) / (p["C"] * p["k"] * p["k"]) ** 0.5
            ho = (p["H"] + 2 * p["p"] - p["k"]) // p["s"] + 1
            wo = (p["W"] + 2 * p["p"] - p["k"]) // p["s"] + 1
            work = 2.0 * p["N"] * p["Co"] * ho * wo * p["C"] * p["k"] * p["k"]
            return (lambda: F.conv2d(x, w, None, p["s"], p["p"])), work, "TFLOP/s", \
                f"x={p['N']}x{p['C']}x{p['H']}x{p['W']} w={p['Co']}x{p['C']}x{p['k']}x{p['k']} s{p['s']} p{p['p']}"
        if kind == "sdpa":
            # [2, 8, L, E] (= our [16, L, E]): torch's fused SDPA backends (flash, memory-efficient) need 4-d inputs.
            q = rnd((2, p["B"] // 2, p["L"], p["E"]), dt)
            k = rnd((2, p["B"] // 2, p["S"], p["E"]), dt)
            v = rnd((2, p["B"] // 2, p["S"], p["E"]), dt)
            work = 4.0 * p["B"] * p["L"] * p["S"] * p["E"]
            shape = f"q={p['B']}x{p['L']}x{p['E']} kv={p['B']}x{p['S']}x{p['E']}"
            if not p["bwd"]:
                def fwd():
                    with torch.no_grad():
                        F.scaled_dot_product_attention(q, k, v)
                return fwd, work, "TFLOP/s", shape
            for t in (q, k, v):
                t.requires_grad_(True)
            out = F.scaled_dot_product_attention(q, k, v)
            gout = rnd(out.shape, dt)
            return (lambda: torch.autograd.grad(out, (q, k, v), gout, retain_graph=True)), 2.5 * work, \
                "TFLOP/s", shape
        # memory-bound
        x = rnd(p["shape"], dt)
        n = x.numel()
        ops = {
            "group_norm": lambda: F.group_norm(x, 32),
            "group_norm_silu": lambda: F.silu(F.group_norm(x, 32)),
            "layer_norm": lambda: F.layer_norm(x, (x.shape[-1],)),
            "softmax": lambda: torch.softmax(x, -1),
            "add": lambda: torch.add(x, x),
            "gelu": lambda: F.gelu(x),
        }
        fn = ops[p["op"]]

        def mem():
            with torch.no_grad():
                fn()
        return mem, p["acc"] * n * elem[dt], "GB/s", "[" + ", ".join(str(s) for s in p["shape"]) + "]"

    if not torch.cuda.is_available():
        print("no CUDA device: nothing timed")
        return 0
    reps = 5 if args.quick else 20
    device = torch.cuda.get_device_name(0)
    print(f"torch {torch.__version__} on {device}")
    results = []
    for kind, name, dt, p in cases():
        if args.filter and args.filter not in f"{name} {dt}":
            continue
        r = dict(name=name, dtype=dt, path="torch", status="ok", ms=None)
        try:
            fn, work, unit, shape = prepare(kind, dt, p)
            r["shape"] = shape
            s = time_median(reps, fn)
            r["ms"] = s * 1e3
            r["gbs" if unit == "GB/s" else "tflops"] = work / s / (1e9 if unit == "GB/s" else 1e12)
        except Exception as e:  # report and go on: one short GPU session should show every case
            r["status"] = f"ERROR: {e}"
        rate = r.get("gbs", r.get("tflops"))
        print(f"{name:26s} {dt:5s} {r['ms'] if r['ms'] is not None else float('nan'):10.4f} ms "
              f"{rate if rate is not None else float('nan'):10.1f} {r['status']}", flush=True)
        results.append(r)
        torch.cuda.empty_cache()
    out = dict(tool="torch_side_by_side", date=datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
               device=device, torch=torch.__version__, cuda=torch.version.cuda, cases=results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
        print(f"wrote {args.json}")
    return 0


# ---- the join ----
def compare(ours_path, torch_path, out_path):
    with open(ours_path) as f:
        ours = json.load(f)
    try:
        with open(torch_path) as f:
            theirs = json.load(f)
    except (OSError, ValueError) as e:
        theirs = dict(cases=[], error=str(e))
    tmap = {(c["name"], c["dtype"]): c for c in theirs.get("cases", []) if c.get("status") == "ok"}
    omap = {(c["name"], c["dtype"], c["path"]): c for c in ours.get("cases", []) if c.get("status") == "ok"}
    lines = [f"# cxr CUDA ops vs PyTorch on {ours.get('device', '?')}", "",
             f"ours: {ours_path} ({ours.get('date', '?')}); torch: {torch_path} "
             f"(torch {theirs.get('torch', '?')}, CUDA {theirs.get('cuda', '?')})", "",
             "Speed = torch ms / ours ms (> 1: ours is faster). Median of repetitions, same method on both sides.",
             "", "| id | case | dtype | path | ours ms | torch ms | ours/torch speed |", "|---|---|---|---|---|---|---|"]
    for c in ours.get("cases", []):
        t = tmap.get((c["name"], c["dtype"]))
        if c.get("status") != "ok":
            lines.append(f"| {c.get('id', '')} | {c['name']} | {c['dtype']} | {c['path']} | {c['status']} | "
                         f"{t['ms']:.4f} |  |" if t else
                         f"| {c.get('id', '')} | {c['name']} | {c['dtype']} | {c['path']} | {c['status']} | - |  |")
            continue
        tm = f"{t['ms']:.4f}" if t else "-"
        sp = f"{t['ms'] / c['ms']:.2f}x" if t and c["ms"] else "-"
        lines.append(f"| {c.get('id', '')} | {c['name']} | {c['dtype']} | {c['path']} | {c['ms']:.4f} | {tm} | {sp} |")

    def verdict(ratio, need):
        if ratio is None:
            return "n/a (missing data)"
        return f"{'PASS' if ratio >= need else 'FAIL'} ({ratio:.2f}x, need >= {need}x)"

    g = "gemm_4096x4096x4096"
    cub, tc = omap.get((g, "bf16", "cublas")), omap.get((g, "bf16", "handwritten-tc"))
    tg = tmap.get((g, "bf16"))
    checks = [("cuBLAS-path GEMM bf16 4096^3 vs torch.matmul",
               verdict(tg["ms"] / cub["ms"] if cub and tg else None, 0.95)),
              ("hand-written GEMM bf16 4096^3 vs cuBLAS path",
               verdict(cub["ms"] / tc["ms"] if cub and tc else None, 0.4))]
    for (name, dt, path), c in sorted(omap.items()):
        if name.startswith("sdpa_fwd"):
            t = tmap.get((name, dt))
            checks.append((f"fused attention forward {name} {dt} vs F.scaled_dot_product_attention",
                           verdict(t["ms"] / c["ms"] if t else None, 0.5)))
    if not any(n.startswith("sdpa_fwd") for n, _, _ in omap):
        checks.append(("fused attention forward vs F.scaled_dot_product_attention", verdict(None, 0.5)))
    lines += ["", "## Must-show checks", "", "| check | result |", "|---|---|"]
    lines += [f"| {n} | {v} |" for n, v in checks]
    text = "\n".join(lines) + "\n"
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)
        print(f"wrote {out_path}")
    print(text)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write torch timings here")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--filter", default="")
    ap.add_argument("--compare", nargs=2, metavar=("OURS_JSON", "TORCH_JSON"),
                    help="join bench_cuda_ops and torch JSON files into a markdown table (no torch needed)")
    ap.add_argument("--out", help="markdown output of --compare")
    args = ap.parse_args()
    if args.compare:
        return compare(args.compare[0], args.compare[1], args.out)
    return run_torch(args)


if __name__ == "__main__":
    sys.exit(main())
