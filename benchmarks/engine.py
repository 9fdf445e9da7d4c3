"""Training throughput and inference latency: nn_core vs PyTorch (CPU) vs scikit-learn.

Network: 784-256-128-10 ReLU, softmax cross-entropy, on 60,000 x 784 float32 rows
(Fashion-MNIST's training set when the Debian package is installed, else random data of that
shape: the speed is the same). Each measurement runs in its own subprocess (PyTorch's OpenMP
threads spin after each call and would steal the cores from OpenBLAS in a shared process);
the engines take turns, every measurement is repeated, medians are reported, and ratios are
taken within this run, because the machine is shared and noisy.

    python benchmarks/engine.py [--repeats 3] [--sklearn-rows 10000]
    python benchmarks/engine.py --inference [--repeats 9]
    python benchmarks/engine.py --diagnostics-overhead [--epochs 7]

The second form times only predict latency (same network, PyTorch given a copy of nn_core's
float32 weights, torch.inference_mode); the third prints what per-layer diagnostics
(nn_core/diagnostics.py, one record per epoch on a 256-row sample) add to an epoch of this
network (target: at most 5%).

PyTorch: `pip install torch==2.13.0`; scikit-learn: `pip install -e '.[bench]'`. Both optional.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from nn_core.callbacks import Callback
from nn_core.diagnostics import Diagnostics
from nn_core.spec import build_model
from nn_core.training import Trainer

BATCHES = (32, 128, 512)
OPTIMIZERS = ("sgd", "adam")
LR = {"sgd": 0.01, "adam": 0.001}


def load_data(rows: int = 60_000) -> tuple[np.ndarray, np.ndarray, str]:
    """The benchmark's training rows and their source."""
    try:
        from nn_core.datasets.catalog import load_dataset

        data = load_dataset("fashion-mnist", cache_dir="/tmp")
        x = (data.X_train[:rows] / np.float32(255)).astype(np.float32)
        return x, data.y_train[:rows], "Fashion-MNIST train"
    except Exception:  # not installed: same shape, random values
        rng = np.random.default_rng(0)
        return rng.random((rows, 784), dtype=np.float32), rng.integers(0, 10, rows), "random"


def spec(optimizer: str, batch: int) -> dict[str, Any]:
    return {
        "input_dim": 784,
        "layers": [
            {"type": "dense", "units": 256, "activation": "relu"},
            {"type": "dense", "units": 128, "activation": "relu"},
            {"type": "dense", "units": 10, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": optimizer, "lr": LR[optimizer]},
        "training": {"epochs": 1000, "batch_size": batch, "seed": 0},
    }


class NNCore:
    name = "nn_core"

    def __init__(self, optimizer: str, batch: int, x: np.ndarray, y: np.ndarray) -> None:
        self.trainer = Trainer(build_model(spec(optimizer, batch)))
        self.x, self.y = x, y
        self.trainer.fit(x[:2048], y[:2048], epochs=1)  # warm up, fit preprocessing/labels

    def epoch_seconds(self) -> float:
        self.trainer.fit(self.x, self.y, epochs=1)
        return float(self.trainer.history[-1]["seconds"])  # the epoch loop only


class Torch:
    name = "pytorch"

    def __init__(self, optimizer: str, batch: int, x: np.ndarray, y: np.ndarray) -> None:
        import torch

        self.torch = torch
        self.net = torch_net()
        params = self.net.parameters()
        if optimizer == "sgd":
            self.opt: Any = torch.optim.SGD(params, lr=LR[optimizer])
        else:
            self.opt = torch.optim.Adam(params, lr=LR[optimizer], fused=True)
        self.loss = torch.nn.CrossEntropyLoss()
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        self.batch = batch

    def epoch_seconds(self) -> float:
        torch, n, bs = self.torch, len(self.x), self.batch
        start = time.perf_counter()
        order = torch.randperm(n)
        xs, ys = self.x[order], self.y[order]
        for i in range(0, n, bs):
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.net(xs[i : i + bs]), ys[i : i + bs]).backward()
            self.opt.step()
        return time.perf_counter() - start


class Sklearn:
    name = "scikit-learn"

    def __init__(self, optimizer: str, batch: int, x: np.ndarray, y: np.ndarray, rows: int) -> None:
        from sklearn.neural_network import MLPClassifier

        solver = {"sgd": "sgd", "adam": "adam"}[optimizer]
        self.clf = MLPClassifier(
            hidden_layer_sizes=(256, 128),
            solver=solver,
            batch_size=batch,
            learning_rate_init=LR[optimizer],
            momentum=0.0,
            random_state=0,
        )
        self.x, self.y = x[:rows], y[:rows]
        self.clf.partial_fit(self.x[:batch], self.y[:batch], classes=np.arange(10))
        self.scale = len(x) / rows  # report per full epoch

    def epoch_seconds(self) -> float:
        start = time.perf_counter()
        self.clf.partial_fit(self.x, self.y)
        return (time.perf_counter() - start) * self.scale


def gemm_floor_epoch_seconds(batch: int, epochs: int) -> float:
    """One epoch's matrix products alone (3 forward, 2 weight-gradient and 2 input-gradient
    products per step, the first layer's input gradient being unneeded): what any engine on
    this BLAS must spend, however little else it does. Best of `epochs` epochs."""
    rng = np.random.default_rng(0)
    widths = (784, 256, 128, 10)
    x = rng.random((batch, widths[0]), dtype=np.float32)
    ws = [rng.random(shape, dtype=np.float32) / shape[0] for shape in itertools.pairwise(widths)]
    outs = [np.empty((batch, width), dtype=np.float32) for width in widths[1:]]
    out_grads = [rng.random((batch, width), dtype=np.float32) for width in widths[1:]]
    weight_grads = [np.empty_like(w) for w in ws]
    inputs = [x, *outs[:-1]]

    def step() -> None:
        for a, w, out in zip(inputs, ws, outs, strict=True):
            np.matmul(a, w, out=out)
        for i in (2, 1, 0):
            np.matmul(inputs[i].T, out_grads[i], out=weight_grads[i])
            if i > 0:
                np.matmul(out_grads[i], ws[i].T, out=out_grads[i - 1])

    steps = -(-60_000 // batch)
    best = float("inf")
    for _ in range(epochs + 1):  # the first is a warm-up
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, time.perf_counter() - start)
    return best


def median_latency(fn: Callable[[], Any], calls: int) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_net() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def trained_model(x: np.ndarray, y: np.ndarray) -> Any:
    """The served network: nn_core's model after one epoch on 2,048 rows (deterministic, so
    every worker process gets the same weights)."""
    trainer = Trainer(build_model(spec("sgd", 128)))
    trainer.fit(x[:2048], y[:2048], epochs=1)
    return trainer.model


def torch_copy(model: Any) -> Any:
    """PyTorch's copy of `model`: same layers, same float32 weights (Linear stores W^T)."""
    import torch

    net = torch_net().eval()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for linear, layer in zip(linears, model.layers, strict=True):
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T)))
            linear.bias.copy_(torch.from_numpy(layer.params["b"]))
    return net


