"""Time the physarum LP solver in PyTorch and cvxpylayers on the `fewshot bench lp` batches.

The PyTorch solver follows the gamma-AuxPD forward as written in the
PhysarumLP documentation (w = x / c, L = A diag(w) A^T, Cholesky solve of
L p = b, q = w * A^T p, x = clamp((1 - h) x + h q)), batched with bmm and
differentiated by autograd through the K iterations, as the physarum LP
paper's layer is. cvxpylayers (diffcp with SCS) solves and differentiates
the same LPs exactly. Inputs match `fewshot bench lp`: l1-SVM LPs built
from linear kernels of random 64-dimensional points (norm <= 1), C = 1,
M = 0.001, zero costs replaced by gamma = 0.001, and 5 x 50 matching LPs.
A, b and c all require gradients; the loss is sum(x).

Usage: /work/venv/bin/python Scripts/bench_lp_torch.py [--repeats 30] [--threads 2] [--skip-cvxpy]
Prints the median and the minimum in milliseconds. The minimum is the figure
least disturbed by other processes on a shared machine.
"""

import argparse
import statistics
import time

import numpy as np
import torch


def svm_lp(kernel, labels, penalty=1.0, margin_shift=0.001):
    n = len(labels)
    columns, rows = 9 * n + 2, 4 * n
    alpha1, alpha2, s, b1, b2 = 0, n, 2 * n, 3 * n, 3 * n + 1
    xi, z, l, p, q, r = 3 * n + 2, 4 * n + 2, 5 * n + 2, 6 * n + 2, 7 * n + 2, 8 * n + 2
    a = np.zeros((rows, columns))
    b = np.zeros(rows)
    c = np.zeros(columns)
    h = kernel * labels[None, :]
    for i in range(n):
        a[i, alpha1:alpha1 + n], a[i, alpha2:alpha2 + n] = labels[i] * h[i], -labels[i] * h[i]
        a[i, b1], a[i, b2] = labels[i], -labels[i]
        a[i, xi + i], a[i, z + i], a[i, l + i] = 1, -margin_shift, -1
        a[n + i, alpha1:alpha1 + n], a[n + i, alpha2:alpha2 + n] = h[i], -h[i]
        a[n + i, s + i], a[n + i, p + i] = -1, 1
        a[2 * n + i, alpha1:alpha1 + n], a[2 * n + i, alpha2:alpha2 + n] = h[i], -h[i]
        a[2 * n + i, s + i], a[2 * n + i, q + i] = 1, -1
        a[3 * n + i, z + i], a[3 * n + i, r + i] = 1, 1
        b[i], b[3 * n + i] = 1, 1
        c[s + i], c[xi + i], c[z + i] = 1, penalty, 2 * penalty
    return a, b, c


def svm_batch(count, support=10, dimension=64, gamma=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    batch = []
    for _ in range(count):
        points = rng.standard_normal((support, dimension))
        points /= np.linalg.norm(points, axis=1).max()
        labels = np.where(np.arange(support) < support // 2, 1.0, -1.0)
        batch.append(svm_lp(points @ points.T, labels))
    a, b, c = (np.stack(part) for part in zip(*batch))
    return a, b, np.where(c == 0, gamma, c)


def matching_batch(count, templates=5, proposals=50, gamma=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    a = np.zeros((templates + proposals, templates * proposals + proposals))
    for i in range(templates):
        a[i, i * proposals:(i + 1) * proposals] = 1
        for j in range(proposals):
            a[templates + j, i * proposals + j] = 1
    for j in range(proposals):
        a[templates + j, templates * proposals + j] = 1
    costs = rng.uniform(0.001, 1, size=(count, templates * proposals))
    c = np.concatenate([costs, np.full((count, proposals), gamma)], axis=1)
    return np.repeat(a[None], count, axis=0), np.ones((count, templates + proposals)), c


def physarum(a, b, c, x, iterations, step=1.0, lower=1e-6, upper=1e4):
    a_transposed = a.transpose(1, 2)
    for _ in range(iterations):
        w = x / c
        normal = a @ (w.unsqueeze(-1) * a_transposed)
        factor = torch.linalg.cholesky(normal)
        p = torch.cholesky_solve(b.unsqueeze(-1), factor)
        q = w * (a_transposed @ p).squeeze(-1)
        x = ((1 - step) * x + step * q).clamp(lower, upper)
    return x


def median_ms(function, repeats):
    """Returns (median, minimum) milliseconds of `repeats` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def time_physarum(a, b, c, dtype, iterations, repeats):
    a, b, c = (torch.tensor(v, dtype=dtype) for v in (a, b, c))
    generator = torch.Generator().manual_seed(1)
    x0 = torch.rand(c.shape, generator=generator, dtype=dtype).clamp_min(1e-12)

    def forward():
        with torch.no_grad():
            physarum(a, b, c, x0, iterations)

    def forward_backward():
        ga, gb, gc = (v.clone().requires_grad_(True) for v in (a, b, c))
        physarum(ga, gb, gc, x0, iterations).sum().backward()

    return median_ms(forward, repeats), median_ms(forward_backward, repeats)


def time_cvxpylayers(a, b, c, repeats):
    import cvxpy as cp
    from cvxpylayers.torch import CvxpyLayer

    count, rows, columns = a.shape
    a_parameter = cp.Parameter((rows, columns))
    b_parameter = cp.Parameter(rows)
    c_parameter = cp.Parameter(columns)
    x = cp.Variable(columns)
    problem = cp.Problem(cp.Minimize(c_parameter @ x), [a_parameter @ x == b_parameter, x >= 0])
    layer = CvxpyLayer(problem, parameters=[a_parameter, b_parameter, c_parameter], variables=[x])
    tensors = [torch.tensor(v, dtype=torch.float64) for v in (a, b, c)]

    def forward():
        with torch.no_grad():
            layer(*tensors)

    def forward_backward():
        inputs = [t.clone().requires_grad_(True) for t in tensors]
        (solution,) = layer(*inputs)
        solution.sum().backward()

    return median_ms(forward, repeats), median_ms(forward_backward, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed repetitions per figure (median printed)")
    parser.add_argument("--cvxpy-repeats", type=int, default=5, help="timed repetitions for cvxpylayers")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--iterations", type=int, default=10, help="physarum iterations K")
    parser.add_argument("--batches", default="8,32,80", help="comma-separated l1-SVM batch sizes")
    parser.add_argument("--matching-batch", type=int, default=32, help="matching LPs (5 x 50); 0 skips")
    parser.add_argument("--skip-cvxpy", action="store_true", help="do not time cvxpylayers")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, K = {arguments.iterations}, "
          f"median of {arguments.repeats} (cvxpylayers {arguments.cvxpy_repeats})")
    print("problem          batch  solver            forward ms (median, min)  forward+backward ms (median, min)")
    cases = [("l1-SVM 92x40", size, svm_batch(size, seed=size)) for size in map(int, arguments.batches.split(","))]
    if arguments.matching_batch > 0:
        cases.append(("matching 300x55", arguments.matching_batch, matching_batch(arguments.matching_batch)))
    for name, size, (a, b, c) in cases:
        rows = []
        for dtype, label in ((torch.float32, "physarum float32"), (torch.float64, "physarum float64")):
            rows.append((label, *time_physarum(a, b, c, dtype, arguments.iterations, arguments.repeats)))
        if not arguments.skip_cvxpy and name.startswith("l1-SVM") and size <= 32:
            rows.append(("cvxpylayers", *time_cvxpylayers(a, b, c, arguments.cvxpy_repeats)))
        for label, forward, total in rows:
            print(f"{name:<16} {size:5d}  {label:<16}  {forward[0]:10.3f} {forward[1]:10.3f}"
                  f"  {total[0]:16.3f} {total[1]:10.3f}", flush=True)


if __name__ == "__main__":
    main()