def latency(engine: str, batch: int, x: np.ndarray, y: np.ndarray) -> float:
    """Median seconds per predict call (class probabilities) for `batch` rows."""
    rows = x[:batch]
    calls = 2000 if batch == 1 else 300
    if engine == "nn_core":
        model = trained_model(x, y)
        return median_latency(lambda: model.predict(rows), calls)
    if engine == "pytorch":
        import torch

        model = trained_model(x, y)
        net = torch_copy(model)
        t_rows = torch.from_numpy(rows)

        def predict() -> Any:
            with torch.inference_mode():
                return torch.softmax(net(t_rows), dim=1).numpy()

        # Same network, same weights, same float32: the outputs agree (else the race is void).
        np.testing.assert_allclose(predict(), model.predict(rows), rtol=1e-4, atol=1e-6)
        return median_latency(predict, calls)
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 128), max_iter=1)
    clf.partial_fit(x[:512], y[:512], classes=np.arange(10))
    return median_latency(lambda: clf.predict_proba(rows), calls)


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON number (seconds) on the last line."""
    if args.engine == "pytorch":
        import torch

        torch.set_num_threads(args.threads)
    if args.task == "gemm":
        print(json.dumps(gemm_floor_epoch_seconds(args.batch, args.epochs)))
        return
    x, y, _ = load_data()
    if args.task == "latency":
        print(json.dumps(latency(args.engine, args.batch, x, y)))
        return
    if args.engine == "nn_core":
        engine: Any = NNCore(args.optimizer, args.batch, x, y)
    elif args.engine == "pytorch":
        engine = Torch(args.optimizer, args.batch, x, y)
    else:
        engine = Sklearn(args.optimizer, args.batch, x, y, args.sklearn_rows)
    engine.epoch_seconds()  # warm-up epoch
    print(json.dumps(min(engine.epoch_seconds() for _ in range(args.epochs))))


def measure(args: argparse.Namespace, engine: str, task: str, optimizer: str, batch: int) -> float:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--engine",
        engine,
        "--task",
        task,
        "--optimizer",
        optimizer,
        "--batch",
        str(batch),
        "--threads",
        str(args.threads),
        "--epochs",
        str(args.epochs),
        "--sklearn-rows",
        str(args.sklearn_rows),
    ]
    # NumPy's OpenBLAS gets the thread count PyTorch gets from torch.set_num_threads.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return float(json.loads(out.strip().splitlines()[-1]))


def available(module: str) -> str | None:
    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:
        return None


def diagnostics_overhead(epochs: int) -> None:
    """Median wall time of whole epochs (fit calls, callbacks included) with and without the
    Diagnostics callback, taking turns so the machine's drift hits both alike."""
    x, y, source = load_data()
    trainer = Trainer(build_model(spec("adam", 128)))
    trainer.fit(x[:2048], y[:2048], epochs=1)  # warm up, fit preprocessing/labels
    records: list[dict[str, Any]] = []
    with_cb: list[Callback[Any]] = [Diagnostics(lambda _trainer, record: records.append(record))]
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(epochs):
        for name, callbacks in (("without", []), ("with", with_cb)):
            start = time.perf_counter()
            trainer.fit(x, y, epochs=1, callbacks=callbacks)
            times[name].append(time.perf_counter() - start)
    off, on = (statistics.median(times[k]) for k in ("without", "with"))
    print(
        f"diagnostics overhead ({source}, 784-256-128-10 relu, adam, batch 128, median of "
        f"{epochs} epochs each): without {off:.3f} s/epoch, with {on:.3f} s/epoch, "
        f"overhead {on / off - 1:+.1%} ({len(records)} records)"
    )


def inference_latency(args: argparse.Namespace, engines: list[str]) -> None:
    """Predict latency per call at batch 1 and 256, one process per measurement, engines
    taking turns (order reversed every other round, so drift hits all alike). Each round's
    ratios come from its own measurements; the median over rounds is the figure."""
    print(
        f"inference latency per call (same network and float32 weights in every engine), "
        f"median of {args.repeats} rounds (ratio = other / nn_core; > 1 means nn_core is faster)"
    )
    for batch in (1, 256):
        lat: dict[str, list[float]] = {e: [] for e in engines}
        ratios: dict[str, list[float]] = {e: [] for e in engines if e != "nn_core"}
        for round_ in range(args.repeats):
            order = engines if round_ % 2 == 0 else engines[::-1]
            got = {e: measure(args, e, "latency", "sgd", batch) for e in order}
            for engine, seconds in got.items():
                lat[engine].append(seconds)
                if engine != "nn_core":
                    ratios[engine].append(seconds / got["nn_core"])
            rounds = ", ".join(f"{e} {got[e] * 1e6:.1f} us" for e in engines)
            print(f"    batch {batch:>3} round {round_ + 1}: {rounds}", flush=True)
        med = {k: statistics.median(v) for k, v in lat.items()}
        parts = [f"nn_core {med['nn_core'] * 1e6:8.1f} us"]
        parts += [
            f"{k} {med[k] * 1e6:8.1f} us (x{statistics.median(ratios[k]):.2f}, "
            f"rounds {min(ratios[k]):.2f}-{max(ratios[k]):.2f})"
            for k in ratios
        ]
        print(f"  batch {batch:>3}: " + ", ".join(parts), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="subprocesses per measurement")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per subprocess (best)")
    parser.add_argument("--sklearn-rows", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--diagnostics-overhead", action="store_true", help="time diagnostics' cost per epoch"
    )
    parser.add_argument(
        "--inference", action="store_true", help="time only predict latency (batch 1 and 256)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--task", help=argparse.SUPPRESS)
    parser.add_argument("--optimizer", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.diagnostics_overhead:
        diagnostics_overhead(max(args.epochs, 3))
        return

    _, _, source = load_data(rows=1)
    versions = {"pytorch": available("torch"), "scikit-learn": available("sklearn")}
    engines = ["nn_core"] + [name for name, version in versions.items() if version]
    print(
        f"data: {source}, 60000x784 float32; threads {args.threads}; numpy {np.__version__}, "
        f"torch {versions['pytorch'] or 'not installed'}, "
        f"scikit-learn {versions['scikit-learn'] or 'not installed'}"
    )
    if args.inference:
        inference_latency(args, engines)
        return
    print(
        f"training samples/s, median of {args.repeats} runs "
        "(ratio = nn_core / other; > 1 means nn_core is faster; floor = the step's matrix "
        "products alone, nn_core's share of that speed)"
    )
    for optimizer in OPTIMIZERS:
        for batch in BATCHES:
            times: dict[str, list[float]] = {e: [] for e in [*engines, "floor"]}
            for _ in range(args.repeats):
                for engine in engines:  # take turns, so drift hits all alike
                    times[engine].append(measure(args, engine, "train", optimizer, batch))
                if optimizer == "sgd":
                    times["floor"].append(measure(args, "numpy", "gemm", optimizer, batch))
            rate = {k: 60_000 / statistics.median(v) for k, v in times.items() if v}
            parts = [f"nn_core {rate['nn_core']:9,.0f}"]
            parts += [
                f"{k} {v:9,.0f} (x{rate['nn_core'] / v:.2f})"
                for k, v in rate.items()
                if k not in ("nn_core", "floor")
            ]
            if "floor" in rate:
                parts.append(f"floor {rate['floor']:9,.0f} ({rate['nn_core'] / rate['floor']:.0%})")
            print(f"  {optimizer:<4} batch {batch:>3}: " + ", ".join(parts), flush=True)

    inference_latency(args, engines)


if __name__ == "__main__":
    main()
